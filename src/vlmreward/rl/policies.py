"""Feature extractors for goal-conditioned policies (dict observations with a ``"goal"`` embedding).

stable-baselines3's ``MultiInputPolicy`` concatenates the flattened observation and goal, so the
network has to learn *gating* (which object to go to depends on the goal) from sums alone, which
takes many samples. :class:`GoalFiLMExtractor` conditions the observation's features on the goal
multiplicatively instead, with feature-wise linear modulation (FiLM: Perez et al., AAAI 2018;
the usual way instructions condition policies, e.g. BabyAI, Chevalier-Boisvert et al. 2019)::

    h = φ(observation)                       # an MLP (state) or NatureCNN (image), [F]
    γ, β = W_γ g + b_γ, W_β g + b_β          # from the goal embedding g, [F] each
    features = [ReLU(h · (1 + γ) + β), ReLU(W_g g)]

Use it with ``policy: MultiInputPolicy`` and ``algorithm_kwargs.policy_kwargs.features_extractor_class:
GoalFiLMExtractor`` (a name the trainer resolves, or ``vlmreward.rl.policies:GoalFiLMExtractor``).
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from torch import nn

__all__ = ["GoalFiLMExtractor", "FEATURE_EXTRACTORS"]


class GoalFiLMExtractor(BaseFeaturesExtractor):
    """Features of ``{obs_key: observation, "goal": [D]}``: the observation's features modulated by the goal.

    Args:
        observation_space: a ``Dict`` space with ``goal_key`` and one other key (an image or a
            flat vector), as :class:`~vlmreward.envs.GoalObservation` makes.
        features_dim: ``F``, the size of the observation's features (the output is ``F + F // 4``).
        goal_key: the key of the goal embedding.

    Raises:
        ValueError: a space without ``goal_key`` or with more than one other key.
    """

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 64, goal_key: str = "goal") -> None:
        others = [k for k in observation_space.spaces if k != goal_key]
        if goal_key not in observation_space.spaces or len(others) != 1:
            raise ValueError(
                f"GoalFiLMExtractor needs a Dict observation space of '{goal_key}' and one observation; got keys "
                f"{list(observation_space.spaces)}."
            )
        goal_dim = int(observation_space[goal_key].shape[0])
        super().__init__(observation_space, features_dim + features_dim // 4)
        self.key, self.goal_key = others[0], goal_key
        space = observation_space[self.key]
        if is_image_space(space):
            self.observation_net: nn.Module = NatureCNN(space, features_dim=features_dim)
        else:
            size = int(torch.tensor(space.shape).prod())
            self.observation_net = nn.Sequential(nn.Flatten(), nn.Linear(size, features_dim), nn.ReLU(), nn.Linear(features_dim, features_dim))
        self.film = nn.Linear(goal_dim, 2 * features_dim)
        self.goal_net = nn.Sequential(nn.Linear(goal_dim, features_dim // 4), nn.ReLU())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.observation_net(observations[self.key])
        goal = observations[self.goal_key]
        gamma, beta = self.film(goal).chunk(2, dim=-1)
        return torch.cat([torch.relu(h * (1.0 + gamma) + beta), self.goal_net(goal)], dim=-1)


FEATURE_EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {"GoalFiLMExtractor": GoalFiLMExtractor}
"""Feature extractors a run config may name by their short name."""
