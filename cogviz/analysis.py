"""Measurements of how the image enters the model: the patch-embedding split, per-token contribution
maps, a PCA colour basis for latents, per-channel statistics, and (opt-in) anchor attention.

These compute numbers (tensors, arrays); :mod:`cogviz.viz` draws them.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ViewError
from .readmaps import AttentionReader

__all__ = ["patch_weights", "patch_embed_split", "contribution_maps", "channel_stats", "PCABasis",
           "record_attention", "AnchorAttentionProcessor"]


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)


def patch_weights(pipe) -> tuple[torch.Tensor, int, int]:
    """The first layer's weight as ``(D, 32, p_t, p, p)`` (p_t = 1 for CogVideoX 1.0), with p_t and p.

    1.0 models embed patches with ``Conv2d(32, D, p, stride=p)``; 1.5 with a ``Linear`` over
    flattened ``(channels, p_t, p, p)`` patches; both become the same 5-d kernel here.
    """
    pe = pipe.transformer.patch_embed
    p = pe.patch_size
    from .family import family_of

    p_t = family_of(pipe).patch_size_t
    w = pe.proj.weight.detach()
    d = w.shape[0]
    c = pipe.transformer.config.in_channels
    return w.reshape(d, c, p_t, p, p), p_t, p


def patch_embed_split(pipe) -> dict[str, np.ndarray]:
    """Per-input-channel weight norms of the patch embedding, split into noise and image channels.

    Returns ``{"noise": (16,), "image": (16,)}``: the Frobenius norm of the weights that read each
    input channel (0-15: z_t, 16-31: z_img).
    """
    w, _, _ = patch_weights(pipe)
    norms = w.float().pow(2).sum(dim=(0, 2, 3, 4)).sqrt().cpu().numpy()
    half = len(norms) // 2
    return {"noise": norms[:half], "image": norms[half:]}


@torch.no_grad()
def contribution_maps(pipe, x: torch.Tensor) -> dict[str, np.ndarray]:
    """How strongly each half of a 32-channel input enters each token.

    ``x``: one row of a transformer input, ``(F, 32, h, w)`` — ``trace.row("step/3/input")`` is the
    conditional row whatever the guidance — or a one-row batch ``(1, F, 32, h, w)``. A batch of
    several rows is refused: which row is conditional depends on the guidance (CFG puts the
    negative prompt first, image guidance adds an image-free row last). Returns ``{"image": (F', h/p, w/p), "noise": ...}``:
    ``|W_img * patch(z_img)|`` and ``|W_noise * patch(z_t)|``, the L2 norm over the embedding
    dimension of each half's share of the token embedding (bias excluded). F' = F / p_t.
    """
    if x.ndim == 5:
        if x.shape[0] != 1:
            from .errors import PointError

            raise PointError(f"contribution_maps: x holds {x.shape[0]} rows; pass one, e.g. "
                             "trace.row('step/3/input') (the conditional row) or trace.row(name, 'unconditional')")
        x = x[0]
    w, p_t, p = patch_weights(pipe)
    w = w.to(device=x.device, dtype=torch.float32)
    half = w.shape[1] // 2
    v = x.float().permute(1, 0, 2, 3).unsqueeze(0)  # (1, 32, F, h, w)
    out = {}
    for name, sl in (("noise", slice(0, half)), ("image", slice(half, 2 * half))):
        e = F.conv3d(v[:, sl], w[:, sl], stride=(p_t, p, p))  # (1, D, F', h/p, w/p)
        out[name] = e[0].norm(dim=0).cpu().numpy()
    return out


def channel_stats(latent) -> dict[str, np.ndarray]:
    """Per-channel mean, std, min and max of a ``(..., C, h, w)`` latent (over all other axes)."""
    a = _np(latent)
    c = a.shape[-3]
    flat = np.moveaxis(a, -3, 0).reshape(c, -1)
    return {"mean": flat.mean(1), "std": flat.std(1), "min": flat.min(1), "max": flat.max(1)}


@dataclass(frozen=True)
class PCABasis:
    """Three principal directions of latent channel space, mapped to RGB.

    Fitted once (:meth:`fit`) on any set of latents and then applied unchanged to every frame and
    step, so that a colour means the same direction everywhere. Each component is scaled to [0, 1]
    by its 1st-99th percentile on the fitting data.
    """

    mean: np.ndarray        # (C,)
    components: np.ndarray  # (3, C)
    lo: np.ndarray          # (3,)
    hi: np.ndarray          # (3,)
    explained: np.ndarray   # (3,) share of variance of each component

    @classmethod
    def fit(cls, *latents, max_samples: int = 200_000, seed: int = 0) -> PCABasis:
        """Fit on one or more ``(..., C, h, w)`` latents (all-zero pixels, e.g. z_img padding, are ignored)."""
        cols = []
        for lat in latents:
            a = _np(lat)
            cols.append(np.moveaxis(a, -3, -1).reshape(-1, a.shape[-3]))
        x = np.concatenate(cols)
        x = x[np.abs(x).sum(1) > 0]
        if len(x) < 3:
            raise ViewError("PCABasis.fit needs latents with at least 3 non-zero pixels")
        if len(x) > max_samples:
            x = x[np.random.default_rng(seed).choice(len(x), max_samples, replace=False)]
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        comps = vt[:3]
        comps *= np.sign(comps.sum(1, keepdims=True) + 1e-12)  # a fixed sign per component
        proj = (x - mean) @ comps.T
        lo, hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
        var = s ** 2
        return cls(mean.astype(np.float32), comps.astype(np.float32), lo, np.maximum(hi, lo + 1e-6),
                   (var[:3] / var.sum()).astype(np.float32))

    def apply(self, latent) -> np.ndarray:
        """(..., C, h, w) -> uint8 (..., h, w, 3)."""
        a = np.moveaxis(_np(latent), -3, -1)
        proj = (a - self.mean) @ self.components.T
        return (np.clip((proj - self.lo) / (self.hi - self.lo), 0, 1) * 255 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------- anchor attention
class AnchorAttentionProcessor(AttentionReader):
    """CogVideoX's attention which also measures where the attention of each token frame goes
    (:class:`cogviz.readmaps.AttentionReader` recording shares only). ``self.last`` is then
    ``(B, F, 1 + F)``: for queries of token frame f (mean over heads and the frame's tokens), the
    share of attention on the text and on each key frame; column 1 is the image frame, the anchor."""

    def __init__(self, tokens_per_frame: int, budget_bytes: int = 512 * 2**20, on_shares=None):
        super().__init__(tokens_per_frame, None, ("attention",), budget_bytes,
                         on_record=None if on_shares is None else (lambda what, x: on_shares(x)))

    def __call__(self, *args, **kwargs):
        out = super().__call__(*args, **kwargs)
        self.last = self.last["attention"]
        return out

    def _shares(self, q, k, text_len: int) -> torch.Tensor:
        return AttentionReader.read(self, q, k, text_len)["attention"]


@contextlib.contextmanager
def record_attention(pipe, layers, tokens_per_frame: int):
    """Record attention shares in the chosen transformer blocks for the duration of the block (through
    :mod:`cogviz.hooks`, which restores the original processors afterwards, even on error). Yields
    ``{layer: shares}``, each the last forward's ``(B, F, 1 + F)``."""
    from .hooks import check, installed
    from .inside import check_blocks
    from .readmaps import reader_hook
    from .speed import check_hooks

    layers = list(range(len(pipe.transformer.transformer_blocks))) if layers in (True, "all") else \
        [int(i) for i in layers]
    check_blocks(pipe, layers, "attention layers")
    last: dict = {}
    hook = reader_hook({layer: ("attention",) for layer in layers}, tokens_per_frame, None,
                       on_record=lambda layer, what, x: last.__setitem__(layer, x))
    check([hook])
    check_hooks(pipe, [hook])
    with installed(pipe, [hook]):
        yield last
