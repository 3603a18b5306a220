"""One home for the rules of a CogVideoX model family: frame counts, latent frames and 1.5's padding,
the latent scaling (and 1.5's inversion of it), the channel split, and which sizes a model takes.

Everything that needs one of these rules reads it here: validation, encoding, presets, ablations,
views and widgets. A new family lands as one more :class:`Family`.

========  ==========================  ======================  =================================
family    frames                      latent scaling          tokens
========  ==========================  ======================  =================================
``1.0``   8k+1 (49; the toy 17)       ``z * scaling``         2x2 patches, one latent frame each
``1.5``   16k+1 (81)                  ``z / scaling`` (sic)   2x2 patches, two latent frames each
                                                              (a padding frame in front if odd)
========  ==========================  ======================  =================================

Why 8k+1 for both VAEs: the VAE compresses time 4x (``(F - 1) / 4 + 1`` latent frames) and its
decoder only gives back ``F`` frames for an odd latent count (13 -> 49, 5 -> 17; an even count such
as 4 decodes to 16 frames, not 13). 1.5's transformer reads two latent frames per token, so its
latent count is padded to even and its frame rule doubles.

>>> FAMILIES["1.0"].latent_frames(49)
(13, 0)
>>> FAMILIES["1.5"].latent_frames(81)
(22, 1)
>>> FAMILIES["1.0"].nearest_frames(10)
(9, 17)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import CogvizError

if TYPE_CHECKING:  # the rules are plain data: importing them (presets, the CLI's parser) never loads torch
    import torch

__all__ = ["Family", "FAMILIES", "family_of", "channels", "default_frames", "max_frames", "check_frame_count",
           "positions", "token_frames", "token_frame", "token_grid",
           "check_size", "default_size", "resolve_size", "accepts_any_size", "TEMPORAL", "SPATIAL"]

TEMPORAL = 4  #: frames per latent frame in every CogVideoX VAE (the first frame has its own)
SPATIAL = 8   #: pixels per latent cell in every CogVideoX VAE


@dataclass(frozen=True)
class Family:
    """The rules one CogVideoX family imposes (plain data; see the module doc)."""

    name: str
    frame_multiple: int          # valid frame counts are frame_multiple * k + 1
    patch_size_t: int            # latent frames per token (1.5 pads the latent count to a multiple)
    invert_scale_latents: bool   # 1.5 divides the image latent by the VAE's scaling factor
    ofs: float | None = None     # 1.5's constant ``ofs`` embedding input (None: the family has none)
    longest: int = 49            # the most frames the family's checkpoints were released for

    # -- frames ----------------------------------------------------------------------------------
    def valid_frames(self, n) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n >= 1 and (n - 1) % self.frame_multiple == 0

    def nearest_frames(self, n: int) -> tuple[int, int]:
        """The valid frame counts just below and above ``n``."""
        k = self.frame_multiple
        lo = max(1, (int(n) - 1) // k * k + 1) if int(n) > 0 else 1
        return lo, lo + k

    def frame_counts(self, up_to: int) -> list[int]:
        """Every valid frame count from 1 to ``up_to``."""
        return list(range(1, up_to + 1, self.frame_multiple))

    def check_frames(self, n) -> None:
        if not self.valid_frames(n):
            lo, hi = self.nearest_frames(n if isinstance(n, int) and n > 0 else 1)
            raise CogvizError(f"num_frames={n!r}: CogVideoX {self.name} models need {self.frame_multiple}k+1 frames "
                              f"(other counts decode to a different length); nearest valid: {lo} or {hi}")

    def latent_frames(self, num_frames: int) -> tuple[int, int]:
        """(latent frames the transformer sees, padding frames added in front for 1.5)."""
        f = (num_frames - 1) // TEMPORAL + 1
        pad = 0 if f % self.patch_size_t == 0 else self.patch_size_t - f % self.patch_size_t
        return f + pad, pad

    def token_frame(self, latent_frame: int) -> int:
        """The token frame that holds latent frame ``latent_frame`` (1.5: two latent frames a token)."""
        return int(latent_frame) // self.patch_size_t

    # -- latents ---------------------------------------------------------------------------------
    def scale_latent(self, z: torch.Tensor, scaling: float) -> torch.Tensor:
        """The VAE's latent as the transformer reads it, as diffusers computes it (1.5 divides by the
        factor, citing a training bug: "forgot to multiply"; the official SAT sampler feeds the
        unscaled latent instead, zai-org/CogVideo#605, #761; the same rounding as diffusers)."""
        return (1 / scaling) * z if self.invert_scale_latents else scaling * z

    def latent_gain(self, scaling: float) -> float:
        """What :meth:`scale_latent` multiplies by."""
        return 1 / scaling if self.invert_scale_latents else scaling

    def video_latent(self, z_img: torch.Tensor, scaling: float) -> torch.Tensor:
        """An image latent as the transformer reads it (``z_img``'s scaling) -> the same latent in the
        video latents' scaling (``z_t``, decoded as ``z / scaling``): equal on 1.0, ``scaling ** 2``
        times on 1.5, whose image latent is divided where the video's is multiplied."""
        return z_img * (scaling / self.latent_gain(scaling))


