"""Generative-VLM rewards (vqa, vqa_contrastive) on tiny random-weight models of each supported
architecture (vlmreward.models.testing_vlms: real configs, processors, tokenizers and chat templates,
written here with save_pretrained), loaded through vlmreward.load_model.

The reference computation is independent of vlmreward.models.generative: the model's own
processor on one frame at a time, a plain forward, the softmax of the last position's logits,
and the yes/no tokens found by decoding every vocabulary entry."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import vlmreward
from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.generative import GenerativeVLM
from vlmreward.models.testing_vlms import BUILDERS
from vlmreward.rewards.registry import build_reward
from vlmreward.rewards.vqa import DEFAULT_VQA_TEMPLATE, VQAContrastiveReward, VQAReward

ARCHITECTURES = sorted(BUILDERS)
GOAL = "a pole upright"


@pytest.fixture(scope="module")
def tiny_vlm_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_vlms")
    return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="module")
def tiny_vlms(tiny_vlm_dirs) -> dict[str, GenerativeVLM]:
    return {name: vlmreward.load_model(str(path)) for name, path in tiny_vlm_dirs.items()}


def _frames(sizes, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


MIXED_SIZES = [(48, 64), (64, 64), (40, 90)]


def _reference_p_yes(model: GenerativeVLM, frame: np.ndarray, question: str) -> float:
    """One frame, the processor as its documentation shows, a plain forward with all logits."""
    from PIL import Image

    processor, network = model.processor, model.model
    if processor.chat_template:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
    else:
        text = question
    image = Image.fromarray(frame)
    images = [[image]] if model.model_type in ("smolvlm", "idefics3") else [image]
    inputs = processor(text=[text], images=images, return_tensors="pt")
    inputs.pop("labels", None)
    with torch.no_grad():
        logits = network(**inputs).logits[0, -1].double()
    probs = torch.softmax(logits, dim=-1)
    vocab = range(len(processor.tokenizer))
    words = {i: processor.tokenizer.decode([i]).strip().lower() for i in vocab}
    p_yes = float(sum(probs[i] for i, w in words.items() if w == "yes"))
    p_no = float(sum(probs[i] for i, w in words.items() if w == "no"))
    return p_yes / (p_yes + p_no)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_vqa_reward_equals_an_independent_per_frame_computation(tiny_vlms, arch):
    model = tiny_vlms[arch]
    assert isinstance(model, GenerativeVLM) and model.model_type == arch
    frames = _frames(MIXED_SIZES)
    reward = build_reward("vqa", {"goal": GOAL}, model)
    question = DEFAULT_VQA_TEMPLATE.format(goal=GOAL)
    expected = np.array([_reference_p_yes(model, f, question) for f in frames])
    got = reward(frames)  # one batch, frames of three sizes, left-padded
    assert got.dtype == np.float32 and got.shape == (3,)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # the random models are not constant: the frames get different rewards
    assert np.ptp(expected) > 1e-6


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_yes_and_no_token_sets_are_every_single_token_spelling(tiny_vlms, arch):
    model = tiny_vlms[arch]
    reward = VQAReward(model, GOAL)
    tokenizer = model.processor.tokenizer
    decoded = {i: tokenizer.decode([i]).strip().lower() for i in range(len(tokenizer))}
    assert set(reward.yes_ids) == {i for i, w in decoded.items() if w == "yes"}
    assert set(reward.no_ids) == {i for i, w in decoded.items() if w == "no"}
    assert len(reward.yes_ids) >= 2  # "yes" and " yes" at least, in every tiny tokenizer


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "smolvlm"])
def test_left_and_right_padding_and_batch_sizes_give_the_unbatched_rewards(tiny_vlms, arch):
    model = tiny_vlms[arch]
    frames = _frames(MIXED_SIZES + [(32, 32), (72, 48)], seed=1)
    reward = VQAReward(model, GOAL, output="log_odds")
    one_by_one = np.concatenate([reward([f]) for f in frames])
    left = reward(frames, batch_size=5)
    try:
        model.padding_side = "right"
        right = reward(frames, batch_size=2)
    finally:
        model.padding_side = "left"
    np.testing.assert_allclose(left, one_by_one, atol=2e-4)
    np.testing.assert_allclose(right, one_by_one, atol=2e-4)


def test_outputs_threshold_goals_and_ensembles(tiny_vlms):
    model = tiny_vlms["qwen2_5_vl"]
    frames = np.stack(_frames([(48, 64)] * 4, seed=2))
    p = VQAReward(model, GOAL)(frames)
    odds = VQAReward(model, GOAL, output="log_odds")(frames)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-odds)), atol=1e-6)
    beta = float(np.median(p))
    np.testing.assert_array_equal(VQAReward(model, GOAL, threshold=beta)(frames), (p >= beta).astype(np.float32))
    # per-frame goals (goal-conditioned runs): each frame's own question
    other = "a fallen pole"
    per_frame = VQAReward(model)(frames, goals=[GOAL, other, GOAL, other])
    p_other = VQAReward(model, other)(frames)
    np.testing.assert_allclose(per_frame, [p[0], p_other[1], p[2], p_other[3]], atol=1e-5)
    # a prompt ensemble averages the probabilities
    np.testing.assert_allclose(VQAReward(model, [GOAL, other])(frames), (p + p_other) / 2, atol=1e-5)


def test_vqa_contrastive_is_a_softmax_over_the_log_odds(tiny_vlms):
    model = tiny_vlms["smolvlm"]
    frames = np.stack(_frames([(48, 64)] * 3, seed=3))
    negatives = ["a fallen pole", "an empty track"]
    reward = build_reward("vqa_contrastive", {"goal": GOAL, "negatives": negatives, "temperature": 0.5}, model)
    s = np.stack([VQAReward(model, g, output="log_odds")(frames) for g in [GOAL, *negatives]])  # [3 goals, 3 frames]
    expected = np.exp(s[0] / 0.5) / np.exp(s / 0.5).sum(axis=0)
    np.testing.assert_allclose(reward(frames), expected, atol=1e-5)


def test_vqa_contrastive_takes_each_goals_negatives_from_its_family(tiny_vlms):
    from vlmreward.goals import DEFAULT_GOAL_FAMILY, as_goal_family

    model = tiny_vlms["paligemma"]
    family = as_goal_family(DEFAULT_GOAL_FAMILY)
    goals = family.goals()[:2]
    reward = VQAContrastiveReward(model, family=family, family_negatives="k_sampled", k=2, seed=0)
    assert reward.goal_info_key == "goal"
    frames = np.stack(_frames([(40, 40)] * 2, seed=4))
    got = reward(frames, goals=goals)
    for i, goal in enumerate(goals):
        negatives = [n.sentence for n in family.negatives_for(goal, "k_sampled", 2, rng=0)]
        direct = VQAContrastiveReward(model, goal.sentence, negatives)(frames[i : i + 1])
        np.testing.assert_allclose(got[i], direct[0], atol=1e-5)
    with pytest.raises(InvalidParameterError, match="give one goal per frame; got 1 for 2 frames"):
        reward(frames, goals=goals[:1])


def test_bad_input_is_one_clear_error(tiny_vlms, hf_clip_model):
    model = tiny_vlms["qwen2_5_vl"]
    with pytest.raises(InvalidParameterError, match="asks a generative VLM .* is a HFModel"):
        build_reward("vqa", {"goal": GOAL}, hf_clip_model)
    with pytest.raises(InvalidParameterError, match="compares image and text embeddings .* use --reward-kind vqa"):
        build_reward("goal_baseline", {"goal": GOAL}, model)
    with pytest.raises(InvalidParameterError, match=r"template: .*must contain \{goal\} exactly once"):
        build_reward("vqa", {"goal": GOAL, "template": "Is the pole upright?"}, model)
    with pytest.raises(InvalidParameterError, match="no single-token spelling of the answer among 'zzyzx', 'Zzyzx'"):
        model.answer_token_ids(("zzyzx", "Zzyzx"))
    with pytest.raises(InvalidParameterError, match="runtime='onnx' exports the vision tower of a CLIP"):
        vlmreward.load_model(model.name, runtime="onnx")
    limit = model.max_sequence_length
    try:
        model.max_sequence_length = 40  # a small context: a 64 x 64 frame makes more tokens
        with pytest.raises(InvalidFramesError, match=r"frames of 64x64 px make \d+ tokens, more than the 40"):
            VQAReward(model, GOAL)(np.zeros((1, 64, 64, 3), np.uint8))
    finally:
        model.max_sequence_length = limit
    with pytest.raises(InvalidFramesError):
        VQAReward(model, GOAL)(np.zeros((1, 64, 64, 4), np.uint8))


def test_score_evaluate_and_train_with_a_vqa_reward(tiny_vlm_dirs, cartpole_frames, tmp_path, monkeypatch):
    """The issue's done-when: `vlmreward score ... --reward-kind vqa` on a tiny local Qwen2.5-VL,
    evaluate and sweep on a collected dataset, and a train config with reward kind vqa."""
    from typer.testing import CliRunner

    from vlmreward.cli.main import app
    from vlmreward.eval.collect import collect

    monkeypatch.setenv("VLMREWARD_CACHE_DIR", str(tmp_path / "cache"))
    qwen = str(tiny_vlm_dirs["qwen2_5_vl"])
    runner = CliRunner()
    frames_file = tmp_path / "frames.npy"
    np.save(frames_file, cartpole_frames[:4])
    result = runner.invoke(app, ["score", str(frames_file), "--model", qwen, "--reward-kind", "vqa", "--goal",
                                 "the pole is upright", "--out", str(tmp_path / "scores")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "scores" / "score.json").read_text())
    assert summary["reward"]["kind"] == "vqa" and summary["frames"] == 4
    model = vlmreward.load_model(qwen)
    expected = VQAReward(model, "the pole is upright")(cartpole_frames[:4])
    with open(tmp_path / "scores" / "rewards.csv", newline="") as f:
        got = np.array([float(row["reward"]) for row in csv.DictReader(f)])
    np.testing.assert_allclose(got, expected, atol=1e-5)

    data = collect("vlmreward/CartPole-v1", tmp_path / "sweep", "scripted", frames=8)
    result = runner.invoke(app, ["evaluate", str(data.path), "--model", qwen, "--reward-kind", "vqa", "--goal",
                                 "the pole is upright", "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["results"][0]["reward"]["kind"] == "vqa" and metrics["embedding_cache"]["hit"] is None
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(yaml.safe_dump({"upright": {"goal": "the pole is upright", "baseline": "a pole"}}))
    result = runner.invoke(app, ["sweep", str(data.path), "--model", qwen, "--prompts", str(prompts),
                                 "--reward-kind", "vqa", "--out", str(tmp_path / "sw")])
    assert result.exit_code == 0, result.output
    assert "generative VLM" in (tmp_path / "sw" / "sweep.json").read_text()

    from vlmreward.rl.train import train

    config = Path(__file__).resolve().parent.parent / "configs" / "generative" / "cartpole_vqa.yaml"
    run_dir = train(config, [
        f"model.name={qwen}", "model.device=cpu", "env.n_envs=1", "env.kwargs.episode_length=16", "total_steps=32",
        "score_batch_size=16", "algorithm_kwargs.learning_starts=8", "algorithm_kwargs.train_freq=8",
        "algorithm_kwargs.gradient_steps=1", "algorithm_kwargs.buffer_size=64", f"output_dir={tmp_path / 'runs'}",
        "checkpoint_every=null", "eval_every=null", "video=false", "log.tensorboard=false",
    ], progress_bar=False)
    assert (run_dir / "final_model.zip").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["reward"]["kind"] == "vqa" and saved["model"]["name"] == qwen
