"""The reward server under a bounded local load test, against in-process scoring, with a crash.

For each model (``--models``: the test suite's tiny random CLIP, a random-weight ViT-B/32), the
goal-baseline reward of CartPole frames (400 × 600, ``--frames`` per request), in one run:

* ``in-process``: one thread calls ``reward(frames)`` request after request for ``--seconds``
  (what a trainer does without a server);
* ``server, 1 client``: the same sequence through ``vlmreward serve`` (HTTP, this machine): the
  transport's overhead;
* ``server, C clients``: ``--clients`` threads sending requests at once for ``--seconds``: the
  dynamic batching (``max_batch``, ``max_wait``) merges them;
* ``server killed``: ``--clients`` threads send a fixed set of requests; after a third are
  answered the server is SIGKILLed and started again on its port. Counted: requests answered (of
  sent), the largest difference of any reward from in-process scoring of the same frames, the
  clients' retries, and the time from the kill to the next answer (the restart: the model loads
  again);
* ``ray, replica killed`` (when Ray is installed): ``--backend ray`` with 2 replicas, one
  ``ray.kill``-ed mid-load (Ray restarts it and re-sends its batches).

Latencies are per request, client side (p50, p99). The load phases together last at most
``5 × --seconds`` plus the restarts. Writes ``results/server.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from _common import save_results  # noqa: E402
from _models import vit_b32_directory  # noqa: E402
from vlmreward.distributed.client import ServedReward  # noqa: E402
from vlmreward.models.testing import render_cartpole_frames, write_tiny_clip  # noqa: E402

GOAL, BASELINE = "pole vertically upright on top of the cart", "pole and cart"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _spec(model: Path | str) -> Any:
    from vlmreward.distributed.spec import RewardSpec
    from vlmreward.models.spec import ModelSpec

    return RewardSpec("goal_baseline", {"goal": GOAL, "baseline": BASELINE, "alpha": 0.5}, ModelSpec(str(model), device="cpu"))


def _config(directory: Path, model: Path) -> Path:
    data = {"env": {"id": "vlmreward/VLMRM-CartPole-v0"}, "algorithm": "PPO", "total_steps": 64,
            "reward": {"kind": "goal_baseline", "goal": GOAL, "baseline": BASELINE, "alpha": 0.5},
            "model": {"name": str(model), "device": "cpu"}}
    path = directory / f"serve_{model.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _serve(config: Path, port: int, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "vlmreward.cli.main", "serve", str(config), "--port", str(port), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        raise SystemExit(f"vlmreward serve did not start (exit {proc.wait()})")
    return proc, url


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def _latency(values: list[float]) -> dict[str, float]:
    ms = np.asarray(values) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}


def timed_load(score: Callable[[np.ndarray], np.ndarray], requests: list[np.ndarray], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads calling ``score`` on the requests in turn for ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            t = time.perf_counter()
            score(requests[i % len(requests)])
            with lock:
                latencies.append(time.perf_counter() - t)
            i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    frames = len(latencies) * len(requests[0])
    return {"clients": clients, "requests": len(latencies), "seconds": wall, "requests_per_s": len(latencies) / wall,
            "frames_per_s": frames / wall, **_latency(latencies)}


def killed_load(client: ServedReward, requests: list[np.ndarray], clients: int, kill: Callable[[], None]) -> dict[str, Any]:
    """Send every request once from ``clients`` threads; call ``kill`` after a third are answered."""
    answers: list[np.ndarray | None] = [None] * len(requests)
    answered_at: list[float] = [0.0] * len(requests)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(k, len(requests), clients):
            t = time.perf_counter()
            try:
                answers[i] = client(requests[i])
            except Exception as err:  # noqa: BLE001 (counted: a lost request)
                errors.append(f"{type(err).__name__}: {err}")
                continue
            with lock:
                answered_at[i] = time.perf_counter()
                latencies.append(answered_at[i] - t)

    retries_before = client.retries
    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    while sum(a is not None for a in answers) < len(requests) // 3:
        time.sleep(0.005)
    killed = time.perf_counter()
    kill()
    for t in threads:
        t.join()
    after = [a for a in answered_at if a > killed]
    return {"sent": len(requests), "answered": sum(a is not None for a in answers), "errors": errors[:3],
            "retries": client.retries - retries_before, "seconds": time.perf_counter() - start,
            "kill_to_next_answer_s": (min(after) - killed) if after else None, **_latency(latencies),
            "answers": answers}


def max_difference(answers: list[np.ndarray | None], want: list[np.ndarray]) -> float | None:
    got = [(a, w) for a, w in zip(answers, want) if a is not None]
    return max(float(np.max(np.abs(a - w))) for a, w in got) if got else None


def bench_model(name: str, model: Path, args: argparse.Namespace, frames: np.ndarray, work: Path) -> dict[str, Any]:
    reward = _spec(model)()
    n = args.frames
    requests = [frames[(i * n) % (len(frames) - n):][:n] for i in range(args.requests)]
    want = [reward(r) for r in requests]
    row: dict[str, Any] = {"model": name, "frames_per_request": n}
    log(f"{name}: in-process, 1 thread, {args.seconds:g} s")
    row["in-process"] = timed_load(reward, requests, 1, args.seconds)
    config = _config(work, model)
    proc, url = _serve(config, 0, "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms))
    port = int(url.rsplit(":", 1)[1])
    try:
        client = ServedReward(url, request_timeout_s=300)
        client(requests[0])  # warm
        log(f"{name}: server, 1 client, {args.seconds:g} s")
        row["server, 1 client"] = timed_load(client, requests, 1, args.seconds)
        log(f"{name}: server, {args.clients} clients, {args.seconds:g} s")
        before = client.requests
        row[f"server, {args.clients} clients"] = timed_load(client, requests, args.clients, args.seconds)
        row[f"server, {args.clients} clients"]["client_requests"] = client.requests - before
        stats = json.loads(client._send("GET", "/v1/stats", None, 10))
        row["server_stats"] = stats
        row["mean_batch_items"] = stats["items"] / max(1, stats["batches"])
        log(f"{name}: server killed after a third of {len(requests)} requests, restarted on port {port}")
        state = {"proc": proc}

        def kill() -> None:
            state["proc"].send_signal(signal.SIGKILL)
            state["proc"].wait()
            state["proc"], _ = _serve(config, port, "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms))

        result = killed_load(client, requests, args.clients, kill)
        proc = state["proc"]
        result["max_abs_difference"] = max_difference(result.pop("answers"), want)
        row["server killed"] = result
    finally:
        _stop(proc)
    if args.ray:
        row["ray, replica killed"] = ray_phase(reward, requests, want, args)
    base = row["in-process"]["requests_per_s"]
    row["server_1_vs_in_process"] = row["server, 1 client"]["requests_per_s"] / base
    row["server_c_vs_in_process"] = row[f"server, {args.clients} clients"]["requests_per_s"] / base
    return row


def ray_phase(reward: Any, requests: list[np.ndarray], want: list[np.ndarray], args: argparse.Namespace) -> dict[str, Any]:
    try:
        import ray
    except ImportError:
        return {"skipped": "ray is not installed"}
    from functools import partial

    from vlmreward.distributed.cluster import init_ray
    from vlmreward.distributed.server import RewardServer

    spec = _spec(reward.describe()["model"])
    session = init_ray(num_cpus=4, log_to_driver=False)
    try:
        with RewardServer(spec, port=0, backend="ray", replicas=2, max_batch=args.max_batch,
                          max_wait_s=args.max_wait_ms / 1000) as server:
            client = ServedReward(server.url, request_timeout_s=300)
            client(requests[0])
            log("ray: 2 replicas, one killed after a third of the requests")
            result = killed_load(client, requests, args.clients, partial(ray.kill, server.actors[0], no_restart=False))
            result["max_abs_difference"] = max_difference(result.pop("answers"), want)
            return result
    finally:
        session.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,ViT-B/32")
    parser.add_argument("--frames", type=int, default=8, help="frames per request")
    parser.add_argument("--requests", type=int, default=48, help="distinct requests (the killed phase sends each once)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each timed phase")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--no-ray", dest="ray", action="store_false")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="server")
    args = parser.parse_args()
    if args.quick:
        args.models, args.seconds, args.requests, args.ray = "tiny", 1.0, 12, False
    frames = render_cartpole_frames(64)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        directories = {"tiny": lambda: write_tiny_clip(work / "tiny"), "ViT-B/32": vit_b32_directory}
        for name in args.models.split(","):
            rows.append(bench_model(name, Path(directories[name]()), args, frames, work))
            log(f"{name}: in-process {rows[-1]['in-process']['requests_per_s']:.1f} req/s; "
                f"server ×{rows[-1]['server_c_vs_in_process']:.2f} with {args.clients} clients; "
                f"killed: {rows[-1]['server killed']['answered']}/{rows[-1]['server killed']['sent']} answered")
    path = save_results(args.out, {"clients": args.clients, "seconds": args.seconds, "max_batch": args.max_batch,
                                   "max_wait_ms": args.max_wait_ms, "frame_size": list(frames.shape[1:3]), "rows": rows})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
