"""VLM reward serving and rollouts on Ray (``vlmreward.distributed``), on a local Ray instance.

One Ray instance serves the whole module (starting one takes 5-15 s on a 2-core machine), and one
:class:`RayVecEnv` serves the rollout tests (each worker imports PyTorch and stable-baselines3).
The rewards checked against single-process scoring use the pixel oracle
(:class:`~vlmreward.rewards.oracles.CartPolePixelReward`), a pure function of each frame, so equality
is exact whatever the batch composition; the tiny random CLIP is compared within 1e-6 (batch
composition changes float32 rounding by about 1 ulp).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

ray = pytest.importorskip("ray")

import vlmreward  # noqa: E402
from vlmreward.models.spec import ModelSpec  # noqa: E402
from vlmreward.distributed import (  # noqa: E402
    ClusterError,
    RayVecEnv,
    RemoteRewardModel,
    RewardService,
    RewardSpec,
    ScaleConfig,
    ScoredFrame,
    check_resources,
    init_ray,
)
from vlmreward.envs import RenderFrame, VLMRewardVecEnvWrapper, make_vlm_vec_env  # noqa: E402
from vlmreward.rewards.oracles import CartPolePixelReward  # noqa: E402
from vlmreward.errors import InvalidFramesError, VLMRewardError  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames  # noqa: E402
from vlmreward.rewards.base import RewardModel  # noqa: E402
from vlmreward.rl.checkpoints import latest_checkpoint  # noqa: E402
from vlmreward.rl.config import ConfigError, RunConfig, parse_config  # noqa: E402
from vlmreward.rl.scale import RayRuntime, replica_config  # noqa: E402
from vlmreward.rl.train import build_reward_model, train  # noqa: E402

SHORT_EPISODES = {"max_episode_steps": 15}  # time-limit truncations as well as terminations
ORACLE = RewardSpec("vlmreward.rewards.oracles:CartPolePixelReward")
GOAL = {"goal": "pole vertically upright on top of the cart", "baseline": "pole and cart", "alpha": 0.5}

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.xdist_group("ray")]  # one local Ray instance (module fixtures) in one pytest-xdist worker


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for this module (8 logical CPUs on whatever cores there are)."""
    session = init_ray(num_cpus=8, log_to_driver=False)
    yield session
    session.shutdown()
    if ray.is_initialized():
        ray.shutdown()




@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """``uint8 [48, 400, 600, 3]`` rendered CartPole frames."""
    return render_cartpole_frames(48)


@pytest.fixture(scope="module")
def ray_env(local_ray):
    """2 CartPole sub-environments on 2 Ray workers, short episodes; shared by the rollout tests
    (each test wraps and re-seeds it; a test that kills a worker leaves its replacement)."""
    venv = RayVecEnv("CartPole-v1", 2, 2, seed=0, env_kwargs=SHORT_EPISODES)
    yield venv
    venv.close()


class Recording:
    """A reward model that records every batch it is asked to score and what it answered."""

    def __init__(self, inner):
        self.inner = inner
        self.frames: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []

    def __call__(self, frames):
        rewards = self.inner(frames)
        self.frames.append(np.array(frames))
        self.rewards.append(np.array(rewards))
        return rewards

    def from_embeddings(self, embeddings):
        return self.inner.from_embeddings(embeddings)

    def describe(self):
        return self.inner.describe()


def kill_while_holding(service: RewardService, index: int = 0, *, restart: bool = True, timeout: float = 30.0) -> int:
    """Kill replica ``index`` at a moment it holds at least one request (queued or being scored);
    returns the number it held. ``restart``: ``ray.kill(no_restart=False)`` (Ray restarts it)."""
    replica = service.replicas[index]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = ray.get(replica.stats.remote())["held_requests"]
        if held:
            ray.kill(replica, no_restart=not restart)
            return held
        time.sleep(0.001)
    raise AssertionError("the replica never held a request")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# configuration (no Ray needed)


