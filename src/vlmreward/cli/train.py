"""``vlmreward train`` and ``vlmreward evaluate-policy``: train an agent from a sentence, then check it.

``vlmreward train CONFIG [--set KEY=VALUE ...]`` runs :func:`vlmreward.rl.train.train` on a YAML
config (see ``configs/``) and prints the run directory; ``vlmreward train --resume RUN_DIR``
continues an interrupted run from its latest checkpoint. Ctrl-C, SIGTERM and SIGUSR1 (what
schedulers send before preempting a job) write a checkpoint, say where, and exit with
``128 + signal number`` (130, 143, 138; :mod:`vlmreward.rl.signals`). Progress lines (step,
steps/s, ETA, VLM and GT return, success) and evaluation results go to stderr; ``--quiet`` hides
them.

``vlmreward evaluate-policy RUN_DIR`` rolls out the run's final (else latest checkpointed) policy
on the run's environment and reward, prints the ground-truth return, success rate and VLM return
(for a goal-conditioned run: on training and held-out goals separately, per goal type), and writes
``RUN_DIR/evaluation.json`` and ``RUN_DIR/videos/evaluation.mp4``.

The functions are plain typer commands; :mod:`vlmreward.cli.main` registers them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vlmreward._logging import attached_handler
from vlmreward.cli.console import command_name
from vlmreward.cli.reward_options import RewardOptions, as_overrides, with_reward_options

__all__ = ["train", "evaluate_policy", "EXIT_INTERRUPTED"]

EXIT_INTERRUPTED = 130
"""Exit code after Ctrl-C (128 + SIGINT), once the checkpoint is written; other signals exit with 128 + their number."""


class _StderrHandler(logging.Handler):
    """Writes records to whatever ``sys.stderr`` is when they are emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 (logging must not raise)
            self.handleError(record)


def _progress_messages(quiet: bool = False) -> contextlib.AbstractContextManager[None]:
    """Show the trainer's INFO messages (run directory, progress lines, evaluations, resume point;
    warnings only when ``quiet``) on stderr meanwhile."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    return attached_handler(logging.getLogger("vlmreward.rl"), handler, logging.WARNING if quiet else logging.INFO)


@with_reward_options("config")
def train(
    config: Annotated[
        Optional[Path],
        typer.Argument(help="YAML run config, e.g. configs/cartpole.yaml.", show_default=False),
    ] = None,
    set: Annotated[  # noqa: A002 (the option is --set)
        Optional[list[str]],
        typer.Option(
            "--set",
            "-s",
            help="Override a config key, KEY=VALUE with a dotted KEY: --set model=openai/clip-vit-base-patch32, "
            "--set total_steps=2000, --set reward.alpha=0.5. Repeatable.",
            show_default=False,
        ),
    ] = None,
    reward_options: RewardOptions = None,  # type: ignore[assignment]  (generated: --alpha, ... as --set reward.KEY=VALUE)
    resume: Annotated[
        Optional[Path],
        typer.Option(
            "--resume",
            help="Continue the run in RUN_DIR from its latest checkpoint (--set may then change total_steps, "
            "eval_every, checkpoint_every, ...). Checkpoints hold no pickles, but a config may name code to run "
            "(reward.factory, dotted paths): resume only runs you trust.",
            show_default=False,
            metavar="RUN_DIR",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress lines; warnings and the final summary only.")
    ] = False,
    trust_run_dir: Annotated[
        bool,
        typer.Option("--trust-run-dir", help="With --resume: the run directory is yours. Loads an earlier version's "
                     "pickled checkpoint files (which can run code) and silences the warning for a run made elsewhere."),
    ] = False,
) -> None:
    """Train an agent whose reward is a vision-language model's judgement of a sentence."""
    from vlmreward.rl.signals import exit_code, preemption_signals
    from vlmreward.rl.train import TrainingInterrupted
    from vlmreward.rl.train import resume as resume_run
    from vlmreward.rl.train import train as train_run

    if (config is None) == (resume is None):
        raise typer.BadParameter(
            "give a CONFIG file to start a run, or --resume RUN_DIR to continue one (not both).", param_hint="CONFIG"
        )
    overrides = [*(set or []), *as_overrides(reward_options or {})]
    try:
        with _progress_messages(quiet), preemption_signals():
            run_dir = (resume_run(resume, overrides, trust=trust_run_dir) if resume is not None
                       else train_run(config, overrides))  # type: ignore[arg-type]
    except TrainingInterrupted as stop:
        name = signal.Signals(stop.signum).name
        typer.echo("", err=True)
        if stop.checkpoint is not None:
            typer.echo(f"interrupted ({name}): checkpoint at {stop.num_timesteps} steps written to {stop.checkpoint}", err=True)
        else:
            typer.echo(f"interrupted ({name}): no new checkpoint could be written; the previous one (if any) stands", err=True)
        typer.echo(f"resume with: {command_name()} train --resume {stop.run_dir}", err=True)
        raise typer.Exit(exit_code(stop)) from None
    except KeyboardInterrupt as stop:  # before training started, or after it ended (the run's files stand)
        name = signal.Signals(getattr(stop, "signum", signal.SIGINT)).name
        typer.echo(f"\ninterrupted ({name}) outside the training loop; nothing was lost that a checkpoint holds", err=True)
        raise typer.Exit(exit_code(stop)) from None
    typer.echo(f"run directory: {run_dir}")
    typer.echo(f"final model:   {run_dir / 'final_model.zip'}")
    typer.echo(f"logs:          {run_dir / 'logs'} (tensorboard --logdir {run_dir / 'logs'})")
    typer.echo(f"evaluate with: {command_name()} evaluate-policy {run_dir}")


