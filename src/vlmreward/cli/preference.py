"""``vlmreward label-preferences``: preference labels for pairs of a dataset's frames (:mod:`vlmreward.eval.preferences`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vlmreward.cli.console import is_interactive, quiet_model_loading
from vlmreward.cli.options import OverwriteOption, Resize, model_spec
from vlmreward._paths import refuse_to_overwrite
from vlmreward.models import DEFAULT_RESIZE

__all__ = ["label_preferences"]


def label_preferences(
    dataset: Annotated[Path, typer.Argument(help="A dataset directory (vlmreward collect, relabel).")],
    out: Annotated[Path, typer.Option(help="The CSV of labelled pairs (its label cache goes beside it).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="A generative VLM (Qwen2-VL/2.5-VL/3-VL, SmolVLM); "
                                                 "none: the oracle labels by --truth.", show_default=False)] = None,
    goal: Annotated[Optional[str], typer.Option(help="The goal: 'The goal is {goal}.' ('to open the drawer').",
                                                show_default=False)] = None,
    pairs: Annotated[int, typer.Option(help="Pairs of frames to label.")] = 100,
    truth: Annotated[Optional[str], typer.Option(help="A numeric column: the oracle's labels, and the accuracy reported.",
                                                 show_default=False)] = None,
    lower_is_better: Annotated[bool, typer.Option(help="A smaller --truth is better (a distance).")] = False,
    stages: Annotated[int, typer.Option(help="1: the label; 2: a generated comparison, then the label.")] = 1,
    margin: Annotated[float, typer.Option(help="|Δ log-odds| ≤ margin is no preference.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the pairs drawn.")] = 0,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, ...", show_default="cuda if available, else cpu")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32, float16, bfloat16.", show_default="float32")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Queries per forward pass.", show_default="the model's")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Label pairs of a dataset's frames: which better achieves the goal (a local VLM, both orders; or the oracle)."""
    from vlmreward.eval.preferences import label_dataset

    refuse_to_overwrite(out.parent, (out.name,), overwrite)
    vlm = None
    if model is not None:
        with quiet_model_loading(enabled=not is_interactive()):
            vlm = model_spec(model, device, dtype, Resize(DEFAULT_RESIZE), True, None).load("--device")
    run = label_dataset(dataset, out, model=vlm, goal=goal, pairs=pairs, truth=truth, truth_sign=-1 if lower_is_better else 1,
                        stages=stages, margin=margin, seed=seed, batch_size=batch_size)
    typer.echo(f"labelled  {run.labelled} of {run.pairs} pairs (the rest: no preference)")
    if model is not None:
        typer.echo(f"model     {run.model_calls} queries asked, {run.cache_hits} from the cache; position bias {run.position_bias:+.4f}")
    if run.accuracy is not None:
        typer.echo(f"accuracy  {run.accuracy:.3f} against {truth}")
    typer.echo(f"wrote     {run.path}")
