"""Shared helpers of the benchmarks: machine description, interleaved timing, memory, frames, results files.

Timings are medians over repeats, and the variants compared in one table are timed round-robin
(variant A, B, C, then A, B, C again, ...), so that load from other processes on a shared
machine falls on all of them alike and the ratios stay meaningful.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = [
    "RESULTS_DIR",
    "machine_info",
    "interleaved",
    "rss_mib",
    "square_frames",
    "save_results",
    "load_results",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
"""Where each benchmark writes its JSON (``results/<name>.json``); ``report.py`` reads them all."""


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return None


def machine_info() -> dict[str, Any]:
    """CPU model (``lscpu``), core count, GPU (if CUDA is usable), library versions, date (UTC)."""
    import torch

    gpu = None
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
    return {
        "cpu": _lscpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "python": platform.python_version(),
        "versions": {
            name: _version(dist)
            for name, dist in [
                ("torch", "torch"),
                ("transformers", "transformers"),
                ("onnxruntime", "onnxruntime"),
                ("onnx", "onnx"),
                ("open_clip", "open_clip_torch"),
                ("gymnasium", "gymnasium"),
                ("mujoco", "mujoco"),
                ("stable_baselines3", "stable_baselines3"),
                ("numpy", "numpy"),
                ("pillow", "pillow"),
            ]
        },
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def interleaved(
    variants: dict[str, Callable[[], int]],
    repeats: int,
    warmup: bool = True,
    on_repeat: Callable[[int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Time each variant ``repeats`` times, round-robin; each call returns the items it processed.

    Args:
        variants: name → callable doing one timed unit of work and returning how many items
            (frames, steps) it processed.
        repeats: timed rounds.
        warmup: run every variant once, untimed, first.
        on_repeat: called with the round index after each round (progress output).

    Returns:
        name → ``{"per_s": median items per second, "s_per_item": median seconds per item,
        "items": items per call, "runs": [items/s of each round]}``.
    """
    if warmup:
        for fn in variants.values():
            fn()
    rates: dict[str, list[float]] = {name: [] for name in variants}
    items: dict[str, int] = {}
    for r in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            n = fn()
            elapsed = time.perf_counter() - start
            items[name] = n
            rates[name].append(n / elapsed)
        if on_repeat is not None:
            on_repeat(r)
    return {
        name: {
            "per_s": statistics.median(values),
            "s_per_item": statistics.median(1.0 / v for v in values),
            "items": items[name],
            "runs": values,
        }
        for name, values in rates.items()
    }


def rss_mib() -> float:
    """Resident set size of this process in MiB (``VmRSS`` of ``/proc/self/status``; Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # peak, the best available


def square_frames(frames: np.ndarray, size: int = 224) -> np.ndarray:
    """The frames rendered at the model's size instead: ``uint8 [n, size, size, 3]`` (PIL bicubic)."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC)) for f in frames])


def save_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the machine description added."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"benchmark": name, "machine": machine_info(), "argv": sys.argv[1:], **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def load_results() -> dict[str, dict[str, Any]]:
    """Every ``results/*.json``, by benchmark name."""
    if not RESULTS_DIR.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS_DIR.glob("*.json"))}