def test_scale_config_validates_and_names_keys():
    scale = ScaleConfig(num_env_workers=2)
    assert (scale.num_reward_replicas, scale.gpus_per_replica, scale.address) == (1, 0.0, None)
    for bad in ({"num_env_workers": 0}, {"gpus_per_replica": -1}, {"max_wait_ms": float("nan")}, {"address": " "}, {"replicas": 2}):
        with pytest.raises(ValueError):
            ScaleConfig(**bad)


def test_replicas_build_the_single_process_reward_on_their_device(tiny_hf_clip):
    data = {
        "env": {"id": "CartPole-v1", "n_envs": 2},
        "reward": {"kind": "goal_baseline", **GOAL},
        "model": {"name": str(tiny_hf_clip), "device": "auto"},
        "algorithm": "PPO",
        "total_steps": 64,
    }
    assert replica_config(parse_config({**data, "scale": {"gpus_per_replica": 1}})).model.device == "cuda"
    config = parse_config({**data, "scale": {}})
    cpu = replica_config(config)
    assert cpu.model.device == "cpu" and config.model.device == "auto"  # a copy
    assert replica_config(parse_config({**data, "model": {**data["model"], "device": "cuda:1"}, "scale": {"gpus_per_replica": 0.5}})).model.device == "cuda"
    with pytest.raises(ConfigError, match="gpus_per_replica"):
        replica_config(parse_config({**data, "model": {**data["model"], "device": "cuda:1"}, "scale": {}}))
    local = vlmreward.GoalBaselineReward(vlmreward.load_model(tiny_hf_clip), **GOAL)
    assert build_reward_model(cpu).describe() == local.describe()  # what a replica builds, here
    built = RewardSpec("goal_baseline", GOAL, ModelSpec(str(tiny_hf_clip), device="auto"))()
    assert built.describe() == local.describe() and built.model.batch_size == 64
    assert isinstance(ORACLE(), CartPolePixelReward)
    with pytest.raises(VLMRewardError, match="is not a reward kind"):
        RewardSpec("NoSuchReward")
    with pytest.raises(VLMRewardError, match="alpha"):
        RewardSpec("goal_baseline", {**GOAL, "alpha": 2.0})  # checked before anything travels


def test_scale_section_is_checked_with_the_config():
    data = {"env": {"id": "CartPole-v1", "n_envs": 2}, "reward": {"kind": "ground_truth"}, "algorithm": "PPO", "total_steps": 64}
    assert parse_config(data).scale is None
    assert parse_config({**data, "scale": {"num_env_workers": 2}}).scale.num_env_workers == 2
    with pytest.raises(ConfigError, match=r"scale.num_env_workers is 3 but env.n_envs is 2"):
        parse_config({**data, "scale": {"num_env_workers": 3}})
    with pytest.raises(ConfigError, match="scale.gpus_per_replica"):
        parse_config({**data, "scale": {"gpus_per_replica": -1}})
    with pytest.raises(ConfigError, match=r"scale.replicas: unknown key; allowed keys in scale: address, num_env_workers"):
        parse_config({**data, "scale": {"replicas": 2}})


def test_missing_ray_is_a_clear_error(monkeypatch):
    import sys

    from vlmreward.distributed.cluster import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ClusterError, match=r"pip install 'vlmreward\[ray\]'"):
        require_ray()


# ---------------------------------------------------------------------------------------------
# errors before training


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_unreachable_address_fails_within_seconds(scheme):
    address = f"{scheme}127.0.0.1:{_free_port()}"
    start = time.monotonic()
    with pytest.raises(ClusterError) as info:
        init_ray(address)
    assert time.monotonic() - start < 10
    assert repr(address) in str(info.value) and "ray start --head" in str(info.value)
    assert isinstance(info.value, VLMRewardError)


