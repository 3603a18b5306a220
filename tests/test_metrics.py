"""Anchor metrics against hand-made frames whose answers are known."""
import math

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cogviz.errors import CogvizError
from cogviz.metrics import METRICS, PSNR_CAP, anchor_metrics, half_life, summarize


def texture(h, w, seed=0, blur=3.0):
    """A smooth random RGB texture, uint8: enough structure for optical flow to lock onto."""
    x = gaussian_filter(np.random.default_rng(seed).uniform(0, 255, (h, w, 3)), (blur, blur, 0))
    return ((x - x.min()) / (x.max() - x.min()) * 255).round().astype(np.uint8)


def panned(h, w, dx, dy, n=6, seed=0):
    """n frames of a texture moving by (dx, dy) pixels a frame (right and down positive)."""
    m = n * max(abs(dx), abs(dy)) + 8
    base = texture(h + 2 * m, w + 2 * m, seed)
    return np.stack([base[m - dy * t:m - dy * t + h, m - dx * t:m - dx * t + w] for t in range(n)])


def test_columns_and_ssim_psnr_equal_scikit_image():
    rng = np.random.default_rng(1)
    image = texture(48, 64, 1)
    frames = np.clip(image[None].astype(int) + rng.integers(-40, 40, (4, 48, 64, 3)), 0, 255).astype(np.uint8)
    df = anchor_metrics(frames, image)
    assert list(df.columns) == ["frame", *METRICS] and df["frame"].tolist() == [0, 1, 2, 3]
    for t in range(4):
        ref = structural_similarity(image, frames[t], channel_axis=-1, data_range=255)
        assert df["ssim"][t] == pytest.approx(ref, abs=1e-6)
        assert df["psnr"][t] == pytest.approx(peak_signal_noise_ratio(image, frames[t], data_range=255), abs=1e-9)
    assert df[["flicker", "motion", "motion_top5"]].iloc[0].isna().all()


def test_a_constant_video_has_flicker_one_and_motion_zero():
    still = np.repeat(texture(40, 56, 2)[None], 5, axis=0)
    df = anchor_metrics(still, Image.fromarray(still[0]))
    assert (df["flicker"][1:] == 1.0).all() and (df["motion"][1:] == 0.0).all()
    assert (df["psnr"] == PSNR_CAP).all() and np.allclose(df["ssim"], 1.0)
    assert np.allclose(df["palette"], 0.0) and np.allclose(df["layout"], 1.0)
    s = summarize(df)
    assert s["half_life"] == math.inf and s["motion"] == 0.0 and not s["dynamic"]


@pytest.mark.parametrize("size", [(64, 96), (480, 720)])
@pytest.mark.parametrize("dx,dy", [(2, 1), (3, 0), (0, -4), (-6, 3)])
def test_a_pattern_shifted_each_frame_moves_by_the_shift(size, dx, dy):
    frames = panned(*size, dx, dy, n=4)
    df = anchor_metrics(frames, frames[0])
    want = math.hypot(dx, dy)
    assert np.allclose(df["motion"][1:], want, rtol=0.05), (df["motion"].tolist(), want)
    assert (df["motion_top5"][1:] >= df["motion"][1:] - 1e-6).all()


def test_flicker_is_vbench_mean_absolute_difference():
    a = np.full((2, 16, 16, 3), 100, np.uint8)
    a[1] = 151  # every pixel 51 levels brighter: 1 - 51/255 = 0.8
    assert anchor_metrics(a, a[0])["flicker"][1] == pytest.approx(0.8)


def test_palette_and_layout_see_colour_and_arrangement():
    h, w = 64, 96
    red, blue = np.zeros((h, w, 3), np.uint8), np.zeros((h, w, 3), np.uint8)
    red[...] = (200, 30, 30)
    blue[...] = (30, 30, 200)
    assert anchor_metrics(blue, red)["palette"][0] == pytest.approx(1.0)  # no colour in common
    grad = np.repeat(np.linspace(0, 255, w)[None, :, None], h, 0).repeat(3, 2).astype(np.uint8)
    df = anchor_metrics(np.stack([grad, grad[:, ::-1], 255 - grad]), grad)
    assert df["layout"][0] == pytest.approx(1.0) and df["layout"][1] < -0.9  # mirrored: light and dark swap
    assert df["palette"][1] == pytest.approx(0.0, abs=0.02)  # same colours, new places: palette unmoved
    assert np.isfinite(df[["palette", "layout"]].to_numpy()).all()


