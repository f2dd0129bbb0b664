"""A run's logs: ``logs/progress.csv`` (continued across resumes), TensorBoard events, what the
columns mean (``logs/columns.txt``), and the cut back to a checkpoint's step before a resume.

:func:`make_logger` builds SB3's logger of a run; :func:`truncate_logs` drops what a killed process
logged after the checkpoint a resume starts from, so that no step appears twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format

from vlmreward._paths import atomic_write_text
from vlmreward.rl.config import RunConfig

__all__ = ["make_logger", "truncate_logs", "LOG_COLUMNS", "TENSORBOARD_LAYOUT"]


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
    * ``evaluations.jsonl``: evaluations after ``step`` (a damaged line, a write cut short, too);
    * ``preference.jsonl``: reward updates after ``step`` (the same way).

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
    for records in (run_dir / "evaluations.jsonl", run_dir / "preference.jsonl"):
        if not records.is_file():
            continue
        lines = records.read_text(encoding="utf-8").splitlines()
        kept_lines = []
        for line in lines:
            try:
                if int(json.loads(line)["step"]) <= step:
                    kept_lines.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        if len(kept_lines) != len(lines):
            atomic_write_text(records, "".join(line + "\n" for line in kept_lines))
            dropped[records.name] = len(lines) - len(kept_lines)
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
