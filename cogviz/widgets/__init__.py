"""Thin ipywidgets views over cogviz's plain functions."""
from .image_fitter import ImageFitter

__all__ = ["ImageFitter"]
