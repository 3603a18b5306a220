"""One error hierarchy for cogviz. Every message says what was received, the rule, and the fix."""
from __future__ import annotations

__all__ = ["names_in", "one_line", "CogvizError", "ImageLoadError", "FetchError", "ImageTooLargeError", "FitError", "PresetError",
           "ModelLoadError", "OutOfMemoryError", "AblationError", "SpeedPresetError", "PointError",
           "NotRecordedError", "SweepError", "ViewError"]


def names_in(value, accepted: tuple, label: str, error: type) -> list[str]:
    """``value`` (None, a name, or names) as a list, each checked against ``accepted``; a bad one
    raises ``error`` naming ``label``, what was received and what is accepted."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    bad = [v for v in items if v not in accepted]
    if bad:
        raise error(f"{label}={value!r}: unknown {bad}; accepted are {accepted} (a name or a list of names)")
    return items


def one_line(e: BaseException, limit: int = 400) -> str:
    """The line a view shows for an error: a cogviz error's message as written; any other error (a
    full disk, a Ray failure, memory) prefixed by its type, so a widget or the CLI never stays silent."""
    text = (str(e).strip().splitlines() or [""])[0][:limit]
    return text if isinstance(e, CogvizError) else f"unexpected {type(e).__name__}: {text or 'no message'}"


class CogvizError(ValueError):
    """Base of every error cogviz raises on purpose (a ``ValueError``, so callers may catch either)."""


class ImageLoadError(CogvizError):
    """A source could not be turned into an RGB image (unknown kind, corrupt, empty, not an image)."""


class FetchError(ImageLoadError):
    """An http(s) source failed: bad scheme, HTTP error, timeout, DNS, size cap, content type."""


class ImageTooLargeError(ImageLoadError):
    """The image has more pixels than the configured cap (a decompression-bomb guard)."""


class FitError(CogvizError):
    """Bad arguments to :func:`cogviz.fit_image` (size, mode, focus, fill)."""


class PresetError(CogvizError):
    """An unknown preset name, or a size a preset's rules do not allow."""


class ModelLoadError(CogvizError):
    """A model could not be loaded (missing weights, offline, wrong folder)."""


class OutOfMemoryError(CogvizError, MemoryError):
    """The accelerator ran out of memory during a generation; the message names cogviz's memory options."""


class AblationError(CogvizError):
    """A bad ablation: unknown kind, a wrong type, or a parameter outside its accepted range."""


class SpeedPresetError(CogvizError):
    """An unknown or conflicting speed preset, one this machine cannot run, or a recording that a
    preset would make wrong (interventions on reused steps, attention that a preset bypasses)."""


class PointError(CogvizError):
    """A point name, record pattern or CFG half that matches nothing in a call; the message names the
    closest valid names. Raised before any compute."""


class NotRecordedError(PointError, KeyError):
    """A name asked of a :class:`~cogviz.points.Trace` that the trace did not record (also a ``KeyError``)."""

    __str__ = Exception.__str__  # the message as written, not KeyError's repr of it


class SweepError(CogvizError):
    """A bad sweep configuration or results directory."""


class ViewError(CogvizError):
    """A view (a picture in :mod:`cogviz.viz`, the latent previews and analyses, a widget) was given
    something it cannot show: the wrong shape, a trace without the recording it needs, an unknown
    option. The message names what it got and what it takes."""
