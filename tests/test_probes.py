"""Environment probes (vlmreward.envs.probes): `collect` finds an environment's probe by the
classes of its MRO, a new environment family is one probe class registered beside it, and
`collect` itself names no simulator."""

from __future__ import annotations

import ast
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from vlmreward.envs.probes import (
    EnvProbe,
    GenericProbe,
    NoSweepError,
    default_env_kwargs,
    probe_for,
    register_probe,
    registered_probes,
)
from vlmreward.envs.probes.classic_control import CartPoleProbe
from vlmreward.eval.collect import collect
from vlmreward.eval.dataset import load_dataset

COLLECT = Path(__file__).resolve().parent.parent / "src" / "vlmreward" / "eval" / "collect.py"


class _Dot(gym.Env):
    """A dot at position x in [0, 1] drawn on a 16 x 16 frame; success when x > 0.75."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.x = 0.5

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.5
        return np.array([self.x], np.float32), {}

    def step(self, action):
        self.x = float(np.clip(self.x + (0.1 if action else -0.1), 0.0, 1.0))
        return np.array([self.x], np.float32), 0.0, False, False, {}

    def render(self):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[8, int(round(self.x * 15))] = 255
        return frame


@register_probe(f"{__name__}:_Dot")
class _DotProbe(EnvProbe):
    family = "dot"
    landscape_x = "x"
    sweep_landscape = ("x", None)
    sweep_reward_definition = "1 if x > 0.75"
    env_defaults = {"test_probes/Dot-v0": {}}

    def state_variables(self):
        return {"x": {"type": "float", "unit": "", "description": "the dot's position"}}

    def labels(self):
        return {"is_success": {"definition": "x > 0.75", "detector": None, "thresholds": {"x": 0.75}}}

    def state_row(self):
        return {"x": self.env.unwrapped.x}

    def label_row(self, info):
        return {"is_success": self.env.unwrapped.x > 0.75}

    def sweep(self, n):
        for i, x in enumerate(np.linspace(0.0, 1.0, n)):
            self.env.unwrapped.x = float(x)
            yield 0, i, {}

    def sweep_reward(self):
        return float(self.env.unwrapped.x > 0.75)


@pytest.fixture(scope="module", autouse=True)
def _dot_env():
    gym.register("test_probes/Dot-v0", entry_point=_Dot, max_episode_steps=5)
    yield
    gym.registry.pop("test_probes/Dot-v0", None)


def test_a_new_environment_family_is_one_registered_probe(tmp_path):
    result = collect("test_probes/Dot-v0", tmp_path / "sweep", "scripted", frames=9)
    data = load_dataset(result.path)
    np.testing.assert_allclose(data.column("x").astype(float), np.linspace(0.0, 1.0, 9))
    np.testing.assert_array_equal(data.label("is_success"), np.linspace(0.0, 1.0, 9) > 0.75)
    np.testing.assert_array_equal(data.column("gt_reward").astype(float), (np.linspace(0.0, 1.0, 9) > 0.75).astype(float))
    assert data.metadata["env_family"] == "dot"
    assert data.metadata["landscape"] == {"x": "x", "facet": None}

    episodes = load_dataset(collect("test_probes/Dot-v0", tmp_path / "episodes", "random", episodes=2).path)
    assert len(episodes) == 10 and set(episodes.column("episode").astype(int)) == {0, 1}


def test_probes_match_subclasses_through_the_mro_and_fall_back_to_the_generic_probe():
    class MyCartPole(CartPoleEnv):
        pass

    env = MyCartPole()
    env.reset(seed=0)
    assert type(probe_for(env, {})) is CartPoleProbe

    generic = probe_for(gym.make("Pendulum-v1"), {"is_success": False})
    assert type(generic) is GenericProbe and "is_success" in generic.labels()
    assert list(generic.state_variables()) == ["obs_0", "obs_1", "obs_2"]
    with pytest.raises(NoSweepError, match="no scripted sweep for Pendulum-v1; scripted sweeps exist for .*cartpole"):
        next(generic.sweep(3))


def test_registry_rejects_bad_paths_and_a_second_probe_for_a_class():
    with pytest.raises(ValueError, match="package.module:ClassName"):
        register_probe("NoColon")
    with pytest.raises(ValueError, match="already has the probe CartPoleProbe"):
        register_probe(CartPoleEnv)(type("Other", (EnvProbe,), {}))
    assert registered_probes()["gymnasium.envs.classic_control.cartpole:CartPoleEnv"] is CartPoleProbe
    assert default_env_kwargs("vlmreward/HumanoidTextured-v0") == {"task": "kneeling"}
    assert default_env_kwargs("vlmreward/CartPole-v1") == {}


def test_collect_names_no_simulator():
    names = {node.id for node in ast.walk(ast.parse(COLLECT.read_text())) if isinstance(node, ast.Name)}
    names |= {node.attr for node in ast.walk(ast.parse(COLLECT.read_text())) if isinstance(node, ast.Attribute)}
    simulators = {"CartPoleEnv", "Continuous_MountainCarEnv", "HumanoidEnv", "MiniWorldGoalsEnv", "mujoco", "HUMANOID_ID"}
    assert not names & simulators
