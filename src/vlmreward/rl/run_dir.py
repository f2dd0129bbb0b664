"""The run directory of a training run: its files, its creation, and what reads it back.

``RUN_DIR/config.yaml`` (:data:`CONFIG_FILE`), ``final_model.zip`` (:data:`FINAL_MODEL_FILE`),
``evaluation.json`` (:data:`EVALUATION_FILE`), ``origin.json`` (:data:`ORIGIN_FILE`),
``batch_size.json`` (:data:`BATCH_SIZE_FILE`, with ``model.batch_size: auto``); the logs are
:mod:`vlmreward.rl.logs`', checkpoints :mod:`vlmreward.rl.checkpoints`'.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from stable_baselines3.common.base_class import BaseAlgorithm

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
    "BATCH_SIZE_FILE",
    "record_batch_choices",
    "record_model_fingerprint",
    "record_origin",
    "warn_if_made_elsewhere",
    "ORIGIN_FILE",
    "check_resume_overrides",
    "check_same_weights",
    "load_run_config",
    "new_run_dir",
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


def new_run_dir(config: RunConfig, hold: contextlib.ExitStack | None = None) -> Path:
    """Create the run directory of a new run and, with ``hold``, lock it for the stack's life.

    ``output_dir/run_name``, or ``output_dir/<algorithm>-<env>-<date>-<time>``. Each run gets a
    directory of its own, also when two start at once with one name: a directory that holds a run
    (``config.yaml``) or is in use by another process is passed over for ``NAME-2``, ``NAME-3``, ...
    (a warning says so; ``vlmreward train --resume DIR`` continues an earlier run instead). The
    directory is claimed by creating it (``mkdir``) or, for ``run_name``, by its lock
    (:func:`vlmreward._locking.exclusive_directory`).

    Raises:
        ConfigError: ``output_dir`` cannot be created.
    """
    import logging

    from vlmreward._locking import DirectoryInUseError, exclusive_directory

    base = Path(config.output_dir)
    if config.run_name:
        name = config.run_name
    else:
        slug = re.sub(r"[^\w.\-]+", "-", config.env.id.split("/")[-1])
        name = f"{config.algorithm.lower()}-{slug}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"output_dir: cannot create {base} ({err}).") from err
    for k in range(1, 10_000):
        run_dir = base / (name if k == 1 else f"{name}-{k}")
        try:
            run_dir.mkdir(exist_ok=bool(config.run_name))
        except FileExistsError:
            continue  # another run's (stamped names: created by mkdir alone)
        except OSError as err:
            raise ConfigError(f"output_dir: cannot create {run_dir} ({err}).") from err
        claim = contextlib.ExitStack()
        if hold is not None:
            try:
                claim.enter_context(exclusive_directory(run_dir))
            except DirectoryInUseError:
                continue
        if (run_dir / CONFIG_FILE).exists():  # checked under the lock: a run another process made
            claim.close()
            continue
        if hold is not None:
            hold.enter_context(claim.pop_all())
        if k > 1:
            logging.getLogger("vlmreward.rl").warning(
                "%s already holds a run or is in use; this run goes to %s (continue the other with --resume)",
                base / name, run_dir)
        return run_dir
    raise ConfigError(f"output_dir: no free run directory named {name}-N in {base}.")


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


BATCH_SIZE_FILE = "batch_size.json"
"""With ``model.batch_size: auto``: the batch size chosen for each frame size
(:class:`~vlmreward.models.autotune.BatchChoice` as JSON, a list), written when training stops."""


def record_batch_choices(run_dir: Path, reward_model: Any) -> None:
    """Write :data:`BATCH_SIZE_FILE` when the reward's model tuned its batch size (``model.batch_size: auto``);
    nothing otherwise (a fixed size is in ``config.yaml``; replicas of a ``scale`` section tune their own)."""
    choices = getattr(getattr(reward_model, "model", None), "batch_choices", None)
    if choices:
        atomic_write_text(run_dir / BATCH_SIZE_FILE, json.dumps([c.to_json() for c in choices.values()], indent=1) + "\n")


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
