"""``vlmreward collect``, ``evaluate`` and ``sweep``: know a reward before training with it.

* ``collect ENV_ID --out DATASET``: record a labelled dataset (:func:`vlmreward.eval.collect.collect`).
* ``evaluate DATASET --model M --goal …``: AP, ROC-AUC, PR curve, best-F1 threshold, EPIC distance,
  correlations, reward landscapes and a report (:func:`vlmreward.eval.outputs.evaluate_dataset`).
  Without ``--goal`` on a goal dataset (``collect vlmreward/MiniWorldGoals-v0``): every frame against
  its own goal with the goal family's negatives, metrics per goal type (``--group-by``).
* ``sweep DATASET --model M1 --model M2 --prompts PROMPTS.yaml``: models × prompt sets × reward
  parameters, one image pass per model (:func:`vlmreward.eval.sweep.run_sweep`); with
  ``goal_templates:`` in the prompts file, prompt templates per goal type compared by AP per goal type.

The commands only parse options; errors a user can cause are :class:`~vlmreward.errors.VLMRewardError`
and become one ``error:`` line with exit code 2 (:mod:`vlmreward.cli.main`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vlmreward.cli.console import is_interactive, progress_bar, quiet_model_loading, resolve_cli_device
from vlmreward.cli.reward_options import RewardOptions, with_reward_options
from vlmreward.cli.options import (
    AntialiasOption,
    OverwriteOption,
    ParamOption,
    QuantizeOption,
    Resize,
    RewardKindOption,
    Runtime,
    RuntimeOption,
    model_spec,
    parse_batch_size,
    parse_params,
)
from vlmreward._paths import refuse_to_overwrite
from vlmreward.errors import InvalidParameterError
from vlmreward.models import DEFAULT_RESIZE
from vlmreward.models.autotune import AUTO
from vlmreward.models.base import DEFAULT_BATCH_SIZE

__all__ = ["collect", "evaluate", "sweep", "parse_env_kwargs", "parse_templates"]


def parse_templates(items: list[str] | None) -> dict[str, list[str]]:
    """``["TYPE=TEMPLATE", …]`` → ``{TYPE: [TEMPLATE, …]}`` (a type given twice: a prompt ensemble).

    Raises:
        InvalidParameterError: an item without ``=``.
    """
    out: dict[str, list[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidParameterError(f"--template {item!r}: write TYPE=TEMPLATE, e.g. --template 'find=a photo of a {{object}}'.")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def parse_env_kwargs(items: list[str] | None) -> dict[str, Any]:
    """``["KEY=VALUE", …]`` → ``{KEY: VALUE}``, values parsed as YAML (``224`` → int, ``true`` → bool).

    Raises:
        InvalidParameterError: an item without ``=``.
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(f"--env-kwarg {item!r}: write KEY=VALUE, e.g. --env-kwarg render_width=320.")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _cache_dir(dataset_path: Path, cache_dir: Optional[Path], no_cache: bool) -> Optional[Path]:
    from vlmreward.eval.embeddings import DEFAULT_CACHE_SUBDIR

    if no_cache:
        return None
    return cache_dir if cache_dir is not None else dataset_path / DEFAULT_CACHE_SUBDIR


# ---------------------------------------------------------------------------------------------
# collect


