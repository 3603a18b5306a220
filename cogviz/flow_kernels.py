"""The compiled inner loop of :mod:`cogviz.flow`: one pyramid level of scikit-image's iterative
Lucas-Kanade (``skimage.registration._optical_flow._ilk``, uniform window) for a stack of frame
pairs, compiled by numba (``nogil``: the thread that runs it leaves the GIL to the metrics beside it).

Frame pair by frame pair, every warp of the level runs on one frame's maps while they sit in cache:
the edge-mode bilinear warp at scikit-image's float32 points, ``np.gradient``'s differences, the
error image and the five products, their ``(2 RADIUS + 1)^2`` window means in ``mirror`` mode
(running sums in float64, as OpenCV's and scipy's box filters keep them), and each pixel's 2 x 2
system solved in closed form (``|det| < 1e-14``: zero flow, as scikit-image sets it). The arithmetic
is float32 in scikit-image's order; ``tests/test_metrics.py`` checks the flow against
``optical_flow_ilk`` pair by pair.

The functions are compiled on first use (about 3 s) and cached on disk (numba's ``cache=True``: the
package's ``__pycache__``, else numba's user cache or ``NUMBA_CACHE_DIR``); where no cache directory
is writable, each process compiles them on its first call instead.
"""
from __future__ import annotations

import numba
import numpy as np

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_TINY = np.float32(1e-14)  # scikit-image's threshold on |det|, compared in float32 as numpy does


def _compiled(fn):
    """``fn`` compiled without the GIL, cached on disk where numba finds a writable cache directory."""
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)


@_compiled
def _warp(moving, f0, f1, out):
    """``out`` = ``moving`` ``(h, w)`` at the points ``(row + f0, col + f1)`` clamped to the frame,
    bilinearly: scikit-image's ``warp(mode="edge", order=1)`` at its float32 points."""
    h, w = moving.shape
    top_row, last_col = np.float32(h - 1), np.float32(w - 1)
    for i in range(h):
        fi = np.float32(i)
        for j in range(w):
            y = min(max(f0[i, j] + fi, _ZERO), top_row)
            x = min(max(f1[i, j] + np.float32(j), _ZERO), last_col)
            r, c = int(np.floor(y)), int(np.floor(x))
            wy, wx = y - np.float32(r), x - np.float32(c)
            r1, c1 = min(r + 1, h - 1), min(c + 1, w - 1)
            top = moving[r, c] + (moving[r, c1] - moving[r, c]) * wx
            low = moving[r1, c] + (moving[r1, c1] - moving[r1, c]) * wx
            out[i, j] = top + (low - top) * wy


@_compiled
def _terms(ref, warped, f0, f1, terms):
    """The five maps the window means of each system sum: ``gr * gr``, ``gr * gc``, ``gc * gc``,
    ``gr * err``, ``gc * err`` (``np.gradient`` of the warped frame; ``err = gr f0 + gc f1 + ref -
    warped``, scikit-image's error image)."""
    h, w = ref.shape
    for i in range(h):
        i0, i1 = max(i - 1, 0), min(i + 1, h - 1)
        for j in range(w):
            j0, j1 = max(j - 1, 0), min(j + 1, w - 1)
            gr = warped[i1, j] - warped[i0, j]
            if i1 - i0 == 2:
                gr = gr / np.float32(2.0)
            gc = warped[i, j1] - warped[i, j0]
            if j1 - j0 == 2:
                gc = gc / np.float32(2.0)
            err = gr * f0[i, j]
            err = err + gc * f1[i, j]
            err = err + ref[i, j]
            err = err - warped[i, j]
            terms[0, i, j] = gr * gr
            terms[1, i, j] = gr * gc
            terms[2, i, j] = gc * gc
            terms[3, i, j] = gr * err
            terms[4, i, j] = gc * err


@_compiled
def _window_means(terms, rows, cols, radius, rowsums, means):
    """``uniform_filter(terms[k], 2 * radius + 1, mode="mirror")`` for each of the maps ``terms``
    ``(K, h, w)``, into ``means``: running sums along each row, then down the columns, in float64.
    ``rows`` / ``cols``: for positions ``-radius .. n + radius - 1``, the index each reads."""
    n_maps, h, w = terms.shape
    size = 2 * radius + 1
    scale = 1.0 / (size * size)
    acc = np.empty(w, np.float64)
    for k in range(n_maps):
        for i in range(h):
            s = 0.0
            for t in range(size):
                s += terms[k, i, cols[t]]
            rowsums[i, 0] = s
            for j in range(1, w):
                s += terms[k, i, cols[j + size - 1]] - terms[k, i, cols[j - 1]]
                rowsums[i, j] = s
        for j in range(w):
            acc[j] = 0.0
        for t in range(size):
            r = rows[t]
            for j in range(w):
                acc[j] += rowsums[r, j]
        for i in range(h):
            if i:
                enter, leave = rows[i + size - 1], rows[i - 1]
                for j in range(w):
                    acc[j] += rowsums[enter, j] - rowsums[leave, j]
            for j in range(w):
                means[k, i, j] = np.float32(acc[j] * scale)


@_compiled
def _solve(means, f0, f1):
    """Each pixel's system ``[[a00, a01], [a01, a11]] flow = [b0, b1]`` in closed form, into
    ``f0``, ``f1``; an ill-conditioned one (``|det| < 1e-14``) gives zero flow."""
    h, w = f0.shape
    for i in range(h):
        for j in range(w):
            a00, a01, a11 = means[0, i, j], means[1, i, j], means[2, i, j]
            b0, b1 = means[3, i, j], means[4, i, j]
            det = a00 * a11 - a01 * a01
            inv = _ONE / det if abs(det) >= _TINY else _ZERO
            f0[i, j] = (a11 * b0 - a01 * b1) * inv
            f1[i, j] = (a00 * b1 - a01 * b0) * inv


@_compiled
def ilk_level(ref, moving, flow, num_warp, radius, rows, cols):
    """One pyramid level for stacks ``ref``, ``moving`` ``(P, h, w)`` float32: ``flow`` ``(2, P, h, w)``
    (the level's start, e.g. the coarser level's flow resized) is refined by ``num_warp`` warps, in
    place. ``rows`` / ``cols``: the mirror-mode index of each window position
    (:func:`cogviz.flow._reflected`)."""
    p, h, w = ref.shape
    warped = np.empty((h, w), np.float32)
    terms = np.empty((5, h, w), np.float32)
    means = np.empty((5, h, w), np.float32)
    rowsums = np.empty((h, w), np.float64)
    for q in range(p):
        f0, f1 = flow[0, q], flow[1, q]
        for _ in range(num_warp):
            _warp(moving[q], f0, f1, warped)
            _terms(ref[q], warped, f0, f1, terms)
            _window_means(terms, rows, cols, radius, rowsums, means)
            _solve(means, f0, f1)
