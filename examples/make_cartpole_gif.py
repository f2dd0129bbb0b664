"""Write ``examples/cartpole.gif``: 16 frames of gymnasium's CartPole-v1 (400 × 600, ``rgb_array``)
under seeded random actions, the pole falling over: the README's input for ``vlmreward score``.

A GIF cannot hold two identical frames in a row (Pillow's writer merges them into one longer
frame), and CartPole renders some (a step too small to move a pixel), so the frames are rendered
until 16 differ from the one before; the script reads the GIF back and checks that it holds 16.

    .venv/bin/python examples/make_cartpole_gif.py
"""

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from vlmreward.models.testing import render_cartpole_frames

FRAMES = 16

if __name__ == "__main__":
    rendered = render_cartpole_frames(2 * FRAMES, seed=3)
    changed = [0] + [i for i in range(1, len(rendered)) if not np.array_equal(rendered[i], rendered[i - 1])]
    frames = rendered[changed[:FRAMES]]
    out = Path(__file__).resolve().parent / "cartpole.gif"
    iio.imwrite(out, frames, duration=100, loop=0)
    read = len(iio.imread(out, index=None))
    if read != FRAMES:
        raise SystemExit(f"{out} holds {read} frames, not {FRAMES}")
    print(f"wrote {out} ({FRAMES} frames, {out.stat().st_size:,} bytes)")