def test_too_many_gpus_and_cpus_are_refused(local_ray):
    with pytest.raises(ClusterError, match=r"asks for 2 GPU\(s\) \(2 reward replica\(s\) × scale.gpus_per_replica 1\) but .* has 0"):
        check_resources(ScaleConfig(num_reward_replicas=2, gpus_per_replica=1))
    with pytest.raises(ClusterError, match="CPU"):
        check_resources(ScaleConfig(num_env_workers=64))
    check_resources(ScaleConfig(num_env_workers=2, num_reward_replicas=1))  # fits


def _config(tmp_path: Path, model_name, **changes) -> RunConfig:
    data = {
        "env": {"id": "CartPole-v1", "n_envs": 2, "kwargs": {"max_episode_steps": 50}},
        "reward": {"kind": "goal_baseline", **GOAL},
        "model": {"name": str(model_name), "device": "cpu"},
        "algorithm": "PPO",
        "algorithm_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "device": "cpu"},
        "total_steps": 256,
        "seed": 0,
        "output_dir": str(tmp_path / "runs"),
        "run_name": "ray",
        "checkpoint_every": 128,
        "eval_every": None,
        "log": {"tensorboard": False},
    }
    data.update(changes)
    return parse_config(data)


def test_errors_come_before_training(local_ray, tmp_path, tiny_hf_clip):
    with pytest.raises(ClusterError, match="GPU"):
        train(_config(tmp_path, tiny_hf_clip, scale={"num_env_workers": 2, "gpus_per_replica": 1}))
    with pytest.raises(ClusterError, match="cannot reach"):
        train(_config(tmp_path, tiny_hf_clip, scale={"address": f"127.0.0.1:{_free_port()}"}))
    with pytest.raises(ConfigError, match="env.id"):
        train(_config(tmp_path, tiny_hf_clip, env={"id": "NoSuchEnv-v0", "n_envs": 2}, scale={}))
    missing = tmp_path / "no-such-model"
    with pytest.raises(ClusterError) as info:
        train(_config(tmp_path, missing, scale={"num_env_workers": 2}))
    message = str(info.value)
    assert "reward replica 0 could not build" in message and "ModelNotFoundError" in message
    assert f"model directory {str(missing)!r} does not exist" in message
    assert not (tmp_path / "runs").exists()  # nothing started
    assert ray.is_initialized()  # the shared instance was not shut down by the failed runs


# ---------------------------------------------------------------------------------------------
# the reward service


def test_service_batches_concurrent_requests_and_answers_in_order(local_ray, frames):
    oracle = CartPolePixelReward()
    service = RewardService(ORACLE, 1, max_wait_s=0.05, max_batch_size=32)
    try:
        requests = [frames[i : i + 1 + i % 3] for i in range(0, 45, 3)]  # 15 requests of 1-3 frames
        refs = [service.submit(r) for r in requests]  # many callers at once
        for request, rewards in zip(requests, service.gather(refs)):
            assert rewards.dtype == np.float32
            np.testing.assert_array_equal(rewards, oracle(request))
        stats = service.stats()[0]
        assert stats["requests"] == 15 and stats["frames"] == sum(len(r) for r in requests)
        assert stats["batches"] < 15 and stats["max_batch_frames"] > 3  # fewer, larger batches
        assert max(stats["batch_frames"]) <= 32

        service.reset_stats()
        with ThreadPoolExecutor(8) as pool:  # blocking callers in threads, each request split in order
            results = list(pool.map(service.score, [frames[i : i + 6] for i in range(0, 48, 6)]))
        np.testing.assert_array_equal(np.concatenate(results), oracle(frames))
        assert service.stats()[0]["batches"] < 8

        with pytest.raises(InvalidFramesError):
            service.score(frames.astype(np.float32))

        # what a RayVecEnv that scores on its workers hands the learner: stand-ins, and frames after a cut
        mixed = [ScoredFrame(0.25), frames[0], ScoredFrame(-1.0), frames[1]]
        expected = [0.25, oracle(frames[:1])[0], -1.0, oracle(frames[1:2])[0]]
        np.testing.assert_array_equal(RemoteRewardModel(service)(mixed), np.array(expected, dtype=np.float32))
    finally:
        service.shutdown()


