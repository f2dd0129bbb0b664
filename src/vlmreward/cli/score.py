"""``vlmreward score``: rewards of the frames of an image, folder, video or array file.

The command parses its options into a model (:func:`vlmreward.load_model`) and a reward
(:class:`~vlmreward.GoalBaselineReward`, or :class:`~vlmreward.SoftmaxThresholdReward` when
``--negative`` prompts are given), streams the frames (:mod:`vlmreward.media`) in batches through
``model.encode_images`` once each, and writes into ``--out``:

* ``rewards.csv``: ``frame,source,reward`` (plus ``p_goal`` for the softmax reward), one row per
  frame, in input order;
* ``rewards.png``: the reward against the frame index;
* ``score.json``: the reward's description, the model, the input and summary statistics.

``vlmreward models`` lists the open_clip architecture/tag pairs that load by name.

Why one module: the ``score`` command and what it writes (CSV, plot, JSON); the options it shares
with other commands are in :mod:`vlmreward.cli.options`.
"""

from __future__ import annotations

import contextlib

import csv
import json
import math
import os
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Optional

import numpy as np
import torch
import typer

from vlmreward import __version__, media
from vlmreward._paths import refuse_to_overwrite
from vlmreward.errors import InputFileError, InvalidParameterError, VLMRewardError
from vlmreward.models import DEFAULT_RESIZE, VisionLanguageModel
from vlmreward.models.base import DEFAULT_BATCH_SIZE
from vlmreward.cli.console import is_interactive, progress_bar, quiet_model_loading
from vlmreward.cli.options import (
    AntialiasOption, OverwriteOption, ParamOption, QuantizeOption, Resize, RewardKindOption, RuntimeOption, Runtime, model_spec, parse_params,
)
from vlmreward.rewards import DEFAULT_TEMPERATURE, GoalBaselineReward, SoftmaxThresholdReward, VLMReward
from vlmreward.rewards.registry import build_reward as registry_build_reward
from vlmreward.rewards.registry import reward_kind as lookup_reward_kind
from vlmreward.rewards.registry import reward_kinds as lookup_reward_kinds

__all__ = ["score", "models", "ScoreResult", "build_reward", "score_frames", "plot_rewards", "default_out_dir"]

CSV_NAME = "rewards.csv"
PLOT_NAME = "rewards.png"
JSON_NAME = "score.json"


