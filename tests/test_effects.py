"""Paired effects with confidence intervals (issue 45): the interval's coverage on simulated paired
sweeps with a known effect, the errors of the API, and the toy's own sweep."""
import numpy as np
import pandas as pd
import pytest

from cogviz.effects import paired_effects, paired_interval, seeds_needed
from cogviz.errors import CogvizError


def _sweep(rng, effects_by_image, seeds: int, noise: float = 0.03) -> pd.DataFrame:
    """One simulated sweep: per (image, seed) a baseline value and a variant value whose paired
    difference is the image's effect plus noise (a larger spread on some images)."""
    rows = []
    for i, effect in enumerate(effects_by_image):
        spread = noise * (1 + 0.3 * i / max(1, len(effects_by_image) - 1))
        for s in range(seeds):
            base = 0.8 + 0.05 * rng.normal()  # seed-to-seed variation shared by the pair
            rows += [dict(image=f"img{i}", prompt="p", seed=s, label="baseline", ssim=base),
                     dict(image=f"img{i}", prompt="p", seed=s, label="zero",
                          ssim=base + effect + spread * rng.normal())]
    return pd.DataFrame(rows)


def test_the_95_percent_intervals_cover_a_known_effect_in_93_to_97_percent_of_sweeps():
    """2,000 simulated sweeps of 6 images x 10 seeds, per-image effects around a known mean: the
    paired, stratified bootstrap interval holds the true effect (the mean of the images' effects)
    in 93-97 % of them."""
    rng = np.random.default_rng(2026)
    per_image = np.array([-0.08, -0.05, -0.02, -0.06, -0.04, -0.03])
    hits, n = 0, 2000
    for k in range(n):
        table = _sweep(rng, per_image, seeds=10)
        diffs = table[table.label == "zero"].ssim.to_numpy() - table[table.label == "baseline"].ssim.to_numpy()
        _, low, high, method = paired_interval(diffs, table[table.label == "zero"].image.to_numpy(),
                                               n_resamples=1000, seed=k)
        assert method == "BCa"
        hits += low <= per_image.mean() <= high
    assert 0.93 <= hits / n <= 0.97, hits / n


def test_the_api_refuses_what_it_cannot_pair_naming_the_closest():
    table = _sweep(np.random.default_rng(0), [-0.05, -0.02], seeds=3)
    with pytest.raises(CogvizError, match="did you mean 'ssim'"):
        paired_effects(table, "ssmi")
    with pytest.raises(CogvizError, match="did you mean 'baseline'"):
        paired_effects(table, "ssim", baseline="basline")
    lonely = pd.concat([table, pd.DataFrame([dict(image="other", prompt="p", seed=9, label="noise", ssim=0.5)])])
    with pytest.raises(CogvizError, match="'noise' has no run paired"):
        paired_effects(lonely, "ssim")
    twice = pd.concat([table, table[table.label == "baseline"].head(1)])
    with pytest.raises(CogvizError, match="two baseline runs share"):
        paired_effects(twice, "ssim")
    with pytest.raises(CogvizError, match="NaN or inf"):
        paired_interval([0.1, float("inf")])


def test_the_interval_knows_where_it_cannot_be_bca():
    effect, low, high, method = paired_interval([0.2])  # n=1: no interval, NaN bounds
    assert effect == 0.2 and np.isnan(low) and np.isnan(high) and method == "n=1"
    assert paired_interval([0.0, 0.0, 0.0]) == (0.0, 0.0, 0.0, "exact")
    # one pair in a stratum: strata pooled, still an interval that holds the mean
    effect, low, high, method = paired_interval([0.1, 0.12, 0.3], ["a", "a", "b"])
    assert low <= effect <= high and method in ("BCa", "percentile")


