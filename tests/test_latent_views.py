"""encode_image / decode, the latent renderers, the patch-embedding split and anchor attention."""
import numpy as np
import pytest
import torch

import cogviz
import cogviz.models as M
from cogviz import viz
from cogviz.analysis import PCABasis, channel_stats, contribution_maps, patch_embed_split
from cogviz.errors import CogvizError
from cogviz.sampler import Intervention
from cogviz.testing import tiny_random_pipeline
from cogviz.toy.scenes import prompt_for, render_scene, sample_scene
from cogviz.widgets.transport import mosaic_png

SCENE = sample_scene(1_000_000_005)
PROMPT = prompt_for(SCENE)


@pytest.fixture(scope="module")
def toy():
    return M.load_pipeline("toy")


@pytest.fixture(scope="module")
def run(toy):
    truth = render_scene(SCENE)
    return cogviz.generate(toy, truth[0], PROMPT, steps=6, seed=4, progress=False,
                           record=("image.fitted", "z_img", "step/*/z_t", "step/*/input", "latents.final"),
                           attention_layers=[0, 5])


# ------------------------------------------------------------------------------ encode / decode
def test_encode_image_is_what_the_transformer_received(toy, run):
    z = cogviz.encode_image(toy, run.fitted, generator=4)
    assert z.shape == (1, 5, 16, 8, 12)
    for i in range(6):  # bit for bit, in both CFG halves, at every step
        x = run.trace[f"step/{i}/input"]
        assert torch.equal(x[0, :, 16:], z[0]) and torch.equal(x[1, :, 16:], z[0])
    assert torch.all(z[:, 1:] == 0) and z[:, 0].abs().mean() > 0.1


@pytest.mark.parametrize("family,frames", [("1.0", 9), ("1.5", 17)])
def test_encode_image_on_tiny_models_and_the_15_padding(family, frames):
    pipe = tiny_random_pipeline(family)
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    g = cogviz.generate(pipe, img, "a red circle moves left", num_frames=frames, steps=2, seed=1, progress=False,
                        record=("step/0/input",))
    z = cogviz.encode_image(pipe, g.fitted, num_frames=frames, generator=1)
    assert torch.equal(g.trace["step/0/input"][1, :, 16:], z[0])
    assert z.shape[1] == (6 if family == "1.5" else 3)  # 1.5: 5 latent frames padded to 6 (patch_size_t=2)
    assert torch.all(z[:, 1:] == 0)
    mode = cogviz.encode_image(pipe, g.fitted, num_frames=frames, sample=False)
    assert not torch.equal(mode, z) and torch.equal(mode, cogviz.encode_image(pipe, g.fitted, num_frames=frames,
                                                                              sample=False))


def test_decode_is_the_pair_of_encode(toy, run):
    frames = cogviz.decode(toy, run.trace["latents.final"])
    g = cogviz.generate(toy, run.fitted, PROMPT, steps=6, seed=4, progress=False)
    assert frames.dtype == np.uint8 and np.array_equal(frames, g.frames)
    recon = cogviz.decode(toy, cogviz.encode_image(toy, run.fitted, sample=False)[:, :1])  # one image frame
    err = np.abs(recon[0].astype(int) - run.fitted.to_array().astype(int)).mean()
    assert recon.shape == (1, 64, 96, 3) and err < 12, err


