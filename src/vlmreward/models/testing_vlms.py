"""Random-weight generative VLMs of the real architectures, with real processor and tokenizer
files, built and saved with ``save_pretrained`` (nothing is downloaded): for tests, benchmarks and
demos (``tests/test_generative.py``, ``benchmarks/bench_generative.py``).

Each builder writes a directory that ``AutoModelForImageTextToText`` and ``AutoProcessor`` load:
``config.json`` and ``model.safetensors``, the image (and video) processor's JSON, a byte-level
BPE tokenizer trained here on a few sentences (``tokenizer.json``) with the special tokens the
processor needs, and a chat template in the model family's format (image, then text, then the
generation prompt).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vlmreward.models._compat import ensure_torchvision_importable

CORPUS = [
    "Does this image show a pole upright? Answer yes or no.",
    "Does this image show the pole is upright? Answer yes or no. Yes. No. yes no YES NO",
    "Is the cart in the middle? Does this image show a fallen pole? a humanoid robot kneeling",
    "system user assistant You are a helpful assistant. User: Assistant:",
] * 20

QWEN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def _tokenizer(special: list[str], **named: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **named)


def _qwen_tokenizer():
    """The Qwen-VL special tokens, and the config's ids of the image and video tokens."""
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = _tokenizer(special, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    return tokenizer, {
        "image_token_id": ids("<|image_pad|>"), "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"), "vision_end_token_id": ids("<|vision_end|>"),
    }


def build_qwen2_5_vl(path: Path, seed: int = 0) -> Path:
    """Qwen2.5-VL: window-attention vision tower, M-RoPE text model, dynamic-resolution images."""
    ensure_torchvision_importable()
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer, token_ids = _qwen_tokenizer()
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32, fullatt_block_indexes=[1],
            window_size=56, patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
        ),
        **token_ids,
    )
    torch.manual_seed(seed)
    Qwen2_5_VLForConditionalGeneration(config).eval().save_pretrained(path)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64),
        tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64),
        chat_template=QWEN_TEMPLATE,
    )
    processor.save_pretrained(path)
    return path


def build_qwen3_vl(path: Path, seed: int = 0) -> Path:
    """Qwen3-VL: 16-px patches, DeepStack visual features, interleaved M-RoPE."""
    ensure_torchvision_importable()
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tokenizer, token_ids = _qwen_tokenizer()
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=4096,
            rope_scaling={"rope_type": "default", "mrope_section": [1, 1, 2], "mrope_interleaved": True},
        ),
        vision_config=dict(
            depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32, patch_size=16,
            spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=64, deepstack_visual_indexes=[0],
        ),
        **token_ids,
    )
    torch.manual_seed(seed)
    Qwen3VLForConditionalGeneration(config).eval().save_pretrained(path)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 64),
        tokenizer=tokenizer, video_processor=Qwen3VLVideoProcessor(size={"shortest_edge": 32 * 32 * 4, "longest_edge": 32 * 32 * 64}),
        chat_template=QWEN_TEMPLATE,
    )
    processor.save_pretrained(path)
    return path


def build_smolvlm(path: Path, seed: int = 0, size: str = "tiny") -> Path:
    """SmolVLM (Idefics3 family): SigLIP-style vision tower, pixel shuffle, a Llama text model.

    ``size="256m"`` gives SmolVLM-256M-Instruct's dimensions (a 12-layer 768-wide vision tower on
    512-px images in 16-px patches, pixel shuffle 4, a 30-layer 576-wide text model, 49,280-entry
    vocabulary: 256 M parameters), with random weights; its processor resizes a frame's longer
    side to 512 px without splitting, 64 image tokens per frame.
    """
    if size not in ("tiny", "256m"):
        raise ValueError(f"size={size!r}: use 'tiny' or '256m'")
    ensure_torchvision_importable()
    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMProcessor
    from transformers.models.smolvlm.image_processing_smolvlm import SmolVLMImageProcessor
    from transformers.models.smolvlm.video_processing_smolvlm import SmolVLMVideoProcessor

    special = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>", "<global-img>", "<video>"]
    tokenizer = _tokenizer(special, eos_token="<end_of_utterance>", pad_token="<|endoftext|>", bos_token="<|im_start|>")
    if size == "tiny":
        image_size, patch, scale = 32, 8, 2
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
        text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2)
    else:  # SmolVLM-256M-Instruct's config.json
        image_size, patch, scale = 512, 16, 4
        vision = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
        text = dict(vocab_size=49280, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3)
    config = SmolVLMConfig(
        vision_config=dict(**vision, image_size=image_size, patch_size=patch),
        text_config=dict(model_type="llama", **text, max_position_embeddings=8192, pad_token_id=tokenizer.pad_token_id),
        scale_factor=scale, image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    SmolVLMForConditionalGeneration(config).eval().save_pretrained(path)
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(
            size={"longest_edge": 2 * image_size if size == "tiny" else image_size}, max_image_size={"longest_edge": image_size},
        ),
        tokenizer=tokenizer, video_processor=SmolVLMVideoProcessor(), chat_template=SMOLVLM_TEMPLATE,
        image_seq_len=int((image_size // patch) ** 2 / scale**2),
    )
    processor.save_pretrained(path)
    return path


def build_paligemma2(path: Path, seed: int = 0) -> Path:
    """PaliGemma 2: a SigLIP vision tower and a Gemma 2 text model; no chat template (the
    processor puts the image tokens and BOS before the question)."""
    ensure_torchvision_importable()
    from transformers import PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor, SiglipImageProcessor

    special = ["<pad>", "<eos>", "<bos>", "<image>"]
    tokenizer = _tokenizer(special, eos_token="<eos>", pad_token="<pad>", bos_token="<bos>")
    processor = PaliGemmaProcessor(
        image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}, image_seq_length=16), tokenizer=tokenizer,
    )
    tokenizer = processor.tokenizer  # the processor adds its location and segmentation tokens
    config = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, image_size=32, patch_size=8, projection_dim=32),
        text_config=dict(model_type="gemma2", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                         max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), projection_dim=32,
    )
    config.text_config.num_image_tokens = 16
    torch.manual_seed(seed)
    PaliGemmaForConditionalGeneration(config).eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path


BUILDERS = {
    "qwen2_5_vl": build_qwen2_5_vl,
    "qwen3_vl": build_qwen3_vl,
    "smolvlm": build_smolvlm,
    "paligemma": build_paligemma2,
}
