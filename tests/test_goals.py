"""Language-goal families, the goal-family contrastive reward, MiniWorld's goal success detectors,
goal-conditioned observations and the goal path through the vector wrapper (Baumli et al.)."""

from __future__ import annotations

import os

os.environ.setdefault("PYGLET_HEADLESS", "true")  # before anything imports miniworld / pyglet

import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from vlmreward.envs import GoalObservation, make_vlm_vec_env
from vlmreward.envs.goal_conditioning import BagOfWordsTextEncoder, GoalStateOracleReward, ModelTextEncoder
from vlmreward.errors import InvalidParameterError, VLMRewardError
from vlmreward.goals import (
    DEFAULT_GOAL_FAMILY,
    GoalFamilyError,
    GoalObject,
    load_goal_family,
    parse_goal_family,
)
from vlmreward.rewards import GoalFamilySoftmaxReward, SoftmaxThresholdReward

REPO = Path(__file__).resolve().parents[1]
FAMILY_FILE = REPO / "configs" / "goals" / "miniworld_objects.yaml"
ENV_ID = "vlmreward/MiniWorldGoals-v0"
SMALL = {"render_width": 32, "render_height": 32, "obs_type": "state"}


@pytest.fixture(scope="module")
def family():
    return load_goal_family(FAMILY_FILE)


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "family.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# families: loading and errors


def test_shipped_family_is_the_default_and_generates_the_goals(family):
    assert family.to_dict() == DEFAULT_GOAL_FAMILY
    assert [len(family.goals([t])) for t in family.goal_types] == [15, 15, 15 * 14]
    goals = family.goals()
    assert goals[0].sentence == "go to the red box" and goals[0].key == "find:red box"
    place = family.goals(["place"])[0]
    assert place.sentence == "put the red box next to the green box" and place.key == "place:red box>green box"
    assert len({g.key for g in goals}) == len(goals) == 240
    phrasings = family.goals(templates="all")
    assert len(phrasings) == 480 and {g.template for g in phrasings} == {0, 1}
    assert family.goal("find the red box").key == family.goal("find:red box").key == "find:red box"


def test_family_yaml_roundtrip_and_exclusions(tmp_path, family):
    data = {**DEFAULT_GOAL_FAMILY, "objects": {**DEFAULT_GOAL_FAMILY["objects"], "exclude": ["purple key"]}}
    loaded = load_goal_family(_write(tmp_path, data))
    assert GoalObject("key", "purple") not in loaded.objects and len(loaded.objects) == 14
    assert load_goal_family(loaded.save(tmp_path / "again.yaml")).to_dict() == loaded.to_dict()
    single = parse_goal_family({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"find": "the {colour} {kind}"}})
    assert [g.sentence for g in single.goals()] == ["the red ball", "the blue ball"] and single.split_spec is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"find": ["go to the {obj}"]}},
         r"templates: find\[0\]: unknown placeholder \{obj\}"),
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"find": ["go somewhere"]}},
         "names no object"),
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"place": ["the {object} near the {target}", "the {object}"]}},
         "either every template names a {target} or none"),
        ({"objects": {"kinds": ["ball"], "colours": ["red"]}, "templates": {"find": ["{object}"]}}, "at least two objects"),
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"], "exclude": ["green ball"]}, "templates": {"find": "{object}"}},
         "exclude: 'green ball' is not one of the objects"),
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"find": "{object}"}, "colour": 1},
         "colour: unknown key"),
        ({"templates": {"find": "{object}"}}, r"a family needs objects: \(kinds and colours\) or apps:"),
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"find": "{object}"},
          "split": {"by": "colour", "held_out": ["pink"]}}, "split.held_out: .*'pink' is not in goal family"),
        ({"objects": {"kinds": ["ball"], "colours": ["red", "blue"]}, "templates": {"find": "{object}"},
          "split": {"by": "shape", "held_out": ["x"]}}, "split.by: 'shape' is not allowed"),
        ("[not, a, mapping]", "must be a mapping"),
        ("objects: [unclosed", "not valid YAML"),
    ],
)
def test_family_file_errors_name_the_key(tmp_path, data, expected):
    with pytest.raises(GoalFamilyError, match=expected):
        load_goal_family(_write(tmp_path, data))


