"""The run directory of a training run: its files, its logger, its creation, and what reads it back.

``RUN_DIR/config.yaml`` (:data:`CONFIG_FILE`), ``logs/progress.csv`` (continued across resumes),
``final_model.zip`` (:data:`FINAL_MODEL_FILE`), ``evaluation.json`` (:data:`EVALUATION_FILE`);
checkpoints are :mod:`vlmreward.rl.checkpoints`'.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format

from vlmreward._paths import atomic_write_text, files_sha256
from vlmreward.rl.checkpoints import latest_checkpoint
from vlmreward.rl.config import (
    RESUME_OVERRIDABLE,
    ConfigError,
    RunConfig,
    load_config,
)

__all__ = [
    "CONFIG_FILE",
    "FINAL_MODEL_FILE",
    "FINAL_VEC_NORMALIZE_FILE",
    "EVALUATION_FILE",
    "MODEL_FINGERPRINT_FILE",
    "weights_fingerprint",
    "record_model_fingerprint",
    "record_origin",
    "warn_if_made_elsewhere",
    "ORIGIN_FILE",
    "check_resume_overrides",
    "check_same_weights",
    "load_run_config",
    "new_run_dir",
    "make_logger",
    "truncate_logs",
    "policy_source",
    "load_policy",
    "LoadedPolicy",
    "atomic_model_save",
]

CONFIG_FILE = "config.yaml"
FINAL_MODEL_FILE = "final_model.zip"
FINAL_VEC_NORMALIZE_FILE = "final_vecnormalize.npz"
LEGACY_FINAL_VEC_NORMALIZE_FILE = "final_vecnormalize.pkl"  # a pickle, written by earlier versions
EVALUATION_FILE = "evaluation.json"
MODEL_FINGERPRINT_FILE = "model_fingerprint.json"
"""The SHA-256 of a local model directory's files, written when a run starts (:func:`weights_fingerprint`)."""

_WEIGHT_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".model", ".txt", ".jinja")


def weights_fingerprint(name: str | os.PathLike | None) -> str | None:
    """SHA-256 over the names and bytes of a local model directory's files (config, weights,
    tokenizer, processor), or of a local weights file; None for a name that is no local path
    (a hub id, ``open_clip:...``)."""
    if name is None:
        return None
    path = Path(name)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    else:
        return None
    return files_sha256((str(file.relative_to(path)) if path.is_dir() else file.name, file) for file in files)


class _ResumableCSV(CSVOutputFormat):
    """SB3's CSV output, continuing an existing ``progress.csv`` (same header, rows appended)."""

    def __init__(self, filename: str) -> None:  # noqa: D107
        exists = os.path.isfile(filename) and os.path.getsize(filename) > 0
        self.file = open(filename, "r+" if exists else "w+")
        header = self.file.readline().rstrip("\n") if exists else ""
        self.keys = header.split(",") if header else []
        self.file.seek(0, os.SEEK_END)
        self.separator = ","
        self.quotechar = '"'


TENSORBOARD_LAYOUT = {
    "VLM reward vs ground truth": {
        "training episodes: VLM return and ground-truth return": ["Multiline", ["rollout/vlm_return", "rollout/gt_return"]],
        "evaluation: VLM return and ground-truth return": ["Multiline", ["eval/vlm_return", "eval/gt_return"]],
        "success rate (training, evaluation; last step and VLM-RM's held ≥ 50 % rule)": [
            "Multiline", ["rollout/success_rate", "eval/success_rate", "rollout/success_rate_held", "eval/success_rate_held"]],
        "SB3's rollout/ep_rew_mean is the environment's own (ground-truth) return": ["Multiline", ["rollout/ep_rew_mean"]],
    }
}
"""TensorBoard's custom-scalars layout: the VLM return the agent optimises and the ground-truth return
on one chart (TensorBoard's default view gives every tag its own card)."""


