"""cogviz: see, run and test the image conditioning of CogVideoX image-to-video.

The public names, in the order of the data flow::

    load_image -> fit_image -> load_pipeline -> generate (encode -> concatenate -> denoise -> decode)
"""
from .errors import CogvizError, FetchError, FitError, ImageLoadError, ImageTooLargeError, ModelLoadError, PresetError
from .image import load_image
from .fit import FitReport, FitSource, FittedImage, fit_image
from .presets import PRESETS, Preset, best_size, get_preset

__version__ = "0.1.0"


def _quiet_torchao_import_notes() -> None:
    """torchao (the ``int8``/``fp8`` speed presets), when installed, is imported by diffusers with
    any model class, and on a CPU-only torch it logs that its CUDA kernels cannot load, plus torch
    deprecation notes it triggers. None of that is about cogviz's work: these exact notes are
    filtered from those loggers; everything else they log still shows."""
    import logging

    notes = ("Failed to load", "register_constant() on Enum subclasses", "Unable to import `torchao` Tensor")

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            msg = record.getMessage()
            return not any(n in msg for n in notes)

    for name in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"):
        logging.getLogger(name).addFilter(_Filter())


_quiet_torchao_import_notes()
__all__ = [
    "load_image", "fit_image", "FitSource", "FittedImage", "FitReport", "load_pipeline", "generate", "Generation", "Trace", "encode_image", "decode",
    "Preset", "PRESETS", "get_preset", "best_size",
    "CogvizError", "ImageLoadError", "FetchError", "ImageTooLargeError", "FitError", "PresetError",
    "ModelLoadError",
]


def __getattr__(name):
    # torch and diffusers load only when a model is asked for: `import cogviz` stays fast for images.
    if name == "load_pipeline":
        from .models import load_pipeline

        return load_pipeline
    if name in ("generate", "Generation", "Trace"):
        from . import sampler

        return getattr(sampler, name)
    if name in ("encode_image", "decode"):
        from . import encode

        return getattr(encode, name)
    raise AttributeError(f"module 'cogviz' has no attribute {name!r}")
