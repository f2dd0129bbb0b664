"""Reward-quality metrics over episodes (VOC, policy ranking, instruction mismatch) against scipy.stats,
in `evaluate` (metrics.json, report.html, the console) for every reward kind, prefix kinds offline in
`evaluate` and `relabel`, and LeRobot's progress parquet."""

from __future__ import annotations

import json
import math
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import vlmreward  # noqa: E402
from vlmreward.cli.main import app  # noqa: E402
from vlmreward.eval import load_dataset  # noqa: E402
from vlmreward.eval.episodes import episode_rows  # noqa: E402
from vlmreward.eval.evaluation import score_dataset  # noqa: E402
from vlmreward.eval.progress_metrics import instruction_mismatch, policy_ranking, value_order_correlation  # noqa: E402
from vlmreward.models.testing_vlms import build_paligemma2, build_qwen2_5_vl  # noqa: E402
from vlmreward.rewards.progress import min_max_normalize  # noqa: E402
from vlmreward.rewards.registry import build_reward  # noqa: E402

runner = CliRunner()
TASK = "balance the pole upright"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_ok(result):
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"


def assert_user_error(result, *phrases):
    assert result.exit_code == 2, f"exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.fixture(scope="module")
def episodes_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("episodes") / "cartpole"
    assert_ok(run("collect", "vlmreward/VLMRM-CartPole-v0", "--out", out, "--episodes", 4, "--seed", 1,
                  "--env-kwarg", "episode_length=9"))
    return out


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory):
    return build_qwen2_5_vl(tmp_path_factory.mktemp("qwen") / "qwen2_5_vl")


