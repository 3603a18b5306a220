"""One call's plan: every fact a generation derives from its settings, resolved once, before compute.

:func:`prepare` checks a call's settings against the model (size, frames, steps, guidance, prompt,
record patterns) and returns a frozen :class:`CallPlan`. The sampler, the ablations, the views and
the sweep read the call's geometry from it — size, frame and latent-frame counts, 1.5's padding,
the token grid, the channel split, the frame rate — and the layout of the batch rows from
:meth:`CallPlan.rows`; none of them derives those facts again. The rules behind them live in
:mod:`cogviz.family` (one home per rule); the plan is their value for one call.

>>> from cogviz.testing import tiny_random_pipeline
>>> plan = prepare(tiny_random_pipeline(), None, "a red circle", Settings(steps=2, guidance=6.0))
>>> plan.num_frames, plan.n_latent, plan.token_grid, plan.tokens_per_frame, plan.channels
(9, 3, (2, 2), 4, 16)
>>> plan.rows(image_free=True)
('unconditional', 'conditional', 'image_free')
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import CogvizError
from .family import (
    SPATIAL,
    Family,
    channels,
    check_frame_count,
    check_size,
    default_frames,
    family_of,
    positions,
    token_grid,
)
from .family import resolve_size as family_resolve_size
from .fit import FittedImage
from .points import DEFAULT_RECORD, check_patterns, point_names, row_roles

__all__ = ["Settings", "CallPlan", "Setup", "prepare", "validate", "resolve_size", "attention_layers"]


@dataclass(frozen=True)
class Settings:
    """One call's settings, carried unchanged through ``generate``, ``generate_variants`` and a sweep.

    ``num_frames`` None: the model's default; ``size`` None: the model's size (or a fitted image's
    on models that take any size); ``record``: point names or wildcard patterns to keep;
    ``attention_layers``: block indices (or ``"all"``) whose attention shares are recorded;
    ``max_record_bytes``: the most the recordings of a call may copy to CPU memory, estimated from
    the call's shapes before any compute (:mod:`cogviz.budget`; None: half the memory available).
    """

    negative_prompt: str = ""
    num_frames: int | None = None
    steps: int = 50
    guidance: float = 6.0      # text CFG scale; <= 1 disables CFG (one row per video)
    dynamic_cfg: bool = False
    seed: int = 0
    fit: str = "crop"
    size: tuple[int, int] | None = None
    record: tuple[str, ...] = DEFAULT_RECORD
    decode_video: bool = True
    attention_layers: Any = None
    max_record_bytes: int | None = None  # what recording may copy to CPU memory; None: half the available

    def __post_init__(self):
        record = self.record
        object.__setattr__(self, "record", (record,) if isinstance(record, str) else tuple(record))

    def replace(self, **changes) -> Settings:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CallPlan:
    """What a call resolved before any compute (see the module doc). Ablations are checked and
    compiled against it; traces record :meth:`to_meta`."""

    pipe: Any
    height: int
    width: int
    steps: int
    fit: str
    do_cfg: bool
    num_frames: int = 0
    settings: Settings | None = None

    # -- derived, each from its rule in cogviz.family ----------------------------------------------
    @property
    def family(self) -> Family:
        return family_of(self.pipe)

    @property
    def channels(self) -> int:
        """Where the image channels start in ``step/{i}/input`` (16: after z_t's)."""
        return channels(self.pipe)

    @property
    def n_latent(self) -> int:
        """Latent frames the transformer reads (1.5's padding included)."""
        return self.family.latent_frames(self.num_frames)[0]

    @property
    def pad(self) -> int:
        """Padding latent frames 1.5 adds in front (dropped before decoding)."""
        return self.family.latent_frames(self.num_frames)[1]

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.height // SPATIAL, self.width // SPATIAL

    @property
    def token_grid(self) -> tuple[int, int]:
        """Tokens per token frame, as (rows, columns): 2x2 latent cells a token."""
        return token_grid(self.pipe, self.height, self.width)

    @property
    def tokens_per_frame(self) -> int:
        return self.token_grid[0] * self.token_grid[1]

    @property
    def token_frames(self) -> int:
        return self.family.token_frame(self.n_latent)

    @property
    def blocks(self) -> int:
        return len(self.pipe.transformer.transformer_blocks)

    @property
    def fps(self) -> int:
        from .models import fps_of

        return fps_of(self.pipe)

    @property
    def positions(self) -> str:
        """The positional embedding the video tokens get (:func:`cogviz.family.positions`)."""
        return positions(self.pipe, self.num_frames)

    @property
    def attention_layers(self) -> list[int]:
        """The blocks whose attention shares this call records."""
        return attention_layers(self.pipe, self.settings.attention_layers if self.settings else None)

    def rows(self, image_free: bool = False) -> tuple[str, ...]:
        """One variant's batch rows by role (:func:`cogviz.points.row_roles`)."""
        return row_roles(self.do_cfg, image_free)

    def to_meta(self) -> dict:
        """The plan's facts as JSON-able metadata (``trace.meta["plan"]``)."""
        return dict(height=self.height, width=self.width, num_frames=self.num_frames, n_latent=self.n_latent,
                    pad=self.pad, token_grid=list(self.token_grid), tokens_per_frame=self.tokens_per_frame,
                    token_frames=self.token_frames, channels=self.channels, fps=self.fps, family=self.family.name,
                    positions=self.positions, steps=self.steps, cfg=self.do_cfg)


Setup = CallPlan  #: the name earlier releases used


def validate(pipe, *, num_frames: int, steps: int, guidance: float, prompt: str, height: int, width: int) -> None:
    """Check a generation's settings before any compute; each error names the rule and the fix."""
    check_frame_count(pipe, num_frames)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 1000:
        raise CogvizError(f"steps={steps!r}: use an integer from 1 to 1000 (50 is the usual choice)")
    if not 0.0 <= float(guidance) <= 50.0:
        raise CogvizError(f"guidance={guidance!r}: use a value in [0, 50] (1 disables CFG; 6 is the default)")
    check_size(pipe, height, width)
    if not isinstance(prompt, str) or not prompt.strip():
        raise CogvizError("prompt is empty: describe the motion, e.g. 'a red circle moves left'")
    n = len(pipe.tokenizer(prompt, add_special_tokens=True).input_ids)
    limit = int(pipe.transformer.config.max_text_seq_length)
    if n > limit:
        raise CogvizError(f"prompt has {n} tokens; this model reads {limit} (the first {limit - 1} and the end "
                          "token would be kept): shorten it")


def resolve_size(pipe, image=None, size=None) -> tuple[int, int]:
    """The (height, width) a generation runs at (:func:`cogviz.family.resolve_size`): ``size``, else a
    fitted image's size where the model accepts any size (CogVideoX 1.5), else the model's sample size."""
    return family_resolve_size(pipe, image.size if isinstance(image, FittedImage) else None, size)


def attention_layers(pipe, layers) -> list[int]:
    """``attention_layers=`` as block indices (``"all"``/True: every block; None: none)."""
    if not layers:
        return []
    n = len(pipe.transformer.transformer_blocks)
    return list(range(n)) if layers in (True, "all") else [int(i) for i in layers]


def prepare(pipe, image, prompt: str, settings: Settings) -> CallPlan:
    """Resolve and check a call's settings before any compute (size, frames, steps, guidance,
    prompt, record patterns) and return its :class:`CallPlan`."""
    from .inside import check_blocks

    height, width = resolve_size(pipe, image, settings.size)
    num_frames = settings.num_frames or default_frames(pipe)
    validate(pipe, num_frames=num_frames, steps=settings.steps, guidance=settings.guidance, prompt=prompt,
             height=height, width=width)
    if isinstance(image, FittedImage) and image.size != (height, width):
        raise CogvizError(f"the fitted image is {image.size[0]}x{image.size[1]} but this model needs "
                          f"{height}x{width}: fit_image(image, ({height}, {width}))")
    layers = attention_layers(pipe, settings.attention_layers)
    check_blocks(pipe, layers, "attention_layers")
    check_patterns(settings.record, point_names(settings.steps, blocks=len(pipe.transformer.transformer_blocks),
                                                attention_layers=layers), what="record pattern")
    return CallPlan(pipe, height, width, settings.steps, settings.fit, settings.guidance > 1.0, num_frames, settings)