LOG_COLUMNS = """\
# What the columns of progress.csv (and the TensorBoard tags) mean

rollout/vlm_return          mean VLM return of the last 100 training episodes: the sum of the VLM reward the agent optimises
rollout/gt_return           mean ground-truth return of the same episodes: the environment's own reward
rollout/ep_rew_mean         SB3's own column: the environment's own (ground-truth) return, NOT the VLM reward
                            (SB3's Monitor sits below the VLM reward wrapper); with per-step scoring it equals
                            rollout/gt_return (both average the last 100 episodes); with deferred scoring
                            rollout/gt_return lags it by up to one scoring batch
rollout/success_rate        episodes whose last step reports info["is_success"]
rollout/success_rate_held   episodes whose goal held in at least 50 % of their steps (VLM-RM's rule, Rocamonde et al. 4.4)
rollout/episode_length      mean episode length
eval/...                    the same for the deterministic policy on a separate environment (eval_every steps);
                            eval_held_out/... on held-out goals of a goal family
*/<goal type>               per goal type of a goal family
time/total_timesteps        environment steps so far (all sub-environments)
Every other column is SB3's (train/..., time/...).

# ../episodes.csv: one row per training episode, every episode SB3 counts (time/episodes)
timesteps                   the step (time/total_timesteps) at which the episode ended; with deferred scoring the row
                            is written when its frames are scored, up to one scoring batch later, and at the latest
                            when the run ends or a checkpoint is written
env_index, length           the sub-environment and the episode's number of steps
vlm_return, gt_return       the sums of the VLM reward and of the environment's own reward over the episode
success, success_fraction   info["is_success"] at the last step; the fraction of steps where it held
"""
"""``RUN_DIR/logs/columns.txt``: the run's own record of what each logged key means."""


def truncate_logs(run_dir: str | os.PathLike, step: int) -> dict[str, int]:
    """Cut a run's logs back to what a checkpoint at ``step`` holds, before a resume continues them.

    A run killed after its last checkpoint (SIGKILL, a power cut) has logged the steps after it,
    which the resumed run logs again. This drops, each file rewritten atomically:

    * ``logs/progress.csv``: rows whose ``time/total_timesteps`` is above ``step``;
    * ``episodes.csv``: episodes that ended after ``step`` (``timesteps``);
    * ``evaluations.jsonl``: evaluations after ``step`` (a damaged line, a write cut short, too).

    TensorBoard's event files are append-only: the resumed run's writer purges the steps after
    ``step`` instead (``SummaryWriter(purge_step=step + 1)``, :func:`make_logger`).

    Returns:
        ``{file name: rows dropped}`` for the files that lost rows.
    """
    import csv
    import io

    run_dir = Path(run_dir)
    dropped: dict[str, int] = {}

    def cut_csv(path: Path, column: str) -> None:
        if not path.is_file():
            return
        text = path.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        if len(rows) < 2 or column not in rows[0]:
            return
        index = rows[0].index(column)
        kept = [r for r in rows[1:] if len(r) == len(rows[0]) and (not r[index] or _number(r[index]) <= step)]
        if len(kept) != len(rows) - 1:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows([rows[0], *kept])
            atomic_write_text(path, out.getvalue())
            dropped[path.name] = len(rows) - 1 - len(kept)

    cut_csv(run_dir / "logs" / "progress.csv", "time/total_timesteps")
    cut_csv(run_dir / "episodes.csv", "timesteps")
    evaluations = run_dir / "evaluations.jsonl"
    if evaluations.is_file():
        lines = evaluations.read_text(encoding="utf-8").splitlines()
        kept_lines = []
        for line in lines:
            try:
                if int(json.loads(line)["step"]) <= step:
                    kept_lines.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        if len(kept_lines) != len(lines):
            atomic_write_text(evaluations, "".join(line + "\n" for line in kept_lines))
            dropped[evaluations.name] = len(lines) - len(kept_lines)
    return dropped


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")  # not a step count: a row cut short by a kill


def make_logger(config: RunConfig, run_dir: Path, purge_after: int | None = None) -> Logger:
    """SB3's logger of a run: ``logs/progress.csv`` (continued), TensorBoard, stdout, W&B as configured.

    ``purge_after``: a resumed run's checkpoint step; TensorBoard hides what an earlier process
    logged after it (:func:`truncate_logs` cuts the other logs).
    """
    folder = run_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "columns.txt").write_text(LOG_COLUMNS, encoding="utf-8")
    formats = [_ResumableCSV(str(folder / "progress.csv"))]
    if config.log.tensorboard:
        tensorboard = make_output_format("tensorboard", str(folder))
        if purge_after is not None:  # TensorBoard's own mechanism for a restart from an earlier step
            from torch.utils.tensorboard import SummaryWriter

            tensorboard.writer.close()
            tensorboard.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_after + 1)
        tensorboard.writer.add_custom_scalars(TENSORBOARD_LAYOUT)  # the CUSTOM SCALARS tab
        formats.append(tensorboard)
    if config.log.stdout:
        formats.append(make_output_format("stdout", str(folder)))
    if config.log.wandb:
        from vlmreward.rl.curves import CURVES_FILE
        from vlmreward.rl.report import REPORT_FILE
        from vlmreward.rl.wandb_log import WandbOutputFormat

        log = config.log
        wandb_output = WandbOutputFormat(folder, run_dir.name, config.model_dump(mode="json"), log.wandb_project,
                                         log.wandb_entity, log.wandb_mode)
        wandb_output.upload_at_close(run_dir / CURVES_FILE, run_dir / REPORT_FILE)
        formats.append(wandb_output)
    return Logger(folder=str(folder), output_formats=formats)


