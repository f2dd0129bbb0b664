"""Run every benchmark, each in its own process, then write ``RESULTS.md``.

    .venv/bin/python benchmarks/run_all.py           # about 20-30 minutes on a shared 2-core CPU
    .venv/bin/python benchmarks/run_all.py --quick   # smoke run of every script (results/quick_*.json)
    .venv/bin/python benchmarks/run_all.py --device cuda   # on a GPU machine, under 8 minutes: bench_gpu.py on
                                                           # CUDA, then the GPU-marked tests, then the report

Each script can also run alone (``--help`` lists its options); ``report.py`` rewrites RESULTS.md
from whatever ``results/*.json`` hold.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: str, *args: str) -> None:
    command = [sys.executable, "-u", str(HERE / script), *args]
    print(f"\n=== {' '.join(command[2:])}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"=== {script} took {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, results/quick_*.json, no report")
    parser.add_argument("--model", default=None, help="model directory or hub id (default: random ViT-B/32)")
    parser.add_argument("--only", default="scoring,memory,training,render,generative,checkpoint,relabel,video,progress,preference,"
                        "autotune,overlap,server,gpu", help="which benchmarks to run")
    parser.add_argument("--device", default="cpu", help="cuda (or cuda:N): the GPU script only (bench_gpu.py on that "
                        "device and the tests marked gpu), then the report")
    args = parser.parse_args()
    extra = ["--model", args.model] if args.model else []
    if args.device != "cpu":
        run("bench_gpu.py", "--device", args.device, *extra)
        print("\n=== pytest -m gpu", flush=True)
        subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", str(HERE.parent / "tests")],
                       check=True)
        run("report.py")
        return
    if args.quick:
        run("bench_scoring.py", "--quick", "--out", "quick_scoring", *extra)
        run("bench_training.py", "--quick", "--out", "quick_training", *extra)
        run("bench_render.py", "--quick", "--out", "quick_render")
        run("bench_generative.py", "--quick", "--out", "quick_generative")
        run("bench_checkpoint.py", "--quick", "--out", "quick_checkpoint")
        run("bench_relabel.py", "--quick", "--out", "quick_relabel")
        run("bench_video.py", "--quick", "--out", "quick_video")
        run("bench_progress.py", "--quick", "--out", "quick_progress")
        run("bench_preference.py", "--quick", "--out", "quick_preference")
        run("bench_autotune.py", "--quick", "--out", "quick_autotune")
        run("bench_overlap.py", "--quick", "--out", "quick_overlap")
        run("bench_server.py", "--quick", "--out", "quick_server")
        run("bench_gpu.py", "--quick", "--device", "cpu", "--out", "quick_gpu")
        return
    only = set(args.only.split(","))
    if "scoring" in only:
        run("bench_scoring.py", "--sections", "headline,batch,resolution,threads,cache", *extra)
    if "memory" in only:
        run("bench_scoring.py", "--sections", "memory", "--out", "memory", *extra)  # a process holding one model
    if "training" in only:
        run("bench_training.py", *extra)
    if "render" in only:
        run("bench_render.py")
    if "generative" in only:
        run("bench_generative.py")
    if "checkpoint" in only:
        run("bench_checkpoint.py")
    if "relabel" in only:
        run("bench_relabel.py")
    if "video" in only:
        run("bench_video.py")
    if "progress" in only:
        run("bench_progress.py")
    if "preference" in only:
        run("bench_preference.py")
    if "autotune" in only:
        run("bench_autotune.py")
    if "overlap" in only:
        run("bench_overlap.py")
    if "server" in only:
        run("bench_server.py")
    if "gpu" in only:  # on this machine's CPU: what compile does without a GPU
        run("bench_gpu.py", "--device", "cpu", *extra)
    run("report.py")


if __name__ == "__main__":
    main()