# ---------------------------------------------------------------- the metrics against scipy.stats
def test_metrics_equal_scipy_stats():
    rng = np.random.default_rng(0)
    lengths = [5, 8, 3, 6, 1]
    rows, start = [], 0
    for n in lengths:
        rows.append(np.arange(start, start + n))
        start += n
    rewards = rng.normal(size=start)
    rewards[rows[2]] = 1.0  # a constant episode: its ρ is undefined
    success = np.array([True, True, True, False, True])
    got = value_order_correlation(rewards, rows, success)
    expected = [stats.spearmanr(rewards[rows[i]], np.arange(len(rows[i]))).statistic for i in (0, 1, 3)]
    np.testing.assert_allclose([got["per_episode"][i] for i in (0, 1, 3)], expected, atol=1e-12)
    assert math.isnan(got["per_episode"][2]) and math.isnan(got["per_episode"][4])
    assert got["voc"] == pytest.approx(np.mean([expected[0], expected[1]]), abs=1e-12)  # successful, defined
    assert got["episodes"] == 4 and got["undefined"] == 2
    assert value_order_correlation(np.arange(6.0), [np.arange(6)], None)["voc"] == pytest.approx(1.0)
    assert value_order_correlation(-np.arange(6.0), [np.arange(6)], np.array([True]))["voc"] == pytest.approx(-1.0)

    returns, truth = rng.normal(size=9), rng.normal(size=9)
    truth[:3] = truth[3]  # ties: τ-b
    assert policy_ranking(returns, truth) == pytest.approx(stats.kendalltau(returns, truth).statistic, abs=1e-12)
    assert policy_ranking([1, 2, 3, 4], [0, 0, 1, 1]) == pytest.approx(stats.kendalltau([1, 2, 3, 4], [0, 0, 1, 1]).statistic)
    assert policy_ranking([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0) and math.isnan(policy_ranking([1.0, 1.0], [0, 1]))

    own = np.array([0.9, 0.5, 0.2, 0.7])
    result = instruction_mismatch(own, [np.array([0.1, 0.6, 0.2, 0.3]), np.array([0.0, 0.0, 0.0, 0.0])])
    assert result == {"fraction": 6 / 8, "pairs": 8, "ties": 1}  # episode 2 ties, episode 1 loses once


def test_score_dataset_reports_the_metrics_of_every_kind_on_episodes(episodes_dataset):
    """A model-free prefix kind (the oracle reading the pole's angle; the cart's position as the reference)
    and the per-episode numbers recomputed here from the rewards score_dataset returns."""
    data = load_dataset(episodes_dataset)
    scores = score_dataset(data, None, None, reward_kind="progress_info_oracle", reference="cart_position",
                           reward_params={"key": "pole_angle", "statistic": "last", "max_frames": 4})
    (result,) = scores.results
    rows = episode_rows(data)
    labels = data.label("is_success")
    success = np.array([labels[idx].any() for idx in rows])
    q = result.quality
    per_episode = [stats.spearmanr(result.rewards[idx], np.arange(len(idx))).statistic if np.ptp(result.rewards[idx]) > 0
                   else math.nan for idx in rows]
    np.testing.assert_allclose(q["voc_per_episode"], per_episode, atol=1e-12)
    returns = [float(result.rewards[idx].sum()) for idx in rows]
    gt = [float(data.numeric("cart_position", "r")[idx].sum()) for idx in rows]
    assert q["returns"] == pytest.approx(returns) and q["gt_returns"] == pytest.approx(gt)
    assert q["policy_ranking_tau"] == pytest.approx(stats.kendalltau(returns, gt).statistic, abs=1e-9)
    assert q["success"] == success.tolist() and math.isnan(q["instruction_mismatch"])
    assert np.isfinite(q["voc"]) and result.summary()["voc"] == q["voc"]
    assert q["voc"] == pytest.approx(np.nanmean(np.array(per_episode)[success]), abs=1e-12)
    assert json.loads(json.dumps(result.to_json()))["quality"]["episodes"] == len(rows) == 4


# ---------------------------------------------------------------- the commands
def test_evaluate_token_progress_with_mismatch_writes_the_metrics(episodes_dataset, tiny_qwen, tmp_path):
    out = tmp_path / "eval"
    result = run("evaluate", episodes_dataset, "--model", tiny_qwen, "--reward-kind", "token_progress", "--goal", TASK,
                 "--param", "max_frames=3", "--param", "anchors=3", "--mismatch", "a humanoid robot kneeling", "--out", out)
    assert_ok(result)
    assert "VOC" in result.output and "instruction mismatch" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    (r,) = metrics["results"]
    assert r["reward"]["kind"] == "token_progress" and r["reward"]["anchors"] == 3
    q = r["quality"]
    assert q["episodes"] == 4 and q["mismatch"]["pairs"] == 4 and q["mismatch"]["instructions"] == ["a humanoid robot kneeling"]
    assert 0.0 <= r["instruction_mismatch"] <= 1.0 and r["instruction_mismatch"] == q["mismatch"]["fraction"]
    assert "Reward quality over episodes" in (out / "report.html").read_text()

    # the offline curve of each episode is the reward's own anchored scoring of that episode's frames
    data = load_dataset(episodes_dataset)
    model = vlmreward.load_model(str(tiny_qwen))
    reward = build_reward("token_progress", {"goal": TASK, "max_frames": 3, "anchors": 3}, model=model)
    scores = score_dataset(data, model, [TASK], reward_kind="token_progress", reward_params={"max_frames": 3, "anchors": 3})
    for idx in episode_rows(data):
        expected = reward.episode_rewards(np.stack([np.asarray(data.frames[i]) for i in idx]))
        np.testing.assert_allclose(scores.results[0].rewards[idx], expected, atol=1e-5)


def test_progress_bad_inputs_are_one_line_exit_2(episodes_dataset, tiny_qwen, tmp_path):
    paligemma = build_paligemma2(tmp_path / "pg")
    base = ("evaluate", episodes_dataset, "--reward-kind", "token_progress", "--goal", TASK, "--out", tmp_path / "e")
    assert_user_error(run(*base, "--model", paligemma), "takes no video input", "Qwen2-VL")
    assert_user_error(run(*base, "--model", tiny_qwen, "--param", "prompt=Is it done? The answer is"), "{instruction}")
    assert_user_error(run(*base, "--model", tiny_qwen, "--param", "max_frames=1"), "max_frames")
    assert_user_error(run("evaluate", episodes_dataset, "--model", tiny_qwen, "--reward-kind", "token_progress",
                          "--out", tmp_path / "e2"), "needs the goal prompt")
    assert_user_error(run("evaluate", episodes_dataset, "--reward-kind", "progress_info_oracle", "--param", "key=gt_reward",
                          "--mismatch", "another task", "--out", tmp_path / "e3"), "--mismatch", "takes no goal")


def test_relabel_writes_lerobot_progress_parquet(tmp_path, tiny_qwen):
    """relabel scores each episode of a LeRobot dataset on its own (the prefix kind's anchored curve, frame
    i + 1 for frame i) and writes LeRobot's progress parquet: the same rewards min-max normalised per episode."""
    import pyarrow.parquet as pq

    from test_relabel import _lerobot_episodes
    from vlmreward.relabel.lerobot_format import write_lerobot_dataset

    source = write_lerobot_dataset(tmp_path / "src", _lerobot_episodes(2, 6), fps=10, video=False)
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"reward": {"kind": "token_progress", "goal": TASK, "max_frames": 3, "anchors": 4},
                                      "model": {"name": str(tiny_qwen), "device": "cpu"}}))
    out = tmp_path / "dst"
    assert_ok(run("relabel", source, "--config", config, "--out", out, "--progress-file", "topreward_progress.parquet"))
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    table = pq.read_table(out / "topreward_progress.parquet")
    assert table.column_names == ["index", "episode_index", "frame_index", "progress_sparse"]
    assert str(table.schema.field("index").type) == "int64" and str(table.schema.field("progress_sparse").type) == "float"
    meta = table.schema.metadata
    assert meta[b"vlm_name"].decode() == str(tiny_qwen) and json.loads(meta[b"vlmreward"])["kind"] == "token_progress"
    rewards = np.asarray(data.column("next.reward")).reshape(2, 6)
    progress = np.asarray(table.column("progress_sparse")).reshape(2, 6)
    for e in range(2):
        np.testing.assert_allclose(progress[e], min_max_normalize(rewards[e]), atol=1e-6)
        assert progress[e].min() == 0.0 and progress[e].max() == 1.0
    assert np.asarray(table.column("index")).tolist() == np.asarray(data.column("index")).tolist()

    model = vlmreward.load_model(str(tiny_qwen))
    reward = build_reward("token_progress", {"goal": TASK, "max_frames": 3, "anchors": 4}, model=model)
    frames = _lerobot_episodes(2, 6)[0]["frames"]  # seeded: the frames written losslessly (PNG) to the source
    shifted = np.concatenate([frames[1:], frames[-1:]])
    np.testing.assert_allclose(rewards[0], reward.episode_rewards(shifted), atol=1e-5)

    assert_user_error(run("relabel", source, "--config", config, "--out", tmp_path / "d2", "--progress-file", "a/b.csv"),
                      "--progress-file", ".parquet")


