"""The compiled inner loops of the metrics (numba, ``nogil``: the thread that runs one leaves the
GIL to the metrics measured beside it), each over one frame's maps while they sit in cache.

- :func:`ilk_level`: one pyramid level of scikit-image's iterative Lucas-Kanade
  (``skimage.registration._optical_flow._ilk``, uniform window) for a stack of frame pairs
  (:mod:`cogviz.flow`): the edge-mode bilinear warp at scikit-image's float32 points, ``np.gradient``'s
  differences, the error image and the five products, their ``(2 RADIUS + 1)^2`` window means in
  ``mirror`` mode (running sums in float64, as OpenCV's and scipy's box filters keep them), and each
  pixel's 2 x 2 system solved in closed form (``|det| < 1e-14``: zero flow, as scikit-image sets it),
  in float32 in scikit-image's order.
- :func:`ssim_means`: scikit-image's SSIM map of each frame against an image, averaged
  (:func:`cogviz.metrics.ssim_video`): the window sums of ``x``, ``x^2`` and ``x y`` exact for pixel
  values (whole numbers in float64), the map in float32 as the numpy formula computes it.
- :func:`lab_bin_counts`: each pixel's 8 x 8 x 8 CIELAB bin counted (the palette's histogram), with
  ``np.histogramdd``'s bins exactly.

``tests/test_metrics.py`` checks each against scikit-image's or numpy's call.
"""
from __future__ import annotations

import numba
import numpy as np

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)
_TINY = np.float32(1e-14)  # scikit-image's threshold on |det|, compared in float32 as numpy does


def _compiled(fn):
    """``fn`` compiled without the GIL, with numpy's floating-point errors (a division by zero gives an
    infinity or NaN, as in numpy, not an exception), cached on disk where numba finds a writable
    cache directory."""
    try:
        return numba.njit(nogil=True, cache=True, error_model="numpy")(fn)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, error_model="numpy")(fn)


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
            r, c = int(y), int(x)  # the floor: the points are clamped to >= 0
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
def _solve_windows(terms, rows, cols, radius, rowsums, means, f0, f1):
    """The flow ``f0``, ``f1`` ``(h, w)`` that solves each pixel's system of the window means
    ``uniform_filter(terms[k], 2 * radius + 1, mode="mirror")`` of the five maps ``terms``
    ``(5, h, w)``: running sums along each row (the five maps' sums side by side, five independent
    chains), then down the columns, in float64 (``rowsums`` ``(5, h, w)``), row by row into ``means``
    ``(5, w)`` and solved (:func:`_solve`). ``rows`` / ``cols``: for positions
    ``-radius .. n + radius - 1``, the index each reads."""
    _, h, w = terms.shape
    size = 2 * radius + 1
    scale = 1.0 / (size * size)
    for i in range(h):
        s0 = s1 = s2 = s3 = s4 = 0.0
        for t in range(size):
            c = cols[t]
            s0 += terms[0, i, c]
            s1 += terms[1, i, c]
            s2 += terms[2, i, c]
            s3 += terms[3, i, c]
            s4 += terms[4, i, c]
        rowsums[0, i, 0], rowsums[1, i, 0], rowsums[2, i, 0], rowsums[3, i, 0], rowsums[4, i, 0] = s0, s1, s2, s3, s4
        for j in range(1, w):
            a, b = cols[j + size - 1], cols[j - 1]
            s0 += terms[0, i, a] - terms[0, i, b]
            s1 += terms[1, i, a] - terms[1, i, b]
            s2 += terms[2, i, a] - terms[2, i, b]
            s3 += terms[3, i, a] - terms[3, i, b]
            s4 += terms[4, i, a] - terms[4, i, b]
            rowsums[0, i, j], rowsums[1, i, j], rowsums[2, i, j], rowsums[3, i, j], rowsums[4, i, j] = s0, s1, s2, s3, s4
    acc = np.empty((5, w), np.float64)
    acc[:] = 0.0
    for t in range(size):
        acc += rowsums[:, rows[t]]
    for i in range(h):
        if i:
            enter, leave = rows[i + size - 1], rows[i - 1]
            for k in range(5):
                for j in range(w):
                    acc[k, j] += rowsums[k, enter, j] - rowsums[k, leave, j]
        for k in range(5):
            for j in range(w):
                means[k, j] = np.float32(acc[k, j] * scale)
        _solve(means, f0[i], f1[i])


@_compiled
def _solve(means, f0, f1):
    """Each pixel's system ``[[a00, a01], [a01, a11]] flow = [b0, b1]`` along a row (``means``
    ``(5, w)``) in closed form, into ``f0``, ``f1``; an ill-conditioned one (``|det| < 1e-14``) gives
    zero flow."""
    for j in range(f0.shape[0]):
        a00, a01, a11, b0, b1 = means[0, j], means[1, j], means[2, j], means[3, j], means[4, j]
        det = a00 * a11 - a01 * a01
        inv = _ONE / det if abs(det) >= _TINY else _ZERO
        f0[j] = (a11 * b0 - a01 * b1) * inv
        f1[j] = (a00 * b1 - a01 * b0) * inv


