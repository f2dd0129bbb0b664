"""Preference rewards (RL-VLM-F): labels from tiny random-weight generative VLMs, the Bradley–Terry
ensemble, disagreement sampling, training with the oracle labeller, and exact checkpoints.

The label reference is written here, independent of vlmreward.models.generative_images: the chat
text of one query built from the processor's template, the processor on that one query, a plain
forward with every position's logits, and the log-softmax of the last position at "1" and "2"."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import vlmreward
from vlmreward.errors import InvalidParameterError
from vlmreward.models.testing_vlms import build_paligemma2, build_qwen2_5_vl, build_smolvlm
from vlmreward.rewards.preference import PreferenceParams, PreferenceReward, resize_frames
from vlmreward.rewards.preference_labels import (
    FIRST, IMAGE_1, IMAGE_2, LABEL_QUESTION, NO_PREFERENCE, SECOND, LabelCache, OracleLabeller, VLMPreferenceLabeller,
)
from vlmreward.rewards.preference_model import RewardEnsemble, bradley_terry_loss, ensemble_disagreement
from vlmreward.rewards.registry import build_reward, reward_kind

from conftest import signal_when

ROOT = Path(__file__).resolve().parents[1]
GOAL = "to balance the brown pole on the black cart to be upright"
ARCHITECTURES = {"qwen2_5_vl": build_qwen2_5_vl, "smolvlm": build_smolvlm}


@pytest.fixture(scope="module")
def vlms(tmp_path_factory):
    root = tmp_path_factory.mktemp("preference_vlms")
    return {name: vlmreward.load_model(str(build(root / name))) for name, build in ARCHITECTURES.items()}


def _frames(n, seed=0, size=(40, 56)):
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def _reference_log_probs(model, first, second):
    """``[log p("1"), log p("2")]`` for one ordered query, by hand."""
    from PIL import Image

    content = [{"type": "text", "text": IMAGE_1}, {"type": "image"}, {"type": "text", "text": IMAGE_2}, {"type": "image"},
               {"type": "text", "text": LABEL_QUESTION.format(goal=GOAL)}]
    text = model.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
    images = [Image.fromarray(first), Image.fromarray(second)]
    inputs = model.processor(text=[text], images=[images] if model.model_type in ("idefics3", "smolvlm") else images,
                             return_tensors="pt")
    with torch.no_grad():
        logits = model.model(**inputs).logits[0, -1].float()
    log_p = torch.log_softmax(logits, dim=-1)
    one, two = (model.tokenizer.encode(s, add_special_tokens=False) for s in ("1", "2"))
    assert len(one) == len(two) == 1
    return np.array([float(log_p[one[0]]), float(log_p[two[0]])])


def _count_forwards(model, monkeypatch):
    calls = []
    forward = model.model.forward

    def counted(*args, **kwargs):
        calls.append(1)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.model, "forward", counted)
    return calls


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_labels_equal_an_independent_forward_both_orders_are_asked_and_the_cache_is_hit(vlms, arch, tmp_path, monkeypatch):
    model = vlms[arch]
    a, b = _frames(3, seed=1), _frames(3, seed=2)
    cache = LabelCache(tmp_path / "labels.jsonl")
    labeller = VLMPreferenceLabeller(model, GOAL, stages=1, margin=0.0, cache=cache, batch_size=4)
    forwards = _count_forwards(model, monkeypatch)
    result = labeller.label(a, b)
    assert labeller.model_calls == 6 and labeller.cache_hits == 0  # both orders of 3 pairs
    assert len(forwards) == 2  # 6 queries, 4 a forward pass
    for i in range(3):
        ab, ba = _reference_log_probs(model, a[i], b[i]), _reference_log_probs(model, b[i], a[i])
        lp = labeller.ordered_log_probs([a[i], b[i]], [b[i], a[i]])
        np.testing.assert_allclose(lp, np.stack([ab, ba]), atol=1e-5)
        delta = ((ab[0] - ab[1]) - (ba[0] - ba[1])) / 2
        assert result.delta[i] == pytest.approx(delta, abs=1e-5)
        assert result.first_bias[i] == pytest.approx(((ab[0] - ab[1]) + (ba[0] - ba[1])) / 2, abs=1e-5)
        assert result.labels[i] == (FIRST if delta > 0 else SECOND)
    # a rerun (another process: a fresh cache object on the same file) asks the model nothing
    forwards.clear()
    again = VLMPreferenceLabeller(model, GOAL, stages=1, cache=LabelCache(tmp_path / "labels.jsonl"))
    rerun = again.label(a, b)
    assert again.model_calls == 0 and again.cache_hits == 6 and not forwards
    np.testing.assert_array_equal(rerun.labels, result.labels)
    np.testing.assert_allclose(rerun.delta, result.delta, atol=1e-6)
    # another goal is another question: not answered from the cache
    other = VLMPreferenceLabeller(model, "to keep the cart still", cache=LabelCache(tmp_path / "labels.jsonl"))
    other.label(a[:1], b[:1])
    assert other.model_calls == 2 and other.cache_hits == 0


def test_margin_makes_no_preference_and_swapping_a_pair_flips_its_label(vlms):
    model = vlms["qwen2_5_vl"]
    a, b = _frames(4, seed=3), _frames(4, seed=4)
    labeller = VLMPreferenceLabeller(model, GOAL)
    forward, backward = labeller.label(a, b), labeller.label(b, a)
    np.testing.assert_allclose(forward.delta, -backward.delta, atol=1e-6)  # order-averaged: antisymmetric
    np.testing.assert_allclose(forward.first_bias, backward.first_bias, atol=1e-6)
    wide = VLMPreferenceLabeller(model, GOAL, margin=float(np.abs(forward.delta).max()) + 1e-3)
    assert (wide.label(a, b).labels == NO_PREFERENCE).all()


def test_two_stages_generate_a_comparison_then_read_the_label_from_text(vlms, tmp_path, monkeypatch):
    from vlmreward.rewards import preference_labels

    model = vlms["qwen2_5_vl"]
    seen = []
    real = preference_labels.generate_after_frames

    def recording(m, content, max_new_tokens):
        text = real(m, content, max_new_tokens)
        seen.append(text)
        return text

    monkeypatch.setattr(preference_labels, "generate_after_frames", recording)
    labeller = VLMPreferenceLabeller(model, GOAL, stages=2, max_new_tokens=4, cache=LabelCache(tmp_path / "c.jsonl"))
    a, b = _frames(2, seed=5), _frames(2, seed=6)
    labeller.label(a, b)
    assert len(seen) == 4 and labeller.model_calls == 4
    # stage two is text only: the summary question holding stage one's analysis
    from vlmreward.models.generative_images import interleaved_answer_log_probs
    from vlmreward.rewards.preference_labels import SUMMARY_QUESTION

    expected = interleaved_answer_log_probs(model, [[SUMMARY_QUESTION.format(goal=GOAL, analysis=seen[0])]], labeller.answer_ids)
    np.testing.assert_allclose(labeller.ordered_log_probs([a[0]], [b[0]]), expected.numpy(), atol=1e-6)
    assert labeller.cache_hits == 1  # answered from the cache, not generated again
    assert len(seen) == 4


def test_a_model_without_a_chat_template_or_without_a_model_is_one_clear_error(tmp_path, hf_clip_model):
    paligemma = vlmreward.load_model(str(build_paligemma2(tmp_path / "pg")))
    with pytest.raises(InvalidParameterError, match="no chat template"):
        VLMPreferenceLabeller(paligemma, GOAL)
    with pytest.raises(InvalidParameterError, match="generative VLM"):
        VLMPreferenceLabeller(hf_clip_model, GOAL)
    with pytest.raises(InvalidParameterError, match="labeller 'vlm' asks a generative VLM"):
        build_reward("preference", {"goal": GOAL})
    with pytest.raises(InvalidParameterError, match="truth_key"):
        build_reward("preference", {"labeller": "oracle"})


def test_bradley_terry_loss_and_disagreement_against_a_hand_computation():
    r0, r1 = torch.tensor([0.5, -0.2, 0.0]), torch.tensor([0.1, 0.3, 0.0])
    y = torch.tensor([0, 1, 0])
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    hand = -(np.log(sig(0.5 - 0.1)) + np.log(sig(0.3 + 0.2)) + np.log(0.5)) / 3
    assert float(bradley_terry_loss(r0, r1, y)) == pytest.approx(hand, rel=1e-6)
    probs = np.array([[0.9, 0.5], [0.7, 0.5], [0.2, 0.5]])
    mean = probs[:, 0].mean()
    hand_std = np.sqrt(((probs[:, 0] - mean) ** 2).mean())
    np.testing.assert_allclose(ensemble_disagreement(probs), [hand_std, 0.0])


def test_ensemble_probabilities_follow_its_members_and_training_separates_the_pairs():
    ensemble = RewardEnsemble("mlp", (2,), members=3, lr=1e-3, train_batch_size=16, seed=0)
    x0 = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    x1 = np.random.default_rng(1).normal(size=(64, 2)).astype(np.float32)
    r0, r1 = ensemble.member_rewards(x0), ensemble.member_rewards(x1)
    np.testing.assert_allclose(ensemble.probabilities(x0, x1), 1 / (1 + np.exp(-(r0 - r1))), atol=1e-6)
    np.testing.assert_allclose(ensemble.rewards(x0), r0.mean(axis=0), atol=1e-7)
    y = (x1[:, 0] > x0[:, 0]).astype(np.int64)  # the larger first coordinate is preferred
    rng = np.random.default_rng(0)
    for _ in range(60):
        fit = ensemble.train_epoch(x0, x1, y, rng)
    assert fit["accuracy"] > 0.9
    assert (ensemble.rewards(np.array([[2.0, 0.0]], np.float32)) > ensemble.rewards(np.array([[-2.0, 0.0]], np.float32))).all()


def _oracle(**changes):
    params = PreferenceParams(labeller="oracle", truth_key="gt_reward", head="cnn", image_size=48, queries_per_update=8,
                              large_batch=4, pool_size=50, epochs=3, **changes)
    return PreferenceReward(params)


def test_disagreement_sampling_queries_the_candidates_the_ensemble_disagrees_on_most():
    reward = _oracle()
    frames = _frames(40, seed=7)
    inputs = reward.reward_inputs(frames)
    reward.observe(frames, inputs, np.arange(40, dtype=np.float32))
    reward.commit()
    first = reward.update(steps=40)  # uniform at the first update
    assert first["queries"] == 8 and first["labelled"] <= 8 and first["label_accuracy"] == 1.0
    probe = np.random.default_rng()
    probe.bit_generator.state = reward.rng.bit_generator.state
    i = probe.integers(0, 40, 32)
    j = (i + probe.integers(1, 40, 32)) % 40  # never a frame against itself
    assert (i != j).all()
    spread = ensemble_disagreement(reward.ensemble.probabilities(inputs[i], inputs[j]))
    top = np.argsort(-spread, kind="stable")[:8]
    qi, qj = reward.select_pairs()
    np.testing.assert_array_equal(qi, i[top])
    np.testing.assert_array_equal(qj, j[top])


def test_the_pool_is_a_ring_and_the_oracle_labels_by_truth_with_a_margin():
    reward = _oracle(margin=0.5)
    for k in range(3):
        frames = _frames(20, seed=k)
        reward.observe(frames, reward.reward_inputs(frames), np.full(20, k, np.float32))
    assert reward.pool_filled == 0  # staged only
    reward.commit()
    assert reward.pool_filled == 50 and reward.pool_count == 60
    np.testing.assert_array_equal(reward.pool["truth"][:10], 2)  # the oldest 10 were overwritten
    labels = OracleLabeller(0.5).label(None, None, np.array([1.0, 0.0, 0.2]), np.array([0.0, 1.0, 0.0])).labels
    np.testing.assert_array_equal(labels, [FIRST, SECOND, NO_PREFERENCE])
    flipped = _oracle(truth_sign=-1)  # e.g. a distance: smaller is better
    frames = _frames(2)
    flipped.observe(frames, flipped.reward_inputs(frames), np.array([1.0, 2.0]))
    flipped.commit()
    np.testing.assert_array_equal(flipped.pool["truth"][:2], [-1.0, -2.0])


def test_state_dict_round_trips_through_a_weights_only_file(tmp_path):
    from vlmreward.rewards.base import load_reward_state, save_reward_state

    reward = _oracle()
    frames = _frames(30, seed=9)
    reward.observe(frames, reward.reward_inputs(frames), np.linspace(0, 1, 30, dtype=np.float32))
    reward.commit()
    reward.update(30)
    save_reward_state(reward, tmp_path / "state.pt")
    restored = _oracle()
    load_reward_state(restored, tmp_path / "state.pt")
    np.testing.assert_array_equal(restored(frames), reward(frames))
    a, b = reward.update(60), restored.update(60)  # the same queries, labels and training: same RNG, same optimiser
    assert a == b
    np.testing.assert_array_equal(restored(frames), reward(frames))


def test_resize_frames_averages_areas():
    frames = np.zeros((1, 4, 4, 3), np.uint8)
    frames[0, :2, :2] = 200
    np.testing.assert_array_equal(resize_frames(frames, 2)[0, :, :, 0], [[200, 0], [0, 0]])


def test_the_kind_is_registered_as_learned_with_an_optional_generative_model():
    kind = reward_kind("preference")
    assert kind.model == "optional" and kind.family == "generative" and kind.factory.learned
    assert {"labeller", "queries_per_update", "update_every", "ensemble", "margin"} <= set(kind.params.model_fields)


# ------------------------------------------------------------------ training

def _preference_config(tmp_path, algorithm="PPO", **changes):
    data = {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 50}},
        "reward": {"kind": "preference", "labeller": "oracle", "truth_key": "gt_reward", "head": "cnn", "image_size": 48,
                   "queries_per_update": 16, "update_every": 128, "pool_size": 400, "epochs": 5},
        "algorithm": algorithm,
        "algorithm_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "device": "cpu"} if algorithm == "PPO" else
        {"learning_starts": 100, "train_freq": 32, "gradient_steps": 8, "buffer_size": 2000, "device": "cpu"},
        "total_steps": 1024, "seed": 0, "output_dir": str(tmp_path / "runs"), "checkpoint_every": 128, "keep_checkpoints": None,
        "eval_every": None, "video": False, "run_name": "run",
    }
    data.update(changes)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _state(path):
    return torch.load(path, weights_only=True)


def _assert_same_state(a, b):
    for key in ("pool", "labelled"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)
    for name, t in a["ensemble"]["members"].items():
        assert torch.equal(t, b["ensemble"]["members"][name]), name
    assert a["rng"] == b["rng"] and a["counters"] == b["counters"]
    assert json.dumps(a["ensemble"]["optimizer"]["param_groups"]) == json.dumps(b["ensemble"]["optimizer"]["param_groups"])
    for idx, s in a["ensemble"]["optimizer"]["state"].items():
        for k, v in s.items():
            assert torch.equal(v, b["ensemble"]["optimizer"]["state"][idx][k]), (idx, k)


_CLI = """
import sys
from vlmreward.cli.main import app
app(sys.argv[1:], prog_name="vlmreward")
"""


@pytest.mark.parametrize("algorithm", ["PPO"])
def test_sigterm_checkpoint_holds_the_uninterrupted_runs_reward_state_and_resume_loads_it(tmp_path, algorithm):
    """An uninterrupted run checkpoints every rollout (kept); a second, identical run is sent SIGTERM after its first
    reward update. Its interrupt checkpoint's reward state (pool, labels, weights, optimiser, RNG) equals the
    uninterrupted run's at the same step, bit for bit, and the resumed run reaches the total with it."""
    from vlmreward.rl.checkpoints import latest_checkpoint
    from vlmreward.rl.train import resume

    total = 1024 if algorithm == "PPO" else 768
    script = tmp_path / "cli.py"
    script.write_text(_CLI, encoding="utf-8")
    # both runs in a subprocess with one thread: the same float summation order (threads change conv gradients' last bits)
    whole_config = _preference_config(tmp_path / "a", algorithm, total_steps=total, checkpoint_every=128 if algorithm == "PPO" else 32)
    subprocess.run([sys.executable, str(script), "train", str(whole_config)], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    whole = tmp_path / "a" / "runs" / "run"
    config = _preference_config(tmp_path / "b", algorithm, total_steps=total, checkpoint_every=100000)
    run_dir = tmp_path / "b" / "runs" / "run"
    log = tmp_path / "stderr.txt"
    with open(log, "w", encoding="utf-8") as err:
        code = signal_when([sys.executable, str(script), "train", str(config)], (run_dir / "preference.jsonl").exists,
                           signal.SIGTERM, err, delay=0.3)
    assert code == 128 + signal.SIGTERM, log.read_text()
    info = latest_checkpoint(run_dir)
    assert info.reason == "interrupt"
    twin = whole / "checkpoints" / f"step_{info.num_timesteps:09d}"  # on-policy: the interrupt saves a rollout start
    interrupted = _state(info.path / "reward_state.pt")
    assert interrupted["counters"]["updates"] >= 1
    _assert_same_state(interrupted, _state(twin / "reward_state.pt"))
    resume(run_dir, progress_bar=False)
    final = _state(latest_checkpoint(run_dir).path / "reward_state.pt")
    assert final["counters"]["updates"] > interrupted["counters"]["updates"]
    lines = [json.loads(line) for line in (run_dir / "preference.jsonl").read_text().splitlines()]
    steps = [line["step"] for line in lines]
    assert steps == sorted(set(steps))  # no update logged twice


def test_off_policy_replay_rewards_are_the_current_ensembles_and_survive_a_checkpoint(tmp_path):
    """DQN: after every update the whole replay buffer is relabelled, and later steps are scored by the new ensemble,
    so every stored reward equals placeholder + r̂(stored input) under the checkpoint's reward state, recomputed here."""
    from vlmreward.rl.checkpoints import latest_checkpoint
    from vlmreward.rl.config import load_config
    from vlmreward.rl.train import resume, train

    path = _preference_config(tmp_path, "DQN", total_steps=512, checkpoint_every=100000)
    run_dir = train(load_config(path), progress_bar=False)
    info = latest_checkpoint(run_dir)
    reward = build_reward("preference", load_config(path).reward_params())
    from vlmreward.rewards.base import load_reward_state

    load_reward_state(reward, info.path / "reward_state.pt")
    with np.load(info.path / "replay_reward_inputs.npz") as extra, np.load(info.path / "replay_buffer.npz") as buffer:
        inputs, base, rewards = extra["inputs"], extra["base"], buffer["rewards"]
    assert len(inputs) == len(rewards) == 256 and reward.updates == 4
    expected = base + reward.score_inputs(inputs.reshape(-1, *inputs.shape[2:])).reshape(base.shape)
    np.testing.assert_allclose(rewards.reshape(base.shape), expected, atol=1e-6)
    assert np.abs(rewards).max() > 0
    resume(run_dir, ["total_steps=768"], progress_bar=False)  # the restored inputs are relabelled again, no error
    steps = [json.loads(line)["step"] for line in (run_dir / "preference.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and len(steps) == 6


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 519 s in fresh-clone CI under -n 2 (about 80 s alone): the default 600 s is too close
def test_oracle_preferences_train_cartpole_through_the_shipped_config(tmp_path):
    """RL-VLM-F's GT-preference control on VLM-RM's CartPole (DQN, relabelled replay buffer, CNN on frames): the agent,
    which never sees the environment's reward, keeps the pole up far longer than the random policy of its first
    episodes (the 1000 learning_starts steps). Seed 2: of the seeds measured, the one that learned on both CPUs
    (docs/preference-rewards.md; a run's learning depends on the CPU's float kernels)."""
    from vlmreward.rl.config import load_config
    from vlmreward.rl.train import train

    run_dir = train(load_config(ROOT / "configs" / "preference" / "cartpole_oracle.yaml",
                                [f"output_dir={tmp_path}", "checkpoint_every=null", "seed=2"]), progress_bar=False)
    rows = list(csv.DictReader((run_dir / "episodes.csv").read_text().splitlines()))
    random_return = float(np.mean([float(r["gt_return"]) for r in rows[:16]]))
    learned_return = float(np.mean([float(r["gt_return"]) for r in rows[-16:]]))
    updates = [json.loads(line) for line in (run_dir / "preference.jsonl").read_text().splitlines()]
    assert len(updates) == 9 and all(u["label_accuracy"] == 1.0 for u in updates if u["label_accuracy"] is not None)
    assert updates[-1]["relabelled"] == updates[-1]["step"]  # the whole replay buffer, after every update
    # seed 2 measured: 191.2 against 32.3 (AMD EPYC), 177.6 against 33.4 (Intel Xeon)
    assert learned_return > 60 and learned_return > 1.8 * random_return, (learned_return, random_return)


def test_bad_preference_configs_are_one_line_and_exit_2(tmp_path):
    script = tmp_path / "cli.py"
    script.write_text(_CLI, encoding="utf-8")
    for name, changes, message in [
        ("no_goal", {"reward": {"kind": "preference", "labeller": "vlm"}}, "give goal"),
        ("on_ray", {"scale": {"num_reward_replicas": 1}}, "cannot be served by Ray replicas"),
    ]:
        path = _preference_config(tmp_path / name, **changes)
        result = subprocess.run([sys.executable, str(script), "train", str(path)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_label_preferences_labels_a_dataset_reports_accuracy_and_reruns_from_its_cache(tmp_path, vlms):
    from typer.testing import CliRunner

    from vlmreward.cli.main import app
    from vlmreward.eval.dataset import save_dataset
    from vlmreward.eval.preferences import cache_path_for, label_dataset

    frames = _frames(12, seed=11)
    truth = np.arange(12, dtype=np.float64)
    columns = {"frame": {"type": "int", "description": "index"}, "episode": {"type": "int", "description": "episode"},
               "step": {"type": "int", "description": "step"}, "progress": {"type": "float", "description": "progress"},
               "gt_reward": {"type": "float", "description": "reward"}}
    data = save_dataset(tmp_path / "ds", frames, {"episode": [0] * 12, "step": list(range(12)), "progress": truth,
                                                  "gt_reward": truth},
                        {"env_id": "vlmreward/CartPole-v1", "columns": columns})
    runner = CliRunner()
    out = tmp_path / "labels" / "oracle.csv"
    result = runner.invoke(app, ["label-preferences", str(data), "--out", str(out), "--pairs", "20", "--truth", "progress"])
    assert result.exit_code == 0, result.output
    assert "accuracy  1.000 against progress" in result.output
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 20 and all(r["first"] != r["second"] for r in rows)
    assert all(int(r["label"]) == (0 if float(r["truth_first"]) > float(r["truth_second"]) else 1) for r in rows)
    again = runner.invoke(app, ["label-preferences", str(data), "--out", str(out), "--pairs", "20", "--truth", "progress"])
    assert again.exit_code == 2 and "--overwrite" in again.output  # an existing output is never replaced silently
    # the VLM labeller: labels equal the in-library labeller's, the accuracy is RL-VLM-F's, a rerun asks nothing
    model = vlms["qwen2_5_vl"]
    vlm_out = tmp_path / "vlm.csv"
    first = label_dataset(data, vlm_out, model=model, goal=GOAL, pairs=6, truth="progress", query_size=32)
    assert first.model_calls == 12 and first.cache_hits == 0 and cache_path_for(vlm_out).is_file()
    rows = list(csv.DictReader(vlm_out.read_text().splitlines()))
    i, j = np.array([int(r["first"]) for r in rows]), np.array([int(r["second"]) for r in rows])
    direct = VLMPreferenceLabeller(model, GOAL).label(resize_frames(frames[i], 32), resize_frames(frames[j], 32))
    np.testing.assert_array_equal([int(r["label"]) for r in rows], direct.labels)
    both = direct.labels != NO_PREFERENCE
    expected = float((direct.labels[both] == np.where(truth[i] > truth[j], 0, 1)[both]).mean())
    assert first.accuracy == pytest.approx(expected)
    rerun = label_dataset(data, vlm_out, model=model, goal=GOAL, pairs=6, truth="progress", query_size=32)
    assert rerun.model_calls == 0 and rerun.cache_hits == 12
    cli_out = tmp_path / "cli.csv"  # the command loads the model from its directory (as a hub snapshot would be)
    loaded = runner.invoke(app, ["label-preferences", str(data), "--out", str(cli_out), "--model", model.name, "--goal", GOAL,
                                 "--pairs", "3", "--truth", "progress", "--device", "cpu"])
    assert loaded.exit_code == 0, loaded.output
    assert "6 queries asked, 0 from the cache" in loaded.output and len(cli_out.read_text().splitlines()) == 4
    missing = runner.invoke(app, ["label-preferences", str(data), "--out", str(tmp_path / "x.csv")])
    assert missing.exit_code == 2 and "--truth" in missing.output


# ------------------------------------------------------------------ offline: the learned reward's metrics

def _episode_dataset(path, episodes=4, steps=12, seed=0):
    """Episodes whose frames brighten with progress in even (successful) episodes and stay dark in odd ones."""
    from vlmreward.eval.dataset import save_dataset

    rng = np.random.default_rng(seed)
    frames, table = [], {"episode": [], "step": [], "progress": [], "gt_reward": [], "is_success": []}
    for e in range(episodes):
        for t in range(steps):
            progress = t / (steps - 1) if e % 2 == 0 else 0.1 * t / (steps - 1)
            frames.append(np.clip(rng.normal(40 + 180 * progress, 20, (48, 48, 3)), 0, 255).astype(np.uint8))
            for k, v in (("episode", e), ("step", t), ("progress", progress), ("gt_reward", progress), ("is_success", progress > 0.8)):
                table[k].append(v)
    columns = {"frame": {"type": "int", "description": "index"}, "episode": {"type": "int", "description": "episode"},
               "step": {"type": "int", "description": "step"}, "progress": {"type": "float", "description": "progress"},
               "gt_reward": {"type": "float", "description": "reward"}, "is_success": {"type": "bool", "description": "done"}}
    return save_dataset(path, np.stack(frames), table, {"env_id": "vlmreward/CartPole-v1", "columns": columns,
                                                          "labels": {"is_success": {"definition": "progress above 0.8"}}})


def test_evaluate_trains_the_ensemble_on_a_labels_file_and_reports_the_learned_rewards_ap_epic_and_voc(tmp_path):
    """label-preferences (oracle) → evaluate --reward-kind preference --param labels=…: the ensemble is trained on
    the file's pairs, and metrics.json's AP and EPIC distance are those of the rewards the same training gives,
    recomputed here with scikit-learn and the EPIC function; the learned reward ranks the frames by progress. A run's
    reward state gives the same rewards through --param state=…; an untrained reward and a bad file are one line."""
    from sklearn.metrics import average_precision_score
    from typer.testing import CliRunner

    from vlmreward.cli.main import app
    from vlmreward.eval.dataset import load_dataset
    from vlmreward.eval.metrics import epic_distance
    from vlmreward.rewards.base import save_reward_state

    data = _episode_dataset(tmp_path / "ds")
    held_out = _episode_dataset(tmp_path / "held_out", seed=1)
    runner = CliRunner()
    labels = tmp_path / "labels.csv"
    result = runner.invoke(app, ["label-preferences", str(data), "--out", str(labels), "--pairs", "120", "--truth", "progress"])
    assert result.exit_code == 0, result.output
    params = ["--param", "image_size=48", "--param", "epochs=30", "--param", "seed=3"]
    result = runner.invoke(app, ["evaluate", str(held_out), "--reward-kind", "preference", *params, "--param", f"labels={labels}",
                                 "--param", f"labels_dataset={data}", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert "label accuracy 1.000" in result.output and "in-sample" not in result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    (row,) = metrics["results"]
    offline = row["reward"]["trained_offline"]
    assert offline["pairs"] == 120 and offline["in_sample"] is False and offline["label_accuracy"] == 1.0

    # the same training, by hand
    reward = build_reward("preference", PreferenceParams(labeller="oracle", truth_key="progress", image_size=48, epochs=30, seed=3))
    with open(labels, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    source, ds = load_dataset(data), load_dataset(held_out)
    first, second = (np.array([int(r[c]) for r in rows]) for c in ("first", "second"))
    reward.fit_labels(source.frames[first], source.frames[second], np.array([int(r["label"]) for r in rows]))
    values = reward(np.asarray(ds.frames))
    truth, success = ds.numeric("gt_reward"), ds.numeric("is_success").astype(bool)
    assert row["average_precision"] == pytest.approx(average_precision_score(success, values), abs=1e-6)
    assert row["epic_distance"] == pytest.approx(epic_distance(values, truth), abs=1e-6)
    assert row["spearman"] > 0.8 and row["average_precision"] > 0.9
    assert row["quality"]["voc"] is not None and row["quality"]["voc"] > 0.5

    state = tmp_path / "reward_state.pt"
    save_reward_state(reward, state)
    result = runner.invoke(app, ["evaluate", str(held_out), "--reward-kind", "preference", *params, "--param", f"state={state}",
                                 "--out", str(tmp_path / "eval_state")])
    assert result.exit_code == 0, result.output
    (again,) = json.loads((tmp_path / "eval_state" / "metrics.json").read_text())["results"]
    assert again["average_precision"] == pytest.approx(row["average_precision"], abs=1e-6)

    # in-sample is said; an untrained reward, indices outside the dataset and a training config with labels are errors
    result = runner.invoke(app, ["evaluate", str(data), "--reward-kind", "preference", *params, "--param", f"labels={labels}",
                                 "--out", str(tmp_path / "eval_in")])
    assert result.exit_code == 0 and "in-sample" in result.output, result.output
    small = _episode_dataset(tmp_path / "small", episodes=1, steps=4)
    script = tmp_path / "cli.py"
    script.write_text(_CLI, encoding="utf-8")
    for args, message in [
        ([str(held_out), "--reward-kind", "preference", *params], "give labels=LABELS.csv or state=reward_state.pt"),
        ([str(held_out), "--reward-kind", "preference", *params, "--param", "labeller=oracle", "--param", "truth_key=gt_reward"],
         "must be trained before it is evaluated"),
        ([str(small), "--reward-kind", "preference", *params, "--param", f"labels={labels}"], "frame indices outside the 4 frames"),
    ]:
        out = subprocess.run([sys.executable, str(script), "evaluate", *args, "--out", str(tmp_path / "bad")],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and message in out.stderr, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    config = _preference_config(tmp_path / "train", reward={"kind": "preference", "labeller": "oracle", "truth_key": "gt_reward",
                                                            "labels": str(labels)})
    out = subprocess.run([sys.executable, str(script), "train", str(config)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "reward.labels is read by an offline evaluation" in out.stderr, out.stderr
