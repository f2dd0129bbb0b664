"""Every command the README shows runs, as written, from a checkout (issue 14: "every README command
runs in a test"), and its Python blocks' names exist.

The commands run in order, each as its own process through the installed ``vlmreward`` entry
point, in a folder holding the checkout's ``configs/`` and ``examples/`` (what a fresh clone has).
No pretrained weights can be downloaded here, so the hub ids the README names
and its configs use (``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``,
``microsoft/xclip-base-patch32``, ``HuggingFaceTB/SmolVLM-256M-Instruct``, ``Qwen/Qwen2.5-VL-3B-Instruct``) are placed in a private Hugging Face hub cache as tiny
random-weight models of the same architectures; the commands load them through the hub-cache code
path a real download takes. Only the training budgets are shortened (``BUDGETS``), and the
placeholder ``runs/<run>`` is the run the README trained just before. Installation and the test
command itself are what CI runs (``.ci/run``), so they are not run again here.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import add_to_hub_cache

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
VLMREWARD = Path(sys.executable).parent / "vlmreward"

NOT_RUN = ("pip install", "python3 -m venv", "-m pytest")
"""Installation and the test suite: CI runs exactly these (``.ci/run``)."""

TRAIN_BUDGET = ["--set", "total_steps=128", "--set", "eval_every=128", "--set", "eval_episodes=1",
                "--set", "checkpoint_every=128", "--set", "video=false"]
BUDGETS = {
    "train configs/cartpole.yaml": TRAIN_BUDGET + ["--set", "algorithm_kwargs.learning_starts=64"],
    "train configs/generative/cartpole_vqa.yaml": TRAIN_BUDGET + ["--set", "env.n_envs=1"],
    "relabel vlmreward/cartpole-random-v0": [],
    "train configs/metaworld/drawer_open_episode_video.yaml": TRAIN_BUDGET + [
        "--set", "env.n_envs=2", "--set", "env.kwargs.episode_length=32", "--set", "algorithm_kwargs.learning_starts=64"],
    "train configs/miniworld_goals.yaml": TRAIN_BUDGET + ["--set", "env.n_envs=2", "--set", "algorithm_kwargs.n_steps=64",
                                                         "--set", "algorithm_kwargs.batch_size=64"],
    "train configs/android/open_app_fake.yaml": TRAIN_BUDGET + ["--set", "env.n_envs=2"],
    "train configs/preference/cartpole_oracle.yaml": TRAIN_BUDGET + ["--set", "env.n_envs=2", "--set", "reward.update_every=64",
                                                                    "--set", "algorithm_kwargs.learning_starts=32"],
    "train configs/preference/cartpole_vlm.yaml": TRAIN_BUDGET + ["--set", "env.n_envs=1", "--set", "reward.update_every=64",
                                                                 "--set", "reward.queries_per_update=2",
                                                                 "--set", "algorithm_kwargs.learning_starts=32"],
}
"""Extra ``--set`` overrides per command: seconds instead of hours; nothing else changes."""

EXPECTED_TO_FAIL = {"scale.address=HEAD:6379": "HEAD:6379", "emulator.avd_name=Pixel_6_API_34": "no Android SDK at"}
"""Commands that need the reader's own cluster (``HEAD`` is their head node) or Android SDK: one line, exit 2."""


def readme_blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def readme_command_blocks() -> list[list[str]]:
    """Shell commands of each of the README's bash blocks, continuation lines joined, comments dropped."""
    blocks = []
    for block in readme_blocks("bash"):
        commands = []
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", command).strip()
            if command and not command.startswith("#"):
                commands.append(command)
        blocks.append(commands)
    return blocks


def readme_commands() -> list[str]:
    return [c for block in readme_command_blocks() for c in block]


def test_the_readme_shows_the_commands_this_test_runs():
    commands = readme_commands()
    run = [c for c in commands if not any(k in c for k in NOT_RUN)]
    allowed = (".venv/bin/vlmreward ", ".venv/bin/python examples/")
    assert all(c.startswith(allowed) for c in run), [c for c in run if not c.startswith(allowed)]
    for key in BUDGETS:
        assert any(key in c for c in run), f"BUDGETS names {key!r}, which the README no longer shows"
    assert len(run) >= 12


