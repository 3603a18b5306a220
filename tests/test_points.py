"""Named points refuse what matches nothing, before any compute; the trace's small API."""
import numpy as np
import pytest
import torch
from PIL import Image

import cogviz
from cogviz.errors import NotRecordedError, PointError
from cogviz.points import Intervention, Trace, check_interventions, point_names
from cogviz.testing import tiny_random_pipeline

PROMPT = "a red circle moves left"


def image(seed=0):
    return Image.fromarray(np.random.default_rng(seed).uniform(0, 255, (32, 32, 3)).astype(np.uint8))


@pytest.fixture(scope="module")
def pipe():
    return tiny_random_pipeline()


@pytest.fixture()
def no_compute(pipe, monkeypatch):
    """Fails the test if the transformer or the VAE is run: the errors must come first."""
    def boom(*a, **k):
        raise AssertionError("compute ran before the error")

    monkeypatch.setattr(pipe.transformer, "forward", boom)
    monkeypatch.setattr(pipe.vae, "encode", boom)
    return pipe


@pytest.mark.parametrize("kwargs,match", [
    (dict(interventions=[Intervention("z_image", lambda z, c: z)]), r"'z_image' matches no point.*did you mean 'z_img'"),
    (dict(record=("z_imgg",)), r"record pattern 'z_imgg' matches no point.*did you mean 'z_img'"),
    (dict(record=("step/*/inputs",)), r"did you mean 'step/\*/input'"),
    (dict(record=("step/7/input",)), r"'step/7/input' matches no point.*steps are 0-2"),
    (dict(interventions=[Intervention("step/*/pred", lambda z, c: z, half="cond")]),
     r"half='cond'.*only z_img and step/\{i\}/input carry CFG halves"),
    (dict(interventions=[Intervention("z_img", lambda z, c: z, half="uncond")], guidance=1.0),
     r"no unconditional half"),
    (dict(interventions=[Intervention("frames", lambda z, c: z)]), r"'frames' is record-only"),
    (dict(record=("step/*/block/*/attention",)), r"matches no point"),  # no attention_layers: nothing to record
])
def test_a_mistyped_experiment_raises_before_compute_naming_the_fix(no_compute, kwargs, match):
    with pytest.raises(PointError, match=match):
        cogviz.generate(no_compute, image(), PROMPT, num_frames=9, steps=3, progress=False, **kwargs)


def test_an_unknown_half_is_refused_when_the_intervention_is_built():
    with pytest.raises(PointError, match=r"half='conditional': did you mean 'cond'\?"):
        Intervention("z_img", lambda z, c: z, half="conditional")
    with pytest.raises(PointError, match="expected a function"):
        Intervention("z_img", "zeros")


def test_variants_check_every_intervention_before_compute(no_compute):
    from cogviz.ablations import ZeroImage

    with pytest.raises(PointError, match="z_imgg"):
        cogviz.generate_variants(no_compute, image(), PROMPT, [None, ZeroImage()], num_frames=9, steps=3,
                                 record=("z_imgg",), progress=False)


def test_every_point_a_call_names_is_enumerable_and_each_one_records(pipe):
    blocks = len(pipe.transformer.transformer_blocks)
    names = point_names(3, blocks=blocks, attention_layers=range(blocks))
    assert len(names) == len(set(names)) == 4 + 3 * 4 + 3 * blocks * 8 + 2  # z_t input pred x0; 8 block points
    g = cogviz.generate(pipe, image(), PROMPT, num_frames=9, steps=3, progress=False, record=("*",),
                        attention_layers="all")
    assert sorted(g.trace.names()) == sorted(names)


def test_the_intervenable_points_are_those_the_sampler_changes(pipe):
    seen = []
    ivs = [Intervention(p, lambda x, c: (seen.append(c.name), x)[1]) for p in point_names(2, intervenable=True)]
    cogviz.generate(pipe, image(), PROMPT, num_frames=9, steps=2, progress=False, interventions=ivs)
    assert sorted(seen) == sorted(point_names(2, intervenable=True))
    check_interventions(ivs, 2, cfg=True)  # the same list passes the check


def test_the_cond_half_edits_only_the_prompt_row(pipe):
    def zero(z, ctx):
        return torch.zeros_like(z)

    g = cogviz.generate(pipe, image(), PROMPT, num_frames=9, steps=2, progress=False, record=("step/*/input",),
                        interventions=[Intervention("z_img", zero, half="cond")])
    x = g.trace.at("input", 0)  # (2, F, 32, h, w): negative prompt first
    assert x[1, :, 16:].abs().sum() == 0 and x[0, :, 16:].abs().sum() > 0


def test_trace_stack_at_and_missing_names(pipe):
    g = cogviz.generate(pipe, image(), PROMPT, num_frames=9, steps=3, progress=False, record=("step/*/z_t", "z_img"))
    z = g.trace.stack("z_t")
    assert z.shape == (3, *g.trace["step/0/z_t"].shape)
    assert torch.equal(z[2], g.trace.at("z_t", 2)) and g.trace.steps("z_t") == [0, 1, 2]
    with pytest.raises(NotRecordedError, match=r"'step/0/input' is not in this trace.*record=") as e:
        g.trace["step/0/input"]
    assert isinstance(e.value, KeyError)
    with pytest.raises(PointError, match=r"no step of 'zt'.*did you mean 'z_t'"):
        g.trace.stack("zt")


def test_results_display_what_is_in_them(pipe):
    g = cogviz.generate(pipe, image(), PROMPT, num_frames=9, steps=2, progress=False)
    text = repr(g)
    assert "9 frames of 32x32" in text and "z_img (1, 3, 16, 4, 4)" in text and "baseline" in text
    assert "Trace(" in text and "latents.final" in text
    html = g._repr_html_()
    assert "data:image/png;base64," in html and "Generation(" in html
    t = Trace(("z_img",))
    t.add("z_img", torch.zeros(1, 3, 16, 4, 4))
    assert "z_img" in t._repr_html_() and "1 tensors" in t._repr_html_()


def test_a_sweep_result_and_a_fitted_image_show_what_is_in_them(tmp_path):
    from cogviz.models import load_pipeline
    from cogviz.sweep import SweepResult, sweep

    pipe = load_pipeline("toy")
    r = sweep(pipe, [image(1)], ["a red circle moves left"], [{"kind": "zero_image"}], [0], out_dir=tmp_path,
              steps=2, progress=False)
    html = r._repr_html_()
    assert "2 runs" in html and "zero_image" in html and "frame0_psnr" in html and "1 seed(s)" in html
    assert list(r.summary()["runs"]) == [1, 1]
    assert "0 runs" in SweepResult(tmp_path, [])._repr_html_()
    fitted = cogviz.fit_image(image(), (64, 96))
    assert "data:image/png;base64" in fitted._repr_html_()
