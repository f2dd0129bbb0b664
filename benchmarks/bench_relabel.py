"""Relabelling speed and memory: ``vlmreward relabel``'s path against the loop a user writes.

A Minari dataset of CartPole episodes with image observations (``AddRenderObservation``, 400 ×
600 frames, JPEG-encoded by Minari) is relabelled with a goal-baseline CLIP reward

* by :func:`vlmreward.relabel.relabel_dataset` (frames batched across episodes while episodes
  stream, rewards saved per episode, the new dataset written episode by episode), and
* by the naive loop: ``iterate_episodes()``, one reward call per episode, then
  ``minari.create_dataset_from_buffers`` with every relabelled episode held in memory;

both write a complete relabelled dataset. Timed round-robin (``_common.interleaved``). Memory: the
peak of Python-tracked allocations (``tracemalloc``, NumPy included) of each path on datasets of
two sizes (episodes of 20 frames; ``relabel_dataset`` with batches of 64 frames). Writes ``results/relabel.json``; ``report.py`` adds a table.

    .venv/bin/python benchmarks/bench_relabel.py            # a few minutes on 2 CPU cores
    .venv/bin/python benchmarks/bench_relabel.py --quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import gymnasium as gym  # noqa: E402

import vlmreward  # noqa: E402
import vlmreward.envs  # noqa: E402,F401
from _common import interleaved, save_results  # noqa: E402
from _models import vit_b32_directory  # noqa: E402
from vlmreward.models.testing import write_tiny_clip  # noqa: E402

GOAL, BASELINE = "pole vertically upright on top of the cart", "pole and cart"


def make_dataset(dataset_id: str, episodes: int, length: int) -> None:
    import minari

    from vlmreward.relabel.minari_format import record_episode

    env = gym.wrappers.AddRenderObservation(
        gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=length, render_mode="rgb_array"), render_only=False)
    minari.create_dataset_from_buffers(dataset_id, [record_episode(env, seed) for seed in range(episodes)], env=env,
                                       algorithm_name="random", description="benchmark", data_format="arrow")


def ours(source: str, dest: str, reward, batch_frames: int = 256) -> None:  # noqa: ANN001
    from vlmreward.relabel import relabel_dataset
    from vlmreward.relabel.minari_format import MinariAdapter

    relabel_dataset(MinariAdapter(source, dest), reward, batch_frames=batch_frames, overwrite=True)


def naive(source: str, dest: str, reward) -> None:  # noqa: ANN001
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.storage.datasets_root_dir import get_dataset_path

    shutil.rmtree(get_dataset_path(dest), ignore_errors=True)
    dataset = minari.load_dataset(source)
    buffers = []
    for episode in dataset.iterate_episodes():
        rewards = reward(episode.observations["pixels"][1:])
        buffers.append(EpisodeBuffer(observations=episode.observations, actions=episode.actions, rewards=rewards,
                                     terminations=episode.terminations, truncations=episode.truncations,
                                     infos={"success": episode.infos["success"]}))
    minari.create_dataset_from_buffers(dest, buffers, env=dataset.spec.env_spec, algorithm_name="random",
                                       description="relabelled by hand", data_format="arrow")


def peak_mib(function, *args) -> float:  # noqa: ANN001
    tracemalloc.start()
    function(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="relabel")
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore", module="minari")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MINARI_DATASETS_PATH"] = str(Path(tmp) / "minari")
        model = vlmreward.load_model(str(vit_b32_directory(Path(tmp) / "vit")), device="cpu")
        reward = vlmreward.GoalBaselineReward(model, goal=GOAL, baseline=BASELINE, alpha=0.5)
        episodes, length = (4, 10) if args.quick else (20, 16)
        make_dataset("bench/speed-v0", episodes, length)
        frames = episodes * length
        timings = interleaved(
            {"vlmreward relabel_dataset": lambda: ours("bench/speed-v0", "bench/ours-v0", reward) or frames,
             "naive per-episode loop": lambda: naive("bench/speed-v0", "bench/naive-v0", reward) or frames},
            repeats=1 if args.quick else 2,
        )
        naive_rate = timings["naive per-episode loop"]["per_s"]
        rows = [{"variant": k, "frames_per_s": v["per_s"], "runs": v["runs"], "vs_naive": v["per_s"] / naive_rate}
                for k, v in timings.items()]
        memory = []
        sizes = (3, 6) if args.quick else (6, 24)
        small = vlmreward.GoalBaselineReward(  # memory does not depend on the model's size
            vlmreward.load_model(str(write_tiny_clip(Path(tmp) / "tiny")), device="cpu"),
            goal=GOAL, baseline=BASELINE, alpha=0.5)
        for n in sizes:
            make_dataset(f"bench/mem{n}-v0", n, 20)
            memory.append({"episodes": n, "frames": n * 20,
                           "vlmreward_peak_mib": peak_mib(ours, f"bench/mem{n}-v0", f"bench/mem{n}-ours-v0", small, 64),
                           "naive_peak_mib": peak_mib(naive, f"bench/mem{n}-v0", f"bench/mem{n}-naive-v0", small)})
        for row in rows:
            print(f"{row['variant']}: {row['frames_per_s']:.1f} frames/s", flush=True)
        for m in memory:
            print(f"{m['episodes']} episodes: peak {m['vlmreward_peak_mib']:.0f} MiB (ours) vs {m['naive_peak_mib']:.0f} MiB (naive)")
    save_results(args.out, {"frames": frames, "episodes": episodes, "episode_length": length, "rows": rows, "memory": memory})


if __name__ == "__main__":
    main()
