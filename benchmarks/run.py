"""stlib's benchmark: the tutorial-style baseline against stlib (fp32 and precision="auto"), side by side.

    make bench                                      # = .venv/bin/python benchmarks/run.py   (~15 min on 2 cores)
    .venv/bin/python benchmarks/run.py --quick      # a ~3 min smoke run at small sizes
    bash benchmarks/gpu.sh                          # the GPU suite on a CUDA machine

Measures, in one process (children for peak memory): ms per iteration (one closure evaluation:
forward, losses, backward, optimiser update) at 128/256/512 px, interleaved so that a busy machine
slows every contestant alike; the time stlib needs to reach the objective the baseline ends with
after 300 closure evaluations (every image scored by the same float32 objective); peak memory of a
512 px run and of a few 2048 px steps (4096 px on a GPU); the estimate's predictions next to the
measurements. Writes benchmarks/RESULTS.md and benchmarks/objective_vs_time.png (raw numbers in
benchmarks/out/results.json; with ``--out DIR``: DIR/RESULTS.md, DIR/out/results.json). Not part of the test-suite.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared machine spinning threads are several times
# slower (and unfair to whichever contestant runs while another job holds a core). Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # stlib from this checkout, installed or not (e.g. on a bare GPU machine)

import baseline_tutorial as tutorial  # noqa: E402

import stlib  # noqa: E402
from stlib.model import resolve_device  # noqa: E402
from stlib.presets import preset_for  # noqa: E402
from stlib.engine.objective import compute_targets, objective  # noqa: E402

CONTENT, STYLE = "astronaut", "swirls"
#: RESULTS.md from this line on is written by other scripts (gram_speed.py) and kept when run.py rewrites the rest.
KEPT_MARK = "<!-- below: written by other benchmark scripts, kept by run.py -->"


# ------------------------------------------------------------------------------------------ machine
def _proc(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def load_average() -> str:
    """The 1/5/15-minute load averages (how busy the machine is)."""
    return " ".join(_proc("/proc/loadavg").split()[:3]) or "n/a"


def peak_rss_bytes() -> int:
    """This process's peak resident memory (VmHWM) in bytes."""
    match = re.search(r"VmHWM:\s+(\d+)\s+kB", _proc("/proc/self/status"))
    return int(match.group(1)) * 1024 if match else 0