def test_python_blocks_name_what_the_package_has():
    """Every import of the README's Python blocks runs, and every ``vlmreward.X.Y`` they use exists."""
    for block in readme_blocks("python"):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vlmreward"):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"from {node.module} import {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    importlib.import_module(alias.name)
            elif isinstance(node, ast.Attribute):
                chain = []
                target = node
                while isinstance(target, ast.Attribute):
                    chain.insert(0, target.attr)
                    target = target.value
                if isinstance(target, ast.Name) and target.id == "vlmreward":
                    obj = importlib.import_module("vlmreward")
                    for i, name in enumerate(chain):
                        if not hasattr(obj, name):
                            obj = importlib.import_module("vlmreward." + ".".join(chain[: i + 1]))
                        else:
                            obj = getattr(obj, name)


def test_the_example_gif_holds_as_many_frames_as_the_readme_and_its_script_say():
    import imageio.v3 as iio

    said = re.search(r"`examples/cartpole\.gif`: (\d+) CartPole frames", README.read_text(encoding="utf-8"))
    script = (REPO / "examples" / "make_cartpole_gif.py").read_text(encoding="utf-8")
    frames = iio.imread(REPO / "examples" / "cartpole.gif", index=None)
    assert said is not None and int(said.group(1)) == len(frames) == 16
    assert "FRAMES = 16" in script and script.startswith('"""Write ``examples/cartpole.gif``: 16 frames')
    assert all(not np.array_equal(a, b) for a, b in zip(frames[:-1], frames[1:]))  # none merged away


@pytest.fixture(scope="module")
def readme_models(tiny_hf_clip, tiny_hf_siglip, tiny_xclip, tmp_path_factory) -> None:
    """The README's hub ids in the hub cache, as tiny random-weight models of their architectures."""
    from vlmreward.models.testing_vlms import build_qwen2_5_vl, build_smolvlm

    for repo_id, directory in [
        ("openai/clip-vit-base-patch32", tiny_hf_clip),
        ("google/siglip-base-patch16-224", tiny_hf_siglip),
        ("microsoft/xclip-base-patch32", tiny_xclip),
        ("HuggingFaceTB/SmolVLM-256M-Instruct", build_smolvlm(tmp_path_factory.mktemp("readme-smolvlm"))),
        ("Qwen/Qwen2.5-VL-3B-Instruct", build_qwen2_5_vl(tmp_path_factory.mktemp("readme-qwen"))),  # configs/generative/
    ]:
        add_to_hub_cache(repo_id, {p.name: p for p in directory.iterdir() if p.is_file()})


def _run_block(commands: list[str], work: Path, env: dict[str, str]) -> list[str]:
    """Run one bash block's commands in order (a block's commands depend on each other); returns
    a report line per command."""
    report = []
    for command in commands:
        if any(k in command for k in NOT_RUN):
            continue
        argv = shlex.split(command)
        assert argv[0] in (".venv/bin/vlmreward", ".venv/bin/python")
        argv = [str(VLMREWARD) if argv[0].endswith("vlmreward") else sys.executable, *argv[1:]]
        if "runs/<run>" in command:  # the run the block trained just before (its environment's name)
            trained = next(c for c in reversed(commands[: commands.index(command)]) if " train configs/" in c)
            config = yaml.safe_load((work / shlex.split(trained)[2]).read_text(encoding="utf-8"))
            slug = config["env"]["id"].split("/")[-1]
            latest = max((p for p in (work / "runs").iterdir() if slug in p.name), key=lambda p: p.stat().st_mtime)
            argv = [str(latest.relative_to(work)) if a == "runs/<run>" else a for a in argv]
            argv = argv[:-2] + ["--episodes", "2"] if argv[-2:] == ["--episodes", "20"] else argv
        for key, extra in BUDGETS.items():
            if key in command:
                argv += extra
        start = time.perf_counter()
        result = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        expected = next((v for k, v in EXPECTED_TO_FAIL.items() if k in command), None)
        if expected is not None:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr, result.stderr
            assert len([line for line in lines if line.startswith("error:")]) == 1, result.stderr
        else:
            assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        report.append(f"{time.perf_counter() - start:5.1f} s  {command}")
    return report


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, readme_models):
    """The blocks run two at a time (the machine's two cores), each block's commands in order."""
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("configs", "examples", "docs"):
        (work / name).symlink_to(REPO / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SDL_VIDEODRIVER": "dummy", "MUJOCO_GL": "egl", "PYGLET_HEADLESS": "true",
           "OMP_NUM_THREADS": "1", "MINARI_DATASETS_PATH": str(tmp_path / "minari"),
           "ANDROID_SDK_ROOT": str(tmp_path / "no-android-sdk")}  # the emulator command fails the same way everywhere
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda block: _run_block(block, work, env), readme_command_blocks()))
    ran = [line for report in reports for line in report]
    print("\n".join(ran))
    assert len(ran) >= 12
    # what the README says the commands write
    assert (work / "vlmreward-demo" / "runs").is_dir()
    assert (work / "scores" / "cartpole" / "rewards.csv").is_file()
    assert (work / "scores" / "cartpole-vqa" / "rewards.csv").is_file()
    assert (work / "data" / "cartpole" / "frames.npy").is_file() and (work / "data" / "miniworld-goals" / "frames.npy").is_file()
    assert (work / "eval" / "android-apps" / "report.html").is_file() and (work / "sweeps" / "android-apps" / "results.csv").is_file()
    assert len([p for p in (work / "runs").iterdir() if (p / "final_model.zip").is_file()]) >= 4
    assert (tmp_path / "minari" / "vlmreward" / "cartpole-clip-v0" / "data" / "metadata.json").is_file()

    # then the suite's CLI tests in the same folder, where the README left scores/cartpole/ and the
    # rest: every test runs in its own temporary directory (conftest), so none meets them
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO), *CLI_TESTS_AFTER_README],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in (work / "scores").iterdir()) == ["cartpole", "cartpole-vqa"]  # nothing new here


CLI_TESTS_AFTER_README = [
    str(REPO / "tests" / "test_video_rewards.py") + "::test_score_command_treats_a_video_as_one_episode",
    str(REPO / "tests" / "test_cli_score.py"),
]
"""Tests whose commands write relative to the working directory (``scores/<input>/`` by default)."""
