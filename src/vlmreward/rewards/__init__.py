"""Reward models: pure functions of image embeddings and the prompts' text embeddings."""

from vlmreward.rewards.base import RewardModel, VLMReward
from vlmreward.rewards.goal_baseline import GoalBaselineReward
from vlmreward.rewards.goal_family import GoalFamilySoftmaxReward
from vlmreward.rewards.softmax_threshold import DEFAULT_TEMPERATURE, SoftmaxThresholdReward

__all__ = ["RewardModel", "VLMReward", "GoalBaselineReward", "SoftmaxThresholdReward", "GoalFamilySoftmaxReward", "DEFAULT_TEMPERATURE"]
