"""The learned reward of preference learning: an ensemble of small reward heads trained with the Bradley–Terry loss.

PEBBLE (Lee et al., ICML 2021; code ``rll-research/BPref``) and RL-VLM-F (Wang et al., ICML 2024;
``yufeiwang63/RL-VLM-F``, ``reward_model.py``) fit ``r̂_k`` (``k`` = 1..K ensemble members) to
labelled pairs ``(x⁰, x¹, y)`` by the Bradley–Terry model

    P_k(x⁰ ≻ x¹) = exp r̂_k(x⁰) / (exp r̂_k(x⁰) + exp r̂_k(x¹)),

with the cross-entropy ``−log P_k(x^y ≻ x^{1−y})`` as loss (RL-VLM-F: ``nn.CrossEntropyLoss`` over
the logits ``[r̂(x⁰), r̂(x¹)]`` with target ``y``; ``y = 0``: the first is preferred). Each member
sees its own permutation of the labelled pairs, and the members' losses are summed into one
Adam step per minibatch (``train_reward``). The reward is the members' mean ``r̂`` (``r_hat_batch``).

**Disagreement sampling** (PEBBLE's ``disagreement_sampling``): of ``large_batch · n`` candidate
pairs, the ``n`` with the largest standard deviation over the members of ``P_k(x⁰ ≻ x¹)`` are queried.

Heads (RL-VLM-F's two reward models):

* ``"cnn"``: frames ``uint8 [N, S, S, 3]`` scaled to ``[0, 1]``; 4 convolutions (kernels 5, 3, 3,
  3; channels 16, 32, 64, 128; strides 3, 2, 2, 2; no padding; ReLU), one linear layer, ``tanh``
  (``conv_net.py``'s ``CNN`` with ``gen_image_net``'s arguments);
* ``"mlp"``: a feature vector ``float32 [N, D]`` (the environment's observation); 3 hidden layers
  of 256 units with LeakyReLU, one linear layer, ``tanh`` (``gen_net``).

Rewards lie in ``[-1, 1]`` (the ``tanh``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from vlmreward.errors import InvalidParameterError

__all__ = [
    "CNN_LAYERS",
    "make_head",
    "RewardEnsemble",
    "bradley_terry_loss",
    "preference_probability",
    "ensemble_disagreement",
]

CNN_LAYERS: tuple[tuple[int, int, int], ...] = ((5, 16, 3), (3, 32, 2), (3, 64, 2), (3, 128, 2))
"""(kernel, channels, stride) of the CNN head's convolutions, RL-VLM-F's ``gen_image_net`` defaults."""


def make_head(head: str, input_shape: tuple[int, ...], hidden: int = 256) -> nn.Module:
    """One reward head: ``"cnn"`` on ``[S, S, 3]`` frames or ``"mlp"`` on ``[D]`` vectors (module docstring).

    Raises:
        InvalidParameterError: an unknown head, or frames too small for the convolutions (under 47 px).
    """
    if head == "mlp":
        (dim,) = input_shape
        layers: list[nn.Module] = []
        for _ in range(3):
            layers += [nn.Linear(dim, hidden), nn.LeakyReLU()]
            dim = hidden
        return nn.Sequential(nn.Flatten(), *layers, nn.Linear(dim, 1), nn.Tanh())
    if head == "cnn":
        size, channels, convs = input_shape[0], 3, []
        for kernel, out, stride in CNN_LAYERS:
            size = (size - kernel) // stride + 1
            if size < 1:
                raise InvalidParameterError(f"the CNN reward head needs frames of at least 47 px; got {input_shape[0]} px.")
            convs += [nn.Conv2d(channels, out, kernel, stride=stride), nn.ReLU()]
            channels = out
        return nn.Sequential(_ChannelsFirst(), *convs, nn.Flatten(), nn.Linear(channels * size * size, 1), nn.Tanh())
    raise InvalidParameterError(f"head={head!r}: use 'cnn' (frames) or 'mlp' (observation vectors).")


class _ChannelsFirst(nn.Module):
    """``uint8 [N, H, W, 3]`` → ``float32 [N, 3, H, W]`` in ``[0, 1]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2).float() / 255.0


def preference_probability(r0: torch.Tensor, r1: torch.Tensor) -> torch.Tensor:
    """Bradley–Terry ``P(x⁰ ≻ x¹) = σ(r̂(x⁰) − r̂(x¹))`` (the softmax of ``[r0, r1]``, index 0), same shape as the inputs."""
    return torch.sigmoid(r0 - r1)


