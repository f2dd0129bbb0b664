"""Write ``examples/cartpole.gif``: 16 frames of gymnasium's CartPole-v1 (400 × 600, ``rgb_array``)
under seeded random actions, the pole falling over: the README's input for ``vlmreward score``.

    .venv/bin/python examples/make_cartpole_gif.py
"""

from pathlib import Path

import imageio.v3 as iio

from vlmreward.models.testing import render_cartpole_frames

if __name__ == "__main__":
    frames = render_cartpole_frames(16, seed=3)
    out = Path(__file__).resolve().parent / "cartpole.gif"
    iio.imwrite(out, frames, duration=100, loop=0)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