def test_service_with_clip_equals_single_process_scoring(local_ray, frames, tiny_hf_clip):
    spec = RewardSpec("goal_baseline", GOAL, ModelSpec(str(tiny_hf_clip)))
    local = vlmreward.GoalBaselineReward(vlmreward.load_model(tiny_hf_clip), **GOAL)
    service = RewardService(spec, 1, max_batch_size=16)
    try:
        assert service.replica_info[0]["pid"] != os.getpid()
        model = RemoteRewardModel(service)
        assert isinstance(model, RewardModel)
        assert model.describe() == {**local.describe(), "ray_replicas": 1}
        rewards = model(frames)  # 48 frames: sent as 3 requests of 16
        assert rewards.dtype == np.float32 and rewards.shape == (48,)
        np.testing.assert_allclose(rewards, local(frames), rtol=0, atol=1e-6)
        np.testing.assert_allclose(model(frames[5]), local(frames[5:6]), rtol=0, atol=1e-6)
        assert service.stats()[0]["max_batch_frames"] == 16
        with pytest.raises(NotImplementedError, match="frames"):
            model.from_embeddings(np.zeros((1, 16), dtype=np.float32))
    finally:
        service.shutdown()


def test_killed_replica_is_restarted_and_its_requests_retried(local_ray, frames):
    oracle = CartPolePixelReward()
    service = RewardService(ORACLE, 1, max_wait_s=0.3)  # requests wait 0.3 s in the queue: held
    try:
        requests = [frames[i : i + 2] for i in range(0, 24, 2)]
        first_pid = service.replica_info[0]["pid"]
        refs = [service.submit(r) for r in requests]
        assert kill_while_holding(service, restart=True) >= 1  # ray.kill(actor, no_restart=False)
        for request, rewards in zip(requests, service.gather(refs)):
            np.testing.assert_array_equal(rewards, oracle(request))  # each answered once, correctly
        stats = service.stats()[0]
        assert stats["pid"] != first_pid  # a new process
        assert stats["frames"] == sum(len(r) for r in requests)  # the restarted replica scored them all

        refs = [service.submit(r) for r in requests]  # a hard crash: SIGKILL of the replica's process
        while not ray.get(service.replicas[0].stats.remote())["held_requests"]:
            time.sleep(0.001)
        os.kill(stats["pid"], signal.SIGKILL)
        for request, rewards in zip(requests, service.gather(refs)):
            np.testing.assert_array_equal(rewards, oracle(request))
    finally:
        service.shutdown()


def test_replica_killed_for_good_is_routed_around(local_ray, frames):
    oracle = CartPolePixelReward()
    service = RewardService(ORACLE, 2, max_wait_s=0.2, split_min_frames=4)
    try:
        result: dict[str, np.ndarray] = {}
        caller = threading.Thread(target=lambda: result.update(rewards=service.score(frames[:16])))
        caller.start()  # split over both replicas
        kill_while_holding(service, 1, restart=False)
        caller.join(60)
        np.testing.assert_array_equal(result["rewards"], oracle(frames[:16]))
        np.testing.assert_array_equal(service.score(frames[16:40]), oracle(frames[16:40]))
        assert len(service.stats()) == 1
    finally:
        service.shutdown()


# ---------------------------------------------------------------------------------------------
# rollouts


