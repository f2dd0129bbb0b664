"""Vision-language models: frames and prompts in, unit embeddings out."""

from vlmreward.models.base import VisionLanguageModel
from vlmreward.models.preprocess import DEFAULT_RESIZE, RESIZE_MODES, PreprocessConfig, ResizeMode
from vlmreward.models.registry import load_model

__all__ = ["VisionLanguageModel", "load_model", "PreprocessConfig", "ResizeMode", "RESIZE_MODES", "DEFAULT_RESIZE"]
