"""One home for the model-family rules: presets, validation, encoding and widgets all read it."""
import pytest

from cogviz.errors import CogvizError
from cogviz.family import FAMILIES, family_of, max_frames
from cogviz.presets import PRESETS
from cogviz.sampler import validate
from cogviz.testing import tiny_random_pipeline
from cogviz.widgets.generate_ui import valid_frame_counts


@pytest.mark.parametrize("family", ["1.0", "1.5"])
def test_presets_validation_and_widgets_agree_on_the_frame_rule(family):
    pipe = tiny_random_pipeline(family)
    rules = family_of(pipe)
    assert rules is FAMILIES[family]
    presets = [p for p in PRESETS.values() if p.family == family]
    assert presets and all(p.frame_multiple == rules.frame_multiple for p in presets)
    top = max_frames(pipe)  # 1.0 here: its learned positions cover 9 frames; 1.5: the family's 161
    counts = valid_frame_counts(pipe, up_to=100)
    assert counts == [n for n in range(2, min(top, 100) + 1) if rules.valid_frames(n)]
    h, w = pipe.transformer.config.sample_height * 8, pipe.transformer.config.sample_width * 8
    for n in range(1, 60):
        ok = rules.valid_frames(n) and n <= top
        try:
            validate(pipe, num_frames=n, steps=2, guidance=6.0, prompt="x", height=h, width=w)
            accepted = True
        except CogvizError:
            accepted = False
        assert accepted == ok, n


def test_the_toy_follows_the_1_0_rule_because_its_vae_decodes_only_odd_latent_counts_whole():
    import torch

    from cogviz.models import load_pipeline

    pipe = load_pipeline("toy")
    assert PRESETS["cogviz-toy"].frame_multiple == 8 and family_of(pipe).name == "1.0"
    for frames in (9, 13, 17):
        n_latent, _ = family_of(pipe).latent_frames(frames)
        out = pipe.vae.decode(torch.zeros(1, 16, n_latent, 8, 12, device=pipe.device)).sample.shape[2]
        assert (out == frames) == family_of(pipe).valid_frames(frames)  # 13 -> 4 latent frames -> 16 frames


def test_latent_frames_scaling_and_padding():
    one, five = FAMILIES["1.0"], FAMILIES["1.5"]
    assert one.latent_frames(49) == (13, 0) and five.latent_frames(81) == (22, 1)
    assert five.latent_frames(17) == (6, 1) and one.latent_frames(17) == (5, 0)
    assert one.latent_gain(0.7) == pytest.approx(0.7) and five.latent_gain(0.7) == pytest.approx(1 / 0.7)
    assert one.nearest_frames(10) == (9, 17) and five.nearest_frames(20) == (17, 33)


def test_frames_beyond_the_learned_positions_are_refused_and_fewer_are_named_in_the_plan():
    """diffusers' CogVideoXPatchEmbed uses the learned positional table only at exactly sample_frames
    frames and silently swaps in a sin-cos table otherwise: more frames than the table are refused
    before compute; fewer run, and the plan (recorded in the trace) says which positions they got."""
    import numpy as np

    import cogviz
    from cogviz.plan import Settings, prepare

    pipe = tiny_random_pipeline("1.0")
    with pytest.raises(CogvizError, match=r"num_frames=17: its learned positional embeddings cover 9 frames"):
        cogviz.generate(pipe, np.zeros((32, 32, 3), np.uint8), "x", num_frames=17, steps=1, progress=False)
    assert prepare(pipe, None, "x", Settings(num_frames=9, steps=1)).positions == "learned"
    g = cogviz.generate(pipe, np.zeros((32, 32, 3), np.uint8), "x", num_frames=1, steps=1, progress=False,
                        decode_video=False)
    assert g.trace.meta["plan"]["positions"] == "sincos"
    assert prepare(tiny_random_pipeline("1.5"), None, "x", Settings(num_frames=17, steps=1)).positions == "rotary"
    with pytest.raises(CogvizError, match=r"released for at most 161 frames"):
        prepare(tiny_random_pipeline("1.5"), None, "x", Settings(num_frames=177, steps=1))