@_compiled
def ilk_level(ref, moving, flow, num_warp, radius, rows, cols):
    """One pyramid level for stacks ``ref``, ``moving`` ``(P, h, w)`` float32: ``flow`` ``(2, P, h, w)``
    (the level's start, e.g. the coarser level's flow resized) is refined by ``num_warp`` warps, in
    place. ``rows`` / ``cols``: the mirror-mode index of each window position
    (:func:`cogviz.flow._reflected`)."""
    p, h, w = ref.shape
    warped = np.empty((h, w), np.float32)
    terms = np.empty((5, h, w), np.float32)
    means = np.empty((5, w), np.float32)
    rowsums = np.empty((5, h, w), np.float64)
    for q in range(p):
        f0, f1 = flow[0, q], flow[1, q]
        for _ in range(num_warp):
            _warp(moving[q], f0, f1, warped)
            _terms(ref[q], warped, f0, f1, terms)
            _solve_windows(terms, rows, cols, radius, rowsums, means, f0, f1)


@_compiled
def _row_sums(x, y, win, c, out):
    """``out[m, q]`` for a row ``x`` of ``w * c`` values (pixels, channels last) and the image's row
    ``y``: the sums of ``x`` (m = 0), ``x * x`` (1) and ``x * y`` (2) over ``win`` pixels from flat
    position ``q`` (one channel, every ``c``-th value), running sums in float64."""
    span, n = (win - 1) * c, out.shape[1]
    for q in range(c):
        s0 = s1 = s2 = 0.0
        for t in range(win):
            xv, yv = np.float64(x[q + t * c]), np.float64(y[q + t * c])
            s0 += xv
            s1 += xv * xv
            s2 += xv * yv
        out[0, q], out[1, q], out[2, q] = s0, s1, s2
    for q in range(c, n):
        xa, ya = np.float64(x[q + span]), np.float64(y[q + span])
        xb, yb = np.float64(x[q - c]), np.float64(y[q - c])
        out[0, q] = out[0, q - c] + (xa - xb)
        out[1, q] = out[1, q - c] + (xa * xa - xb * xb)
        out[2, q] = out[2, q - c] + (xa * ya - xb * yb)


@_compiled
def ssim_means(frames, y, uy, a_y, b_y, win, c1, c2, cov_norm, rows, out):
    """``out[f]`` = the mean SSIM of ``frames[f]`` ``(h, w, c)`` against the image ``y``, over the map
    cropped by the window's half-width, rounded as scikit-image rounds it (each channel's mean in
    float32, their mean in float32): ``uy`` (the image's window means), ``a_y = uy^2 + c1`` and
    ``b_y = cov_norm var_y + c2``, cropped, come from the caller as ``(h - win + 1, (w - win + 1) c)``;
    ``rows`` ``(win + 1, 3, (w - win + 1) c)`` float64 is scratch (a ring of row sums). Each window mean is the exact window sum
    (pixel values: whole numbers, exact in float64) divided in float32."""
    n, h, w, c = frames.shape
    size, two_cov = np.float32(win * win), np.float32(2) * cov_norm
    flat_y = y.reshape(h, w * c)
    acc, total = np.empty((3, rows.shape[2]), np.float64), np.empty(c, np.float64)
    ring = win + 1  # the row sums of the window's rows and of the row that just left it
    for f in range(n):
        x = frames[f].reshape(h, w * c)
        acc[:] = 0.0
        total[:] = 0.0
        for i in range(win):
            _row_sums(x[i], flat_y[i], win, c, rows[i])
            acc += rows[i]
        for i in range(h - win + 1):
            if i:
                enter = (i + win - 1) % ring
                _row_sums(x[i + win - 1], flat_y[i + win - 1], win, c, rows[enter])
                acc += rows[enter]
                acc -= rows[(i - 1) % ring]
            for q in range(acc.shape[1]):
                ux = np.float32(acc[0, q]) / size
                uxuy = ux * uy[i, q]
                num = (uxuy * np.float32(2) + c1) * ((np.float32(acc[2, q]) / size - uxuy) * two_cov + c2)
                ux2 = ux * ux
                den = (ux2 + a_y[i, q]) * ((np.float32(acc[1, q]) / size - ux2) * cov_norm + b_y[i, q])
                total[q % c] += num / den
        mean = np.float32(0)  # scikit-image: each channel's mean (float64) kept in float32, then averaged
        for ch in range(c):
            mean += np.float32(total[ch] / ((h - win + 1) * (w - win + 1)))
        out[f] = mean / np.float32(c)


@_compiled
def lab_bin_counts(lab_l, lab_a, lab_b, ranges, bins, counts):
    """``counts[f, bin] += 1`` for each pixel of the planes ``(F, N)`` (L, a, b, float32) inside
    ``ranges`` ``(3, 2)``: ``np.histogramdd``'s bins of equal width, the last one closed (a quotient
    ``(v - lo) / width`` in float64, floored, is the bin ``np.searchsorted`` finds on its edges).
    ``counts`` ``(F, bins^3)`` starts at zero."""
    planes = (lab_l, lab_a, lab_b)
    n, m = lab_l.shape
    for f in range(n):
        for i in range(m):
            index, inside = 0, True
            for p in range(3):
                v, lo, hi = np.float64(planes[p][f, i]), ranges[p, 0], ranges[p, 1]
                if not (v >= lo and v <= hi):
                    inside = False
                    break
                q = min(max(np.floor((v - lo) / ((hi - lo) / bins)), 0.0), bins - 1.0)
                index = index * bins + int(q)
            if inside:
                counts[f, index] += 1