def test_ray_vec_env_steps_exactly_like_the_local_vector_env(ray_env):
    oracle = CartPolePixelReward()
    remote = VLMRewardVecEnvWrapper(ray_env, oracle)
    local = make_vlm_vec_env("CartPole-v1", 2, oracle, seed=7, env_kwargs=SHORT_EPISODES)
    assert remote.env_is_wrapped(RenderFrame) == [True, True]
    assert remote.get_attr("render_mode") == ["rgb_array"] * 2
    ray_env.seed(7)
    np.testing.assert_array_equal(remote.reset(), local.reset())
    rng = np.random.default_rng(0)
    dones = 0
    for _ in range(40):
        actions = rng.integers(2, size=2)
        (obs_a, rew_a, done_a, info_a), (obs_b, rew_b, done_b, info_b) = remote.step(actions), local.step(actions)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(rew_a, rew_b)
        np.testing.assert_array_equal(done_a, done_b)
        for a, b in zip(info_a, info_b):
            assert set(a) == set(b)
            if "terminal_observation" in b:
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
        dones += int(done_a.sum())
    assert dones > 0
    assert [(e.length, e.gt_return) for e in remote.pop_episodes()] == [(e.length, e.gt_return) for e in local.pop_episodes()]


class Snapshots(BaseCallback):
    """Copies each full rollout buffer (rewards, returns, advantages) and the step rewards received."""

    def __init__(self, on_step=None):
        super().__init__()
        self.on_step_hook = on_step
        self.buffers: list[dict[str, np.ndarray]] = []
        self.received: list[np.ndarray] = []

    def _on_step(self) -> bool:
        self.received.append(np.array(self.locals["rewards"]))
        if self.on_step_hook is not None:
            self.on_step_hook(self)
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        self.buffers.append({k: getattr(buffer, k).copy() for k in ("rewards", "returns", "advantages")})


def _ppo(venv, steps: int, callback: Snapshots, deferred: bool) -> PPO:
    from vlmreward.rl.deferred import DeferredRolloutBuffer, attach_reward_source

    model = PPO(
        "MlpPolicy", venv, n_steps=32, batch_size=32, n_epochs=2, seed=0, device="cpu",
        rollout_buffer_class=DeferredRolloutBuffer if deferred else None,
    )
    attach_reward_source(model)
    model.learn(steps, callback=callback)
    return model


class Spy(RemoteRewardModel):
    """Records what the wrapper hands the reward model: frame arrays or ``ScoredFrame`` stand-ins."""

    def __init__(self, service):
        super().__init__(service)
        self.kinds: set[str] = set()

    def __call__(self, frames):
        self.kinds.update(type(f).__name__ for f in frames)
        return super().__call__(frames)


@pytest.mark.slow
@pytest.mark.parametrize(
    "deferred, on_workers", [(False, False), (True, False), (True, True)], ids=["per_step", "deferred", "scored_on_workers"]
)
def test_ppo_on_ray_with_a_replica_killed_mid_run_equals_single_process(ray_env, deferred, on_workers):
    """PPO on 2 Ray env workers scored by a Ray replica that is killed while it holds a request:
    the rewards, returns and advantages the learner trains on, and the trained weights, are
    bit-identical to a single-process run (nothing lost, nothing scored twice). With
    ``on_workers`` the env workers send the frames to the replica and the learner gets rewards."""
    steps = 3 * 64
    local = Snapshots()
    local_model = _ppo(
        make_vlm_vec_env("CartPole-v1", 2, CartPolePixelReward(), deferred=deferred, score_batch_size=10, seed=0, env_kwargs=SHORT_EPISODES),
        steps, local, deferred,
    )
    service = RewardService(ORACLE, 1, max_wait_s=0.02)
    killer: list[threading.Thread] = []

    def kill_at_step_40(callback: Snapshots) -> None:
        if callback.num_timesteps == 80 and not killer:  # from another thread, while a request is held
            killer.append(threading.Thread(target=kill_while_holding, args=(service,), daemon=True))
            killer[0].start()

    remote = Snapshots(on_step=kill_at_step_40)
    venv_ray = RayVecEnv("CartPole-v1", 2, 2, seed=0, env_kwargs=SHORT_EPISODES, reward_service=service) if on_workers else ray_env
    spy = Spy(service)
    try:
        venv = VLMRewardVecEnvWrapper(venv_ray, spy, deferred=deferred, score_batch_size=10)
        remote_model = _ppo(venv, steps, remote, deferred)
        killer[0].join(30)
        assert not killer[0].is_alive()
        assert service.stats()[0]["pid"] != service.replica_info[0]["pid"]  # it was restarted
    finally:
        if on_workers:
            venv_ray.close()
        service.shutdown()
    assert spy.kinds == ({"ScoredFrame"} if on_workers else {"ndarray"})  # frames reached the learner only without on_workers
    assert len(local.buffers) == len(remote.buffers) == 3
    for a, b in zip(local.buffers, remote.buffers):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(np.stack(local.received), np.stack(remote.received))
    for key, value in local_model.policy.state_dict().items():
        torch.testing.assert_close(value, remote_model.policy.state_dict()[key], rtol=0, atol=0)


