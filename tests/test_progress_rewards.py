"""Progress and value rewards over episode prefixes: token_progress (TOPReward), generative_value (GVL),
progress_info_oracle, on tiny random-weight Qwen2.5-VL and Qwen3-VL models (vlmreward.models.testing_vlms:
real configs, processors with video processors, tokenizers and chat templates).

The reference for token_progress is written here, independent of vlmreward.models.generative_video:
per prefix, the chat text built by hand from the processor's template, the processor on that one
video, a plain forward with every position's logits, and the log-softmax of the answer's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlmreward
from vlmreward.envs.clips import ClipAssembler
from vlmreward.errors import InvalidParameterError
from vlmreward.models.testing_vlms import build_paligemma2, build_qwen2_5_vl, build_qwen3_vl
from vlmreward.rewards.progress import (
    DEFAULT_PROMPT,
    DEFAULT_PROMPT_PREFIX,
    TokenProgressReward,
    anchor_lengths,
    anchored_curve,
    min_max_normalize,
    prefix_frame_indices,
)
from vlmreward.rewards.registry import build_reward
from vlmreward.rewards.value import GenerativeValueReward, parse_completions, shuffled_order, unshuffle
from vlmreward.rewards.video import clip_step_rewards

VIDEO_ARCHITECTURES = {"qwen2_5_vl": build_qwen2_5_vl, "qwen3_vl": build_qwen3_vl}
TASK = "a pole upright"


@pytest.fixture(scope="module")
def video_vlms(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_vlms")
    return {name: vlmreward.load_model(str(build(root / name))) for name, build in VIDEO_ARCHITECTURES.items()}


def _episode(n, seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)


def _reference_log_p(model, frames, instruction, fps=2.0):
    """One prefix: the text by hand, the processor on one video, all logits, the answer tokens' log-probs."""
    processor, network, tok = model.processor, model.model, model.tokenizer
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": DEFAULT_PROMPT_PREFIX}]}]
    chat = processor.apply_chat_template(messages, add_generation_prompt=False, tokenize=False)
    chat = chat[: chat.rindex(tok.eos_token)]
    head = chat + DEFAULT_PROMPT.format(instruction=instruction)
    text = head + " True"
    n_answer = len(tok.encode(text, add_special_tokens=False)) - len(tok.encode(head, add_special_tokens=False))
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    inputs = processor(text=[text], videos=[video], return_tensors="pt", do_sample_frames=False,
                       video_metadata=[{"total_num_frames": len(frames), "fps": fps, "frames_indices": list(range(len(frames)))}])
    with torch.no_grad():
        logits = network(**inputs).logits[0].float()
    ids = inputs["input_ids"][0]
    log_probs = torch.log_softmax(logits, dim=-1)
    n = len(ids)
    return float(sum(log_probs[p - 1, ids[p]] for p in range(n - n_answer, n)))


@pytest.mark.parametrize("arch", sorted(VIDEO_ARCHITECTURES))
def test_token_progress_equals_a_per_prefix_forward(video_vlms, arch):
    """Every step's reward (the prefix sampled to max_frames, batched with other prefixes, left-padded)
    equals the per-prefix reference to 1e-5; the answer "True" is several tokens of the tiny tokenizer,
    so the sum over its tokens is exercised."""
    model = video_vlms[arch]
    reward = build_reward("token_progress", {"goal": TASK, "max_frames": 4}, model=model)
    frames = _episode(7)
    got = reward.step_rewards(frames)  # every prefix, as the wrappers pay them
    assert reward.answer_tokens[0] > 1
    expected = [_reference_log_p(model, frames[: t + 1][prefix_frame_indices(t + 1, 4)], TASK) for t in range(7)]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.all(got < 0) and len(set(np.round(got, 4))) > 1


def test_prefix_sampling_anchors_and_normalisation():
    assert prefix_frame_indices(1, 16).tolist() == [0, 0]
    assert prefix_frame_indices(5, 16).tolist() == [0, 1, 2, 3, 4]
    assert prefix_frame_indices(31, 4).tolist() == [0, 10, 20, 30]
    assert anchor_lengths(100, 15).tolist() == sorted(set(np.rint(np.linspace(1, 100, 15)).astype(int).tolist()))
    assert anchor_lengths(5, 15).tolist() == [1, 2, 3, 4, 5] and anchor_lengths(5, None).tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(min_max_normalize([-3.0, -1.0, -2.0]), [0.0, 1.0, 0.5])
    assert min_max_normalize([2.0, 2.0]).tolist() == [1.0, 1.0] and min_max_normalize([5.0]).tolist() == [1.0]
    curve = anchored_curve(np.array([1, 3, 5]), np.array([0.0, 2.0, 4.0]), 5, normalize=False)
    np.testing.assert_allclose(curve, [0, 1, 2, 3, 4])
    with pytest.raises(InvalidParameterError, match="max_frames must be at least 2"):
        prefix_frame_indices(3, 1)


