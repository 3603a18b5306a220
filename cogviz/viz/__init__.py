"""Pure renderers: they return pictures, arrays or PNG bytes and never display anything.

Every renderer returns a :class:`Picture`: a uint8 ``(H, W, 3)`` numpy array that shows itself as a
PNG wherever IPython displays it (``_repr_png_``) - inline, JupyterLab, the classic notebook,
exported HTML - whatever state the kernel is in: nothing relies on pyplot having been touched.
Matplotlib figures (``stats_figure``, ``plot``-style renderers) are drawn with the Agg canvas into a
``Picture`` too, with the figure kept on ``.figure`` for editing.

The renderers live in :mod:`.picture` (the picture type, image renderers), :mod:`.latents` (latent
renderers), :mod:`.plots` (metric plots) and :mod:`.maps` (read maps, arrows, change maps); PNG transport for live widgets is in
:mod:`cogviz.widgets.transport`.
"""
from __future__ import annotations

from .latents import FLAT_GREY, NORMS, channel_mosaic, denoising_film, frames_overview, stats_figure, zero_colour
from .maps import arrows_picture, change_map, map_over_frames, read_map_picture
from .picture import (
                      Picture,
                      colourise,
                      figure_png,
                      fit_overlay,
                      frame_strip,
                      heatmap,
                      picture,
                      rgb_tiles,
                      thumbnail,
                      to_png,
)
from .plots import anchor_decay, effect_curves, fidelity_motion, forest

__all__ = ["read_map_picture", "map_over_frames", "arrows_picture", "change_map", "Picture", "picture", "to_png", "fit_overlay", "thumbnail", "NORMS", "FLAT_GREY", "zero_colour", "channel_mosaic",
           "frames_overview", "rgb_tiles", "denoising_film", "stats_figure", "figure_png", "heatmap", "colourise",
           "frame_strip", "anchor_decay", "fidelity_motion", "forest", "effect_curves"]
