"""Gymnasium and stable-baselines3 adapters: VLM rewards inside environments, single and vectorised."""

from vlmreward.envs.goal_conditioning import GoalObservation
from vlmreward.envs.registration import register_envs
from vlmreward.envs.vector import VLMRewardVecEnvWrapper, VLMRewardVectorWrapper, make_vlm_vec_env
from vlmreward.envs.wrappers import RenderFrame, VLMRewardWrapper

register_envs()  # vlmreward/CartPole-v1, ...Textured-v0, .../MiniWorldGoals-v0, .../AndroidOpenApp-v0, .../MetaWorld-*-v3, .../VLMRM-*-v0

__all__ = ["register_envs", "GoalObservation", "VLMRewardWrapper", "RenderFrame", "VLMRewardVecEnvWrapper", "VLMRewardVectorWrapper", "make_vlm_vec_env"]
