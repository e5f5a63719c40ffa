"""Issue 22: can the optimisation itself converge faster? Levers and a bound, measured side by side at 256 px.

    .venv/bin/python benchmarks/convergence.py            # all three parts, 2 threads: ~35 min on a quiet 2-core CPU
    .venv/bin/python benchmarks/convergence.py --only pyramid --steps 100
    .venv/bin/python benchmarks/convergence.py --only evaluations     # part 3 alone (~17 min); keeps the others

1. ``pyramid``: L-BFGS on a Laplacian-pyramid parameterisation of the image, x = sum_k g_k up(z_k) (level k at
   1/2^k of the size, gain g_k), instead of on the pixels. For L-BFGS this is a preconditioner: a coarse level
   with gain g moves large areas g^2 times further per unit of gradient. The same bf16 objective as ``stylize``
   (``engine.objective``, the preset's weights), the same safeguarded L-BFGS (``lbfgs_history`` pairs), the same
   projection onto [0, 1] after each step (the finest level takes the clamp's correction). Gains "1" is plain pixels and
   reproduces ``stylize``'s default run (a check of the harness). Step counts are deterministic at a fixed thread
   count, so this part does not depend on the machine's load.
2. ``scales``: coarse-to-fine (``stylize(scales=...)``) against one scale, timed in one process; seconds until
   the float32 objective (``run.py``'s scorer) first reaches ``--target`` (default: the tutorial baseline's
   best objective in the last ``make bench`` run, from benchmarks/out/results.json).
3. ``evaluations``: how many evaluations of the objective (forward + backward) quasi-Newton needs at best.
   ``torch.optim.LBFGS`` in float32 on the float32 objective itself (the scorer's), with the tutorial's 100 pairs,
   without and with a strong-Wolfe line search, from the photo and from the palette start; the image is clamped
   to [0, 1] before each evaluation, as the tutorial does, except in the "unclamped" run (a relaxation: its pixels
   may leave [0, 1], so it bounds what the clamp costs). Every evaluation is logged, so the count to
   ``--target`` is exact. A time ratio follows from it: evaluations x (cost of one bf16 evaluation / one of the
   baseline's) / the baseline's evaluations.

Writes benchmarks/CONVERGENCE.md (tables) and benchmarks/out/convergence.json (every curve); ``--only`` re-runs one
part and keeps the others' results from convergence.json. No test asserts any of this; findings are in
benchmarks/README.md (issue 22).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("STLIB_WEIGHTS", "random")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as R  # noqa: E402  (benchmarks/run.py: the shared set-up and the float32 scorer)

from stlib.engine.objective import compute_targets, objective  # noqa: E402
from stlib.engine.optim import EVAL_NOISE, SafeguardedLBFGS, lbfgs_history  # noqa: E402
from stlib.engine.precision import autocast, memory_format  # noqa: E402
from stlib.engine.scales import initial_image  # noqa: E402
from stlib.engine.steps import EagerStep  # noqa: E402

PYRAMIDS = ("1", "1,2,4", "1,2,4,8,16")
SCALES = ("one", "0.5,1:100,250", "0.25,0.5,1:150,100,250")
SHOWN_STEPS = (20, 35, 50, 65, 95, 140)
#: Part 3's optimisers: "start,pairs,line search[,unclamped]" (the tutorial's own setting is "content,100,none").
EVALUATIONS = ("content,100,none", "content,100,strong_wolfe", "palette,100,none", "palette,100,strong_wolfe",
               "palette,100,strong_wolfe,unclamped")
SHOWN_EVALS = (50, 100, 150, 200, 250, 300)


def synthesis(levels: Sequence[torch.Tensor], size: Tuple[int, int], gains: Sequence[float]) -> torch.Tensor:
    """x = sum_k gains[k] * bilinear_upsample(levels[k]) at ``size``: the image (1, 3, H, W) the levels make."""
    out = torch.zeros(1, 3, *size)
    for z, g in zip(levels, gains):
        up = z if tuple(z.shape[-2:]) == tuple(size) else F.interpolate(z, size=size, mode="bilinear",
                                                                          align_corners=False)
        out = out + g * up
    return out


def pyramid_curve(bench: "R.Bench", score: Callable[[torch.Tensor], float], size: int, gains: Sequence[float],
                  steps: int, every: int = 5) -> List[Tuple[int, float]]:
    """Objective (float32) every ``every`` steps of bf16 L-BFGS on the pyramid with ``gains`` (finest first)."""
    dev, p, model = bench.device, bench.preset, bench.model
    content, style = bench.images(size)
    model.to(memory_format=memory_format("bf16", dev))
    with autocast("bf16", dev):
        targets = compute_targets(model, content, [style], p.content_layers, p.style_layers, [1.0], True)
    loss_fn = functools.partial(objective, model, targets=targets, content_layers=p.content_layers,
                                style_layers=p.style_layers, content_weight=p.content_weight,
                                style_weight=p.style_weight, tv_weight=p.tv_weight, gram_norm=True)
    H, W = content.shape[-2:]
    shapes = [(max(1, H >> k), max(1, W >> k)) for k in range(len(gains))]
    counts = [3 * h * w for h, w in shapes]
    z = torch.zeros(sum(counts))
    z[: counts[0]] = content.reshape(-1) / gains[0]  # start at the photo, all of it in the finest level
    z.requires_grad_(True)

    def levels(flat: torch.Tensor) -> List[torch.Tensor]:
        return [part.view(1, 3, h, w) for part, (h, w) in zip(flat.split(counts), shapes)]

    x = content.clone().requires_grad_(True)
    step = EagerStep(loss_fn, x, "bf16")
    opt = SafeguardedLBFGS(z, lr=1.0, history_size=lbfgs_history(content.numel()), floor=0.0, noise=EVAL_NOISE["bf16"])
    gain: List[float] = []

    def closure() -> torch.Tensor:
        with torch.enable_grad():
            zz = z.detach().requires_grad_(True)
            image = synthesis(levels(zz), (H, W), gains)
            with torch.no_grad():
                x.copy_(image.clamp(0, 1))
            x.grad = None
            terms = step()
            (grad,) = torch.autograd.grad(image, zz, x.grad)
        if not gain:  # as stylize's Closure: a first loss below 1 is lifted to ~1 for the optimiser
            total = float(terms["total"])
            gain.append(1.0 / total if 0 < total < 1 else 1.0)
        z.grad = grad * gain[0]
        return terms["total"] * gain[0]

    curve = []
    for i in range(1, steps + 1):
        opt.step(closure)
        with torch.no_grad():  # the projection onto [0, 1], as stylize clamps its pixels after each step
            parts = levels(z)
            image = synthesis(parts, (H, W), gains)
            parts[0].add_((image.clamp(0, 1) - image) / gains[0])
        if i % every == 0:
            with torch.no_grad():
                curve.append((i, score(synthesis(levels(z), (H, W), gains).clamp(0, 1))))
    return curve


def scales_curve(bench: "R.Bench", score: Callable[[torch.Tensor], float], size: int, spec: str,
                 steps: int) -> Dict[str, Any]:
    """Seconds and objective at the last scale for ``spec`` ("one", or "fractions:steps" like "0.5,1:100,250")."""
    if spec == "one":
        kwargs: Dict[str, Any] = {"steps": steps}
    else:
        fractions, counts = spec.split(":")
        kwargs = {"steps": [int(n) for n in counts.split(",")], "scales": [float(f) for f in fractions.split(",")]}
    snaps: List[Tuple[float, torch.Tensor]] = []
    result = bench.stlib(size, kwargs.pop("steps"), "auto", every=1,
                         callback=lambda info: snaps.append((info.elapsed, info.image)), **kwargs)
    last = [(t, img) for t, img in snaps if max(img.shape[-2:]) == size]
    curve = [(round(t, 2), score(img)) for k, (t, img) in enumerate(last) if k % 5 == 0 or k == len(last) - 1]
    return {"seconds": result.elapsed, "curve": curve}


def evaluations_curve(bench: "R.Bench", score: Callable[[torch.Tensor], float], size: int, spec: str,
                      evals: int) -> Tuple[List[float], float]:
    """The float32 objective at each of ``evals`` evaluations of float32 ``torch.optim.LBFGS`` set by ``spec``
    ("start,pairs,line search[,unclamped]"; start "content" or "palette", line search "none" or "strong_wolfe"),
    and ``score`` (the float32 objective of an image clamped to [0, 1]) of the last image."""
    start, pairs, search, *free = spec.split(",")
    p, model = bench.preset, bench.model
    content, style = bench.images(size)
    model.to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        targets = compute_targets(model, content, [style], p.content_layers, p.style_layers, [1.0])
    x = initial_image(start, content, style, 0).clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=evals, max_eval=evals, history_size=int(pairs),
                            line_search_fn=None if search == "none" else search, tolerance_grad=0, tolerance_change=0)
    values: List[float] = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        if not free:
            with torch.no_grad():
                x.clamp_(0, 1)
        total = objective(model, x, targets, p.content_layers, p.style_layers, p.content_weight, p.style_weight,
                          p.tv_weight)["total"]
        total.backward()
        values.append(float(total.detach()))
        return total

    while len(values) < evals:
        before = len(values)
        opt.step(closure)
        if len(values) == before:  # converged by torch's own test: nothing more to count
            break
    return values[:evals], score(x.detach())


def default_target() -> float:
    path = HERE / "out" / "results.json"
    try:
        return float(json.loads(path.read_text())["time_to_objective"]["baseline_best_seen"])
    except (OSError, KeyError, ValueError, TypeError):
        return 0.50251  # make bench, 2026-12-06 03:48


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("pyramid", "scales", "evaluations"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=150, help="pyramid: L-BFGS steps per variant")
    parser.add_argument("--scale-steps", type=int, default=320, help="scales: steps of the one-scale run")
    parser.add_argument("--evals", type=int, default=300, help="evaluations: objective evaluations per optimiser")
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    target = args.target if args.target is not None else default_target()
    bench = R.Bench(torch.device("cpu"), os.environ["STLIB_WEIGHTS"])
    score = bench.scorer(args.size)
    out: Dict[str, Any] = {"size": args.size, "threads": args.threads, "target": target,
                           "load_before": R.load_average(), "cpu": R.machine_info(bench.device).get("cpu")}
    if args.only in (None, "pyramid"):
        out["pyramid"] = {}
        for spec in PYRAMIDS:
            out["pyramid"][spec] = pyramid_curve(bench, score, args.size, [float(g) for g in spec.split(",")],
                                                 args.steps)
            print(json.dumps({"pyramid": spec, "curve": out["pyramid"][spec]}), flush=True)
    if args.only in (None, "scales"):
        out["scales"] = {}
        for spec in SCALES:
            res = scales_curve(bench, score, args.size, spec, args.scale_steps)
            res["reached_s"] = next((t for t, v in res["curve"] if v <= target), None)
            out["scales"][spec] = res
            print(json.dumps({"scales": spec, "seconds": res["seconds"], "reached_s": res["reached_s"]}), flush=True)
    if args.only in (None, "evaluations"):
        out["evaluations"] = {}
        for spec in EVALUATIONS:
            values, last = evaluations_curve(bench, score, args.size, spec, args.evals)
            reached = next((n for n, v in enumerate(values, 1) if v <= target), None)
            out["evaluations"][spec] = {"values": values, "reached": reached, "last_clamped": last}
            print(json.dumps({"evaluations": spec, "reached": reached, "best": min(values)}), flush=True)
    out["load_after"] = R.load_average()
    saved = HERE / "out" / "convergence.json"
    if args.only and saved.exists():  # keep the parts not re-run (their own load and target are in the report)
        previous = json.loads(saved.read_text())
        for part in ("pyramid", "scales", "evaluations"):
            if part not in out and part in previous:
                out[part] = previous[part]
                meta = previous.get("kept", {}).get(part) or {k: previous.get(k) for k in ("load_before", "load_after",
                                                                                          "target")}
                out.setdefault("kept", {})[part] = meta
    (HERE / "out").mkdir(exist_ok=True)
    saved.write_text(json.dumps(out, indent=1))
    write_report(out, HERE / "CONVERGENCE.md")
    return 0


def write_report(out: Dict[str, Any], path: Path) -> None:
    lines = [f"# Convergence levers at {out['size']} px (benchmarks/convergence.py)", "",
             f"CPU: {out['cpu']}; {out['threads']} threads; load {out['load_before']} -> {out['load_after']}; "
             f"offline weights, astronaut + swirls, the offline preset.", ""]
    if "pyramid" in out:
        lines += ["## L-BFGS on a Laplacian pyramid (objective after n bf16 steps; gains finest first)", "",
                  "| gains | " + " | ".join(f"step {n}" for n in SHOWN_STEPS) + " |",
                  "|---|" + "---|" * len(SHOWN_STEPS)]
        for spec, curve in out["pyramid"].items():
            at = dict(curve)
            lines.append(f"| {spec} | " + " | ".join(f"{at[n]:.4g}" if n in at else "-" for n in SHOWN_STEPS) + " |")
        lines.append("")
    if "scales" in out:
        lines += [f"## Coarse-to-fine: seconds until the objective first reaches {out['target']:.5g}", "",
                  "| plan (fractions: steps) | reached after | run time | final objective |", "|---|---|---|---|"]
        one = out["scales"].get("one", {}).get("reached_s")
        for spec, res in out["scales"].items():
            reached = res["reached_s"]
            ratio = f" ({reached / one:.2f} of one scale's)" if reached and one else ""
            lines.append(f"| {spec} | {'never' if reached is None else f'{reached:.1f} s{ratio}'} | "
                         f"{res['seconds']:.1f} s | {res['curve'][-1][1]:.4g} |")
        lines.append("")
    if "evaluations" in out:
        lines += [f"## Evaluations of float32 torch L-BFGS until the objective first reaches {out['target']:.5g}", "",
                  "Every evaluation is one forward and backward pass; the columns are the best objective so far "
                  "(of the evaluated image: unclamped in the unclamped run), the last one the final image's, clamped "
                  "to [0, 1].", "",
                  "| start, pairs, line search | reached after | " + " | ".join(f"eval {n}" for n in SHOWN_EVALS)
                  + " | final image, clamped |", "|---|---|" + "---|" * len(SHOWN_EVALS) + "---|"]
        for spec, res in out["evaluations"].items():
            vals = res["values"]
            best = [f"{min(vals[:n]):.4g}" if n <= len(vals) else "-" for n in SHOWN_EVALS]
            reached = res["reached"]
            lines.append(f"| {spec} | {'never' if reached is None else f'{reached} evaluations'} | "
                         + " | ".join(best) + f" | {res['last_clamped']:.4g} |")
        lines.append("")
    for part, meta in out.get("kept", {}).items():
        lines.append(f"*{part}*: kept from an earlier run (load {meta['load_before']} -> {meta['load_after']}, "
                     f"target {meta['target']}).")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