def bradley_terry_loss(r0: torch.Tensor, r1: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy ``−log P(x^y ≻ x^{1−y})`` over pairs (RL-VLM-F ``train_reward``).

    Args:
        r0, r1: ``float [B]`` rewards of the first and second item of each pair.
        labels: ``int [B]`` in ``{0, 1}``: 0 when the first is preferred, 1 the second.

    Returns:
        A scalar tensor (differentiable).
    """
    logits = torch.stack([r0, r1], dim=-1)
    return nn.functional.cross_entropy(logits, labels.long())


def ensemble_disagreement(probabilities: np.ndarray) -> np.ndarray:
    """PEBBLE's disagreement: the standard deviation over members (population, ``ddof=0``, as ``np.std``)
    of ``P_k(x⁰ ≻ x¹)``, ``float [K, B]`` → ``float [B]``."""
    return np.asarray(probabilities, dtype=np.float64).std(axis=0)


class RewardEnsemble:
    """``K`` reward heads and one Adam optimiser over all their parameters (RL-VLM-F's ``RewardModel``).

    Args:
        head: ``"cnn"`` or ``"mlp"``.
        input_shape: one input's shape (``(S, S, 3)`` frames, ``(D,)`` vectors).
        members: ``K ≥ 1``.
        lr: Adam's learning rate (RL-VLM-F: ``3e-4``).
        train_batch_size: pairs per minibatch (RL-VLM-F: 64 for image rewards, 128 for states).
        seed: seeds the members' initial weights (``torch.Generator``-free: the global RNG is
            forked, so building an ensemble does not move the caller's RNG).
    """

    def __init__(self, head: str, input_shape: tuple[int, ...], members: int = 3, lr: float = 3e-4,
                 train_batch_size: int = 64, seed: int = 0) -> None:
        if members < 1:
            raise InvalidParameterError(f"the ensemble needs at least one member; got {members}.")
        self.head, self.input_shape, self.lr, self.train_batch_size = head, tuple(input_shape), float(lr), int(train_batch_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.members = nn.ModuleList([make_head(head, self.input_shape) for _ in range(members)])
        self.optimizer = torch.optim.Adam(self.members.parameters(), lr=self.lr)

    def __len__(self) -> int:
        return len(self.members)

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x))
        return t if self.head == "cnn" else t.float()

    @torch.no_grad()
    def member_rewards(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``float32 [K, N]``: every member's ``r̂`` of ``N`` inputs."""
        out = [np.concatenate([m(self._tensor(x[i : i + batch_size])).squeeze(-1).numpy() for i in range(0, len(x), batch_size)])
               if len(x) else np.zeros(0, np.float32) for m in self.members]
        return np.stack(out).astype(np.float32)

    def rewards(self, x: np.ndarray) -> np.ndarray:
        """``float32 [N]`` in ``[-1, 1]``: the members' mean ``r̂`` (RL-VLM-F ``r_hat_batch``)."""
        return self.member_rewards(x).mean(axis=0)

    def probabilities(self, x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
        """``float32 [K, B]``: every member's ``P_k(x⁰ ≻ x¹)``."""
        r0, r1 = self.member_rewards(x0), self.member_rewards(x1)
        return preference_probability(torch.from_numpy(r0), torch.from_numpy(r1)).numpy()

    def train_epoch(self, x0: np.ndarray, x1: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
        """One pass over the labelled pairs (RL-VLM-F ``train_reward``): each member its own permutation
        (drawn from ``rng``), the members' Bradley–Terry losses summed into one Adam step per minibatch.

        Returns:
            ``{"loss": mean summed loss per step, "accuracy": the members' mean training accuracy}``.
        """
        n = len(labels)
        orders = [rng.permutation(n) for _ in self.members]
        losses, correct = [], 0
        for start in range(0, n, self.train_batch_size):
            self.optimizer.zero_grad()
            total = torch.zeros(())
            for member, order in zip(self.members, orders):
                idx = order[start : start + self.train_batch_size]
                r0 = member(self._tensor(x0[idx])).squeeze(-1)
                r1 = member(self._tensor(x1[idx])).squeeze(-1)
                y = torch.as_tensor(labels[idx]).long()
                total = total + bradley_terry_loss(r0, r1, y)
                correct += int(((r1 > r0).long() == y).sum())
            total.backward()
            self.optimizer.step()
            losses.append(float(total.detach()))
        return {"loss": float(np.mean(losses)) if losses else 0.0, "accuracy": correct / max(1, n * len(self.members))}

    def state_dict(self) -> dict[str, Any]:
        """Weights and optimiser state (``torch`` tensors), for :meth:`load_state_dict`."""
        return {"members": self.members.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.members.load_state_dict(state["members"])
        self.optimizer.load_state_dict(state["optimizer"])
