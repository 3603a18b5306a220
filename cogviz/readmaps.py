"""Where each frame reads the image: the attention of the video tokens on the image frame's tokens,
measured inside CogVideoX's attention as a streamed reduction.

diffusers' attention processor runs fused scaled-dot-product attention, which never holds the
attention weights. :class:`AttentionReader` computes the same output the same way and, beside it,
the softmax weights of the video queries in chunks of queries (at most ``budget_bytes`` of weights
at a time; never the token x token matrix), reduced as they go into what a call records:

* ``shares`` — ``step/{i}/block/{l}/attention`` ``(rows, F', 1 + F')``: for the queries of token
  frame f (mean over heads and the frame's tokens), the share of attention on the text and on each
  token frame (column 1: the image frame);
* ``readmap`` — ``step/{i}/block/{l}/readmap`` ``(rows, heads, F', h', w')``: for the queries of token
  frame f (mean over the frame's tokens), the attention mass on each token of the image frame, per
  head — where in the image each frame reads. Summed over ``(h', w')`` and averaged over heads it is
  the image column of the shares; with the text's and the other frames' shares it sums to 1;
* ``readtokens`` — ``step/{i}/block/{l}/readtokens`` ``(rows, F', h', w', h', w')``: for every video
  token, its attention on each token of the image frame (mean over heads); a query region's map (a
  box in a frame) is its mean over the region (:func:`region_map`);
* ``words`` — ``step/{i}/block/{l}/words`` ``(rows, L, F', h', w')``: for each text token, every video
  token's attention on it (mean over heads): the words on the video (:func:`word_map` finds a
  word's tokens);
* ``concepts`` — ``step/{i}/block/{l}/concepts`` ``(rows, L, F', h', w')``: ConceptAttention's
  output-space variant fitted to joint attention: the dot product of each text token's attention
  output with each video token's (after the output projection). ConceptAttention (Helbling et al.,
  arXiv 2502.04320; its CogVideoX port ``concept_attention/cogvideox``) adds concept tokens that read
  ``[concepts, video]`` without being read; in CogVideoX the prompt's own tokens already sit in the
  joint attention, so their outputs serve as the concepts and nothing is added to the call.
  :func:`concept_map` softmaxes the named words' scores at every video token;
* ``readpos`` — ``step/{i}/block/{l}/readpos`` ``(rows, F', h', w', 3)``: for every video token, its
  mass on the image frame and the expected (row, column) in the image frame's token grid it reads
  from (mass-weighted over heads): the correspondence field of :func:`cogviz.readmaps.flow`.

Memory: the weights held at once are ``budget_bytes`` (512 MiB by default); what is kept per call
grows linearly in the tokens. At 49 x 480 x 720 on CogVideoX-5b-I2V (13 token frames of 30 x 45
tokens, 48 heads, 2 CFG rows) a read map is 2 x 48 x 13 x 1,350 x 4 B = 6.7 MB per block and step,
the read positions 2 x 17,550 x 3 x 4 B = 0.4 MB, the per-token maps 2 x 17,550 x 1,350 x 4 B =
190 MB (record those for a few blocks and steps); a chunk of 78 queries holds 2 x 48 x 78 x 17,776
weights (533 MB in fp32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["AttentionReader", "reader_hook", "READS", "flow", "argmax_flow", "region_map", "word_map", "concept_map",
           "head_table"]

READS = ("attention", "readmap", "readtokens", "readpos", "words", "concepts")  #: what a reader can record, by the point's last part


class AttentionReader:
    """CogVideoX's attention with the reductions of ``reads`` (see the module doc) computed beside it;
    ``on_record(what, tensor)`` gets each forward's result for each of ``reads``; ``self.last`` holds
    them too. ``grid``: the token grid (rows, columns) of a token frame."""

    def __init__(self, tokens_per_frame: int, grid: tuple[int, int] | None = None, reads=("attention",),
                 budget_bytes: int = 512 * 2**20, on_record=None):
        self.tokens_per_frame, self.grid, self.reads = tokens_per_frame, grid, tuple(reads)
        self.budget = budget_bytes
        self.on_record = on_record
        self.last: dict = {}

    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask=None, image_rotary_emb=None):
        from .inside import attention_inputs, attention_output

        q, k, v, text_len = attention_inputs(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0, is_causal=False)
        self.last = self.read(q, k, text_len)
        hidden, encoder = attention_output(attn, out, text_len)
        if "concepts" in self.reads:
            self.last["concepts"] = self.concepts(hidden, encoder)
        if self.on_record is not None:
            for what, x in self.last.items():
                self.on_record(what, x)
        return hidden, encoder

    @torch.no_grad()
    def concepts(self, hidden: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        """Output-space scores ``(B, L, F', h', w')``: each text token's attention output dotted with
        each video token's (``(B, N_video, D)`` and ``(B, L, D)`` after the output projection)."""
        b, n, _ = hidden.shape
        rows, cols = self.grid
        scores = torch.einsum("bld,bnd->bln", encoder.float(), hidden.float())
        return scores.reshape(b, encoder.shape[1], n // self.tokens_per_frame, rows, cols).cpu()

    @torch.no_grad()
    def read(self, q, k, text_len: int) -> dict:
        """The reductions of ``self.reads`` from queries and keys ``(B, heads, N, d)``."""
        b, h, n, d = q.shape
        tpf = self.tokens_per_frame
        n_frames = (n - text_len) // tpf
        group = torch.cat([torch.zeros(text_len, dtype=torch.long),  # key groups: 0 text, 1 + f frame f
                           1 + torch.arange(n - text_len) // tpf]).to(q.device)
        onehot = F.one_hot(group, 1 + n_frames).to(torch.float32)  # (N, 1 + F)
        image = slice(text_len, text_len + tpf)  # the image frame's keys: token frame 0
        pos = self._positions(q.device)  # (tpf, 2)
        qv, kf = q[:, :, text_len:].float(), k.float()
        nq = qv.shape[2]
        # every output allocated before the loop: no small tensor kept between the chunks' large ones
        # (interleaved, they fragment the heap: RSS then grows like tokens^2 on glibc, measured)
        shapes = {"attention": (b, h, nq, 1 + n_frames), "readmap": (b, h, nq, tpf), "readtokens": (b, nq, tpf),
                  "readpos": (b, nq, 3), "words": (b, nq, text_len)}
        out = {what: q.new_empty(shapes[what], dtype=torch.float32) for what in self.reads if what in shapes}
        chunk = max(1, self.budget // (b * h * n * 4))  # full 5b: 2 x 48 heads x 17,776 keys -> 78 queries
        for s in range(0, nq if out else 0, chunk):
            e = min(s + chunk, nq)
            w = torch.softmax(qv[:, :, s:e] @ kf.transpose(-1, -2) / d ** 0.5, dim=-1)  # (B, H, c, N)
            if "attention" in out:
                out["attention"][:, :, s:e] = w @ onehot  # (B, H, c, 1 + F)
            wi = w[..., image]  # (B, H, c, tpf)
            if "readmap" in out:
                out["readmap"][:, :, s:e] = wi
            if "readtokens" in out:
                out["readtokens"][:, s:e] = wi.mean(1)
            if "words" in out:
                out["words"][:, s:e] = w[..., :text_len].mean(1)
            if "readpos" in out:
                mass = wi.sum(-1)  # (B, H, c)
                out["readpos"][:, s:e, 0] = mass.mean(1)
                out["readpos"][:, s:e, 1:] = (wi @ pos).sum(1) / mass.sum(1).clamp_min(1e-12)[..., None]
        return {what: self._finish(what, x, b, h, n_frames) for what, x in out.items()}

    def _finish(self, what: str, x: torch.Tensor, b: int, h: int, n_frames: int) -> torch.Tensor:
        tpf = self.tokens_per_frame
        if what == "attention":  # (B, H, Nq, 1 + F) -> (B, F, 1 + F)
            return x.mean(1).view(b, n_frames, tpf, 1 + n_frames).mean(2).cpu()
        rows, cols = self.grid
        if what == "readmap":  # (B, H, Nq, tpf) -> (B, H, F, rows, cols): mean over each frame's queries
            return x.view(b, h, n_frames, tpf, tpf).mean(3).view(b, h, n_frames, rows, cols).cpu()
        if what == "words":  # (B, Nq, L) -> (B, L, F, rows, cols)
            return x.permute(0, 2, 1).reshape(b, -1, n_frames, rows, cols).cpu()
        if what == "readtokens":  # (B, Nq, tpf) -> (B, F, rows, cols, rows, cols)
            return x.view(b, n_frames, rows, cols, rows, cols).cpu()
        return x.view(b, n_frames, rows, cols, 3).cpu()  # readpos

    def _positions(self, device) -> torch.Tensor:
        """(tpf, 2) the (row, column) of each token of a frame, in token units."""
        if self.grid is None:
            return torch.zeros(self.tokens_per_frame, 2, device=device)
        rows, cols = self.grid
        r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        return torch.stack([r.flatten(), c.flatten()], -1).float().to(device)


def reader_hook(reads_by_layer: dict, tokens_per_frame: int, grid, on_record=None):
    """The :mod:`cogviz.hooks` declaration of attention readers: ``reads_by_layer`` maps a block to what
    it records there (``"attention"``, ``"readmap"``, ``"readpos"``); ``on_record(layer, what, x)``."""
    from .hooks import Hook

    def make(layer):
        return AttentionReader(tokens_per_frame, grid, reads_by_layer[layer],
                               on_record=None if on_record is None else (lambda what, x: on_record(layer, what, x)))

    return Hook("the attention recorder (attention_layers=, read maps)", "attention", tuple(sorted(reads_by_layer)),
                make, reads="attention", records=True)


def flow(readpos: torch.Tensor, *, min_mass: float = 0.0) -> torch.Tensor:
    """The correspondence field of read positions ``(..., F', h', w', 3)``: for every token, the arrow
    from the image-frame position it reads to its own position, ``(..., F', h', w', 2)`` as (down,
    right) in tokens; NaN where its mass on the image frame is below ``min_mass``."""
    rows, cols = readpos.shape[-3:-1]
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    here = torch.stack([r, c], -1).float()
    arrow = here - readpos[..., 1:]
    return torch.where((readpos[..., :1] >= min_mass), arrow, torch.full_like(arrow, float("nan")))


def region_map(readtokens: torch.Tensor, frame: int, box: tuple[int, int, int, int] | None = None) -> torch.Tensor:
    """Where a query region reads: the mean of per-token maps ``(..., F', h', w', h', w')`` over the
    tokens of token frame ``frame`` inside ``box`` (token cells ``(c0, r0, c1, r1)``, end-exclusive;
    None: the whole frame) -> ``(..., h', w')`` over the image frame's tokens."""
    x = readtokens[..., frame, :, :, :, :]
    if box is not None:
        c0, r0, c1, r1 = box
        x = x[..., r0:r1, c0:c1, :, :]
    return x.mean((-4, -3))


def argmax_flow(readtokens: torch.Tensor) -> torch.Tensor:
    """The correspondence field of per-token maps ``(..., F', h', w', h', w')``: for every token, the
    arrow from the image-frame token it reads most to its own position, ``(..., F', h', w', 2)`` as
    (down, right) in tokens (DiffTrack's reading of CogVideoX attention as correspondence)."""
    rows, cols = readtokens.shape[-2:]
    best = readtokens.flatten(-2).argmax(-1)  # (..., F', h', w')
    src = torch.stack([best // cols, best % cols], -1).float()
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.stack([r, c], -1).float() - src


def _word_tokens(tokenizer, prompt: str, word: str, n_text: int) -> list[int]:
    """The indices of ``word``'s tokens in ``prompt`` (case-insensitive, the tokenizer's word-start mark
    removed); a word the prompt does not hold is an error naming the closest word and all of them."""
    import difflib

    from .errors import CogvizError

    pieces = tokenizer.convert_ids_to_tokens(tokenizer(prompt, add_special_tokens=True).input_ids)
    clean = [p.replace("\u2581", "").replace("Ġ", "").lower() for p in pieces]
    idx = [i for i, p in enumerate(clean) if p == word.lower() and i < n_text]
    if not idx:
        known = [p for p in clean if p.isalnum()]
        close = difflib.get_close_matches(word.lower(), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CogvizError(f"word {word!r} is not a token of the prompt; {hint}its words: {known}")
    return idx


def word_map(words: torch.Tensor, tokenizer, prompt: str, word: str) -> torch.Tensor:
    """Where ``word`` of ``prompt`` sits on the video: the attention of every video token on the word's
    text tokens, summed over them, from one row of ``step/{i}/block/{l}/words`` ``(L, F', h', w')`` ->
    ``(F', h', w')``. A word the prompt does not hold is an error naming its words."""
    return words[..., _word_tokens(tokenizer, prompt, word, words.shape[-4]), :, :, :].sum(-4)


def concept_map(concepts: torch.Tensor, tokenizer, prompt: str, names) -> torch.Tensor:
    """ConceptAttention's maps in output space: for the words ``names`` of ``prompt``, from one row of
    ``step/{i}/block/{l}/concepts`` ``(L, F', h', w')``, each word's score (mean over its tokens)
    softmaxed over the named words at every video token -> ``(len(names), F', h', w')``, summing to 1
    over the words. Name at least two words (one word's softmax is 1 everywhere)."""
    from .errors import CogvizError

    names = [names] if isinstance(names, str) else list(names)
    if len(names) < 2:
        raise CogvizError(f"concept_map needs at least two words to compare (got {names}); e.g. the "
                          "prompt's colour and shape")
    scores = [concepts[..., _word_tokens(tokenizer, prompt, w, concepts.shape[-4]), :, :, :].mean(-4) for w in names]
    return torch.softmax(torch.stack(scores, -4), dim=-4)


def head_table(trace, *, role: str = "conditional"):
    """Per head, block and step, the later frames' attention on the image frame (its read maps summed
    over the image's tokens, mean over the later token frames), from every ``readmap`` the trace
    holds: a tidy DataFrame ``block, step, head, image_share`` (one row of the batch, by role)."""
    import re

    import pandas as pd

    from .errors import NotRecordedError

    rows = []
    for name in trace.names():
        m = re.fullmatch(r"step/(\d+)/block/(\d+)/readmap", name)
        if m:
            share = trace.row(name, role)[:, 1:].sum((-2, -1)).mean(-1)  # (heads,)
            rows += [dict(block=int(m.group(2)), step=int(m.group(1)), head=h, image_share=float(v))
                     for h, v in enumerate(share)]
    if not rows:
        raise NotRecordedError("no read map in this trace: record one, e.g. record=('step/*/block/*/readmap',)")
    return pd.DataFrame(rows).sort_values(["block", "step", "head"], ignore_index=True)
