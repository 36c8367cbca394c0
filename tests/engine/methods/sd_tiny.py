"""Tiny, randomly initialised Stable Diffusion models in the official folder layouts.

No real SD weights exist on the test machines, so tests build the real architectures
(UNet2DConditionModel, AutoencoderKL, CLIP text encoder and tokenizer, safety checker) at
toy sizes, ``save_pretrained`` them, and let the product load them the way it loads a
model from the Hub. The bench script uses them too.
"""

from __future__ import annotations

from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (GPT-2/CLIP scheme):
    printable Latin-1 bytes stand for themselves, the rest map to code points from 256 up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def make_tokenizer():
    """A CLIP tokenizer over single bytes (no merges): any prompt tokenises, offline."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + [BOS, EOS]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def _text_config(tokenizer, **extra):
    from transformers import CLIPTextConfig

    vocab = tokenizer.get_vocab()
    return CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                          num_attention_heads=4, vocab_size=len(vocab),
                          max_position_embeddings=77, bos_token_id=vocab[BOS],
                          eos_token_id=vocab[EOS], pad_token_id=vocab[EOS], projection_dim=32,
                          **extra)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(32, 64), in_channels=3, out_channels=3,
                         down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4,
                         norm_num_groups=8, layers_per_block=1).eval()


def make_safety_checker(flag: bool):
    """A real StableDiffusionSafetyChecker (tiny CLIP vision tower) and its image processor.

    Thresholds decide: a concept is flagged when cosine similarity exceeds its threshold,
    and cosine similarity lies in -1..1, so threshold -2 flags every image and 2 none.
    """
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    config = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                         num_attention_heads=4),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                           num_attention_heads=4, image_size=32, patch_size=8),
        projection_dim=32)
    checker = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        checker.concept_embeds.normal_()
        checker.special_care_embeds.normal_()
        checker.concept_embeds_weights.fill_(-2.0 if flag else 2.0)
        checker.special_care_embeds_weights.fill_(2.0)
    processor = CLIPImageProcessor(size={"shortest_edge": 32},
                                   crop_size={"height": 32, "width": 32})
    return checker, processor


def save_safety_checker(folder: Path, *, flag: bool) -> Path:
    """The standalone layout of CompVis/stable-diffusion-safety-checker."""
    checker, processor = make_safety_checker(flag)
    checker.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def save_sd(folder: Path, *, seed: int = 0, safety: bool | None = None) -> Path:
    """A tiny SD 2.x-layout img2img pipeline; ``safety`` adds its own (flagging or not) checker."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        norm_num_groups=8, attention_head_dim=(2, 4)).eval()
    tokenizer = make_tokenizer()
    text_encoder = CLIPTextModel(_text_config(tokenizer)).eval()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    checker, processor = make_safety_checker(bool(safety)) if safety is not None else (None, None)
    pipe = StableDiffusionImg2ImgPipeline(
        vae=_vae(), text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=checker, feature_extractor=processor,
        requires_safety_checker=safety is not None)
    pipe.save_pretrained(folder)
    return folder


def save_sdxl(folder: Path, *, seed: int = 0) -> Path:
    """A tiny SDXL-layout img2img pipeline (two text encoders, text-time conditioning)."""
    import torch
    from diffusers import (EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tokenizer = make_tokenizer()
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
        norm_num_groups=8).eval()
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", steps_offset=1,
                                       timestep_spacing="trailing")
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config(tokenizer)).eval(),
        text_encoder_2=CLIPTextModelWithProjection(_text_config(tokenizer)).eval(),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet, scheduler=scheduler,
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(folder)
    return folder