# ------------------------------------------------------------------------------ renderers
def test_mosaic_splits_labels_and_reads_out_the_range(run):
    x = run.trace["step/3/input"][1]  # (F, 32, h, w)
    m = viz.channel_mosaic(x[1], split=16, zoom=4, cols=8)
    assert m.dtype == np.uint8 and m.ndim == 3
    # latent frame 1: the z_img half is all zeros -> exactly the zero colour, the z_t half is not
    z = viz.channel_mosaic(x[1, 16:], zoom=4, cols=8, labels=False)
    body = z[:z.shape[0] - 14]
    tiles = body[np.any(body != 255, axis=-1)]
    assert len(tiles) > 0 and np.all(tiles == viz.zero_colour())
    noise = viz.channel_mosaic(x[1, :16], zoom=4, cols=8, labels=False)
    assert len(np.unique(noise.reshape(-1, 3), axis=0)) > 50
    # labels drawn: the labelled mosaic differs from the unlabelled one, and is taller for the band
    assert m.shape[0] > viz.channel_mosaic(x[1], zoom=4, cols=8, labels=False).shape[0]
    for norm in viz.NORMS:
        out = viz.channel_mosaic(x[0], norm=norm, zoom=2)
        assert out.shape[2] == 3
    flat = viz.channel_mosaic(x[1, 16:], norm="channel", zoom=2, labels=False)
    assert np.all(flat[np.any(flat != 255, axis=-1) & np.any(flat != 0, axis=-1)][:10] == viz.FLAT_GREY)
    with pytest.raises(ValueError, match="norm must be one of"):
        viz.channel_mosaic(x[0], norm="log")


def test_frames_overview_shows_which_frames_carry_the_image(run):
    z = run.trace["z_img"][0]
    img = viz.frames_overview(z, tile=16)
    # rows of later frames are the zero colour; frame 0's row is not
    zc = np.array(viz.zero_colour())
    top, left = 14, 70
    th = 16
    row0 = img[top:top + th, left:left + 200]
    row2 = img[top + 2 * (th + 1):top + 2 * (th + 1) + th, left:left + 200]
    assert not np.all(row0 == zc) and np.all(row2[np.any(row2 != 255, -1)] == zc)


def test_pca_is_fitted_once_and_consistent_across_frames(run):
    z_ts = [run.trace[f"step/{i}/z_t"][0] for i in range(6)]
    pca = PCABasis.fit(run.trace["z_img"], *z_ts)
    assert pca.components.shape == (3, 16) and 0 < pca.explained.sum() <= 1
    allf = pca.apply(z_ts[5])                     # (F, h, w, 3)
    one = pca.apply(z_ts[5][2])                   # one frame alone: the same colours
    assert allf.shape == (5, 8, 12, 3) and np.array_equal(allf[2], one)
    assert not np.array_equal(pca.apply(z_ts[0][0]), pca.apply(z_ts[5][0]))