def test_offline_scoring_scores_anchors_and_interpolates(video_vlms):
    """reward(frames) scores the anchor prefixes only, normalises per episode and interpolates: the
    same numbers as scoring those prefixes one by one and np.interp."""
    model = video_vlms["qwen2_5_vl"]
    reward = TokenProgressReward(model, TASK, max_frames=3, anchors=4, normalize=True)
    frames = _episode(10, seed=1)
    lengths = anchor_lengths(10, 4)
    raw = reward.score_clips([frames[: m][prefix_frame_indices(m, 3)] for m in lengths]).astype(np.float64)
    expected = np.interp(np.arange(1, 11), lengths, (raw - raw.min()) / (raw.max() - raw.min()))
    np.testing.assert_allclose(reward(frames), expected, atol=1e-6)
    assert lengths.tolist() == [1, 4, 7, 10]
    assert reward(frames).min() == 0.0 and reward(frames).max() == 1.0


def test_online_prefix_clips_equal_the_per_episode_computation(video_vlms):
    """The assembler hands over, at every step, the episode so far reduced to max_frames; scored in one
    batch across sub-environments and steps they give the per-episode computation's rewards."""
    model = video_vlms["qwen3_vl"]
    reward = TokenProgressReward(model, TASK, max_frames=3, batch_size=16)
    a, b = _episode(5, seed=2), _episode(3, seed=3)
    assembler = ClipAssembler(reward, 2)
    clips, slots = [], []
    for t in range(5):
        due = assembler.add([a[t], b[min(t, 2)]], [t == 4, t == 2])
        if t > 2:
            due.clips, due.slots = due.clips[:1], due.slots[:1]  # b ended at t = 2; its next episode is not scored here
        clips += due.clips
        slots += due.slots
    assert [len(c) for c in clips[:2]] == [2, 2]  # one-frame prefixes are the frame twice
    scores = reward.score_clips(clips)
    got_a = [s for s, slot in zip(scores, slots) if slot == 0]
    got_b = [s for s, slot in zip(scores, slots) if slot == 1][:3]
    np.testing.assert_allclose(got_a, clip_step_rewards(reward, a), atol=1e-5)
    np.testing.assert_allclose(got_b, clip_step_rewards(reward, b), atol=1e-5)


def test_success_threshold_makes_a_success_detector(video_vlms):
    model = video_vlms["qwen2_5_vl"]
    frames = _episode(4, seed=4)
    raw = TokenProgressReward(model, TASK, max_frames=2).step_rewards(frames)
    threshold = float(np.median(raw))
    binary = TokenProgressReward(model, TASK, max_frames=2, success_threshold=threshold).step_rewards(frames)
    np.testing.assert_array_equal(binary, (raw > threshold).astype(np.float32))


def test_bad_inputs_are_one_clear_error(video_vlms, tmp_path):
    model = video_vlms["qwen2_5_vl"]
    paligemma = vlmreward.load_model(str(build_paligemma2(tmp_path / "pg")))
    with pytest.raises(InvalidParameterError, match=r"takes no video input here; use a Qwen2-VL"):
        build_reward("token_progress", {"goal": TASK}, model=paligemma)
    with pytest.raises(InvalidParameterError, match=r"must contain \{instruction\}"):
        build_reward("token_progress", {"goal": TASK, "prompt": "Is it done? The answer is:"}, model=model)
    with pytest.raises(InvalidParameterError, match="max_frames"):
        build_reward("token_progress", {"goal": TASK, "max_frames": 1}, model=model)
    with pytest.raises(InvalidParameterError, match="goal: required key is missing"):
        build_reward("token_progress", {}, model=model)
    with pytest.raises(InvalidParameterError, match=r"must contain \{instruction\}"):
        build_reward("generative_value", {"goal": TASK, "prompt": "no placeholder"}, model=model)


