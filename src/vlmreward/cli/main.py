"""The ``vlmreward`` command: a typer app with the ``score``, ``models``, ``collect``, ``evaluate``,
``sweep``, ``train``, ``evaluate-policy``, ``demo``, ``relabel``, ``benchmark``, ``label-preferences`` and ``serve`` sub-commands.

Errors a user can cause (:class:`~vlmreward.errors.VLMRewardError`) are reported in one place,
:meth:`_Group.invoke`: one line ``error: <message>`` on stderr and exit code 2, no traceback.
Typer's own usage errors (a missing option, an unknown flag) also exit with 2. Any other
exception is a bug and keeps its traceback.

``app`` is the console entry point (``vlmreward = "vlmreward.cli.main:app"``) and what
``typer.testing.CliRunner`` invokes; both go through the same error handling.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from typer.core import TyperGroup

from vlmreward import __version__
from vlmreward.cli.console import command_name
from vlmreward.cli.demo import demo
from vlmreward.cli.benchmark import benchmark
from vlmreward.cli.evaluate import collect, evaluate, sweep
from vlmreward.cli.relabel import relabel
from vlmreward.cli.listing import models, reward_kinds_command
from vlmreward.cli.preference import label_preferences
from vlmreward.cli.score import score
from vlmreward.cli.serve import serve
from vlmreward.cli.train import evaluate_policy, train
from vlmreward.errors import ModelNotAvailableError, VLMRewardError

__all__ = ["app", "EXIT_USER_ERROR", "MODEL_OPTION", "model_not_available_message"]

EXIT_USER_ERROR = 2
"""Exit code of a user error: bad input, prompt, parameter or model name (as typer's usage errors)."""


MODEL_OPTION = {"score": "--model", "evaluate": "--model", "sweep": "--model", "train": "--set model=", "relabel": "--set model=",
                "label-preferences": "--model", "serve": "--set model="}
"""How each command is told which model to load (the missing-weights error names it)."""

DEMO_MODEL_DIR = "vlmreward-demo/tiny-clip"
"""Where ``vlmreward demo`` (default ``--out``) writes its tiny random CLIP."""


def model_not_available_message(err: ModelNotAvailableError, command: str | None) -> str:
    """The missing-weights error as the command line says it: the option of ``command`` that
    points at a local copy (``--model DIR`` or ``--set model=DIR``) and the demo's model folder."""
    if err.model is None or err.reason is None:
        return str(err)
    option = MODEL_OPTION.get(command or "")
    exe = command_name()
    if option is None:  # evaluate-policy, collect --policy: the run's config names the model
        where = f"download it where there is network (it is cached on first use) and run `{exe} {command or ''}` again"
        return f"model {err.model!r}: {err.reason}. The run's config names it (model.name); {where}."
    joiner = "" if option.endswith("=") else " "
    open_clip = err.model.startswith(("open_clip:", "hf-hub:"))
    local = "open_clip:local-dir:DIR" if open_clip else "DIR"
    what = "a folder holding open_clip_config.json and the weights" if open_clip else "a directory written by save_pretrained"
    return (
        f"model {err.model!r}: {err.reason}. Download it where there is network (it is cached on first use), "
        f"or point at a local copy with {option}{joiner}{local} ({what}). To try every command offline: "
        f"`{exe} demo` writes a tiny random CLIP to {DEMO_MODEL_DIR}, then {option}{joiner}{DEMO_MODEL_DIR}."
    )


class _Group(TyperGroup):
    """The root command group; turns a :class:`VLMRewardError` into one ``error:`` line and exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VLMRewardError as err:
            text = model_not_available_message(err, ctx.invoked_subcommand) if isinstance(err, ModelNotAvailableError) else str(err)
            message = " ".join(text.split()) or type(err).__name__
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None


app = typer.Typer(
    cls=_Group,
    name="vlmreward",
    help="Zero-shot rewards for reinforcement learning from vision-language models (CLIP, SigLIP).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"vlmreward {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Zero-shot rewards for reinforcement learning from vision-language models (CLIP, SigLIP)."""
    # Every command renders off-screen: keep pygame (CartPole) from looking for a display.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


app.command("score")(score)
app.command("models")(models)
app.command("reward-kinds")(reward_kinds_command)
app.command("collect")(collect)
app.command("evaluate")(evaluate)
app.command("sweep")(sweep)
app.command("train")(train)
app.command("evaluate-policy")(evaluate_policy)
app.command("demo")(demo)
app.command("relabel")(relabel)
app.command("benchmark")(benchmark)
app.command("label-preferences")(label_preferences)
app.command("serve")(serve)


if __name__ == "__main__":  # python -m vlmreward.cli.main
    app()
