"""A sweep's report: one self-contained HTML file to share — the settings, the paired effects with
their intervals, the plots and a video grid — that opens in any browser with no server and no
network.

Everything is inside the file: the plots are PNGs and the videos animated GIFs, both as ``data:``
URLs; there is no script, no font, no style sheet to fetch, and a Content-Security-Policy that
forbids any request (``default-src 'none'``), so the file shows the same offline, attached to an
e-mail or opened years later. Every text from the results (prompts, image names, labels) is
HTML-escaped. Written atomically: a report being rewritten is never half a file.
"""
from __future__ import annotations

import base64
import html
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np

from ..errors import SweepError

#: the widest a report's video grid is drawn, in pixels (wider grids are scaled down to it)
GRID_WIDTH = 1200
#: at most this many (image, prompt, seed) video grids in one report
MAX_GRIDS = 3
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:0.9em}td,th{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto}
.note{color:#555;font-size:0.92em}.no{color:#999}figure{margin:1em 0}figcaption{font-size:0.9em;color:#444}"""


def _img(data: bytes, mime: str, alt: str) -> str:
    return f'<img src="data:{mime};base64,{base64.b64encode(data).decode()}" alt="{html.escape(alt)}">'


def _figure(pic, alt: str, caption: str) -> str:
    return f"<figure>{_img(pic.to_png(), 'image/png', alt)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _settings_html(out_dir: Path, result) -> str:
    from .store import read_manifest

    ids = set(result.runs["run_id"])
    rows = []
    for entry in read_manifest(out_dir):
        if ids & set(entry.get("run_ids", [])):
            model = entry.get("model", {})
            rows.append({"model": f"{model.get('id', '?')} ({model.get('fingerprint', '?')})",
                         **{k: json.dumps(v) if isinstance(v, (dict, list)) else v
                            for k, v in entry.get("settings", {}).items()}})
    if not rows:
        return '<p class="no">no sweep in the manifest names these runs</p>'
    import pandas as pd

    return pd.DataFrame(rows).drop_duplicates().to_html(index=False, border=0)


def _overview(result) -> str:
    r = result.runs
    counts = (f"{len(r)} runs: {r['image_sha'].nunique()} image(s), {r['prompt'].nunique()} prompt(s), "
              f"{r['seed'].nunique()} seed(s), {r['label'].nunique()} variant(s)")
    prompts = "".join(f"<li>{html.escape(p)}</li>" for p in r["prompt"].unique()[:20])
    return f"<p>{html.escape(counts)}</p><p>prompts:</p><ul>{prompts}</ul>"


def _effects_html(result, metric: str, per_frame: str | None, baseline: str, kw: dict) -> str:
    """The effects table and its pictures, or a line saying why there are none."""
    if baseline == "baseline" and baseline not in set(result.runs["label"]):  # a named one must exist
        return (f'<p class="no">no run is labelled {html.escape(baseline)!s}: effects are measured against a '
                "baseline (sweep with include_baseline=True, or name one with baseline=)</p>")
    table = result.effects(metric, baseline=baseline, **kw)
    parts = [f"<p class=note>each variant against {html.escape(baseline)} on the same image, prompt and seed; "
             f"{table.attrs.get('confidence', 0.95):.0%} intervals from a paired, stratified bootstrap "
             "(cogviz.effects)</p>", table.round(4).to_html(index=False, border=0)]
    if len(table):
        parts.append(_figure(result.plot_effects(metric, baseline=baseline, **kw), "forest plot",
                             f"paired effects on {metric}: filled dots exclude 0"))
    if per_frame:
        parts.append(_figure(result.plot_effects(per_frame, baseline=baseline, **kw), "effect per frame",
                             f"the effect on {per_frame} per frame, with its band"))
    return "".join(parts)


def _scaled(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """A grid no wider than GRID_WIDTH (wider ones scaled down), and the width to show it at: small
    grids (the toy's) are shown up to 4x, by whole pixels, without storing the larger copy."""
    from PIL import Image

    w = frames.shape[2]
    if w > GRID_WIDTH:
        size = (GRID_WIDTH, round(frames.shape[1] * GRID_WIDTH / w))
        return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)) for f in frames]), \
            GRID_WIDTH
    return frames, w * max(1, min(4, GRID_WIDTH // w))


def _grids_html(result, fps: float) -> str:
    from ..video import encode_gif, grid

    keys = ["image_sha", "prompt", "seed"]
    groups = list(result.runs.groupby(keys, sort=False))
    seen: set = set()  # each (image, prompt) before a second seed of any
    firsts = [g for g in groups if not ((g[0][0], g[0][1]) in seen or seen.add((g[0][0], g[0][1])))]
    groups = firsts + [g for g in groups if all(g is not f for f in firsts)]
    parts = []
    for _, rows in groups[:MAX_GRIDS]:
        first = rows.iloc[0]
        frames, width = _scaled(grid({r.label: result.video(r.run_id) for r in rows.itertuples()}))
        caption = f"{first['image']} ({first['image_sha']}) · seed {first['seed']} · {first['prompt']}"
        gif = _img(encode_gif(frames, fps), "image/gif", caption).replace(
            "<img ", f'<img width="{width}" style="image-rendering:pixelated" ', 1)
        parts.append(f"<figure>{gif}"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if len(groups) > MAX_GRIDS:
        parts.append(f'<p class="note">{len(groups) - MAX_GRIDS} more (image, prompt, seed) not drawn here: '
                     "SweepResult.grid draws any</p>")
    return "".join(parts)


def report_html(result, *, metric: str = "mean_ssim", per_frame: str | None = "ssim", baseline: str = "baseline",
                fps: float | None = None, title: str | None = None, **effects_kw) -> str:
    """The report of a :class:`~cogviz.sweep.SweepResult` as one HTML string (see :func:`report`)."""
    if not len(result):
        raise SweepError(f"report: {result.out_dir} holds no finished run to report")
    if per_frame is not None and per_frame not in result._per_frame():
        raise SweepError(f"report: per_frame={per_frame!r} is not a per-frame metric of these runs "
                         f"({', '.join(result._per_frame()) or 'none: the sweep ran with metrics=False'}); "
                         "pass per_frame=None to leave the curves out")
    title = title or f"cogviz sweep report: {result.out_dir.name}"
    if fps is None:  # the rate the sweep saved its videos at (the model family's own)
        from ..video import frame_rate

        fps = frame_rate(result.runs["video"].iloc[0])
    sections = [
        ("Settings", _settings_html(result.out_dir, result) + _overview(result)),
        ("Effects", _effects_html(result, metric, per_frame, baseline, effects_kw)),
        ("Means per variant", result.summary().round(4).to_html(border=0)),
        ("The anchor over time", _figure(result.plot_decay(per_frame or "ssim"), "anchor decay",
                                         "each variant's mean per frame") if per_frame else ""),
        ("Fidelity and motion", _figure(result.plot_tradeoff(), "fidelity against motion",
                                        "each run a point, each variant's mean ringed")
         if {"motion", "mean_ssim"} <= set(result.runs.columns) else ""),
        ("Videos", _grids_html(result, fps)),
    ]
    body = "".join(f"<h2>{name}</h2>{content}" for name, content in sections if content)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class=note>{html.escape(str(result.out_dir))} · written {stamp} "
            f"by cogviz</p>{body}</body></html>")


def report(result, path=None, **kwargs) -> Path:
    """Write the report of ``result`` (a :class:`~cogviz.sweep.SweepResult`; ``SweepResult.load(folder)``
    opens a results folder) to
    ``path`` (default: ``report.html`` in the results folder) and return its path.

    The report holds the sweeps' settings, every variant's paired effect on ``metric`` (a per-run
    figure, default ``mean_ssim``) with its interval and forest plot, the per-frame effect curves of
    ``per_frame`` (default ``ssim``; None leaves them out), the means, the anchor-decay and
    fidelity-motion plots, and the video grid of the first (image, prompt, seed) groups. ``baseline``
    names the reference variant; other keywords go to :meth:`SweepResult.effects` (``by``,
    ``confidence``, ...); ``fps``: the videos' rate (default: the rate the sweep saved them at). The
    file is self-contained: it opens offline, with no server."""
    if not hasattr(result, "runs") or not hasattr(result, "out_dir"):
        raise SweepError(f"report: expected a SweepResult, got {type(result).__name__}; open a results folder "
                         "with cogviz.sweep.SweepResult.load(folder)")
    path = Path(path) if path is not None else result.out_dir / "report.html"
    if path.suffix.lower() not in (".html", ".htm"):
        raise SweepError(f"report path {str(path)!r}: expected an .html file")
    text = report_html(result, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
