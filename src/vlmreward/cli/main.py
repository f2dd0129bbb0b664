"""The ``vlmreward`` command: a typer app with the ``score``, ``models``, ``collect``, ``evaluate``,
``sweep``, ``train``, ``evaluate-policy``, ``demo`` and ``relabel`` sub-commands.

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
from vlmreward.cli.demo import demo
from vlmreward.cli.evaluate import collect, evaluate, sweep
from vlmreward.cli.relabel import relabel
from vlmreward.cli.score import models, reward_kinds_command, score
from vlmreward.cli.train import evaluate_policy, train
from vlmreward.errors import VLMRewardError

__all__ = ["app", "EXIT_USER_ERROR"]

EXIT_USER_ERROR = 2
"""Exit code of a user error: bad input, prompt, parameter or model name (as typer's usage errors)."""


class _Group(TyperGroup):
    """The root command group; turns a :class:`VLMRewardError` into one ``error:`` line and exit 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except VLMRewardError as err:
            message = " ".join(str(err).split()) or type(err).__name__
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


if __name__ == "__main__":  # python -m vlmreward.cli.main
    app()
