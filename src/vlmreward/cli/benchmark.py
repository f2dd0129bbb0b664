"""``vlmreward benchmark``: one reward evaluated on a named suite of episode sets, one table (:mod:`vlmreward.eval.benchmark`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vlmreward.cli.console import is_interactive, quiet_model_loading
from vlmreward.cli.options import (
    AntialiasOption,
    OverwriteOption,
    ParamOption,
    Resize,
    RewardKindOption,
    model_spec,
    parse_params,
)
from vlmreward.cli.reward_options import RewardOptions, with_reward_options
from vlmreward._paths import refuse_to_overwrite
from vlmreward.errors import InvalidParameterError
from vlmreward.models import DEFAULT_RESIZE

__all__ = ["benchmark"]


@with_reward_options("evaluate")
def benchmark(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Model name, as for `vlmreward score` "
                                                 "(not needed by a model-free reward kind).", show_default=False)] = None,
    suite: Annotated[str, typer.Option(help="The named suite of episode sets.")] = "default",
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Evaluate only this set of the suite (repeat).",
                                                      show_default=False)] = None,
    lerobot: Annotated[Optional[list[Path]], typer.Option(
        "--lerobot", help="A LeRobot v3.0 dataset directory: an extra set (progress label = frame index / (length - 1) on "
        "successful episodes; the instruction: its task). Repeat.", show_default=False)] = None,
    data: Annotated[Path, typer.Option(help="Where the suite's episode sets are collected (once; reused).")] = Path("benchmark-data"),
    episodes: Annotated[Optional[int], typer.Option(help="Episodes per episode set (a smaller benchmark).",
                                                    show_default="the suite's")] = None,
    reward_options: RewardOptions = None,  # type: ignore[assignment]  (generated: --baseline, --alpha, ...)
    reward_kind: RewardKindOption = None,
    param: ParamOption = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1, ...", show_default="cuda if available, else cpu")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Weight dtype: float32, float16, bfloat16.", show_default="float32")] = None,
    resize: Annotated[Resize, typer.Option(help="How frames are fitted to the model's square input.")] = Resize(DEFAULT_RESIZE),
    antialias: AntialiasOption = True,
    batch_size: Annotated[Optional[int], typer.Option(help="Frames per forward pass.", show_default="64")] = None,
    out: Annotated[Path, typer.Option(help="Output folder: benchmark.md, benchmark.json, one evaluation per set.")] = Path("benchmark"),
    overwrite: OverwriteOption = False,
) -> None:
    """Evaluate one reward on every episode set of a suite (collected here once) and print one table:
    AP, ROC-AUC, EPIC distance, Spearman, VOC, policy ranking τ and instruction mismatch per set."""
    from dataclasses import replace

    from vlmreward.eval.benchmark import SUITES, EpisodeSet, TABLE_COLUMNS, collect_suite, run_benchmark
    from vlmreward.eval.report import format_number as f
    from vlmreward.rewards import registry

    if suite not in SUITES:
        raise InvalidParameterError(f"--suite {suite!r}: the suites are {', '.join(SUITES)}.")
    sets = list(SUITES[suite])
    if only:
        unknown = [name for name in only if name not in {s.name for s in sets}]
        if unknown:
            raise InvalidParameterError(f"--only {unknown[0]!r} is not a set of suite {suite!r} ({', '.join(s.name for s in sets)}).")
        sets = [s for s in sets if s.name in only]
    if episodes is not None and episodes < 1:
        raise InvalidParameterError(f"--episodes must be at least 1; got {episodes}.")
    kind = registry.reward_kind(reward_kind) if reward_kind is not None else None
    if model is None and (kind is None or kind.model == "required"):
        raise InvalidParameterError("the reward scores frames with a vision-language model; give one with --model.")
    refuse_to_overwrite(out, ("benchmark.json", "benchmark.md"), overwrite)
    if lerobot:
        from vlmreward.relabel.lerobot_sets import lerobot_episode_set, lerobot_task

        for path in lerobot:
            name = f"lerobot-{Path(path).name}"
            target = data / name
            if not (target / "metadata.json").is_file():
                lerobot_episode_set(path, target)
            sets.append(EpisodeSet(name, None, goal=lerobot_task(path), path=target,
                                   description=f"LeRobot dataset {path}"))
    if kind is not None and not kind.takes("goal"):  # a kind without a goal: no instruction to give, none to mismatch
        sets = [replace(s, goal=None, mismatch=()) for s in sets]
    interactive = is_interactive()
    ready, notes = collect_suite(sets, data, episodes=episodes, progress=lambda name: typer.echo(f"collecting {name} ...", err=True))
    vlm = None
    if model is not None and (kind is None or kind.model != "none"):
        with quiet_model_loading(enabled=not interactive):
            vlm = model_spec(model, device, dtype, resize, antialias, None).load("--device")
    result = run_benchmark(ready, vlm, out, reward_kind=reward_kind, reward_params=parse_params(param),
                           options=dict(reward_options or {}), notes=notes, batch_size=batch_size,
                           progress=lambda name: typer.echo(f"evaluating {name} ...", err=True))
    headers = ["set", "reward", *(h for _, h in TABLE_COLUMNS)]
    rows = [[r["set"], r["setting"], *(f(r[k], 3) for k, _ in TABLE_COLUMNS)] for r in result.rows]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    for row in [headers, *rows]:
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote     {result.files['markdown']}")
