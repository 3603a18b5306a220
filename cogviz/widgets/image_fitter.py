"""``ImageFitter``: choose a source, a preset and a fit mode; see what the fit keeps and costs.

A thin view: a new source goes through :func:`cogviz.load_image` into a :class:`cogviz.FitSource`,
and every control change calls :func:`cogviz.fit_image` on it and shows the result with
:func:`cogviz.viz.fit_overlay`. The ``FitSource`` keeps a working copy at twice the size that
covers the target (a big JPEG decoded straight at a reduced DCT scale), so a change on a
12-megapixel photo refits in milliseconds; the report still describes the full-resolution source,
and ``fitted`` is that fit at full quality (Lanczos from 2x oversampled pixels: above 40 dB PSNR
against the same fit of the full-resolution decode, tested). The current :class:`~cogviz.FittedImage` is the
observable trait ``fitted``, so later widgets can chain to it::

    fitter = ImageFitter()
    fitter.observe(lambda change: print(change.new.report.summary()), "fitted")
"""
from __future__ import annotations

import html

import ipywidgets as W
import traitlets

from ..errors import one_line
from ..fit import FitSource, FittedImage, fit_image
from ..presets import PRESETS
from ..samples import SAMPLES, load_sample
from ..viz import fit_overlay, thumbnail, to_png

__all__ = ["ImageFitter"]

_FILLS = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "edge": "edge", "blur": "blur"}


#: Jupyter's kernel channel carries messages of up to 10 MiB: a larger upload never reaches the
#: kernel (and nothing says so), so the widget says it beside the button
UPLOAD_NOTE = "uploads up to 10 MiB; a larger photo: give its path below"


class ImageFitter(W.VBox):
    """Source chooser + preset + mode + focus/fill, the source with the fit drawn on it, the result."""

    fitted = traitlets.Instance(FittedImage, allow_none=True, help="the current fit (read-only use)")
    error = traitlets.Unicode("", help="the last error message, '' when the last action worked")

    def __init__(self, image=None, *, preset: str = "CogVideoX-5b-I2V", mode: str = "crop",
                 sample: str = "lighthouse", preview_side: int = 320):
        self._side = preview_side
        self._source = None
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="Upload",
                                   tooltip=UPLOAD_NOTE)
        self.location = W.Text(placeholder="path or http(s) URL, then Enter", continuous_update=False,
                               layout=W.Layout(width="320px"))
        self.sample = W.Dropdown(options=["(none)"] + list(SAMPLES), value=sample if image is None else "(none)",
                                 description="Sample")
        self.preset = W.Dropdown(options=list(PRESETS), value=preset, description="Preset")
        self.mode = W.ToggleButtons(options=["crop", "pad", "stretch"], value=mode, description="Mode")
        self.focus_x = W.FloatSlider(0.5, min=0, max=1, step=0.01, description="Focus x", continuous_update=False)
        self.focus_y = W.FloatSlider(0.5, min=0, max=1, step=0.01, description="Focus y", continuous_update=False)
        self.fill = W.Dropdown(options=list(_FILLS), value="black", description="Fill")
        self.source_view = W.Image(format="png", layout=W.Layout(max_width=f"{preview_side}px"))
        self.result_view = W.Image(format="png", layout=W.Layout(max_width=f"{preview_side}px"))
        self.report_view = W.HTML()
        self.message = W.HTML()

        controls = W.VBox([W.HBox([self.sample, self.upload, W.HTML(f"<small>{UPLOAD_NOTE}</small>")]), self.location, self.preset, self.mode,
                           W.HBox([self.focus_x, self.focus_y]), self.fill])
        views = W.HBox([W.VBox([W.HTML("<b>source</b> (kept region outlined)"), self.source_view]),
                        W.VBox([W.HTML("<b>fitted</b>"), self.result_view])])
        super().__init__([controls, views, self.report_view, self.message])

        self.upload.observe(self._on_upload, "value")
        self.location.observe(self._on_location, "value")
        self.sample.observe(self._on_sample, "value")
        for w in (self.preset, self.mode, self.focus_x, self.focus_y, self.fill):
            w.observe(self._refit, "value")
        if image is not None:
            self.set_source(image)
        elif sample in SAMPLES:
            self.set_source(load_sample(sample))

    # ------------------------------------------------------------------------------- actions
    def set_source(self, source) -> None:
        """Load any source :func:`cogviz.load_image` accepts; on failure keep the current one."""
        try:
            src = FitSource(source)  # loads it once (load_image), a big JPEG left undecoded
        except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
            self._show_error(e)
            return
        self._source = src
        self._refit()

    def _show_error(self, e: Exception) -> None:
        self.error = one_line(e)
        self.message.value = f'<span style="color:#b00">{html.escape(self.error)}</span>'

    def _on_upload(self, change) -> None:
        if change.new:
            self.sample.value = "(none)"
            self.set_source(change.new[0])

    def _on_location(self, change) -> None:
        if change.new.strip():
            self.set_source(change.new.strip())

    def _on_sample(self, change) -> None:
        if change.new in SAMPLES:
            self.set_source(load_sample(change.new))

    def _refit(self, *_):
        if self._source is None:
            return
        self.focus_x.disabled = self.focus_y.disabled = self.mode.value == "stretch"
        self.fill.disabled = self.mode.value != "pad"
        try:
            fitted = fit_image(self._source, self.preset.value, self.mode.value,
                               focus=(self.focus_x.value, self.focus_y.value), fill=_FILLS[self.fill.value])
        except Exception as e:  # noqa: BLE001 - every failure is shown, cogviz's or not
            self._show_error(e)
            return
        self.error = ""
        self.message.value = ""
        self.source_view.value = to_png(fit_overlay(self._source.preview(self._side), fitted.report,
                                                    max_side=self._side))
        self.result_view.value = to_png(thumbnail(fitted.image, self._side)[0])
        r = fitted.report
        self.report_view.value = (
            f"<code>{html.escape(r.summary())}</code><br>"
            f"scale (y, x) = ({r.scale[0]:.4f}, {r.scale[1]:.4f}); "
            f"crop box = {tuple(round(v, 1) for v in r.crop_box) if r.crop_box else '-'}; "
            f"image on canvas = {r.image_box}")
        self.fitted = fitted
