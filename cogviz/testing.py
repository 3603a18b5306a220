"""Tiny random CogVideoX I2V pipelines for tests: every code path in milliseconds.

Sized like diffusers' own CogVideoX tests (one layer, a few heads, 8-wide VAE blocks), but with
the real 16 latent channels, so the transformer input is 16 + 16 = 32 channels as in the real
models. ``family="1.5"`` builds the CogVideoX 1.5 variant: ``patch_size_t=2``, an ``ofs``
embedding, rotary embeddings only, and ``invert_scale_latents=True`` in the VAE.
"""
from __future__ import annotations

import torch

__all__ = ["tiny_random_pipeline", "full_size_random_pipeline", "TINY_SIZE", "COGVIDEOX_5B_I2V_TRANSFORMER"]

TINY_SIZE = (32, 32)  #: (height, width) in pixels: a 4 x 4 latent, 2 x 2 tokens per latent frame


def tiny_random_pipeline(family: str = "1.0", seed: int = 0, num_layers: int = 1):
    """A ``CogVideoXImageToVideoPipeline`` with random weights, 32 x 32 pixels, on the CPU.

    ``num_layers`` transformer blocks (First Block Cache needs at least two).

    >>> pipe = tiny_random_pipeline()
    >>> pipe.transformer.config.in_channels, pipe.vae.config.latent_channels
    (32, 16)
    """
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    from .toy.components import VOCAB, make_tokenizer

    if family not in ("1.0", "1.5"):
        raise ValueError(f"family must be '1.0' or '1.5', got {family!r}")
    is15 = family == "1.5"
    h, w = TINY_SIZE
    torch.manual_seed(seed)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=32, out_channels=16, time_embed_dim=8,
        text_embed_dim=32, num_layers=num_layers, sample_width=w // 8, sample_height=h // 8, sample_frames=9,
        patch_size=2, patch_size_t=2 if is15 else None, temporal_compression_ratio=4, max_text_seq_length=16,
        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=not is15,
        ofs_embed_dim=8 if is15 else None, patch_bias=not is15,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1,
        norm_num_groups=2, temporal_compression_ratio=4, sample_height=h, sample_width=w,
        scaling_factor=0.7, invert_scale_latents=is15,
    )
    torch.manual_seed(seed + 2)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(VOCAB), d_model=32, d_kv=8, d_ff=37, num_layers=1,
                                           num_heads=4, relative_attention_num_buckets=8, pad_token_id=0,
                                           eos_token_id=1)).eval()
    scheduler = CogVideoXDDIMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
        set_alpha_to_one=True, steps_offset=0,
    )
    pipe = CogVideoXImageToVideoPipeline(tokenizer=make_tokenizer(), text_encoder=text_encoder, vae=vae,
                                         transformer=transformer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: The transformer configuration THUDM/CogVideoX-5b-I2V ships with (compute identical to the real one).
COGVIDEOX_5B_I2V_TRANSFORMER = dict(
    num_attention_heads=48, attention_head_dim=64, in_channels=32, out_channels=16, flip_sin_to_cos=True,
    freq_shift=0, time_embed_dim=512, text_embed_dim=4096, num_layers=42, dropout=0.0, attention_bias=True,
    sample_width=90, sample_height=60, sample_frames=49, patch_size=2, temporal_compression_ratio=4,
    max_text_seq_length=226, activation_fn="gelu-approximate", timestep_activation_fn="silu",
    norm_elementwise_affine=True, norm_eps=1e-5, spatial_interpolation_scale=1.875,
    temporal_interpolation_scale=1.0, use_rotary_positional_embeddings=True,
    use_learned_positional_embeddings=True,
)


#: What THUDM/CogVideoX1.5-5B-I2V changes: temporal patches, no learned positions (any size), ofs.
COGVIDEOX15_5B_I2V_TRANSFORMER = {
    **COGVIDEOX_5B_I2V_TRANSFORMER, "patch_size_t": 2, "patch_bias": False, "ofs_embed_dim": 512,
    "use_learned_positional_embeddings": False, "sample_height": 300, "sample_width": 300, "sample_frames": 81,
}


def full_size_random_pipeline(device="cuda", dtype=torch.bfloat16, seed: int = 0, family: str = "1.0"):
    """The full-size CogVideoX-5b-I2V (``family="1.0"``) or CogVideoX1.5-5B-I2V (``"1.5"``)
    architecture with random weights, for GPU benchmarks.

    Transformer and VAE have the real configurations (5.6 B + 0.2 B parameters), so their compute
    is that of the checkpoint. The text encoder is a one-layer T5 with the real 4096-wide output
    (text encoding runs once per video and is not what the benchmarks compare). Builds directly on
    ``device``; ``device="meta"`` builds the shapes only (no memory), for tests.
    """
    from diffusers import AutoencoderKLCogVideoX, CogVideoXImageToVideoPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    from .toy.components import VOCAB, make_scheduler, make_tokenizer

    torch.manual_seed(seed)
    with torch.device(device):
        if family not in ("1.0", "1.5"):
            raise ValueError(f"family must be '1.0' or '1.5', got {family!r}")
        config = COGVIDEOX_5B_I2V_TRANSFORMER if family == "1.0" else COGVIDEOX15_5B_I2V_TRANSFORMER
        # torch's own cast: diffusers' ModelMixin.to warns on every dtype cast, even for models
        # without float32-only modules (these have none), and a lesson would show that warning
        transformer = torch.nn.Module.to(CogVideoXTransformer3DModel(**config), dtype)
        vae = torch.nn.Module.to(AutoencoderKLCogVideoX(latent_channels=16, scaling_factor=0.7, sample_height=480,
                                                        sample_width=720, invert_scale_latents=family == "1.5"), dtype)
        text_encoder = T5EncoderModel(T5Config(vocab_size=len(VOCAB), d_model=4096, d_kv=64, d_ff=1024,
                                               num_layers=1, num_heads=8, pad_token_id=0, eos_token_id=1)).to(dtype)
    pipe = CogVideoXImageToVideoPipeline(tokenizer=make_tokenizer(), text_encoder=text_encoder.eval(), vae=vae,
                                         transformer=transformer, scheduler=make_scheduler())
    pipe.set_progress_bar_config(disable=True)
    return pipe