FAMILIES: dict[str, Family] = {
    "1.0": Family("1.0", frame_multiple=8, patch_size_t=1, invert_scale_latents=False),
    # 1.5's model card: "5 seconds or 10 seconds" at 16 fps, i.e. 81 or 161 frames
    "1.5": Family("1.5", frame_multiple=16, patch_size_t=2, invert_scale_latents=True, ofs=2.0, longest=161),
}


def family_of(pipe) -> Family:
    """The family of a loaded pipeline (or a transformer config), read from its transformer:
    a temporal patch size means 1.5."""
    cfg = pipe.transformer.config if hasattr(pipe, "transformer") else pipe
    return FAMILIES["1.5" if getattr(cfg, "patch_size_t", None) else "1.0"]


def channels(pipe) -> int:
    """Where the image channels start in the transformer's input (16: after z_t's)."""
    return pipe.transformer.config.in_channels // 2


def default_frames(pipe) -> int:
    """The frame count a call without ``num_frames`` runs at: the model's own (its transformer's
    ``sample_frames``: 49 for 5b-I2V, 81 for 1.5, 17 for the toy)."""
    return int(pipe.transformer.config.sample_frames)


def max_frames(pipe) -> int:
    """The most frames a call may ask of this model. With learned positional embeddings (5b-I2V, the
    toy, the tiny 1.0) the learned table covers the transformer's ``sample_frames`` and no more;
    otherwise the family's longest released length (1.0: 49; 1.5: 161)."""
    cfg = pipe.transformer.config
    if cfg.use_learned_positional_embeddings:
        return int(cfg.sample_frames)
    return max(int(cfg.sample_frames), family_of(pipe).longest)


def check_frame_count(pipe, n) -> None:
    """``n`` frames: the family's ``k * multiple + 1`` rule and the model's limit (:func:`max_frames`),
    refused before compute with the nearest valid choice."""
    family = family_of(pipe)
    family.check_frames(n)
    top = max_frames(pipe)
    if n > top:
        why = ("its learned positional embeddings cover" if pipe.transformer.config.use_learned_positional_embeddings
               else f"CogVideoX {family.name} checkpoints were released for at most")
        raise CogvizError(f"num_frames={n}: {why} {top} frames; use at most {top} (valid counts: "
                          f"{family.frame_counts(top)[-3:]})")


def positions(pipe, num_frames: int) -> str:
    """Which positional embedding a call at ``num_frames`` adds to the video tokens. diffusers'
    ``CogVideoXPatchEmbed.forward`` uses the learned table only at exactly ``sample_frames`` frames and
    swaps in a sin-cos table for any other count: ``"learned"``, ``"sincos"`` (that substitute) or
    ``"rotary"`` (1.5: rotary positions only)."""
    cfg = pipe.transformer.config
    if not cfg.use_learned_positional_embeddings:
        return "rotary"
    return "learned" if int(num_frames) == int(cfg.sample_frames) else "sincos"


def token_frames(pipe, n_latent: int) -> int:
    """Token frames of a video of ``n_latent`` latent frames (1.5 reads two latent frames a token)."""
    return family_of(pipe).token_frame(n_latent)


def token_grid(pipe, height: int, width: int) -> tuple[int, int]:
    """Video tokens per token frame, as (rows, columns), of a ``height x width`` video: one token per
    ``patch_size x patch_size`` latent cells, 8 pixels a cell."""
    p = pipe.transformer.config.patch_size
    return height // SPATIAL // p, width // SPATIAL // p


def token_frame(pipe, latent_frame: int) -> int:
    """The token frame that holds latent frame ``latent_frame``."""
    return family_of(pipe).token_frame(latent_frame)


def check_size(pipe, height: int, width: int) -> None:
    """Height and width this model takes: multiples of 16; the learned positional embeddings of 1.0
    fix one size; 1.5's rotary table covers at most its sample size."""
    cfg = pipe.transformer.config
    sample = (cfg.sample_height * SPATIAL, cfg.sample_width * SPATIAL)
    if height % 16 or width % 16:
        raise CogvizError(f"size {height}x{width}: height and width must be multiples of 16")
    if cfg.use_learned_positional_embeddings and (height, width) != sample:
        raise CogvizError(f"size {height}x{width}: this model's learned positional embeddings fix it at "
                          f"{sample[0]}x{sample[1]}; fit the image with fit_image first")
    if cfg.patch_size_t is not None and (height > sample[0] or width > sample[1]):
        raise CogvizError(f"size {height}x{width}: this model's rotary position table covers at most "
                          f"{sample[0]}x{sample[1]}; fit the image to a size within it")


def default_size(pipe) -> tuple[int, int]:
    cfg = pipe.transformer.config
    return cfg.sample_height * SPATIAL, cfg.sample_width * SPATIAL


def resolve_size(pipe, fitted_size: tuple[int, int] | None = None, size=None) -> tuple[int, int]:
    """The (height, width) a call runs at: ``size``, else a fitted image's size (``fitted_size``)
    where the model accepts any size (CogVideoX 1.5), else the model's sample size."""
    if size is not None:
        return int(size[0]), int(size[1])
    if fitted_size is not None and accepts_any_size(pipe):
        return tuple(fitted_size)
    return default_size(pipe)


def accepts_any_size(pipe) -> bool:
    """True where the model takes sizes other than its sample size (no learned positional embeddings: 1.5)."""
    return not pipe.transformer.config.use_learned_positional_embeddings