def test_denoising_film_moves_z_t_and_keeps_z_img(run):
    film = viz.denoising_film(run.trace)
    assert film.shape[0] == 6 and film.dtype == np.uint8
    w = film.shape[2]
    left, right = film[:, :, : w // 2], film[:, :, w // 2 + 8:]
    body = slice(14, film.shape[1] - 14)  # titles and footers carry the step number
    assert all(np.array_equal(right[0, body], right[i, body]) for i in range(6))   # z_img fixed
    assert not np.array_equal(left[0, body], left[5, body])                       # z_t moves
    with pytest.raises(ValueError, match="step/\\*/z_t"):
        viz.denoising_film(cogviz.Trace())


def test_stats_figure_and_channel_stats(run):
    s = channel_stats(run.trace["z_img"][0, 0])
    assert s["mean"].shape == (16,) and np.all(s["min"] <= s["mean"]) and np.all(s["std"] > 0)
    assert np.all(channel_stats(run.trace["z_img"][0, 1])["std"] == 0)
    pic = viz.stats_figure(run.trace)
    assert isinstance(pic, viz.Picture) and pic._repr_png_()[:4] == b"\x89PNG" and pic.ndim == 3
    fig = pic.figure  # kept for editing
    assert len(fig.axes) == 2
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == {"z_t channels", "z_img channels (fixed)"}


# ------------------------------------------------------------------------------ patch embedding
def test_patch_embed_split_matches_the_weights(toy):
    split = patch_embed_split(toy)
    w = toy.transformer.patch_embed.proj.weight  # (D, 32, 2, 2)
    assert split["noise"].shape == split["image"].shape == (16,)
    np.testing.assert_allclose(split["image"][3], w[:, 19].norm().item(), rtol=1e-5)
    np.testing.assert_allclose(split["noise"][0], w[:, 0].norm().item(), rtol=1e-5)


def test_contribution_maps(toy, run):
    x = run.trace["step/2/input"]
    maps = contribution_maps(toy, run.trace.row("step/2/input"))
    assert maps["image"].shape == maps["noise"].shape == (5, 4, 6)
    assert np.all(maps["image"][1:] == 0) and np.all(maps["image"][0] > 0)  # the image enters frame 0 only
    assert np.all(maps["noise"] > 0)
    # the two halves add up to the embedding (minus the bias) that the transformer computes
    w = toy.transformer.patch_embed.proj
    full = w(x[1, 0:1]) - w.bias[None, :, None, None]
    manual = torch.nn.functional.conv2d(x[1, 0:1, 16:], w.weight[:, 16:], stride=2).norm(dim=1)[0]
    np.testing.assert_allclose(maps["image"][0], manual.detach().numpy(), rtol=1e-4)
    assert full.shape[1] == w.weight.shape[0]


def test_contribution_maps_on_15_patches():
    pipe = tiny_random_pipeline("1.5")
    x = torch.randn(6, 32, 4, 4)
    x[1:, 16:] = 0
    maps = contribution_maps(pipe, x)
    assert maps["image"].shape == (3, 2, 2)  # 6 latent frames / patch_size_t 2
    assert np.all(maps["image"][1:] == 0) and np.all(maps["image"][0] > 0)


# ------------------------------------------------------------------------------ anchor attention
def test_anchor_attention_is_opt_in_scoped_and_exact(toy, run):
    shares = run.trace["step/5/block/5/attention"]
    assert shares.shape == (2, 5, 6) and "step/5/block/1/attention" not in run.trace
    torch.testing.assert_close(shares.sum(-1), torch.ones(2, 5))
    plain = cogviz.generate(toy, run.fitted, PROMPT, steps=6, seed=4, progress=False)
    assert torch.equal(plain.trace["latents.final"], run.trace["latents.final"])  # recording changes nothing
    procs = {type(b.attn1.processor).__name__ for b in toy.transformer.transformer_blocks}
    assert procs == {"CogVideoXAttnProcessor2_0"}  # restored after the call

    def boom(x, ctx):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        cogviz.generate(toy, run.fitted, PROMPT, steps=2, progress=False, attention_layers="all",
                        interventions=[Intervention("step/1/pred", boom)])
    assert {type(b.attn1.processor).__name__ for b in toy.transformer.transformer_blocks} == procs
    last = len(toy.transformer.transformer_blocks) - 1
    with pytest.raises(CogvizError, match=f"this transformer has {last + 1} blocks, 0-{last}"):
        cogviz.generate(toy, run.fitted, PROMPT, steps=2, progress=False, attention_layers=[last + 1])


def test_heatmap_renders_attention(run):
    a = np.stack([run.trace[f"step/5/block/{l}/attention"][1, :, 1].numpy() for l in (0, 5)])
    img = viz.heatmap(a, row_labels=["layer 0", "layer 5"], col_labels=[f"f{i}" for i in range(5)],
                      title="share of attention on frame 0")
    assert img.dtype == np.uint8 and img.shape[0] > 2 * 28


def test_mosaic_png_is_faithful(run):
    import io

    from PIL import Image

    m = viz.channel_mosaic(run.trace["step/3/input"][1, 1], split=16, zoom=3)
    back = np.asarray(Image.open(io.BytesIO(mosaic_png(m))).convert("RGB")).astype(int)
    assert back.shape == m.shape
    diff = np.abs(back - m).max(-1)
    colour = ~((m[..., 0] == m[..., 1]) & (m[..., 1] == m[..., 2]))  # tiles; text and background are grey
    assert colour.mean() > 0.3 and diff[colour].max() <= 8  # 128 colormap levels instead of 256
    assert np.all(back[np.all(m == 255, -1)] == 255)  # the white background exactly


def test_attention_shares_do_not_depend_on_the_memory_budget():
    from cogviz.analysis import AnchorAttentionProcessor

    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 2, 20, 8, generator=g), torch.randn(2, 2, 20, 8, generator=g)
    small = AnchorAttentionProcessor(4, budget_bytes=2 * 2 * 20 * 4 * 3)._shares(q, k, 4)  # 3 queries a chunk
    whole = AnchorAttentionProcessor(4)._shares(q, k, 4)
    assert small.shape == (2, 4, 5)  # 16 video tokens = 4 frames of 4; text + 4 key groups
    torch.testing.assert_close(small, whole)
    manual = torch.softmax(q[:, :, 4:] @ k.transpose(-1, -2) / 8 ** 0.5, -1)[..., :4].sum(-1).mean(1)  # on text
    torch.testing.assert_close(whole[..., 0], manual.view(2, 4, 4).mean(-1))


