"""Speed and memory presets on the CPU at toy size: wiring, equality where a preset must not change
results, and honest recording under cache presets (what ran, what is refused)."""
import numpy as np
import pytest
import torch

import cogviz.ablations as A
import cogviz.models as M
from cogviz.errors import ModelLoadError, SpeedPresetError
from cogviz.experiment import generate
from cogviz.points import Intervention
from cogviz.speed import CACHE_PRESETS, SPEED_OPTIONS, apply_speed, cache_preset, speed_of
from cogviz.toy.scenes import render_scene, sample_scene

IMAGE = render_scene(sample_scene(1_000_000_001))[0]
PROMPT = "a red circle moves left"


def run(pipe, **kw):
    kw.setdefault("steps", 8)
    return generate(pipe, IMAGE, PROMPT, seed=0, progress=False, **kw)


@pytest.fixture(scope="module")
def plain():
    return run(M.load_pipeline("toy"))


def test_bad_presets_fail_before_loading_with_what_is_accepted():
    with pytest.raises(SpeedPresetError, match="speed=.warp.: unknown .*accepted are"):
        M.load_pipeline("toy", speed="warp")
    with pytest.raises(SpeedPresetError, match="one cache preset"):
        M.load_pipeline("toy", speed=["cache_fbc", "cache_pab"])
    with pytest.raises(SpeedPresetError, match="'int8' and 'fp8'"):
        M.load_pipeline("toy", speed=["int8", "fp8"])
    with pytest.raises(ModelLoadError, match="no GPU"):
        M.load_pipeline("toy", memory="group_offload", device="cpu")
    with pytest.raises(ModelLoadError, match="choose one of"):
        M.load_pipeline("toy", memory=["group_offload", "model_offload"])
    pipe = M.load_pipeline("toy", speed="fused")
    with pytest.raises(SpeedPresetError, match="already has speed presets"):
        apply_speed(pipe, "cache_pab")


def test_quantized_presets_say_what_they_need_here():
    pipe = M.load_pipeline("toy")
    with pytest.raises(SpeedPresetError, match="compute capability >= 8.9"):
        apply_speed(pipe, "fp8")  # no GPU here
    assert speed_of(pipe) == ()


