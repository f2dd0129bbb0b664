"""``vlmreward models`` and ``vlmreward reward-kinds``: what loads by name, and the reward kinds
with their parameters and what they declare (:mod:`vlmreward.rewards.registry`)."""

from __future__ import annotations

import typer

from vlmreward.errors import VLMRewardError
from vlmreward.rewards import registry

__all__ = ["models", "reward_kinds_command"]


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
    """List the reward kinds (registered, and installed plugins') with their parameters and options."""
    for name in registry.reward_kinds():
        try:
            kind = registry.reward_kind(name)
        except VLMRewardError as err:  # a broken plugin: say so, list the rest
            typer.echo(f"{name}: cannot be loaded ({err})")
            continue
        fields = ", ".join(
            f"{key}" + ("" if field.is_required() else f"={field.get_default(call_default_factory=True)!r}")
            for key, field in kind.params.model_fields.items()
        )
        needs = {"required": "a VLM", "optional": "a VLM (optional)", "none": "no VLM"}[kind.model]
        family = f" ({kind.family})" if kind.family and kind.model != "none" else ""
        goals = ", per-frame goals" if kind.goals else ""
        typer.echo(f"{name} — {kind.display_name} ({kind.origin}; {needs}{family}{goals}; {kind.mode} reward): "
                   f"{fields or 'no parameters'}")
        extras = []
        if kind.shorthands:
            extras.append("options " + " ".join(s.option for s in kind.shorthands))
        if kind.sweep is not None:
            extras.append(f"sweeps {kind.sweep.param} ({kind.sweep.symbol}) over {kind.sweep.grid_text()}")
        if kind.selected_by is not None:
            extras.append("chosen without --reward-kind by " + " + ".join(kind.selected_by))
        if extras:
            typer.echo("    " + "; ".join(extras))
    typer.echo("# Also: --reward-kind package.module:ClassName of a class with a Params model (docs/extending.md).")
