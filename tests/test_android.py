"""Open-app goals on Android (Baumli et al.'s AndroidEnv domain) through the real ``android_env`` API.

Everything runs on android_env's fake simulator, subclassed to draw a home screen whose icons open
their apps (:mod:`vlmreward.envs.android_device`): android_env's coordinator, task manager, setup
steps, adb call parser and dm_env wrappers all take part. The emulator's settings are checked on
fake SDK directories (no emulator can start here).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

pytest.importorskip("android_env")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import vlmreward.envs  # noqa: E402,F401
from vlmreward.cli.main import app  # noqa: E402
from vlmreward.envs.android import (  # noqa: E402
    ANDROID_APPS_FAMILY,
    AndroidSetupError,
    resolve_emulator_settings,
)
from vlmreward.envs.android_device import LAUNCHER_COMPONENT, LauncherAdbController  # noqa: E402
from vlmreward.envs.goal_conditioning import BagOfWordsTextEncoder, GoalObservation  # noqa: E402
from vlmreward.errors import InvalidParameterError, VLMRewardError  # noqa: E402
from vlmreward.goals import GoalFamilyError, load_goal_family, parse_goal_family  # noqa: E402
from vlmreward.rl.config import load_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FAMILY = REPO / "configs" / "goals" / "android_apps.yaml"
ENV_ID = "vlmreward/AndroidOpenApp-v0"
runner = CliRunner()


@pytest.fixture
def android():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    yield env
    env.close()


# ---------------------------------------------------------------------------------------------
# the app family


def test_app_family_file_is_the_default_and_has_both_wordings_of_the_paper():
    family = load_goal_family(FAMILY)
    assert family.to_dict() == parse_goal_family(ANDROID_APPS_FAMILY).to_dict()
    assert family.is_app_family and family.colours == [] and len(family.objects) == 12
    sentences = {g.sentence for g in family.goals(templates="all")}
    assert {"Screenshot of Calculator on Android", "Open Calculator"} <= sentences
    split = family.split()
    assert split.by == "app" and {g.object.name for g in split.held_out} == {"Clock", "Maps"}
    assert {g.object.name for g in split.train}.isdisjoint({"Clock", "Maps"}) and len(split.train) == 10
    negatives = family.negatives_for("Open Calculator")
    assert len(negatives) == 11 and all(n.sentence.startswith("Open ") and n.object.name != "Calculator" for n in negatives)
    calculator = family.object_named("Calculator")
    assert calculator.detail("package") == "com.google.android.calculator"
    assert parse_goal_family(family.to_dict()).to_dict() == family.to_dict()  # round trip


@pytest.mark.parametrize(
    "change, message",
    [
        ({"apps": [{"name": "A", "package": "nodots"}, {"name": "B", "package": "b.c"}]}, "apps[0].package: 'nodots' is not an Android package"),
        ({"templates": {"open": "Open the {colour} {app}"}}, "an app family's templates use {app}; not {colour}"),
        ({"split": {"by": "colour", "held_out": ["red"]}}, "splits by app, template or goal_type"),
        ({"split": {"by": "app", "held_out": ["Pinball"]}}, "'Pinball' is not in goal family"),
        ({"objects": {"kinds": ["box"], "colours": ["red", "blue"]}}, "either objects: (kinds and colours) or apps:"),
        ({"apps": [{"name": "A", "package": "a.b"}, {"name": "B", "package": "a.b"}]}, "packages must be distinct"),
    ],
)
def test_app_family_errors_name_the_key(change, message):
    with pytest.raises(GoalFamilyError) as err:
        parse_goal_family({**ANDROID_APPS_FAMILY, **change})
    assert message in str(err.value)


def test_object_family_refuses_app_placeholders_and_app_splits():
    with pytest.raises(GoalFamilyError, match=r"\{app\} is for app families"):
        parse_goal_family({"objects": {"kinds": ["box"], "colours": ["red", "blue"]}, "templates": {"open": "open {app}"}})
    family = parse_goal_family({"objects": {"kinds": ["box"], "colours": ["red", "blue"]}, "templates": {"find": "find {object}"}})
    with pytest.raises(InvalidParameterError, match="has objects, not apps"):
        family.split("app", ["red box"])


# ---------------------------------------------------------------------------------------------
# the environment on the fake device


def test_reset_shows_the_home_screen_and_tapping_the_goal_icon_opens_the_goal_app(android):
    u = android.unwrapped
    assert android.action_space == gym.spaces.Discrete(24)
    assert android.observation_space == gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    obs, info = android.reset(seed=3)
    goal = info["goal"]
    assert info["foreground"] == LAUNCHER_COMPONENT and info["is_success"] is False and info["goal_type"] == "open"
    assert goal.object.name not in ("Clock", "Maps")  # training goals by default
    home = android.render()
    assert home.shape == (320, 180, 3) and home.dtype == np.uint8
    # the policy's pixels: android_env's ImageRescaleWrapper, i.e. PIL's default resize of the screenshot
    np.testing.assert_array_equal(obs, np.asarray(Image.fromarray(home).resize((64, 64))))

    obs, reward, terminated, truncated, info = android.step(u.tap_action(goal.object.name))
    assert info["is_success"] is True and reward == 1.0 and not terminated and not truncated
    row, column = u.simulator.cell_of([o.name for o in u.family.objects].index(goal.object.name))
    x, y = u.simulator.last_tap  # the centre of grid cell (row, column) of the 6 × 4 tap grid, in pixels
    assert (x, y) == (int((column + 0.5) / 4 * 180), int((row + 0.5) / 6 * 320))
    assert info["foreground"].split("/")[0] == goal.object.detail("package")
    assert info["goal_state"].success and info["goal_state"].goal is goal
    app_screen = android.render()
    assert not np.array_equal(app_screen, home)

    _, reward, _, _, info = android.step(u.tap_action(None))  # the navigation bar's home button
    assert info["foreground"] == LAUNCHER_COMPONENT and reward == 0.0
    np.testing.assert_array_equal(android.render(), home)
    other = next(o.name for o in u.family.objects if o != goal.object)
    _, reward, _, _, info = android.step(u.tap_action(other))
    assert reward == 0.0 and info["is_success"] is False and info["foreground"] != LAUNCHER_COMPONENT
    _, info = android.reset()  # the task's reset step presses HOME through adb
    assert info["foreground"] == LAUNCHER_COMPONENT


def test_every_app_has_a_cell_of_the_default_grid_and_its_own_screen(android):
    u = android.unwrapped
    android.reset(seed=0)
    screens, actions = [], set()
    for obj in u.family.objects:
        action = u.tap_action(obj.name)
        actions.add(action)
        _, _, _, _, info = android.step(action)
        assert info["foreground"] == f"{obj.detail('package')}/{obj.detail('activity')}"
        screens.append(android.render())
        android.step(u.tap_action(None))
    assert len(actions) == 12 and len({s.tobytes() for s in screens}) == 12


def test_episodes_end_at_the_time_limit_or_on_success_when_asked():
    env = gym.make(ENV_ID, max_episode_steps=3)
    env.reset(seed=1)
    ends = [env.step(0)[2:4] for _ in range(3)]
    assert ends[-1] == (False, True) and all(e == (False, False) for e in ends[:-1])
    env.close()
    env = gym.make(ENV_ID, terminate_on_success=True, goals=["Open Chrome"])
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(env.unwrapped.tap_action("Chrome"))
    assert terminated and reward == 1.0
    env.close()


def test_continuous_taps_and_render_size():
    env = gym.make(ENV_ID, render_mode="rgb_array", action_grid=None, render_size=(224, 112), goal_set="held_out")
    assert env.action_space == gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    _, info = env.reset(seed=0)
    assert info["goal"].object.name in ("Clock", "Maps")
    xy = env.unwrapped.tap_action(info["goal"].object.name)
    _, reward, _, _, info = env.step(xy)
    assert reward == 1.0 and env.render().shape == (224, 112, 3)
    with pytest.raises(InvalidParameterError, match="continuous tap"):
        env.step(np.zeros(3, np.float32))
    env.close()


def test_success_is_the_foreground_activity_that_adb_reports(android, monkeypatch):
    """Success comes from android_env's get_current_activity request, not from the screen: a fake
    foreground activity makes the home screen a success; am start through adb opens the app."""
    u = android.unwrapped
    _, info = android.reset(seed=0, options={"goal": "Open Settings"})
    assert info["goal"].object.name == "Settings" and not info["is_success"]
    real = LauncherAdbController.execute_command
    calls = []

    def fake_foreground(self, args, timeout=None, device_specific=True):
        calls.append(list(args))
        if args[:4] == ["shell", "am", "stack", "list"]:
            return b"  taskId=7: com.android.settings/.Settings visible=true topActivity=ComponentInfo{com.android.settings/.Settings}"
        return real(self, args, timeout, device_specific)

    monkeypatch.setattr(LauncherAdbController, "execute_command", fake_foreground)
    _, reward, _, _, info = android.step(u.tap_action(None))  # stays on the home screen
    assert u.simulator.foreground is None and info["foreground"] == "com.android.settings/.Settings" and reward == 1.0
    assert ["shell", "am", "stack", "list", "|", "grep", "-E", "visible=true"] in calls
    monkeypatch.setattr(LauncherAdbController, "execute_command", real)

    u.start_app("Settings")  # AdbRequest.start_activity → `am start -n` on the device
    assert u.simulator.foreground_component() == "com.android.settings/.Settings" and u.goal_success()
    u.start_app(None)
    assert u.simulator.foreground is None and not u.goal_success()
    with pytest.raises(InvalidParameterError, match="has no object 'Pinball'"):
        u.start_app("Pinball")


def test_the_task_resets_through_android_envs_setup_steps():
    three = {**ANDROID_APPS_FAMILY, "apps": ANDROID_APPS_FAMILY["apps"][:3], "split": None}  # android_env waits 0.5 s a step
    env = gym.make(ENV_ID, family=three, stop_apps_on_reset=True)
    u = env.unwrapped
    env.reset(seed=0)
    env.step(u.tap_action("Camera"))
    assert u.simulator.foreground is not None
    env.reset(seed=0)
    assert u.simulator.foreground is None
    assert env.unwrapped._android.stats()["error_count_adb_request"] == 0  # android_env's setup-step interpreter ran them
    env.close()


def test_goal_conditioned_observation_carries_the_goal_embedding(android):
    encoder = BagOfWordsTextEncoder(dim=16)
    env = GoalObservation(android, encoder)
    obs, info = env.reset(seed=2)
    assert set(obs) == {"image", "goal"} and obs["image"].shape == (64, 64, 3)
    np.testing.assert_array_equal(obs["goal"], encoder([info["goal"].sentence])[0])


def test_environment_errors():
    with pytest.raises(InvalidParameterError, match="has objects, not apps"):
        gym.make(ENV_ID, family=str(REPO / "configs" / "goals" / "miniworld_objects.yaml"))
    with pytest.raises(InvalidParameterError, match="simulator 'phone'"):
        gym.make(ENV_ID, simulator="phone")
    with pytest.raises(InvalidParameterError, match="no cell of the 2 × 2 tap grid"):
        gym.make(ENV_ID, action_grid=(2, 2)).unwrapped.tap_action("Calculator")
    with pytest.raises(AndroidSetupError, match="emulator.avd: unknown key"):
        gym.make(ENV_ID, emulator={"avd": "x"})
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    with pytest.raises(InvalidParameterError, match="not one of 0..23"):
        env.step(24)
    with pytest.raises(VLMRewardError, match="could not start Pinball"):
        env.unwrapped.family.objects.append(env.unwrapped.family.objects[0].app("Pinball", "com.example.pinball"))
        env.unwrapped.start_app("Pinball")
    env.close()


# ---------------------------------------------------------------------------------------------
# the real emulator's settings


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_emulator_settings_name_the_first_missing_piece(tmp_path):
    sdk, avd_home = tmp_path / "Sdk", tmp_path / "avd"
    kvm = tmp_path / "kvm"
    base = {"avd_name": "Pixel_6_API_34", "sdk_root": str(sdk), "avd_home": str(avd_home), "kvm_device": str(kvm)}
    with pytest.raises(AndroidSetupError, match="emulator.avd_name is required"):
        resolve_emulator_settings({}, environ={})
    with pytest.raises(AndroidSetupError, match=f"no Android SDK at {sdk}"):
        resolve_emulator_settings(base, environ={})
    sdk.mkdir()
    with pytest.raises(AndroidSetupError, match=f"adb not found at {sdk / 'platform-tools' / 'adb'}"):
        resolve_emulator_settings(base, environ={})
    _executable(sdk / "platform-tools" / "adb")
    with pytest.raises(AndroidSetupError, match="the Android emulator is not at"):
        resolve_emulator_settings(base, environ={})
    _executable(sdk / "emulator" / "emulator")
    with pytest.raises(AndroidSetupError, match=f"{kvm} does not exist: the Android emulator needs KVM"):
        resolve_emulator_settings(base, environ={})
    kvm.write_text("")
    if os.geteuid() != 0:  # root may use any file
        kvm.chmod(0)
        with pytest.raises(AndroidSetupError, match="add your user to the kvm group"):
            resolve_emulator_settings(base, environ={})
        kvm.chmod(0o600)
    with pytest.raises(AndroidSetupError, match="AVD 'Pixel_6_API_34' not found in .*avdmanager create avd"):
        resolve_emulator_settings(base, environ={})
    avd_home.mkdir()
    (avd_home / "Pixel_6_API_34.ini").write_text("path=x\n")
    settings = resolve_emulator_settings(base, environ={})
    assert settings.adb_path == str(sdk / "platform-tools" / "adb") and settings.emulator_path == str(sdk / "emulator" / "emulator")
    # the SDK from the environment; attaching to a running emulator needs only adb
    attach = {"adb_port": 5555, "emulator_console_port": 5554, "grpc_port": 8554}
    assert resolve_emulator_settings(attach, environ={"ANDROID_SDK_ROOT": str(sdk)}).sdk_root == str(sdk)
    with pytest.raises(AndroidSetupError, match="emulator.gpu_mode"):
        resolve_emulator_settings({**base, "gpu_mode": "magic"}, environ={})


def test_emulator_environment_fails_in_one_line_before_anything_starts(tmp_path):
    with pytest.raises(AndroidSetupError, match="no Android SDK at"):
        gym.make(ENV_ID, simulator="emulator", emulator={"avd_name": "x", "sdk_root": str(tmp_path / "none")})


def test_train_on_an_emulator_without_the_sdk_exits_2_and_writes_nothing(tmp_path, monkeypatch, tiny_hf_clip):
    monkeypatch.setenv("ANDROID_SDK_ROOT", str(tmp_path / "no-sdk"))
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, [
        "train", "configs/android/open_app.yaml", "--set", f"model={tiny_hf_clip}", "--set", f"output_dir={tmp_path / 'runs'}",
    ])
    assert result.exit_code == 2, result.output
    assert "no Android SDK at" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ---------------------------------------------------------------------------------------------
# datasets, evaluation and training through the same commands as MiniWorld


def test_shipped_android_configs_load(monkeypatch):
    monkeypatch.chdir(REPO)
    real = load_config(REPO / "configs" / "android" / "open_app.yaml")
    fake = load_config(REPO / "configs" / "android" / "open_app_fake.yaml")
    assert real.env.kwargs["simulator"] == "emulator" and fake.env.kwargs["simulator"] == "fake"
    for config in (real, fake):
        assert config.reward.kind == "goal_family_softmax" and config.goals.load_family().is_app_family
        assert config.policy == "MultiInputPolicy"
    prompts = yaml.safe_load((REPO / "configs" / "prompts" / "android_app_templates.yaml").read_text())
    assert prompts["goal_templates"]["screenshot"]["open"] == "Screenshot of {app} on Android"
    assert prompts["goal_templates"]["instruction"]["open"] == "Open {app}"


@pytest.fixture(scope="module")
def app_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("android") / "apps"
    result = runner.invoke(app, ["collect", ENV_ID, "--out", str(out), "--policy", "scripted", "--frames", "18",
                                 "--env-kwarg", f"family={FAMILY}", "--seed", "0"])
    assert result.exit_code == 0, result.output
    return out


def test_collect_sweep_labels_the_goal_app_open_and_only_it(app_sweep):
    from vlmreward.eval import load_dataset

    data = load_dataset(app_sweep)
    assert data.frames.shape == (18, 320, 180, 3)
    kinds = data.table["state_kind"]
    labels = data.label("is_success")
    assert labels[kinds == "goal_app"].all() and not labels[kinds != "goal_app"].any()
    goal_apps = [g.split(":")[1] for g in data.table["goal_key"]]
    np.testing.assert_array_equal(data.table["foreground_app"] == np.array(goal_apps), labels)
    assert data.metadata["goal_family"]["name"] == "android_apps" and data.metadata["goal_set"] == "train"
    assert data.metadata["android"]["simulator"] == "fake"


def test_evaluate_and_sweep_score_each_screenshot_against_its_goal(app_sweep, tiny_hf_clip, hf_clip_model, tmp_path):
    from vlmreward.eval import load_dataset
    from vlmreward.rewards import GoalFamilySoftmaxReward

    out = tmp_path / "evaluation"
    result = runner.invoke(app, ["evaluate", str(app_sweep), "--model", str(tiny_hf_clip), "--out", str(out), "--temperature", "0.05"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["prompts"]["per_frame_goals"] and (out / "report.html").stat().st_size > 0
    # the rewards are the goal-family reward of each frame against its own goal (the other apps as negatives)
    data = load_dataset(app_sweep)
    reward = GoalFamilySoftmaxReward(hf_clip_model, data.metadata["goal_family"], temperature=0.05)
    expected = reward.score_with_goals(np.array(data.frames), data.table["goal_key"].tolist())
    from vlmreward.eval import evaluate_dataset

    direct = evaluate_dataset(data, hf_clip_model, None, tmp_path / "direct", temperatures=[0.05], report=False)
    np.testing.assert_allclose(direct.results[0].rewards, expected, rtol=1e-5, atol=1e-7)

    sweep = tmp_path / "sweep"
    prompts = REPO / "configs" / "prompts" / "android_app_templates.yaml"
    result = runner.invoke(app, ["sweep", str(app_sweep), "--model", str(tiny_hf_clip), "--prompts", str(prompts), "--out", str(sweep)])
    assert result.exit_code == 0, result.output
    rows = (sweep / "results.csv").read_text().splitlines()
    assert any(r.startswith("screenshot,") or ",screenshot," in r for r in rows) and any("instruction" in r for r in rows)


def test_collect_expert_episodes_open_the_goal_app(tmp_path):
    from vlmreward.eval import load_dataset

    result = runner.invoke(app, ["collect", ENV_ID, "--out", str(tmp_path / "ep"), "--policy", "expert", "--episodes", "2",
                                 "--max-steps", "3", "--seed", "0"])
    assert result.exit_code == 0, result.output
    data = load_dataset(tmp_path / "ep")
    labels, episodes = data.label("is_success"), data.table["episode"]
    assert labels[episodes == 0].all()  # the expert's episode: one tap opens the app
    assert len(data) == 6


@pytest.mark.slow
def test_android_goal_family_trains_and_evaluates_policy_on_the_fake_device(tmp_path, tiny_hf_clip, monkeypatch):
    """The shipped fake-device config, a few hundred steps with the tiny CLIP, through the CLI."""
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, [
        "train", "configs/android/open_app_fake.yaml", "--set", f"model={tiny_hf_clip}", "--set", "env.n_envs=2",
        "--set", "total_steps=256", "--set", "eval_every=256", "--set", "eval_episodes=2", "--set", "checkpoint_every=256",
        "--set", "algorithm_kwargs.n_steps=64", "--set", "model.device=cpu", "--set", f"output_dir={tmp_path / 'runs'}",
    ])
    assert result.exit_code == 0, result.output
    run_dir = next((tmp_path / "runs").iterdir())
    assert (run_dir / "final_model.zip").is_file()
    episodes = (run_dir / "episodes.csv").read_text().splitlines()
    assert len(episodes) > 10 and "open" in episodes[1]
    result = runner.invoke(app, ["evaluate-policy", str(run_dir), "--episodes", "2", "--no-video"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert set(evaluation["goal_sets"]) == {"train", "held_out"}
    held = evaluation["goal_sets"]["held_out"]["goals"]
    assert held and all(g in ("Screenshot of Clock on Android", "Screenshot of Maps on Android") for g in held)
    assert list((run_dir / "videos").glob("eval_*.mp4"))
