"""The combination matrix (issue 42): every ablation kind crossed with {image guidance off, on} x
{attention recorded or not} x {separate, batched} x {no speed preset, each cache preset}, on the
tiny 1.0 and 1.5 pipelines and the embedded toy model. Each cell either equals its reference (the separate call without a
preset; latents within 1e-4, attention shares within 1e-5 on the CPU, 5e-3 and 5e-4 on a GPU) or is
refused by a CogvizError before any compute, naming the conflict. A cache preset's plain call
equals its reference on every step before the first one the cache approximates. Nothing runs
half-applied."""
import itertools

import numpy as np
import pytest
import torch
from test_ablations import one_of_each

import cogviz
import cogviz.ablations as A
import cogviz.sampler as S
from cogviz.errors import CogvizError
from cogviz.sampler import Settings
from cogviz.speed import CACHE_PRESETS, apply_speed
from cogviz.testing import tiny_random_pipeline

PROMPT = "a red circle moves left"
STEPS = 3


class Computed(Exception):
    """Raised where the denoising loop would start: a call that gets here was not refused."""


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def _frames(family: str) -> int:
    return {"1.5": 17, "toy": 17}.get(family, 9)


def _atol(pipe) -> float:
    """Batched against separate: 1e-4 on the CPU; on a GPU 5e-3, where cuDNN's TF32 convolutions (the
    1.0 patch embedding) and the matmul kernels change with the batch size (measured on an H200:
    2.0e-3 on the toy at 3 steps)."""
    return 1e-4 if torch.device(pipe._execution_device).type == "cpu" else 5e-3


def _pipe(family: str):
    return cogviz.load_pipeline("toy") if family == "toy" else tiny_random_pipeline(family, num_layers=2)


def _settings(family: str, attention) -> Settings:
    return Settings(steps=STEPS, num_frames=_frames(family), record=("latents.final",), decode_video=False,
                    attention_layers=attention)


def _variant(kind, image_guidance) -> list:
    return [kind] + ([A.ImageGuidance(image_guidance)] if image_guidance is not None else [])


def _refusal(pipe, family, kind, image_guidance, attention, monkeypatch) -> str | None:
    """The CogvizError a separate call raises before compute, or None when it would compute."""
    def stop(*a, **k):
        raise Computed

    monkeypatch.setattr(S, "_denoise", stop)
    try:
        cogviz.generate(pipe, _image(), PROMPT, ablations=_variant(kind, image_guidance),
                        settings=_settings(family, attention), progress=False)
    except CogvizError as e:
        return str(e)
    except Computed:
        return None
    finally:
        monkeypatch.undo()
    raise AssertionError("the call neither computed nor was refused")


def _expected_conflict(kind, image_guidance, attention) -> str | None:
    """The combinations the rules refuse, and the words the refusal must contain."""
    if image_guidance is not None and kind.kind == "image_guidance":
        return "image_guidance given more than once"
    if attention and kind.kind in ("attention_knockout", "scale_attention"):
        return "both replace its attention"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("family", ["1.0", "1.5", "toy"])
def test_every_kind_with_guidance_recording_and_batching_equals_its_reference_or_is_refused(family, monkeypatch):
    pipe = _pipe(family)
    kinds = one_of_each(_image(7))
    cells = refused = 0
    for image_guidance, attention in itertools.product((None, 2.0), (None, [0])):
        allowed, separate = [], []
        for kind in kinds:
            cells += 1
            why = _refusal(pipe, family, kind, image_guidance, attention, monkeypatch)
            conflict = _expected_conflict(kind, image_guidance, attention)
            if conflict is not None:
                assert why is not None and conflict in why, (kind, image_guidance, attention, why)
                refused += 1
                continue
            assert why is None, (kind, image_guidance, attention, why)
            allowed.append(kind)
            separate.append(cogviz.generate(pipe, _image(), PROMPT, ablations=_variant(kind, image_guidance),
                                            settings=_settings(family, attention), progress=False))
        batched = cogviz.generate_variants(pipe, _image(), PROMPT, [_variant(k, image_guidance) for k in allowed],
                                           settings=_settings(family, attention), batch=len(allowed), progress=False)
        for kind, one, many in zip(allowed, separate, batched):
            cells += 1
            torch.testing.assert_close(many.trace["latents.final"], one.trace["latents.final"], atol=_atol(pipe), rtol=0,
                                       msg=lambda m, k=kind: f"{k} batched: {m}")
            assert many.trace.meta["ablations"] == one.trace.meta["ablations"]
            for name in one.trace.names():
                if name.endswith("/attention"):  # each variant's own rows, as in its separate call
                    torch.testing.assert_close(many.trace[name], one.trace[name], atol=_atol(pipe) / 10, rtol=0)
            assert one.trace.rows() == (("unconditional", "conditional") +
                                        (("image_free",) if image_guidance is not None or kind.kind == "image_guidance"
                                         else ()))
    assert refused == 2 * 2 + 2 * 2 and cells == 4 * 2 * len(kinds) - refused  # 2 guidance kinds, 2 attention kinds


