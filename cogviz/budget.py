"""Memory before compute: the bytes a call's ``record`` patterns will copy to the CPU, estimated
from the call's shapes alone, and refused above a budget before anything runs.

Every recorded tensor is a CPU copy (``Trace.add``), so a pattern such as
``step/*/block/*/hidden`` on CogVideoX-5b-I2V at 50 steps (2 rows x 17,550 video tokens x 3072
x 2 bytes = 216 MB per block and step, x 42 blocks x 50 steps) asks for about 450 GB; without
this check the kernel is killed with no error.

>>> from cogviz.testing import tiny_random_pipeline
>>> pipe = tiny_random_pipeline()
>>> costs = record_costs(pipe, ["step/*/input"], height=32, width=32, num_frames=9, steps=4, cfg=True)
>>> costs["step/*/input"]  # 4 steps x 2 rows x 3 latent frames x 32 channels x 4 x 4 x 4 bytes
49152
"""
from __future__ import annotations

import fnmatch

from .errors import CogvizError
from .family import SPATIAL, family_of, token_frames, token_grid
from .points import point_names, row_roles

__all__ = ["DEFAULT_SHARE", "default_budget", "record_costs", "check_record_budget"]

#: the share of the memory available now that a call may record by default
DEFAULT_SHARE = 0.5


def default_budget() -> int:
    """Half of the memory available now (psutil), the default ``max_record_bytes``."""
    import psutil

    return int(psutil.virtual_memory().available * DEFAULT_SHARE)


def _sizes(pipe, *, height: int, width: int, num_frames: int, cfg: bool, rows: int) -> dict[str, int]:
    """Bytes of one recorded tensor of each point, from the call's shapes (no compute)."""
    import torch

    tc = pipe.transformer.config
    fam = family_of(pipe)
    n_latent = fam.latent_frames(num_frames)[0]  # 1.5's padding included
    h, w = height // SPATIAL, width // SPATIAL
    esize = torch.empty((), dtype=pipe.transformer.dtype).element_size()
    n_tokens = token_frames(pipe, n_latent)
    grid_rows, grid_cols = token_grid(pipe, height, width)
    tokens = n_tokens * grid_rows * grid_cols
    latent = n_latent * tc.out_channels * h * w * esize
    return {
        "image.fitted": height * width * 3,
        "image.pixels": 3 * height * width * esize,
        "z_img": latent,
        "prompt_embeds": (2 if cfg else 1) * tc.max_text_seq_length * tc.text_embed_dim * esize,
        "step/{i}/z_t": latent,
        "step/{i}/input": rows * n_latent * tc.in_channels * h * w * esize,
        "step/{i}/pred": latent // esize * 4,  # guidance runs in float32
        "step/{i}/x0": latent // esize * 4,
        "step/{i}/block/{l}/hidden": rows * tokens * tc.num_attention_heads * tc.attention_head_dim * esize,
        "step/{i}/block/{l}/attention": rows * n_tokens * (1 + n_tokens) * 4,
        "step/{i}/block/{l}/lens": rows * n_latent * tc.out_channels * h * w * 4,
        "step/{i}/block/{l}/readmap": rows * tc.num_attention_heads * n_tokens * grid_rows * grid_cols * 4,
        "step/{i}/block/{l}/readpos": rows * tokens * 3 * 4,
        "step/{i}/block/{l}/readtokens": rows * tokens * grid_rows * grid_cols * 4,
        "step/{i}/block/{l}/words": rows * tokens * tc.max_text_seq_length * 4,
        "step/{i}/block/{l}/concepts": rows * tokens * tc.max_text_seq_length * 4,
        "latents.final": latent,
        "frames": num_frames * height * width * 3,
    }


def _template(name: str) -> str:
    """``step/3/block/1/hidden`` -> ``step/{i}/block/{l}/hidden``."""
    parts = name.split("/")
    if parts[0] == "step":
        parts[1] = "{i}"
        if len(parts) > 3 and parts[2] == "block":
            parts[3] = "{l}"
    return "/".join(parts)


def record_costs(pipe, patterns, *, height: int, width: int, num_frames: int, steps: int, cfg: bool,
                 image_free: bool = False, attention_layers=()) -> dict[str, int]:
    """The bytes each pattern of ``patterns`` records in one variant's trace (a point matched by two
    patterns counts once, under the first), and under ``"attention_layers"`` what that option
    records besides: ``{pattern: bytes}``. The rows are the variant's (:func:`~cogviz.points.row_roles`)."""
    layers = list(attention_layers)
    sizes = _sizes(pipe, height=height, width=width, num_frames=num_frames, cfg=cfg,
                   rows=len(row_roles(cfg, image_free)))
    names = point_names(steps, blocks=len(pipe.transformer.transformer_blocks), attention_layers=layers)
    costs, seen = {}, set()
    for pattern in patterns:
        matched = [n for n in names if n not in seen and fnmatch.fnmatchcase(n, pattern)]
        seen.update(matched)
        costs[pattern] = sum(sizes[_template(n)] for n in matched)
    extra = [n for n in names if n.endswith("/attention") and n not in seen]
    if extra:
        costs["attention_layers"] = len(extra) * sizes["step/{i}/block/{l}/attention"]
    return costs


def _gb(n: int) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def check_record_budget(costs_per_variant: list[dict[str, int]], budget: int | None) -> int:
    """Raise :class:`~cogviz.errors.CogvizError` when the variants' recordings together exceed
    ``budget`` bytes (None: :func:`default_budget`), naming the total, the pattern that costs most
    and the fix; returns the total."""
    total = sum(sum(c.values()) for c in costs_per_variant)
    limit = default_budget() if budget is None else int(budget)
    if total > limit:
        merged: dict[str, int] = {}
        for c in costs_per_variant:
            for k, v in c.items():
                merged[k] = merged.get(k, 0) + v
        worst = max(merged, key=merged.get)
        raise CogvizError(f"this call would record {_gb(total)} ({total} bytes) to CPU memory, over "
                          f"max_record_bytes={limit} ({_gb(limit)}{', half the memory available' if budget is None else ''}); "
                          f"{worst!r} costs most ({_gb(merged[worst])}): record fewer steps or blocks "
                          "(e.g. 'step/49/block/*/hidden' or 'step/*/block/20/hidden'), or raise max_record_bytes")
    return total