# ---------------------------------------------------------------- GVL
def test_gvl_unshuffles_a_hand_worked_permutation():
    """Five frames shown in the order [3, 0, 4, 1, 2]: the answer for shown frame j belongs to frame order[j]."""
    order = np.array([3, 0, 4, 1, 2])
    text = ("Frame 1: Task Completion Percentage: 75%\nFrame 2: Task Completion Percentage: 0%\n"
            "Frame 3: the arm is done, Task Completion Percentage: 100 %\nFrame 4: 25%\nFrame 5: Task Completion Percentage: 50.5%")
    shown = parse_completions(text, 5)
    np.testing.assert_array_equal(shown, [75, 0, 100, 25, 50.5])
    np.testing.assert_array_equal(unshuffle(shown, order), [0, 25, 50.5, 75, 100])
    assert np.isnan(parse_completions("Frame 1: 10%\nFrame 3: no idea\nFrame 9: 40%", 3)).tolist() == [False, True, True]
    assert parse_completions("Frame 2: 140%", 2)[1] == 100.0
    order = shuffled_order(6, seed=0)
    assert sorted(order.tolist()) == list(range(6)) and order.tolist() != list(range(6))


@pytest.mark.parametrize("arch", sorted(VIDEO_ARCHITECTURES))
def test_gvl_on_a_tiny_model_counts_the_answers_it_cannot_parse(video_vlms, arch):
    """A random-weight model answers gibberish: every frame is counted unparsed and reported in describe(),
    the episode counted as without an answer, the rewards 0, not NaN."""
    model = video_vlms[arch]
    reward = GenerativeValueReward(model, TASK, max_frames=3, max_new_tokens=6)
    values = reward(_episode(5, seed=5, size=(56, 56)))
    assert values.shape == (5,) and np.all(np.isfinite(values))
    parse = reward.describe()["parse"]
    assert parse["answers"] == 1 and parse["frames_asked"] == 3
    assert parse["frames_parsed"] + parse["frames_unparsed"] == 3
    if parse["frames_parsed"] == 0:
        assert parse["episodes_without_answer"] == 1 and not values.any()


@pytest.mark.parametrize("arch", sorted(VIDEO_ARCHITECTURES))
def test_gvl_reads_the_answer_it_is_given_back_in_time_order(video_vlms, arch, monkeypatch):
    """The generated text is put back in time order through the real prompt and shuffle: the answer for
    each shown frame names which frame it was shown, so the unshuffled values must be increasing."""
    import vlmreward.rewards.value as value

    model = video_vlms[arch]
    reward = GenerativeValueReward(model, TASK, max_frames=4, seed=3)
    prompts = []

    def answer(model_, content, max_new_tokens):
        prompts.append(content)
        order = shuffled_order(4, 3)
        return "\n".join(f"Frame {j + 1}: Task Completion Percentage: {25 * order[j]}%" for j in range(4))

    monkeypatch.setattr(value, "generate_after_frames", answer)
    frames = _episode(10, seed=6)
    got = reward(frames)
    np.testing.assert_allclose(got[[0, 3, 6, 9]], [0.0, 0.25, 0.5, 0.75], atol=1e-6)
    assert np.all(np.diff(got) >= 0) and reward.describe()["parse"]["frames_parsed"] == 4
    shown = [c for c in prompts[0] if isinstance(c, np.ndarray)]
    assert len(shown) == 5  # the initial scene, then the 4 sampled frames in the shuffled order
    np.testing.assert_array_equal(shown[0], frames[0])
    sampled = [0, 3, 6, 9]
    for j, i in enumerate(shuffled_order(4, 3)):
        np.testing.assert_array_equal(shown[1 + j], frames[sampled[i]])


# ---------------------------------------------------------------- the oracle
def test_progress_oracle_reads_the_prefix_info():
    oracle = build_reward("progress_info_oracle", {"key": "d", "max_frames": 3})
    infos = [4.0, 3.0, 2.0, 1.0, 0.0]
    got = clip_step_rewards(oracle, np.zeros((5, 2, 2, 3), np.uint8), infos)
    np.testing.assert_allclose(got, [0.0, 0.25, 0.5, 0.75, 1.0])
    with pytest.raises(InvalidParameterError, match="missing or not a number"):
        clip_step_rewards(oracle, np.zeros((2, 2, 2, 3), np.uint8), [1.0, None])


def test_kinds_are_registered_with_their_declarations():
    from vlmreward.rewards.registry import reward_kind as get_reward_kind

    kind = get_reward_kind("token_progress")
    assert kind.mode == "prefix" and kind.family == "generative" and kind.display_name == "token progress"
    assert get_reward_kind("generative_value").mode == "prefix"
    assert get_reward_kind("progress_info_oracle").model == "none"