@pytest.mark.slow
@pytest.mark.parametrize("family", ["1.0", "1.5", "toy"])
@pytest.mark.parametrize("preset", CACHE_PRESETS)
def test_under_a_cache_preset_only_the_plain_call_runs(family, preset, monkeypatch):
    """A cache reuses work from earlier steps: any change of what the transformer reads or computes,
    image guidance and attention recording are refused before compute; the plain call runs and
    says per step what it computed."""
    pipe = _pipe(family)
    apply_speed(pipe, preset)
    for kind, image_guidance, attention in itertools.product(one_of_each(_image(7)), (None, 2.0), (None, [0])):
        why = _refusal(pipe, family, kind, image_guidance, attention, monkeypatch)
        plain = kind.kind == "baseline" and image_guidance is None and attention is None
        assert (why is None) == plain, (preset, kind, image_guidance, attention, why)
        if why is not None:  # the cache named, or the conflict the plain rules refuse anyway
            conflict = _expected_conflict(kind, image_guidance, attention)
            assert f"speed={preset!r}" in why or (conflict and conflict in why), why
    g = cogviz.generate(pipe, _image(), PROMPT, settings=_settings(family, None), progress=False)
    assert len(g.trace.meta["step_status"]) == STEPS and g.trace.meta["speed"] == [preset]


def _first_approximated(preset: str, pipe, trace) -> int:
    """The first step a cache preset approximates, from what the run says and the preset's own
    settings: a step it reused (counted), or for FasterCache, whose approximations run beside the
    attention, the first timestep inside its weight-update or skip ranges."""
    status = trace.meta["step_status"]
    if preset != "cache_faster":
        return next((i for i, s in enumerate(status) if s != "computed"), len(status))
    from cogviz.speed import _cache_config

    cfg = _cache_config(pipe, preset)
    ranges = [cfg.low_frequency_weight_update_timestep_range, cfg.high_frequency_weight_update_timestep_range,
              cfg.spatial_attention_timestep_skip_range]
    times = [int(t) for t in pipe.scheduler.timesteps]
    return next((i for i, t in enumerate(times) if any(lo < t < hi for lo, hi in ranges)), len(times))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["1.0", "1.5", "toy"])
def test_the_plain_call_under_a_cache_equals_its_reference_until_the_cache_approximates(family):
    """The cells a cache preset runs are compared with the reference (the same call without a
    preset): each step's guided prediction is equal (within 1e-5) on every step before the first one
    the cache approximates, and the run says which step that is. Under First Block Cache and
    TaylorSeer at these settings no step is approximated and the video equals the reference."""
    settings = _settings(family, None).replace(record=("step/*/pred", "latents.final"))
    ref = cogviz.generate(_pipe(family), _image(), PROMPT, settings=settings, progress=False).trace
    approximated = {}
    for preset in CACHE_PRESETS:
        pipe = _pipe(family)
        apply_speed(pipe, preset)
        trace = cogviz.generate(pipe, _image(), PROMPT, settings=settings, progress=False).trace
        first = _first_approximated(preset, pipe, trace)
        assert first >= 1, (preset, "the first step has nothing to reuse")
        for i in range(first):
            torch.testing.assert_close(trace[f"step/{i}/pred"], ref[f"step/{i}/pred"], atol=1e-5, rtol=0,
                                       msg=lambda m, p=preset, i=i: f"{p} step {i}: {m}")
        if first == STEPS:
            torch.testing.assert_close(trace["latents.final"], ref["latents.final"], atol=1e-5, rtol=0)
        approximated[preset] = first
    # at 3 steps: PAB reuses step 1; FasterCache's ranges start at step 1 (it departs at step 2)
    assert approximated == {"cache_fbc": STEPS, "cache_pab": 1, "cache_faster": 1, "cache_taylorseer": STEPS}
