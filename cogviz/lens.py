"""The block lens: what the model would predict if it stopped after block l.

Block l's output for the video tokens is sent through the transformer's own last layers — the
final LayerNorm (``norm_final``), the timestep-conditioned ``norm_out`` with the block's own time
embedding, the output projection ``proj_out`` — and unpatchified exactly as
``CogVideoXTransformer3DModel.forward`` does (diffusers 0.42): ``step/{i}/block/{l}/lens``, a
``(rows, F, 16, h, w)`` prediction per CFG row, in the model's output space (a v-prediction). At the
last block it is the model's output. Through the scheduler's formula it becomes a clean-latent
guess per block (:func:`x0_of`): the "logit lens" of diffusion transformers, per step and block.
"""
from __future__ import annotations

import torch

__all__ = ["lens_hook", "unpatchify", "x0_of"]


def unpatchify(x: torch.Tensor, pipe, n_latent: int, height: int, width: int) -> torch.Tensor:
    """``(B, tokens, C p_t p p)`` -> ``(B, F, C, h, w)``: diffusers' own reshape of the model output."""
    cfg = pipe.transformer.config
    p, p_t = cfg.patch_size, cfg.patch_size_t
    b = x.shape[0]
    if p_t is None:
        out = x.reshape(b, n_latent, height // p, width // p, -1, p, p)
        return out.permute(0, 1, 4, 2, 5, 3, 6).flatten(5, 6).flatten(3, 4)
    from .family import token_frames

    out = x.reshape(b, token_frames(pipe, n_latent), height // p, width // p, -1, p_t, p, p)  # n_latent is padded
    return out.permute(0, 1, 5, 4, 2, 6, 3, 7).flatten(6, 7).flatten(4, 5).flatten(1, 2)


def lens_hook(pipe, plan, layers, on_record):
    """The :mod:`cogviz.hooks` declaration of block lenses in ``layers``: it reads each block's output
    and records ``on_record(layer, prediction)`` (all rows of the forward)."""
    from .hooks import Hook

    tr = pipe.transformer
    h, w = plan.latent_size

    def make(layer):
        def read(hidden, temb):
            with torch.no_grad():
                out = tr.proj_out(tr.norm_out(tr.norm_final(hidden), temb=temb))
                on_record(layer, unpatchify(out, pipe, plan.n_latent, h, w).float())
            return hidden

        return read

    return Hook("the block lens (step/{i}/block/{l}/lens)", "block", tuple(layers), make, reads="block output",
                records=True)


def x0_of(scheduler, z_t: torch.Tensor, pred: torch.Tensor, timestep) -> torch.Tensor:
    """The clean latent a prediction implies at ``timestep`` (the scheduler's v- or epsilon formula,
    as its ``step`` computes ``pred_original_sample``)."""
    a = scheduler.alphas_cumprod.to(z_t.device)[int(timestep)].float()
    z = z_t.float()
    if scheduler.config.prediction_type == "v_prediction":
        return a.sqrt() * z - (1 - a).sqrt() * pred.float()
    return (z - (1 - a).sqrt() * pred.float()) / a.sqrt()
