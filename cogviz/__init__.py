"""cogviz: see, run and test the image conditioning of CogVideoX image-to-video.

The public names, in the order of the data flow::

    load_image -> fit_image -> load_pipeline -> generate (encode -> concatenate -> denoise -> decode)
"""
from .errors import CogvizError, FetchError, FitError, ImageLoadError, ImageTooLargeError, ModelLoadError, PresetError
from .image import load_image
from .fit import FitReport, FitSource, FittedImage, fit_image
from .presets import PRESETS, Preset, best_size, get_preset

__version__ = "0.1.0"
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
