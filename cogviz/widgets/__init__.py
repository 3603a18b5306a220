"""Thin ipywidgets views over cogviz's plain functions."""
from .image_fitter import ImageFitter

__all__ = ["ImageFitter", "GenerateUI", "LatentExplorer", "AblationLab"]


def __getattr__(name):
    # GenerateUI needs torch and a model; ImageFitter alone stays light.
    if name == "GenerateUI":
        from .generate_ui import GenerateUI

        return GenerateUI
    if name == "LatentExplorer":
        from .latent_explorer import LatentExplorer

        return LatentExplorer
    if name == "AblationLab":
        from .ablation_lab import AblationLab

        return AblationLab
    raise AttributeError(f"module 'cogviz.widgets' has no attribute {name!r}")
