"""Vision-language models: frames and prompts in, unit embeddings out."""

from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.cache import EmbeddingCache
from vlmreward.models.onnx import ONNXModel
from vlmreward.models.preprocess import DEFAULT_RESIZE, RESIZE_MODES, PreprocessConfig, ResizeMode
from vlmreward.models.registry import RUNTIME_BACKENDS, RUNTIMES, load_model

__all__ = [
    "VisionLanguageModel",
    "load_model",
    "EmbeddingCache",
    "ONNXModel",
    "RUNTIMES",
    "RUNTIME_BACKENDS",
    "PreprocessConfig",
    "ResizeMode",
    "RESIZE_MODES",
    "DEFAULT_RESIZE",
]
