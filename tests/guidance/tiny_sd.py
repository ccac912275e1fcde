"""A tiny random Stable Diffusion folder in the diffusers layout, built in the test (no downloads).

The same five parts as SD 1.x / 2.x (unet/, vae/, text_encoder/, tokenizer/, scheduler/), a few
thousand parameters each: 8x8 latents with 4 channels, 16x16 pictures (one VAE downsampling),
a 2-layer CLIP text encoder of width 16 and a byte-level BPE tokenizer without merges (every
character a token) holding 16 tokens per prompt.
"""

import json
from pathlib import Path

import torch


def byte_alphabet() -> list[str]:
    """The 256 characters GPT-2 / CLIP byte-level BPE uses for the bytes."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    chars, extra = dict(zip(keep, keep)), 0
    for b in range(256):
        if b not in chars:
            chars[b] = 256 + extra
            extra += 1
    return [chr(chars[b]) for b in range(256)]


def build(
    root: Path,
    *,
    text_width: int = 16,
    cross_attention_dim: int = 16,
    prediction_type: str = "epsilon",
    seed: int = 0,
) -> Path:
    """Write the model to ``root`` (created) and return it. ``text_width`` other than
    ``cross_attention_dim`` makes a mismatched folder."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = Path(root)
    torch.manual_seed(seed)
    UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=2,
        norm_num_groups=4,
    ).save_pretrained(root / "unet")
    AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=16,
    ).save_pretrained(root / "vae")
    alphabet = byte_alphabet()
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab |= {c: i + 2 for i, c in enumerate(alphabet)}
    vocab |= {c + "</w>": i + 2 + len(alphabet) for i, c in enumerate(alphabet)}
    tok_dir = root / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tok_dir / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(
        str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"), model_max_length=16
    )
    tokenizer.save_pretrained(tok_dir)
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=text_width,
        intermediate_size=2 * text_width,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=text_width,
    )
    CLIPTextModel(config).save_pretrained(root / "text_encoder")
    DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
    ).save_pretrained(root / "scheduler")
    return root
