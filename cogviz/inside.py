"""Inside the transformer: call-scoped hooks on CogVideoX blocks, and attention edits.

CogVideoX attention is full 3D attention over ``[text tokens, video tokens]``; video tokens are
ordered token frame by token frame (a token frame is one latent frame, two on 1.5), each
``h/2 x w/2`` tokens. The image reaches latent frames 1.. only through attention to the tokens of
the image frame. This module gives the sampler two tools to look and to cut there, both attached
for one call through :mod:`cogviz.hooks` and removed afterwards, also on error:

* **block points** ``step/{i}/block/{l}/hidden``: block l's output for the video tokens, in the
  layout ``(rows, token frames, h/2, w/2, channels)`` (rows: the CFG rows, negative prompt first),
  recorded and changed through forward hooks on the blocks that a call names;
* **attention edits** (:class:`AttentionEdit`): from the tokens of some frames (queries) to those
  of others (keys), the attention is multiplied by ``factor`` and renormalized — an additive
  ``log(factor)`` on those logits before the softmax, ``-inf`` for a knockout. The edited queries
  are computed apart with a one-row bias ``(1, 1, 1, keys)`` that broadcasts over queries, so no
  token x token matrix is ever held and scaled-dot-product attention keeps its memory-efficient
  kernels.

This module knows nothing of ablations: :mod:`cogviz.ablations` compiles its kinds into edits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .errors import CogvizError

__all__ = ["AttentionEdit", "GROUPS", "check_blocks", "SteeredAttention", "edit_hook"]

GROUPS = ("image", "later", "text")  #: named token groups; a list of latent-frame indices also works


@dataclass(frozen=True)
class AttentionEdit:
    """Attention from ``queries`` to ``keys`` times ``factor`` (0: knocked out), in ``layers`` (None: all
    blocks) during steps ``start * S <= i < end * S``. ``queries``/``keys``: ``"image"`` (the token
    frame holding the image), ``"later"`` (every other token frame), ``"text"``, a tuple of those
    names (their union: ``("text", "later")``), or a tuple of latent-frame indices; ``heads``: the
    attention heads edited (None: all)."""

    queries: Any = "later"
    keys: Any = "image"
    factor: float = 0.0
    layers: tuple[int, ...] | None = None
    start: float = 0.0
    end: float = 1.0
    heads: tuple[int, ...] | None = None

    def active(self, layer: int, step: int, steps: int) -> bool:
        from .points import in_window

        return (self.layers is None or layer in self.layers) and in_window(step, steps, self.start, self.end)


def check_blocks(pipe, layers, what: str) -> None:
    """A block index beyond the model's blocks is refused before compute, naming the block count."""
    n = len(pipe.transformer.transformer_blocks)
    bad = [i for i in (layers or ()) if not 0 <= int(i) < n]
    if bad:
        raise CogvizError(f"{what}: block(s) {bad} do not exist; this transformer has {n} blocks, 0-{n - 1}")


def _group(spec, text_len: int, tpf: int, n_frames: int, family, device) -> torch.Tensor:
    """Token indices (into [text, video]) of a group: 'image', 'later', 'text', a tuple of those names
    (their union) or latent-frame indices."""
    if isinstance(spec, (tuple, list)) and spec and all(isinstance(g, str) for g in spec):
        parts = [_group(g, text_len, tpf, n_frames, family, device) for g in spec]
        return torch.unique(torch.cat(parts))  # sorted
    if spec == "text":
        return torch.arange(text_len, device=device)
    if spec == "image":
        frames = [0]
    elif spec == "later":
        frames = list(range(1, n_frames))
    else:
        frames = sorted({family.token_frame(f) for f in spec})
        if any(not 0 <= f < n_frames for f in frames):
            raise CogvizError(f"latent frames {list(spec)}: this video has {n_frames * family.patch_size_t} "
                              "latent frames")
    starts = text_len + torch.tensor(frames, dtype=torch.long, device=device) * tpf  # (frames,)
    return (starts[:, None] + torch.arange(tpf, device=device)).flatten()  # every token of those frames