def new_run_dir(config: RunConfig) -> Path:
    base = Path(config.output_dir)
    if config.run_name:
        run_dir = base / config.run_name
        if (run_dir / CONFIG_FILE).exists():
            raise ConfigError(
                f"run_name: {run_dir} already holds a run; continue it with `vlmreward train --resume {run_dir}` "
                "or choose another run_name."
            )
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^\w.\-]+", "-", config.env.id.split("/")[-1])
        run_dir = base / f"{config.algorithm.lower()}-{slug}-{stamp}"
        k = 1
        while run_dir.exists():
            run_dir = base / f"{config.algorithm.lower()}-{slug}-{stamp}-{k}"
            k += 1
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"output_dir: cannot create {run_dir} ({err}).") from err
    return run_dir


def atomic_model_save(model: BaseAlgorithm, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def load_run_config(run_dir: str | os.PathLike, overrides: Iterable[str] = ()) -> RunConfig:
    """The config saved in a run directory (``RUN_DIR/config.yaml``), with overrides.

    Raises:
        ConfigError: not a run directory, or an invalid config.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory ({CONFIG_FILE} is missing); give the directory `vlmreward train` created.")
    return load_config(path, overrides)


def policy_source(run_dir: Path) -> tuple[Path, Path | None, str]:
    final = run_dir / FINAL_MODEL_FILE
    if final.is_file():
        norm = next((p for p in (run_dir / FINAL_VEC_NORMALIZE_FILE, run_dir / LEGACY_FINAL_VEC_NORMALIZE_FILE) if p.is_file()), None)
        return final, norm, "final model"
    info = latest_checkpoint(run_dir)
    return info.model, info.vec_normalize, f"checkpoint at {info.num_timesteps} steps"


class LoadedPolicy(NamedTuple):
    """A run's trained policy (:func:`load_policy`)."""

    model: BaseAlgorithm
    vec_normalize: Any  # VecNormalize (frozen) or None
    source: str  # "final model" or "checkpoint at N steps"
    path: Path  # the model file


def load_policy(
    run_dir: str | os.PathLike,
    device: str = "auto",
    spaces: tuple[Any, Any] | None = None,
    trust: bool = False,
) -> LoadedPolicy:
    """The trained policy of a run directory: the final model, else the latest checkpoint.

    Args:
        run_dir: a directory made by ``vlmreward train``.
        device: where the policy runs.
        spaces: ``(observation_space, action_space)`` of the environment the policy will act in;
            with them nothing is unpickled (:func:`vlmreward.rl.builders.load_algorithm`).
            Without them SB3 unpickles the archive's own copies, which only ``trust`` allows.
        trust: allow pickles (the archive without ``spaces``, an earlier version's
            ``vecnormalize.pkl``): a pickle can run code, load only your own run directories.

    Returns:
        :class:`LoadedPolicy`: ``vec_normalize`` (the training statistics, frozen:
        ``training=False``, or None) normalises observations alike; ``source`` says which file.

    Raises:
        ConfigError: not a run directory; a pickle needed without ``trust``.
        CheckpointError: neither a final model nor a checkpoint.
    """
    import pickle

    from vlmreward.rl.builders import ALGORITHM_CLASSES, load_algorithm
    from vlmreward.rl.run_state import load_vec_normalize

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model_path, norm_path, source = policy_source(run_dir)
    if spaces is not None:
        model = load_algorithm(config, model_path, *spaces, device=device, trust=trust)
    elif trust:
        model = ALGORITHM_CLASSES[config.algorithm].load(str(model_path), device=device)
    else:
        raise ConfigError(f"loading {model_path} without the environment's spaces unpickles SB3's copies of them; "
                          "give spaces=(observation_space, action_space), or trust=True for your own run directory.")
    vec_normalize = None
    if norm_path is not None and norm_path.suffix == ".npz":
        vec_normalize = load_vec_normalize(norm_path)
    elif norm_path is not None:
        if not trust:
            raise ConfigError(f"{norm_path} is a pickle (written by an earlier vlmreward), which can run code; "
                              "pass --trust-run-dir (trust=True) if you made this run directory yourself.")
        with open(norm_path, "rb") as f:
            vec_normalize = pickle.load(f)
        vec_normalize.training = False
    return LoadedPolicy(model, vec_normalize, source, Path(model_path))


ORIGIN_FILE = "origin.json"
"""Where and by whom a run directory was made (host name and user id), for :func:`warn_if_made_elsewhere`."""


def _origin() -> dict[str, Any]:
    import socket

    return {"host": socket.gethostname(), "uid": os.getuid() if hasattr(os, "getuid") else None}


def record_origin(run_dir: Path) -> None:
    """Write :data:`ORIGIN_FILE`: this machine's host name and this user's id."""
    atomic_write_text(run_dir / ORIGIN_FILE, json.dumps(_origin()) + "\n")


def warn_if_made_elsewhere(run_dir: Path, config: RunConfig, trust: bool) -> bool:
    """Warn (``vlmreward.rl`` logger) when a run directory was made on another machine or by another
    user, or by an earlier version (no :data:`ORIGIN_FILE`), unless ``trust``: resuming it runs
    the code its config names (dotted-path reward factories, plugins); checkpoints themselves hold
    no pickles. Returns whether it warned."""
    import logging

    try:
        origin = json.loads((run_dir / ORIGIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        origin = None
    if trust or origin == _origin():
        return False
    where = "by an earlier version of vlmreward" if origin is None else f"on {origin.get('host')} by user {origin.get('uid')}"
    factory = getattr(config.reward, "factory", None)
    code = f" (it names code: {factory})" if factory else ""
    logging.getLogger("vlmreward.rl").warning(
        "%s was made %s: resuming it runs the code its config names%s; pass --trust-run-dir if you trust it",
        run_dir, where, code)
    return True


def record_model_fingerprint(run_dir: Path, name: str | None) -> None:
    """Write :data:`MODEL_FINGERPRINT_FILE` for a local model (nothing for a hub id), so that
    ``--resume --set model=PATH`` can accept the same weights at another path."""
    fingerprint = weights_fingerprint(name)
    if fingerprint is not None:
        atomic_write_text(run_dir / MODEL_FINGERPRINT_FILE, json.dumps({"model": str(name), "sha256": fingerprint}) + "\n")


def check_resume_overrides(overrides: Iterable[str], run_dir: Path | None = None) -> list[str]:
    items = list(overrides)
    for item in items:
        key, _, value = (part.strip() for part in item.partition("="))
        if key in ("model", "model.name") and run_dir is not None:
            check_same_weights(run_dir, value)
            continue
        if not any(key == k or key.startswith(k + ".") for k in RESUME_OVERRIDABLE):
            raise ConfigError(
                f"--set {key}: cannot change when resuming (it would be another run); resumable keys: "
                f"{', '.join(RESUME_OVERRIDABLE)}. Start a new run with `vlmreward train CONFIG` instead."
            )
    return items



def check_same_weights(run_dir: Path, name: str) -> None:
    """``--set model=PATH`` on resume: allowed when PATH holds the weights the run started with.

    Raises:
        ConfigError: the run recorded no fingerprint (its model was no local path), or PATH holds other weights.
    """
    record = run_dir / MODEL_FINGERPRINT_FILE
    if not record.is_file():
        raise ConfigError(
            f"--set model: {run_dir} recorded no fingerprint of its model's weights (it was not a local directory), "
            "so another path cannot be checked to hold the same weights; resume without --set model."
        )
    old = json.loads(record.read_text(encoding="utf-8"))
    new = weights_fingerprint(os.path.expanduser(name))
    if new is None:
        raise ConfigError(f"--set model: {name!r} is not a local model directory or file.")
    if new != old.get("sha256"):
        raise ConfigError(
            f"--set model: {name!r} holds other weights than the run was trained with ({old.get('model')}); resume "
            "with the same weights, or start a new run."
        )