def collect(
    env_id: Annotated[str, typer.Argument(metavar="ENV_ID", help="A gymnasium id, e.g. vlmreward/CartPole-v1.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="The dataset directory to create.", show_default=False)],
    policy: Annotated[
        str,
        typer.Option(help="random, scripted (a state sweep: CartPole, MountainCar, Humanoid, MiniWorldGoals), expert (Meta-World: its scripted expert in even episodes, random actions in odd ones) or a `vlmreward train` run directory."),
    ] = "random",
    episodes: Annotated[
        Optional[int], typer.Option(help="Episodes to record (random or trained policy).", show_default="10")
    ] = None,
    frames: Annotated[
        Optional[int],
        typer.Option(help="Frames to record: the sweep's size (default 200), or a cap on episodes.", show_default=False),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the first reset and the random actions.")] = 0,
    max_steps: Annotated[Optional[int], typer.Option(help="Cut episodes after this many steps.", show_default=False)] = None,
    env_kwarg: Annotated[
        Optional[list[str]],
        typer.Option("--env-kwarg", help="KEY=VALUE keyword argument of gymnasium.make (repeat), e.g. task=splits.", show_default=False),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing dataset at --out.")] = False,
) -> None:
    """Record frames with ground-truth state, reward and success labels into a dataset directory."""
    import os

    from vlmreward.eval.collect import POLICY_KINDS
    from vlmreward.eval.collect import collect as run_collect

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # rgb_array frames need no window (quiets pygame's SDL)

    acting: Any = policy
    if policy not in POLICY_KINDS and Path(policy).is_dir():  # a `vlmreward train` run: its trained policy
        from vlmreward.rl.run_policy import load_run_policy

        acting = load_run_policy(Path(policy))
    with progress_bar(frames, enabled=is_interactive()) as advance:
        result = run_collect(
            env_id, out, acting, episodes=episodes, frames=frames, env_kwargs=parse_env_kwargs(env_kwarg),
            seed=seed, max_steps=max_steps, overwrite=overwrite, progress=advance,
        )
    h, w = result.render_size
    positives = "no success label" if result.positives is None else f"{result.positives} labelled successful"
    unit = "sweep lines" if policy == "scripted" else "episodes"
    typer.echo(f"collected {result.frames} frames ({result.episodes} {unit}, {positives}) of {env_id} at {w}x{h}")
    typer.echo(f"wrote     {result.path}")


# ---------------------------------------------------------------------------------------------
# evaluate


@with_reward_options("evaluate")
def evaluate(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET", help="A dataset directory from `vlmreward collect`.", show_default=False)],
    model: Annotated[
        Optional[str],
        typer.Option("--model", "-m", help="Model name, as for `vlmreward score` (not needed by a model-free reward kind).",
                     show_default=False),
    ] = None,
    goal: Annotated[
        Optional[list[str]],
        typer.Option(
            "--goal", "-g",
            help="Goal prompt; repeat to average several. Leave out for a goal dataset: each frame against its own goal.",
            show_default=False,
        ),
    ] = None,
    reward_options: RewardOptions = None,  # type: ignore[assignment]  (generated: --baseline, --alpha, ...)
    label: Annotated[
        Optional[str], typer.Option(help="Binary label column for AP, ROC-AUC and F1.", show_default="is_success")
    ] = None,
    reference: Annotated[str, typer.Option(help="Numeric column the EPIC distance and correlations compare with.")] = "gt_reward",
    x: Annotated[
        Optional[str], typer.Option("--x", help="State variable of the landscape plot.", show_default="from the dataset")
    ] = None,
    facet: Annotated[
        Optional[str], typer.Option(help="Categorical column: one landscape panel per value.", show_default="from the dataset")
    ] = None,
    target_precision: Annotated[
        Optional[float], typer.Option(help="Also report the threshold reaching this precision.", show_default=False)
    ] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Weights file for an open_clip:ARCH model.", show_default=False)] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1, ...", show_default="cuda if available, else cpu")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Weight dtype: float32, float16, bfloat16.", show_default="float32")] = None,
    resize: Annotated[Resize, typer.Option(help="How frames are fitted to the model's square input.")] = Resize(DEFAULT_RESIZE),
    antialias: AntialiasOption = True,
    runtime: RuntimeOption = Runtime.torch,
    quantize: QuantizeOption = None,
    reward_kind: RewardKindOption = None,
    param: ParamOption = None,
    batch_size: Annotated[Optional[str], typer.Option(help="Frames per forward pass, or auto: the fastest on this machine, "
                                                     "timed once per frame size and cached.", show_default="64")] = None,
    truncate: Annotated[bool, typer.Option("--truncate", help="Truncate prompts longer than the model's context.")] = False,
    cache_dir: Annotated[
        Optional[Path], typer.Option(help="Embedding cache directory.", show_default="DATASET/embeddings_cache")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write cached embeddings.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="./evaluations/<dataset name>")] = None,
    overwrite: OverwriteOption = False,
    goal_family: Annotated[
        Optional[Path], typer.Option(help="Goal-family YAML for a goal dataset.", show_default="the dataset's own")
    ] = None,
    family_negatives: Annotated[
        str, typer.Option(help="Negatives of each frame's goal: all, same_template or k_sampled (goal datasets).")
    ] = "all",
    k: Annotated[Optional[int], typer.Option("--k", help="Negatives per goal with k_sampled.", show_default=False)] = None,
    template: Annotated[
        Optional[list[str]],
        typer.Option(
            help="TYPE=TEMPLATE: the reward's prompt for a goal type, e.g. 'find=a photo of a {object} in a room' (repeat).",
            show_default=False,
        ),
    ] = None,
    group_by: Annotated[
        Optional[str], typer.Option(help="Also report the metrics per value of this column.", show_default="goal_type for goal datasets")
    ] = None,
    mismatch: Annotated[
        Optional[list[str]],
        typer.Option(help="Another task's instruction: the episodes scored against it must score lower "
                     "(instruction-mismatch metric; repeat).", show_default=False),
    ] = None,
) -> None:
    """Evaluate a VLM reward on a labelled dataset: metrics.json, plots and report.html.

    On a dataset of episodes (from `vlmreward collect`) it also reports VOC, policy ranking and,
    with --mismatch, instruction mismatch."""
    from vlmreward.eval.dataset import load_dataset
    from vlmreward.eval.settings import reward_settings, scores_per_frame_goals
    from vlmreward.eval.outputs import evaluate_dataset
    from vlmreward.rewards import registry
    from vlmreward.rewards.selection import default_kind
    from vlmreward.goals import load_goal_family

    batch = parse_batch_size(batch_size)
    params = parse_params(param)
    options = dict(reward_options or {})
    if not scores_per_frame_goals(reward_kind, goal):  # option errors before loading anything
        kind = reward_settings(reward_kind, {"goal": goal, **options}, params)[0].spec
    else:  # a goal dataset: each frame against its own goal
        kind = registry.reward_kind(reward_kind) if reward_kind is not None else default_kind({"goals"})
    if model is None and (kind is None or kind.model == "required"):
        what = f"reward kind {kind.name!r}" if kind is not None else "this reward kind"
        raise InvalidParameterError(f"{what} scores frames with a vision-language model; give one with --model.")
    templates = parse_templates(template)
    family = load_goal_family(goal_family) if goal_family is not None else None
    data = load_dataset(dataset)
    out_dir = out if out is not None else Path("evaluations") / data.name
    refuse_to_overwrite(out_dir, ("metrics.json", "report.html"), overwrite)  # before the model loads
    interactive = is_interactive()
    vlm = None
    if model is not None and (kind is None or kind.model != "none"):
        with quiet_model_loading(enabled=not interactive):
            vlm = model_spec(model, device, dtype, resize, antialias, checkpoint, runtime, quantize, truncate,
                             AUTO if batch == AUTO else DEFAULT_BATCH_SIZE).load("--device")
    with progress_bar(len(data), enabled=interactive) as advance:
        result = evaluate_dataset(
            data, vlm, goal, out_dir, options=options,
            label=label, reference=reference, x=x, facet=facet, target_precision=target_precision,
            cache_dir=_cache_dir(dataset, cache_dir, no_cache), batch_size=None if batch == AUTO else batch, progress=advance,
            goal_family=family, family_negatives=family_negatives, k=k, templates=templates or None, group_by=group_by,
            reward_kind=reward_kind, reward_params=params, mismatch=mismatch,
        )
    from vlmreward.eval.report import format_number as f

    cache = "cached embeddings" if result.metrics["embedding_cache"]["hit"] else "one image pass"
    by = f"{vlm.name} ({cache})" if vlm is not None else f"the {kind.display_name if kind else 'model-free'} reward (no model)"
    typer.echo(f"evaluated {len(data)} frames of {data.env_id} with {by}")
    for r in result.results:
        s = r.summary()
        typer.echo(
            f"  {r.name:<12} AP {f(s['average_precision'], 3):>6}  ROC-AUC {f(s['roc_auc'], 3):>6}  "
            f"EPIC {f(s['epic_distance'], 3):>6}  Pearson {f(s['pearson'], 3):>6}  Spearman {f(s['spearman'], 3):>6}"
        )
        if r.quality is not None:
            q = r.quality
            typer.echo(
                f"  {'':<12} VOC {f(q['voc'], 3):>6}  policy ranking τ {f(q['policy_ranking_tau'], 3):>6}  "
                f"instruction mismatch {f(q['instruction_mismatch'], 3):>6}  ({q['episodes']} episodes, {q['voc_episodes']} for VOC)"
            )
        for value, g in r.groups.items():
            typer.echo(
                f"    {result.metrics['group_by']} {value:<10} AP {f(g['average_precision'], 3):>6}  "
                f"ROC-AUC {f(g['roc_auc'], 3):>6}  ({g['frames']} frames, {g['positives']} positive)"
            )
    for note in result.metrics["notes"]:
        typer.echo(f"note: {note}")
    for r in result.results:
        for note in r.notes:
            typer.echo(f"note: {r.name}: {note}")
    typer.echo(f"wrote     {result.files['metrics']}")
    for kind, path in result.files.items():
        if kind != "metrics":
            typer.echo(f"          {path}")


# ---------------------------------------------------------------------------------------------
# sweep


@with_reward_options("sweep")
def sweep(
    dataset: Annotated[Path, typer.Argument(metavar="DATASET", help="A dataset directory from `vlmreward collect`.", show_default=False)],
    model: Annotated[
        list[str],
        typer.Option("--model", "--models", "-m", help="MODEL or MODEL@CHECKPOINT; repeat for each model.", show_default=False),
    ],
    prompts: Annotated[Path, typer.Option(help="YAML file of prompt sets (goal, baseline, negatives).", show_default=False)],
    reward_options: RewardOptions = None,  # type: ignore[assignment]  (generated: --alpha, --temperature, ... grids)
    label: Annotated[Optional[str], typer.Option(help="Binary label column.", show_default="is_success")] = None,
    reference: Annotated[str, typer.Option(help="Numeric column for EPIC distance and correlations.")] = "gt_reward",
    target_precision: Annotated[
        Optional[float], typer.Option(help="Also report the threshold reaching this precision.", show_default=False)
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1, ...", show_default="cuda if available, else cpu")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="Weight dtype: float32, float16, bfloat16.", show_default="float32")] = None,
    resize: Annotated[Resize, typer.Option(help="How frames are fitted to the model's square input.")] = Resize(DEFAULT_RESIZE),
    antialias: AntialiasOption = True,
    runtime: RuntimeOption = Runtime.torch,
    quantize: QuantizeOption = None,
    reward_kind: RewardKindOption = None,
    param: ParamOption = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Frames per forward pass.", show_default="64")] = None,
    cache_dir: Annotated[
        Optional[Path], typer.Option(help="Embedding cache directory.", show_default="DATASET/embeddings_cache")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write cached embeddings.")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="./sweeps/<dataset name>")] = None,
    overwrite: OverwriteOption = False,
    group_by: Annotated[
        Optional[str], typer.Option(help="Also one row per value of this column.", show_default="goal_type with goal_templates")
    ] = None,
    goal_family: Annotated[
        Optional[Path], typer.Option(help="Goal-family YAML for goal_templates.", show_default="the dataset's own")
    ] = None,
) -> None:
    """Models × prompt sets × reward parameters on one dataset: results.csv/.md, plots, report.html."""
    from vlmreward.eval.dataset import load_dataset
    from vlmreward.eval.sweep import load_prompt_sets, parse_model, run_sweep
    from vlmreward.goals import load_goal_family

    if batch_size is not None and batch_size < 1:
        raise InvalidParameterError(f"--batch-size must be at least 1; got {batch_size}.")
    for m in model:
        parse_model(m)  # a malformed MODEL@CHECKPOINT fails before anything loads
    specs = list(model)
    prompt_sets = load_prompt_sets(prompts)
    data = load_dataset(dataset)
    interactive = is_interactive()
    out_dir = out if out is not None else Path("sweeps") / data.name
    refuse_to_overwrite(out_dir, ("results.csv", "sweep.json", "report.html"), overwrite)
    with quiet_model_loading(enabled=not interactive), progress_bar(len(data) * len(specs), enabled=interactive) as advance:
        result = run_sweep(
            data, specs, prompt_sets, out_dir, options=reward_options, label=label, reference=reference,
            target_precision=target_precision, cache_dir=_cache_dir(dataset, cache_dir, no_cache),
            device=resolve_cli_device(device), dtype=dtype, resize=resize.value, antialias=antialias, runtime=runtime.value,
            quantize=quantize.value if quantize is not None else None, batch_size=batch_size,
            progress=lambda _name, n: advance(n), group_by=group_by,
            goal_family=load_goal_family(goal_family) if goal_family is not None else None,
            reward_kind=reward_kind, reward_params=parse_params(param),
        )
    passes = sum(not m["cache_hit"] for m in result.models)
    typer.echo(
        f"swept {len(result.models)} models x {len(prompt_sets)} prompt sets on {len(data)} frames of {data.env_id}: "
        f"{len(result.rows)} rows, {passes} image pass(es), {len(result.models) - passes} from the cache"
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote     {result.files['csv']}")
    for kind, path in result.files.items():
        if kind != "csv":
            typer.echo(f"          {path}")