# ------------------------------------------------------------------------- rows by role (issue 42)
@pytest.mark.parametrize("guidance,roles", [
    (6.0, ("unconditional", "conditional", "image_free")),
    (1.0, ("conditional", "image_free")),
])
def test_views_read_the_conditional_row_under_image_guidance(toy, guidance, roles):
    """The image-free row comes last: 'the last row is the conditional one' showed the image's
    contribution as 0 everywhere. Readers now ask for the row by role."""
    from cogviz.widgets import LatentExplorer

    g = cogviz.generate(toy, render_scene(SCENE)[0], PROMPT, steps=2, guidance=guidance, image_guidance=2.0,
                        record=("z_img", "step/*/z_t", "step/*/input"), progress=False)
    x = g.trace["step/1/input"]
    assert g.trace.rows() == roles and x.shape[0] == len(roles)
    cond = g.trace.row("step/1/input")
    assert torch.equal(cond[:, 16:], g.trace["z_img"][0])  # the image, where the conditional row has it
    assert torch.all(g.trace.row("step/1/input", "image_free")[:, 16:] == 0)
    maps = contribution_maps(toy, cond)
    assert np.all(maps["image"][0] > 0)
    with pytest.raises(CogvizError, match="holds .* rows; pass one"):
        contribution_maps(toy, x)
    ex = LatentExplorer(g, pipe=toy)
    assert np.array_equal(ex._get("input", 1), cond.float().numpy())
    ex.view.value = "contribution"
    assert ex.error == ""
    with pytest.raises(CogvizError, match="row role 'conditionl'.*did you mean 'conditional'"):
        g.trace.row("step/1/input", "conditionl")


def test_attention_records_hold_each_variants_own_rows(toy):
    """A patch_activations companion shares the forward: its rows stay out of the owner's attention
    record (2 CFG rows, not 4), and the anchor view reads the owner's conditional row."""
    from cogviz import ablations as A
    from cogviz.widgets import LatentExplorer

    source = render_scene(sample_scene(1_000_000_011))[0]
    truth = render_scene(SCENE)[0]
    g = cogviz.generate(toy, truth, PROMPT, steps=2, ablations=[A.PatchActivations(source, layers=[3])],
                        record=("z_img", "step/*/z_t", "step/*/input"), attention_layers=[0, 5], progress=False)
    plain = cogviz.generate(toy, truth, PROMPT, steps=2, record=("z_img",), attention_layers=[0], progress=False)
    att = g.trace["step/1/block/0/attention"]
    assert att.shape[0] == 2 and g.trace.rows() == ("unconditional", "conditional")
    # block 0 comes before the patch at block 3: its attention at step 0 is the plain call's
    torch.testing.assert_close(g.trace["step/0/block/0/attention"], plain.trace["step/0/block/0/attention"])
    ex = LatentExplorer(g, pipe=toy)
    ex.view.value = "anchor attention"
    assert ex.error == ""
