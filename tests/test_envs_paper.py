"""VLM-RM's environments as gymnasium ids: CartPole, textured MountainCar, textured Humanoid.

Covers registration (without importing MuJoCo), make/reset/step/render of every id, the
MountainCar picture (textured, blue sky, yellow flag at x = 0.45, car where the state says) and
its unchanged dynamics, the Humanoid's fixed episode length, fast render settings, textured
frames, unchanged physics, render-backend errors, and the ground-truth success detectors on
hand-set states.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gc  # noqa: E402
import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vlmreward.envs  # noqa: E402,F401  (registers the ids)
from vlmreward.envs import success  # noqa: E402
from vlmreward.envs.humanoid_poses import HUMANOID_POSES_SET_BY_HAND, set_humanoid_pose  # noqa: E402
from vlmreward.envs.registration import CARTPOLE_ID, HUMANOID_ID, MOUNTAIN_CAR_ID, register_envs  # noqa: E402
from vlmreward.errors import InvalidParameterError, VLMRewardError  # noqa: E402


def n_colours(frame: np.ndarray) -> int:
    return len(np.unique(frame.reshape(-1, 3), axis=0))


# ------------------------------------------------------------------------------------------
# Registration
# ------------------------------------------------------------------------------------------


def test_import_registers_ids_without_importing_mujoco():
    code = (
        "import sys, gymnasium as gym, vlmreward.envs\n"
        "ids = ['vlmreward/CartPole-v1', 'vlmreward/MountainCarContinuousTextured-v0',\n"
        "       'vlmreward/HumanoidTextured-v0']\n"
        "assert all(i in gym.registry for i in ids), sorted(k for k in gym.registry if 'vlmreward' in k)\n"
        "assert 'mujoco' not in sys.modules, 'importing vlmreward.envs imported mujoco'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_register_envs_is_idempotent(recwarn):
    register_envs()
    register_envs()
    assert not [w for w in recwarn if "already in registry" in str(w.message)]
    assert gym.spec(HUMANOID_ID).max_episode_steps == 200
    assert gym.spec(CARTPOLE_ID).max_episode_steps == 500


# ------------------------------------------------------------------------------------------
# Every id: make, reset, step, render
# ------------------------------------------------------------------------------------------

SMOKE = [
    pytest.param(CARTPOLE_ID, {}, (400, 600, 3), 120, id="cartpole"),
    pytest.param(MOUNTAIN_CAR_ID, {}, (224, 224, 3), 120, id="mountaincar"),
    pytest.param(
        MOUNTAIN_CAR_ID, {"render_width": 160, "render_height": 96}, (96, 160, 3), 20, id="mountaincar-160x96"
    ),
    pytest.param(HUMANOID_ID, {"task": "kneeling"}, (224, 224, 3), 60, id="humanoid"),
    pytest.param(
        HUMANOID_ID, {"task": "standing", "render_width": 128, "render_height": 96}, (96, 128, 3), 10,
        id="humanoid-128x96",
    ),
]


@pytest.mark.parametrize(("env_id", "kwargs", "shape", "steps"), SMOKE)
def test_make_reset_step_render(env_id, kwargs, shape, steps):
    if env_id == HUMANOID_ID:
        pytest.importorskip("mujoco")
    env = gym.make(env_id, render_mode="rgb_array", **kwargs)
    try:
        env.action_space.seed(0)
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert isinstance(info["is_success"], bool)
        for t in range(steps):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert isinstance(info["is_success"], bool)
            assert np.isfinite(reward)
            if t % max(1, steps // 3) == 0:
                frame = env.render()
                assert frame.dtype == np.uint8 and frame.shape == shape
                assert frame.std() > 5  # not blank
            if terminated or truncated:
                obs, info = env.reset()
    finally:
        env.close()


def test_cartpole_is_success_is_the_upright_detector():
    env = gym.make(CARTPOLE_ID)
    env.reset(seed=1)
    seen = set()
    for _ in range(200):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        state = env.unwrapped.state
        assert info["is_success"] == (abs(state[2]) < 0.1 and abs(state[0]) <= 2.4)
        seen.add(info["is_success"])
        if terminated:  # gymnasium ends the episode at |θ| > 12° or |x| > 2.4: never upright there
            assert info["is_success"] is False
        if terminated or truncated:
            env.reset()
    assert seen == {True, False}
    env.close()


# ------------------------------------------------------------------------------------------
# Success detectors: classic control
# ------------------------------------------------------------------------------------------


def test_cartpole_upright_thresholds():
    assert success.cartpole_upright([0.0, 0.0, 0.0, 0.0])
    assert success.cartpole_upright(np.array([1.0, -0.5, -0.09, 2.0], dtype=np.float32))
    assert not success.cartpole_upright([0.0, 0.0, 0.15, 0.0])  # leaning 8.6°
    assert not success.cartpole_upright([0.0, 0.0, -0.21, 0.0])  # past gymnasium's 12° limit
    assert not success.cartpole_upright([2.5, 0.0, 0.0, 0.0])  # cart off the track
    assert success.cartpole_upright([0.0, 0.0, 0.15, 0.0], max_angle=0.2)
    with pytest.raises(InvalidParameterError, match="4-number state"):
        success.cartpole_upright([0.0, 0.0])


def test_mountain_car_at_flag_threshold():
    assert success.mountain_car_at_flag([0.45, 0.0])
    assert success.mountain_car_at_flag(np.array([0.6, -0.01], dtype=np.float32))
    assert not success.mountain_car_at_flag([0.449, 0.07])
    assert not success.mountain_car_at_flag([-0.5, 0.0])
    with pytest.raises(InvalidParameterError, match="2-number state"):
        success.mountain_car_at_flag([0.5, 0.0, 0.0])


# ------------------------------------------------------------------------------------------
# MountainCar: textured picture, unchanged dynamics
# ------------------------------------------------------------------------------------------


def _pump_policy(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Push along the velocity (reaches the flag in ≈ 100 steps), plus noise."""
    push = 1.0 if obs[1] >= 0 else -1.0
    return np.clip(np.array([push + rng.normal(0, 0.3)], dtype=np.float32), -1, 1)