@pytest.mark.slow
def test_benchmark_runs_a_suite_and_a_lerobot_set_into_one_table(tmp_path, tiny_hf_clip):
    """`benchmark` collects the sets it is asked for once (reused on a second run), evaluates one reward on
    each against the set's instruction and another set's, and prints and writes one table; a LeRobot
    dataset joins as a set whose instruction is its task; a set the reward cannot score is a note."""
    from test_relabel import _lerobot_episodes
    from vlmreward.relabel.lerobot_format import write_lerobot_dataset

    source = write_lerobot_dataset(tmp_path / "cartpole-demos", _lerobot_episodes(2, 6), fps=10, video=False,
                                   task="balance the pole")
    args = ["benchmark", "--model", tiny_hf_clip, "--only", "metaworld-reach", "--only", "cartpole", "--only", "miniworld",
            "--episodes", 2, "--lerobot", source, "--data", tmp_path / "data", "--out", tmp_path / "out"]
    result = run(*args)
    assert_ok(result)
    table = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    by_set = {row["set"]: row for row in table["rows"]}
    assert set(by_set) >= {"metaworld-reach", "cartpole", "lerobot-cartpole-demos"}
    reach = json.loads((tmp_path / "out" / "metaworld-reach" / "metrics.json").read_text())["results"][0]
    assert reach["quality"]["episodes"] == 2 and reach["quality"]["mismatch"]["instructions"] == ["the robot arm opens the drawer"]
    assert by_set["metaworld-reach"]["voc"] == reach["voc"]
    cartpole = json.loads((tmp_path / "out" / "cartpole" / "metrics.json").read_text())["results"][0]
    assert "quality" not in cartpole and by_set["cartpole"]["voc"] is None  # a sweep's lines are not episodes
    assert (tmp_path / "out" / "lerobot-cartpole-demos" / "metrics.json").is_file()
    lerobot = load_dataset(tmp_path / "data" / "lerobot-cartpole-demos")
    assert lerobot.metadata["task"] == "balance the pole"
    for idx in episode_rows(lerobot):  # the progress label: frame index / (length - 1) on successful episodes
        progress = lerobot.numeric("progress", "p")[idx]
        succeeded = bool(lerobot.label("is_success")[idx].any())
        np.testing.assert_allclose(progress, np.arange(len(idx)) / (len(idx) - 1) if succeeded else 0.0, atol=1e-12)
    assert "VOC" in result.output and "metaworld-reach" in result.output and "wrote" in result.output
    assert "benchmark.md" in result.output and (tmp_path / "out" / "benchmark.md").read_text().count("|") > 10
    assert_user_error(run(*args), "already holds benchmark.json", "--overwrite")
    again = run(*args, "--overwrite")
    assert_ok(again)
    assert "collecting" not in again.stderr  # the sets were collected once
    assert_user_error(run("benchmark", "--model", tiny_hf_clip, "--only", "nowhere", "--out", tmp_path / "o2"),
                      "--only 'nowhere' is not a set")


