"""Relabel logged datasets with a VLM reward: Minari and LeRobot (v3.0) datasets in, relabelled
datasets of the same kind out, resumable, with provenance.
``vlmreward relabel SOURCE --config CONFIG --out DEST``.

* :mod:`vlmreward.relabel.core`: the format-agnostic two-pass relabelling (streamed, batched,
  resumable) and :func:`relabel_dataset`.
* :mod:`vlmreward.relabel.frames`: frames from image observations or rendered restored states.
* :mod:`vlmreward.relabel.minari_format`: Minari in and out.
* :mod:`vlmreward.relabel.lerobot_format`: LeRobot v3.0 in and out (read and written directly).
* :func:`reward_from_config`: the reward a run config (or a file with its ``reward`` and ``model``
  sections) describes, with the provenance of its model.
"""

from __future__ import annotations

import os
from typing import Any

from vlmreward.relabel.core import RelabelError, RelabelResult, relabel_dataset
from vlmreward.relabel.frames import FramesUnavailableError

__all__ = ["RelabelError", "RelabelResult", "FramesUnavailableError", "relabel_dataset", "reward_from_config"]


def reward_from_config(path: str | os.PathLike, overrides: list[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """``(reward_model, provenance)`` of a YAML file with a ``reward`` section and, for kinds that
    need one, a ``model`` section; a training config works as it is (its other sections are not read).

    ``provenance`` records the config, the model's name, backend, input size and preprocessing,
    and a fingerprint of its weights (:func:`vlmreward.models.onnx.weights_fingerprint`).

    Raises:
        ConfigError: a missing or malformed file or section.
        ModelNotFoundError, ModelNotAvailableError, ...: from loading the model.
    """
    from pydantic import ValidationError

    from vlmreward._yamlfile import read_yaml_file
    from vlmreward.config import ConfigError, ModelConfig, apply_overrides, describe_errors
    from vlmreward.rewards.registry import RewardContext, build_reward, reward_kind, validate_params

    data = read_yaml_file(path, "relabel config", ConfigError) or {}
    if not isinstance(data, dict) or not isinstance(data.get("reward"), dict) or "kind" not in data["reward"]:
        raise ConfigError(f"{path}: needs a reward section with a kind (reward: {{kind: KIND, goal: ...}}; `vlmreward reward-kinds` lists the kinds).")
    data = {"reward": data["reward"], "model": data.get("model") or {}}
    if overrides:
        data = apply_overrides(data, overrides)
    reward = dict(data["reward"])
    kind = reward_kind(str(reward.pop("kind")))
    model = data["model"] if isinstance(data["model"], dict) else {"name": data["model"]}
    try:
        params = validate_params(kind, reward)
        model_config = ModelConfig.model_validate(model)
    except ValidationError as err:
        raise ConfigError(f"{path}: {describe_errors(err, ModelConfig, prefix='model.')}") from err
    vlm = None
    if kind.model == "required" or (kind.model == "optional" and model_config.name):
        vlm = model_config.spec().load("model.device")
    reward_model = build_reward(kind.name, params, vlm, RewardContext(seed=0))
    provenance: dict[str, Any] = {"config": {"reward": data["reward"], "model": model_config.model_dump(mode="json")}}
    if vlm is not None:
        from vlmreward.models.onnx import weights_fingerprint

        network = getattr(vlm, "model", None) or getattr(vlm, "network", None)
        provenance["model"] = {
            "name": getattr(vlm, "name", model_config.name), "backend": getattr(vlm, "backend", None),
            "runtime": getattr(vlm, "runtime", None), "image_size": getattr(vlm, "image_size", None),
            "resize": model_config.resize, "antialias": model_config.antialias,
            "weights_fingerprint": weights_fingerprint(network) if hasattr(network, "state_dict") else None,
        }
    return reward_model, provenance