def test_half_life_definition():
    assert half_life([0.9, 0.7, 0.5, 0.4]) == pytest.approx(2.5)
    assert half_life([1.0, 0.5]) == pytest.approx(1.0)
    assert half_life([0.8, 0.8, 0.7]) == math.inf
    assert half_life([0.8, 0.6, 0.5], floor=0.4) == pytest.approx(1.0)


def test_summary_and_vbench_dynamic_flag():
    fast = panned(64, 96, 4, 0, n=17)  # 4 px a frame; VBench's threshold at 64 px: 6 * 64 / 256 = 1.5 px
    slow = panned(64, 96, 1, 0, n=17)
    s_fast, s_slow = summarize(anchor_metrics(fast, fast[0])), summarize(anchor_metrics(slow, slow[0]))
    assert s_fast["dynamic"] and not s_slow["dynamic"]
    assert s_fast["motion"] == pytest.approx(4.0, rel=0.05) and s_fast["frame0_psnr"] == PSNR_CAP
    assert s_fast["half_life"] < s_slow["half_life"]  # moving faster loses the anchor sooner
    assert not summarize(anchor_metrics(slow, slow[0]), fps=2.0)["dynamic"]  # slower video: higher bar


def test_bad_inputs_say_what_was_expected():
    frames = np.zeros((3, 32, 48, 3), np.uint8)
    with pytest.raises(CogvizError, match=r"the image is 32x32 but the frames are 32x48"):
        anchor_metrics(frames, np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(CogvizError, match=r"expected \(F, H, W, 3\)"):
        anchor_metrics(np.zeros((3, 32, 48)), frames[0])
    with pytest.raises(CogvizError, match="uint8 in \\[0, 255\\] or floats in \\[0, 1\\]"):
        anchor_metrics(frames.astype(np.float32) + 7, frames[0])
    df = anchor_metrics(frames.astype(np.float32), frames[0])  # floats in [0, 1] are accepted
    assert len(df) == 3
    with pytest.raises(CogvizError, match="empty"):
        summarize(df.iloc[:0])


def test_anchor_plots_are_pictures_with_one_line_or_point_per_ablation():
    import pandas as pd

    from cogviz import viz

    still = np.repeat(texture(32, 48, 3)[None], 5, axis=0)
    moving = panned(32, 48, 2, 0, n=5, seed=3)
    runs = {"still": [anchor_metrics(still, still[0])] * 2, "moving": anchor_metrics(moving, moving[0])}
    pic = viz.anchor_decay(runs, "ssim")
    assert isinstance(pic, viz.Picture) and pic._repr_png_()[:4] == b"\x89PNG" and pic.std() > 20
    ax = pic.figure.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["still (n=2)", "moving"]
    assert np.allclose(ax.lines[0].get_ydata(), 1.0) and ax.lines[1].get_ydata()[-1] < 0.9
    assert len(ax.collections) == 1  # a min-max band only where there are several runs
    long = pd.concat([t.assign(label=k) for k, v in runs.items() for t in (v if isinstance(v, list) else [v])])
    assert viz.anchor_decay(long, "motion").figure.axes[0].get_ylabel() == "motion (px / frame)"

    plane = viz.fidelity_motion(runs)
    ax = plane.figure.axes[0]
    means = [c.get_offsets()[0] for c in ax.collections[1::2]]  # each label: its runs, then its mean
    assert np.allclose(means[0], [0.0, 1.0]) and means[1][0] == pytest.approx(2.0, rel=0.05)
    summaries = pd.DataFrame([summarize(t) for t in runs["still"]])
    summaries["label"] = "still"
    assert isinstance(viz.fidelity_motion(summaries), viz.Picture)
    with pytest.raises(ValueError, match="no 'label' column"):
        viz.anchor_decay(runs["moving"])


def test_a_new_metric_is_added_in_one_place(monkeypatch):
    import cogviz.metrics as M
    from cogviz import viz

    monkeypatch.setattr(M, "REGISTRY", dict(M.REGISTRY))  # the registration below is undone after the test

    @M.register("brightness", "mean brightness", summary=("frame0", "value"))
    def _brightness(video, ref):  # one value per frame, for the whole video at once
        return video.pixels.mean(axis=(1, 2, 3))

    video = np.stack([np.full((32, 48, 3), v, np.uint8) for v in (10, 20, 30)])
    df = M.anchor_metrics(video, video[0])
    assert df["brightness"].tolist() == [10.0, 20.0, 30.0]
    s = M.summarize(df)
    assert s["frame0_brightness"] == 10.0 and s["brightness"] == 20.0
    assert M.label("frame0_brightness") == "frame-0 mean brightness"
    assert viz.anchor_decay({"a": df}, "brightness").shape[-1] == 3  # the plot reads it too
    with pytest.raises(ValueError, match="metric='brightnes'"):
        viz.anchor_decay({"a": df}, "brightnes")


def test_one_psnr_everywhere():
    import torch

    from cogviz.metrics import PSNR_CAP, psnr
    from cogviz.preview import RGBMap
    from cogviz.trainer.evaluate import psnr_uint8
    from cogviz.trainer.train import psnr as train_psnr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8)
    ref = psnr(a, b)
    assert psnr_uint8(a, b) == ref and psnr(a, a) == psnr_uint8(a, a) == PSNR_CAP
    ta, tb = (torch.from_numpy(x).float() / 127.5 - 1 for x in (a, b))  # [-1, 1]
    assert abs(train_psnr(ta, tb) - ref) < 1e-4
    rmse = float(np.sqrt(np.mean((a / 255.0 - b / 255.0) ** 2)))
    assert abs(RGBMap(np.zeros((16, 3)), np.zeros(3), rmse, 1.0).psnr - ref) < 1e-6


