"""vlmreward: zero-shot reward models for reinforcement learning from vision-language models.

>>> import vlmreward
>>> model = vlmreward.load_model("openai/clip-vit-base-patch32")            # doctest: +SKIP
>>> reward = vlmreward.GoalBaselineReward(model, goal="a humanoid robot kneeling",
...                                       baseline="a humanoid robot", alpha=0.5)  # doctest: +SKIP
>>> reward(frames)  # uint8 [N, H, W, 3] → float32 [N]                      # doctest: +SKIP
"""

from vlmreward.errors import VLMRewardError
from vlmreward.models import VisionLanguageModel, load_model
from vlmreward.rewards import GoalBaselineReward, GoalFamilySoftmaxReward, RewardModel, SoftmaxThresholdReward

__version__ = "0.1.0"

__all__ = [
    "load_model",
    "VisionLanguageModel",
    "RewardModel",
    "GoalBaselineReward",
    "SoftmaxThresholdReward",
    "GoalFamilySoftmaxReward",
    "VLMRewardError",
    "__version__",
]
