"""Write ``benchmarks/RESULTS.md`` from ``benchmarks/results/*.json`` (the benchmarks' outputs).

    .venv/bin/python benchmarks/report.py

Every figure in RESULTS.md comes from those files; the targets' verdicts are computed here from
the figures of the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_results  # noqa: E402

OUT = Path(__file__).resolve().parent / "RESULTS.md"


def f(x: float, digits: int = 1) -> str:
    return f"{x:,.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**met**" if ok else "**missed**")


def machine_section(results: dict[str, dict[str, Any]]) -> str:
    first = next(iter(results.values()))["machine"]
    v = first["versions"]
    gpu = first["gpu"] or "none (no GPU was lent to this session; the CUDA path is tested for correctness on the CPU)"
    dates = sorted({r["machine"]["date"] for r in results.values()})
    loads = {name: r["machine"].get("load_average") for name, r in results.items()}
    load_text = ", ".join(f"{name} {l[0]:.1f}" for name, l in loads.items() if l)
    return "\n".join(
        [
            "## Machine",
            "",
            f"* CPU: {first['cpu']}, {first['cores']} cores (`lscpu`); PyTorch threads: {first['torch_threads']}",
            f"* GPU: {gpu}",
            f"* Python {first['python']}; torch {v['torch']}, transformers {v['transformers']}, onnxruntime "
            f"{v['onnxruntime']}, onnx {v['onnx']}, open_clip {v['open_clip']}, gymnasium {v['gymnasium']}, "
            f"mujoco {v['mujoco']}, stable-baselines3 {v['stable_baselines3']}, numpy {v['numpy']}, pillow {v['pillow']}",
            f"* Run: {', '.join(dates)}",
            "",
            "Figures were taken on a **shared 2-core virtual machine** (1-minute load average when each "
            f"benchmark ended: {load_text}; a benchmark keeps both cores busy itself, so about 2.0 means nothing "
            "else competed and more means other processes did). Absolute numbers move between runs by tens of "
            "per cent on such a machine; the variants compared in one table were timed round-robin in the same "
            "run, so their **ratios** are the meaningful figures. Each figure is the median of the rounds "
            "(`runs` in `results/*.json` lists every round).",
        ]
    )


def overhead(e2e_fps: float, bare_fps: float) -> float:
    """Extra time per frame of the end-to-end path over the bare vision tower, as a fraction of the latter."""
    return (bare_fps / e2e_fps) - 1.0


def scoring_sections(s: dict[str, Any], targets: list[list[str]]) -> list[str]:
    out: list[str] = []
    model = s["model"]
    out.append(
        f"Model: {model['path']}, {model['parameters'] / 1e6:.0f} M parameters "
        f"({model['vision_parameters'] / 1e6:.0f} M in the vision tower), {model['image_size']} px input, "
        f"`resize={model['resize']!r}`; speed does not depend on the weights' values."
        + (
            f" Loading with `runtime=\"onnx\"` took {f(s['onnx_export_s']['onnx'])} s the first time (export) and "
            f"with `quantize=\"int8\"` another {f(s['onnx_export_s']['int8'])} s (quantisation); both are cached on disk."
            if {"onnx", "int8"} <= set(s.get("onnx_export_s", {}))
            else ""
        )
    )
    h = s.get("headline")
    if h:
        n, height, width = h["frames"][0], h["frames"][1], h["frames"][2]
        out.append(f"\n## Scoring throughput ({n} CartPole frames of {height}×{width}, end to end)\n")
        header = ["pipeline"] + [f"batch {b}: frames/s" for b in h["batches"]] + [f"batch {b}: ms/frame" for b in h["batches"]]
        names = list(next(iter(h["batches"].values()))["fps"])
        rows = []
        for name in names:
            rows.append(
                [name]
                + [f(h["batches"][b]["fps"][name]["fps"], 2) for b in h["batches"]]
                + [f(h["batches"][b]["fps"][name]["ms_per_frame"]) for b in h["batches"]]
            )
        out.append(table(header, rows))
        b0 = next(iter(h["batches"].values()))
        out.append(
            f"\nThe naive pipeline is `CLIPProcessor.from_pretrained(dir)` (its image processor: "
            f"`{b0['naive_processor']}`, transformers' default) on `PIL.Image.fromarray(frame)` images, then "
            "`CLIPModel.get_image_features`, normalisation and the cosine with the goal's text embedding, batch "
            "by batch under `torch.no_grad()`. vlmreward's rows are `GoalBaselineReward(model, goal, baseline, "
            "alpha=0.5)(frames, batch_size=B)`: validation, batched preprocessing, the vision tower, "
            "normalisation and the reward. The bare rows run only the vision tower (PyTorch "
            "`CLIPModel.get_image_features`, or the ONNX Runtime session) on pixels preprocessed beforehand: "
            "the limit for this model on this machine."
        )
        stub = "vlmreward without the vision tower (stub): the overhead"
        rows = []
        worst_over = 0.0
        for b, entry in h["batches"].items():
            fps = entry["fps"]
            for backend, e2e, bare in [
                ("PyTorch", "vlmreward, PyTorch", "bare vision tower, PyTorch"),
                ("ONNX Runtime fp32", "vlmreward, ONNX Runtime fp32", "bare vision tower, ONNX Runtime fp32"),
                ("ONNX Runtime int8", "vlmreward, ONNX Runtime int8", "bare vision tower, ONNX Runtime int8"),
            ]:
                timed = overhead(fps[e2e]["fps"], fps[bare]["fps"])
                direct = fps[stub]["ms_per_frame"] / fps[bare]["ms_per_frame"] if stub in fps else float("nan")
                if int(b) >= 32 and backend == "PyTorch":
                    worst_over = max(worst_over, direct)
                rows.append([b, backend, f(fps[stub]["ms_per_frame"], 2) if stub in fps else "", f(fps[bare]["ms_per_frame"]),
                             f"{100 * direct:.1f} %", f"{100 * timed:+.1f} %"])
        out.append("\n### Overhead of vlmreward over the bare vision tower\n")
        out.append(
            table(
                ["batch", "runtime", "overhead ms/frame", "bare tower ms/frame", "overhead ÷ bare", "end to end ÷ bare − 1 (timed)"],
                rows,
            )
        )
        out.append(
            "\nThe overhead is timed directly: the same `reward(frames)` call with the vision tower replaced by a "
            "stub that returns fixed embeddings (validation, batching, preprocessing, normalisation, the reward: "
            "everything vlmreward adds). The last column compares the two full timings instead; it is the "
            "difference of two noisy figures of nearly equal size and on a shared machine scatters by several per "
            "cent either way (a negative figure is noise)."
        )
        speedups = {b: e["fps"]["vlmreward, PyTorch"]["fps"] / e["fps"]["naive (CLIPProcessor + CLIPModel)"]["fps"] for b, e in h["batches"].items()}
        onnx_gain = {
            b: (e["fps"]["vlmreward, ONNX Runtime fp32"]["fps"] / e["fps"]["vlmreward, PyTorch"]["fps"],
                e["fps"]["vlmreward, ONNX Runtime int8"]["fps"] / e["fps"]["vlmreward, PyTorch"]["fps"])
            for b, e in h["batches"].items()
        }
        measured = all(stub in e["fps"] for b, e in h["batches"].items() if int(b) >= 32)
        targets.append(
            ["preprocessing + reward overhead ≤ 10 % of the bare vision tower at batch ≥ 32 (PyTorch)",
             f"at most {100 * worst_over:.1f} %" if measured else "the stub timing is missing from results/scoring.json",
             verdict(worst_over <= 0.10 if measured else None)]
        )
        pre = h["preprocess"]
        out.append(f"\n### Preprocessing alone ({height}×{width} uint8 frames → normalised 224×224, batch {h['preprocess_batch']})\n")
        ours = pre["vlmreward preprocess (uint8 kernels, batched)"]["ms_per_frame"]
        rows = [[name, f(v["ms_per_frame"], 2), f(v["fps"], 0), f(v["ms_per_frame"] / ours, 1) + "×"] for name, v in pre.items()]
        out.append(table(["preprocessing", "ms/frame", "frames/s", "time ÷ ours"], rows))
        slowest_ratio = min(v["ms_per_frame"] / ours for k, v in pre.items() if k.startswith("CLIPImageProcessor"))
        targets.append(
            ["our preprocessing no slower than `CLIPImageProcessor` on 400×600 uint8 frames (CPU)",
             f"{f(slowest_ratio, 1)}× faster than the faster of its two back-ends ({f(ours, 2)} ms/frame)",
             verdict(slowest_ratio >= 1.0)]
        )
        targets.append(
            ["preprocessing ≥ 5× faster than `CLIPImageProcessor` on a GPU", "no GPU was lent to this session",
             verdict(None)]
        )
        b_max = max(h["batches"], key=int)
        fp32_gain, int8_gain = onnx_gain[b_max]
        targets.append(
            [f"ONNX Runtime end-to-end frames/s above PyTorch on this CPU (batch {b_max})",
             f"fp32 {f(fp32_gain, 2)}×, int8 {f(int8_gain, 2)}× PyTorch's frames/s",
             verdict(fp32_gain > 1.0 and int8_gain > 1.0)]
        )
        out.append(
            "\nvlmreward (PyTorch) against the naive pipeline: "
            + ", ".join(f"batch {b}: {f(x, 2)}×" for b, x in speedups.items())
            + "; with ONNX Runtime int8: "
            + ", ".join(
                f"batch {b}: {f(e['fps']['vlmreward, ONNX Runtime int8']['fps'] / e['fps']['naive (CLIPProcessor + CLIPModel)']['fps'], 2)}×"
                for b, e in h["batches"].items()
            )
            + "."
        )
    a = s.get("agreement")
    if a:
        out.append("\n### ONNX Runtime agreement with PyTorch (image embeddings, the benchmark frames)\n")
        out.append(
            table(
                ["graph", "min cosine", "mean cosine"],
                [["fp32", f"{a['fp32_min_cosine']:.7f}", f"{a['fp32_mean_cosine']:.7f}"],
                 ["int8 (dynamic, per-channel weights)", f"{a['int8_min_cosine']:.5f}", f"{a['int8_mean_cosine']:.5f}"]],
            )
        )
        targets.append(
            ["ONNX fp32 embeddings: cosine ≥ 0.9999 with PyTorch", f"min {a['fp32_min_cosine']:.7f}",
             verdict(a["fp32_min_cosine"] >= 0.9999)]
        )
        targets.append(
            ["ONNX int8 embeddings: agreement measured and stated", f"min cosine {a['int8_min_cosine']:.5f} "
             "(tests assert ≥ 0.999)", verdict(a["int8_min_cosine"] >= 0.999)]
        )
        out.append(
            "\nThe weights are random: trained CLIP weights have larger outliers and may lose more to int8; "
            "`tests/test_onnx.py` asserts cosine ≥ 0.9999 (fp32) and ≥ 0.999 (int8) on rendered CartPole "
            "frames for the tiny transformers and open_clip models."
        )
    b = s.get("batch")
    if b:
        out.append("\n## Frames/s against batch size (400×600 CartPole frames)\n")
        names = list(next(iter(b.values())))
        rows = [[name] + [f(b[size][name]["fps"], 2) for size in b] for name in names]
        out.append(table(["pipeline"] + [f"batch {size}" for size in b], rows))
        sizes = list(b)
        if "1" in b and len(sizes) > 1:
            big = max(sizes, key=int)
            gain = b[big]["vlmreward, PyTorch"]["fps"] / b["1"]["vlmreward, PyTorch"]["fps"]
            out.append(f"\nPyTorch end to end, batch {big} against batch 1: {f(gain, 2)}×.")
    r = s.get("resolution")
    if r:
        out.append("\n## Frames/s against input resolution (batch 32)\n")
        rows = [[name, f(v["fps"], 1), f(v["ms_per_frame"], 2)] for name, v in r.items()]
        out.append(table(["pipeline, frames", "frames/s", "ms/frame"], rows))
        out.append(
            "\n224×224 frames are already the model's size: no resize, only normalisation. Rendering at the "
            "model's size saves the resize but the vision tower dominates either way."
        )
    t = s.get("threads")
    if t:
        out.append("\n## Frames/s against thread count (batch 32, 400×600 frames)\n")
        names = list(next(iter(t.values())))
        rows = [[name] + [f(t[n][name]["fps"], 1) for n in t] for name in names]
        out.append(table(["pipeline"] + [f"{n} thread{'s' if n != '1' else ''}" for n in t], rows))
    c = s.get("cache")
    if c:
        fps = c["fps"]
        out.append("\n## Embedding cache (repeated frames: a second pass over the same 400×600 frames)\n")
        out.append(table(["pass", "frames/s"], [[k, f(v["fps"], 1)] for k, v in fps.items()]))
        out.append(
            f"\nA hit costs the frame's SHA-1 key ({f(c['key_ms_per_frame'], 2)} ms for a 400×600 frame) instead "
            "of a vision-tower pass."
        )
    m = s.get("memory")
    if m:
        samples = m["samples"]
        window = int(m.get("window", 1))
        out.append(
            f"\n## Memory over a long scoring stream ({samples[-1]['frames']} distinct CartPole frames, batches of "
            f"{m['batch']}, runtime {m['backend']}, with a 256-entry embedding cache)\n"
        )
        rows = []
        for i in range(0, len(samples), window):
            w = samples[i : i + window]
            rss = [x["rss_mib"] for x in w]
            rows.append(
                [f"{w[0]['frames'] - m['batch'] + 1}–{w[-1]['frames']}", f(min(rss)), f(max(rss)), f(rss[-1]),
                 str(w[-1]["cache_entries"]), f(w[-1]["cache_mib"], 2), f(w[-1]["elapsed_s"], 0)]
            )
        out.append(table(["frames", "RSS min (MiB)", "RSS max (MiB)", "RSS at end", "cache entries", "cache (MiB)", "elapsed (s)"], rows))
        warmup = int(m.get("warmup_frames", window * m["batch"]))
        warm = [x for x in samples if x["frames"] > warmup] or samples
        n = len(warm)
        xs = [x["frames"] for x in warm]
        ys = [x["rss_mib"] for x in warm]
        mx, my = sum(xs) / n, sum(ys) / n
        var = sum((x - mx) ** 2 for x in xs) or 1.0
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var  # MiB per frame
        half = max(1, n // 2)
        first_peak, last_peak = max(ys[:half]), max(ys[half:] or ys)
        trend = slope * 1000
        drift = trend * (xs[-1] - xs[0]) / 1000
        flat = abs(drift) <= 0.05 * my and last_peak <= 1.02 * first_peak
        out.append(
            f"\nResident memory is read after every batch. During the first {warmup} frames it grows while the "
            f"allocator's pools reach their working size; after that, over {xs[-1] - xs[0]} more frames, it stays "
            f"between {f(min(ys))} and {f(max(ys))} MiB: a linear trend of {trend:+.1f} MiB per 1000 frames "
            f"(least squares over {n} readings, {drift:+.1f} MiB over the whole span) and a peak of "
            f"{f(last_peak)} MiB in the second half against {f(first_peak)} MiB in the first. Frames are "
            "rendered batch by batch and never held beyond their batch; the embedding cache stays at its bound."
        )
        targets.append(
            ["memory flat over a long scoring stream",
             f"after {warmup} frames of warm-up: {drift:+.1f} MiB over {xs[-1] - xs[0]} more frames "
             f"(RSS {f(min(ys), 0)}–{f(max(ys), 0)} MiB)",
             verdict(flat)]
        )
    return out


def training_section(t: dict[str, Any], targets: list[list[str]]) -> list[str]:
    steps = t["steps_per_s"]
    out = [
        f"\n## Environment steps/s while training CartPole (DQN, {t['transitions']} transitions a run, "
        f"{t['n_envs']} environments, deferred batches of {t['score_batch_size']})\n"
    ]
    base = steps.get("per-step", {}).get("median")
    rows = []
    for mode, v in steps.items():
        rel = f"{f(v['median'] / base, 2)}×" if base else ""
        rows.append([mode, f(v["median"], 2), rel, ", ".join(f(x, 2) for x in v["runs"])])
    out.append(table(["scoring", "steps/s (median)", "÷ per-step", "rounds"], rows))
    out.append(
        "\n`per-step`: one environment in `VLMRewardWrapper`, each frame scored alone. `vectorised`: "
        f"{t['n_envs']} environments, each step's frames in one batch. `deferred`: frames stored and scored in "
        f"batches of {t['score_batch_size']} written back into `DeferredReplayBuffer` (as `configs/cartpole.yaml`). "
        "Every mode trains DQN with `configs/cartpole.yaml`'s settings (128 gradient steps per 256 transitions). "
        f"The embedding cache's hit rate in `deferred + cache`: {100 * t['cache']['hit_rate']:.0f} % (CartPole renders "
        "pixel-identical frames for nearby states)."
    )
    if base and "deferred" in steps:
        ratio = steps["deferred"]["median"] / base
        targets.append(
            ["deferred scoring ≥ 1.5× per-step scoring in environment steps/s", f"{f(ratio, 2)}× (same model, PyTorch)",
             verdict(ratio >= 1.5)]
        )
    return out


def render_section(r: dict[str, Any]) -> list[str]:
    out = [f"\n## Humanoid rendering at {r['size']}×{r['size']} (MUJOCO_GL={r['mujoco_gl']}, renderer: {r.get('gl_renderer') or 'unknown'})\n"]
    variants = r["variants"]
    base = next((v for k, v in variants.items() if k.startswith("gymnasium")), None)
    rows = []
    for name, v in variants.items():
        rel = f"{f(base['render_ms'] / v['render_ms'], 1)}×" if base and v["render_ms"] > 0 else ""
        rows.append([name, f(v["step_and_render_fps"], 1), f(v["render_ms"], 2), rel])
    out.append(table(["environment", "steps + renders /s", "render ms/frame", "render speed ÷ gymnasium's"], rows))
    out.append(
        "\nEach round steps with random actions and renders every step; `render ms/frame` subtracts the time of "
        "stepping alone. Here MuJoCo renders in software (Mesa llvmpipe: no GPU), where shadows and multisampling "
        "cost the most; with a GPU's EGL driver every row is much faster."
    )
    return out


def generative_section(g: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = g["machine"]
    out = [f"\n## Generative-VLM rewards: the vqa reward against a naive generate loop ({m['cpu']}, {m['cores']} cores"
           f"{', GPU ' + m['gpu'] if m.get('gpu') else ''})\n"]
    for model in g["models"]:
        out.append(f"\n**{model['model']}** ({model['parameters'] / 1e6:.1f} M parameters, random weights; "
                   f"{model['frames']} CartPole frames of {model['frame_size'][1]}×{model['frame_size'][0]} px)\n")
        rows = [[r["variant"], f(r["frames_per_s"], 2), f(r["ms_per_frame"], 1), f"{f(r['vs_naive'], 2)}×"] for r in model["rows"]]
        out.append(table(["variant", "frames/s", "ms/frame", "÷ naive loop"], rows))
        best = next((r for r in model["rows"] if r["variant"].endswith("batch 32")), None)
        if best is not None:
            targets.append([f"vqa reward ≥ 3× the naive generate loop at batch 32 on {m['cores']} CPU cores ({model['model']})",
                            f"{f(best['vs_naive'], 2)}×", verdict(best["vs_naive"] >= 3.0)])
    out.append(
        "\nThe naive loop formats the chat template, runs the processor on one image and `generate(max_new_tokens=1)` "
        "per frame, and compares the decoded word with \"yes\" (a binary reward). The vqa reward formats each question "
        "once, preprocesses a batch of images in one processor call and runs one forward pass per batch with "
        "`logits_to_keep=1` (a probability, not a word). Variants are timed round-robin on the same frames. "
        "Where fixed per-call costs dominate (the tiny model) batching pays; with SmolVLM-256M's dimensions on a CPU "
        "nearly all the time is the vision tower on a 512-px image (1,024 patches through 12 layers, about 2 s a frame "
        "here), the same work in both, so the ratio is about 1 and batching on two cores gains nothing. The gain of "
        "one batched forward pass over a generate loop on a GPU, where batching fills the device, is not measured "
        "here (no GPU was lent)."
    )
    return out


def checkpoint_section(c: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = c["machine"]
    out = [f"\n## Checkpoint size per transition: the replay buffer on disk ({m['cpu']}, {m['cores']} cores)\n"]
    rows = [[r["env"], r["observation"], str(r["transitions"]), str(r["episode_ends"]), str(r["raw_bytes"]),
             f(r["npz_bytes_per_transition"]), f"{r['npz_vs_raw']:.3f}×", f(r["pkl_bytes_per_transition"]), f"{r['pkl_vs_raw']:.2f}×",
             f"{f(1e3 * r['npz_save_s'])} / {f(1e3 * r['npz_load_s'])}", f"{f(1e3 * r['pkl_save_s'])} / {f(1e3 * r['pkl_load_s'])}"]
            for r in c["rows"]]
    out.append(table(["env", "observation", "transitions", "episode ends", "raw B", "vlmreward B", "÷ raw", "SB3 pickle B",
                      "÷ raw", "vlmreward save / load ms", "SB3 save / load ms"], rows))
    out.append(
        "\nRandom-action transitions fill half of a replay buffer (as in a run checkpointed half-way). Raw bytes: one "
        "observation in its own dtype, the action, a float32 reward, a one-byte done flag. vlmreward writes "
        "`replay_buffer.npz` (`vlmreward.rl.replay_storage`): the filled rows only, a next observation only where it "
        "is not the following row's observation (episode ends), 0/1 flags as bytes. SB3's pickle "
        "(`model.save_replay_buffer`) holds every allocated row and every next observation."
    )
    for r in c["rows"]:
        targets.append([f"checkpoint bytes per transition ≤ 1.2× the raw transition ({r['env']})", f"{r['npz_vs_raw']:.3f}×",
                        verdict(r["npz_vs_raw"] <= 1.2)])
    return out


def video_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    out = [f"\n## Episode-level video rewards ({m['cpu']}, {m['cores']} cores, {r['device']})\n",
           f"`episode_video` on {r['n_envs']} environments' episodes of {r['episode_length']} Meta-World frames (224 × 224), "
           f"random-weight X-CLIP base/32 ({r['num_frames']} frames a clip); the same rewards from both variants.\n"]
    out.append(table(["variant", "episodes/s", "÷ naive loop"],
                     [[row["variant"], f(row["episodes_per_s"], 2), f"{f(row['vs_naive'], 2)}×"] for row in r["rows"]]))
    out.append(
        "\nThe naive loop is RoboCLIP's: each environment runs the video model on its own episode when it ends, every "
        "frame kept. vlmreward keeps only the sampled frames of each finished episode and scores the episodes of all "
        "environments together, the given number a forward pass (`score_batch_size // num_frames` in training). On a "
        "CPU a larger batch does not make the vision tower faster per frame; the batch sizes that pay are a GPU's, "
        "which no measurement here covers."
    )
    ours = max((row for row in r["rows"] if row["variant"].startswith("vlmreward")), key=lambda row: row["vs_naive"])
    targets.append([f"episode_video episodes/s at least the naive per-episode loop's ({r['device']}, best batch size)",
                    f"{f(ours['vs_naive'], 2)}×", verdict(ours["vs_naive"] >= 1.0)])
    return out


def relabel_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    out = [f"\n## Relabelling a Minari dataset ({m['cpu']}, {m['cores']} cores)\n",
           f"{r['episodes']} CartPole episodes of {r['episode_length']} image observations (400 × 600), goal-baseline reward "
           "with the random-weight ViT-B/32; both variants write a complete relabelled dataset.\n"]
    out.append(table(["variant", "frames/s", "÷ naive loop"],
                     [[row["variant"], f(row["frames_per_s"], 2), f"{f(row['vs_naive'], 2)}×"] for row in r["rows"]]))
    out.append("\nPeak memory (Python-tracked allocations, NumPy included; the tiny CLIP, episodes of 20 frames; "
               "`relabel_dataset` with batches of 64 frames):\n")
    out.append(table(["episodes", "frames", "vlmreward MiB", "naive loop MiB"],
                     [[str(x["episodes"]), str(x["frames"]), f(x["vlmreward_peak_mib"], 0), f(x["naive_peak_mib"], 0)]
                      for x in r["memory"]]))
    out.append(
        "\nThe naive loop reads each episode, calls the reward once per episode and keeps every relabelled episode "
        "until `create_dataset_from_buffers` writes them. vlmreward scores frames in batches across episodes, saves "
        "each episode's rewards as it goes (what makes a killed relabel resumable), and writes the new dataset episode "
        "by episode, so its memory is bounded by one batch and one episode rather than by the dataset. The price is "
        "time: it reads (and decodes) every episode twice, once to score and once to write, checksums the source for the "
        "provenance, and writes image observations without JPEG encoding (the naive loop re-encodes them, losing "
        "pixels); the vision tower's time is the same in both."
    )
    ours = next(row for row in r["rows"] if row["variant"].startswith("vlmreward"))
    targets.append(["relabel frames/s at least the naive per-episode loop's (CPU, ViT-B/32)", f"{f(ours['vs_naive'], 2)}×",
                    verdict(ours["vs_naive"] >= 1.0)])
    small, large = r["memory"][0], r["memory"][-1]
    growth = large["vlmreward_peak_mib"] / small["vlmreward_peak_mib"]
    targets.append([f"relabel memory bounded as the dataset grows {large['frames'] // small['frames']}×",
                    f"peak × {f(growth, 2)} (naive loop × {f(large['naive_peak_mib'] / small['naive_peak_mib'], 2)})",
                    verdict(growth < 1.5)])
    return out


def progress_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    out = [f"\n## Prefix scoring: token_progress ({m['cpu']}, {m['cores']} cores)\n",
           f"Every step's prefix of a {r['steps']}-step CartPole episode (frames {r['frame_size'][1]} × {r['frame_size'][0]}), "
           f"each sampled to at most {r['max_frames']} frames, scored by the tests' random-weight Qwen2.5-VL; the variants "
           "agree to 1e-4.\n"]
    out.append(table(["variant", "prefixes/s", "ms/prefix", "÷ naive loop"],
                     [[row["variant"], f(row["prefixes_per_s"], 1), f(row["ms_per_prefix"], 1), f"{f(row['vs_naive'], 2)}×"]
                      for row in r["rows"]]))
    out.append(
        "\nThe naive loop is LeRobot's dataset-scoring recipe: per prefix, the processor on one video and one forward "
        "pass with every position's logits. vlmreward batches the prefixes (left padding) and runs the language head on "
        "the answer's positions only. On this 2-layer model most of a prefix's time is the video processor's resizing "
        "and the vision tower, which scale with the frames whatever the batch, so batching removes only per-call "
        "overhead; the language head saved is small with its 374-token vocabulary (Qwen's is 151,936). No GPU "
        "measurement covers the batch sizes a GPU would pay back."
    )
    best = max((row for row in r["rows"] if row["variant"].startswith("vlmreward")), key=lambda row: row["vs_naive"])
    targets.append(["token_progress prefixes/s ≥ 3× the naive per-prefix loop (tiny Qwen2.5-VL, CPU, best batch)",
                    f"{f(best['vs_naive'], 2)}×", verdict(best["vs_naive"] >= 3.0)])
    return out


def preference_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    out = [f"\n## Preference labels: the preference kind's VLM labeller ({m['cpu']}, {m['cores']} cores)\n",
           f"{r['pairs']} pairs of CartPole frames ({r['frame_size'][1]} × {r['frame_size'][0]}) labelled by the tests' "
           "random-weight Qwen2.5-VL. Pairs/s for every variant; vlmreward asks both orders of each pair (two queries), "
           f"the naive loop one order with one `generate` of {r['max_new_tokens']} tokens per pair, parsed as RL-VLM-F "
           "parses Gemini's reply.\n"]
    out.append(table(["variant", "pairs/s", "ms/pair", "÷ naive loop"],
                     [[row["variant"], f(row["pairs_per_s"], 1), f(row["ms_per_pair"], 1), f"{f(row['vs_naive'], 2)}×"]
                      for row in r["rows"]]))
    out.append(f"\nLabel cache hit rate on the rerun: {r['cache_hit_rate']:.0%} (no model call).")
    best = max((row for row in r["rows"] if row["variant"].startswith("vlmreward, both")), key=lambda row: row["vs_naive"])
    targets.append(["preference pairs/s, both orders asked, ≥ a naive loop of one generate per pair, one order (tiny Qwen2.5-VL, CPU, best batch)",
                    f"{f(best['vs_naive'], 2)}×", verdict(best["vs_naive"] >= 1.0)])
    return out


def autotune_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    out = [f"\n## Autotuned batch size: `batch_size: auto` ({m['cpu']}, {m['cores']} cores)\n",
           f"{r['model']}, {r['frames']} CartPole frames ({r['frame_size'][1]} × {r['frame_size'][0]}) per call, "
           f"goal-baseline reward end to end, median of {r['repeats']} round-robin rounds. Each run starts from an "
           "empty autotune cache and times the batch sizes again.\n"]
    rows = []
    for k, run in enumerate(r["runs"], 1):
        rates = run["frames_per_s"]
        rows.append([str(k), str(run["chosen"]), f(run["tune_s"], 1), f(rates["auto"], 1),
                     f"{run['best_hand_picked']}: {f(rates[run['best_hand_picked']], 1)}", f"{f(run['vs_best_hand_picked'], 3)}×",
                     f"{run['best_naive'].removeprefix('naive transformers, ')}: {f(rates[run['best_naive']], 1)}",
                     f"{f(run['vs_naive'], 2)}×"])
    out.append(table(["run", "chosen", "tuning s", "auto frames/s", "best hand-picked frames/s", "auto ÷ best",
                      "naive loop frames/s", "auto ÷ naive"], rows))
    every = sorted({name for run in r["runs"] for name in run["frames_per_s"] if name.startswith("batch ")},
                   key=lambda name: int(name.split()[1]))
    out.append("\nFrames/s of every hand-picked batch size, per run:\n")
    out.append(table(["run", *every], [[str(k), *(f(run["frames_per_s"][n], 1) for n in every)] for k, run in enumerate(r["runs"], 1)]))
    worst_best = min(run["vs_best_hand_picked"] for run in r["runs"])
    worst_naive = min(run["vs_naive"] for run in r["runs"])
    targets.append([f"autotuned reward(frames) ≥ 0.98× the best hand-picked batch, every one of {len(r['runs'])} runs (worst run)",
                    f"{f(worst_best, 3)}×", verdict(worst_best >= 0.98)])
    targets.append([f"autotuned reward(frames) ≥ 1.0× the naive transformers loop, every one of {len(r['runs'])} runs (worst run)",
                    f"{f(worst_naive, 2)}×", verdict(worst_naive >= 1.0)])
    return out


def overlap_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    out = [f"\n## Overlapped scoring: training steps/s ({m['cpu']}, {m['cores']} cores)\n",
           f"{r['algorithm']}, {r['n_envs']} environments, scoring batches of {r['score_batch_size']} frames, "
           f"median of {r['repeats']} round-robin rounds (`benchmarks/bench_overlap.py`). *environment only*: the same "
           "deferred pipeline with a reward that costs nothing; *deferred*: `scoring: deferred` (environments and "
           "model take turns); *overlapped*: `scoring: overlapped` (each batch scored on a background thread while "
           "the environments step). Models: " + "; ".join(f"{k}: {v}" for k, v in r["models"].items()) + ".\n"]
    rows = []
    for row in r["rows"]:
        rate = {mode: v["median"] for mode, v in row["steps_per_s"].items()}
        rows.append([row["env"], row["model"], str(row["transitions"]), f(rate["environment only"], 1), f(rate["deferred"], 1),
                     f(rate["overlapped"], 1), f"{f(row['overlapped_vs_deferred'], 2)}×",
                     f"{f(row['overlapped_vs_environment'], 2)}×", f"{f(row['deferred_vs_environment'], 2)}×"])
    out.append(table(["environment", "model", "transitions", "environment only steps/s", "deferred steps/s",
                      "overlapped steps/s", "overlapped ÷ deferred", "overlapped ÷ environment only",
                      "deferred ÷ environment only"], rows))
    # deferred time = stepping + scoring, so deferred ÷ environment only ≥ 0.5 exactly where scoring ≤ stepping
    cheap = [row for row in r["rows"] if row["deferred_vs_environment"] >= 0.5]
    if cheap:
        worst = min(row["overlapped_vs_environment"] for row in cheap)
        where = ", ".join(f"{row['env']} + {row['model']}" for row in cheap)
        targets.append([f"overlapped training ≥ 0.8× the environment-only rate where scoring is cheaper than stepping ({where})",
                        f"{f(worst, 2)}×", verdict(worst >= 0.8)])
    best = max(row["overlapped_vs_deferred"] for row in r["rows"])
    worst = min(row["overlapped_vs_deferred"] for row in r["rows"])
    targets.append(["overlapped against alternating deferred scoring, training steps/s (range over the rows)",
                    f"{f(worst, 2)}× to {f(best, 2)}×", "measured"])
    return out


def server_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    clients = r["clients"]
    out = [f"\n## Reward server: load test against in-process scoring ({m['cpu']}, {m['cores']} cores)\n",
           f"`vlmreward serve` on this machine (`benchmarks/bench_server.py`), goal-baseline reward, requests of "
           f"{r['rows'][0]['frames_per_request']} CartPole frames ({r['frame_size'][1]} × {r['frame_size'][0]}), "
           f"{r['seconds']:g} s per timed phase, max batch {r['max_batch']} frames, max wait {r['max_wait_ms']:g} ms. "
           "*in-process*: one thread calling `reward(frames)`; *server*: the same requests over HTTP from 1 or "
           f"{clients} client threads; latency per request, client side.\n"]
    rows = []
    for row in r["rows"]:
        for phase in ("in-process", "server, 1 client", f"server, {clients} clients"):
            x = row[phase]
            rows.append([row["model"], phase, f(x["requests_per_s"], 1), f(x["frames_per_s"], 1), f(x["p50_ms"], 1),
                         f(x["p99_ms"], 1)])
    out.append(table(["model", "phase", "requests/s", "frames/s", "p50 ms", "p99 ms"], rows))
    out.append("\nCrashes mid-load: *server killed*: the `vlmreward serve` process SIGKILLed after a third of the "
               "requests and started again on its port (the clients retry); *ray, replica killed*: `--backend ray` "
               "with 2 replicas, one `ray.kill`-ed (Ray restarts it and re-sends its batches). Every request is sent once.\n")
    rows = []
    for row in r["rows"]:
        for phase in ("server killed", "ray, replica killed"):
            x = row.get(phase)
            if not x or "skipped" in x:
                continue
            rows.append([row["model"], phase, f"{x['answered']} of {x['sent']}", f"{x['max_abs_difference']:.1e}",
                         str(x["retries"]), f(x["kill_to_next_answer_s"], 2), f(x["p99_ms"], 0)])
    out.append(table(["model", "crash", "answered", "max \\|Δ reward\\| vs in-process", "client retries",
                      "kill → next answer s", "p99 ms (with the crash)"], rows))
    crashed = [row[p] for row in r["rows"] for p in ("server killed", "ray, replica killed") if p in row and "sent" in row[p]]
    lost = sum(x["sent"] - x["answered"] for x in crashed)
    worst = max(x["max_abs_difference"] for x in crashed)
    targets.append(["server: a crash mid-load (server process killed; Ray replica killed) loses no request, and every reward "
                    "equals in-process scoring (to float rounding ≤ 1e-6: a batch merges several requests)",
                    f"{lost} lost of {sum(x['sent'] for x in crashed)}, max \\|Δ\\| {worst:.1e}", verdict(lost == 0 and worst <= 1e-6)])
    ratio = ", ".join(f"{row['model']} {f(row['server_c_vs_in_process'], 2)}×" for row in r["rows"])
    targets.append([f"server requests/s with {clients} clients ÷ in-process scoring (one thread)", ratio, "measured"])
    return out


def gpu_section(r: dict[str, Any], targets: list[list[str]]) -> list[str]:
    m = r["machine"]
    where = r["gpu"] or f"{m['cpu']}, {m['cores']} cores"
    out = [f"\n## Precision and `torch.compile` on {r['device']} ({where})\n",
           f"`benchmarks/bench_gpu.py --device {r['device']}`: {r['model']}, `reward(frames)` end to end, "
           f"{r['batch']} CartPole frames a call, median of {r['repeats']} round-robin rounds after a warm-up "
           "(the first call, which compiles where asked, is timed apart).\n"]
    rows = [[name, f(x["frames_per_s"], 1), f"{f(x['frames_per_s'] / r['contrastive']['float32']['frames_per_s'], 2)}×",
             f(x["first_call_s"], 1), f"{x['max_abs_difference_vs_float32']:.1e}"] for name, x in r["contrastive"].items()]
    out.append(table(["variant", "frames/s", "÷ float32 eager", "first call s", "max \\|Δ reward\\| vs float32"], rows))
    rows = [[name, f(x["calls_per_s"], 2), f(x["first_call_s"], 1), f"{x['max_abs_difference_vs_float32']:.1e}"]
            for name, x in r["generative"].items()]
    out.append(f"\nGenerative forward (tiny Qwen2.5-VL, `vqa`, {next(iter(r['generative'].values()))['frames_per_call']} frames a call):\n")
    out.append(table(["variant", "calls/s", "first call s", "max \\|Δ\\| vs float32"], rows))
    render = r["render"]
    out.append("\nMuJoCo rendering (Meta-World reach): " + (
        f"{f(render['frames_per_s'], 1)} frames/s with MUJOCO_GL={render['mujoco_gl']}." if "frames_per_s" in render
        else f"not measured ({render['skipped']}).") + "\n")
    compiled = r["contrastive"]["float32, compile"]["frames_per_s"] / r["contrastive"]["float32"]["frames_per_s"]
    targets.append([f"`compile: true` ÷ eager, contrastive reward(frames) on {r['device']}", f"{f(compiled, 2)}×", "measured"])
    return out


def main() -> None:
    results = load_results()
    results = {k: v for k, v in results.items() if not k.startswith("quick")}
    if not results:
        raise SystemExit("no results in benchmarks/results/; run benchmarks/run_all.py first")
    targets: list[list[str]] = []
    body: list[str] = []
    if "scoring" in results:
        body += scoring_sections(results["scoring"], targets)
    if "memory" in results:
        body += scoring_sections({**results["memory"], "model": results["memory"]["model"]}, targets)[1:]
    if "training" in results:
        body += training_section(results["training"], targets)
    if "render" in results:
        body += render_section(results["render"])
    if "generative" in results:
        body += generative_section(results["generative"], targets)
    if "checkpoint" in results:
        body += checkpoint_section(results["checkpoint"], targets)
    if "relabel" in results:
        body += relabel_section(results["relabel"], targets)
    if "video" in results:
        body += video_section(results["video"], targets)
    if "progress" in results:
        body += progress_section(results["progress"], targets)
    if "preference" in results:
        body += preference_section(results["preference"], targets)
    if "autotune" in results:
        body += autotune_section(results["autotune"], targets)
    if "overlap" in results:
        body += overlap_section(results["overlap"], targets)
    if "server" in results:
        body += server_section(results["server"], targets)
    if "gpu" in results:
        body += gpu_section(results["gpu"], targets)
    if "gpu_cpu" in results:
        body += gpu_section(results["gpu_cpu"], targets)
    text = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/report.py` from `benchmarks/results/*.json`, which `benchmarks/run_all.py` "
        "produces (see `benchmarks/README.md`). Do not edit by hand.",
        "",
        machine_section(results),
        "",
        "## Targets",
        "",
        table(["target", "measured (same run)", "verdict"], targets),
        "",
    ] + body
    OUT.write_text("\n".join(text) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