@pytest.mark.slow
def test_killed_env_worker_is_replaced_and_training_continues(ray_env, local_ray):
    service = RewardService(ORACLE, 1)
    recording = Recording(RemoteRewardModel(service))
    state: dict[str, object] = {}

    def kill_worker(callback: Snapshots) -> None:
        if callback.num_timesteps == 40:
            state["obs"] = np.array(callback.locals["new_obs"])  # what the policy acts on next
            state["was_done"] = bool(callback.locals["dones"][1])
            state["frames"] = len(recording.frames)
            ray.kill(ray_env.workers[1], no_restart=True)
        if callback.num_timesteps == 42:
            state["infos"] = callback.locals["infos"]
            state["dones"] = np.array(callback.locals["dones"])

    restarts = ray_env.worker_restarts
    try:
        callback = Snapshots(on_step=kill_worker)
        model = _ppo(VLMRewardVecEnvWrapper(ray_env, recording), 128, callback, deferred=False)
    finally:
        service.shutdown()
    assert model.num_timesteps == 128 and ray_env.worker_restarts == restarts + 1
    cut = state["infos"][1]  # sub-environment 1 lived in the killed worker
    assert state["dones"].tolist() == [state["dones"][0], True] and cut["worker_restarted"] and cut["TimeLimit.truncated"]
    np.testing.assert_array_equal(cut["terminal_observation"], state["obs"][1])  # the step did not move
    assert "worker_restarted" not in state["infos"][0]
    # the rewards the learner received are single-process scoring of the frames it sent, step by step
    oracle = CartPolePixelReward()
    assert len(recording.frames) == len(callback.received) == 64
    for sent, got in zip(recording.frames, callback.received):
        np.testing.assert_array_equal(got, oracle(sent))
    if not state["was_done"]:  # the cut step is scored on the frame of the state it did not leave
        np.testing.assert_array_equal(recording.frames[state["frames"]][1], recording.frames[state["frames"] - 1][1])


@pytest.mark.slow
def test_killed_env_worker_that_scores_its_frames_is_replaced(local_ray):
    """With the workers scoring their own frames, a killed worker's cut step is rewarded as staying:
    the reward of the frame of the state it did not leave, which the learner received one step before."""
    service = RewardService(ORACLE, 1)
    venv_ray = RayVecEnv("CartPole-v1", 2, 2, seed=0, env_kwargs=SHORT_EPISODES, reward_service=service)
    spy = Spy(service)
    state: dict[str, object] = {}

    def kill_worker(callback: Snapshots) -> None:
        if callback.num_timesteps == 40:
            state["was_done"] = bool(callback.locals["dones"][1])
            ray.kill(venv_ray.workers[1], no_restart=True)
        if callback.num_timesteps == 42:
            state["info"] = callback.locals["infos"][1]

    try:
        callback = Snapshots(on_step=kill_worker)
        model = _ppo(VLMRewardVecEnvWrapper(venv_ray, spy), 128, callback, deferred=False)
    finally:
        venv_ray.close()
        service.shutdown()
    assert model.num_timesteps == 128 and venv_ray.worker_restarts == 1
    assert state["info"]["worker_restarted"] and state["info"]["TimeLimit.truncated"]
    assert "ScoredFrame" in spy.kinds
    if state["was_done"]:  # the state it did not leave was a reset: its frame went to the learner to be scored
        assert "ndarray" in spy.kinds
    else:  # step 21 (of 2 envs) is the cut one
        assert callback.received[20][1] == callback.received[19][1] and spy.kinds == {"ScoredFrame"}


