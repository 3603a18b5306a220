"""LatentExplorer driven through its traits: every view renders from the trace, no model call on a tick."""
import numpy as np
import pytest
import torch

import cogviz
from cogviz.samples import sample_path
from cogviz.widgets import LatentExplorer
from cogviz.widgets.latent_explorer import VIEWS


@pytest.fixture(scope="module")
def explorer():
    pipe = cogviz.load_pipeline("toy")
    return LatentExplorer(pipe=pipe, image=sample_path("shapes"), prompt="a red circle moves left", steps=6)


def test_every_view_renders_without_running_the_model(explorer, monkeypatch):
    calls = []
    tr = explorer.pipe.transformer
    monkeypatch.setattr(tr, "forward", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(explorer.pipe.vae, "decode", lambda *a, **k: calls.append(1))
    seen = set()
    for view in VIEWS:
        explorer.view.value = view
        assert explorer.error == "", (view, explorer.error)
        assert explorer.picture.value[:4] == b"\x89PNG"
        seen.add(explorer.picture.value)
    for step in range(6):
        explorer.step.value = step
    explorer.view.value = "grid"
    for f in range(5):
        explorer.frame.value = f
    assert not calls and len(seen) == len(VIEWS)


def test_controls_change_the_picture_in_place(explorer):
    explorer.view.value, explorer.tensor.value, explorer.channels.value = "grid", "input", "all"
    explorer.step.value, explorer.frame.value = 0, 0
    before, n = explorer.picture.value, explorer.renders
    picture_widget = explorer.picture
    explorer.step.value = 5
    assert explorer.picture is picture_widget and explorer.picture.value != before and explorer.renders == n + 1
    assert "step 6/6" in explorer.info.value
    # current() is the conditional half of the recorded tensor
    assert np.array_equal(explorer.current(), explorer.trace["step/5/input"][1].numpy())


def test_channel_choices_follow_the_tensor(explorer):
    explorer.tensor.value = "input"
    assert "z_img (16-31)" in explorer.channels.options
    explorer.channels.value = "z_img (16-31)"
    n = explorer.renders
    explorer.tensor.value = "z_t"
    assert explorer.channels.value == "all" and "z_img (16-31)" not in explorer.channels.options
    assert explorer.renders == n + 1  # the channel list changed with it, and the picture was drawn once


def test_missing_tensors_explain_what_to_record():
    pipe = cogviz.load_pipeline("toy")
    g = cogviz.generate(pipe, sample_path("shapes"), "a red circle moves left", steps=3, progress=False,
                        record=("z_img", "step/*/z_t"))
    ex = LatentExplorer(g)
    ex.tensor.value = "pred"
    assert "not recorded" in ex.error and "step/*/pred" in ex.error
    ex.tensor.value = "z_t"
    assert ex.error == ""
    ex.view.value = "rgb map"
    assert "pipe=pipe" in ex.error
    ex.view.value = "anchor attention"
    assert "attention_layers" in ex.error
    with pytest.raises(ValueError, match="Generation or a Trace"):
        LatentExplorer(torch.zeros(3))


def test_the_channel_split_comes_from_the_trace_not_a_constant():
    """Issue 42: the views hard-coded 16 / 32 channels; a latent of 4 channels (8 in the input)
    splits at 4."""
    from cogviz.points import Trace

    t = Trace(("z_img", "step/*/z_t", "step/*/input"))
    t.tensors.update({"z_img": torch.randn(1, 3, 4, 6, 6), "step/0/z_t": torch.randn(1, 3, 4, 6, 6),
                      "step/0/input": torch.randn(2, 3, 8, 6, 6)})
    t.meta["rows"] = ["unconditional", "conditional"]
    ex = LatentExplorer(t)
    assert list(ex.channels.options)[:3] == ["all", "z_t (0-3)", "z_img (4-7)"]
    np.testing.assert_array_equal(ex.current(), t.row("step/0/input").numpy())  # the conditional row
    before = ex.renders
    ex.channels.value = "z_img (4-7)"
    assert ex.error == "" and ex.renders == before + 1 and ex.picture.value[:4] == b"\x89PNG"
    ex.tensor.value = "z_t"
    assert list(ex.channels.options) == ["all", "0-3"]