def test_the_whole_video_measures_equal_scikit_image_frame_by_frame():
    """Every metric runs over the whole video at once; each equals scikit-image's per-frame call it
    replaces: the iterative Lucas-Kanade flow per pair, the Lab histogram, the layout resize, SSIM."""
    from scipy.ndimage import gaussian_filter
    from skimage.color import rgb2gray, rgb2lab
    from skimage.registration import optical_flow_ilk
    from skimage.transform import resize

    from cogviz.flow import ilk_flow
    from cogviz.metrics import LAB_BINS, LAB_RANGE, LAYOUT_CELLS, ssim_video

    rng = np.random.default_rng(3)
    base = gaussian_filter(rng.random((120, 150)).astype(np.float32), 2)
    grey = np.stack([base[2 * t:2 * t + 64, 3 * t:3 * t + 96] for t in range(6)])
    flow = ilk_flow(grey[:-1], grey[1:])
    for i in range(5):
        np.testing.assert_allclose(flow[:, i], optical_flow_ilk(grey[i], grey[i + 1], radius=7, num_warp=3), atol=2e-5)
    video = panned(48, 64, 2, 1, n=5)
    df = anchor_metrics(video, video[0])
    np.testing.assert_allclose(ssim_video(video, video[0]), df["ssim"], atol=1e-9)
    for t, frame in enumerate(video):
        small = frame.astype(np.float32) / 255.0
        lab = rgb2lab(small).reshape(-1, 3)
        hist = np.histogramdd(lab, bins=LAB_BINS, range=LAB_RANGE)[0].ravel() / lab.shape[0]
        ref = np.histogramdd(rgb2lab(video[0].astype(np.float32) / 255.0).reshape(-1, 3), bins=LAB_BINS,
                             range=LAB_RANGE)[0].ravel() / lab.shape[0]
        assert df["palette"][t] == pytest.approx(0.5 * np.abs(hist - ref).sum(), abs=1e-12)
        cells = resize(rgb2gray(small), LAYOUT_CELLS, anti_aliasing=True).ravel()
        first = resize(rgb2gray(video[0].astype(np.float32) / 255.0), LAYOUT_CELLS, anti_aliasing=True).ravel()
        assert df["layout"][t] == pytest.approx(np.corrcoef(cells, first)[0, 1], abs=1e-6)
        if t:
            mag = np.hypot(*optical_flow_ilk(rgb2gray(video[t - 1].astype(np.float32) / 255.0).astype(np.float32),
                                             rgb2gray(small).astype(np.float32), radius=7, num_warp=3))
            assert df["motion"][t] == pytest.approx(mag.mean(), abs=1e-4)
    one = anchor_metrics(video[:1], video[0])  # one frame: no pair, no warning, NaN pairwise columns
    assert one[["flicker", "motion", "motion_top5"]].isna().all(axis=None)