# ---------------------------------------------------------------------------------------------
# training


@pytest.mark.slow
@pytest.mark.parametrize("on_workers", [False, True], ids=["frames_to_learner", "scored_on_workers"])
def test_ppo_training_on_ray_with_two_env_workers_and_one_replica(local_ray, tmp_path, tiny_hf_clip, on_workers):
    """The issue's CI run: CartPole, 2 env workers, 1 reward replica with the tiny CLIP, local Ray."""
    import csv

    scale = {"num_env_workers": 2, "num_reward_replicas": 1, "score_on_workers": on_workers}
    config = _config(tmp_path, tiny_hf_clip, scale=scale)
    run_dir = train(config, progress_bar=False)
    info = latest_checkpoint(run_dir)
    assert info.reason == "final" and info.num_timesteps == config.total_steps
    assert PPO.load(run_dir / "final_model.zip", device="cpu").num_timesteps == 256
    with open(run_dir / "episodes.csv", newline="", encoding="utf-8") as f:
        episodes = list(csv.DictReader(f))
    assert episodes and all(float(r["gt_return"]) == int(r["length"]) for r in episodes)
    with open(run_dir / "logs" / "progress.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert any(row["rollout/vlm_return"] for row in rows)


@pytest.mark.slow
def test_runtime_serves_ground_truth_runs_without_replicas(local_ray, tmp_path):
    scale = {"num_env_workers": 1, "num_reward_replicas": 4, "gpus_per_replica": 1}
    config = _config(tmp_path, None, reward={"kind": "ground_truth"}, model={"name": None}, scale=scale)
    with RayRuntime(config, local_reward=build_reward_model(config)) as runtime:
        assert runtime.service is None  # no replicas, so no GPUs asked
        venv = runtime.make_training_env(seed=0)
        venv.reset()
        _, rewards, _, _ = venv.step(np.zeros(2, dtype=int))
        assert rewards.tolist() == [1.0, 1.0]
        workers = list(runtime._envs[0].workers)
    deadline = time.monotonic() + 30  # the runtime stopped its workers (ray.kill takes effect asynchronously)
    with pytest.raises(ray.exceptions.RayActorError):
        while time.monotonic() < deadline:
            ray.get(workers[0].pid.remote(), timeout=30)
            time.sleep(0.1)


@pytest.mark.slow
def test_cli_train_and_resume_with_a_scale_section(local_ray, tmp_path, tiny_hf_clip):
    import yaml
    from typer.testing import CliRunner

    from vlmreward.cli.main import app
    from vlmreward.rl.config import load_config

    config = _config(tmp_path, tiny_hf_clip).model_dump(mode="json")
    config.pop("scale", None)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scale.replicas: unknown key; allowed keys in scale: address, num_env_workers"):
        load_config(path, ["scale.replicas=2"])
    with pytest.raises(ConfigError, match="env.n_envs"):
        load_config(path, ["scale.num_env_workers=3"])
    result = CliRunner().invoke(app, ["train", str(path), "--set", "scale.num_env_workers=2", "--set", "total_steps=128"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "ray"
    assert load_config(run_dir / "config.yaml").scale.num_env_workers == 2
    resume = ["train", "--resume", str(run_dir), "--set", "total_steps=256", "--set", "scale.num_env_workers=1"]
    result = CliRunner().invoke(app, resume)  # scale may change on resume: it moves the run, it does not change it
    assert result.exit_code == 0, result.output
    assert latest_checkpoint(run_dir).num_timesteps == 256
    assert load_config(run_dir / "config.yaml").scale.num_env_workers == 1
