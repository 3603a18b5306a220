"""AblationLab: a thin view over cogviz.sweep, driven through its traits and buttons (no browser)."""
import pytest

import cogviz.ablations as A
import cogviz.models as M
from cogviz.errors import AblationError, CogvizError
from cogviz.sweep import SweepResult
from cogviz.widgets import AblationLab, ImageFitter
from cogviz.widgets.ablation_lab import AblationRow, parse_seeds

PROMPT = "a red circle moves left"


@pytest.fixture(scope="module")
def toy():
    return M.load_pipeline("toy")


@pytest.fixture
def count_forwards(toy):
    calls = []
    hook = toy.transformer.register_forward_hook(lambda *a: calls.append(1))
    yield calls
    hook.remove()


def test_parse_seeds():
    assert parse_seeds("0, 1 2") == [0, 1, 2] and parse_seeds("3-5, 4") == [3, 4, 5]
    for bad, msg in (("1, x", "'x' is not a whole number"), ("5-2", "runs backwards"), (" ", "seeds is empty")):
        with pytest.raises(CogvizError, match=msg):
            parse_seeds(bad)


def test_a_row_has_a_field_per_parameter_and_turns_into_its_ablation():
    row = AblationRow("noise_image")
    assert list(row.inputs) == ["sigma", "space", "seed", "schedule"] and row.inputs["space"].options == ("pixel", "latent")
    assert row.inputs["schedule"].options == ("constant", "timestep")
    row.inputs["sigma"].value, row.inputs["space"].value = 0.3, "latent"
    assert row.ablation() == A.NoiseImage(0.3, space="latent")
    row.kind.value = "mask_image"  # a new kind rebuilds the fields
    assert list(row.inputs) == ["box", "keep"]
    row.inputs["box"].value, row.inputs["keep"].value = "[0, 0, 48, 64]", True
    assert row.ablation() == A.MaskImage((0, 0, 48, 64), keep=True)
    row.inputs["box"].value = "0 0 48"
    with pytest.raises(CogvizError, match=r"mask_image.box='0 0 48': expected a JSON list"):
        row.ablation()
    row.kind.value = "scale_image"
    row.inputs["alpha"].value = 11
    with pytest.raises(CogvizError, match=r"scale_image.alpha=11"):
        row.ablation()


def test_rows_edit_attention_inside_the_transformer():
    row = AblationRow("attention_knockout")
    assert list(row.inputs) == ["layers", "queries", "keys", "start", "end", "heads"]
    assert row.ablation() == A.AttentionKnockout()  # the defaults: every block, later frames -> image frame
    row.inputs["layers"].value, row.inputs["end"].value = "[0, 3]", 0.5
    assert row.ablation() == A.AttentionKnockout(layers=(0, 3), end=0.5)
    row.kind.value = "scale_attention"
    row.inputs["factor"].value, row.inputs["queries"].value = 2.0, "[1, 2]"
    assert row.ablation() == A.ScaleAttention(2.0, queries=(1, 2))
    row.inputs["keys"].value = "imgae"
    with pytest.raises(CogvizError, match="did you mean 'image'"):
        row.ablation()


def test_rows_are_added_and_removed(toy, tmp_path):
    lab = AblationLab(toy, prompt=PROMPT, out_dir=tmp_path / "lab", steps=2)
    assert [r.kind.value for r in lab.rows.children] == ["zero_image", "scale_image"]
    lab.add_button.click()
    assert len(lab.rows.children) == 3 and lab.rows.children[-1].kind.value == "noise_image"
    lab.rows.children[0].remove.click()
    assert [r.kind.value for r in lab.rows.children] == ["scale_image", "noise_image"]
    assert lab.ablations() == [A.ScaleImage(0.5), A.NoiseImage(0.1)]


