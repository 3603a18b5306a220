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
    results = [sweep(toy, [img], [prompt_for(s)], [A.ZeroImage(), A.ScaleImage(1.0)], [0, 1, 2, 3], out_dir=out,
                     steps=8, progress=False) for img, s in zip(images, scenes)]
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
