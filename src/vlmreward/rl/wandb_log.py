"""Weights & Biases logging of a training run (``log.wandb: true``; ``pip install -e ".[wandb]"``).

:class:`WandbOutputFormat` is one more output of SB3's logger, beside ``progress.csv`` and
TensorBoard: every value the run logs (``rollout/vlm_return``, ``rollout/gt_return``,
``rollout/success_rate_held``, ``eval/...``, SB3's ``train/...``) goes to ``wandb.log`` at the
step count it was logged at. The run is created in ``RUN_DIR/logs`` with the resolved config, and
its id is kept in ``RUN_DIR/logs/wandb_run_id`` so that ``--resume`` continues the same W&B run.
``log.wandb_mode: offline`` (or ``WANDB_MODE=offline``) writes it locally for ``wandb sync`` later;
the tests run that way. ``curves.png`` and ``report.html`` are uploaded with the run's files at
the end.
"""

from __future__ import annotations

import logging
import math
import numbers
import uuid
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import KVWriter

from vlmreward.rl.config import ConfigError

__all__ = ["WandbOutputFormat", "RUN_ID_FILE"]

_log = logging.getLogger("vlmreward.rl")

RUN_ID_FILE = "wandb_run_id"


class WandbOutputFormat(KVWriter):
    """SB3 logger output to a Weights & Biases run (numbers only; strings and videos are skipped).

    Args:
        folder: the run's ``logs`` folder (W&B's files go to ``folder/wandb``).
        name: the W&B run name (the run directory's name).
        config: the resolved run config, recorded as the W&B run's config.
        project, entity, mode: ``wandb.init``'s (``mode`` None: W&B's own setting, ``WANDB_MODE``).

    Raises:
        ConfigError: the ``wandb`` package is not installed.
    """

    def __init__(
        self, folder: str | Path, name: str, config: dict[str, Any], project: str, entity: str | None = None, mode: str | None = None
    ) -> None:
        try:
            import wandb
        except ImportError as err:
            raise ConfigError(
                "log.wandb: the wandb package is not installed; pip install -e \".[wandb]\" (or set log.wandb: false)."
            ) from err
        self.folder = Path(folder)
        id_file = self.folder / RUN_ID_FILE
        run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n", encoding="utf-8")
        self.run = wandb.init(
            project=project, entity=entity, name=name, id=run_id, resume="allow", dir=str(self.folder), config=config,
            mode=mode, reinit="create_new",
        )
        self._files: list[Path] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        data = {
            key: float(value)
            for key, value in key_values.items()
            if isinstance(value, numbers.Number) and not isinstance(value, bool) and math.isfinite(float(value))
            and "wandb" not in (key_excluded.get(key) or ())
        }
        if data:
            self.run.log(data, step=int(step))

    def upload_at_close(self, *paths: Path) -> None:
        """Files to save into the W&B run when it closes (``curves.png``, ``report.html``)."""
        self._files.extend(Path(p) for p in paths)

    def close(self) -> None:
        for path in self._files:
            if path.is_file():
                try:
                    self.run.save(str(path), base_path=str(path.parent), policy="now")
                except Exception as err:  # noqa: BLE001 - an upload must not end a run
                    _log.warning("W&B: could not save %s: %s", path, err)
        self.run.finish()
