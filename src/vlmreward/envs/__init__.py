"""Gymnasium and stable-baselines3 adapters: VLM rewards inside environments, single and vectorised."""

from vlmreward.envs.vector import VLMRewardVecEnvWrapper, VLMRewardVectorWrapper, make_vlm_vec_env
from vlmreward.envs.wrappers import RenderFrame, VLMRewardWrapper

__all__ = ["VLMRewardWrapper", "RenderFrame", "VLMRewardVecEnvWrapper", "VLMRewardVectorWrapper", "make_vlm_vec_env"]
