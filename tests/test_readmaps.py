"""Where each frame reads the image (issue 44): read maps and read positions, against an explicit
softmax, inside calls, and on the embedded model's own scenes."""
import math

import numpy as np
import pytest
import torch

import cogviz
from cogviz.errors import SpeedPresetError
from cogviz.inside import attention_inputs
from cogviz.readmaps import READS, AttentionReader, flow, region_map
from cogviz.testing import tiny_random_pipeline

PROMPT = "a red circle moves left"


def _explicit(attn, hid, enc):
    q, k, _, text_len = attention_inputs(attn, hid, enc)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1), text_len  # (B, H, N, N)


@pytest.mark.parametrize("budget", [2**30, 3 * 2 * 2 * 27 * 4])  # one chunk; chunks of 3 queries
def test_read_maps_equal_an_explicit_softmax_per_block_and_head(budget):
    pipe = tiny_random_pipeline(num_layers=2)
    g = torch.Generator().manual_seed(0)
    grid, frames, text_len = (2, 2), 3, 3
    tpf = grid[0] * grid[1]
    for block in pipe.transformer.transformer_blocks:
        attn = block.attn1
        dim = attn.to_q.in_features
        enc, hid = torch.randn(2, text_len, dim, generator=g), torch.randn(2, tpf * frames, dim, generator=g)
        q, k, _, _ = attention_inputs(attn, hid, enc)
        got = AttentionReader(tpf, grid, READS, budget_bytes=budget).read(q, k, text_len)
        w, _ = _explicit(attn, hid, enc)
        video = w[:, :, text_len:]  # (B, H, video queries, N)
        on_image = video[..., text_len:text_len + tpf]  # keys of the image frame
        ref = on_image.reshape(2, attn.heads, frames, tpf, tpf).mean(3).reshape(2, attn.heads, frames, *grid)
        torch.testing.assert_close(got["readmap"], ref, atol=1e-6, rtol=1e-5)
        per_token = on_image.mean(1).reshape(2, frames, *grid, *grid)  # mean over heads
        torch.testing.assert_close(got["readtokens"], per_token, atol=1e-6, rtol=1e-5)
        words = video[..., :text_len].mean(1).permute(0, 2, 1).reshape(2, text_len, frames, *grid)
        torch.testing.assert_close(got["words"], words, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(region_map(got["readtokens"], 1), ref[:, :, 1].mean(1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(region_map(got["readtokens"], 2, (1, 0, 2, 1)), per_token[:, 2, 0, 1],
                                   atol=0, rtol=0)
        # with the text's and the other frames' shares, every frame's attention sums to 1
        shares = got["attention"]  # (B, F, 1 + F)
        torch.testing.assert_close(got["readmap"].sum((-2, -1)).mean(1), shares[..., 1], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(shares.sum(-1), torch.ones(2, frames), atol=1e-5, rtol=0)
        # read positions: the mass on the image frame and the mass-weighted expected position
        pos = torch.tensor([[r, c] for r in range(grid[0]) for c in range(grid[1])], dtype=torch.float32)
        mass = on_image.sum(-1)  # (B, H, Nq)
        expected = (on_image @ pos).sum(1) / mass.sum(1)[..., None]
        readpos = got["readpos"].reshape(2, frames * tpf, 3)
        torch.testing.assert_close(readpos[..., 0], mass.mean(1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(readpos[..., 1:], expected, atol=1e-5, rtol=1e-5)


def test_concept_scores_are_the_attention_outputs_dotted_and_the_call_is_unchanged():
    """The output-space scores are text outputs . video outputs of diffusers' own processor, whose
    outputs the reader returns unchanged; concept_map is a softmax over the named words."""
    from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0

    from cogviz.readmaps import concept_map

    pipe = tiny_random_pipeline(num_layers=1)
    attn = pipe.transformer.transformer_blocks[0].attn1
    g = torch.Generator().manual_seed(1)
    grid, frames, text_len = (2, 2), 3, 4
    dim = attn.to_q.in_features
    enc, hid = torch.randn(2, text_len, dim, generator=g), torch.randn(2, 4 * frames, dim, generator=g)
    reader = AttentionReader(4, grid, ("concepts",))
    hidden, encoder = reader(attn, hid, enc)
    ref_hidden, ref_encoder = CogVideoXAttnProcessor2_0()(attn, hid, enc)
    torch.testing.assert_close(hidden, ref_hidden, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(encoder, ref_encoder, atol=1e-6, rtol=1e-5)
    scores = torch.einsum("bld,bnd->bln", ref_encoder, ref_hidden).reshape(2, text_len, frames, *grid)
    torch.testing.assert_close(reader.last["concepts"], scores, atol=1e-5, rtol=1e-5)
    assert set(reader.last) == {"concepts"}  # no attention weights computed for outputs alone
    prompt = "a blue circle"
    ids = pipe.tokenizer(prompt).input_ids
    words = torch.randn(len(ids), frames, *grid, generator=g)
    maps = concept_map(words, pipe.tokenizer, prompt, ["blue", "circle"])
    torch.testing.assert_close(maps.sum(0), torch.ones(frames, *grid))
    with pytest.raises(cogviz.CogvizError, match="at least two words"):
        concept_map(words, pipe.tokenizer, prompt, "blue")


def test_read_maps_are_named_points_recorded_per_variant_and_refused_under_a_cache():
    pipe = tiny_random_pipeline(num_layers=2)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    g = cogviz.generate(pipe, img, PROMPT, num_frames=9, steps=2, progress=False, decode_video=False,
                        record=("step/*/block/1/readmap", "step/1/block/0/readpos"), attention_layers=[1],
                        image_guidance=2.0)
    t = g.trace
    assert t["step/0/block/1/readmap"].shape == (3, 2, 3, 2, 2)  # rows (CFG + image-free), heads, frames, grid
    assert "step/0/block/0/readmap" not in t and t["step/1/block/0/readpos"].shape == (3, 3, 2, 2, 3)
    torch.testing.assert_close(t["step/0/block/1/readmap"].sum((-2, -1)).mean(1), t["step/0/block/1/attention"][..., 1],
                               atol=1e-6, rtol=1e-5)
    arrows = flow(t["step/1/block/0/readpos"])
    assert arrows.shape == (3, 3, 2, 2, 2) and torch.isfinite(arrows).all()
    from cogviz.speed import apply_speed

    cached = tiny_random_pipeline(num_layers=2)
    apply_speed(cached, "cache_fbc")
    with pytest.raises(SpeedPresetError, match="attention recorder .* would record"):
        cogviz.generate(cached, img, PROMPT, num_frames=9, steps=2, progress=False, record=("step/*/block/0/readmap",))


@pytest.mark.slow
def test_on_the_toy_the_moving_shape_reads_the_image_frames_shape_and_the_arrows_follow_it():
    """Held-out scenes, 12 steps, blocks 1 and 3: the later frames' shape tokens put more read mass per
    token on the image frame's shape tokens than on its background, the argmax arrows of block 3 are
    nearer the shape's true displacement than no motion is, and the prompt's colour word draws more
    of block 3's attention from the shape's tokens than from the background's."""
    from cogviz.readmaps import argmax_flow, concept_map, word_map
    from cogviz.toy.scenes import displacement, prompt_for, render_scene, sample_scene, shape_tokens

    toy = cogviz.load_pipeline("toy")
    ratios, errors, still, words, concepts = [], [], [], [], []
    for s in range(3):
        scene = sample_scene(1_000_000_000 + s)
        g = cogviz.generate(toy, render_scene(scene, frames=[0])[0], prompt_for(scene), steps=12, seed=s,
                            progress=False, decode_video=False, record=("step/*/block/1/readtokens",
                                                                        "step/*/block/3/readtokens",
                                                                        "step/*/block/3/words",
                                                                        "step/*/block/2/concepts"))
        image_shape = torch.tensor(shape_tokens(scene, 0))
        for i in range(12):
            for block in (1, 3):
                maps = g.trace.row(f"step/{i}/block/{block}/readtokens")  # conditional row (F', 4, 6, 4, 6)
                arrows = argmax_flow(maps)
                for j in range(1, maps.shape[0]):
                    q = torch.tensor(shape_tokens(scene, 4 * j))  # latent frame j ends at video frame 4j
                    m = maps[j][q]  # (shape tokens, 4, 6)
                    ratios.append((m[:, image_shape].mean() / m[:, ~image_shape].mean()).item())
                    if block == 3:
                        colour = word_map(g.trace.row(f"step/{i}/block/3/words"), toy.tokenizer, prompt_for(scene),
                                          scene.colour)[j]  # the colour word on token frame j
                        words.append((colour[q].mean() / colour[~q].mean()).item())
                        out = concept_map(g.trace.row(f"step/{i}/block/2/concepts"), toy.tokenizer,
                                          prompt_for(scene), [scene.colour, scene.shape])[0, j]
                        concepts.append((out[q].mean() / out[~q].mean()).item())
                        true = torch.tensor(displacement(scene, 4 * j))
                        errors.append((arrows[j][q] - true).norm(dim=-1).mean().item())
                        still.append(true.norm().item())
    share_above = np.mean(np.array(ratios) > 1.0)
    assert np.median(ratios) > 2.0 and share_above > 0.8, (np.percentile(ratios, [0, 10, 50, 90, 100]), share_above)
    assert np.mean(errors) < np.mean(still), (np.mean(errors), np.mean(still))
    assert np.median(words) > 1.5, np.percentile(words, [10, 50, 90])  # the colour word sits on the shape
    # in output space too (ConceptAttention): block 2 puts the colour word, against the shape word, on the shape
    assert np.median(concepts) > 1.5, np.percentile(concepts, [10, 50, 90])


def test_the_pictures_have_colour_bars_labels_and_a_scale_centred_at_zero():
    from cogviz.anchor_map import map_picture
    from cogviz.readmaps import flow
    from cogviz.viz import arrows_picture, change_map, read_map_picture

    pipe = tiny_random_pipeline(num_layers=2)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    g = cogviz.generate(pipe, img, PROMPT, num_frames=9, steps=2, progress=False,
                        record=("step/1/block/0/readmap", "step/1/block/0/readpos", "frames"))
    pic = read_map_picture(g.trace.row("step/1/block/0/readmap"), g.fitted)
    assert pic.shape[1] > 500 and len(pic.figure.axes) == 3  # two later frames and the colour bar
    assert pic.figure.axes[-1].get_ylabel() == "attention on each image token"
    arrows = arrows_picture(flow(g.trace.row("step/1/block/0/readpos")), g.frames)
    assert arrows.shape[0] > 150 and len(arrows.figure.axes) == 2
    changes = change_map([[-0.2, 0.05], [0.0, 0.1]], row_labels=["a", "b"], col_labels=["x", "y"])
    norm = changes.figure.axes[0].images[0].norm
    assert norm.vcenter == 0 and norm.vmin == pytest.approx(-0.2) and norm.vmax == pytest.approx(0.2)
    import pandas as pd

    table = pd.DataFrame({"figure": ["later_ssim"] * 3, "block": [None, 0, 1], "window": ["0-1"] * 3,
                          "change": [0.0, -0.03, 0.01]})
    drawn = map_picture(table)
    assert drawn.figure.axes[0].get_xlabel().startswith("step window") and len(drawn.figure.axes) == 2
    with pytest.raises(cogviz.errors.CogvizError, match="token frames 0-2"):
        read_map_picture(g.trace.row("step/1/block/0/readmap"), g.fitted, frames=[5])


def test_a_word_the_prompt_does_not_hold_is_named():
    pipe = tiny_random_pipeline()
    words = torch.zeros(16, 3, 2, 2)
    from cogviz.readmaps import word_map

    with pytest.raises(cogviz.errors.CogvizError, match=r"word 'bluex' is not a token of the prompt; did you mean 'blue'"):
        word_map(words, pipe.tokenizer, "a blue circle", "bluex")
    assert word_map(words + 1, pipe.tokenizer, "a blue circle", "Blue").shape == (3, 2, 2)


def test_the_head_table_is_each_heads_share_on_the_image_and_draws_as_a_head_by_block_map():
    from cogviz.readmaps import head_table
    from cogviz.viz import change_map

    pipe = tiny_random_pipeline(num_layers=2)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    g = cogviz.generate(pipe, img, PROMPT, num_frames=9, steps=2, progress=False, decode_video=False,
                        record=("step/*/block/*/readmap",), attention_layers="all")
    table = head_table(g.trace)
    assert len(table) == 2 * 2 * 2 and set(table.columns) == {"block", "step", "head", "image_share"}
    # the mean over heads is the share the attention recorder gives the image frame, later frames' mean
    mean = table.groupby(["block", "step"])["image_share"].mean()
    for (block, step), v in mean.items():
        shares = g.trace.row(f"step/{step}/block/{block}/attention")[1:, 1].mean()
        assert v == pytest.approx(float(shares), abs=1e-6)
    grid = table.pivot_table(index="head", columns="block", values="image_share")
    pic = change_map(grid.to_numpy(), row_labels=list(grid.index), col_labels=list(grid.columns), centred=False)
    assert pic.figure.axes[0].images[0].norm.vmin == pytest.approx(grid.to_numpy().min())
    with pytest.raises(cogviz.errors.NotRecordedError, match="no read map"):
        head_table(cogviz.generate(pipe, img, PROMPT, num_frames=9, steps=1, progress=False).trace)


def test_the_belief_at_each_step_decodes_and_the_last_one_is_the_video():
    """Issue 44: when the video is decided. At 4 trailing DDIM steps the last step lands on alpha 1, so
    its x0 is the final latent and its decoded belief the video; earlier beliefs are further from it."""
    from cogviz.belief import belief_curve, belief_frames, belief_strip, belief_table, decided_at

    toy = cogviz.load_pipeline("toy")
    from cogviz.toy.scenes import prompt_for, render_scene, sample_scene

    scene = sample_scene(1_000_000_002)
    g = cogviz.generate(toy, render_scene(scene, frames=[0])[0], prompt_for(scene), steps=4, seed=2, progress=False,
                        record=("step/*/x0", "frames", "latents.final"))
    beliefs = belief_frames(toy, g.trace, steps=[0, 3])
    from cogviz.encode import decode_latents

    with torch.no_grad():  # decoded alone, as the beliefs are (the sampler decodes videos in pairs on a CPU)
        final = (decode_latents(toy, g.trace["latents.final"])[0].numpy() * 255).round().astype(np.uint8)
    assert np.abs(beliefs[3].astype(int) - final.astype(int)).max() <= 1
    assert np.abs(beliefs[3].astype(int) - g.frames.astype(int)).mean() < 1.0
    table = belief_table(toy, g.trace, g.fitted)
    assert set(table["step"]) == set(range(4)) and len(table) == 4 * 17
    last = table[table["step"] == 3]["ssim_to_final"]
    first = table[table["step"] == 0]["ssim_to_final"]
    assert last.min() > 0.99 and first.mean() < last.mean()
    assert decided_at(table, 12, threshold=0.99) is not None and decided_at(table, 12, threshold=1.01) is None
    curve = belief_curve(table, frames=(0, 12))
    assert curve.figure.axes[0].get_xlabel() == "step" and len(curve.figure.axes[0].lines) == 3
    strip = belief_strip(beliefs, frames=(0, 12))
    assert strip.shape[0] > 2 * 64 and strip.shape[1] >= 2 * 96
    with pytest.raises(cogviz.errors.NotRecordedError, match=r"steps \[7\] of x0 are not in this trace"):
        belief_frames(toy, g.trace, steps=[7])