# ---------------------------------------------------------------------------------------------
# the command


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
        str,
        typer.Option(
            "--model", "-m",
            help="Hugging Face CLIP/SigLIP hub id or save_pretrained directory, open_clip:ARCH/TAG, "
            "open_clip:ARCH with --checkpoint, or hf-hub:ORG/REPO. See `vlmreward models`.",
            show_default=False,
        ),
    ],
    goal: Annotated[
        list[str],
        typer.Option("--goal", "-g", help="Goal prompt; repeat to average several phrasings.", show_default=False),
    ],
    baseline: Annotated[
        Optional[list[str]],
        typer.Option(
            "--baseline", "-b",
            help="Baseline prompt (the scene without the goal); repeat for several.",
            show_default=False,
        ),
    ] = None,
    alpha: Annotated[
        Optional[float],
        typer.Option(help="Goal-baseline regularisation strength in [0, 1]; > 0 needs --baseline.", show_default="0"),
    ] = None,
    negative: Annotated[
        Optional[list[str]],
        typer.Option(
            "--negative", "-n",
            help="Negative prompt; any of them selects the softmax reward p(goal | frame). Repeat for several.",
            show_default=False,
        ),
    ] = None,
    temperature: Annotated[
        Optional[float],
        typer.Option(help="Softmax temperature > 0 (with --negative).", show_default=str(DEFAULT_TEMPERATURE)),
    ] = None,
    threshold: Annotated[
        Optional[float],
        typer.Option(
            help="Turn p(goal | frame) into a 0/1 reward at this value in [0, 1] (with --negative).", show_default=False
        ),
    ] = None,
    reward_kind: RewardKindOption = None,
    param: ParamOption = None,
    batch_size: Annotated[int, typer.Option(help="Frames per forward pass of the vision model.")] = DEFAULT_BATCH_SIZE,
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
    if batch_size < 1:
        raise InvalidParameterError(f"--batch-size must be at least 1; got {batch_size}.")
    params = parse_params(param)
    plugin = reward_kind is not None and (reward_kind not in ("goal_baseline", "softmax_threshold") or bool(params))
    if plugin:
        lookup_reward_kind(reward_kind)  # an unknown kind fails before the model loads
    else:
        softmax = _check_reward_options(baseline, alpha, negative, temperature, threshold)
        if reward_kind is not None and (reward_kind == "softmax_threshold") != softmax:
            raise InvalidParameterError(
                f"--reward-kind {reward_kind} and the options disagree: --negative selects softmax_threshold, its "
                "absence goal_baseline."
            )
    path = media.check_input(input_path)
    out_dir = out if out is not None else default_out_dir(path)
    refuse_to_overwrite(out_dir, (CSV_NAME, PLOT_NAME, JSON_NAME), overwrite)  # before the model loads
    interactive = is_interactive()
    with quiet_model_loading(enabled=not interactive):
        vlm = model_spec(model, device, dtype, resize, antialias, checkpoint, runtime, quantize, truncate).load("--device")
    if plugin:
        reward = build_plugin_reward(vlm, reward_kind, goal, baseline, alpha, negative, temperature, threshold, params)
    else:
        reward = build_reward(vlm, goal, baseline, alpha, negative if softmax else None, temperature, threshold)

    frames = media.iter_frames(path)
    total = media.count_frames(path)
    created = _make_dir(out_dir)
    show_progress = interactive and (total is None or total > batch_size)
    try:
        with progress_bar(total, enabled=show_progress) as advance:
            result = score_frames(reward, frames, batch_size, out_dir / CSV_NAME, advance)
    except BaseException:
        for folder in created:  # a failed input leaves no empty output folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise

    stats = result.stats()
    threshold_line = reward.threshold if isinstance(reward, SoftmaxThresholdReward) else None
    _write_output(
        out_dir / PLOT_NAME, lambda p: plot_rewards(p, result.rewards, list(getattr(reward, "goal", None) or goal), threshold_line, result.p_goal)
    )
    summary = {
        "input": str(path),
        "frames": result.n_frames,
        "reward": reward.describe(),
        "model": {
            "name": vlm.name,
            "backend": vlm.backend,
            "resize": vlm.resize,
            "antialias": vlm.antialias,
            "image_size": vlm.image_size,
            "device": str(vlm.device),
            "dtype": str(vlm.dtype).removeprefix("torch."),
            "runtime": vlm.runtime,
            "quantize": quantize.value if quantize is not None else None,
        },
        "batch_size": batch_size,
        "stats": stats,
        "outputs": {"csv": CSV_NAME, "plot": PLOT_NAME},
        "vlmreward_version": __version__,
    }
    _write_output(out_dir / JSON_NAME, lambda p: p.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8"))

    typer.echo(f"scored {result.n_frames} frames of {path} ({reward.describe()['kind']} reward, model {vlm.name})")
    typer.echo(f"reward  mean {stats['mean']:.6g}  min {stats['min']:.6g}  max {stats['max']:.6g}")
    typer.echo(f"wrote   {out_dir / CSV_NAME}")
    typer.echo(f"        {out_dir / PLOT_NAME}")
    typer.echo(f"        {out_dir / JSON_NAME}")


def models() -> None:
    """List the open_clip models that load by name (open_clip:ARCH/TAG)."""
    from vlmreward.models._compat import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip

    for arch, tag in open_clip.list_pretrained():
        typer.echo(f"open_clip:{arch}/{tag}")
    typer.echo(
        "# Also: any Hugging Face CLIP or SigLIP hub id (e.g. openai/clip-vit-base-patch32,\n"
        "# google/siglip-base-patch16-224) or save_pretrained() directory; hf-hub:ORG/REPO in\n"
        "# open_clip's format; or open_clip:ARCH --checkpoint PATH for local weights."
    )


def reward_kinds_command() -> None:
    """List the reward kinds (registered, and installed plugins') with their parameters."""
    for name in lookup_reward_kinds():
        try:
            kind = lookup_reward_kind(name)
        except VLMRewardError as err:  # a broken plugin: say so, list the rest
            typer.echo(f"{name}: cannot be loaded ({err})")
            continue
        fields = ", ".join(
            f"{key}" + ("" if field.is_required() else f"={field.get_default(call_default_factory=True)!r}")
            for key, field in kind.params.model_fields.items()
        )
        needs = {"required": "a VLM", "optional": "a VLM (optional)", "none": "no VLM"}[kind.model]
        goals = ", per-frame goals" if kind.goals else ""
        typer.echo(f"{name} ({kind.origin}; {needs}{goals}): {fields or 'no parameters'}")
    typer.echo("# Also: --reward-kind package.module:ClassName of a class with a Params model (docs/extending.md).")


# ---------------------------------------------------------------------------------------------
# the library side of the command


def default_out_dir(path: Path) -> Path:
    """``./scores/<name>``: the input's file name without extension, or the folder's name; a
    dataset's ``frames.npy`` is named by its dataset folder (every dataset has one)."""
    name = path.name if path.is_dir() else path.stem
    if not path.is_dir() and path.name == "frames.npy" and path.resolve().parent.name:
        name = path.resolve().parent.name
    return Path("scores") / (name or path.resolve().name or "input")


def build_reward(
    model: VisionLanguageModel,
    goal: list[str],
    baseline: list[str] | None = None,
    alpha: float | None = None,
    negatives: list[str] | None = None,
    temperature: float | None = None,
    threshold: float | None = None,
) -> VLMReward:
    """The reward the options ask for: softmax (with ``negatives``) or goal-baseline.

    Raises:
        InvalidParameterError: options of the other reward (see :func:`_check_reward_options`),
            or a parameter out of range.
        PromptError: an empty or over-long prompt.
    """
    if _check_reward_options(baseline, alpha, negatives, temperature, threshold):
        return SoftmaxThresholdReward(
            model,
            goal,
            negatives,
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            threshold=threshold,
        )
    return GoalBaselineReward(model, goal, baseline or None, alpha=0.0 if alpha is None else alpha)


def build_plugin_reward(
    model: VisionLanguageModel,
    kind: str,
    goal: list[str],
    baseline: list[str] | None,
    alpha: float | None,
    negatives: list[str] | None,
    temperature: float | None,
    threshold: float | None,
    params: dict[str, Any],
) -> Any:
    """A reward of any registered kind (:func:`vlmreward.rewards.registry.build_reward`): ``params``
    plus the goal (when the kind takes one) and every reward option that was given.

    Raises:
        InvalidParameterError: an option or parameter the kind does not take, or out of range.
    """
    fields = lookup_reward_kind(kind).params.model_fields
    given = {"goal": goal if "goal" in fields else None, "baseline": baseline, "alpha": alpha, "negatives": negatives,
             "temperature": temperature, "threshold": threshold}
    return registry_build_reward(kind, {**{k: v for k, v in given.items() if v}, **params}, model)


@dataclass
class ScoreResult:
    """What :func:`score_frames` computed.

    Attributes:
        rewards: ``float32 [N]``, one per frame in input order.
        p_goal: ``float32 [N]`` ``p(goal | frame)`` for the softmax reward, else None.
    """

    rewards: np.ndarray
    p_goal: np.ndarray | None

    @property
    def n_frames(self) -> int:
        return int(self.rewards.shape[0])

    def stats(self) -> dict[str, float]:
        """Mean, standard deviation, min and max of the rewards."""
        r = self.rewards.astype(np.float64)
        return {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "max": float(r.max())}


def score_frames(
    reward: VLMReward,
    frames: Iterable[tuple[str, np.ndarray]],
    batch_size: int,
    csv_path: Path,
    advance: Callable[[int], None] = lambda n: None,
) -> ScoreResult:
    """Reward every frame, embedding each batch once, and write the rows to ``csv_path``.

    The CSV is written next to ``csv_path`` as it goes and renamed into place at the end, so an
    input that fails half-way leaves no partial ``rewards.csv``.

    Args:
        reward: the reward; its ``model`` embeds the frames.
        frames: ``(source, uint8 [H, W, 3])`` pairs (:func:`vlmreward.media.iter_frames`).
        batch_size: frames per batch and per forward pass.
        csv_path: where ``frame,source,reward[,p_goal]`` goes.
        advance: called with the number of frames of each finished batch (a progress bar).

    Returns:
        The rewards (and ``p_goal`` for :class:`SoftmaxThresholdReward`).

    Raises:
        InputFileError: the frames cannot be read, or there are none.
        InvalidParameterError: ``csv_path`` cannot be written.
    """
    softmax = isinstance(reward, SoftmaxThresholdReward)
    rewards: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    partial = csv_path.with_name(csv_path.name + ".partial")
    try:
        with _output_errors(csv_path):
            f = open(partial, "w", newline="", encoding="utf-8")
        with f:
            writer = csv.writer(f)
            writer.writerow(["frame", "source", "reward"] + (["p_goal"] if softmax else []))
            index = 0
            embedding_reward = isinstance(getattr(reward, "model", None), VisionLanguageModel) and callable(
                getattr(reward, "from_embeddings", None)
            )
            for sources, batch in media.iter_batches(frames, batch_size):
                if embedding_reward:
                    embeddings = reward.model.encode_images(batch, batch_size=batch_size)
                    r = reward.from_embeddings(embeddings)
                else:  # a frame reward of another kind: scores the frames itself
                    r = np.asarray(reward(batch), dtype=np.float32).reshape(-1)
                rewards.append(r)
                columns = [range(index, index + len(sources)), sources, map(_fmt, r)]
                if softmax:
                    with torch.inference_mode():
                        p = reward.probability(embeddings).float().cpu().numpy()
                    probabilities.append(p)
                    columns.append(map(_fmt, p))
                with _output_errors(csv_path):
                    writer.writerows(zip(*columns))
                index += len(sources)
                advance(len(sources))
        if not rewards:
            raise InputFileError("the input holds zero frames.")
        with _output_errors(csv_path):
            os.replace(partial, csv_path)
    finally:
        partial.unlink(missing_ok=True)
    return ScoreResult(
        rewards=np.concatenate(rewards).astype(np.float32),
        p_goal=np.concatenate(probabilities).astype(np.float32) if softmax else None,
    )


def plot_rewards(
    path: Path,
    rewards: np.ndarray,
    goal: list[str],
    threshold: float | None = None,
    p_goal: np.ndarray | None = None,
) -> None:
    """Save a PNG of the rewards ``[N]`` against the frame index, titled with the goal prompt(s).

    The threshold, if any, is a dashed horizontal line; ``p_goal`` (``[N]``, the softmax reward's
    probability) is drawn too when the reward is thresholded. Uses matplotlib's Agg canvas
    directly, so no GUI backend is touched.
    """
    from matplotlib.figure import Figure

    n = len(rewards)
    x = np.arange(n)
    marker = "." if n <= 200 else None
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    ax = fig.subplots()
    if threshold is not None and p_goal is not None:
        ax.plot(x, p_goal, color="C1", lw=1, marker=marker, label="p(goal | frame)")
        ax.step(x, rewards, where="mid", color="C0", lw=1.5, label="reward")
    else:
        ax.plot(x, rewards, color="C0", lw=1.5, marker=marker, label="reward")
    if threshold is not None:
        ax.axhline(threshold, color="C3", ls="--", lw=1, label=f"threshold {threshold:g}")
        ax.legend(loc="best", fontsize="small")
    title = " | ".join(repr(g) for g in goal)
    ax.set_title(textwrap.shorten(title, width=100, placeholder=" …").replace("$", r"\$"), fontsize="medium")
    ax.set_xlabel("frame")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    if p_goal is not None:  # a probability or a 0/1 reward
        ax.set_ylim(-0.05, 1.05)
    if n == 1:
        ax.set_xlim(-1, 1)
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------------------------------------
# helpers


def _check_reward_options(
    baseline: list[str] | None,
    alpha: float | None,
    negatives: list[str] | None,
    temperature: float | None,
    threshold: float | None,
) -> bool:
    """True for the softmax reward (negatives given), False for goal-baseline; no option of the other.

    Raises:
        InvalidParameterError: ``--temperature``/``--threshold`` without ``--negative``, or
            ``--baseline``/``--alpha`` with ``--negative``.
    """
    if negatives:
        if baseline or alpha is not None:
            raise InvalidParameterError(
                "--baseline and --alpha belong to the goal-baseline reward, but --negative selects the softmax "
                "reward; drop one or the other."
            )
        return True
    if temperature is not None or threshold is not None:
        given = [o for o, v in (("--temperature", temperature), ("--threshold", threshold)) if v is not None]
        verb = "set" if len(given) > 1 else "sets"
        raise InvalidParameterError(
            f"{' and '.join(given)} {verb} the softmax reward, which needs --negative prompts to compare the "
            "goal against (e.g. --negative 'a cart with a fallen pole')."
        )
    return False


def _fmt(value: float) -> str:
    """A float32 reward with enough digits to round-trip."""
    return f"{float(value):.9g}" if math.isfinite(value) else str(float(value))


@contextmanager
def _output_errors(path: Path) -> Iterator[None]:
    """Turn an OS error while writing ``path`` into a one-sentence :class:`InvalidParameterError`."""
    try:
        yield
    except OSError as err:
        reason = err.strerror or err
        raise InvalidParameterError(f"cannot write {str(path)!r}: {reason}; choose another --out.") from err


def _make_dir(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the folders created, deepest first."""
    missing = [p for p in [path, *path.parents] if not p.exists()]
    with _output_errors(path):
        path.mkdir(parents=True, exist_ok=True)
    return missing


def _write_output(path: Path, write: Callable[[Path], object]) -> None:
    with _output_errors(path):
        write(path)