def test_int8_quantizes_the_transformer_weights_and_stays_close(plain):
    from torchao.quantization import Int8Tensor

    pipe = M.load_pipeline("toy", speed="int8")
    assert isinstance(pipe.transformer.transformer_blocks[0].ff.net[0].proj.weight, Int8Tensor)
    g = run(pipe)
    mse = np.mean((g.frames.astype(float) - plain.frames.astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) >= 30  # weight rounding only


def test_fused_and_compiled_presets_keep_the_results(plain):
    fused = M.load_pipeline("toy", speed="fused")
    assert speed_of(fused) == ("fused",) and fused.transformer.transformer_blocks[0].attn1.fused_projections
    g = run(fused)
    assert torch.allclose(g.trace["latents.final"], plain.trace["latents.final"], atol=1e-4)
    # regional compilation, wired as diffusers' compile_repeated_blocks does (block.compile);
    # the "eager" backend checks the wiring without paying inductor's compile time here
    compiled = M.load_pipeline("toy", speed="compile", compile_kwargs={"backend": "eager"})
    assert all(b._compiled_call_impl is not None for b in compiled.transformer.transformer_blocks)
    g = run(compiled)
    assert torch.allclose(g.trace["latents.final"], plain.trace["latents.final"], atol=1e-5)
    assert g.trace.meta["speed"] == ["compile"] and g.trace.meta["step_status"] == ["computed"] * 8


@pytest.mark.parametrize("preset", CACHE_PRESETS)
def test_cache_presets_record_what_each_step_computed(preset, plain):
    pipe = M.load_pipeline("toy", speed=preset)
    assert cache_preset(pipe) == preset
    processors = [type(b.attn1.processor) for b in pipe.transformer.transformer_blocks]
    g = run(pipe, steps=12)
    status = g.trace.meta["step_status"]
    assert len(status) == 12 and set(status) <= {"computed", "reused", "partial"}
    assert status[0] == "computed"  # the first step always computes: nothing to reuse yet
    if preset != "cache_fbc":  # fixed schedules reuse on some steps at 12 steps; FBC decides from the data
        assert "computed" in status[1:] and {"reused", "partial"} & set(status)
    assert [type(b.attn1.processor) for b in pipe.transformer.transformer_blocks] == processors
    again = run(pipe, steps=12)  # no state leaks from one call into the next
    assert np.array_equal(again.frames, g.frames) and again.trace.meta["step_status"] == status
    assert g.trace.meta["speed"] == [preset]


def test_reused_steps_are_what_the_count_says():
    """FBC with a huge threshold reuses every block but the first after step 0: counted as "partial"
    (the first block's attention ran, the rest did not), and the video then differs from the plain
    run; with threshold 0 every step computes."""
    import diffusers

    results = {}
    for threshold in (0.0, 1e9):
        pipe = M.load_pipeline("toy")
        pipe.transformer.enable_cache(diffusers.FirstBlockCacheConfig(threshold=threshold))
        pipe.cogviz_speed = ("cache_fbc",)
        results[threshold] = run(pipe)
    assert results[0.0].trace.meta["step_status"] == ["computed"] * 8
    assert results[1e9].trace.meta["step_status"] == ["computed"] + ["partial"] * 7
    assert not np.array_equal(results[0.0].frames, results[1e9].frames)


def test_interventions_on_what_the_transformer_reads_are_refused_under_a_cache():
    pipe = M.load_pipeline("toy", speed="cache_pab")
    for point in ("z_img", "step/*/input", "step/3/z_t"):
        with pytest.raises(SpeedPresetError, match="change what the transformer reads"):
            run(pipe, interventions=[Intervention(point, lambda x, ctx: x)])
    with pytest.raises(SpeedPresetError, match="change what the transformer reads"):
        run(pipe, ablations=[A.ZeroImage()])
    with pytest.raises(SpeedPresetError, match="image-free branch"):
        run(pipe, ablations=[A.ImageGuidance(2.0)])
    # on the prediction an intervention still works: it acts after the (possibly reused) forward
    g = run(pipe, interventions=[Intervention("step/*/pred", lambda x, ctx: x * 0)])
    assert np.isfinite(g.trace["latents.final"].numpy()).all()


@pytest.mark.parametrize("preset", ["cache_fbc", "fused"])
def test_the_attention_recorder_refuses_presets_that_bypass_attention(preset):
    pipe = M.load_pipeline("toy", speed=preset)
    with pytest.raises(SpeedPresetError, match="attention recorder"):
        run(pipe, attention_layers=[0])


def test_every_preset_is_documented():
    import cogviz.speed as S

    for name in SPEED_OPTIONS:
        assert f"``{name}``" in S.__doc__


@pytest.mark.slow
def test_bench_gpu_tiny_runs_every_configuration(tmp_path):
    """benchmarks/bench_gpu.py --tiny: the full-size benchmark's code on tiny pipelines, so it cannot rot."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_gpu.py"), "--tiny", "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    sys.path.insert(0, str(root / "benchmarks"))
    try:
        import bench_gpu
    finally:
        sys.path.pop(0)
    rows = json.loads(out.read_text())["rows"]
    for model in ("5b", "1.5"):
        mine = {r["config"]: r for r in rows if r["model"] == model}
        assert set(mine) == {"bare", "generate", "sweep4", *bench_gpu.MEMORY, *bench_gpu.SPEED}
        ran = {c for c, r in mine.items() if "skipped" not in r}
        assert {"bare", "generate", "sweep4", "vae_slicing", "fused", "compile", *CACHE_PRESETS} <= ran
        for c in ran:
            r = mine[c]
            assert r["s_per_step"] > 0 and r["end_to_end_s"] > 0 and r["step_ratio_vs_bare"] > 0, r
        assert mine["bare"]["step_ratio_vs_bare"] == 1.0
        for c in ("fused", "compile"):  # presets that must not change the frames
            assert mine[c]["psnr_vs_bare_db"] >= 40, mine[c]
        for c in set(mine) - ran:  # every configuration that did not run says why
            assert len(mine[c]["skipped"]) > 10
    assert "| 5b | bare |" in proc.stdout and "| 1.5 | cache_pab |" in proc.stdout


@pytest.mark.parametrize("preset", CACHE_PRESETS)
@pytest.mark.parametrize("ablation", [A.AttentionKnockout(), A.AttentionKnockout(layers=[0], start=0.5)])
def test_attention_edits_are_refused_under_every_cache_preset(preset, ablation, monkeypatch):
    """Issue 42: the guard read the cache preset before it was known, so a knockout ran under
    cache_fbc and was skipped on every reused step (a partly unablated video). Now it is refused
    before any compute."""
    import cogviz.sampler as S

    pipe = M.load_pipeline("toy", speed=preset)
    monkeypatch.setattr(S, "_denoise", lambda *a, **k: pytest.fail("computed"))
    with pytest.raises(SpeedPresetError, match="attention edits .* would change what blocks"):
        run(pipe, ablations=[ablation])


@pytest.mark.parametrize("preset", CACHE_PRESETS)
def test_block_points_and_wildcards_are_refused_under_every_cache_preset(preset, monkeypatch):
    """Issue 42: the guard matched point names by substring, so block interventions
    (patch_activations among them), block records and a bare '*' pattern passed under a cache."""
    import cogviz.sampler as S

    pipe = M.load_pipeline("toy", speed=preset)
    monkeypatch.setattr(S, "_denoise", lambda *a, **k: pytest.fail("computed"))
    source = render_scene(sample_scene(1_000_000_011))[0]
    with pytest.raises(SpeedPresetError, match=r"block points .* would change what blocks \[2\]"):
        run(pipe, ablations=[A.PatchActivations(source, layers=[2])])
    for point, why in (("step/*/block/1/hidden", "would change what blocks"), ("*", "would change what blocks"),
                       ("step/?/input", "change what the transformer reads")):
        with pytest.raises(SpeedPresetError, match=why):
            run(pipe, interventions=[Intervention(point, lambda x, ctx: x)])
    with pytest.raises(SpeedPresetError, match=r"block points .* would record what blocks \[0\]"):
        run(pipe, record=("step/*/block/0/hidden",))