def test_missing_family_file(tmp_path):
    with pytest.raises(GoalFamilyError, match="does not exist"):
        load_goal_family(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------------------
# splits


def test_split_by_colour_holds_out_every_goal_that_mentions_it(family):
    split = family.split()  # the file's: by colour, purple held out
    assert split.by == "colour" and split.held_out_values == ["purple"]
    assert all(all(o.colour != "purple" for o in g.mentions()) for g in split.train)
    assert all(any(o.colour == "purple" for o in g.mentions()) for g in split.held_out)
    assert {g.key for g in split.train}.isdisjoint(g.key for g in split.held_out)
    assert len(split.train) + len(split.held_out) == 240
    find = family.split("colour", ["purple"], types=["find"])
    assert [g.sentence for g in find.held_out] == ["go to the purple box", "go to the purple ball", "go to the purple key"]


def test_split_by_object_kind_template_and_type(family):
    by_object = family.split("object", ["red ball"], types=["find", "lift"])
    assert sorted(g.sentence for g in by_object.held_out) == ["go to the red ball", "pick up the red ball"]
    by_bare_kind = family.split("object", ["ball"], types=["find"])
    assert {g.object.kind for g in by_bare_kind.held_out} == {"ball"} and len(by_bare_kind.held_out) == 5
    by_kind = family.split("kind", ["key"])
    assert all(any(o.kind == "key" for o in g.mentions()) for g in by_kind.held_out)
    by_template = family.split("template", ["find:1", "lift the {object}"], types=["find", "lift"])
    assert {g.sentence.split()[0] for g in by_template.held_out} == {"find", "lift"}
    assert {g.key for g in by_template.held_out} == {g.key for g in by_template.train}  # same tasks, new words
    assert {g.type for g in family.split("goal_type", ["place"]).held_out} == {"place"}


@pytest.mark.parametrize(
    ("by", "held_out", "expected"),
    [
        ("colour", ["pink"], "'pink' is not in goal family"),
        ("object", ["red car"], "'red car' is not in goal family"),
        ("template", ["find:7"], "'find:7' is not in goal family"),
        ("colour", ["red", "green", "blue", "yellow", "purple"], "leaves no training goals"),
        ("size", ["big"], "split by 'size'"),
    ],
)
def test_split_errors(family, by, held_out, expected):
    with pytest.raises(InvalidParameterError, match=expected):
        family.split(by, held_out)


# ---------------------------------------------------------------------------------------------
# negatives


@pytest.mark.parametrize("mode", ["all", "same_template", "k_sampled"])
def test_negatives_exclude_the_goal_itself(family, mode):
    for goal in family.goals()[::7] + [family.goal("find the red box")]:
        negatives = family.negatives_for(goal, mode, k=10, rng=0)
        keys = [n.key for n in negatives]
        assert goal.key not in keys and goal.sentence not in [n.sentence for n in negatives]
        assert len(set(keys)) == len(keys)
        if mode == "all":
            assert len(negatives) == 239
        if mode == "same_template":
            assert {n.type for n in negatives} == {goal.type} and len(negatives) == len(family.goals([goal.type])) - 1
        if mode == "k_sampled":
            assert len(negatives) == 10
        if goal.template == 1:  # phrased like the goal
            assert all(n.template == 1 for n in negatives)


def test_k_sampled_negatives_are_seeded_and_modes_are_checked(family):
    goal = family.goals()[3]
    assert family.negatives_for(goal, "k_sampled", k=5, rng=1) == family.negatives_for(goal, "k_sampled", k=5, rng=1)
    assert family.negatives_for(goal, "k_sampled", k=500, rng=1).__len__() == 239  # capped
    with pytest.raises(InvalidParameterError, match="needs k"):
        family.negatives_for(goal, "k_sampled")
    with pytest.raises(InvalidParameterError, match="negatives mode"):
        family.negatives_for(goal, "most")
    with pytest.raises(InvalidParameterError, match="not a goal of family"):
        family.negatives_for("go to the moon")


# ---------------------------------------------------------------------------------------------
# the goal-family reward


def test_goal_family_reward_is_the_softmax_reward_against_the_goals_negatives(hf_clip_model, family, unit_vectors):
    emb = torch.as_tensor(unit_vectors(6, hf_clip_model.embed_dim, seed=3))
    for mode, k in (("all", None), ("same_template", None), ("k_sampled", 7)):
        reward = GoalFamilySoftmaxReward(hf_clip_model, family, negatives=mode, k=k, temperature=0.05, types=["find", "lift"])
        goals = [reward.goals[i] for i in (0, 4, 16, 20, 25, 29)]
        got = reward.from_embeddings_with_goals(emb, goals)
        rng = np.random.default_rng(0)
        expected_negatives = {}
        for g in reward.goals:  # the reward draws k_sampled negatives goal by goal, in family order
            expected_negatives[g.key] = family.negatives_for(g, mode, k, rng, types=["find", "lift"])
        for i, goal in enumerate(goals):
            negatives = [n.sentence for n in expected_negatives[goal.key]]
            assert goal.sentence not in negatives
            single = SoftmaxThresholdReward(hf_clip_model, goal.sentence, negatives, temperature=0.05)
            np.testing.assert_allclose(got[i], single.from_embeddings(emb[i : i + 1])[0], rtol=1e-5, atol=1e-7)
        mask = reward.negative_mask.cpu().numpy()
        assert mask.diagonal().all()  # the goal is in its own softmax exactly once, as the numerator
        assert (mask.sum(axis=1) == (len(reward.goals) if mode == "all" else (15 if mode == "same_template" else k + 1))).all()


def test_goal_family_reward_per_frame_goals_templates_and_errors(hf_clip_model, family, cartpole_frames):
    reward = GoalFamilySoftmaxReward(hf_clip_model, family, threshold=0.01, types=["find", "lift"])
    frames = cartpole_frames[:4]
    goals = ["go to the red box", "find:blue ball", family.goal("lift the green key"), family.goals(["find"])[2]]
    binary = reward.score_with_goals(frames, goals)
    assert binary.dtype == np.float32 and set(binary.tolist()) <= {0.0, 1.0}
    dense = GoalFamilySoftmaxReward(hf_clip_model, family, types=["find", "lift"])
    p = dense.score_with_goals(frames, goals)
    np.testing.assert_array_equal(binary, (p.astype(np.float64) >= 0.01).astype(np.float32))
    one_by_one = np.concatenate([dense.score_with_goals(frames[i : i + 1], goals[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(p, one_by_one, rtol=1e-5)  # a frame's reward does not depend on its batch
    # a held-out phrasing ("find the ...") is scored as its task
    assert dense.index("find the red box") == dense.index("go to the red box")
    photo = GoalFamilySoftmaxReward(hf_clip_model, family, templates={"find": ["a photo of a {object}", "the {object}"]}, types=["find"])
    assert photo.prompts_for(family.goal("go to the red ball")) == ["a photo of a red ball", "the red ball"]
    assert photo.describe()["kind"] == "goal_family_softmax"
    with pytest.raises(InvalidParameterError, match="type 'place'"):
        dense.score_with_goals(frames[:1], ["put the red box next to the green box"])
    with pytest.raises(InvalidParameterError, match="not a goal of family"):
        dense.score_with_goals(frames[:1], ["juggle"])
    with pytest.raises(InvalidParameterError, match="has no goal"):
        dense.score_with_goals(frames[:1], [None])
    with pytest.raises(InvalidParameterError, match="2 frames but 1 goals"):
        dense.score_with_goals(frames[:2], goals[:1])
    with pytest.raises(InvalidParameterError, match="score_with_goals"):
        dense(frames)
    with pytest.raises(InvalidParameterError, match="does not have"):
        GoalFamilySoftmaxReward(hf_clip_model, family, templates={"open": "{object}"})
    with pytest.raises(InvalidParameterError, match="temperature"):
        GoalFamilySoftmaxReward(hf_clip_model, family, temperature=0)


# ---------------------------------------------------------------------------------------------
# the MiniWorld environment: success detectors on hand-placed scenes


@pytest.fixture(scope="module")
def scene():
    """A 6 m room with a red ball, a blue box and a green key, the agent left of them."""
    env = gym.make(ENV_ID, render_mode="rgb_array", goal_set="all", num_objects=3, room_size=6.0, **SMALL)
    env.reset(seed=0, options={"goal": "go to the red ball"})
    yield env.unwrapped
    env.close()


def _arrange(u, goal):
    """Reset into ``goal`` and set the red ball, blue box and green key at known places."""
    u.reset(seed=0, options={"goal": goal})
    present = {o.name for o in u.objects}
    assert {"red ball"} <= present
    u.set_carrying(None)
    places = {"red ball": (3.0, 3.0), "blue box": (3.0, 5.0), "green key": (5.0, 1.0)}
    for name in present:
        u.set_object(name, places.get(name, (1.0 + 0.9 * len(name) % 4, 1.0)))
    u.set_agent((1.0, 3.0), 0.0)  # facing +x, towards the ball 2 m away


def test_find_success_needs_near_and_facing(scene):
    from vlmreward.envs.miniworld_goals import FIND_MAX_BEARING, goal_success, near_distance

    u = scene
    _arrange(u, "go to the red ball")
    ball = u.entity_of(GoalObject("ball", "red"))
    limit = near_distance(u, u.agent, ball)
    assert 0.95 < limit < 1.1  # 0.4 + 0.43 + 1.1 · 0.17 m
    assert not goal_success(u)  # 2 m away
    u.set_agent((3.0 - 0.9, 3.0), 0.0)
    assert goal_success(u)  # 0.9 m, facing it
    u.set_agent((3.0 - 0.9, 3.0), FIND_MAX_BEARING - 0.05)
    assert goal_success(u)
    u.set_agent((3.0 - 0.9, 3.0), FIND_MAX_BEARING + 0.05)
    assert not goal_success(u)  # looking past it
    u.set_agent((3.0 - 0.9, 3.0), math.pi)
    assert not goal_success(u)  # its back to the ball
    # from +z of the ball; MiniWorld's heading vector is (cos dir, 0, -sin dir)
    u.set_agent((3.0, 3.0 + 0.9), -math.pi / 2)  # looking to +z, away from the ball
    assert not goal_success(u)
    u.set_agent((3.0, 3.0 + 0.9), math.pi / 2)  # looking to -z, at the ball
    assert goal_success(u)
    u.set_agent((3.0 - limit - 0.05, 3.0), 0.0)
    assert not goal_success(u)  # just beyond MiniWorld's near
    u.set_agent((3.0 - 0.9, 3.0), 0.0)
    u.set_carrying("red ball")
    assert not goal_success(u)  # carried objects are lifted, not found
    assert u.goal_state().carrying_object and not u.goal_state().success


def test_lift_success_is_carrying_the_goal_object(scene):
    from vlmreward.envs.miniworld_goals import goal_success

    u = scene
    _arrange(u, "pick up the red ball")
    assert not goal_success(u)
    u.set_carrying("blue box")
    assert not goal_success(u) and u.goal_state().carrying_other
    u.set_carrying("red ball")
    assert goal_success(u)
    # through MiniWorld's own actions: walk up to the ball, pick it up, drop it
    u.set_carrying(None)
    u.set_object("red ball", (3.0, 3.0))
    u.set_agent((2.1, 3.0), 0.0)
    _, reward, _, _, info = u.step(4)  # pickup
    assert info["is_success"] and reward == 1.0 and info["goal_type"] == "lift"
    _, reward, _, _, info = u.step(5)  # drop
    assert not info["is_success"] and reward == 0.0


def test_place_success_is_the_object_set_down_next_to_the_target(scene):
    from vlmreward.envs.miniworld_goals import goal_success, near_distance

    u = scene
    _arrange(u, "put the red ball next to the blue box")
    ball, box = u.entity_of(GoalObject("ball", "red")), u.entity_of(GoalObject("box", "blue"))
    assert not goal_success(u)  # 2 m apart
    gap = near_distance(u, ball, box)
    u.set_object("red ball", (3.0, 5.0 - gap + 0.05))
    assert goal_success(u)
    state = u.goal_state()
    assert state.target_distance < gap and state.success
    u.set_object("red ball", (3.0, 5.0 - gap - 0.05))
    assert not goal_success(u)
    u.set_agent((1.6, 4.3), 0.0)
    u.set_carrying("red ball")  # held in front of the agent, next to the box but not set down
    assert not goal_success(u)


# ---------------------------------------------------------------------------------------------
# the environment's goals, observations and frames


def test_importing_vlmreward_envs_does_not_import_miniworld():
    code = "import sys, vlmreward.envs, gymnasium as gym; gym.spec('vlmreward/MiniWorldGoals-v0'); print('miniworld' in sys.modules, 'pyglet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_environment_draws_training_goals_and_reports_them(family):
    env = gym.make(ENV_ID, render_mode="rgb_array", **SMALL)
    held_out = {g.key for g in family.split().held_out}
    seen = set()
    obs, info = env.reset(seed=1)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32
    assert env.observation_space.contains(obs)
    for episode in range(30):
        goal = info["goal"]
        seen.add(goal.type)
        assert goal.key not in held_out and info["goal_type"] == goal.type
        assert not info["is_success"]  # never achieved before the first step
        assert set(info) >= {"goal", "goal_type", "is_success", "goal_state"}
        obs, info = env.reset()
    assert seen == {"find", "lift", "place"}
    frame = env.render()
    assert frame.shape == (32, 32, 3) and frame.dtype == np.uint8
    _, reward, terminated, truncated, info = env.step(2)
    assert reward in (0.0, 1.0) and not terminated and info["goal"].key not in held_out
    env.close()
    held = gym.make(ENV_ID, render_mode="rgb_array", goal_set="held_out", goal_types=["find"], **SMALL)
    _, info = held.reset(seed=0)
    assert info["goal"].object.colour == "purple"
    image = gym.make(ENV_ID, render_mode="rgb_array", obs_type="image", obs_width=40, obs_height=30, goals=["go to the red ball"])
    obs, info = image.reset(seed=0)
    assert obs.shape == (30, 40, 3) and info["goal"].sentence == "go to the red ball"
    for bad, match in (({"num_objects": 1}, "num_objects"), ({"obs_type": "depth"}, "obs_type"),
                       ({"family": {"objects": {"kinds": ["car"], "colours": ["red", "blue"]}, "templates": {"find": "{object}"}}}, "kinds")):
        with pytest.raises(InvalidParameterError, match=match):
            gym.make(ENV_ID, **{**SMALL, **bad})
    held.close()
    image.close()


def test_goal_observation_carries_the_goal_embedding(hf_clip_model):
    env = gym.make(ENV_ID, render_mode="rgb_array", goal_types=["find"], **SMALL)
    wrapped = GoalObservation(env, hf_clip_model)
    assert set(wrapped.observation_space.spaces) == {"state", "goal"}
    assert wrapped.observation_space["goal"].shape == (hf_clip_model.embed_dim,)
    obs, info = wrapped.reset(seed=0)
    expected = hf_clip_model.encode_text(info["goal"].sentence)[0].cpu().numpy()
    np.testing.assert_allclose(obs["goal"], expected, rtol=1e-6)
    assert wrapped.observation_space.contains(obs)
    step_obs, *_ = wrapped.step(0)
    np.testing.assert_array_equal(step_obs["goal"], obs["goal"])
    sentences = set()
    for _ in range(6):
        obs, info = wrapped.reset()
        np.testing.assert_allclose(obs["goal"], ModelTextEncoder(hf_clip_model)([info["goal"].sentence])[0], rtol=1e-6)
        sentences.add(info["goal"].sentence)
    assert len(sentences) > 1  # the goal is resampled at reset
    with pytest.raises(VLMRewardError, match="no info\\['goal'\\]"):
        GoalObservation(gym.make("CartPole-v1")).reset(seed=0)
    env.close()


def test_bag_of_words_encoder_is_deterministic_and_compositional():
    a, b = BagOfWordsTextEncoder(16), BagOfWordsTextEncoder(16)
    x = a(["go to the red ball", "go to the blue ball"])
    np.testing.assert_array_equal(x, b(["go to the red ball", "go to the blue ball"]))
    assert x.shape == (2, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(a(["ball red the to go"]), a(["go to the red ball"]), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# goals through the vector wrapper, per step and deferred


class RecordingOracle(GoalStateOracleReward):
    """The state oracle, recording the batch sizes and goal states it is given."""

    def __init__(self):
        self.batches: list[int] = []
        self.states: list = []

    def score_with_goals(self, frames, goal_states):
        assert len(frames) == len(goal_states)
        self.batches.append(len(frames))
        self.states.extend(goal_states)
        return super().score_with_goals(frames, goal_states)


def _goal_venv(reward, deferred: bool, n_envs: int = 2):
    encoder = BagOfWordsTextEncoder(16)
    return make_vlm_vec_env(
        ENV_ID, n_envs, reward, deferred=deferred, score_batch_size=10, seed=0,
        env_kwargs={**SMALL, "room_size": 3.0, "num_objects": 2, "max_episode_steps": 7},
        wrapper=lambda env: GoalObservation(env, encoder),
    ), encoder


def test_vector_wrapper_gives_each_frame_its_own_steps_goal_across_auto_resets():
    oracle = RecordingOracle()
    venv, encoder = _goal_venv(oracle, deferred=False)
    obs = venv.reset()
    assert set(obs) == {"state", "goal"} and obs["goal"].shape == (2, 16)
    rng = np.random.default_rng(0)
    dones_seen = 0
    for _ in range(20):
        obs, rewards, dones, infos = venv.step(rng.integers(6, size=2))
        for i, info in enumerate(infos):
            state = info["goal_state"]
            assert rewards[i] == pytest.approx(GoalStateOracleReward.reward_of(state))
            assert info["vlm_reward"] == pytest.approx(rewards[i])
            # the goal scored is that of the episode the frame belongs to, also at an auto-reset
            goal_obs = info["terminal_observation"]["goal"] if dones[i] else obs["goal"][i]
            np.testing.assert_allclose(goal_obs, encoder([state.goal.sentence])[0], rtol=1e-6)
            dones_seen += int(dones[i])
    assert dones_seen >= 4 and set(oracle.batches) == {2}
    episodes = venv.pop_episodes()
    assert episodes and all(e.goal is not None and e.goal.type in ("find", "lift", "place") for e in episodes)
    venv.close()


def test_deferred_goal_scoring_equals_per_step_scoring_exactly():
    """PPO on dict observations: the rollouts' rewards, returns and advantages are bit-identical
    whether each step's goals are scored at once or stored with the frames and scored in batches."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from vlmreward.rl.deferred import DeferredDictRolloutBuffer, attach_reward_source

    def run(deferred: bool):
        oracle = RecordingOracle()
        venv, _ = _goal_venv(oracle, deferred)
        model = PPO(
            "MultiInputPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu",
            rollout_buffer_class=DeferredDictRolloutBuffer if deferred else None,
        )
        attach_reward_source(model)
        snapshots = []

        class Grab(BaseCallback):
            def _on_step(self):
                return True

            def _on_rollout_end(self):
                b = self.model.rollout_buffer
                snapshots.append({k: getattr(b, k).copy() for k in ("rewards", "returns", "advantages")})

        model.learn(64, callback=Grab())
        venv.close()
        return snapshots, oracle

    per_step, a = run(False)
    deferred, b = run(True)
    assert len(per_step) == len(deferred) == 2
    for x, y in zip(per_step, deferred):
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    assert set(a.batches) == {2} and max(b.batches) > 2
    assert [s.goal for s in a.states] == [s.goal for s in b.states]


def test_deferred_dict_replay_buffer_equals_per_step_scoring_exactly():
    """DQN on dict observations with a small buffer that wraps around: the stored rewards agree."""
    from stable_baselines3 import DQN

    from vlmreward.rl.deferred import DeferredDictReplayBuffer, attach_reward_source

    def run(deferred: bool):
        venv, _ = _goal_venv(GoalStateOracleReward(), deferred)
        model = DQN(
            "MultiInputPolicy", venv, buffer_size=30, learning_starts=20, train_freq=8, gradient_steps=1, batch_size=8,
            seed=0, device="cpu", replay_buffer_class=DeferredDictReplayBuffer if deferred else None,
        )
        attach_reward_source(model)
        model.learn(80)
        if deferred:
            model.replay_buffer.score_pending()
        venv.close()
        return model.replay_buffer

    per_step, deferred = run(False), run(True)
    assert per_step.full and deferred.full
    np.testing.assert_array_equal(per_step.rewards, deferred.rewards)
    np.testing.assert_array_equal(per_step.observations["goal"], deferred.observations["goal"])