@pytest.mark.parametrize("height, width, k", [(64, 96, 1), (260, 390, 2), (400, 610, 3)])
def test_block_means_lab_and_palette_equal_scikit_image_at_every_reduction(height, width, k):
    """The palette, layout and flow read k x k block means (k = 1 up to twice the reduced side; the
    partial blocks at the edges dropped): equal to scikit-image's ``downscale_local_mean``; the Lab
    values, whose gamma is a table, bitwise ``rgb2lab``'s; the palette ``np.histogramdd``'s."""
    from skimage.color import rgb2lab
    from skimage.transform import downscale_local_mean

    from cogviz.metrics import LAB_BINS, LAB_RANGE, _lab_of_linear, _linear_levels, _reduction, _Video

    rng = np.random.default_rng(height)
    video = rng.integers(0, 256, (3, height, width, 3), dtype=np.uint8)
    assert _reduction(height, width) == k
    v = _Video(video, k)
    h, w = height // k * k, width // k * k
    for t, frame in enumerate(video):
        ref = downscale_local_mean(frame[:h, :w].astype(np.float64) / 255.0, (k, k, 1))
        np.testing.assert_allclose(v.small[t], ref, atol=1e-6)
        lab = rgb2lab(v.small[t])
        np.testing.assert_array_equal(np.stack(_lab_of_linear(_linear_levels(k)[v.sums[t]]), axis=-1), lab)
        hist = np.histogramdd(lab.reshape(-1, 3), bins=LAB_BINS, range=LAB_RANGE)[0].ravel() / lab[..., 0].size
        np.testing.assert_array_equal(v.palette[t], hist)


def test_the_flow_shared_between_threads_equals_the_flow_in_one_piece():
    """anchor_metrics cuts the flow's frame pairs into chunks that either thread takes: any cut gives
    the same magnitudes as the whole stack at once, in order."""
    from cogviz.flow import ilk_magnitudes
    from cogviz.metrics import _SharedFlow, _Video

    frames = panned(64, 96, 2, 1, n=7)
    v = _Video(frames, 1)
    whole = ilk_magnitudes(v.grey[:-1], v.grey[1:])
    for chunks in (1, 2, 4, 6, 50):
        np.testing.assert_array_equal(_SharedFlow(v, chunks=chunks).result(), whole)


def test_a_still_video_with_black_and_white_pixels_has_exactly_zero_motion():
    """The warp lands integer points on the pixels exactly (float64 grid): a still pair has zero flow
    as in scikit-image, even where a pixel is 0 beside a bright one."""
    frame = np.zeros((40, 56, 3), np.uint8)
    frame[::3, ::5] = 255
    df = anchor_metrics(np.repeat(frame[None], 4, axis=0), frame)
    assert (df["motion"][1:] == 0.0).all() and (df["motion_top5"][1:] == 0.0).all()


def test_an_error_in_a_metric_or_in_the_flow_reaches_the_caller(monkeypatch):
    """The metrics run on two threads: an error on either is raised in the caller, never a hang."""
    import cogviz.flow as F
    import cogviz.metrics as M

    monkeypatch.setattr(M, "REGISTRY", dict(M.REGISTRY))

    @M.register("broken", "broken")
    def _broken(video, ref):
        raise RuntimeError("metric failed on purpose")

    frames = panned(32, 48, 1, 0, n=3)
    with pytest.raises(RuntimeError, match="metric failed on purpose"):
        M.anchor_metrics(frames, frames[0])
    del M.REGISTRY["broken"]

    def no_flow(*a):
        raise RuntimeError("flow failed on purpose")

    monkeypatch.setattr(F, "video_magnitudes", no_flow)
    with pytest.raises(RuntimeError, match="flow failed on purpose"):
        M.anchor_metrics(frames, frames[0])


