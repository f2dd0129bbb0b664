"""``vlmreward demo``: every step of the workflow, offline, in about a minute on a CPU.

It writes a tiny random-weight CLIP (CLIP ViT-B/32's layout and tokenizer, 2 layers of width 32:
:func:`vlmreward.models.testing.write_tiny_clip`), then runs what the README shows with it:

1. ``collect``: a labelled CartPole dataset (a scripted sweep over pole angle and cart position);
2. ``score``: the goal-baseline reward of every frame of it;
3. ``evaluate``: average precision, EPIC distance, landscapes and a report;
4. ``train``: a short PPO run on VLM-RM's CartPole with the VLM reward (a run directory with
   checkpoints, logs, ``curves.png`` and a video). The main job, ``configs/cartpole.yaml``,
   trains DQN; the demo uses PPO, which starts learning from its first rollout where DQN waits
   for ``learning_starts`` (1,000) steps, more than the demo's budget is worth.

The model's weights are random, so its rewards mean nothing: the demo shows the commands and their
outputs, not results. Every output goes under ``--out`` (default ``./vlmreward-demo``), which must
not hold an earlier demo unless ``--overwrite`` is given.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from vlmreward.errors import InvalidParameterError

__all__ = ["demo", "DEMO_GOAL", "DEMO_BASELINE"]

DEMO_GOAL = "pole vertically upright on top of the cart"
DEMO_BASELINE = "pole and cart"


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for everything the demo writes.")] = Path("vlmreward-demo"),
    steps: Annotated[int, typer.Option(min=64, help="Training steps of the short run.")] = 512,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier demo in --out.")] = False,
) -> None:
    """Run collect -> score -> evaluate -> train on CartPole with a tiny random CLIP, offline."""
    from vlmreward import media
    from vlmreward.cli.console import command_name
    from vlmreward.eval.scoring import score_to_csv
    from vlmreward.eval.collect import collect
    from vlmreward.eval.dataset import load_dataset
    from vlmreward.eval.outputs import evaluate_dataset
    from vlmreward.models.registry import load_model
    from vlmreward.models.testing import write_tiny_clip
    from vlmreward.rewards import GoalBaselineReward
    from vlmreward.rewards.selection import default_kind
    from vlmreward.rl.config import parse_config
    from vlmreward.rl.train import train

    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InvalidParameterError(f"{str(out)!r} is not empty; pass --overwrite to replace an earlier demo, or choose another --out.")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    say = lambda text: typer.echo(text, err=True)  # noqa: E731

    model_dir = write_tiny_clip(out / "tiny-clip")
    say(f"1/5 wrote a tiny random CLIP to {model_dir} (its rewards mean nothing; use a real model for results)")
    data = collect("vlmreward/VLMRM-CartPole-v0", out / "cartpole-sweep", "scripted", frames=120)
    say(f"2/5 collected {data.frames} labelled frames ({data.positives} upright) into {data.path}")

    model = load_model(model_dir)
    reward = GoalBaselineReward(model, DEMO_GOAL, DEMO_BASELINE, alpha=0.5)
    scores = out / "scores.csv"
    scored = score_to_csv(reward, media.iter_frames(data.path / "frames.npy"), 64, scores)  # what `score` runs
    say(f"3/5 scored every frame (mean reward {float(scored.rewards.mean()):.4f}) into {scores}")
    dataset = load_dataset(data.path)

    evaluation = evaluate_dataset(dataset, model, [DEMO_GOAL], out / "evaluation", baseline=[DEMO_BASELINE], alphas=[0.0, 0.5])
    ap = evaluation.results[-1].summary().get("average_precision")
    say(f"4/5 evaluated it as a success detector (AP {ap:.3f} at alpha 0.5): {evaluation.files['report']}")

    config = parse_config({
        "env": {"id": "vlmreward/VLMRM-CartPole-v0", "n_envs": 2, "kwargs": {"episode_length": 64}},
        "reward": {"kind": default_kind({"goal", "baseline"}).name, "goal": DEMO_GOAL, "baseline": DEMO_BASELINE, "alpha": 0.5},
        "model": {"name": str(model_dir), "device": "cpu"},
        "algorithm": "PPO", "algorithm_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "device": "cpu"},
        "total_steps": steps, "output_dir": str(out / "runs"), "run_name": "cartpole",
        "checkpoint_every": steps // 2, "eval_every": steps // 2, "eval_episodes": 2,
    })
    run_dir = train(config, progress_bar=False)
    say(f"5/5 trained PPO for {steps} steps (the main job, configs/cartpole.yaml, trains DQN): {run_dir} "
        "(final_model.zip, curves.png, videos/, logs/)")
    exe = command_name()
    typer.echo(f"demo finished: {out}")
    typer.echo(f"next: {exe} evaluate-policy {run_dir}")
    typer.echo(f"with this model elsewhere: --model {model_dir} (score, evaluate, sweep) or --set model={model_dir} (train, relabel)")
    typer.echo(f"with a real model: {exe} train configs/cartpole.yaml (downloads openai/clip-vit-base-patch32 once)")
