"""L-BFGS variants on stylize's objective at one size, in one sitting: plain (torch's one-evaluation step, what
stylize ran before issue 10), safeguarded (stylize's default now) and torch.optim.LBFGS with a strong-Wolfe
line search (the eager-only alternative), against the tutorial baseline's objective.

    .venv/bin/python benchmarks/optim_compare.py                  # 256 px, ~15-25 min on a busy 2-core CPU
    .venv/bin/python benchmarks/optim_compare.py --size 128 --baseline-evals 100 --steps 60   # a smoke run

Writes benchmarks/OPTIM_RESULTS.md and benchmarks/optim_vs_time.png (raw curves in benchmarks/out/optim.json).
Every image is scored by the same float32 objective (run.py's scorer). Not part of the test-suite.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see run.py

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Any, Dict, List, Tuple  # noqa: E402

import torch  # noqa: E402

from run import HERE, Bench, _diffs, load_average, machine_info  # noqa: E402

import stlib  # noqa: E402
from stlib.engine.precision import autocast, memory_format, resolve_precision  # noqa: E402
from stlib.transfer import compute_targets, objective  # noqa: E402

Curve = List[Tuple[float, float]]  # (seconds, objective of the image then)


def rises(values: List[float], factor: float = 2.0) -> int:
    """Evaluations above ``factor`` x the best before them."""
    best, count = math.inf, 0
    for v in values:
        count += v > factor * best
        best = min(best, v)
    return count


def run_stylize(bench: Bench, size: int, steps: int, optimizer: str, score) -> Dict[str, Any]:
    snaps: List[Tuple[float, torch.Tensor]] = []
    result = bench.stlib(size, steps, "auto", optimizer=optimizer, every=1,
                         callback=lambda info: snaps.append((info.elapsed, info.image)))
    # the image a run would return at each moment: its best so far by its own (bf16) loss
    curve, best_loss, best_score = [], math.inf, math.inf
    for (t, img), h in zip(snaps, result.history):
        if h["total"] < best_loss:
            best_loss, best_score = h["total"], score(img)
        curve.append((t, best_score))
    totals = result.losses()
    return {"curve": curve, "evaluations": len(totals), "rises_2x": rises(totals),
            "rejected": sum(not h.get("accepted", True) for h in result.history), "seconds": result.elapsed,
            "final": curve[-1][1]}


def run_strong_wolfe(bench: Bench, size: int, evals: int, score) -> Dict[str, Any]:
    """torch.optim.LBFGS(line_search_fn="strong_wolfe") on the same objective, precision and memory format as
    stylize's eager path (pixels clamped inside the closure, as the tutorial does)."""
    t0 = time.perf_counter()
    dev, model, p = bench.device, bench.model, bench.preset
    prec = resolve_precision("auto", dev)
    c, s = bench.images(size)
    model.to(memory_format=memory_format(prec, dev))
    with autocast(prec, dev):
        targets = compute_targets(model, c, [s], p.content_layers, p.style_layers, [1.0])
    x = c.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1.0, max_iter=20, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)
    totals: List[float] = []
    curve: Curve = []
    best_loss, best_score, scoring = math.inf, math.inf, 0.0

    class Done(Exception):
        pass

    def closure() -> torch.Tensor:
        nonlocal best_loss, best_score, scoring
        if len(totals) >= evals:
            raise Done()  # the budget ends inside a line search too
        with torch.no_grad():
            x.clamp_(0, 1)
        opt.zero_grad()
        with autocast(prec, dev):
            terms = objective(model, x.contiguous(memory_format=memory_format(prec, dev)), targets,
                              p.content_layers, p.style_layers, p.content_weight, p.style_weight, p.tv_weight)
        terms["total"].backward()
        v = float(terms["total"].detach())
        totals.append(v)
        if v < best_loss:
            t_score = time.perf_counter()
            best_loss, best_score = v, score(x.detach())
            scoring += time.perf_counter() - t_score  # not the optimiser's time
        curve.append((time.perf_counter() - t0 - scoring, best_score))
        return terms["total"]

    try:
        while True:
            opt.step(closure)
    except Done:
        pass
    return {"curve": curve, "evaluations": len(totals), "rises_2x": rises(totals), "rejected": None,
            "seconds": time.perf_counter() - t0 - scoring, "final": curve[-1][1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--baseline-evals", type=int, default=300)
    ap.add_argument("--target", type=float, default=None,
                    help="the baseline's objective from an earlier run (benchmarks/RESULTS.md) instead of running it")
    ap.add_argument("--steps", type=int, default=150, help="steps (= evaluations) per stlib run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds for the per-step cost")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--weights", default=os.environ.get("STLIB_WEIGHTS", "random"))
    ap.add_argument("--rewrite", action="store_true", help="only rewrite the report from benchmarks/out/optim.json")
    args = ap.parse_args()
    if args.rewrite:
        out = json.loads((HERE / "out" / "optim.json").read_text())
        write(out, out["baseline"]["final"])
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = Bench(stlib.resolve_device("cpu"), args.weights)
    size = args.size
    out: Dict[str, Any] = {"machine": machine_info(bench.device), "size": size, "load_before": load_average()}
    score = bench.scorer(size)

    # per-step cost, interleaved: plain, safeguarded, plain, ...
    per: Dict[str, List[float]] = {"lbfgs-plain": [], "lbfgs": []}
    for _ in range(args.rounds):
        for name in per:
            result = bench.stlib(size, 9, "auto", optimizer=name)
            per[name] += _diffs([h["time"] for h in result.history])
    out["ms_per_step"] = {k: 1000 * statistics.median(v) for k, v in per.items()}
    print("ms per step", out["ms_per_step"], flush=True)

    if args.target is None:
        snaps: List[Tuple[float, torch.Tensor]] = []
        final, timing = bench.baseline(size, args.baseline_evals, lambda n, t, img: snaps.append((t, img.clone()))
                                       if n % 10 == 0 else None)
        target = score(final)
        out["baseline"] = {"final": target, "seconds": timing["setup"] + timing["optimise"], "evals": args.baseline_evals,
                           "curve": [(timing["setup"] + t, score(img)) for t, img in snaps]}
    else:
        target = args.target
        out["baseline"] = {"final": target, "seconds": None, "evals": args.baseline_evals, "given": True}
    print("baseline", target, out["baseline"]["seconds"], flush=True)

    runs = {"plain L-BFGS (before)": run_stylize(bench, size, args.steps, "lbfgs-plain", score),
            "safeguarded L-BFGS (after)": run_stylize(bench, size, args.steps, "lbfgs", score),
            "torch strong-Wolfe L-BFGS": run_strong_wolfe(bench, size, args.steps, score)}
    for name, r in runs.items():
        r["reached_s"] = next((t for t, v in r["curve"] if v <= target), None)
        print(name, {k: v for k, v in r.items() if k != "curve"}, flush=True)
    out["runs"] = runs
    out["load_after"] = load_average()
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "optim.json").write_text(json.dumps(out, default=str))
    write(out, target)
    return 0


def _at(curve: Curve, seconds: float) -> float:
    """The objective of the image a run held at ``seconds`` (inf before its first evaluation)."""
    return min((v for t, v in curve if t <= seconds), default=math.inf)


def write(out: Dict[str, Any], target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, size = out["runs"], out["size"]
    horizon = min(r["seconds"] for r in runs.values())
    checkpoints = [horizon * f for f in (0.25, 0.5, 1.0)]
    lines = [
        f"# L-BFGS variants at {size} px (`benchmarks/optim_compare.py`)", "",
        f"Machine: {out['machine'].get('cpu', '?')}; load average before / after: {out['load_before']} / "
        f"{out['load_after']} (a shared machine: compare within this file only). precision auto, offline weights, "
        "astronaut + swirls, every image scored by the same float32 objective; a run is credited with the best "
        "image it has seen by its own loss (what it would return if stopped then).", "",
        f"Per step (median over interleaved rounds): plain {out['ms_per_step']['lbfgs-plain']:.0f} ms, "
        f"safeguarded {out['ms_per_step']['lbfgs']:.0f} ms.", "",
        (f"Baseline (tutorial, {out['baseline']['evals']} evaluations): objective {target:.5f}, given on the command "
         "line (from benchmarks/RESULTS.md's run of the same baseline), not re-run in this sitting."
         if out["baseline"].get("given") else
         f"Baseline (tutorial, {out['baseline']['evals']} evaluations): objective {target:.5f} in "
         f"{out['baseline']['seconds']:.0f} s."), "",
        "Each evaluation is one forward and backward pass, the cost that dominates on a CPU, and the two stlib "
        "variants cost the same per step (above); on a machine whose load changes during the sitting, the "
        "evaluation columns are the fair comparison, the seconds only within a quiet sitting.", "",
        "| run | evaluations | >2x rises | rejected | reached the baseline's objective after | "
        + " | ".join(f"after {n} evaluations" for n in (25, 50, 100)) + " | "
        + " | ".join(f"objective at {c:.1f} s" for c in checkpoints) + " |",
        "|---" * (8 + len(checkpoints)) + "|",
    ]
    for name, r in runs.items():
        curve = r["curve"]
        k = next((i + 1 for i, (_, v) in enumerate(curve) if v <= target), None)
        reached = "not reached" if k is None else f"{k} evaluations, {curve[k - 1][0]:.1f} s"
        lines.append(f"| {name} | {r['evaluations']} | {r['rises_2x']} | {r['rejected'] if r['rejected'] is not None else '-'} "
                     f"| {reached} | " + " | ".join(f"{curve[n - 1][1]:.5f}" if n <= len(curve) else "-" for n in (25, 50, 100))
                     + " | " + " | ".join(f"{_at(curve, c):.5f}" for c in checkpoints) + " |")
    (HERE / "OPTIM_RESULTS.md").write_text("\n".join(lines) + "\n\n![objective vs seconds](optim_vs_time.png)\n")
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in runs.items():
        ax.plot([t for t, _ in r["curve"]], [v for _, v in r["curve"]], label=name)
    ax.axhline(target, color="gray", linestyle="--", label="baseline's final objective")
    ax.set_yscale("log")
    ax.set_xlim(0, horizon * 1.05)
    ax.set_xlabel("seconds")
    ax.set_ylabel("objective of the best image so far")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(HERE / "optim_vs_time.png", dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