def attention_inputs(attn, hidden_states, encoder_hidden_states, image_rotary_emb=None):
    """CogVideoX's attention up to the product, as diffusers' ``CogVideoXAttnProcessor2_0`` computes it:
    ``(q, k, v, text_len)``, each ``(B, heads, text + video tokens, head_dim)``, normed, rotary applied."""
    from diffusers.models.embeddings import apply_rotary_emb

    text_len = encoder_hidden_states.size(1)
    x = torch.cat([encoder_hidden_states, hidden_states], dim=1)
    b = x.shape[0]
    q, k, v = attn.to_q(x), attn.to_k(x), attn.to_v(x)
    d = k.shape[-1] // attn.heads
    q, k, v = (t.view(b, -1, attn.heads, d).transpose(1, 2) for t in (q, k, v))  # (B, H, N, d)
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    if image_rotary_emb is not None:
        q[:, :, text_len:] = apply_rotary_emb(q[:, :, text_len:], image_rotary_emb)
        if not attn.is_cross_attention:
            k[:, :, text_len:] = apply_rotary_emb(k[:, :, text_len:], image_rotary_emb)
    return q, k, v, text_len


def attention_output(attn, out: torch.Tensor, text_len: int):
    """``(B, heads, N, d)`` attention output -> (video, text) hidden states through the output projection."""
    b, h, n, d = out.shape
    out = attn.to_out[1](attn.to_out[0](out.transpose(1, 2).reshape(b, n, h * d)))
    encoder_hidden_states, hidden_states = out.split([text_len, n - text_len], dim=1)
    return hidden_states, encoder_hidden_states


class SteeredAttention:
    """CogVideoX's attention (the computation of diffusers' ``CogVideoXAttnProcessor2_0``) with the
    :class:`AttentionEdit` s of each batch row applied. Rows without an active edit take the plain
    fused attention; an edited row group's edited queries take a second fused call with a one-row
    additive bias over the keys."""

    def __init__(self, layer: int, forward):
        self.layer, self.forward = layer, forward  # a cogviz.hooks.Forward: the step and each variant's rows

    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask=None, image_rotary_emb=None):
        q, k, v, text_len = attention_inputs(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)
        for (r0, r1), edits in self._row_edits():
            out[r0:r1] = self._edited(q[r0:r1], k[r0:r1], v[r0:r1], out[r0:r1], edits, text_len)
        return attention_output(attn, out, text_len)

    def _row_edits(self):
        s = self.forward
        for rows, edits, _ in s.rows:  # (row span in this forward, its edits, its owner)
            active = [e for e in edits if e.active(self.layer, s.step, s.steps)]
            if active:
                yield rows, active

    def _edited(self, q, k, v, out, edits, text_len):
        s = self.forward
        n_keys = k.shape[2]
        bias = torch.zeros(n_keys, dtype=torch.float32, device=q.device)
        queries = torch.zeros(n_keys, dtype=torch.bool, device=q.device)
        for e in edits:  # one bias row per distinct query group; edits on the same queries add up
            qi = _group(e.queries, text_len, s.tokens_per_frame, s.frames, s.family, q.device)
            ki = _group(e.keys, text_len, s.tokens_per_frame, s.frames, s.family, q.device)
            if queries.any() and (not torch.equal(queries.nonzero().flatten(), qi) or e.heads != edits[0].heads):
                raise CogvizError("two attention edits with different query groups or heads in one block and step: "
                                  "give them the same queries and heads, or apply them in separate calls")
            queries[qi] = True
            bias[ki] += -math.inf if e.factor == 0 else math.log(e.factor)
        idx = queries.nonzero().flatten()
        mask = bias.to(q.dtype).view(1, 1, 1, n_keys)  # broadcast over rows, heads and queries
        out = out.clone()
        heads = edits[0].heads
        if heads is None:
            out[:, :, idx] = F.scaled_dot_product_attention(q[:, :, idx], k, v, attn_mask=mask, dropout_p=0.0)
            return out
        hi = torch.tensor(heads, dtype=torch.long, device=q.device)
        edited = F.scaled_dot_product_attention(q[:, hi][:, :, idx], k[:, hi], v[:, hi], attn_mask=mask, dropout_p=0.0)
        out[:, hi[:, None], idx[None, :]] = edited  # (rows, heads, queries, d)
        return out


def edit_hook(layers, forward):
    """The :mod:`cogviz.hooks` declaration of the attention edits in ``layers``: it reads and writes
    those blocks' attention, each variant's rows with its own edits (``forward.rows``)."""
    from .hooks import Hook

    return Hook("attention edits (attention_knockout, scale_attention, ...)", "attention", tuple(layers),
                lambda layer: SteeredAttention(layer, forward), reads="attention", writes=True)
