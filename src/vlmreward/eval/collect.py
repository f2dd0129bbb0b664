"""Record labelled datasets from environments: frames, ground-truth state, reward and success.

:func:`collect` runs one of three policies in a gymnasium environment rendered as
``rgb_array`` and writes a dataset (:mod:`vlmreward.eval.dataset`):

* ``"random"``: episodes of uniformly sampled actions (``action_space.sample()``, seeded);
* ``"scripted"``: a sweep over states set directly in the simulator, chosen so that a reward
  landscape reads at a glance and goal states (positives) exist:

  - CartPole: a grid over pole angle (``±0.4`` rad, the upright label is ``|θ| < 0.1``) and cart
    position (``±1.8`` m), velocities zero (``env.unwrapped.state``);
  - MountainCar(Continuous): the car at evenly spaced positions over the whole track
    ``[-1.2, 0.6]``, velocity zero (``env.unwrapped.state``);
  - MiniWorldGoals (``vlmreward/MiniWorldGoals-v0``): goal after goal of the goal set, a room
    each, with hand-set states about half of which achieve the goal (Find: the agent at or away
    from the object, facing it or not; Lift: carrying the object, another, or none; Place: the
    object next to the target, away from it, or carried beside it);
  - Humanoid (MuJoCo): hand-set poses (kneeling on both knees and on one, sitting on the heels,
    arms raised, the splits, the lotus position, hands on hips, standing on one leg two ways,
    and look-alikes that are not goals: sitting with the legs forward, lying with the arms up,
    squatting, a lunge, hands on the chest, hands touching in front, a walking step;
    :data:`~vlmreward.envs.humanoid_poses.HUMANOID_POSES_SET_BY_HAND`), each approached from standing in
    evenly spaced fractions ``t ∈ [0, 1]`` of its joint angles, the body lowered onto the floor
    (``data.qpos``, then ``mj_forward``). The poses are those the success detectors are tested
    on (``tests/test_envs_paper.py``).

* a run directory of ``vlmreward train``: episodes of the trained stable-baselines3 policy
  (deterministic actions), when :mod:`vlmreward.rl` is installed.

Each frame is the state *reached* by a step (or set by the sweep); its row holds the episode,
step, ground-truth reward, binary success labels (the detectors of
:mod:`vlmreward.envs.success`; for Humanoid every pose's detector; for MiniWorldGoals the success
of the frame's own goal) and the state variables by name (MiniWorldGoals: the frame's ``goal``,
``goal_key`` and ``goal_type`` too, and the goal family in the metadata, so that ``evaluate``
can score each frame against its goal and report AP per goal type). The metadata documents all
of them (definitions, thresholds, units).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import gymnasium as gym
import numpy as np

from vlmreward.envs import success
from vlmreward.envs.humanoid_poses import HUMANOID_POSES_SET_BY_HAND, set_humanoid_pose
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.eval.dataset import REQUIRED_COLUMNS, DatasetWriter

__all__ = [
    "collect",
    "CollectResult",
    "PolicyError",
    "POLICY_KINDS",
    "CARTPOLE_SWEEP_MAX_ANGLE",
    "CARTPOLE_SWEEP_MAX_POSITION",
    "DEFAULT_EPISODES",
    "DEFAULT_SWEEP_FRAMES",
]

POLICY_KINDS = ("random", "scripted")
"""Policies by name; anything else given as a policy is a run directory."""

DEFAULT_EPISODES = 10
"""Episodes of a random or trained policy when neither ``episodes`` nor ``frames`` is given."""

DEFAULT_SWEEP_FRAMES = 200
"""Frames of a scripted sweep when ``frames`` is not given."""

CARTPOLE_SWEEP_MAX_ANGLE = 0.4
"""The CartPole sweep's pole angles span ``[-0.4, 0.4]`` rad (±23°): upright (``|θ| < 0.1``) is a quarter."""

CARTPOLE_SWEEP_MAX_POSITION = 1.8
"""The CartPole sweep's cart positions span ``[-1.8, 1.8]`` m (the track is ±2.4 m)."""

class PolicyError(VLMRewardError, ValueError):
    """A policy that is neither ``random``, ``scripted`` nor a usable run directory, or a
    scripted sweep asked of an environment that has none."""


@dataclass(frozen=True)
class CollectResult:
    """What :func:`collect` wrote.

    Attributes:
        path: the dataset directory.
        frames: number of frames.
        episodes: number of (complete or cut) episodes, or sweep lines.
        positives: frames labelled ``is_success`` (None when the dataset has no such label).
        render_size: ``(height, width)`` in pixels.
    """

    path: Path
    frames: int
    episodes: int
    positives: int | None
    render_size: tuple[int, int]


# ---------------------------------------------------------------------------------------------
# environment adapters: state variables, labels, sweeps


def _col(kind: str, description: str) -> dict[str, str]:
    return {"type": kind, "description": description}


def _doc(fn: Callable[..., Any]) -> str:
    return " ".join((fn.__doc__ or "").split("\n\n")[0].split())


class _Adapter:
    """What the dataset records for one family of environments."""

    family = "generic"
    landscape_x: str | None = None

    def __init__(self, env: gym.Env) -> None:
        self.env = env

    # columns ---------------------------------------------------------------------------------
    def state_variables(self) -> dict[str, dict[str, str]]:
        """``{name: {"type", "unit", "description"}}``."""
        return {}

    def labels(self) -> dict[str, dict[str, Any]]:
        """``{name: {"definition", "detector", "thresholds"}}``."""
        return {}

    # values ----------------------------------------------------------------------------------
    def state_row(self) -> dict[str, Any]:
        return {}

    def label_row(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    # sweeps ----------------------------------------------------------------------------------
    def sweep(self, n: int) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """Set ``n`` states one after the other; yields ``(line, index, extra_row)`` after each."""
        raise PolicyError(
            f"there is no scripted sweep for {_env_name(self.env)}; scripted sweeps exist for CartPole, "
            "MountainCarContinuous and Humanoid. Use --policy random or a run directory."
        )

    def sweep_reward(self) -> float:
        """The ground-truth reward of the state just set by :meth:`sweep`."""
        raise NotImplementedError

    def extra_metadata(self) -> dict[str, Any]:
        """Entries added to ``metadata.json``."""
        return {}

    episode_reward_definition = "the reward env.step returned for the step that reached the frame's state"
    sweep_reward_definition = ""
    sweep_description = ""
    sweep_landscape: tuple[str | None, str | None] = (None, None)


class _CartPoleAdapter(_Adapter):
    family = "cartpole"
    landscape_x = "pole_angle"
    episode_reward_definition = (
        "CartPole's step reward: 1 for every step, the one that ends the episode included (gymnasium)"
    )
    sweep_reward_definition = (
        "1 while the state is inside gymnasium's termination bounds (|pole_angle| <= 0.2095 rad = 12 deg and "
        "|cart_position| <= 2.4 m), else 0: the per-step reward CartPole pays for keeping the pole up"
    )
    sweep_landscape = ("pole_angle", None)

    def state_variables(self):
        return {
            "cart_position": {"type": "float", "unit": "m", "description": "cart position; the track spans ±2.4 m"},
            "cart_velocity": {"type": "float", "unit": "m/s", "description": "cart velocity"},
            "pole_angle": {
                "type": "float", "unit": "rad",
                "description": "pole angle from vertical; 0 upright, positive leaning towards +x (right)",
            },
            "pole_angular_velocity": {"type": "float", "unit": "rad/s", "description": "pole angular velocity"},
        }

    def labels(self):
        return {
            "is_success": {
                "definition": "pole upright and cart on the track: |pole_angle| < "
                f"{success.CARTPOLE_UPRIGHT_MAX_ANGLE} rad and |cart_position| <= {success.CARTPOLE_MAX_CART_POSITION} m",
                "detector": "vlmreward.envs.success.cartpole_upright",
                "thresholds": {
                    "CARTPOLE_UPRIGHT_MAX_ANGLE": success.CARTPOLE_UPRIGHT_MAX_ANGLE,
                    "CARTPOLE_MAX_CART_POSITION": success.CARTPOLE_MAX_CART_POSITION,
                },
            }
        }

    def state_row(self):
        x, x_dot, theta, theta_dot = (float(v) for v in np.asarray(self.env.unwrapped.state, dtype=np.float64))
        return {"cart_position": x, "cart_velocity": x_dot, "pole_angle": theta, "pole_angular_velocity": theta_dot}

    def label_row(self, info):
        return {"is_success": success.cartpole_upright(self.env.unwrapped.state)}

    def sweep(self, n):
        n_pos = _grid_lines(n)
        per_line = n // n_pos
        positions = np.linspace(-CARTPOLE_SWEEP_MAX_POSITION, CARTPOLE_SWEEP_MAX_POSITION, n_pos) if n_pos > 1 else [0.0]
        angles = np.linspace(-CARTPOLE_SWEEP_MAX_ANGLE, CARTPOLE_SWEEP_MAX_ANGLE, per_line) if per_line > 1 else [0.0]
        for line, x in enumerate(positions):
            for i, theta in enumerate(angles):
                self.env.unwrapped.state = np.array([x, 0.0, theta, 0.0], dtype=np.float64)
                yield line, i, {}

    def sweep_reward(self):
        u = self.env.unwrapped
        x, _, theta, _ = np.asarray(u.state, dtype=np.float64)
        return float(abs(x) <= u.x_threshold and abs(theta) <= u.theta_threshold_radians)

    @property
    def sweep_description(self):
        return (
            f"grid over pole angle in [-{CARTPOLE_SWEEP_MAX_ANGLE}, {CARTPOLE_SWEEP_MAX_ANGLE}] rad (fastest) and cart "
            f"position in [-{CARTPOLE_SWEEP_MAX_POSITION}, {CARTPOLE_SWEEP_MAX_POSITION}] m (one 'episode' per cart "
            "position), velocities 0, set in env.unwrapped.state"
        )


class _MountainCarAdapter(_Adapter):
    family = "mountain_car"
    landscape_x = "car_position"
    episode_reward_definition = (
        "MountainCarContinuous's step reward: +100 on reaching the flag, minus 0.1 * action^2 every step"
    )
    sweep_reward_definition = "100 if car_position >= goal_position (the flag) else 0: the step reward at action 0"
    sweep_landscape = ("car_position", None)
    sweep_description = (
        "the car at evenly spaced positions over the track [-1.2, 0.6], velocity 0, set in env.unwrapped.state"
    )

    def state_variables(self):
        return {
            "car_position": {
                "type": "float", "unit": "position units",
                "description": "car position on the track [-1.2, 0.6]; the valley bottom is near -0.52, the flag "
                f"at {self.goal}",
            },
            "car_velocity": {"type": "float", "unit": "position units/step", "description": "car velocity"},
        }

    @property
    def goal(self) -> float:
        return float(getattr(self.env.unwrapped, "goal_position", success.MOUNTAIN_CAR_GOAL_POSITION))

    def labels(self):
        return {
            "is_success": {
                "definition": f"the car at or past the flag: car_position >= {self.goal}",
                "detector": "vlmreward.envs.success.mountain_car_at_flag",
                "thresholds": {"goal_position": self.goal},
            }
        }

    def state_row(self):
        position, velocity = (float(v) for v in np.asarray(self.env.unwrapped.state, dtype=np.float64))
        return {"car_position": position, "car_velocity": velocity}

    def label_row(self, info):
        return {"is_success": success.mountain_car_at_flag(self.env.unwrapped.state, self.goal)}

    def sweep(self, n):
        u = self.env.unwrapped
        for i, x in enumerate(np.linspace(u.min_position, u.max_position, n) if n > 1 else [-0.5]):
            u.state = np.array([x, 0.0], dtype=np.float64)
            yield 0, i, {}

    def sweep_reward(self):
        return 100.0 if success.mountain_car_at_flag(self.env.unwrapped.state, self.goal) else 0.0


_HUMANOID_THRESHOLDS: dict[str, tuple[str, ...]] = {
    "standing": ("STANDING_MIN_TORSO_HEIGHT", "UPRIGHT_MAX_TILT", "FOOT_ON_FLOOR_MAX_HEIGHT"),
    "kneeling": (
        "KNEE_ON_FLOOR_MAX_HEIGHT", "KNEELING_MIN_KNEE_FLEXION", "KNEELING_MIN_PELVIS_ABOVE_KNEE",
        "UPRIGHT_MAX_TILT", "STANDING_MIN_TORSO_HEIGHT",
    ),
    "arms_raised": ("ARMS_RAISED_MIN_HAND_ABOVE_HEAD", "UPRIGHT_MAX_TILT"),
    "splits": (
        "SPLITS_MIN_FEET_DISTANCE", "SPLITS_MAX_PELVIS_HEIGHT", "SPLITS_MAX_KNEE_FLEXION",
        "FOOT_ON_FLOOR_MAX_HEIGHT", "UPRIGHT_MAX_TILT",
    ),
}


class _HumanoidAdapter(_Adapter):
    family = "humanoid"
    landscape_x = "torso_height"
    episode_reward_definition = (
        "Humanoid-v5's step reward (locomotion: healthy bonus + forward velocity - control and contact costs), "
        "unrelated to the pose task; use the success labels as the pose task's ground truth"
    )
    sweep_landscape = ("pose_fraction", "pose")

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        import mujoco  # noqa: PLC0415 - only Humanoid needs it

        self.mujoco = mujoco
        self.task = getattr(env.unwrapped, "task", None) or "kneeling"
        self._pose_name = ""
        self._fraction = math.nan

    @property
    def sweep_reward_definition(self) -> str:
        return f"1 if the pose task {self.task!r} is achieved (label success_{self.task}) else 0: the sparse task reward"

    @property
    def sweep_description(self) -> str:
        return (
            f"hand-set poses {sorted(HUMANOID_POSES_SET_BY_HAND)}, each approached from standing in evenly spaced "
            "fractions pose_fraction in [0, 1] of its joint angles and root pitch, velocities 0, lowest point on "
            "the floor, set in data.qpos (one 'episode' per pose)"
        )

    def state_variables(self):
        return {
            "pose": {"type": "str", "unit": "", "description": "target pose of the sweep (empty in episodes)"},
            "pose_fraction": {
                "type": "float", "unit": "",
                "description": "fraction of the target pose's joint angles (0: standing, 1: the pose; NaN in episodes)",
            },
            "torso_height": {"type": "float", "unit": "m", "description": "height of the torso body above the floor"},
            "pelvis_height": {"type": "float", "unit": "m", "description": "height of the pelvis body above the floor"},
            "torso_tilt": {"type": "float", "unit": "rad", "description": "angle between the torso's axis and vertical"},
            "lowest_knee_height": {"type": "float", "unit": "m", "description": "height of the lower knee (shin origin)"},
        }

    def labels(self):
        labels = {
            "is_success": {
                "definition": f"the task pose {self.task!r}: the same as success_{self.task}",
                "detector": f"vlmreward.envs.success.humanoid_{self.task}",
                "thresholds": {k: getattr(success, k) for k in _HUMANOID_THRESHOLDS[self.task]},
            }
        }
        for name, fn in success.HUMANOID_POSES.items():
            labels[f"success_{name}"] = {
                "definition": _doc(fn),
                "detector": f"vlmreward.envs.success.{fn.__name__}",
                "thresholds": {k: getattr(success, k) for k in _HUMANOID_THRESHOLDS.get(name, ())},
            }
        return labels

    def _body_z(self, name: str) -> float:
        u = self.env.unwrapped
        return float(u.data.xpos[self.mujoco.mj_name2id(u.model, self.mujoco.mjtObj.mjOBJ_BODY, name)][2])

    def state_row(self):
        u = self.env.unwrapped
        return {
            "pose": self._pose_name,
            "pose_fraction": self._fraction,
            "torso_height": self._body_z("torso"),
            "pelvis_height": self._body_z("pelvis"),
            "torso_tilt": success.torso_tilt(u.model, u.data),
            "lowest_knee_height": min(self._body_z("right_shin"), self._body_z("left_shin")),
        }

    def label_row(self, info):
        u = self.env.unwrapped
        row = {f"success_{name}": bool(fn(u.model, u.data)) for name, fn in success.HUMANOID_POSES.items()}
        row["is_success"] = row[f"success_{self.task}"]
        return row

    def sweep(self, n):
        u = self.env.unwrapped
        names = list(HUMANOID_POSES_SET_BY_HAND)
        counts = [len(chunk) for chunk in np.array_split(np.arange(n), len(names))]
        for line, (name, count) in enumerate(zip(names, counts)):
            if count == 0:
                continue
            joints, pitch = HUMANOID_POSES_SET_BY_HAND[name]
            for i, t in enumerate(np.linspace(0.0, 1.0, count) if count > 1 else [1.0]):
                set_humanoid_pose(u.model, u.data, {k: float(t) * v for k, v in joints.items()}, float(t) * pitch)
                self._pose_name, self._fraction = name, float(t)
                yield line, i, {}
        self._pose_name, self._fraction = "", math.nan

    def sweep_reward(self):
        u = self.env.unwrapped
        return float(success.HUMANOID_POSES[self.task](u.model, u.data))


class _MiniWorldGoalsAdapter(_Adapter):
    """``vlmreward/MiniWorldGoals-v0``: the frame's goal, the agent and goal object, success of the goal."""

    family = "miniworld_goals"
    landscape_x = "object_distance"
    episode_reward_definition = "1 on a step whose state achieves the episode's goal, else 0 (MiniWorldGoals' ground truth)"
    sweep_reward_definition = "1 if the state set achieves the frame's goal, else 0"
    sweep_description = (
        "goal after goal of the goal set (types interleaved), a fresh room each, with hand-set states about half of "
        "which achieve the goal (MiniWorldGoalsEnv.sweep_states)"
    )
    sweep_landscape = ("object_distance", "goal_type")

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.state_kind = "episode"

    def state_variables(self):
        text = {
            "goal": "the goal sentence of the frame's episode (or sweep line)",
            "goal_key": "the goal's task, independent of its phrasing (type:object[>target])",
            "goal_type": "the goal type (find, lift, place)",
            "carrying": "the object the agent carries, empty if none",
            "state_kind": "what a scripted sweep set (at_object, carrying_other, next_to_target, ...); 'episode' for episodes",
        }
        numbers = {
            "agent_x": ("m", "agent position x"),
            "agent_z": ("m", "agent position z"),
            "agent_dir": ("rad", "agent heading (MiniWorld's dir)"),
            "object_distance": ("m", "distance from the agent to the goal object (centres)"),
            "object_bearing": ("rad", "angle from the agent's heading to the goal object, positive to the left"),
            "target_distance": ("m", "distance from the goal object to the target object (place goals; else nan)"),
        }
        out = {k: {"type": "str", "unit": "", "description": v} for k, v in text.items()}
        out.update({k: {"type": "float", "unit": u, "description": d} for k, (u, d) in numbers.items()})
        return out

    def labels(self):
        from vlmreward.envs import miniworld_goals as mg

        return {
            "is_success": {
                "definition": "the frame's goal is achieved: find = the goal object on the floor, nearer than MiniWorld's "
                "near threshold (r_agent + r_object + 1.1 max forward step) and within FIND_MAX_BEARING of the heading; "
                "lift = the agent carries it; place = not carried and within near(object, target) of the target",
                "detector": "vlmreward.envs.miniworld_goals.goal_success",
                "thresholds": {"FIND_MAX_BEARING": mg.FIND_MAX_BEARING},
            }
        }

    def state_row(self):
        u = self.env.unwrapped
        state = u.goal_state()
        carried = u.agent.carrying
        names = {id(ent): obj.name for obj, ent in u.objects.items()}
        return {
            "goal": u.goal.sentence, "goal_key": u.goal.key, "goal_type": u.goal.type,
            "carrying": "" if carried is None else names.get(id(carried), "?"), "state_kind": self.state_kind,
            "agent_x": float(u.agent.pos[0]), "agent_z": float(u.agent.pos[2]), "agent_dir": float(u.agent.dir),
            "object_distance": state.object_distance, "object_bearing": state.object_bearing,
            "target_distance": state.target_distance,
        }

    def label_row(self, info):
        return {"is_success": bool(self.env.unwrapped.goal_state().success)}

    def sweep(self, n):
        u = self.env.unwrapped
        seed = int(u.np_random.integers(2**31))
        for line, index, extra in u.sweep_states(n, seed=seed):
            self.state_kind = extra.get("state_kind", "")
            yield line, index, {}
        self.state_kind = "episode"

    def sweep_reward(self):
        return float(self.env.unwrapped.goal_state().success)

    def extra_metadata(self):
        u = self.env.unwrapped
        return {
            "goal_family": u.family.to_dict(),
            "goal_set": u.goal_set,
            "goals": [g.sentence for g in u.goal_list],
        }


class _GenericAdapter(_Adapter):
    """Any environment: observation entries as state variables (up to 32), ``info["is_success"]`` if reported."""

    _MAX_OBS = 32

    def __init__(self, env: gym.Env, reports_success: bool) -> None:
        super().__init__(env)
        space = env.observation_space
        self.obs_size = (
            int(np.prod(space.shape))
            if isinstance(space, gym.spaces.Box) and space.shape is not None and 0 < np.prod(space.shape) <= self._MAX_OBS
            else 0
        )
        self.reports_success = reports_success
        self.last_obs: np.ndarray | None = None
        self.landscape_x = "obs_0" if self.obs_size else None

    def state_variables(self):
        return {
            f"obs_{i}": {"type": "float", "unit": "", "description": f"entry {i} of the flattened observation"}
            for i in range(self.obs_size)
        }

    def labels(self):
        if not self.reports_success:
            return {}
        return {"is_success": {"definition": "info['is_success'] as the environment reports it", "detector": None, "thresholds": {}}}

    def state_row(self):
        obs = np.asarray(self.last_obs, dtype=np.float64).reshape(-1) if self.last_obs is not None else None
        return {f"obs_{i}": (float(obs[i]) if obs is not None else math.nan) for i in range(self.obs_size)}

    def label_row(self, info):
        return {"is_success": bool(info.get("is_success", False))} if self.reports_success else {}


def _grid_lines(n: int) -> int:
    """Lines of a 2-D sweep of ``n`` points: a divisor of ``n`` near ``sqrt(n / 10)`` (≈ 10× more points per line)."""
    target = math.sqrt(n / 10.0)
    divisors = [d for d in range(1, n + 1) if n % d == 0 and d <= max(1.0, 2 * target)]
    return min(divisors, key=lambda d: abs(d - target))


def _env_name(env: gym.Env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def _adapter(env: gym.Env, reset_info: Mapping[str, Any]) -> _Adapter:
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv
    from gymnasium.envs.classic_control.continuous_mountain_car import Continuous_MountainCarEnv

    u = env.unwrapped
    if isinstance(u, CartPoleEnv):
        return _CartPoleAdapter(env)
    if isinstance(u, Continuous_MountainCarEnv):
        return _MountainCarAdapter(env)
    if any(cls.__name__ == "HumanoidEnv" for cls in type(u).__mro__):
        return _HumanoidAdapter(env)
    if any(cls.__name__ == "MiniWorldGoalsEnv" for cls in type(u).__mro__):
        return _MiniWorldGoalsAdapter(env)
    return _GenericAdapter(env, reports_success="is_success" in reset_info)


# ---------------------------------------------------------------------------------------------
# Humanoid poses


# ---------------------------------------------------------------------------------------------
# policies


@dataclass
class _Policy:
    kind: str
    act: Callable[[Any], Any]
    description: dict[str, Any]
    env_id: str | None = None
    env_kwargs: dict[str, Any] | None = None
    wrap: Callable[[gym.Env], gym.Env] | None = None  # what the policy's observations need (goal embedding)


def _random_policy(env: gym.Env, seed: int) -> _Policy:
    env.action_space.seed(seed)
    return _Policy("random", lambda obs: env.action_space.sample(), {"kind": "random", "seed": seed})


def _run_policy(run_dir: Path) -> _Policy:
    """The trained policy of a ``vlmreward train`` run directory (final model, else latest checkpoint)."""
    try:
        from vlmreward.rl import builders as rl_builders
        from vlmreward.rl import run_dir as rl_run_dir
    except ImportError as err:
        raise PolicyError(
            f"--policy {str(run_dir)!r} needs the training package vlmreward.rl, which cannot be imported here "
            f"({err}); use --policy random or scripted."
        ) from err
    config = rl_run_dir.load_run_config(run_dir)
    model, normalize, source, model_path = rl_run_dir.load_policy(run_dir, device="cpu")

    def act(obs: Any) -> Any:
        if normalize is not None:
            obs = normalize.normalize_obs(obs)
        action, _ = model.predict(obs, deterministic=True)
        return action

    wrap = None
    if config.goals is not None:  # a goal-conditioned policy reads the goal's embedding beside the observation
        from vlmreward.envs.goal_conditioning import GoalObservation

        encoder = rl_builders.goal_text_encoder(config)

        def wrap(env: gym.Env) -> gym.Env:
            return GoalObservation(env, encoder)

    return _Policy(
        "run",
        act,
        {"kind": "run", "run_dir": str(run_dir), "source": source, "model_file": str(model_path),
         "algorithm": config.algorithm, "deterministic": True},
        env_id=config.env.id,
        env_kwargs=rl_builders.env_kwargs_of(config),
        wrap=wrap,
    )


# ---------------------------------------------------------------------------------------------
# collect


def collect(
    env_id: str,
    out: str | os.PathLike,
    policy: str | os.PathLike = "random",
    *,
    episodes: int | None = None,
    frames: int | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    max_steps: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> CollectResult:
    """Record a labelled dataset of rendered frames from ``env_id``.

    Args:
        env_id: a gymnasium id; ``vlmreward/CartPole-v1``, ``vlmreward/MountainCarContinuousTextured-v0``
            and ``vlmreward/HumanoidTextured-v0`` (and gymnasium's own CartPole, MountainCarContinuous
            and Humanoid) get named state variables, success labels and scripted sweeps; any other
            id records its observation entries and ``info["is_success"]`` if reported.
        out: the dataset directory to create.
        policy: ``"random"``, ``"scripted"`` or a ``vlmreward train`` run directory.
        episodes: episodes to record (random or trained policy); default
            :data:`DEFAULT_EPISODES` when ``frames`` is not given either.
        frames: frames to record; for a sweep the number of swept states (default
            :data:`DEFAULT_SWEEP_FRAMES`); for episodes a cap (whichever of ``episodes`` and
            ``frames`` is reached first ends the collection).
        env_kwargs: keyword arguments of ``gymnasium.make`` (e.g. ``render_width``, ``task``);
            the Humanoid's ``task`` defaults to ``"kneeling"``.
        seed: seeds the first reset and the action sampling.
        max_steps: cut episodes after this many steps (besides the environment's time limit).
        overwrite: replace an existing dataset at ``out``.
        progress: called with 1 after every recorded frame.

    Returns:
        A :class:`CollectResult`.

    Raises:
        PolicyError: an unknown policy, a run directory that cannot be loaded, a sweep for an
            environment without one, ``episodes`` with a sweep.
        InvalidParameterError: an unknown environment id or keyword arguments it does not take,
            counts below 1, an existing ``out``.
    """
    import vlmreward.envs  # noqa: F401, PLC0415 - registers the vlmreward/ ids

    for name, value in (("episodes", episodes), ("frames", frames), ("max_steps", max_steps)):
        if value is not None and int(value) < 1:
            raise InvalidParameterError(f"{name} must be at least 1; got {value}.")
    policy_name = os.fspath(policy)
    kwargs = dict(env_kwargs or {})
    if "render_mode" in kwargs:
        raise InvalidParameterError("render_mode is always 'rgb_array' when collecting frames; drop it from the keyword arguments.")

    run: _Policy | None = None
    if policy_name not in POLICY_KINDS:
        run_dir = Path(policy_name)
        if not run_dir.is_dir():
            raise PolicyError(
                f"--policy {policy_name!r} is neither 'random', 'scripted' nor an existing run directory of "
                "`vlmreward train`."
            )
        run = _run_policy(run_dir)
        if run.env_id != env_id:
            raise PolicyError(
                f"the policy in {policy_name!r} was trained on {run.env_id!r}, not {env_id!r}; collect from {run.env_id!r}."
            )
        kwargs = {**(run.env_kwargs or {}), **kwargs}
    scripted = policy_name == "scripted"
    if scripted and episodes is not None:
        raise PolicyError("a scripted sweep has no episodes; give its size with --frames N.")

    from vlmreward.envs.registration import HUMANOID_ID

    if env_id == HUMANOID_ID:
        kwargs.setdefault("task", "kneeling")
    env = _make_env(env_id, kwargs)
    if run is not None and run.wrap is not None:
        env = run.wrap(env)
    try:
        first_obs, reset_info = env.reset(seed=seed)
        adapter = _adapter(env, reset_info)
        if run is None:
            pol = _random_policy(env, seed) if not scripted else _Policy("scripted", lambda obs: None, {})
        else:
            pol = run
        if scripted:
            n = DEFAULT_SWEEP_FRAMES if frames is None else int(frames)
            pol.description = {"kind": "scripted", "sweep": adapter.sweep_description, "frames": n}
            gt_definition = adapter.sweep_reward_definition
            landscape_x, facet = adapter.sweep_landscape
        else:
            if episodes is None and frames is None:
                episodes = DEFAULT_EPISODES
            pol.description.update(episodes=episodes, frames=frames, max_steps=max_steps)
            gt_definition = adapter.episode_reward_definition
            landscape_x, facet = adapter.landscape_x, None
        state_vars = adapter.state_variables()
        labels = adapter.labels()
        columns: dict[str, dict[str, str]] = {
            "frame": _col("int", "index into frames.npy"),
            "episode": _col("int", "episode (for a sweep: the sweep line) that reached the frame"),
            "step": _col("int", "step within the episode that reached the frame (1 = first step; sweeps: index along the line)"),
            "gt_reward": _col("float", gt_definition),
        }
        columns.update({name: _col("bool", spec["definition"]) for name, spec in labels.items()})
        columns.update({name: _col(spec["type"], spec["description"]) for name, spec in state_vars.items()})
        assert all(columns[c]["type"] == t for c, t in REQUIRED_COLUMNS.items())
        metadata = {
            "env_id": env_id,
            "env_kwargs": {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in kwargs.items()},
            "render": {"render_mode": "rgb_array"},
            "policy": pol.description,
            "seed": seed,
            "columns": columns,
            "labels": labels,
            "state_variables": {k: {"unit": v["unit"], "description": v["description"]} for k, v in state_vars.items()},
            "gt_reward": {"definition": gt_definition},
            "landscape": {"x": landscape_x, "facet": facet},
            "env_family": adapter.family,
        }
        if isinstance(adapter, _HumanoidAdapter):
            metadata["task"] = adapter.task
        metadata.update(adapter.extra_metadata())
        with DatasetWriter(out, metadata, overwrite=overwrite) as writer:
            if scripted:
                n_lines = _record_sweep(env, adapter, writer, n, progress)
            else:
                n_lines = _record_episodes(env, first_obs, adapter, pol, writer, episodes, frames, max_steps, progress)
        positives = None
        if "is_success" in labels:
            from vlmreward.eval.dataset import load_dataset

            positives = int(load_dataset(out).label("is_success").sum())
        return CollectResult(Path(out), writer.count, n_lines, positives, _render_size(writer))
    finally:
        env.close()


def _render_size(writer: DatasetWriter) -> tuple[int, int]:
    shape = writer._frames.shape or (0, 0, 3)
    return int(shape[0]), int(shape[1])


def _make_env(env_id: str, kwargs: Mapping[str, Any]) -> gym.Env:
    try:
        gym.spec(env_id)
    except gym.error.Error as err:
        raise InvalidParameterError(f"unknown environment {env_id!r} ({err}); e.g. vlmreward/CartPole-v1.") from None
    try:
        return gym.make(env_id, render_mode="rgb_array", **kwargs)
    except TypeError as err:
        raise InvalidParameterError(f"{env_id} does not take the keyword arguments {dict(kwargs)} ({err}).") from err
    except gym.error.Error as err:
        raise InvalidParameterError(f"cannot create {env_id}: {err}.") from err


def _frame(env: gym.Env) -> np.ndarray:
    frame = env.render()
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise InvalidParameterError(
            f"{_env_name(env)} renders {type(frame).__name__} {getattr(frame, 'shape', '')}, not uint8 RGB frames; "
            "it cannot be collected."
        )
    return frame


def _record_sweep(env: gym.Env, adapter: _Adapter, writer: DatasetWriter, n: int, progress) -> int:
    lines = set()
    for line, index, extra in adapter.sweep(n):
        row = {"episode": line, "step": index, "gt_reward": adapter.sweep_reward()}
        row.update(adapter.label_row({}))
        row.update(adapter.state_row())
        row.update(extra)
        writer.add(_frame(env), row)
        lines.add(line)
        if progress is not None:
            progress(1)
    return len(lines)


def _record_episodes(
    env: gym.Env,
    obs: Any,
    adapter: _Adapter,
    policy: _Policy,
    writer: DatasetWriter,
    episodes: int | None,
    frames: int | None,
    max_steps: int | None,
    progress,
) -> int:
    if isinstance(adapter, _GenericAdapter):
        adapter.last_obs = obs
    episode, step, finished = 0, 0, 0
    while True:
        action = policy.act(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        step += 1
        if isinstance(adapter, _GenericAdapter):
            adapter.last_obs = obs
        row = {"episode": episode, "step": step, "gt_reward": float(reward)}
        row.update(adapter.label_row(info))
        row.update(adapter.state_row())
        writer.add(_frame(env), row)
        if progress is not None:
            progress(1)
        if frames is not None and writer.count >= frames:
            return episode + 1
        if terminated or truncated or (max_steps is not None and step >= max_steps):
            finished += 1
            if episodes is not None and finished >= episodes:
                return finished
            episode, step = episode + 1, 0
            obs, _ = env.reset()
            if isinstance(adapter, _GenericAdapter):
                adapter.last_obs = obs
