import pytest
from hypothesis import given
from hypothesis import strategies as st

from cogviz import PRESETS, PresetError, best_size, get_preset


def test_known_presets():
    p = get_preset("CogVideoX-5b-I2V")
    assert (p.height, p.width, p.num_frames, p.fps, p.fixed_resolution) == (480, 720, 49, 8, True)
    q = get_preset("THUDM/CogVideoX1.5-5B-I2V")
    assert (q.short_side, q.max_long_side, q.num_frames, q.fps, q.frame_multiple) == (768, 1360, 81, 16, 16)
    assert get_preset("toy").size == (64, 96)
    for preset in PRESETS.values():  # every default frame count follows its rule
        assert (preset.num_frames - 1) % preset.frame_multiple == 0


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(PresetError, match="CogVideoX-5b-I2V"):
        get_preset("nope")


def test_fixed_presets_ignore_aspect():
    assert best_size("CogVideoX-5b-I2V", (3000, 100)) == (480, 720)


@given(h=st.integers(1, 10000), w=st.integers(1, 10000))
def test_15_sizes_follow_the_rules(h, w):
    bh, bw = best_size("CogVideoX1.5-5B-I2V", (h, w))
    assert min(bh, bw) == 768 and max(bh, bw) <= 1360
    assert bh % 16 == 0 and bw % 16 == 0
    assert (bh >= bw) == (h > w) or bh == bw


def test_bad_image_size():
    with pytest.raises(PresetError, match="positive"):
        best_size("CogVideoX1.5-5B-I2V", (0, 10))