def test_mountain_car_dynamics_identical_to_gymnasium():
    ours = gym.make(MOUNTAIN_CAR_ID)
    theirs = gym.make("MountainCarContinuous-v0")
    for seed in (0, 7):
        rng = np.random.default_rng(seed)
        o1, _ = ours.reset(seed=seed)
        o2, _ = theirs.reset(seed=seed)
        np.testing.assert_array_equal(o1, o2)
        reached = False
        for _ in range(300):
            a = _pump_policy(o1, rng)
            o1, r1, te1, tr1, i1 = ours.step(a)
            o2, r2, te2, tr2, _ = theirs.step(a)
            np.testing.assert_array_equal(o1, o2)
            assert (r1, te1, tr1) == (r2, te2, tr2)
            assert i1["is_success"] == bool(o1[0] >= 0.45)
            if te1:
                reached = True
                assert i1["is_success"] and r1 > 90  # the +100 goal reward
                break
        assert reached, "the pumping policy should reach the flag within 300 steps"
    ours.close()
    theirs.close()


@pytest.fixture(scope="module")
def mc_env():
    env = gym.make(MOUNTAIN_CAR_ID, render_mode="rgb_array")
    env.reset(seed=0)
    yield env
    env.close()


def _mc_frame(env, position: float) -> np.ndarray:
    env.unwrapped.state = np.array([position, 0.0])
    return env.render()


def _column(position: float, width: int = 224) -> float:
    return (position + 1.2) / 1.8 * width


