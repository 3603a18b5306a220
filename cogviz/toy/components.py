"""Architecture of the embedded toy model: the same diffusers classes as CogVideoX-5b-I2V, small.

| part        | CogVideoX-5b-I2V                         | toy                                   |
|-------------|------------------------------------------|---------------------------------------|
| VAE         | AutoencoderKLCogVideoX, 16 latent ch.,   | same class, 16 latent channels,       |
|             | widths (128, 256, 256, 512), 8x / 4x     | widths (16, 48, 64, 64), 8x / 4x      |
| transformer | in_channels=32 (16 + 16), 42 layers,     | in_channels=32 (16 + 16), 8 layers,   |
|             | 48 heads x 64, patch 2, learned + rotary | 4 heads x 32, patch 2, learned+rotary |
| text        | T5-XXL (4096 wide), 226 tokens           | T5 encoder (64 wide), 16 tokens       |
| tokenizer   | SentencePiece T5Tokenizer                | word-level PreTrainedTokenizerFast    |
| scheduler   | CogVideoXDDIMScheduler, v-prediction,    | the same configuration; the training  |
|             | zero-SNR, trailing spacing               | recipe may set its snr_shift_scale    |
| video       | 49 x 480 x 720 -> 13 x 60 x 90 latents   | 17 x 64 x 96 -> 5 x 8 x 12 latents    |
"""
from __future__ import annotations

from diffusers import (
    AutoencoderKLCogVideoX,
    CogVideoXDDIMScheduler,
    CogVideoXImageToVideoPipeline,
    CogVideoXTransformer3DModel,
)

from .scenes import COLOURS, DIRECTIONS, SHAPES

__all__ = [
    "HEIGHT", "WIDTH", "NUM_FRAMES", "MAX_TEXT_LEN", "VOCAB",
    "VAE_CHANNELS", "TRANSFORMER_SIZE", "check_vae_channels", "make_vae", "make_transformer", "make_text_encoder", "make_tokenizer", "make_scheduler", "make_pipeline",
]

HEIGHT, WIDTH, NUM_FRAMES = 64, 96, 17
MAX_TEXT_LEN = 16
_EXTRA_WORDS = (
    "a", "an", "the", "moves", "moving", "slides", "goes", "to", "and", "shape", "ball", "box",
    "stays", "still", "fast", "slowly", "quickly", "across", "frame", "on", "background",
    "orange", "purple", "white", "black", "grey", "gray",
)
_CAMERA_WORDS = ("camera", "pans", "zooms", "in", "out", "over", "photo")
#: Words added after the first vocabulary, in order: their embedding rows come after the first
#: ones, drawn from their own seed, so every earlier word keeps its embedding (make_text_encoder).
_ADDED_WORDS = ("holds",)
_FIRST_VOCAB: tuple[str, ...] = ("<pad>", "</s>", "<unk>") + tuple(
    dict.fromkeys(_EXTRA_WORDS + tuple(COLOURS) + SHAPES + tuple(DIRECTIONS) + _CAMERA_WORDS)
)
#: The tokenizer's vocabulary: special tokens first (T5's pad=0, eos=1, unk=2), then words.
VOCAB: tuple[str, ...] = _FIRST_VOCAB + _ADDED_WORDS


#: The VAE's channels per block (4 blocks -> 8x spatial, as the real VAE).
VAE_CHANNELS: tuple[int, ...] = (16, 48, 64, 64)


def check_vae_channels(block_out_channels: tuple[int, ...]) -> None:
    if len(block_out_channels) != 4 or any(c <= 0 or c % 8 for c in block_out_channels):
        raise ValueError(f"VAE channels {tuple(block_out_channels)}: need 4 blocks (8x spatial), each a positive "
                         "multiple of 8 (the group norm has 8 groups)")


def make_vae(scaling_factor: float = 1.0, block_out_channels: tuple[int, ...] = VAE_CHANNELS) -> AutoencoderKLCogVideoX:
    check_vae_channels(block_out_channels)
    return AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=8,
        temporal_compression_ratio=4,
        sample_height=HEIGHT,
        sample_width=WIDTH,
        scaling_factor=scaling_factor,
    )


#: The transformer's size; ``make_transformer(**overrides)`` changes it (e.g. ``num_layers=6``).
TRANSFORMER_SIZE: dict[str, int] = {"num_attention_heads": 4, "attention_head_dim": 32, "num_layers": 8}


def make_transformer(**size: int) -> CogVideoXTransformer3DModel:
    unknown = set(size) - set(TRANSFORMER_SIZE)
    if unknown:
        raise ValueError(f"make_transformer: unknown size setting(s) {sorted(unknown)}; accepted: {sorted(TRANSFORMER_SIZE)}")
    return CogVideoXTransformer3DModel(
        **{**TRANSFORMER_SIZE, **size},
        in_channels=32,  # 16 noisy-video channels + 16 image-latent channels, as 5b-I2V
        out_channels=16,
        time_embed_dim=128,
        text_embed_dim=64,
        sample_width=WIDTH // 8,
        sample_height=HEIGHT // 8,
        sample_frames=NUM_FRAMES,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=MAX_TEXT_LEN,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )


def make_text_encoder(seed: int = 0):
    """The frozen random T5 encoder of ``seed``. The first vocabulary's rows and every other
    weight are drawn exactly as before words were added; an added word's row is drawn from
    ``(seed, its index)``, with the spread of the first rows."""
    import torch
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=len(_FIRST_VOCAB), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
    )
    torch.manual_seed(seed)
    model = T5EncoderModel(config).eval()
    first = model.get_input_embeddings().weight.detach()
    model.resize_token_embeddings(len(VOCAB), mean_resizing=False)
    with torch.no_grad():
        rows = model.get_input_embeddings().weight
        for i in range(len(_FIRST_VOCAB), len(VOCAB)):
            g = torch.Generator().manual_seed(seed * 1_000_003 + i)
            rows[i] = torch.randn(first.shape[1], generator=g) * first.std()
    return model


def make_tokenizer():
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # T5 appends </s> to every sequence; so does this tokenizer.
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
        model_max_length=MAX_TEXT_LEN,
    )


def make_scheduler(snr_shift_scale: float = 1.0) -> CogVideoXDDIMScheduler:
    """The configuration THUDM/CogVideoX-5b-I2V ships with. ``snr_shift_scale`` is the
    scheduler's own setting (CogVideoX-2b uses 3.0): the signal-to-noise ratio at every timestep
    is divided by it, so a value below 1 keeps more of the latent under the noise."""
    if not snr_shift_scale > 0:
        raise ValueError(f"snr_shift_scale must be > 0 (1.0 leaves the schedule as is), got {snr_shift_scale}")
    return CogVideoXDDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=True, steps_offset=0, prediction_type="v_prediction",
        rescale_betas_zero_snr=True, timestep_spacing="trailing", snr_shift_scale=snr_shift_scale,
    )


def make_pipeline(vae=None, transformer=None, text_encoder=None, scheduler=None) -> CogVideoXImageToVideoPipeline:
    """Assemble a (random or trained) toy pipeline from its parts."""
    return CogVideoXImageToVideoPipeline(
        tokenizer=make_tokenizer(),
        text_encoder=text_encoder if text_encoder is not None else make_text_encoder(),
        vae=vae if vae is not None else make_vae(),
        transformer=transformer if transformer is not None else make_transformer(),
        scheduler=scheduler if scheduler is not None else make_scheduler(),
    )