def test_evaluate_generative_value_reports_the_answers_it_could_not_read(episodes_dataset, tiny_qwen, tmp_path):
    """GVL on a random-weight model: the gibberish answers are counted in metrics.json and in a note."""
    out = tmp_path / "gvl"
    result = run("evaluate", episodes_dataset, "--model", tiny_qwen, "--reward-kind", "generative_value", "--goal", TASK,
                 "--param", "max_frames=3", "--param", "max_new_tokens=4", "--out", out)
    assert_ok(result)
    (r,) = json.loads((out / "metrics.json").read_text())["results"]
    parse = r["reward"]["parse"]
    assert parse["answers"] == 4 and parse["frames_asked"] == 12 and parse["frames_parsed"] + parse["frames_unparsed"] == 12
    if parse["frames_unparsed"]:
        assert any("could not be read" in n for n in r["notes"]) and "could not be read" in result.output


def test_train_with_token_progress_pays_log_probabilities_through_deferred_scoring(tiny_qwen, tmp_path):
    """The token_progress config trains (a few steps): every step's prefix scored in deferred batches."""
    import csv
    from pathlib import Path

    from vlmreward.rl.train import train

    config = Path(__file__).resolve().parent.parent / "configs" / "generative" / "reach_token_progress.yaml"
    run_dir = train(config, [
        f"model.name={tiny_qwen}", "model.device=cpu", "model.dtype=float32", "env.n_envs=2", "env.kwargs.episode_length=6",
        "env.kwargs.render_width=56", "env.kwargs.render_height=56", "reward.max_frames=3", "total_steps=24",
        "algorithm_kwargs.n_steps=12", "algorithm_kwargs.batch_size=12", "algorithm_kwargs.n_epochs=1",
        f"output_dir={tmp_path / 'runs'}", "checkpoint_every=null", "eval_every=null", "video=false",
    ], progress_bar=False)
    assert (run_dir / "final_model.zip").is_file()
    with open(run_dir / "episodes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 4
    assert all(float(row["vlm_return"]) < 0 for row in rows)  # sums of log-probabilities
    assert {int(row["length"]) for row in rows} == {6}


def test_sweep_table_has_the_episode_metrics(episodes_dataset, tiny_hf_clip, tmp_path):
    """sweep's results.csv carries VOC, policy ranking and instruction mismatch beside AP and EPIC, and its
    VOC is evaluate's for the same setting."""
    import csv

    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(yaml.safe_dump({"upright": {"goal": TASK, "baseline": "a pole"}}))
    assert_ok(run("sweep", episodes_dataset, "--model", tiny_hf_clip, "--prompts", prompts, "--alpha", 0.5,
                  "--out", tmp_path / "sw"))
    with open(tmp_path / "sw" / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert {"voc", "policy_ranking_tau", "instruction_mismatch"} <= set(row)
    assert_ok(run("evaluate", episodes_dataset, "--model", tiny_hf_clip, "--goal", TASK, "--baseline", "a pole",
                  "--alpha", 0.5, "--out", tmp_path / "ev"))
    (r,) = json.loads((tmp_path / "ev" / "metrics.json").read_text())["results"]
    assert r["voc"] is not None and float(row["voc"]) == pytest.approx(r["voc"], abs=1e-6)  # the CSV rounds to 6 digits
    assert row["instruction_mismatch"] in ("", "nan")  # no --mismatch: not computed