@pytest.mark.parametrize("shape", [(5, 64, 96), (3, 160, 240), (2, 13, 18), (2, 12, 18), (2, 12, 40), (2, 100, 18),
                                   (2, 8, 30)])
def test_layouts_by_opencv_equal_scikit_image_resize(shape):
    """The layout cells (OpenCV's blur and linear resize) equal scikit-image's anti-aliased ``resize``
    frame by frame, for reductions in both directions, in one, none, and a frame smaller than the cells."""
    from scipy.ndimage import gaussian_filter
    from skimage.transform import resize

    from cogviz.metrics import LAYOUT_CELLS, _layouts

    grey = gaussian_filter(np.random.default_rng(sum(shape)).random(shape).astype(np.float32), (0, 1, 1))
    np.testing.assert_allclose(_layouts(grey), resize(grey, (shape[0], *LAYOUT_CELLS), anti_aliasing=True), atol=1e-6)


def test_work_arrays_are_kept_per_thread_and_bounded(monkeypatch):
    """A call site gets the same array on its next call on this thread, another thread its own; an
    array over the bound is made fresh each time; release() drops them all."""
    import threading

    from cogviz import scratch

    a = scratch.work_array("test.a", (4, 5))
    assert scratch.work_array("test.a", (4, 5)) is a
    assert scratch.work_array("test.a", (4, 6)) is not a and scratch.work_array("test.a", (4, 5), np.float64) is not a
    other = []
    t = threading.Thread(target=lambda: other.append(scratch.work_array("test.a", (4, 5))))
    t.start()
    t.join()
    assert other[0] is not a
    monkeypatch.setattr(scratch, "KEEP_BYTES", 1000)
    big = scratch.work_array("test.big", (1000,))
    assert scratch.work_array("test.big", (1000,)) is not big
    scratch.release()
    assert scratch.work_array("test.a", (4, 5)) is not a


def test_a_metric_that_measures_a_video_itself_runs_without_waiting_forever(monkeypatch):
    """A registered metric runs on the metrics' kept worker thread; calling anchor_metrics from it runs
    that call on the same thread instead of queueing behind itself."""
    import cogviz.metrics as M

    monkeypatch.setattr(M, "REGISTRY", dict(M.REGISTRY))

    depth = []

    @M.register("nested", "nested ssim")
    def _nested(video, ref):
        if depth:  # the inner call's own column
            return np.zeros(len(video))
        depth.append(1)
        try:
            return M.anchor_metrics(video.pixels, ref.pixels[0])["ssim"].to_numpy()
        finally:
            depth.pop()

    frames = panned(32, 48, 1, 0, n=3)
    df = M.anchor_metrics(frames, frames[0])
    np.testing.assert_array_equal(df["nested"], df["ssim"])


def test_ssim_of_views_with_any_strides_equals_contiguous_copies():
    """Frames and an image that are views (reversed, or channel-last views of channel-first arrays)
    measure as their contiguous copies."""
    from cogviz.metrics import anchor_metrics, ssim_video

    video = panned(32, 48, 1, 1, n=4)
    want = ssim_video(video, video[0])
    planar = np.ascontiguousarray(np.moveaxis(video, 3, 1))  # (F, 3, H, W)
    view = np.moveaxis(planar, 1, 3)
    np.testing.assert_array_equal(ssim_video(view, view[0]), want)
    np.testing.assert_array_equal(anchor_metrics(view, view[0])["ssim"], want)
    flipped = np.ascontiguousarray(video[:, ::-1])
    np.testing.assert_array_equal(ssim_video(video[:, ::-1], video[0][::-1]), ssim_video(flipped, flipped[0]))