def _mean_std(values: list[float]) -> str:
    import numpy as np

    return f"{float(np.mean(values)):.4g} ± {float(np.std(values)):.3g}" if values else "n/a"


def evaluate_policy(
    run_dir: Annotated[Path, typer.Argument(help="A run directory made by `vlmreward train`.", show_default=False)],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to roll out.")] = 10,
    deterministic: Annotated[
        bool, typer.Option("--deterministic/--stochastic", help="The policy's mode action, or samples.")
    ] = True,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Write videos/evaluation.mp4 of the first episode.")] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the evaluation.json (and video) of an earlier evaluation.")
    ] = False,
    trust_run_dir: Annotated[
        bool, typer.Option("--trust-run-dir", help="Load an earlier version's pickled files (which can run code).")
    ] = False,
) -> None:
    """Roll out a trained policy; report ground-truth return, success rate and VLM return."""
    from vlmreward._paths import refuse_to_overwrite
    from vlmreward.rl.evaluation import PAPER_SUCCESS_MIN_FRACTION
    from vlmreward.rl.train import EVALUATION_FILE, evaluate_run

    refuse_to_overwrite(run_dir, (EVALUATION_FILE,), overwrite, alternative="move it aside first")

    with _progress_messages():  # a line per episode on stderr
        data = evaluate_run(run_dir, episodes, deterministic=deterministic, video=video, trust=trust_run_dir)
    successes = [s for s in data["successes"] if s is not None]
    typer.echo(f"policy:              {data['policy']} ({data['num_timesteps']} steps) of {run_dir}")
    typer.echo(f"ground-truth return: {_mean_std(data['gt_returns'])} over {data['episodes']} episodes")
    if successes:
        typer.echo(f"success rate:        {100 * sum(successes) / len(successes):.0f}% ({sum(successes)}/{len(successes)}) at the last step")
        held = [f >= PAPER_SUCCESS_MIN_FRACTION for f in data["success_fractions"] if f is not None]
        typer.echo(
            f"                     {100 * sum(held) / len(held):.0f}% ({sum(held)}/{len(held)}) held in >= 50% of the "
            "steps (VLM-RM's rule)"
        )
    else:
        typer.echo("success rate:        n/a (the environment reports no success)")
    typer.echo(f"VLM return:          {_mean_std(data['vlm_returns'])}")
    if data.get("remark"):
        typer.echo(f"note:                {data['remark']}")
    for name, part in (data.get("goal_sets") or {}).items():  # goal-conditioned: per goal set and goal type
        rate = part.get("success_rate")
        by_type = ", ".join(f"{t} {100 * r:.0f}%" for t, r in (part.get("success_rate_by_goal_type") or {}).items())
        typer.echo(
            f"{name + ' goals:':<20} success {'n/a' if rate is None else f'{100 * rate:.0f}%'} over {part['episodes']} "
            f"episodes ({by_type or 'no goal types'}); VLM return {_mean_std(part['vlm_returns'])}"
        )
    typer.echo(f"wrote {run_dir / EVALUATION_FILE}" + (f" and {data['video']}" if data.get("video") else ""))