def test_more_seeds_narrow_the_interval_as_seeds_needed_predicts():
    """A pilot of 4 seeds per image predicts the pairs that reach a half-width; a sweep of that size
    reaches it within 25 %."""
    rng = np.random.default_rng(7)
    per_image = [-0.05, -0.03, -0.04]
    pilot = paired_effects(_sweep(rng, per_image, seeds=4), "ssim")
    target = pilot["high"].iloc[0] - pilot["low"].iloc[0]  # half the pilot's half-width: 4x the pairs
    plan = seeds_needed(pilot, target / 4)
    need = int(plan["n_needed"].iloc[0])
    assert 3.5 * 12 <= need <= 4.5 * 12
    big = paired_effects(_sweep(rng, per_image, seeds=-(-need // 3)), "ssim")
    got = (big["high"].iloc[0] - big["low"].iloc[0]) / 2
    assert abs(got - target / 4) / (target / 4) < 0.25, (got, target / 4)
    with pytest.raises(CogvizError, match="half_width"):
        seeds_needed(pilot, 0)


@pytest.fixture(scope="module")
def toy_sweep(tmp_path_factory):
    """The toy on two held-out scenes x 4 seeds: the baseline, zeroed z_img, and a variant that
    changes nothing (z_img scaled by 1)."""
    import cogviz
    import cogviz.ablations as A
    from cogviz.sweep import sweep
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    toy = cogviz.load_pipeline("toy")
    scenes = [sample_scene(1_000_000_000 + s) for s in range(2)]
    out = tmp_path_factory.mktemp("effects")
    images = [render_scene(s, frames=[0])[0] for s in scenes]
    # one variant per forward: rows of one batch differ in their last bits (a few pixel levels after
    # decoding), so only runs computed apart make the scaled-by-1 variant equal to the baseline
    results = [sweep(toy, [img], [prompt_for(s)], [A.ZeroImage(), A.ScaleImage(1.0)], [0, 1, 2, 3], out_dir=out,
                     steps=8, progress=False, batch=1) for img, s in zip(images, scenes)]
    from cogviz.sweep import SweepResult

    assert sum(len(r) for r in results) == 24
    return SweepResult.load(out)


def test_on_the_toy_zeroing_z_img_excludes_zero_and_a_no_op_holds_it(toy_sweep):
    e = toy_sweep.effects("ssim", frames="later").set_index("label")
    zero, same = e.loc["zero_image"], e.loc[[lab for lab in e.index if lab.startswith("scale_image")][0]]
    assert zero["n"] == 8 and zero["excludes_zero"] and zero["high"] < 0, zero
    assert same["low"] <= 0 <= same["high"] and not same["excludes_zero"], same
    # per frame: a band per frame, frame 0 included
    curves = toy_sweep.effects("ssim")
    assert sorted(curves["frame"].unique()) == list(range(17)) and (curves["n"] == 8).all()
    with pytest.raises(CogvizError, match="did you mean 'mean_ssim'"):
        toy_sweep.effects("mean_ssmi")
    with pytest.raises(CogvizError, match="frames="):
        toy_sweep.effects("ssim", frames=[40])


def _open_offline(path):
    """Open a file in Chromium: what its images decoded to, and every request that left the file or failed."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS, _need_chromium

    _need_chromium()
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.on("requestfailed", lambda r: problems.append(f"failed {r.url[:60]} ({r.failure})"))
        page.on("request", lambda r: not r.url.startswith(("data:", "file:")) and problems.append(f"left: {r.url}"))
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(path.as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight])")
        text = page.inner_text("body")
        browser.close()
    return images, text, problems


@pytest.mark.browser
def test_the_report_opens_offline_in_chromium_with_its_effects_plots_and_videos(toy_sweep, tmp_path):
    path = toy_sweep.report(tmp_path / "report.html")
    html = path.read_text()
    assert "default-src 'none'" in html and "<script" not in html and "http" not in html.split("<body>")[1]
    images, text, problems = _open_offline(path)
    assert problems == []
    alts = [a for a, w, h in images if w > 0 and h > 0]  # decoded, not broken
    assert len(alts) == len(images) == 4 + 3, images  # 4 plots, 3 video grids (2 images first, then a 2nd seed)
    assert {"forest plot", "effect per frame", "anchor decay", "fidelity against motion"} <= set(alts)
    grids = [a for a in alts if " · seed " in a]
    assert len({a.split(" · ")[0] for a in grids}) == 2  # both images drawn before a second seed of either
    # the effects table says what the test above measured: zero_image's interval excludes 0
    e = toy_sweep.effects("mean_ssim").set_index("label")
    assert "zero_image" in text and f"{e.loc['zero_image', 'effect']:.4f}" in text


def test_the_report_escapes_what_the_results_hold_and_refuses_what_it_cannot_draw(toy_sweep, tmp_path):
    import copy

    from cogviz.cli import main
    from cogviz.sweep.report import report_html

    hostile = copy.copy(toy_sweep)
    hostile.runs = toy_sweep.runs.assign(prompt="<script>alert(1)</script>", image="<img src=x onerror=alert(1)>")
    page = report_html(hostile, per_frame=None)
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;script&gt;alert(1)" in page
    with pytest.raises(CogvizError, match="per_frame='ssmi' is not a per-frame metric.*ssim"):
        report_html(toy_sweep, per_frame="ssmi")
    with pytest.raises(CogvizError, match="did you mean 'zero_image'"):
        report_html(toy_sweep, baseline="zero_imag")
    with pytest.raises(CogvizError, match="expected an .html file"):
        toy_sweep.report(tmp_path / "report.pdf")
    # the CLI writes into the results folder and says where; a folder that is no sweep is one clear line
    assert main(["report", str(toy_sweep.out_dir), "--per-frame", "none"]) == 0
    assert (toy_sweep.out_dir / "report.html").stat().st_size > 10_000
    assert main(["report", str(tmp_path)]) == 2


def test_a_sweep_extends_itself_until_the_interval_is_as_narrow_as_asked(tmp_path):
    import cogviz
    import cogviz.ablations as A
    from cogviz.sweep import sweep_until
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    toy = cogviz.load_pipeline("toy")
    scene = sample_scene(1_000_000_007)
    img, prompt = render_scene(scene, frames=[0])[0], prompt_for(scene)
    with pytest.raises(CogvizError, match="half_width=0"):
        sweep_until(toy, img, prompt, [A.ZeroImage()], [0], out_dir=tmp_path, half_width=0)
    with pytest.raises(CogvizError, match="max_seeds=1"):
        sweep_until(toy, img, prompt, [A.ZeroImage()], [0], out_dir=tmp_path, half_width=0.1, max_seeds=1)
    # one seed gives no interval, so it adds seeds; the widest half-width reached is the one asked
    kw = dict(out_dir=tmp_path, steps=4, num_frames=9, progress=False, metric="mean_ssim")
    r = sweep_until(toy, img, prompt, [A.ZeroImage()], [0], half_width=0.08, max_seeds=12, **kw)
    e = r.effects("mean_ssim").set_index("label").loc["zero_image"]
    assert r.rounds[0]["seeds"] == 1 and r.rounds[-1]["seeds"] == e["n"] > 1
    assert (e["high"] - e["low"]) / 2 <= 0.08 and r.rounds[-1]["widest_half_width"] <= 0.08
    assert sorted(r.runs["seed"].unique()) == list(range(e["n"]))  # the next unused seeds, in order
    # asked again, it computes nothing; asked for more than max_seeds allow, it says what it reached
    calls = []
    again = sweep_until(toy, img, prompt, [A.ZeroImage()], [0], half_width=0.08, max_seeds=12,
                        callback=lambda done, total: calls.append((done, total)), **kw)
    assert len(again) == len(r) and all(done == total for done, total in calls)
    with pytest.warns(UserWarning, match=r"stopped at max_seeds=3 with the widest interval ±"):
        sweep_until(toy, img, prompt, [A.ZeroImage()], [0], half_width=1e-6, max_seeds=3, **kw)