@pytest.mark.parametrize("shape", [(2, 9, 13), (3, 20, 33), (2, 37, 70), (2, 3, 40)])
def test_the_compiled_flow_equals_scikit_image_on_odd_and_small_frames(shape):
    """The compiled level loop (cogviz.kernels) equals ``optical_flow_ilk`` pair by pair on frames
    narrower than the 15 x 15 window (mirrored again and again), odd sizes (a pyramid level rounded
    up) and three-row frames. (Two-row frames give ill-conditioned systems whose flow, tens of pixels,
    differs by float32 rounding from any summation order: scikit-image's own is not reproducible there.)"""
    from scipy.ndimage import gaussian_filter
    from skimage.registration import optical_flow_ilk

    from cogviz.flow import ilk_flow

    n, h, w = shape
    base = gaussian_filter(np.random.default_rng(h * w).random((h + 2 * n, w + 3 * n)).astype(np.float32), 1.5)
    grey = np.stack([base[2 * t:2 * t + h, 3 * t:3 * t + w] for t in range(n)])
    flow = ilk_flow(grey[:-1], grey[1:])
    for i in range(n - 1):
        np.testing.assert_allclose(flow[:, i], optical_flow_ilk(grey[i], grey[i + 1], radius=7, num_warp=3), atol=2e-5)


def test_the_calling_thread_takes_the_metrics_the_worker_has_not_started(monkeypatch):
    """Once the flow is done, the calling thread measures the registered metrics the worker has not
    taken yet: two metrics that each wait for the other finish only if two threads run them."""
    import threading

    import cogviz.metrics as M

    monkeypatch.setattr(M, "REGISTRY", dict(M.REGISTRY))
    met = {name: threading.Event() for name in ("a", "b")}
    ran_on = {}

    for name, other in (("a", "b"), ("b", "a")):
        @M.register(f"waits_{name}", f"waits for {other}")
        def _waits(video, ref, name=name, other=other):
            ran_on[name] = threading.get_ident()
            met[name].set()
            assert met[other].wait(timeout=30), f"metric {other} never ran beside {name}"
            return np.zeros(len(video))

    frames = panned(32, 48, 1, 0, n=3)
    df = M.anchor_metrics(frames, frames[0])
    assert ran_on["a"] != ran_on["b"] and threading.get_ident() in ran_on.values()
    assert (df["waits_a"] == 0).all() and (df["waits_b"] == 0).all()


def test_the_kernels_compile_without_a_writable_cache_directory(monkeypatch):
    """numba refuses ``cache=True`` at decoration where no cache directory is writable ("no locator
    available"); the kernels are then compiled without the disk cache instead of failing the import."""
    import numba

    from cogviz import kernels

    real = numba.njit

    def no_cache_dir(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kw)

    monkeypatch.setattr(numba, "njit", no_cache_dir)

    def double(x):
        return 2 * x

    assert kernels._compiled(double)(21) == 42


def test_ssim_rounds_as_scikit_image_and_refuses_frames_smaller_than_its_window():
    """The compiled SSIM keeps each channel's mean in float32 as scikit-image does: a frame equal to
    the image scores exactly 1, and every frame scores scikit-image's float32 value to a few units in
    the last place (its window means round differently). Frames smaller than the 7 x 7 window are refused by name, not measured as NaN."""
    from skimage.metrics import structural_similarity

    from cogviz.errors import CogvizError
    from cogviz.metrics import ssim_video

    video = panned(37, 53, 2, 1, n=4)
    noisy = np.clip(video.astype(int) + np.random.default_rng(1).integers(-40, 40, video.shape), 0, 255).astype(np.uint8)
    frames = np.concatenate([video, noisy])
    got = ssim_video(frames, video[0])
    assert got[0] == 1.0
    for f, value in zip(frames, got):
        want = structural_similarity(video[0].astype(np.float32), f.astype(np.float32), channel_axis=-1, data_range=255)
        assert abs(value - want) <= 4 * np.spacing(np.float32(want)), (value, want)
    with pytest.raises(CogvizError, match="at least 7 x 7 pixels.*got 6 x 40"):
        anchor_metrics(np.zeros((2, 6, 40, 3), np.uint8), np.zeros((6, 40, 3), np.uint8))
