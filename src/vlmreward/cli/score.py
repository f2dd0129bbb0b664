"""``vlmreward score``: rewards of the frames of an image, folder, video or array file.

The command parses its options into a model (:func:`vlmreward.load_model`) and a reward of the
kind they ask for (:mod:`vlmreward.rewards.selection`: the goal-baseline reward, the softmax
reward when ``--negative`` prompts are given, or ``--reward-kind``; a model-free kind needs no
``--model``), streams the frames (:mod:`vlmreward.media`) in batches through
:func:`vlmreward.eval.scoring.score_to_csv`, and writes into ``--out``:

* ``rewards.csv``: ``frame,source,reward`` (plus ``p_goal`` for the softmax reward), one row per
  frame, in input order;
* ``rewards.png``: the reward against the frame index;
* ``score.json``: the reward's description, the model, the input and summary statistics.

The reward options (``--baseline``, ``--alpha``, ...) are generated from the registry
(:mod:`vlmreward.cli.reward_options`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vlmreward import __version__, media
from vlmreward._paths import refuse_to_overwrite
from vlmreward.cli.console import is_interactive, progress_bar, quiet_model_loading
from vlmreward.cli.options import (
    AntialiasOption, OverwriteOption, ParamOption, QuantizeOption, Resize, RewardKindOption, RuntimeOption, Runtime, model_spec, parse_batch_size, parse_params,
)
from vlmreward.cli.reward_options import RewardOptions, with_reward_options
from vlmreward.errors import InvalidParameterError
from vlmreward.eval.scoring import (
    CSV_NAME,
    JSON_NAME,
    PLOT_NAME,
    READ_BATCH,
    default_out_dir,
    make_dirs,
    plot_rewards,
    score_to_csv,
    write_output,
)
from vlmreward.models import DEFAULT_RESIZE
from vlmreward.models.autotune import AUTO
from vlmreward.models.base import DEFAULT_BATCH_SIZE
from vlmreward.rewards.registry import build_reward, validate_params
from vlmreward.rewards.selection import choose_kind, gather_params, is_given, option_of

__all__ = ["score"]


@with_reward_options("score")
def score(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="An image, a folder of images, a video (.mp4, .gif, ...) or a .npy/.npz array of uint8 "
            "frames [N, H, W, 3].",
            show_default=False,
        ),
    ],
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", "-m",
            help="Hugging Face CLIP/SigLIP hub id or save_pretrained directory, open_clip:ARCH/TAG, "
            "open_clip:ARCH with --checkpoint, or hf-hub:ORG/REPO. See `vlmreward models`. Not needed by a "
            "model-free reward kind.",
            show_default=False,
        ),
    ] = None,
    goal: Annotated[
        Optional[list[str]],
        typer.Option("--goal", "-g", help="Goal prompt; repeat to average several phrasings.", show_default=False),
    ] = None,
    reward_options: RewardOptions = None,  # type: ignore[assignment]  (generated: --baseline, --alpha, ...)
    reward_kind: RewardKindOption = None,
    param: ParamOption = None,
    batch_size: Annotated[str, typer.Option(help="Frames per forward pass of the vision model, or auto: the fastest on "
                                             "this machine, timed once and cached.")] = str(DEFAULT_BATCH_SIZE),
    device: Annotated[
        Optional[str],
        typer.Option(help="cpu, cuda, cuda:1, mps, ...", show_default="cuda if available, else cpu"),
    ] = None,
    resize: Annotated[
        Resize, typer.Option(help="How frames are fitted to the model's square input.")
    ] = Resize(DEFAULT_RESIZE),
    antialias: AntialiasOption = True,
    checkpoint: Annotated[
        Optional[Path],
        typer.Option(help="Weights file for an open_clip:ARCH model.", show_default=False),
    ] = None,
    dtype: Annotated[
        Optional[str],
        typer.Option(help="Weight dtype: float32, float16, bfloat16.", show_default="float32"),
    ] = None,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Truncate prompts longer than the model's context.")
    ] = False,
    runtime: RuntimeOption = Runtime.torch,
    quantize: QuantizeOption = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="Output folder.", show_default="./scores/<input name>"),
    ] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Score every frame of INPUT against a goal prompt; write rewards.csv, rewards.png and score.json."""
    batch = parse_batch_size(batch_size)
    params = parse_params(param)
    given = {"goal": goal, **(reward_options or {})}
    kind = choose_kind(reward_kind, given)
    if kind.goals:
        raise InvalidParameterError(
            f"reward kind {kind.name!r} scores each frame against its episode's goal; score a goal dataset with "
            "`vlmreward evaluate DATASET` (without --goal) instead."
        )
    missing = [r for r in kind.prompts if kind.requires(r) and not is_given(given.get(r)) and r not in params]
    if missing:
        raise InvalidParameterError(f"reward kind {kind.name!r} needs {option_of(missing[0])} (its {missing[0]} prompt).")
    reward_params = validate_params(kind, gather_params(kind, given, params))  # every parameter error before loading
    if kind.model == "required" and model is None:
        raise InvalidParameterError(
            f"reward kind {kind.name!r} scores frames with a vision-language model; give one with --model "
            "(e.g. --model vlmreward-demo/tiny-clip after `vlmreward demo`)."
        )
    path = media.check_input(input_path)
    out_dir = out if out is not None else default_out_dir(path)
    refuse_to_overwrite(out_dir, (CSV_NAME, PLOT_NAME, JSON_NAME), overwrite)  # before the model loads
    interactive = is_interactive()
    vlm = None
    if model is not None and kind.model != "none":
        with quiet_model_loading(enabled=not interactive):
            vlm = model_spec(model, device, dtype, resize, antialias, checkpoint, runtime, quantize, truncate,
                             batch_size=batch if batch == AUTO else DEFAULT_BATCH_SIZE).load("--device")
    reward = build_reward(kind.name, reward_params, vlm)

    frames = media.iter_frames(path)
    total = media.count_frames(path)
    created = make_dirs(out_dir)
    show_progress = interactive and (total is None or total > (READ_BATCH if batch == AUTO else batch))
    try:
        with progress_bar(total, enabled=show_progress) as advance:
            result = score_to_csv(reward, frames, None if batch == AUTO else batch, out_dir / CSV_NAME, advance)
    except BaseException:
        for folder in created:  # a failed input leaves no empty output folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise

    stats = result.stats()
    threshold_line = getattr(reward, "threshold", None) if result.p_goal is not None else None
    goals = list(getattr(reward, "goal", None) or goal or [])
    write_output(out_dir / PLOT_NAME, lambda p: plot_rewards(p, result.rewards, goals, threshold_line, result.p_goal,
                                                             title=f"{kind.display_name} reward"))
    summary = {
        "input": str(path),
        "frames": result.n_frames,
        "reward": reward.describe(),
        "model": None if vlm is None else {
            "name": vlm.name,
            "backend": vlm.backend,
            "resize": vlm.resize,
            "antialias": vlm.antialias,
            "image_size": vlm.image_size,
            "device": str(vlm.device),
            "dtype": str(vlm.dtype).removeprefix("torch."),
            "runtime": vlm.runtime,
            "quantize": quantize.value if quantize is not None else None,
            "batch_choices": [c.to_json() for c in getattr(vlm, "batch_choices", {}).values()],
        },
        "batch_size": batch,
        "stats": stats,
        "outputs": {"csv": CSV_NAME, "plot": PLOT_NAME},
        "vlmreward_version": __version__,
    }
    write_output(out_dir / JSON_NAME, lambda p: p.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8"))

    by = f", model {vlm.name}" if vlm is not None else ""
    typer.echo(f"scored {result.n_frames} frames of {path} ({reward.describe()['kind']} reward{by})")
    typer.echo(f"reward  mean {stats['mean']:.6g}  min {stats['min']:.6g}  max {stats['max']:.6g}")
    typer.echo(f"wrote   {out_dir / CSV_NAME}")
    typer.echo(f"        {out_dir / PLOT_NAME}")
    typer.echo(f"        {out_dir / JSON_NAME}")
