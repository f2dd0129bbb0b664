"""Save a tiny random-weight CLIP (the test suite's model) to try the commands without downloads.

It has CLIP ViT-B/32's layout and CLIP's real tokenizer but 2 layers of width 32 and random
weights, so every command runs end to end in seconds on a CPU while its rewards mean nothing. Use
a real model (``openai/clip-vit-base-patch32``, ``open_clip:ViT-L-14/laion2b_s32b_b82k``) for
results. Run from the repository root::

    .venv/bin/python docs/make_tiny_clip.py models/tiny-clip

and pass ``--model models/tiny-clip`` (or ``--set model=models/tiny-clip``) to any command.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> None:
    from vlmreward.models.testing import write_tiny_clip

    if len(sys.argv) != 2:
        raise SystemExit("usage: python docs/make_tiny_clip.py DIRECTORY")
    directory = Path(sys.argv[1])
    write_tiny_clip(directory)
    print(f"wrote a tiny random CLIP to {directory}")


if __name__ == "__main__":
    main()
