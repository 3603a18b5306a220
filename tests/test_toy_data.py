"""The embedded model's training data: photographs and their splits, procedural images, camera
moves, the mix, and the motion measurements the photo evaluation relies on."""
import numpy as np
import pytest
from PIL import Image

from cogviz.toy import data as D
from cogviz.toy import natural as N
from cogviz.toy.components import VOCAB
from cogviz.toy.scenes import sample_scene
from cogviz.trainer.evaluate import DCT_KEEP, aligned_psnr, dct_reference, global_motion, motion_matches, psnr_uint8


@pytest.fixture(scope="module")
def pool():
    return N.SourcePool(0, procedural=8)


def test_photo_splits_are_disjoint_and_heldout_comes_from_other_packages():
    splits = {p.split for p in N.PHOTOS}
    assert splits == {"train", "val", "heldout"}
    train_pkgs = {p.package for p in N.PHOTOS if p.split == "train"}
    heldout_pkgs = {p.package for p in N.PHOTOS if p.split == "heldout"}
    assert not train_pkgs & heldout_pkgs  # no held-out photograph shares a source with training
    assert all(p.licence for p in N.PHOTOS)
    names = [p.name for p in N.PHOTOS]
    assert len(names) == len(set(names))


def test_every_photo_loads_as_rgb_at_most_640(pool):
    for p in N.PHOTOS:
        a = N.photo(p.name)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3, p.name
        assert max(a.shape[:2]) <= 640 and min(a.shape[:2]) >= 128, p.name
    # the pool holds the training photographs (and mirrors), never a val or held-out one
    assert len(pool.photos) == 2 * sum(p.split == "train" for p in N.PHOTOS)
    held = {N.photo(p.name).tobytes()[:4096] for p in N.PHOTOS if p.split != "train"}
    assert not held & {np.asarray(im).tobytes()[:4096] for im in pool.photos}