def test_run_sweeps_shows_every_view_and_a_second_lab_reopens_it_without_compute(toy, tmp_path, count_forwards):
    fitter = ImageFitter(sample="shapes")
    lab = AblationLab(toy, fitter, prompt=PROMPT, seeds=(0, 1), out_dir=tmp_path / "lab", steps=2,
                      ablations=[A.ZeroImage(), {"kind": "flip_image"}])
    assert fitter.preset.value == "cogviz-toy"  # the fitter now fits to the toy's size
    assert lab.result is None and count_forwards == []  # building it computes nothing
    assert lab.comm is not None and lab.model_id  # its comm is open: the front end can find the model
    seen = []
    lab.observe(lambda ch: seen.append(ch.new), "result")
    lab.run_button.click()
    assert lab.error == "" and len(seen) == 1
    r = lab.result
    assert isinstance(r, SweepResult) and len(r) == 6  # 2 seeds x (baseline + 2)
    assert lab.progress.value == lab.progress.max == 6 and lab.progress.bar_style == "success"
    for label in ("baseline", "zero_image", "flip_image(axis=horizontal)", "frame0_psnr", "mean_ssim"):
        assert label in lab.table.value
    assert lab.grid_seed.options == (0, 1) and lab.scrubber.max == 16
    assert all(len(w.value) > 1000 for w in (lab.grid_image, lab.decay, lab.tradeoff))
    from cogviz.metrics import REGISTRY

    assert [v for _, v in lab.decay_metric.options] == list(REGISTRY)  # the registry's metrics, in order
    # the effects: each variant against the baseline, paired by seed, with its interval
    e = r.effects("mean_ssim").set_index("label")
    assert "zero_image" in lab.effects.value and f"{e.loc['zero_image', 'low']:.4f}" in lab.effects.value
    assert (e["n"] == 2).all() and "no interval" not in lab.effects.value
    before, curves = lab.decay.value, lab.effect_curves.value
    assert len(curves) > 1000
    lab.decay_metric.value = "palette"
    assert lab.decay.value != before and len(lab.decay.value) > 1000  # the curve of the chosen metric
    assert lab.effect_curves.value != curves  # and its paired bands
    first = lab.grid_image.value
    lab.scrubber.value = 16
    assert lab.grid_image.value != first  # the scrubber moves the video
    lab.grid_seed.value = 1
    assert lab.grid_image.value != first

    count_forwards.clear()
    again = AblationLab(toy, prompt=PROMPT, out_dir=tmp_path / "lab")  # an existing folder: shown at once
    assert count_forwards == [] and len(again.result) == 6 and "6 runs read from" in again.status.value
    assert again.table.value == lab.table.value and again.progress.value == again.progress.max == 6
    lab.run_button.click()  # everything is done: nothing recomputed
    assert count_forwards == [] and len(lab.result) == 6


def test_bad_inputs_say_what_is_wrong_and_run_nothing(toy, tmp_path, count_forwards):
    lab = AblationLab(toy, prompt=PROMPT, out_dir=tmp_path / "lab", steps=2)
    lab.rows.children[1].inputs["alpha"].value = 11
    lab.run_button.click()
    assert "scale_image.alpha=11" in lab.error and "scale_image.alpha=11" in lab.message.value
    lab.rows.children[1].inputs["alpha"].value = 0.5
    lab.seeds.value = "0, one"
    lab.run_button.click()
    assert "'one' is not a whole number" in lab.error and lab.progress.bar_style == "danger"
    lab.seeds.value = "0"
    lab.prompt.value = " "
    lab.run_button.click()
    assert "prompt is empty" in lab.error
    assert count_forwards == [] and not (tmp_path / "lab").exists()
    lab.open_results(tmp_path / "nowhere")
    assert "not a sweep results directory" in lab.error


def test_rows_for_the_conditioning_families_turn_into_their_ablations():
    from cogviz.widgets.ablation_lab import AblationRow

    row = AblationRow("image_guidance")
    assert row.ablation() == A.ImageGuidance(1.0)  # scale_end empty: one scale for all frames
    row.inputs["scale"].value, row.inputs["scale_end"].value = 1.0, "3"
    assert row.ablation() == A.ImageGuidance(1.0, scale_end=3.0)
    row.inputs["scale_end"].value = "three"
    with pytest.raises(AblationError, match="image_guidance.scale_end='three': expected a number"):
        row.ablation()
    row = AblationRow("replace_frame")
    row.inputs["end"].value = 0.5
    assert row.ablation() == A.ReplaceFrame(0.0, 0.5)
    row = AblationRow("end_image", {"image": "cogviz/samples/lighthouse.png"})
    assert row.ablation() == A.EndImage("cogviz/samples/lighthouse.png")


def test_seed_ranges_are_capped_before_any_expansion():
    import time

    from cogviz.widgets.ablation_lab import MAX_SEEDS, parse_seeds

    t = time.monotonic()
    with pytest.raises(CogvizError, match=f"more than {MAX_SEEDS} seeds"):
        parse_seeds("0-1000000")
    assert time.monotonic() - t < 1 and len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS
