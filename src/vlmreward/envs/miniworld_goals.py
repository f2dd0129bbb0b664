"""Language goals in a MiniWorld room: find, lift and place coloured boxes, balls and keys.

An open stand-in for the Playhouse of Baumli et al. ("Vision-Language Models as a Source of
Rewards", arXiv:2312.09187): one goal-conditioned agent, goals from a
:class:`~vlmreward.goals.GoalFamily`, ground-truth success from the simulator's state.
Registered as ``vlmreward/MiniWorldGoals-v0`` (100 steps); needs ``miniworld`` (``pip install
"miniworld>=2.1"``) and renders off-screen with ``PYGLET_HEADLESS=true`` (set here when no
``DISPLAY`` is present, before pyglet is imported).

**The room.** A square room of ``room_size`` metres with ``num_objects`` objects (MiniWorld's
``Box``, ``Ball`` and ``Key`` entities in MiniWorld's colours), no two alike: the goal's object
(and target) plus distractors drawn from the family's objects. At every ``reset`` a goal is drawn
from the goal set (``goal_set``: the family's training goals, held-out goals, or all; a goal type
first, uniformly, then a goal of that type, so the 210 Pick-and-place goals do not crowd out the
15 Find goals), or set with ``reset(options={"goal": sentence_or_key})``. The scene is drawn
again until the goal is not already achieved.

**Actions** (MiniWorld's own, ``Discrete(6)``): 0 turn left, 1 turn right (15°), 2 move forward,
3 move back (0.15 m), 4 pick up (the object just ahead), 5 drop.

**Observations.** ``obs_type="image"``: the agent's first-person view, ``uint8 [obs_height,
obs_width, 3]`` (default 64 × 64). ``obs_type="state"``: ``float32`` features (below). Wrap
with :class:`~vlmreward.envs.goal_conditioning.GoalObservation` to add the goal's text embedding.

**Frames.** ``render()`` (``render_mode="rgb_array"``) returns the agent's first-person view at
``render_width × render_height`` (default 224 × 224): what the VLM scores, as in Baumli et al.,
where the reward model sees the agent's observation. The camera looks down by ``cam_pitch``
(default 40°: the 60° view spans 10° to 70° below the horizon) so that an object within reach,
0.85 to 1 m from the agent's centre, is in the picture; MiniWorld's level camera shows the floor
only from 2.6 m on.

**Success** (``info["is_success"]``, from the state after each step; :func:`goal_success`):

* Find: the goal object is on the floor (not carried), closer to the agent than MiniWorld's
  ``near`` (centre distance ``< r_agent + r_object + 1.1 · max forward step``, ≈ 1.0 m for a
  0.6 m ball) and within :data:`FIND_MAX_BEARING` (30°, half the horizontal field of view) of
  the agent's heading: the agent stands at the object, looking at it.
* Lift: the agent carries the goal object (``agent.carrying``).
* Place: the goal object is not carried and MiniWorld's ``near(object, target)`` holds
  (``< r_object + r_target + 1.1 · max forward step``), MiniWorld's PutNext criterion.

The environment's reward is 1 on every step whose state is a success, else 0 (the ground truth
the VLM reward is compared with). Episodes end at the time limit; with
``terminate_on_success=True`` also at the first success. ``info`` carries ``"goal"``
(:class:`~vlmreward.goals.Goal`), ``"goal_type"``, ``"is_success"`` and ``"goal_state"``
(:class:`~vlmreward.envs.goal_conditioning.GoalState`).

**State features** (``obs_type="state"``), all in ``[-1, 1]``: the agent (x and z scaled to the
room, cos and sin of its heading, carrying anything), then for each object kind of the family
``slots_per_kind`` slots (the room's objects of that kind in family colour order, then empty
slots), each ``[present, carried, distance / room diagonal, cos bearing, sin bearing,
colour one-hot]``. Objects are grouped by kind, so a goal names its slot by kind and colour.

The success detectors are :mod:`vlmreward.envs.success`'s (re-exported here); the labelled sweep
states of ``vlmreward collect --policy scripted`` are the probe's (:mod:`vlmreward.envs.probes.miniworld`).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from typing import Any, Mapping, Sequence

if not os.environ.get("DISPLAY"):
    os.environ.setdefault("PYGLET_HEADLESS", "true")

import numpy as np
from gymnasium import spaces

from vlmreward.envs.goal_conditioning import GoalState
from vlmreward.envs.success import (  # the detectors, re-exported
    FIND_MAX_BEARING, MINIWORLD_GOAL_TYPES, bearing, find_success, floor_distance, goal_success, lift_success,
    near_distance, place_success,
)
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.goals import Goal, GoalFamily, GoalObject, as_goal_family, select_goals

try:
    with contextlib.redirect_stdout(io.StringIO()):
        from miniworld.entity import COLOR_NAMES, Ball, Box, Entity, Key
        from miniworld.miniworld import MiniWorldEnv
        from miniworld.params import DEFAULT_PARAMS
except ImportError as _err:  # pragma: no cover - exercised only without miniworld
    class MissingDependencyError(VLMRewardError, ImportError):
        """An optional dependency that is not installed."""

    raise MissingDependencyError(
        f"vlmreward/MiniWorldGoals-v0 needs MiniWorld ({_err}); install it with pip install \"miniworld>=2.1\" "
        "(or the vlmreward[miniworld] extra)."
    ) from _err

__all__ = [
    "MiniWorldGoalsEnv",
    "ENTITY_KINDS",
    "GOAL_TYPES",
    "ACTIONS",
    "FIND_MAX_BEARING",
    "goal_success",
    "find_success",
    "lift_success",
    "place_success",
    "bearing",
    "near_distance",
]

ENTITY_KINDS: dict[str, type] = {"box": Box, "ball": Ball, "key": Key}
"""Object kinds MiniWorld can draw, and their entity classes."""

GOAL_TYPES: tuple[str, ...] = MINIWORLD_GOAL_TYPES
"""Goal types with a ground-truth detector (:func:`~vlmreward.envs.success.goal_success`)."""

ACTIONS: tuple[str, ...] = ("turn_left", "turn_right", "move_forward", "move_back", "pickup", "drop")
"""The action names, by index (MiniWorld's first six actions)."""

BOX_SIZE = 0.6
BALL_SIZE = 0.6
_INTERNAL_STEP_LIMIT = 10**9  # MiniWorld's own time limit; gymnasium's TimeLimit ends episodes


# ---------------------------------------------------------------------------------------------
# the environment


class MiniWorldGoalsEnv(MiniWorldEnv):
    """A MiniWorld room with coloured objects and one language goal per episode (module docstring).

    Args:
        family: a :class:`~vlmreward.goals.GoalFamily`, a YAML path or mapping; None for
            :data:`~vlmreward.goals.DEFAULT_GOAL_FAMILY`. Kinds must be box, ball or key and
            colours MiniWorld's; goal types find, lift or place.
        goal_set: ``"train"``, ``"held_out"`` or ``"all"``; default ``"train"`` when a split is
            known (the family's or ``split_by``/``held_out``), else ``"all"``.
        split_by, held_out: override the family's split (:meth:`~vlmreward.goals.GoalFamily.split`).
        goal_types: restrict the goals to these types.
        goals: an explicit list of goals (sentences or keys) instead of ``goal_set``.
        room_size: side of the square room (m).
        num_objects: objects in the room (at least 2 for place goals).
        unique_kinds, unique_colours: no two objects of one kind (colour) in a room.
        obs_type: ``"image"`` or ``"state"``.
        obs_width, obs_height: size of image observations (pixels).
        render_width, render_height: size of the frames ``render()`` returns (pixels).
        cam_pitch: camera pitch in degrees (negative looks down).
        terminate_on_success: end the episode at the first success.
        goal_sampling: ``"type"`` (a goal type uniformly, then a goal) or ``"uniform"`` (a goal uniformly).
        domain_rand: MiniWorld's domain randomisation (lighting, colours, camera).
        max_episode_steps: MiniWorld's own step limit (default: none; gymnasium's ``TimeLimit``
            of the registered id ends episodes).
        render_mode: ``"rgb_array"`` for frames.

    Raises:
        InvalidParameterError: kinds, colours or goal types MiniWorld cannot do, an empty goal
            set, or a room that cannot hold the objects.
    """

    metadata = {**MiniWorldEnv.metadata, "render_fps": 10}

    def __init__(
        self,
        family: GoalFamily | Mapping[str, Any] | str | os.PathLike | None = None,
        goal_set: str | None = None,
        split_by: str | None = None,
        held_out: Sequence[str] | None = None,
        goal_types: Sequence[str] | None = None,
        goals: Sequence[str | Goal] | None = None,
        room_size: float = 5.0,
        num_objects: int = 4,
        unique_kinds: bool = False,
        unique_colours: bool = False,
        obs_type: str = "image",
        obs_width: int = 64,
        obs_height: int = 64,
        render_width: int = 224,
        render_height: int = 224,
        cam_pitch: float = -40.0,
        terminate_on_success: bool = False,
        goal_sampling: str = "type",
        domain_rand: bool = False,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.family = as_goal_family(family)
        self._check_family(self.family)
        self.goal_list, self.goal_set = select_goals(self.family, goal_set, split_by, held_out, goal_types, goals)
        if obs_type not in ("image", "state"):
            raise InvalidParameterError(f"obs_type {obs_type!r}: use 'image' or 'state'.")
        if goal_sampling not in ("type", "uniform"):
            raise InvalidParameterError(f"goal_sampling {goal_sampling!r}: use 'type' or 'uniform'.")
        self.room_size = float(room_size)
        self.num_objects = int(num_objects)
        self.unique_kinds = bool(unique_kinds)
        self.unique_colours = bool(unique_colours)
        needed = max(len(g.mentions()) for g in self.goal_list)
        limit = len(self.family.objects)
        if self.unique_kinds:
            limit = min(limit, len(self.family.kinds))
        if self.unique_colours:
            limit = min(limit, len(self.family.colours))
        if not needed <= self.num_objects <= limit:
            raise InvalidParameterError(
                f"num_objects={num_objects}: the goals need at least {needed} objects in the room and the family "
                f"(with unique_kinds={unique_kinds}, unique_colours={unique_colours}) allows at most {limit}."
            )
        if not self.room_size >= 2.0:
            raise InvalidParameterError(f"room_size must be at least 2 m; got {room_size}.")
        self.obs_type = obs_type
        self.terminate_on_success = bool(terminate_on_success)
        self.goal_sampling = goal_sampling
        self.slots_per_kind = 1 if self.unique_kinds else min(self.num_objects, len(self.family.colours))
        self.goal: Goal = self.goal_list[0]
        self._requested_goal: Goal | None = None
        self._objects: dict[GoalObject, Entity] = {}
        self._by_type: dict[str, list[Goal]] = {}
        for g in self.goal_list:
            self._by_type.setdefault(g.type, []).append(g)
        params = DEFAULT_PARAMS.copy()
        params.set("cam_pitch", float(cam_pitch), float(cam_pitch) - 5.0, float(cam_pitch) + 5.0)
        with contextlib.redirect_stdout(io.StringIO()):  # MiniWorld prints frame-buffer fallbacks
            super().__init__(
                max_episode_steps=_INTERNAL_STEP_LIMIT if max_episode_steps is None else int(max_episode_steps),
                obs_width=int(obs_width),
                obs_height=int(obs_height),
                window_width=int(render_width),
                window_height=int(render_height),
                params=params,
                domain_rand=domain_rand,
                render_mode=render_mode,
                view="agent",
            )
        self.action_space = spaces.Discrete(len(ACTIONS))
        if obs_type == "state":
            self.observation_space = spaces.Box(-1.0, 1.0, shape=(self.state_size,), dtype=np.float32)

    # ----------------------------------------------------------------------------- set-up
    @staticmethod
    def _check_family(family: GoalFamily) -> None:
        bad_kinds = [k for k in family.kinds if k not in ENTITY_KINDS]
        bad_colours = [c for c in family.colours if c not in COLOR_NAMES]
        bad_types = [t for t in family.goal_types if t not in GOAL_TYPES]
        problems = []
        if bad_kinds:
            problems.append(f"object kinds {bad_kinds} (MiniWorld draws {', '.join(ENTITY_KINDS)})")
        if bad_colours:
            problems.append(f"colours {bad_colours} (MiniWorld's are {', '.join(COLOR_NAMES)})")
        if bad_types:
            problems.append(f"goal types {bad_types} (with a success detector: {', '.join(GOAL_TYPES)})")
        if problems:
            raise InvalidParameterError(f"goal family {family.name!r} has " + "; ".join(problems) + ".")
        for goal_type in family.goal_types:
            if family.has_target(goal_type) != (goal_type == "place"):
                raise InvalidParameterError(
                    f"goal family {family.name!r}: {goal_type} templates must "
                    + ("name a {target}" if goal_type == "place" else "not name a {target}")
                    + "."
                )

    @property
    def state_size(self) -> int:
        """Length of the ``obs_type="state"`` vector."""
        return 5 + len(self.family.kinds) * self.slots_per_kind * (5 + len(self.family.colours))

    def entity_of(self, obj: GoalObject) -> Entity:
        """The room's entity of a family object.

        Raises:
            InvalidParameterError: the object is not in the room.
        """
        try:
            return self._objects[obj]
        except KeyError:
            raise InvalidParameterError(f"there is no {obj.name} in the room now.") from None

    @property
    def objects(self) -> dict[GoalObject, Entity]:
        """The room's objects: family object → MiniWorld entity."""
        return dict(self._objects)

    # ----------------------------------------------------------------------------- world
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode: a goal (``options={"goal": sentence, key or Goal}``, else sampled) and a new room."""
        requested = (options or {}).get("goal")
        self._requested_goal = None if requested is None else self.family.goal(requested)
        obs, _ = super().reset(seed=seed, options=options)
        return self._observation(obs), self._info(goal_success(self))

    def _sample_goal(self) -> Goal:
        if self.goal_sampling == "type":
            types = list(self._by_type)
            goals = self._by_type[types[int(self.np_random.integers(len(types)))]]
        else:
            goals = self.goal_list
        return goals[int(self.np_random.integers(len(goals)))]

    def _make_entity(self, obj: GoalObject) -> Entity:
        if obj.kind == "box":
            return Box(color=obj.colour, size=BOX_SIZE)
        if obj.kind == "ball":
            return Ball(color=obj.colour, size=BALL_SIZE)
        return Key(color=obj.colour)

    def _gen_world(self) -> None:
        self.add_rect_room(min_x=0, max_x=self.room_size, min_z=0, max_z=self.room_size)
        self.goal = self._requested_goal or self._sample_goal()
        chosen = list(self.goal.mentions())
        candidates = [o for o in self.family.objects if o not in chosen]
        order = self.np_random.permutation(len(candidates))
        for i in order:
            if len(chosen) >= self.num_objects:
                break
            obj = candidates[int(i)]
            if self.unique_kinds and any(o.kind == obj.kind for o in chosen):
                continue
            if self.unique_colours and any(o.colour == obj.colour for o in chosen):
                continue
            chosen.append(obj)
        self._objects = {}
        for obj in chosen:
            self._objects[obj] = self.place_entity(self._make_entity(obj))
        self.place_agent()
        for _ in range(100):  # a goal achieved before the first step would teach nothing
            if not self._achieved_at_start():
                break
            self._replace(self.agent)
            if self.goal.type == "place":
                self._replace(self._objects[self.goal.object])

    def _achieved_at_start(self) -> bool:
        self.max_forward_step = self.params.get_max("forward_step")  # set by reset after _gen_world
        return goal_success(self)

    def _replace(self, ent: Entity) -> None:
        self.entities.remove(ent)
        if ent is self.agent:
            self.place_agent()
        else:
            self.place_entity(ent)

    # ----------------------------------------------------------------------------- stepping
    def render_obs(self, frame_buffer=None):  # noqa: ANN001 (MiniWorld's signature)
        if frame_buffer is None and self.obs_type == "state":
            return None  # state observations need no picture; render() draws with its own buffer
        return super().render_obs(frame_buffer)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        action = int(action)
        if not 0 <= action < len(ACTIONS):
            raise InvalidParameterError(f"action {action} is not one of 0..{len(ACTIONS) - 1} ({', '.join(ACTIONS)}).")
        obs, _, terminated, truncated, _ = super().step(action)
        success = goal_success(self)
        terminated = bool(terminated or (self.terminate_on_success and success))
        return self._observation(obs), float(success), terminated, bool(truncated), self._info(success)

    def goal_state(self, success: bool | None = None) -> GoalState:
        """The :class:`~vlmreward.envs.goal_conditioning.GoalState` of the current goal now."""
        goal = self.goal
        obj = self._objects[goal.object]
        carrying = self.agent.carrying
        target_distance = math.nan if goal.target is None else floor_distance(obj.pos, self._objects[goal.target].pos)
        return GoalState(
            goal=goal,
            goal_type=goal.type,
            object_distance=floor_distance(self.agent.pos, obj.pos),
            object_bearing=bearing(self.agent.pos, self.agent.dir, obj.pos),
            carrying_object=carrying is obj,
            carrying_other=carrying is not None and carrying is not obj,
            target_distance=target_distance,
            success=goal_success(self) if success is None else bool(success),
            scale=math.sqrt(2.0) * self.room_size,
        )

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "goal_type": self.goal.type,
            "is_success": bool(success),
            "goal_state": self.goal_state(success),
        }

    def _observation(self, obs: Any) -> Any:
        if self.obs_type == "image":
            return obs
        return self.state_vector()

    def state_vector(self) -> np.ndarray:
        """The ``obs_type="state"`` features (module docstring): ``float32 [state_size]``."""
        size, diagonal = self.room_size, math.sqrt(2.0) * self.room_size
        agent = self.agent
        out = [2 * agent.pos[0] / size - 1, 2 * agent.pos[2] / size - 1, math.cos(agent.dir), math.sin(agent.dir),
               float(agent.carrying is not None)]
        colours = self.family.colours
        for kind in self.family.kinds:
            present = sorted((o for o in self._objects if o.kind == kind), key=lambda o: colours.index(o.colour))
            for slot in range(self.slots_per_kind):
                if slot < len(present):
                    obj = present[slot]
                    ent = self._objects[obj]
                    angle = bearing(agent.pos, agent.dir, ent.pos)
                    one_hot = [float(c == obj.colour) for c in colours]
                    out += [1.0, float(agent.carrying is ent), min(floor_distance(agent.pos, ent.pos) / diagonal, 1.0),
                            math.cos(angle), math.sin(angle), *one_hot]
                else:
                    out += [0.0] * (5 + len(colours))
        return np.asarray(out, dtype=np.float32)

    # ----------------------------------------------------------------------------- hand-set states
    def set_agent(self, pos: Sequence[float], direction: float) -> None:
        """Put the agent at ``(x, z)`` (m), heading ``direction`` (rad); a carried object moves along."""
        self.agent.pos = np.array([float(pos[0]), 0.0, float(pos[-1])])
        self.agent.dir = float(direction)
        self._update_carried()

    def set_object(self, obj: GoalObject | str, pos: Sequence[float]) -> None:
        """Put a room object on the floor at ``(x, z)`` (m), dropping it if carried."""
        ent = self.entity_of(self.family.object_named(obj) if isinstance(obj, str) else obj)
        if self.agent.carrying is ent:
            self.agent.carrying = None
        ent.pos = np.array([float(pos[0]), 0.0, float(pos[-1])])

    def set_carrying(self, obj: GoalObject | str | None) -> None:
        """Make the agent carry a room object (held in front, as after a pick-up), or nothing."""
        if self.agent.carrying is not None:
            self.agent.carrying.pos = self.agent.carrying.pos * np.array([1.0, 0.0, 1.0])
        self.agent.carrying = None if obj is None else self.entity_of(self.family.object_named(obj) if isinstance(obj, str) else obj)
        self._update_carried()

    def _update_carried(self) -> None:
        if self.agent.carrying is not None:
            self.agent.carrying.pos = self._get_carry_pos(self.agent.pos, self.agent.carrying)
            self.agent.carrying.dir = self.agent.dir

    def _free(self, pos: np.ndarray, ent: Entity, ignore: Sequence[Entity] = ()) -> bool:
        margin = ent.radius
        if not (margin <= pos[0] <= self.room_size - margin and margin <= pos[2] <= self.room_size - margin):
            return False
        for other in self.entities:
            if other is ent or other in ignore or other is self.agent.carrying:
                continue
            if floor_distance(pos, other.pos) < ent.radius + other.radius:
                return False
        return True

    def _place_near(self, ent: Entity, anchor: np.ndarray, distance: float, rng: np.random.Generator,
                    ignore: Sequence[Entity] = ()) -> np.ndarray | None:
        for _ in range(64):
            angle = rng.uniform(-math.pi, math.pi)
            pos = anchor + np.array([math.cos(angle), 0.0, -math.sin(angle)]) * distance
            if self._free(pos, ent, ignore):
                return pos
        return None
