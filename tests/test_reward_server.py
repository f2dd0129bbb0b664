"""The reward server (issue 28): every kind served through RewardSpec, answered as in-process
scoring answers, requests from many threads batched, bad requests refused with their own error,
``vlmreward serve`` started and stopped by signal, and training with ``reward.server``.

Each served answer is compared with the same reward built here and called directly (the
independent computation); batch composition is the only difference a server adds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from vlmreward.config import ConfigError
from vlmreward.distributed.client import ServedReward
from vlmreward.distributed.errors import RewardServerError
from vlmreward.distributed.server import RewardServer
from vlmreward.distributed.spec import RewardSpec
from vlmreward.envs.clips import ClipAssembler
from vlmreward.errors import InvalidFramesError, InvalidParameterError
from vlmreward.models.spec import ModelSpec
from vlmreward.models.testing_vlms import build_qwen2_5_vl
from vlmreward.rewards.video import offline_episode_rewards

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = "balance the pole upright on the cart"


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory) -> Path:
    return build_qwen2_5_vl(tmp_path_factory.mktemp("served_qwen") / "qwen2_5_vl")


def _frames(n: int, seed: int = 0, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def _spec(kind: str, model: Path | None, **params) -> RewardSpec:  # noqa: ANN003
    return RewardSpec(kind, params, None if model is None else ModelSpec(str(model), device="cpu"))


def _frame_cases(tiny_hf_clip: Path, tiny_qwen: Path) -> dict[str, RewardSpec]:
    return {
        "goal_baseline (contrastive)": _spec("goal_baseline", tiny_hf_clip, goal="a pole upright", baseline="a pole", alpha=0.5),
        "vqa (generative)": _spec("vqa", tiny_qwen, goal="a pole upright", output="log_odds"),
        "ground_truth (no model)": _spec("ground_truth", None),
    }


def test_frame_kinds_are_served_as_scored_in_process(tiny_hf_clip, tiny_qwen):
    frames = _frames(10)
    for name, spec in _frame_cases(tiny_hf_clip, tiny_qwen).items():
        local = spec()
        with RewardServer(spec, port=0) as server:
            client = ServedReward(server.url)
            assert client.interface["calls"] == ["frames"] and not hasattr(client, "clip_mode"), name
            if name.startswith("ground_truth"):  # the environment's reward: the frame rewards are zeros
                np.testing.assert_array_equal(client(frames), local(frames))
                continue
            np.testing.assert_array_equal(client(frames), local(frames), err_msg=name)
            np.testing.assert_array_equal(client(frames[3]), local(frames[3:4]), err_msg=name)
            assert client.describe()["server"] == server.url and client.describe()["kind"] == local.describe()["kind"]


@pytest.mark.parametrize("kind, params, model", [
    ("episode_video", {"goal": TASK}, "xclip"),
    ("window_video", {"goal": TASK, "window": 4}, "xclip"),
    ("token_progress", {"goal": TASK, "max_frames": 4}, "qwen"),
    ("progress_info_oracle", {"key": "d", "max_frames": 3}, None),
])
def test_clip_and_progress_kinds_are_served_as_scored_in_process(kind, params, model, tiny_xclip, tiny_qwen):
    """score_clips, clip_indices and the offline episode rewards (a prefix kind's anchored curve)
    through the server equal the local reward's; the clip assembler reads the served attributes."""
    spec = _spec(kind, {"xclip": tiny_xclip, "qwen": tiny_qwen, None: None}[model], **params)
    local = spec()
    episode = _frames(7, seed=1)
    infos = [float(v) for v in np.linspace(1.0, 0.0, 7)] if local.clip_info_key else None
    with RewardServer(spec, port=0) as server:
        client = ServedReward(server.url)
        assert (client.clip_mode, client.window, client.clip_info_key) == (local.clip_mode, local.window, local.clip_info_key)
        for length in (1, 5, 7):
            np.testing.assert_array_equal(client.clip_indices(length), local.clip_indices(length))
        clips = [episode[local.clip_indices(m)] for m in (3, 7)]
        clip_infos = None if infos is None else [[infos[i] for i in local.clip_indices(m)] for m in (3, 7)]
        np.testing.assert_array_equal(client.score_clips(clips, clip_infos), local.score_clips(clips, clip_infos))
        np.testing.assert_array_equal(offline_episode_rewards(client, episode, infos), offline_episode_rewards(local, episode, infos))
        assert hasattr(client, "episode_rewards") == hasattr(local, "episode_rewards")
        assert ClipAssembler(client, 2).mode == local.clip_mode


def test_preference_is_trained_here_and_its_vlm_labeller_is_served(tiny_qwen):
    """RL-VLM-F's labels from the served labeller equal the local labeller's (both orders asked,
    cached here, not on the server), and the learned ensemble lives in this process."""
    from vlmreward.rewards.preference import PreferenceParams, PreferenceReward

    spec = _spec("preference", tiny_qwen, goal="to balance the pole upright", query_size=32)
    local = spec()
    a, b = _frames(3, seed=2, size=(32, 32)), _frames(3, seed=3, size=(32, 32))
    with RewardServer(spec, port=0) as server:
        client = ServedReward(server.url)
        assert client.interface["calls"] == ["ask"] and client.interface["learned"]
        served = PreferenceReward.served(PreferenceParams(goal="to balance the pole upright", query_size=32), client)
        got, want = served.labeller.label(a, b), local.labeller.label(a, b)
        np.testing.assert_array_equal(got.delta, want.delta)
        np.testing.assert_array_equal(got.labels, want.labels)
        assert served.labeller.fingerprint == local.labeller.fingerprint
        assert served.describe()["served"] and served.ensemble is None  # trained here, on the first update
        with pytest.raises(InvalidParameterError, match="answers ask; not 'frames'"):
            client.call("frames", {"frames": a})


def test_requests_from_many_threads_are_batched_and_each_gets_its_own_rewards(tiny_hf_clip):
    spec = _spec("goal_baseline", tiny_hf_clip, goal="a pole upright", baseline="a pole", alpha=0.5)
    local = spec()
    requests = [_frames(int(n), seed=i) for i, n in enumerate(np.random.default_rng(0).integers(1, 9, 24))]
    want = [local(f) for f in requests]
    got: dict[int, np.ndarray] = {}
    with RewardServer(spec, port=0, max_batch=32, max_wait_s=0.05) as server:
        client = ServedReward(server.url)

        def send(i: int) -> None:
            got[i] = client(requests[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = server.stats()
    assert stats["requests"] == len(requests) and stats["batches"] < len(requests)  # merged
    assert stats["items"] == sum(len(f) for f in requests)
    for i, frames in enumerate(requests):
        np.testing.assert_allclose(got[i], want[i], rtol=0, atol=1e-6)  # another batch composition: float rounding only


def test_bad_requests_get_their_own_error_and_the_server_keeps_serving(tiny_hf_clip):
    spec = _spec("goal_baseline", tiny_hf_clip, goal="a pole upright", baseline="a pole", alpha=0.5)
    with RewardServer(spec, port=0) as server:
        client = ServedReward(server.url)
        with pytest.raises(InvalidFramesError):
            client.call("frames", {"frames": np.zeros((2, 8, 8), np.float32)})
        with pytest.raises(InvalidParameterError, match="answers frames; not 'clips'"):
            client.score_clips([_frames(2)])
        with pytest.raises(InvalidParameterError, match="message is malformed"):
            client._send("POST", "/v1/call/frames", b"not an archive", 5.0)
        assert client(_frames(2)).shape == (2,)
    with pytest.raises(RewardServerError, match="did not answer within 0.3 s"):
        ServedReward(server.url, connect_timeout_s=0.3)
    with pytest.raises(InvalidParameterError, match="give http://HOST:PORT"):
        ServedReward("ftp://example.org")
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    other = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)  # some other web server
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with pytest.raises(RewardServerError, match="not a vlmreward reward server"):
            ServedReward(f"http://127.0.0.1:{other.server_address[1]}", connect_timeout_s=5)
    finally:
        other.shutdown()
        other.server_close()


def test_a_killed_server_restarted_on_its_port_answers_every_request(tiny_hf_clip, tmp_path):
    """The client retries what a dead server left unanswered: kill the server mid-load, start it
    again on the same port, and every request gets the rewards in-process scoring gives."""
    from vlmreward.rl.builders import build_reward_model
    from vlmreward.rl.config import load_config

    config = _serve_config(tmp_path, tiny_hf_clip)
    local = build_reward_model(load_config(config))
    first, url = _start_serve(config, port=0)
    port = int(url.rsplit(":", 1)[1])
    client = ServedReward(url, request_timeout_s=120)
    batches = [_frames(4, seed=i) for i in range(40)]
    got: list[np.ndarray | None] = [None] * len(batches)
    errors: list[BaseException] = []

    def load(offset: int) -> None:
        try:
            for i in range(offset, len(batches), 4):
                got[i] = client(batches[i])
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    while sum(g is not None for g in got) < 8:
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    second, _ = _start_serve(config, port=port)
    try:
        for t in threads:
            t.join(timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    assert not errors and all(g is not None for g in got)
    assert client.retries > 0  # the kill was felt
    for frames, rewards in zip(batches, got):
        np.testing.assert_array_equal(rewards, local(frames))


def _serve_config(tmp_path: Path, model: Path, **reward) -> Path:  # noqa: ANN003
    data = {
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 40}},
        "reward": {"kind": "goal_baseline", "goal": "a pole upright", "baseline": "a pole", "alpha": 0.5, **reward},
        "model": {"name": str(model), "device": "cpu"},
        "scoring": "deferred", "score_batch_size": 16, "algorithm": "DQN",
        "algorithm_kwargs": {"learning_starts": 32, "train_freq": 8, "buffer_size": 1000, "device": "cpu"},
        "total_steps": 96, "seed": 0, "output_dir": str(tmp_path / "runs"), "checkpoint_every": 10_000, "eval_every": 10_000,
        "video": False,
    }
    path = tmp_path / f"run_{len(list(tmp_path.glob('run_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start_serve(config: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vlmreward.cli.main", "serve", str(config), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline().strip()  # the URL, once the reward is built and the port bound
    assert line.startswith("http://"), proc.stderr.read()
    return proc, line


def test_vlmreward_serve_prints_its_url_and_stops_on_sigterm(tiny_hf_clip, tmp_path):
    config = _serve_config(tmp_path, tiny_hf_clip)
    proc, url = _start_serve(config, port=0)
    client = ServedReward(url)
    assert client.interface["kind"] == "goal_baseline" and client.interface["params"]["alpha"] == 0.5
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert "serving goal_baseline at http://127.0.0.1:" in proc.stderr.read()


def test_serve_refuses_a_taken_port_with_one_line(tiny_hf_clip, tmp_path):
    import socket

    config = _serve_config(tmp_path, tiny_hf_clip)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "vlmreward.cli.main", "serve", str(config), "--port", str(port)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_training_with_reward_server_fills_the_replay_buffer_as_in_process_scoring(tiny_hf_clip, tmp_path):
    """DQN, deferred scoring: the run scored by the server and the run scored here store the same
    rewards and end with the same policy; a server for another reward is refused before training."""
    from stable_baselines3 import DQN

    from vlmreward.rl.train import resume, train

    with RewardServer(_served_spec(tiny_hf_clip), port=0, kind="goal_baseline",
                      params=_served_params(tiny_hf_clip, tmp_path)) as server:
        served_dir = train(_serve_config(tmp_path, tiny_hf_clip, server=server.url))
        assert server.stats()["requests"] > 0
        wrong = _serve_config(tmp_path, tiny_hf_clip, server=server.url, alpha=0.25)
        with pytest.raises(ConfigError, match="serves a reward whose alpha differ"):
            train(wrong)
        with RewardServer(_served_spec(tiny_hf_clip), port=0, kind="goal_baseline",
                          params=_served_params(tiny_hf_clip, tmp_path)) as moved:  # the server moved: resume points at it
            resumed = resume(train(_serve_config(tmp_path, tiny_hf_clip, server=server.url)),
                             [f"reward.server={moved.url}", "total_steps=128"])
            assert moved.stats()["requests"] > 0
            assert DQN.load(resumed / "final_model.zip", device="cpu").num_timesteps == 128
    local_dir = train(_serve_config(tmp_path, tiny_hf_clip))
    served = DQN.load(served_dir / "final_model.zip", device="cpu")
    local = DQN.load(local_dir / "final_model.zip", device="cpu")
    for a, b in zip(served.policy.parameters(), local.policy.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    described = json.loads((served_dir / "config.json").read_text()) if (served_dir / "config.json").exists() else None
    assert described is None or described["reward"]["server"] == server.url


def _served_spec(model: Path) -> RewardSpec:
    return _spec("goal_baseline", model, goal="a pole upright", baseline="a pole", alpha=0.5)


def _served_params(model: Path, tmp_path: Path) -> dict:
    from vlmreward.rl.served import served_identity
    from vlmreward.rl.config import load_config

    return served_identity(load_config(_serve_config(tmp_path, model)))["params"]


def test_a_preference_run_with_reward_server_labels_through_the_server(tiny_qwen, tmp_path):
    """``reward.server`` with the learned kind: the reward is built here around a ServedLabeller."""
    from vlmreward.rewards.preference_labels import ServedLabeller
    from vlmreward.rl.builders import build_reward_model
    from vlmreward.rl.served import local_config, served_identity
    from vlmreward.rl.config import parse_config

    data = {"env": {"id": "vlmreward/VLMRM-CartPole-v0"}, "algorithm": "PPO", "total_steps": 64,
            "reward": {"kind": "preference", "goal": "to balance the pole upright", "query_size": 32},
            "model": {"name": str(tiny_qwen), "device": "cpu"}}
    config = parse_config(data)
    with RewardServer(lambda: build_reward_model(config), port=0, **served_identity(config)) as server:
        served = build_reward_model(parse_config({**data, "reward": {**data["reward"], "server": server.url}}))
        assert isinstance(served.labeller, ServedLabeller) and served.labeller.model is None
        a, b = _frames(2, seed=4, size=(32, 32)), _frames(2, seed=5, size=(32, 32))
        np.testing.assert_array_equal(served.labeller.label(a, b).delta, build_reward_model(config).labeller.label(a, b).delta)
    assert local_config(config) is config


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("ray")
def test_ray_replicas_survive_a_killed_replica_without_losing_a_request(tiny_hf_clip, tmp_path):
    """backend="ray": a replica killed mid-load (``ray.kill(no_restart=False)``) is restarted by Ray
    and sent its batches again; every request is answered with in-process scoring's rewards."""
    ray = pytest.importorskip("ray")
    from vlmreward.distributed.cluster import init_ray

    spec = _served_spec(tiny_hf_clip)
    local = spec()
    session = init_ray(num_cpus=4, log_to_driver=False)
    try:
        with RewardServer(spec, port=0, backend="ray", replicas=2) as server:
            client = ServedReward(server.url, request_timeout_s=120)
            batches = [_frames(4, seed=i) for i in range(60)]
            got: list[np.ndarray | None] = [None] * len(batches)

            def load(offset: int) -> None:
                for i in range(offset, len(batches), 3):
                    got[i] = client(batches[i])

            threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            while sum(g is not None for g in got) < 10:
                time.sleep(0.01)
            ray.kill(server.actors[0], no_restart=False)
            for t in threads:
                t.join(timeout=240)
            assert server.stats()["requests"] == len(batches)
        assert all(g is not None for g in got)
        for frames, rewards in zip(batches, got):
            np.testing.assert_allclose(rewards, local(frames), rtol=0, atol=1e-6)
        # reward.server: ray in a config: this process starts the server and its replica itself
        from vlmreward.rl.builders import build_reward_model
        from vlmreward.rl.config import load_config

        served = build_reward_model(load_config(_serve_config(tmp_path, tiny_hf_clip, server="ray")))
        assert isinstance(served, ServedReward) and served.url.startswith("http://127.0.0.1:")
        np.testing.assert_array_equal(served(batches[0]), local(batches[0]))
        served.close()
        assert served.owned_server is None
    finally:
        session.shutdown()
        if ray.is_initialized():
            ray.shutdown()


def test_reward_server_values_and_a_scale_section_beside_it_are_refused():
    from vlmreward.rl.config import parse_config

    base = {"env": {"id": "CartPole-v1"}, "algorithm": "PPO", "total_steps": 8}
    with pytest.raises(ConfigError, match="'ftp://host' is not a reward server: give http://HOST:PORT"):
        parse_config({**base, "reward": {"kind": "ground_truth", "server": "ftp://host"}})
    with pytest.raises(ConfigError, match="reward.server and the scale section both say where the reward is scored"):
        parse_config({**base, "reward": {"kind": "ground_truth", "server": "ray"}, "scale": {"num_env_workers": 1}})
    assert parse_config({**base, "reward": {"kind": "ground_truth", "server": "http://10.0.0.2:8765"}}).reward.server
