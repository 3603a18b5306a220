"""Inside the transformer: block points, attention edits (knockout, scale), call-scoped hooks."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

import cogviz
from cogviz import ablations as A
from cogviz.errors import AblationError, CogvizError, PointError
from cogviz.family import FAMILIES
from cogviz.hooks import Forward
from cogviz.inside import AttentionEdit, SteeredAttention
from cogviz.points import Intervention
from cogviz.testing import tiny_random_pipeline

PROMPT = "a red circle moves left"


def image(seed=0, size=32):
    return Image.fromarray(np.random.default_rng(seed).uniform(0, 255, (size, size, 3)).astype(np.uint8))


@pytest.fixture(scope="module", params=["1.0", "1.5"])
def pipe(request):
    return tiny_random_pipeline(request.param)


def frames_for(pipe):
    return 17 if pipe.transformer.config.patch_size_t else 9


def run(pipe, **kw):
    return cogviz.generate(pipe, image(), PROMPT, num_frames=frames_for(pipe), steps=3, seed=1, progress=False,
                           decode_video=False, **kw)


def test_the_steered_processor_equals_an_explicit_masked_softmax():
    pipe = tiny_random_pipeline()
    attn = pipe.transformer.transformer_blocks[0].attn1
    text_len, tpf, frames = 3, 4, 3
    g = torch.Generator().manual_seed(0)
    dim = attn.to_q.in_features
    enc, hid = torch.randn(2, text_len, dim, generator=g), torch.randn(2, tpf * frames, dim, generator=g)
    edit = AttentionEdit("later", "image", 0.25)
    forward = Forward(steps=1, tokens_per_frame=tpf, frames=frames, family=FAMILIES["1.0"],
                      rows=[((1, 2), [edit], None)])
    out, _ = SteeredAttention(0, forward)(attn, hid, enc)
    # by hand: softmax(q k^T / sqrt(d) + log(0.25) on (later queries, image keys)) v, row 1 only
    x = torch.cat([enc, hid], dim=1)
    b, n = x.shape[:2]
    q, k, v = (t.view(b, n, attn.heads, -1).transpose(1, 2) for t in (attn.to_q(x), attn.to_k(x), attn.to_v(x)))
    q, k = attn.norm_q(q), attn.norm_k(k)
    bias = torch.zeros(n, n)
    later = torch.arange(text_len + tpf, n)
    image_keys = torch.arange(text_len, text_len + tpf)
    bias[later[:, None], image_keys[None, :]] = math.log(0.25)
    w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + torch.stack([torch.zeros(n, n), bias])[:, None],
                      dim=-1)
    ref = attn.to_out[0]((w @ v).transpose(1, 2).reshape(b, n, -1))[:, text_len:]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_scale_one_is_the_baseline_and_scale_zero_is_the_knockout(pipe):
    base = run(pipe, record=("latents.final",)).trace["latents.final"]
    one = run(pipe, ablations=[A.ScaleAttention(1.0)], record=("latents.final",)).trace["latents.final"]
    torch.testing.assert_close(one, base, atol=1e-5, rtol=1e-5)
    zero = run(pipe, ablations=[A.ScaleAttention(0.0)], record=("latents.final",)).trace["latents.final"]
    knock = run(pipe, ablations=[A.AttentionKnockout()], record=("latents.final",)).trace["latents.final"]
    assert torch.equal(zero, knock) and not torch.allclose(knock, base, atol=1e-4)


def test_block_points_record_and_change_one_block(pipe):
    blocks = len(pipe.transformer.transformer_blocks)
    g = run(pipe, record=("step/*/block/0/hidden", "latents.final"))
    h = g.trace.stack("block/0/hidden")  # (steps, rows, F', h', w', D)
    cfg = pipe.transformer.config
    f = g.z_img.shape[1] // (cfg.patch_size_t or 1)
    assert h.shape == (3, 2, f, 2, 2, cfg.num_attention_heads * cfg.attention_head_dim)
    assert all(f"step/0/block/{b}/hidden" not in g.trace for b in range(1, blocks))  # only what was asked
    same = run(pipe, record=("latents.final",), interventions=[Intervention("step/*/block/0/hidden", lambda x, c: x)])
    assert torch.equal(same.trace["latents.final"], g.trace["latents.final"])
    moved = run(pipe, record=("latents.final",),
                interventions=[Intervention("step/1/block/0/hidden", lambda x, c: x * 0.5)])
    assert not torch.allclose(moved.trace["latents.final"], g.trace["latents.final"])


def test_nothing_stays_attached_after_a_call_even_on_error(pipe):
    blocks = pipe.transformer.transformer_blocks
    before = [type(b.attn1.processor) for b in blocks]

    def boom(x, ctx):
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        run(pipe, ablations=[A.AttentionKnockout()], interventions=[Intervention("step/1/block/0/hidden", boom)])
    assert [type(b.attn1.processor) for b in blocks] == before
    assert all(not b._forward_hooks for b in blocks)


def test_bad_blocks_and_names_are_refused_before_compute(pipe):
    n = len(pipe.transformer.transformer_blocks)
    with pytest.raises(CogvizError, match=rf"block\(s\) \[{n + 3}\] do not exist; this transformer has {n} blocks"):
        run(pipe, ablations=[A.AttentionKnockout(layers=[n + 3])])
    with pytest.raises(PointError, match=r"did you mean 'step/\*/block/\*/hidden'"):
        run(pipe, record=("step/*/block/*/hiden",))
    with pytest.raises(A.AblationError, match="did you mean 'later'"):
        A.from_dict({"kind": "attention_knockout", "queries": "latter"})


def test_attention_ablations_batch_like_separate_calls(pipe):
    variants = [None, A.AttentionKnockout(layers=[0]), A.ScaleAttention(0.5, queries=[1], keys="text")]
    together = cogviz.generate_variants(pipe, image(), PROMPT, variants, num_frames=frames_for(pipe), steps=3,
                                        seed=1, progress=False, decode_video=False, batch=3,
                                        record=("latents.final",))
    for v, g in zip(variants, together):
        alone = run(pipe, ablations=[] if v is None else [v], record=("latents.final",))
        torch.testing.assert_close(g.trace["latents.final"], alone.trace["latents.final"], atol=1e-4, rtol=0)
    assert together[1].trace.meta["ablations"][0]["kind"] == "attention_knockout"


def test_the_knockout_cuts_the_anchor_of_the_later_frames_on_the_toy():
    # the embedded model, 3 scenes, 20 steps: the later frames read the image mainly through
    # attention to the image frame's tokens (the text road: the next tests)
    from skimage.metrics import structural_similarity

    from cogviz.metrics import psnr
    from cogviz.models import load_pipeline
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    toy = load_pipeline("toy")
    drops, frame0 = [], []
    for seed in (900_001, 900_002, 900_003):
        scene = sample_scene(seed)
        first = render_scene(scene)[0]
        base, knock, zero = cogviz.generate_variants(toy, first, prompt_for(scene),
                                                     [None, A.AttentionKnockout(), A.ZeroImage()], steps=20,
                                                     progress=False)

        def later_ssim(g, first=first):
            return np.mean([structural_similarity(first, f, channel_axis=-1, data_range=255) for f in g.frames[8:]])

        drops.append((later_ssim(base) - later_ssim(knock), later_ssim(base) - later_ssim(zero)))
        frame0.append((psnr(base.frames[0], first) - psnr(knock.frames[0], first),
                       psnr(base.frames[0], first) - psnr(zero.frames[0], first)))
    knock_drop, zero_drop = np.mean(drops, axis=0)
    # frame 0 keeps the image: its own tokens still read z_img, so the knockout costs it less than a
    # third of what zeroing z_img costs (measured 3.6-7.1 dB against about 20)
    assert all(0 <= k < z / 3 for k, z in frame0), frame0
    assert knock_drop > 0.5 * zero_drop > 0  # the later frames lose more than half of what zeroing z_img loses


def test_patching_every_block_from_a_source_image_brings_frame_0_to_it():
    # the embedded model: patch the image frame's tokens from a second image in every block; frame 0
    # then resembles the second image more than the first
    from cogviz.metrics import psnr
    from cogviz.models import load_pipeline
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    toy = load_pipeline("toy")
    scene, other = sample_scene(900_004), sample_scene(900_005)
    first, second = render_scene(scene)[0], render_scene(other)[0]
    patch = A.PatchActivations(second)
    assert A.from_dict(patch.to_dict()) == patch  # data like the other kinds (the image embedded as PNG)
    base, patched = cogviz.generate_variants(toy, first, prompt_for(scene), [None, patch], steps=12, progress=False)
    assert psnr(base.frames[0], first) > psnr(base.frames[0], second)
    assert psnr(patched.frames[0], second) > psnr(patched.frames[0], first)


def test_patching_runs_on_tiny_1_0_and_1_5_batched_and_nothing_from_the_source_is_returned(pipe):
    patch = A.PatchActivations(image(7), layers=[0], frames=[0])
    gens = cogviz.generate_variants(pipe, image(), PROMPT, [None, patch, A.AttentionKnockout()],
                                    num_frames=frames_for(pipe), steps=3, seed=1, progress=False, batch=2,
                                    decode_video=False, record=("latents.final",))
    assert len(gens) == 3
    alone = run(pipe, ablations=[patch], record=("latents.final",))
    torch.testing.assert_close(gens[1].trace["latents.final"], alone.trace["latents.final"], atol=1e-4, rtol=0)
    assert not torch.allclose(alone.trace["latents.final"], gens[0].trace["latents.final"], atol=1e-5)
    with pytest.raises(A.AblationError, match="frames='text'"):
        A.PatchActivations(image(7), frames="text")


def test_the_block_map_in_one_call_and_through_a_sweep_agree(tmp_path):
    from cogviz.anchor_map import block_map, map_ablations, map_effects, map_picture, map_table
    from cogviz.sweep import sweep

    pipe = tiny_random_pipeline()
    blocks = len(pipe.transformer.transformer_blocks)
    windows = [(0.0, 0.5), (0.5, 1.0)]
    table = block_map(pipe, image(), PROMPT, windows=windows, seeds=(0, 1), steps=4, num_frames=9)
    assert len(table) == 2 * (1 + blocks * 2) * 3  # seeds x (baseline + block x window) x figures
    assert set(table["window"].dropna()) == {"0-0.5", "0.5-1"}
    assert (table[table["block"].isna()]["change"] == 0).all()
    assert map_picture(table, "later_ssim").ndim == 3
    with pytest.raises(CogvizError, match="figure='ssim'"):
        map_picture(table, "ssim")
    result = sweep(pipe, [image()], [PROMPT], map_ablations(pipe, windows=windows), [0, 1], out_dir=tmp_path,
                   steps=4, num_frames=9, progress=False)
    swept = map_table(result.runs)
    key = ["block", "window", "seed", "figure"]
    a = table.sort_values(key)["value"].to_numpy()
    b = swept.sort_values(key)["value"].to_numpy()
    np.testing.assert_allclose(a, b, atol=0.05)  # the same runs, batched differently (rounding in the frames)
    # each cell's paired effect over the two seeds, with its interval; the picture hatches the cells holding 0
    for t in (table, swept):
        e = map_effects(t)
        mean = t[(t["figure"] == "later_ssim") & t["block"].notna()].groupby(["block", "window"])["change"].mean()
        np.testing.assert_allclose(e.set_index(["block", "window"])["effect"].loc[mean.index], mean, atol=1e-12)
        assert (e["n"] == 2).all() and ((e["low"] <= e["effect"]) & (e["effect"] <= e["high"])).all()
        drawn = map_picture(t, "later_ssim")
        hatched = [p for p in drawn.figure.axes[0].patches if p.get_hatch()]
        assert len(hatched) == int((~e["excludes_zero"]).sum())
        assert "hatched: the 95% interval holds 0 (n=2" in drawn.figure.axes[0].get_title()
    assert "one seed: no interval" in map_picture(table[table["seed"] == 0]).figure.axes[0].get_title()
    with pytest.raises(CogvizError, match="figure='later_psnr'"):
        map_effects(table, "later_psnr")


def test_the_three_kinds_run_in_a_sweep_on_tiny_1_0_and_1_5(pipe, tmp_path):
    from cogviz.sweep import SweepResult, sweep

    kinds = [A.AttentionKnockout(layers=[0]), A.ScaleAttention(2.0, keys="text"), A.PatchActivations(image(3))]
    r = sweep(pipe, [image()], [PROMPT], kinds, [0], out_dir=tmp_path, steps=3, num_frames=frames_for(pipe),
              progress=False)
    assert sorted(r.runs["label"].str.split("(").str[0]) == ["attention_knockout", "baseline", "patch_activations",
                                                             "scale_attention"]
    again = SweepResult.load(tmp_path)
    assert len(again) == 4 and again.runs["frame0_psnr"].notna().all()


def test_a_patching_block_map_carries_one_source_row_and_one_encode_per_forward(monkeypatch):
    """Issue 42: variants patching from the same image share one companion: a B-block map runs
    B + 1 owner variants and 1 companion per forward (CFG: 2 rows each), and the source image is
    encoded once; each variant equals its separate call."""
    import cogviz.sampler as S
    from cogviz.anchor_map import block_map, map_ablations

    pipe = tiny_random_pipeline(num_layers=3)
    rows, encodes = [], []
    real_forward, real_encode = pipe.transformer.forward, S.encode_pixels
    monkeypatch.setattr(pipe.transformer, "forward",
                        lambda *a, **k: rows.append(k["hidden_states"].shape[0]) or real_forward(*a, **k))
    monkeypatch.setattr(S, "encode_pixels", lambda *a, **k: encodes.append(1) or real_encode(*a, **k))
    table = block_map(pipe, image(), PROMPT, kind="patch_activations", source=image(7), steps=2, num_frames=9,
                      batch=10)
    assert len(table) == (1 + 3) * 3  # baseline + 3 blocks, 3 figures
    assert rows == [2 * (3 + 1) + 2 * 1] * 2  # every step: the owners' rows and one source's
    assert len(encodes) == 2  # the image, and the source once
    variants = map_ablations(pipe, kind="patch_activations", source=image(7))
    together = cogviz.generate_variants(pipe, image(), PROMPT, [None, *variants], steps=2, num_frames=9, batch=10,
                                        decode_video=False, record=("latents.final",), progress=False)
    alone = cogviz.generate(pipe, image(), PROMPT, steps=2, num_frames=9, ablations=[variants[1]],
                            decode_video=False, record=("latents.final",), progress=False)
    torch.testing.assert_close(together[2].trace["latents.final"], alone.trace["latents.final"], atol=1e-4, rtol=0)


def test_a_head_subset_edits_only_those_heads_as_an_explicit_masked_softmax():
    """Issue 44: heads= on the attention kinds: the edited heads equal a masked softmax by hand, the
    other heads are the plain attention."""
    pipe = tiny_random_pipeline()
    attn = pipe.transformer.transformer_blocks[0].attn1
    text_len, tpf, frames = 3, 4, 3
    g = torch.Generator().manual_seed(0)
    dim = attn.to_q.in_features
    enc, hid = torch.randn(1, text_len, dim, generator=g), torch.randn(1, tpf * frames, dim, generator=g)
    plain, _ = SteeredAttention(0, Forward(1, tpf, frames, FAMILIES["1.0"]))(attn, hid, enc)
    full = Forward(1, tpf, frames, FAMILIES["1.0"], rows=[((0, 1), [AttentionEdit("later", "image", 0.0)], None)])
    one = Forward(1, tpf, frames, FAMILIES["1.0"], rows=[((0, 1), [AttentionEdit("later", "image", 0.0, heads=(1,))],
                                                          None)])
    knocked, _ = SteeredAttention(0, full)(attn, hid, enc)
    head1, _ = SteeredAttention(0, one)(attn, hid, enc)
    # by hand, per head: head 1 knocked out, head 0 plain, then the output projection
    x = torch.cat([enc, hid], dim=1)
    n = x.shape[1]
    q, k, v = (t.view(1, n, attn.heads, -1).transpose(1, 2) for t in (attn.to_q(x), attn.to_k(x), attn.to_v(x)))
    q, k = attn.norm_q(q), attn.norm_k(k)
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    logits[:, 1, text_len + tpf:, text_len:text_len + tpf] = -math.inf
    ref = attn.to_out[0]((torch.softmax(logits, -1) @ v).transpose(1, 2).reshape(1, n, -1))[:, text_len:]
    torch.testing.assert_close(head1, ref, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(head1, plain, atol=1e-4) and not torch.allclose(head1, knocked, atol=1e-4)


def test_heads_and_group_lists_are_data_with_old_dicts_unchanged():
    assert A.AttentionKnockout().to_dict() == {"kind": "attention_knockout", "layers": "all", "queries": "later",
                                               "keys": "image", "start": 0.0, "end": 1.0}
    both = A.AttentionKnockout(queries=["text", "later"], heads=[1, 0])
    assert both.queries == ("text", "later") and both.heads == (0, 1)
    assert A.from_dict(both.to_dict()) == both and both.to_dict()["heads"] == [0, 1]
    with pytest.raises(AblationError, match=r"did you mean 'later'"):
        A.AttentionKnockout(queries=["text", "latr"])
    with pytest.raises(AblationError, match=r"this transformer has 2 heads, 0-1"):
        cogviz.generate(tiny_random_pipeline(), image(), PROMPT, num_frames=9, steps=1, progress=False,
                        ablations=[A.ScaleAttention(0.5, heads=[2])])


def test_the_second_road_through_the_text_tokens_exists_mechanically():
    """Issue 44: the text tokens are updated in every block, so in a model of two blocks the image
    can reach the later frames through them: cutting text -> image changes the later frames' output
    even with the direct road open, and closing both roads differs from closing the direct one."""
    pipe = tiny_random_pipeline(num_layers=2)
    run = dict(num_frames=9, steps=2, seed=1, progress=False, decode_video=False, record=("step/*/pred",))
    base, text, direct, both = (cogviz.generate(pipe, image(), PROMPT, ablations=a, **run).trace["step/1/pred"]
                                for a in ([], [A.AttentionKnockout(queries="text")], [A.AttentionKnockout()],
                                          [A.AttentionKnockout(queries=["text", "later"])]))
    assert (text - base)[:, 1:].abs().max() > 1e-4  # the later frames move when only the text road is cut
    assert (both - direct)[:, 1:].abs().max() > 1e-4


@pytest.mark.slow
def test_on_the_toy_the_image_reaches_the_later_frames_by_the_direct_road():
    """What the toy measures (8 held-out scenes x 2 seeds, 20 steps; later-frame SSIM to the image), as
    paired effects with 95% intervals: the direct road carries the anchor; cutting the text road alone
    costs nothing (within 0.01 of the baseline); closing both costs more than closing either one — a
    little more than the direct road alone, by an interval that excludes 0 (the guide gives the figures)."""
    from cogviz.effects import paired_interval
    from cogviz.metrics import anchor_metrics
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    toy = cogviz.load_pipeline("toy")
    kinds = [[], [A.AttentionKnockout()], [A.AttentionKnockout(queries="text")],
             [A.AttentionKnockout(queries=["text", "later"])]]
    later = np.zeros((8, 2, 4))
    for s in range(8):
        scene = sample_scene(1_000_000_000 + s)
        for seed in (0, 1):
            gs = cogviz.generate_variants(toy, render_scene(scene, frames=[0])[0], prompt_for(scene), kinds, steps=20,
                                          seed=seed, progress=False)
            later[s, seed] = [anchor_metrics(g.frames, g.fitted)["ssim"].iloc[1:].mean() for g in gs]
    scenes = np.repeat(np.arange(8), 2)
    base, direct, text, both = (later[..., k].ravel() for k in range(4))
    assert paired_interval(direct - base, scenes)[2] < -0.15  # the direct road: the anchor
    _, low, high, _ = paired_interval(text - base, scenes)
    assert -0.01 < low and high < 0.01, (low, high)  # the text road alone: nothing measurable
    for alone in (direct, text):  # both roads closed cost more than either one closed
        effect, low, high, _ = paired_interval(both - alone, scenes)
        assert high < 0, (effect, low, high)
