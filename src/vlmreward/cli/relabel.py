"""``vlmreward relabel``: a logged dataset's rewards recomputed by a VLM reward (:mod:`vlmreward.relabel`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vlmreward.cli.console import is_interactive, progress_bar, quiet_model_loading
from vlmreward.cli.reward_options import RewardOptions, as_overrides, with_reward_options

__all__ = ["relabel"]


@with_reward_options("config")
def relabel(
    source: Annotated[str, typer.Argument(help="A Minari dataset id (local) or directory, or a LeRobot v3.0 dataset "
                                          "directory or repo id (under HF_LEROBOT_HOME).", show_default=False)],
    config: Annotated[Path, typer.Option("--config", help="YAML with reward: and model: sections (a training config works).",
                                         show_default=False)],
    out: Annotated[str, typer.Option("--out", help="The new dataset: a Minari dataset id, or a LeRobot dataset directory.",
                                     show_default=False)],
    format_: Annotated[str, typer.Option("--format", help="minari, lerobot, or auto: lerobot when SOURCE holds "
                                         "meta/info.json, else minari.")] = "auto",
    mode: Annotated[str, typer.Option(help="replace: the VLM reward becomes the reward (the original kept as "
                                      "original_reward); add: the reward stays, vlm_reward is added.")] = "replace",
    image_key: Annotated[Optional[str], typer.Option("--image-key", help="The dict observation key holding the frames.",
                                                     show_default="found")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE override of the config (repeat).",
                                                      show_default=False)] = None,
    reward_options: RewardOptions = None,  # type: ignore[assignment]  (generated: --alpha, ... as --set reward.KEY=VALUE)
    batch_frames: Annotated[int, typer.Option(help="Frames scored per reward-model call (across episodes).")] = 256,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing destination dataset.")] = False,
    progress_file: Annotated[Optional[str], typer.Option(
        "--progress-file", help="LeRobot only: also write LeRobot's progress parquet (index, episode_index, frame_index, "
        "progress_sparse: the reward min-max normalised per episode) under this name in OUT, for RA-BC.",
        show_default=False)] = None,
) -> None:
    """Relabel SOURCE's rewards with the VLM reward CONFIG describes; write the dataset OUT (same format).

    Resumable: run the same command again after an interruption; scored episodes are kept.
    """
    from vlmreward.relabel import relabel_dataset, reward_from_config
    from vlmreward.relabel.core import RelabelError

    if mode not in ("replace", "add"):
        raise typer.BadParameter("use replace or add", param_hint="--mode")
    if format_ not in ("auto", "minari", "lerobot"):
        raise typer.BadParameter("use auto, minari or lerobot", param_hint="--format")
    if format_ == "auto":
        from vlmreward.relabel.lerobot_format import lerobot_root

        try:
            lerobot_root(source)
            format_ = "lerobot"
        except RelabelError:
            format_ = "minari"
    if format_ == "lerobot":
        from vlmreward.relabel.lerobot_format import LeRobotAdapter

        adapter: object = LeRobotAdapter(source, out, image_key=image_key, progress_file=progress_file)
    else:
        if progress_file is not None:
            raise typer.BadParameter("the progress parquet is LeRobot's; SOURCE is a Minari dataset", param_hint="--progress-file")
        from vlmreward.relabel.minari_format import MinariAdapter

        adapter = MinariAdapter(source, out, image_key=image_key)
    interactive = is_interactive()
    with quiet_model_loading(enabled=not interactive):
        reward_model, provenance = reward_from_config(config, [*(set_ or []), *as_overrides(reward_options or {})])
    with progress_bar(None, enabled=interactive) as advance:
        result = relabel_dataset(adapter, reward_model, mode=mode, batch_frames=batch_frames,  # type: ignore[arg-type]
                                 overwrite=overwrite, provenance=provenance, progress=advance)
    resumed = result.episodes - result.scored_now
    typer.echo(
        f"relabelled {result.episodes} episodes ({result.frames} frames) of {adapter.source_id} into {out} "  # type: ignore[attr-defined]
        f"({result.destination}); frames: {adapter.frames_from}"  # type: ignore[attr-defined]
        + (f"; {resumed} episodes were scored by an earlier, interrupted run" if resumed else "")
    )