def machine_info(device: torch.device) -> Dict[str, Any]:
    """CPU model, cores, memory, torch version, GPU, thread settings, date and the load right now."""
    cpu = re.search(r"model name\s*:\s*(.+)", _proc("/proc/cpuinfo"))
    mem = re.search(r"MemTotal:\s+(\d+)", _proc("/proc/meminfo"))
    info = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem.group(1)) / 2**20, 1) if mem else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "fast_bf16_cpu": stlib.engine.precision.cpu_has_fast_bf16(),
        "bf16_flags": [f for f in stlib.engine.precision.FAST_BF16_FLAGS if f in stlib.engine.precision._cpuinfo_flags()],
        "device": str(device),
        "load_at_start": load_average(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = f"{props.name} ({props.total_memory / 2**30:.0f} GiB, compute {props.major}.{props.minor})"
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------- contestants
class Bench:
    """The shared set-up: one stlib model, the same weights in torchvision's layout, images, preset."""

    def __init__(self, device: torch.device, weights: str) -> None:
        self.device = device
        self.model = stlib.load_vgg19(weights, device=device)
        self._features: Optional[torch.nn.Sequential] = None
        self.preset = preset_for(self.model.weights_source)
        self.content_full = stlib.load_image(CONTENT)
        self.style_full = stlib.load_image(STYLE)

    @property
    def features(self) -> torch.nn.Sequential:
        """torchvision's vgg19().features with stlib's weights (built on first use: it imports torchvision)."""
        if self._features is None:
            self._features = tutorial.torchvision_features(self.model.cpu()).to(self.device)
            self.model.to(self.device)
        return self._features

    def images(self, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return (stlib.resize(self.content_full, size).to(self.device),
                stlib.resize(self.style_full, size).to(self.device))

    def baseline(self, size: int, evals: int, on_eval: Optional[Callable] = None) -> Tuple[torch.Tensor, Dict]:
        """The tutorial loop for ``evals`` closure evaluations; returns (final image, timings)."""
        c, s = self.images(size)
        p = self.preset
        return tutorial.run_style_transfer(self.features, c, s, p.content_layers, p.style_layers, p.content_weight,
                                           p.style_weight, p.tv_weight, evals, on_eval)

    def stlib(self, size: int, steps: Any, precision: str, **kwargs: Any) -> "stlib.StylizeResult":
        c, s = self.images(size)
        kwargs.setdefault("rtol", 0.0)  # a benchmark runs every step it was asked for
        return stlib.stylize(c, s, size=size, steps=steps, precision=precision, model=self.model,
                             progress=False, **kwargs)

    def scorer(self, size: int) -> Callable[[torch.Tensor], float]:
        """The float32 objective (same formula and targets for everyone) of an image at ``size``."""
        c, s = self.images(size)
        p = self.preset
        self.model.to(memory_format=torch.contiguous_format)
        with torch.no_grad():
            targets = compute_targets(self.model, c, [s], p.content_layers, p.style_layers, [1.0])

        def score(image: torch.Tensor) -> float:
            self.model.to(memory_format=torch.contiguous_format)
            with torch.no_grad():
                terms = objective(self.model, image.to(self.device).clamp(0, 1), targets, p.content_layers,
                                  p.style_layers, p.content_weight, p.style_weight, p.tv_weight)
            return float(terms["total"])

        return score


def _diffs(times: Sequence[float]) -> List[float]:
    return [b - a for a, b in zip(times, times[1:])]


def per_iteration(bench: Bench, size: int, evals: int, rounds: int) -> Dict[str, Any]:
    """Median ms per closure evaluation of baseline / stlib fp32 / stlib auto, interleaved round by round.

    The baseline runs whole ``.step`` calls (20 evaluations each); stlib runs ``evals`` steps per round.
    """
    variants = [("stlib fp32", "fp32", None), ("stlib auto", "auto", None)]
    if bench.device.type == "cuda":  # what the CUDA graph (stylize's default up to 1024 px) is worth
        variants.append(("stlib auto, no CUDA graph", "auto", False))
    samples: Dict[str, List[float]] = {"baseline": [], **{name: [] for name, _, _ in variants}}
    graphs: Dict[str, bool] = {}
    for _ in range(rounds):
        times: List[float] = []
        bench.baseline(size, 20, lambda n, t, img: times.append(t))  # one .step
        samples["baseline"] += _diffs(times)
        for name, precision, graph in variants:
            result = bench.stlib(size, evals + 1, precision, cuda_graph=graph)
            samples[name] += _diffs([h["time"] for h in result.history])  # drops step 1 (targets, warm-up)
            graphs[name] = bool(result.settings.get("cuda_graph"))
            if name == "stlib auto":
                resolved = result.precision
    out = {name: 1000 * statistics.median(v) for name, v in samples.items()}
    out["auto precision"] = resolved
    out["samples"] = {name: len(v) for name, v in samples.items()}
    out["cuda_graph"] = graphs
    return out


#: The contestants of the time-to-objective race: (name, precision, extra stylize options). "stlib auto, bf16
#: only" is stylize's default; "stlib auto" adds the opt-in float32 finish, "stlib auto, palette start" the opt-in
#: start from the photo in the painting's colours (issue 22).
TTO_VARIANTS: List[Tuple[str, str, Dict[str, Any]]] = [
    ("stlib auto", "auto", {"fp32_finish": True}),
    ("stlib auto, bf16 only", "auto", {"fp32_finish": False}),
    ("stlib auto, palette start", "auto", {"init": "palette"}),
    ("stlib fp32", "fp32", {}),
]
#: The variant run with stylize's default options (fp32_finish=False): the one the Targets table judges.
DEFAULT_VARIANT = "stlib auto, bf16 only"


def best_so_far_at(curve: Sequence[Tuple[float, float]], t: float) -> float:
    """The lowest objective of ``curve`` ((seconds, objective), time-ordered) up to second ``t`` (inf: none yet)."""
    return min((v for s, v in curve if s <= t), default=math.inf)


def worst_at_equal_time(curve: Sequence[Tuple[float, float]], baseline: Sequence[Tuple[float, float]]) -> float:
    """max over the baseline's sample times t (from ``curve``'s first sample on) of best(curve, t) / best(baseline, t):
    <= 1 means never worse than the baseline at equal wall time."""
    if not curve:
        return math.inf
    start = curve[0][0]
    ratios = [best_so_far_at(curve, t) / best_so_far_at(baseline, t) for t, _ in baseline if t >= start]
    return max(ratios, default=math.inf)


def baseline_curve(bench: Bench, size: int, evals: int,
                   score: Callable[[torch.Tensor], float]) -> Tuple[List[Tuple[float, float]], float, float]:
    """The baseline's ``evals`` closure evaluations, ~60 of its images scored: (curve of (seconds, objective),
    the final image's objective, the run's seconds)."""
    every = max(1, evals // 60)
    snaps: List[Tuple[float, torch.Tensor]] = []

    def keep(n: int, t: float, img: torch.Tensor) -> None:
        if n % every == 0 or n == evals:
            snaps.append((t, img.detach().cpu().clone()))

    final, timing = bench.baseline(size, evals, keep)
    curve = [(timing["setup"] + t, score(img)) for t, img in snaps]
    target = score(final)
    base_seconds = timing["setup"] + timing["optimise"]
    curve.append((base_seconds, target))
    return curve, target, base_seconds


def time_to_objective(bench: Bench, size: int, evals: int) -> Dict[str, Any]:
    """Objective-vs-seconds curves; the baseline's final objective after ``evals`` closure evaluations; when
    each stlib variant first reaches it."""
    score = bench.scorer(size)
    every = max(1, evals // 60)
    curves: Dict[str, List[Tuple[float, float]]] = {}
    load_before = load_average()
    curves["baseline"], target, base_seconds = baseline_curve(bench, size, evals, score)
    out: Dict[str, Any] = {"size": size, "evals": evals, "baseline_final": target, "baseline_seconds": base_seconds,
                           "baseline_best_seen": min(v for _, v in curves["baseline"]), "load_before": load_before}
    for name, precision, options in TTO_VARIANTS:
        snaps = []
        result = bench.stlib(size, evals, precision, every=1 if precision == "auto" else every,
                             callback=lambda info: snaps.append((info.elapsed, info.image)), **options)
        curve = [(t, score(img)) for t, img in snaps]
        curves[name] = curve
        reached = next((t for t, v in curve if v <= target), None)
        out[name] = {
            "seconds_total": result.elapsed, "returned_objective": score(result.image), "reached_at_s": reached,
            "ratio": (reached / base_seconds) if reached is not None else None, "precision": result.precision,
            "best_seen": min(v for _, v in curve),
            "reached_best_at_s": next((t for t, v in curve if v <= out["baseline_best_seen"]), None),
            "worst_vs_baseline": worst_at_equal_time(curve, curves["baseline"]),
            "fp32_steps": sum(h["precision"] == "fp32" for h in result.history) if precision != "fp32" else None,
        }
    out["curves"] = curves
    out["load_after"] = load_average()
    return out


# ------------------------------------------------------------------------------------- memory children
def child_main(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Runs in a fresh process: one run, then its peak memory. ``spec``: impl, size, steps, precision, device."""
    start_rss = peak_rss_bytes()  # imports done (torch, stlib): what every run starts from
    torch.set_num_threads(int(spec["threads"]))
    device = resolve_device(spec["device"])
    bench = Bench(device, spec["weights"])
    t0 = time.perf_counter()
    out: Dict[str, Any] = dict(spec)
    out["start_rss"] = start_rss
    if spec["impl"] == "stlib":  # the prediction this process would print before the run (calibration: ~2 s)
        est = stlib.estimate(spec["size"], device=device, steps=spec["steps"], precision=spec["precision"],
                             scales=spec.get("scales"), model=bench.model)  # as the CLI and the studio call it
        out["estimate_bytes"], out["estimate_seconds_per_step"] = est.peak_bytes, est.seconds_per_step
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        if spec["impl"] == "baseline":
            _, timing = bench.baseline(spec["size"], spec["steps"])
            out["seconds_per_step"] = timing["optimise"] / max(timing["evaluations"], 1)
        else:
            result = bench.stlib(spec["size"], spec["steps"], spec["precision"], scales=spec.get("scales"))
            out["seconds_per_step"] = result.seconds_per_step
            out["sizes"] = result.settings["sizes"]
            out["precision_used"] = result.precision
        _sync(device)
        out["ok"] = True
    except (MemoryError, RuntimeError) as err:  # torch.cuda.OutOfMemoryError is a RuntimeError
        out["ok"], out["error"] = False, " ".join(str(err).split())[:200]
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss"] = peak_rss_bytes()
    if device.type == "cuda":
        out["peak_gpu"] = torch.cuda.max_memory_allocated(device)
    return out


def run_child(spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
    """``child_main(spec)`` in a fresh interpreter (so peak memory is this run's alone)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "ok": False, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**spec, "ok": False, "error": f"exit {proc.returncode}: {tail[0][:200]}"}
    return json.loads(lines[-1])


# ----------------------------------------------------------------------------------------------- report
def _gb(n: Optional[float]) -> str:
    return "n/a" if n is None else f"{n / 1e9:.2f} GB"


#: plot's colour and legend label of each contestant of run.py's race (other names: matplotlib's next colour).
PLOT_STYLES = {"baseline": ("tab:gray", "tutorial baseline (fp32, L-BFGS max_iter=20)"),
               "stlib fp32": ("tab:blue", "stlib fp32"),
               "stlib auto": ("tab:orange", "stlib precision='auto', fp32_finish=True"),
               "stlib auto, bf16 only": ("tab:red", "stlib precision='auto' (default, bf16 only)"),
               "stlib auto, palette start": ("tab:green", "stlib precision='auto', init='palette'")}


def plot(curves: Dict[str, List[Tuple[float, float]]], target: float, size: int, evals: int, path: Path,
         best_seen: float = math.inf, styles: Optional[Dict[str, Tuple[Optional[str], str]]] = None,
         title: Optional[str] = None) -> None:
    """Objective (log scale) against wall-clock seconds for every contestant; ``target`` is the baseline's final
    objective, ``best_seen`` its best on the way (drawn too when the final one is an overshoot). ``styles``:
    {name: (colour, label)} (default ``PLOT_STYLES``); ``title`` replaces the default title's start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    styles = PLOT_STYLES if styles is None else styles
    for name, curve in curves.items():
        if not curve:
            continue
        color, label = styles.get(name, (None, name))
        ts, vs = zip(*curve)
        best = [min(vs[: i + 1]) for i in range(len(vs))]
        ax.plot(ts, vs, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(ts, best, color=color, linewidth=2, label=f"{label} (best so far)")
    overshoot = target > 1.01 * best_seen
    ax.axhline(target, color="black", linestyle="--", linewidth=1,
               label=f"baseline's objective after {evals} evaluations" + (" (an overshoot)" if overshoot else ""))
    if overshoot:
        ax.axhline(best_seen, color="black", linestyle=":", linewidth=1.2,
                   label=f"baseline's best objective on the way ({best_seen:.4g})")
    ax.set_yscale("log")
    finite = [v for c in curves.values() for _, v in c if math.isfinite(v)]
    if finite:
        ax.set_ylim(min(finite) * 0.9, min(max(finite), 20 * target) * 1.1)
    ax.set_xlabel("wall-clock seconds (setup included, weights loading excluded)")
    ax.set_ylabel("objective, float32 (lower is better)")
    ax.set_title(f"{title or 'Objective vs time'} at {size} px: faint = every evaluation, bold = best so far")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bf16_label(info: Dict[str, Any]) -> str:
    """", AVX-512-BF16, no AMX" and the like: which bf16 instructions the CPU has (older results: a guess)."""
    if not info.get("fast_bf16_cpu"):
        return ""
    flags = info.get("bf16_flags")
    if flags is None:
        return ", AMX or AVX-512-BF16"
    names = {"amx_bf16": "AMX", "avx512_bf16": "AVX-512-BF16"}
    return ", " + ", ".join(names[f] for f in flags) + ("" if "amx_bf16" in flags else ", no AMX")


def targets_met(res: Dict[str, Any], gpu: bool, tto_size: int, tto_evals: int,
                mem_size: int) -> List[Tuple[str, str, bool]]:
    """The Targets table of issues 5 and 22: (target, measured, met) from a run's results."""
    tto = res["time_to_objective"]
    pi = {row["size"]: row for row in res["per_iteration"]}
    speed_size = 512 if gpu else 256
    targets = []
    if speed_size in pi:
        sp = pi[speed_size]["baseline"] / pi[speed_size]["stlib auto"]
        targets.append((f">= 3x the baseline per iteration at {speed_size} px", f"{sp:.2f}x", sp >= 3))
    # results written before the default changed have only "stlib auto"
    auto = tto[DEFAULT_VARIANT] if DEFAULT_VARIANT in tto else tto["stlib auto"]
    if gpu:
        ok = auto["reached_at_s"] is not None and auto["reached_at_s"] <= 0.5
        targets.append((f"baseline's {tto_evals}-evaluation objective at {tto_size} px in <= 0.5 s",
                        "not reached" if auto["reached_at_s"] is None else f"{auto['reached_at_s']:.2f} s", ok))
    else:
        ratio = auto["ratio"]
        targets.append((f"time to the baseline's {tto_evals}-evaluation objective <= 1/10 of the baseline's",
                        "not reached" if ratio is None else f"{ratio:.3f} of the baseline's time",
                        ratio is not None and ratio <= 0.1))
        final, best = tto["baseline_final"], tto["baseline_best_seen"]
        if final > 1.01 * best:  # the tutorial's L-BFGS overshot at the end: its final image is not its result
            best_ratio = (None if auto.get("reached_best_at_s") is None
                          else auto["reached_best_at_s"] / tto["baseline_seconds"])
            targets.append((f"... the same for the baseline's best-seen objective {best:.5g} (its final {final:.4g} "
                            "is an overshoot)",
                            "not reached" if best_ratio is None else f"{best_ratio:.3f} of the baseline's time",
                            best_ratio is not None and best_ratio <= 0.1))
    worst = auto["worst_vs_baseline"]
    targets.append(("at equal wall time never worse than the baseline (best objective so far, at each of the "
                    "baseline's samples)", f"worst ratio {worst:.3f}", worst <= 1.0))
    stlib_mem = [m for m in res["memory"] if m["impl"] == "stlib" and m["size"] == mem_size
                 and m.get("precision") == "auto" and m.get("ok")]
    if stlib_mem and not gpu and mem_size == 512:
        peak = stlib_mem[0]["peak_rss"]
        above = peak - stlib_mem[0].get("start_rss", 0)
        targets.append(("peak RSS of a 512 px run <= 1.2 GB (the issue asks it of the CPU-only torch wheel)",
                        f"{_gb(peak)} (torch {torch.__version__})", peak <= 1.2e9))
        targets.append(("growth of a 512 px run above the imports <= 0.6 GB", _gb(above), above <= 0.6e9))
    for m in res["memory"]:
        if m["impl"] == "stlib" and m.get("ok") and m.get("estimate_bytes") and m.get("peak_rss") and not gpu:
            err = m["estimate_bytes"] / m["peak_rss"] - 1
            targets.append((f"estimate within 10 % of the measured peak ({m['size']} px, "
                            f"{m.get('precision_used', m['precision'])})", f"{100 * err:+.0f} %", abs(err) <= 0.1))
    for m in res["memory"]:
        if m["impl"] == "stlib" and m["size"] in (2048, 4096):
            key = "peak_gpu" if gpu else "peak_rss"
            limit = 40 * 2**30 if gpu else 24e9
            targets.append((f"{m['size']} px runs within {'40 GiB' if gpu else '24 GB'}",
                            f"{'ran' if m.get('ok') else 'failed'}, {_gb(m.get(key))}", bool(m.get("ok")) and
                            (m.get(key) or 0) <= limit))
    return targets


def rewrite(out_dir: Path) -> int:
    """RESULTS.md again from the last run's raw numbers in ``out_dir/out/`` (e.g. after the report's wording or
    targets changed)."""
    raw_dir = out_dir / "out"
    res = json.loads((raw_dir / "results.json").read_text())
    gpu = res["machine"]["device"].startswith("cuda")
    tto = res["time_to_objective"]
    mem_size = next((m["size"] for m in res["memory"] if m["impl"] == "baseline"), 512)
    if res["machine"].get("fast_bf16_cpu") and "bf16_flags" not in res["machine"] and not gpu:
        res["machine"]["bf16_flags"] = [f for f in stlib.engine.precision.FAST_BF16_FLAGS
                                        if f in stlib.engine.precision._cpuinfo_flags()]  # the same machine
    res["targets"] = targets_met(res, gpu, tto["size"], tto["evals"], mem_size)
    curves_file = raw_dir / "curves.json"
    if curves_file.exists():  # the plot again too, from the same run's curves
        try:
            plot(json.loads(curves_file.read_text()), tto["baseline_final"], tto["size"], tto["evals"],
                 out_dir / "objective_vs_time.png", tto.get("baseline_best_seen", math.inf))
        except ImportError:
            print("matplotlib is missing: no plot", flush=True)
    write_results(res, out_dir / "RESULTS.md", "objective_vs_time.png")
    (raw_dir / "results.json").write_text(json.dumps(res, indent=1, default=str))
    for target, measured, met in res["targets"]:
        print(f"  {'MET ' if met else 'MISS'} {target}: {measured}")
    return 0


def write_results(res: Dict[str, Any], path: Path, plot_name: str) -> None:
    """RESULTS.md: machine, per-iteration table, time to objective, memory, targets met or not."""
    info = res["machine"]
    lines = [
        "# stlib benchmark results",
        "",
        f"Generated by `benchmarks/run.py{' --quick' if res['quick'] else ''}` on {info['date']}.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {info['cpu']} ({info['cores']} cores{_bf16_label(info)}) |",
        f"| memory | {info['memory_gb']} GB |",
    ]
    if "gpu" in info:
        lines.append(f"| GPU | {info['gpu']} |")
    lines += [
        f"| torch | {info['torch']} (Python {info['python']}), {info['threads']} threads, "
        f"OMP_WAIT_POLICY={info['omp_wait_policy'] or 'unset'} |",
        f"| device | {info['device']} |",
        f"| load average at start (1/5/15 min) | {info['load_at_start']} |",
        f"| load average at end | {res.get('load_at_end', 'n/a')} |",
        f"| weights | {res['weights_source']} (preset {res['preset']}) |",
        "",
    ]
    if res.get("note"):
        lines += [f"**Note:** {res['note']}", ""]
    lines += [
        "## Milliseconds per iteration (one closure evaluation: forward, losses, backward, optimiser update)",
        "",
        "Median over interleaved rounds (baseline, stlib fp32, stlib auto, repeat), so that other jobs on the "
        "machine slow all three alike.",
        "",
    ]
    eager = "stlib auto, no CUDA graph"
    with_eager = any(eager in row for row in res["per_iteration"])
    ms = (lambda v: f"{v:.2f} ms") if info["device"].startswith("cuda") else (lambda v: f"{v:.0f} ms")
    lines += [
        "| size | baseline | stlib fp32 | stlib auto | auto = | speed-up auto vs baseline |"
        + (" auto without CUDA graph |" if with_eager else "") + " estimate (auto) |",
        "|---|---|---|---|---|---|" + ("---|" if with_eager else "") + "---|",
    ]
    for row in res["per_iteration"]:
        est = row.get("estimate_ms")
        graph = " (CUDA graph)" if row.get("cuda_graph", {}).get("stlib auto") else ""
        lines.append(
            f"| {row['size']} px | {ms(row['baseline'])} | {ms(row['stlib fp32'])} | {ms(row['stlib auto'])}{graph} "
            f"| {row['auto precision']} | **{row['baseline'] / row['stlib auto']:.2f}x** "
            + (f"| {ms(row[eager]) if eager in row else ''} " if with_eager else "")
            + f"| {'' if est is None else ms(est)} |")
    t = res["time_to_objective"]
    lines += [
        "",
        f"## Time to the baseline's objective at {t['size']} px",
        "",
        f"The baseline ran {t['evals']} closure evaluations (L-BFGS defaults, {t['evals'] // 20} `.step` calls) in "
        f"{t['baseline_seconds']:.1f} s and ended at objective **{t['baseline_final']:.5g}** (its best image on the way "
        f"scored {t['baseline_best_seen']:.5g}; the tutorial returns the last one). Every image is scored by the same "
        "float32 objective; stlib is credited when an iterate first scores at or below the target.",
        "",
        "| | reached the baseline's final objective after | ratio to the baseline's time | reached its best-seen after "
        "| objective of the returned image after the same number of steps | float32 steps "
        "| worst ratio to the baseline at equal wall time | run time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, _, options in TTO_VARIANTS:
        if name not in t:
            continue  # results of a run before this variant joined the race (run.py --rewrite)
        r = t[name]
        said = ", ".join(f"{k}={v}" for k, v in options.items()) or "default options"
        reached = "not reached" if r["reached_at_s"] is None else f"{r['reached_at_s']:.1f} s"
        ratio = "n/a" if r["ratio"] is None else f"**{r['ratio']:.2f}**"
        best = "not reached" if r["reached_best_at_s"] is None else f"{r['reached_best_at_s']:.1f} s"
        fp32_steps = "all" if r.get("fp32_steps") is None else str(r["fp32_steps"])
        lines.append(f"| {name} ({r['precision']}; {said}) | {reached} | {ratio} | {best} | {r['returned_objective']:.5g} "
                     f"| {fp32_steps} | {r['worst_vs_baseline']:.3f} | {r['seconds_total']:.1f} s |")
    lines += ["", f"Load average before / after this section: {t['load_before']} / {t['load_after']}.", "",
              f"![objective vs seconds]({plot_name})", "", "## Peak memory", "",
              "Each run in a fresh process; peak resident memory (VmHWM) on a CPU, peak allocated on a GPU. "
              "`import torch` alone is part of every figure, and differs between torch builds (README): the "
              "column after it is the growth above the process's resident memory once torch and stlib were imported.",
              "", "| run | ok | peak RSS | peak RSS above imports | peak GPU allocated | s/step | estimate |",
              "|---|---|---|---|---|---|---|"]
    for m in res["memory"]:
        label = f"{m['impl']} {m['size']} px, {m['steps']} steps" + (
            f", {m.get('precision_used', m.get('precision'))}" if m["impl"] == "stlib" else ", fp32")
        if m.get("sizes") and len(m["sizes"]) > 1:
            label += f", scales {m['sizes']}"
        est = m.get("estimate_bytes")
        above = (m["peak_rss"] - m["start_rss"]) if m.get("peak_rss") and m.get("start_rss") else None
        lines.append(f"| {label} | {'yes' if m.get('ok') else 'NO: ' + m.get('error', '')} | {_gb(m.get('peak_rss'))} "
                     f"| {_gb(above)} | {_gb(m.get('peak_gpu')) if 'peak_gpu' in m else ''} "
                     f"| {m.get('seconds_per_step', float('nan')):.2f} | {_gb(est) if est else ''} |")
    if res.get("largest_fit"):
        lines += ["", f"Largest size that ran: {res['largest_fit']} px."]
    lines += ["", "## Targets", "", f"The time-to-objective rows judge stylize's default options (\"{DEFAULT_VARIANT}\" "
              "above); the per-iteration row, precision auto.", "", "| target | measured | met |", "|---|---|---|"]
    for target, measured, met in res["targets"]:
        lines.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")
    lines.append("")
    kept = path.read_text().partition(KEPT_MARK) if path.exists() else ("", "", "")
    if kept[1]:  # sections other scripts write (benchmarks/gram_speed.py) survive a rerun of this one
        lines += [KEPT_MARK + kept[2].rstrip("\n"), ""]
    path.write_text("\n".join(lines))


# -------------------------------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps (~3 min)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--weights", default=os.environ.get("STLIB_WEIGHTS", "random"),
                        help="weights for everyone (default: $STLIB_WEIGHTS or random)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", default=str(HERE),
                        help="folder for RESULTS.md and the plot (raw numbers in its out/; default benchmarks/)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 2048/4096 px memory runs")
    parser.add_argument("--note", default="", help="a sentence for RESULTS.md (e.g. other jobs were running)")
    parser.add_argument("--rewrite", action="store_true",
                        help="rewrite RESULTS.md and its Targets table from the last run's raw numbers (--out's out/results.json) "
                             "(no measuring)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(json.loads(args.child))), flush=True)
        return 0
    if args.rewrite:
        return rewrite(Path(args.out))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_dir = out_dir / "out"  # a run with --out elsewhere never overwrites the last `make bench` run's numbers
    raw_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    info = machine_info(device)
    print(f"machine: {info}", flush=True)
    bench = Bench(device, args.weights)
    res: Dict[str, Any] = {"machine": info, "quick": args.quick, "weights_source": bench.model.weights_source,
                           "preset": bench.preset.name, "note": args.note}

    if args.quick:
        sizes, evals, rounds, tto_size, tto_evals = (64, 128), 4, 2, 128, 60
    elif gpu:
        sizes, evals, rounds, tto_size, tto_evals = (256, 512, 1024), 10, 3, 512, 300
    else:
        sizes, evals, rounds, tto_size, tto_evals = (128, 256, 512), 6, 2, 256, 300
    if not args.quick and not gpu:
        sizes_evals = {128: (8, 3), 256: (7, 2), 512: (4, 1)}
    else:
        sizes_evals = {s: (evals, rounds) for s in sizes}

    res["per_iteration"] = []
    for size in sizes:
        n, r = sizes_evals[size]
        row = {"size": size, **per_iteration(bench, size, n, r)}
        try:
            row["estimate_ms"] = 1000 * stlib.estimate(size, device=device, steps=1).seconds_per_step
        except Exception as err:  # the estimate is reported, never allowed to end the benchmark
            row["estimate_ms"] = None
            print(f"estimate failed: {err}", flush=True)
        res["per_iteration"].append(row)
        print(f"per iteration {size} px: " + ", ".join(
            f"{k} {v:.0f} ms" for k, v in row.items() if isinstance(v, float)), flush=True)

    print(f"time to objective at {tto_size} px ({tto_evals} evaluations) ...", flush=True)
    tto = time_to_objective(bench, tto_size, tto_evals)
    plot_name = "objective_vs_time.png"
    curves = tto.pop("curves")
    try:
        plot(curves, tto["baseline_final"], tto_size, tto_evals, out_dir / plot_name, tto["baseline_best_seen"])
    except ImportError:
        print("matplotlib is missing: no plot", flush=True)
    (raw_dir / "curves.json").write_text(json.dumps(curves))
    res["time_to_objective"] = tto
    print(json.dumps({k: v for k, v in tto.items()}, default=str), flush=True)

    threads = torch.get_num_threads()
    base = {"device": str(device), "weights": args.weights, "threads": threads, "precision": "auto"}
    mem_size = 256 if args.quick else (1024 if gpu else 512)
    # On a GPU: 4096 px (the 40 GiB target); 5632 px, the largest multiple of 512 whose 64-channel
    # feature maps stay under 2**31 elements (32-bit indexing in cuDNN); 8192 px, which is over it.
    large = [] if (args.skip_large or args.quick) else ([4096, 5632, 8192] if gpu else [2048])
    specs = [
        {**base, "impl": "baseline", "size": mem_size, "steps": 20},
        {**base, "impl": "stlib", "size": mem_size, "steps": 15, "scales": None},
        {**base, "impl": "stlib", "size": mem_size, "steps": 12, "scales": None, "precision": "fp32"},
    ] + [{**base, "impl": "stlib", "size": s, "steps": 3, "scales": None} for s in large]
    res["memory"] = []
    for spec in specs:
        print(f"memory: {spec['impl']} {spec['size']} px ...", flush=True)
        m = run_child(spec, timeout=240 if gpu else 900)
        res["memory"].append(m)
        print(f"  -> {m}", flush=True)
    fitted = [m["size"] for m in res["memory"] if m["impl"] == "stlib" and m.get("ok")]
    res["largest_fit"] = max(fitted) if fitted else None

    res["targets"] = targets_met(res, gpu, tto_size, tto_evals, mem_size)
    res["load_at_end"] = load_average()
    res["total_seconds"] = time.perf_counter() - t_start
    (raw_dir / "results.json").write_text(json.dumps(res, indent=1, default=str))
    write_results(res, out_dir / "RESULTS.md", plot_name)
    print(f"\nwrote {out_dir / 'RESULTS.md'} and {out_dir / plot_name} in {res['total_seconds'] / 60:.1f} min", flush=True)
    for target, measured, met in res["targets"]:
        print(f"  {'MET ' if met else 'MISS'} {target}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