def test_heldout_views_are_deterministic_and_distinct():
    a, b = N.heldout_views(), N.heldout_views()
    assert len(a) == 24 and [n for n, _ in a] == [n for n, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
    assert all(v.shape == (64, 96, 3) and v.dtype == np.uint8 for _, v in a)
    diffs = [np.abs(a[i][1].astype(int) - a[i + 1][1].astype(int)).mean() for i in range(len(a) - 1)]
    assert min(diffs) > 5  # every view is a different picture


def test_fractal_noise_has_the_requested_spectrum():
    rng = np.random.default_rng(0)
    for alpha in (1.0, 2.0):
        x = N.fractal_noise(rng, 128, 128, alpha=alpha, colour=False)[..., 0]
        assert x.shape == (128, 128) and 0 <= x.min() and x.max() <= 1
        p = np.abs(np.fft.fft2(x - x.mean())) ** 2
        f = np.sqrt(np.fft.fftfreq(128)[:, None] ** 2 + np.fft.fftfreq(128)[None] ** 2)
        m = (f > 0.02) & (f < 0.25)
        slope = np.polyfit(np.log(f[m]), np.log(p[m] + 1e-12), 1)[0]
        assert slope == pytest.approx(-2 * alpha, abs=0.6)  # power ~ f^(-2 alpha)


def test_dead_leaves_are_reproducible_occluding_disks():
    a = N.dead_leaves(np.random.default_rng(3), 96, 144)
    b = N.dead_leaves(np.random.default_rng(3), 96, 144)
    assert np.array_equal(a, b) and a.shape == (96, 144, 3) and 0 <= a.min() and a.max() <= 1
    # many distinct regions: strong edges in many places, and more than a handful of colours
    edges = np.abs(np.diff(a.mean(-1), axis=1)) > 0.1
    assert edges.mean() > 0.02
    assert len(np.unique((a * 8).astype(int).reshape(-1, 3), axis=0)) > 50


def _dot_source(points, h=240, w=360):
    img = np.full((h, w, 3), 40, np.uint8)
    for y, x in points:
        img[y - 4:y + 4, x - 4:x + 4] = 255
    return img


def _bright_centroid(frame):
    ys, xs = np.nonzero(frame.mean(-1) > 150)
    return np.array([ys.mean(), xs.mean()])


@pytest.mark.parametrize("move", list(N.CAMERA_MOVES))
def test_camera_moves_move_the_content_against_the_camera(move):
    rng = np.random.default_rng(1)
    if "zoom" in move:
        src = _dot_source([(120, 150), (120, 210)])
        frames, _ = N.camera_clip(rng, move, source=src, travel=0.25)

        def spread(f):
            ys, xs = np.nonzero(f.mean(-1) > 150)
            return xs.max() - xs.min()
        grew = spread(frames[-1]) > spread(frames[0]) + 3
        shrank = spread(frames[-1]) < spread(frames[0]) - 3
        assert grew if move == "zooms in" else shrank
    else:
        src = _dot_source([(120, 180)])
        frames, _ = N.camera_clip(rng, move, source=src, travel=0.25)
        wy, wx, _ = N.CAMERA_MOVES[move]
        d = _bright_centroid(frames[-1]) - _bright_centroid(frames[0])
        assert d[0] * wy + d[1] * wx < -5  # pans left: the dot slides right, and so on
    assert frames.shape == (17, 64, 96, 3)


def test_training_clips_follow_the_mix_and_speak_the_vocabulary(pool):
    kinds = [D.training_clip(s, pool, num_frames=5).kind for s in range(300)]
    for kind, share in D.MIX.items():
        assert abs(kinds.count(kind) / 300 - share) < 0.08, kind
    for s in range(40):
        c = D.training_clip(s, pool)
        assert c.frames.shape == (17, 64, 96, 3)
        assert all(w in VOCAB for w in c.prompt.split()), c.prompt
        again = D.training_clip(s, pool)
        assert np.array_equal(c.frames, again.frames) and c.prompt == again.prompt


def test_full_range_backgrounds_reach_dark_and_saturated_colours():
    cols = np.array([c for s in range(200) for c in sample_scene(s, backgrounds="full").bg_colours])
    assert cols.max(axis=1).min() < 60                     # dark backgrounds
    assert (cols.max(axis=1) - cols.min(axis=1)).max() > 180  # saturated ones
    muted = np.array([c for s in range(200) for c in sample_scene(s).bg_colours])
    assert (muted.max(axis=1) - muted.min(axis=1)).max() <= 36
    with pytest.raises(ValueError, match="'muted' or 'full'"):
        sample_scene(0, backgrounds="neon")


def test_global_motion_recovers_known_shifts_and_zooms():
    photo = N.heldout_views()[0][1]
    big = np.asarray(Image.fromarray(N.photo("grace_hopper")).resize((288, 192)))
    first = big[40:104, 60:156]
    for dy, dx in [(0, 7), (0, -9), (6, 0), (-5, 0), (3, -4)]:
        last = big[40 - dy:104 - dy, 60 - dx:156 - dx]  # the content moved by (dy, dx)
        my, mx, s = global_motion(first, last)
        assert (my, mx) == pytest.approx((dy, dx), abs=1.0) and s == pytest.approx(1.0, abs=0.05)
    grown = np.asarray(Image.fromarray(photo).resize((96, 64), box=(12, 8, 84, 56)))  # 1.33x zoom
    assert global_motion(photo, grown)[2] == pytest.approx(4 / 3, rel=0.06)
    assert global_motion(grown, photo)[2] == pytest.approx(3 / 4, rel=0.06)


def test_motion_matches_and_aligned_psnr():
    assert motion_matches("pans left", (0.0, 6.0, 1.0)) and not motion_matches("pans left", (0.0, -6.0, 1.0))
    assert motion_matches("pans up", (5.0, 1.0, 1.0)) and not motion_matches("pans up", (1.0, 5.0, 1.0))
    assert motion_matches("zooms in", (0, 0, 1.2)) and not motion_matches("zooms in", (0, 0, 0.9))
    assert motion_matches("zooms out", (0, 0, 0.8)) and not motion_matches("zooms out", (0, 0, 1.0))
    views = N.heldout_views()
    photo, other = views[0][1], views[9][1]
    assert aligned_psnr(photo, photo, (0, 0, 1.0)) > 90
    assert aligned_psnr(other, photo, (0, 0, 1.0)) < 14


def test_dct_reference_keeps_the_latent_budget_and_loses_detail_in_order():
    """The VAE's reference code: 16 numbers per 8 x 8 block (as the 16-channel latent), exact when
    every coefficient is kept, worse with every coefficient dropped, and a flat block is kept whole."""
    assert sum(DCT_KEEP) == 16
    photo = N.heldout_views(per_photo=1)[0][1]
    assert psnr_uint8(dct_reference(photo, (64, 64, 64)), photo) > 40  # only YCbCr rounding is lost
    scores = [psnr_uint8(dct_reference(photo, (k, max(k // 3, 1), max(k // 3, 1))), photo) for k in (1, 4, 10, 32)]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 6, scores
    flat = np.full((64, 96, 3), (200, 40, 90), np.uint8)
    assert psnr_uint8(dct_reference(flat, (1, 1, 1)), flat) > 40
    with pytest.raises((ValueError, AssertionError, RuntimeError)):
        dct_reference(photo[:60])  # not a multiple of 8


def test_opposite_prompt_flips_every_training_direction_and_the_gap_reads_it():
    """The training log's direction probe: every prompt of the mix has an opposite that differs
    only in its direction word, and the gap is 1.0 exactly when the word changes nothing."""
    import torch

    from cogviz.trainer.train import OPPOSITE as OPPOSITE_WORDS
    from cogviz.trainer.train import opposite_prompt, prompt_gap

    pool = N.SourcePool(0, procedural=4)
    assert "still" not in OPPOSITE_WORDS  # "the camera holds still" has no opposite; the probe skips it
    for seed in range(40):
        prompt = D.training_clip(seed, pool).prompt
        flipped = opposite_prompt(prompt)
        assert flipped != prompt and opposite_prompt(flipped) == prompt
        assert flipped.split()[:-1] == prompt.split()[:-1]
        assert all(w in VOCAB for w in flipped.split())
    assert opposite_prompt("the camera zooms in") == "the camera zooms out"
    same = torch.tensor([0.02, 0.03])
    assert prompt_gap(same, same) == 1.0 and prompt_gap(same, 5 * same) == pytest.approx(5.0)


def test_transformer_clip_drawing_weights_kinds_and_never_draws_validation_clips():
    import torch

    from cogviz.trainer.train import TrainConfig, clip_probabilities, parse_kind_weights

    assert parse_kind_weights("shapes:1, camera:3") == {"shapes": 1.0, "camera": 3.0}
    parse_kind_weights(TrainConfig().tr_kind_weights)
    for bad, says in [("shape:1", "KIND one of"), ("camera", "KIND:WEIGHT"), ("camera:x", "not a number"),
                      ("camera:-1", "negative"), ("camera:0", "no kind a positive weight")]:
        with pytest.raises(ValueError, match=says):
            parse_kind_weights(bad)
    kinds = ["camera"] * 4 + ["shapes"] * 2 + ["camera"] * 6 + ["shapes_photo"] * 2
    p = clip_probabilities(kinds, {"shapes": 0.5, "camera": 0.5, "shapes_full": 1.0}, first=4)
    assert float(p[:4].sum()) == 0  # the validation clips
    assert float(p.sum()) == pytest.approx(1.0)  # shapes_full has no clips: renormalized
    assert float(p[4:6].sum()) == pytest.approx(0.5) and float(p[6:12].sum()) == pytest.approx(0.5)
    assert float(p[12:].sum()) == 0
    draws = torch.multinomial(p, 4000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert abs(float((draws < 6).float().mean()) - 0.5) < 0.05 and int(draws.min()) >= 4
    with pytest.raises(ValueError, match="no training clip"):
        clip_probabilities(kinds, {"shapes_full": 1.0})


def test_training_timesteps_put_the_high_noise_share_where_asked():
    import torch

    from cogviz.trainer.train import draw_timesteps

    g = torch.Generator().manual_seed(0)
    t = torch.cat([draw_timesteps(16, g, 1000, 0.5, 700) for _ in range(400)])
    assert int(t.min()) >= 0 and int(t.max()) < 1000
    # half drawn from [700, 1000), half from all of [0, 1000): 0.5 + 0.5 * 0.3 = 65 % land high
    assert abs(float((t >= 700).float().mean()) - 0.65) < 0.03
    plain = torch.cat([draw_timesteps(16, g) for _ in range(400)])
    assert abs(float((plain >= 700).float().mean()) - 0.30) < 0.03
    assert bool((draw_timesteps(8, g, 1000, 1.0, 900) >= 900).all())
    for kwargs, says in [(dict(high_share=1.5), "tr_high_share"), (dict(high_share=0.5, high_from=1000), "tr_high_from")]:
        with pytest.raises(ValueError, match=says):
            draw_timesteps(4, g, 1000, **kwargs)
    from cogviz.trainer.train import TrainConfig

    for bad, says in [(dict(tr_high_share=-0.1), "tr_high_share"), (dict(tr_high_from=1000), "tr_high_from"),
                      (dict(tr_kind_weights="shape:1"), "tr_kind_weights: 'shape:1' is not KIND:WEIGHT"),
                      (dict(tune_kind_weights="camera:-1"), "tune_kind_weights: weight of 'camera' is negative"),
                      (dict(tune_steps=-5), "tune_steps must be >= 0"),
                      (dict(vae_channels="16,32,30,64"), r"VAE channels \(16, 32, 30, 64\).*multiple of 8"),
                      (dict(vae_channels="16,32,64"), "need 4 blocks"),
                      (dict(vae_channels="16,x,32,64"), "not 4 comma-separated integers"),
                      (dict(vae_latent_noise=-0.1), "vae_latent_noise must be >= 0")]:
        with pytest.raises(ValueError, match=says):  # a bad configuration fails before any stage runs
            TrainConfig(**bad)


def test_shape_stays_whole_passes_the_scene_and_fails_copies_smears_and_loss():
    from dataclasses import replace

    from cogviz.toy.scenes import COLOURS, render_scene, sample_scene
    from cogviz.trainer.evaluate import WHOLE_FRAMES, colour_mask, shape_stays_whole

    scene = sample_scene(1_000_000_001)
    truth = render_scene(scene)
    assert shape_stays_whole(truth, truth, scene.colour)
    # a second copy of the shape, 30 px away across the motion, in every inspected frame
    dy, dx = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}[scene.direction]
    other = render_scene(replace(scene, start=(scene.start[0] + 30 * dx, scene.start[1] + 30 * dy)))
    copies = truth.copy()
    mask = np.linalg.norm(other.astype(float) - truth.astype(float), axis=-1) > 0
    copies[mask] = other[mask]
    assert not shape_stays_whole(copies, truth, scene.colour)
    smear = truth.copy()  # one piece of the shape's colour, but far larger than the shape
    f = WHOLE_FRAMES[-1]
    ys, xs = np.nonzero(colour_mask(truth[f], scene.colour))
    smear[f, max(ys.min() - 12, 0):ys.max() + 12, max(xs.min() - 12, 0):xs.max() + 12] = COLOURS[scene.colour]
    assert colour_mask(smear[f], scene.colour).sum() > 2.5 * len(ys)
    assert not shape_stays_whole(smear, truth, scene.colour)
    gone = truth.copy()
    gone[WHOLE_FRAMES[0]] = truth[WHOLE_FRAMES[0], 0, 0]
    assert not shape_stays_whole(gone, truth, scene.colour)


def test_the_still_camera_repeats_its_window_and_names_itself(pool):
    clip = D.training_clip(5, pool, kind="still")
    assert clip.prompt == "the camera holds still" and clip.kind == "still"
    assert all(np.array_equal(f, clip.frames[0]) for f in clip.frames)
    assert clip.frames[0].std() > 5  # a natural image, not a blank
    assert all(w in VOCAB for w in clip.prompt.split())
    with pytest.raises(ValueError, match="'pans left'.*'holds still'"):
        N.camera_clip(np.random.default_rng(0), "pans sideways", source=np.zeros((192, 288, 3), np.uint8))


def test_camera_travel_range_sets_how_far_a_move_goes():
    src = _dot_source([(120, 180)])
    dist = {}
    for travel in ((0.05, 0.05), (0.30, 0.30)):
        frames, _ = N.camera_clip(np.random.default_rng(1), "pans left", source=src, travel_range=travel)
        dist[travel] = abs(_bright_centroid(frames[-1])[1] - _bright_centroid(frames[0])[1])
    assert dist[(0.30, 0.30)] > 4 * dist[(0.05, 0.05)] > 0


def test_the_still_kind_leaves_the_earlier_mix_draws_unchanged(pool):
    """``still`` has no share in the default mix, so a seed draws the kind (and clip) it drew
    before the kind existed: the shipped recipe's cache is still reproducible."""
    shares = {k: v for k, v in D.MIX.items() if k != "still"}
    assert D.MIX["still"] == 0 and list(D.MIX)[-1] == "still"
    for seed in range(200):
        rng = np.random.default_rng([seed, 17])
        before = str(rng.choice(list(shares), p=list(shares.values())))
        assert D.training_clip(seed, pool, num_frames=2).kind == before