def test_mountain_car_frame_is_textured_with_blue_sky(mc_env):
    frame = _mc_frame(mc_env, -0.5)
    flat = gym.make("MountainCarContinuous-v0", render_mode="rgb_array")
    flat.reset(seed=0)
    flat_frame = flat.render()
    flat.close()
    assert n_colours(frame) > 2000 > 5 * n_colours(flat_frame)
    sky = frame[: 224 // 6].reshape(-1, 3).astype(float).mean(axis=0)  # top sixth: sky only
    assert sky[2] > sky[0] + 60 and sky[2] > sky[1] + 30, sky
    ground = frame[-224 // 8 :].reshape(-1, 3).astype(float).mean(axis=0)  # bottom: earth, no sky
    assert ground[2] < ground[0], ground


def test_mountain_car_flag_is_yellow_at_goal(mc_env):
    frame = _mc_frame(mc_env, -0.5).astype(int)
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]
    yellow = (r > 200) & (g > 160) & (b < 90)
    rows, cols = np.nonzero(yellow)
    assert len(cols) > 30
    goal_col = _column(0.45)
    assert goal_col - 1 <= cols.min() and cols.max() <= goal_col + 0.1 * 224
    ground_row = 224 - (0.08 * 224 + (math.sin(3 * 0.45) * 0.45 + 0.55) * 224 / 1.8)
    assert rows.max() < ground_row  # flying above the ground at the goal


@pytest.mark.parametrize("position", [-1.1, -0.52, 0.0, 0.3, 0.5])
def test_mountain_car_is_drawn_at_state_position(mc_env, position):
    frame = _mc_frame(mc_env, position).astype(int)
    red = (frame[..., 0] > 140) & (frame[..., 1] < 70) & (frame[..., 2] < 80)
    _, cols = np.nonzero(red)
    assert len(cols) > 40
    assert abs(cols.mean() - _column(position)) < 0.06 * 224


def test_mountain_car_frames_differ_only_around_the_car(mc_env):
    a, b = _mc_frame(mc_env, -0.9), _mc_frame(mc_env, 0.1)
    np.testing.assert_array_equal(a, _mc_frame(mc_env, -0.9))  # deterministic in the state
    changed_cols = np.nonzero(np.any(a != b, axis=(0, 2)))[0]
    near = np.minimum(np.abs(changed_cols - _column(-0.9)), np.abs(changed_cols - _column(0.1)))
    assert near.max() < 0.12 * 224  # within a car length of either position
    assert np.any(np.abs(changed_cols - _column(-0.9)) < 5) and np.any(np.abs(changed_cols - _column(0.1)) < 5)


def test_mountain_car_render_size_and_mode_errors():
    with pytest.raises(InvalidParameterError, match="too small"):
        gym.make(MOUNTAIN_CAR_ID, render_mode="rgb_array", render_width=8)


# ------------------------------------------------------------------------------------------
# Humanoid
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mujoco():
    return pytest.importorskip("mujoco")


def test_humanoid_never_terminates_and_truncates_at_max_steps(mujoco):
    for max_steps, expected in ((None, 200), (150, 150)):
        kwargs = {} if max_steps is None else {"max_episode_steps": max_steps}
        env = gym.make(HUMANOID_ID, **kwargs)
        env.action_space.seed(3)
        env.reset(seed=3)
        lowest_torso = np.inf
        for t in range(1, expected + 1):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            lowest_torso = min(lowest_torso, float(env.unwrapped.data.qpos[2]))
            assert not terminated
            assert truncated == (t == expected), t
        # it fell: gymnasium's Humanoid-v5 would have terminated (torso below 1.0 m)
        assert lowest_torso < 1.0
        env.close()


def test_humanoid_physics_identical_to_humanoid_v5(mujoco):
    ours = gym.make(HUMANOID_ID)
    theirs = gym.make("Humanoid-v5", terminate_when_unhealthy=False)
    rng = np.random.default_rng(0)
    o1, _ = ours.reset(seed=5)
    o2, _ = theirs.reset(seed=5)
    np.testing.assert_array_equal(o1, o2)
    for _ in range(40):
        a = rng.uniform(-0.4, 0.4, size=17).astype(np.float32)
        o1, r1, *_ = ours.step(a)
        o2, r2, *_ = theirs.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    ours.close()
    theirs.close()


def test_humanoid_fast_render_settings(mujoco):
    fast = gym.make(HUMANOID_ID).unwrapped
    assert fast.model.vis.quality.shadowsize == 0
    assert fast.model.vis.quality.offsamples == 0
    assert not fast.model.light_castshadow.any()
    assert not fast.model.mat_reflectance.any()
    assert fast.model.vis.global_.offwidth >= 224 and fast.model.vis.global_.offheight >= 224
    hq = gym.make(HUMANOID_ID, high_quality_render=True).unwrapped
    assert hq.model.vis.quality.shadowsize == 4096
    assert hq.model.vis.quality.offsamples == 4
    assert hq.model.light_castshadow.all()
    # the model is gymnasium's humanoid.xml, edited: same bodies and joints, plus our camera
    cam = mujoco.mj_name2id(fast.model, mujoco.mjtObj.mjOBJ_CAMERA, "front")
    assert cam >= 0 and fast.model.cam_mode[cam] == mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM
    assert fast.fullpath.endswith(".xml") and os.path.isfile(fast.fullpath)
    assert fast.model.nbody == 14 and fast.model.njnt == 18
    fast.close()
    hq.close()


def test_humanoid_frame_is_textured_and_faces_the_body(mujoco):
    env = gym.make(HUMANOID_ID, render_mode="rgb_array", task="standing")
    plain = gym.make(HUMANOID_ID, render_mode="rgb_array", visual_options={mujoco.mjtVisFlag.mjVIS_TEXTURE: False})
    env.reset(seed=0)
    plain.reset(seed=0)
    frame, plain_frame = env.render(), plain.render()
    env.close()
    plain.close()
    assert frame.shape == (224, 224, 3) and frame.dtype == np.uint8
    assert n_colours(frame) > n_colours(plain_frame) + 200
    sky = frame[:20].reshape(-1, 3).astype(float).mean(axis=0)
    assert sky[2] > sky[0] + 40, sky  # blue sky at the top
    f = frame.astype(int)
    skin = (f[..., 0] > 150) & (f[..., 0] - f[..., 2] > 50) & (f[..., 0] > f[..., 1]) & (f[..., 1] > f[..., 2])
    rows, cols = np.nonzero(skin)
    assert skin.sum() > 1000  # the figure is large in the frame
    assert abs(cols.mean() - 112) < 30 and abs(rows.mean() - 112) < 40  # and centred
    assert rows.min() > 5 and rows.max() < 218  # head and feet inside the frame


def test_humanoid_is_success_follows_task(mujoco):
    env = gym.make(HUMANOID_ID, task="standing")
    _, info = env.reset(seed=0)
    assert info["is_success"] is True  # starts standing
    successes = []
    for _ in range(60):
        _, _, _, _, info = env.step(env.action_space.sample())
        successes.append(info["is_success"])
    assert all(isinstance(s, bool) for s in successes) and not all(successes)  # it falls
    env.close()
    no_task = gym.make(HUMANOID_ID)
    _, info = no_task.reset(seed=0)
    assert "is_success" not in info and "is_success" not in no_task.step(no_task.action_space.sample())[4]
    no_task.close()
    with pytest.raises(InvalidParameterError, match="unknown Humanoid task"):
        gym.make(HUMANOID_ID, task="moonwalk")


# gymnasium's half-built OffScreenViewer fails in __del__ when its context could not be opened
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_humanoid_render_backend_error(mujoco, monkeypatch):
    from vlmreward.envs.humanoid import RenderBackendError

    env = gym.make(HUMANOID_ID, render_mode="rgb_array")
    env.reset(seed=0)
    monkeypatch.setenv("MUJOCO_GL", "no-such-backend")
    with pytest.raises(RenderBackendError, match="MUJOCO_GL=egl.*MUJOCO_GL=osmesa") as excinfo:
        env.render()
    assert isinstance(excinfo.value, VLMRewardError) and isinstance(excinfo.value, RuntimeError)
    del excinfo
    gc.collect()  # collect the half-built viewer here, under this test's warning filter


# Hand-set poses (shared with `vlmreward collect`'s Humanoid sweep), plus gymnasium's standing pose.
POSES: dict[str, tuple[dict[str, float], float]] = {"standing": ({}, 0.0), **HUMANOID_POSES_SET_BY_HAND}

EXPECTED = {  # pose -> detectors that must say True (all others False)
    "standing": {"standing"},
    "kneeling": {"kneeling"},
    "kneeling_one_knee": {"kneeling"},
    "sitting_on_heels": {"kneeling"},
    "arms_raised": {"arms_raised", "standing"},
    "splits": {"splits"},
    "sitting_legs_forward": set(),
    "lying_arms_up": set(),
    "squat": set(),
    "lunge": set(),
    "lotus": {"lotus"},
    "hands_on_hips": {"hands_on_hips", "standing"},
    "hands_on_chest": {"standing"},
    "hands_touching_in_front": {"standing"},  # touching but not crossing is not "arms crossed"
    "standing_on_one_leg": {"standing_on_one_leg", "standing"},
    "flamingo": {"standing_on_one_leg", "standing"},
    "walking_step": {"standing"},
}


@pytest.fixture(scope="module")
def humanoid_model(mujoco):
    env = gym.make(HUMANOID_ID)
    env.reset(seed=0)
    yield env.unwrapped.model, env.unwrapped.data
    env.close()


@pytest.mark.parametrize("pose", sorted(POSES))
def test_humanoid_detectors_on_hand_set_poses(mujoco, humanoid_model, pose):
    model, data = humanoid_model
    set_humanoid_pose(model, data, *POSES[pose])
    for name in POSES[pose][0]:  # the set angles respect the joint limits
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        lo, hi = model.jnt_range[j]
        assert lo - 1e-9 <= data.qpos[model.jnt_qposadr[j]] <= hi + 1e-9
    detected = {name for name, fn in success.HUMANOID_POSES.items() if fn(model, data)}
    assert detected == EXPECTED[pose]


def test_arms_crossed_detector_on_a_pose_beyond_the_joint_limits(mujoco, humanoid_model):
    from vlmreward.envs.humanoid_poses import ARMS_CROSSED_BEYOND_JOINT_LIMITS

    model, data = humanoid_model
    set_humanoid_pose(model, data, *ARMS_CROSSED_BEYOND_JOINT_LIMITS)
    detected = {name for name, fn in success.HUMANOID_POSES.items() if fn(model, data)}
    assert detected == {"arms_crossed", "standing"}
    # turned 90° about the vertical, the same pose is still crossed (the test is in the torso's frame)
    data.qpos[3:7] = [np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)]
    mujoco.mj_forward(model, data)
    assert success.humanoid_arms_crossed(model, data)


def test_humanoid_detectors_need_the_humanoid_model(mujoco):
    xml = "<mujoco><worldbody><body name='box'><geom size='.1'/></body></worldbody></mujoco>"
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    with pytest.raises(InvalidParameterError, match="gymnasium's Humanoid model"):
        success.humanoid_kneeling(model, data)
    assert set(success.HUMANOID_POSES) >= {"kneeling", "standing", "arms_raised", "splits"}
