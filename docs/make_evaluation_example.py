"""Render the example plot of docs/evaluation.md: a CartPole reward landscape from a tiny model.

The model is a random-weight 2-layer CLIP (the test suite's tiny model, ViT-B/32 layout, CLIP's
real tokenizer), so the plot shows what the tools draw, not what a trained CLIP thinks of
CartPole. Run from the repository root (CPU, about half a minute)::

    .venv/bin/python docs/make_evaluation_example.py

It writes docs/images/cartpole_landscape_tiny.png.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def main() -> None:
    import vlmreward
    from vlmreward.eval import collect, evaluate_dataset, load_dataset
    from vlmreward.models.testing import write_tiny_clip

    work = Path(tempfile.mkdtemp(prefix="vlmreward-example-"))
    try:
        model_dir = write_tiny_clip(work / "tiny-clip")
        collect("vlmreward/CartPole-v1", work / "cartpole-sweep", "scripted", frames=400)
        result = evaluate_dataset(
            load_dataset(work / "cartpole-sweep"),
            vlmreward.load_model(model_dir),
            ["pole vertically upright on top of the cart"],
            work / "eval",
            baseline=["pole and cart"],
            alphas=[0.0, 0.5, 1.0],
        )
        target = ROOT / "docs" / "images" / "cartpole_landscape_tiny.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(result.files["landscape"], target)
        print(f"wrote {target.relative_to(ROOT)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
