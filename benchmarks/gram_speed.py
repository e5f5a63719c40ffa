"""The Gram matrix at the speed of the convolutions (issue 17, section 3): one stylize step against the floor.

    .venv/bin/python benchmarks/gram_speed.py --write         # ~3 min on 2 cores; its section of RESULTS.md
    .venv/bin/python benchmarks/gram_speed.py --size 128 --rounds 3 --steps 40   # a quicker look

Side by side in one process, interleaved round by round so that other jobs slow every contestant alike:
- floor: the raw bf16 forward + backward of VGG-19 up to relu5_1 (plain modules under autocast; no losses,
  no optimiser);
- stlib before: a full stylize step (fast forward, losses, backward, L-BFGS) with the float32 Gram of
  issue 17's "before" (bf16 features converted to float32 chunk by chunk, summed by ``baddbmm_``);
- stlib two products: the same step with the two-product bf16 Gram (``fp32_gram(two_products=True)``);
- stlib after: the same step with the fused style loss (``gram_mse``, the default): G - A from one bf16 product;
- and where the gap between floor and step goes: "fast forward" (the floor through the engine's
  ``fast_features``: float32 conv1_1, index-free max-pool, cached casts) and "fast forward + Grams" (that plus
  the style layers' Gram matrices, forward and backward, with each variant's Gram); the rest of a step is the
  losses, the objective's bookkeeping and the L-BFGS update.
Then ``stylize`` runs of ``--steps`` steps, before and after (and before at 1 thread: how far the same maths
drifts when only the order of the sums changes), and how far apart their best objectives are.
Prints a Markdown table (``--write``: also into benchmarks/RESULTS.md, below run.py's part, which run.py keeps);
the raw numbers go to benchmarks/out/gram_speed.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: fairer on a shared machine

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterator  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import stlib  # noqa: E402
from stlib.engine import objective as O  # noqa: E402
from stlib.engine import precision as P  # noqa: E402
from stlib.engine.fast_features import fast_features  # noqa: E402
from stlib.engine.objective import compute_targets, objective  # noqa: E402
from stlib.engine.optim import make_optimizer  # noqa: E402
from stlib.engine.steps import Closure, EagerStep  # noqa: E402
from stlib.layers import deepest  # noqa: E402
from stlib.presets import preset_for  # noqa: E402

KEPT_MARK = "<!-- below: written by other benchmark scripts, kept by run.py -->"  # = run.py's
BEGIN, END = "<!-- gram_speed.py -->", "<!-- /gram_speed.py -->"


VARIANTS = ("before", "two products", "after")


@contextmanager
def gram(variant: str) -> Iterator[None]:
    """Run the objective with the Gram of ``variant``: "before" (issue 17's before: the chunked float32 Gram,
    ``fp32_gram(..., two_products=False)``), "two products" (two bf16 products give a float32 G, then the mse)
    or "after" (stlib's default: G - A from one bf16 product, ``gram_mse``)."""
    real_loss, real_gram = O.fast_style_layer_loss, P.fp32_gram
    P.fp32_gram = functools.partial(real_gram, two_products=variant != "before")  # type: ignore[assignment]
    O.fast_style_layer_loss = functools.partial(real_loss, fused=variant == "after")  # type: ignore[assignment]
    try:
        yield
    finally:
        O.fast_style_layer_loss, P.fp32_gram = real_loss, real_gram


def floor_step(model: stlib.VGG19Features, x: torch.Tensor, last: str) -> Callable[[], None]:
    """The raw bf16 forward+backward of VGG-19 up to ``last``: plain modules, autocast, a sum as the loss."""
    def step() -> None:
        image = x.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            h = model.normalize(image).contiguous(memory_format=torch.channels_last)
            for name, module in model.layers.named_children():
                h = module(h)
                if name == last:
                    break
        h.float().sum().backward()
    return step


def part_step(model: stlib.VGG19Features, x: torch.Tensor, last: str,
              style_grams: dict[str, torch.Tensor]) -> Callable[[], None]:
    """The floor through the engine's ``fast_features``, plus those layers' style losses against
    ``style_grams`` (``O.fast_style_layer_loss``: the Gram of the variant in force), forward and backward."""
    def step() -> None:
        image = x.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feats = fast_features(model, image, [*style_grams, last])
        loss = feats[last].float().sum()
        for name, target in style_grams.items():
            loss = loss + O.fast_style_layer_loss(feats[name], target)
        loss.backward()
    return step


def stlib_step(model: stlib.VGG19Features, content: torch.Tensor, style: torch.Tensor) -> Callable[[], None]:
    """One stylize step (the closure: fast forward, losses, backward; then the L-BFGS update)."""
    p = preset_for(model.weights_source)
    with P.autocast("bf16", "cpu"):
        targets = compute_targets(model, content, [style], p.content_layers, p.style_layers, [1.0])
    x = content.clone().requires_grad_(True)

    def loss_fn(image: torch.Tensor) -> dict:
        return objective(model, image, targets, p.content_layers, p.style_layers, p.content_weight,
                         p.style_weight, p.tv_weight)

    closure = Closure(EagerStep(loss_fn, x, "bf16"), x, lambda values, image: None)
    optimizer = make_optimizer("lbfgs", x, None)

    def step() -> None:
        optimizer.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
    return step


def endpoints(model: stlib.VGG19Features, steps: int, sizes: list[int], threads: int) -> list[str]:
    """Table rows: the best objective of ``steps``-step runs (two photos + swirls, each size), before, after and
    before at 1 thread (the noise floor of comparing trajectories), and both Grams' objective at one image."""
    rows = []
    for photo in ("astronaut", "chelsea"):
        for size in sizes:
            c, s = stlib.load_image(photo, size), stlib.load_image("swirls", size)
            best, image = {}, None
            for label, variant, n_threads in (*((v, v, threads) for v in VARIANTS), ("1 thread", "before", 1)):
                torch.set_num_threads(n_threads)
                with gram(variant):
                    r = stlib.stylize(c, s, model=model, size=size, steps=steps, precision="bf16", progress=False,
                                      rtol=0.0)
                best[label] = min(h["total"] for h in r.history)
                image = r.image if label == "before" else image
            torch.set_num_threads(threads)
            at = {}  # each Gram's objective at the "before" run's result: the same image, the same bf16 network
            for variant in VARIANTS:
                with gram(variant), P.autocast("bf16", "cpu"):
                    p = preset_for(model.weights_source)
                    t = compute_targets(model, c, [s], p.content_layers, p.style_layers, [1.0])
                    at[variant] = float(objective(model, image.contiguous(memory_format=torch.channels_last), t,
                                                  p.content_layers, p.style_layers, p.content_weight,
                                                  p.style_weight, p.tv_weight)["total"])
            b = best["before"]
            rows.append(f"| {photo} + swirls, {size} px | {b:.6g} | {best['two products']:.6g} | {best['after']:.6g} "
                        f"| {(best['two products'] - b) / b:+.1e} | {(best['after'] - b) / b:+.1e} | "
                        f"{(best['1 thread'] - b) / b:+.1e} | "
                        f"{(at['two products'] - at['before']) / at['before']:+.1e} "
                        f"| {(at['after'] - at['before']) / at['before']:+.1e} |")
    return rows


def timed(step: Callable[[], None], n: int) -> list[tuple[float, float]]:
    """(wall ms, CPU ms of this process) of ``n`` steps. On a shared machine the CPU time is the steadier one:
    waiting for a core held by another job adds wall time, not CPU time (idle OpenMP threads sleep)."""
    out = []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        out.append(((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default 6)")
    ap.add_argument("--per-round", type=int, default=4, help="timed steps per contestant per round (default 4)")
    ap.add_argument("--steps", type=int, default=100, help="steps of the objective runs (default 100)")
    ap.add_argument("--objective-size", type=int, default=128, help="size of the objective runs (default 128)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--endpoint-sizes", default="96,128", help="sizes of the endpoint runs (default 96,128)")
    ap.add_argument("--write", action="store_true", help="put the table into benchmarks/RESULTS.md")
    ap.add_argument("--note", default="", help="a sentence for RESULTS.md (e.g. other jobs were running)")
    args = ap.parse_args()
    note = f"; {args.note}" if args.note else ""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    flags = set(P._cpuinfo_flags())
    model = stlib.load_vgg19("random").to(memory_format=torch.channels_last)
    p = preset_for(model.weights_source)
    last = deepest([*p.content_layers, *p.style_layers])
    content = stlib.resize(stlib.load_image("astronaut"), args.size)
    style = stlib.resize(stlib.load_image("swirls"), args.size)
    load_before = os.getloadavg()
    steps = {}
    for variant in VARIANTS:
        with gram(variant):
            steps[variant] = stlib_step(model, content, style)
    x_cl = content.contiguous(memory_format=torch.channels_last)
    floor = floor_step(model, x_cl, last)
    with P.autocast("bf16", "cpu"):
        grams = compute_targets(model, content, [style], {}, p.style_layers, [1.0]).style
    contestants = {"floor": (floor, "after"), "fast forward": (part_step(model, x_cl, last, {}), "before"),
                   **{f"fast forward + Grams {v}": (part_step(model, x_cl, last, grams), v) for v in VARIANTS},
                   **{f"stlib {v}": (steps[v], v) for v in VARIANTS}}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in contestants}
    for name, (fn, variant) in contestants.items():  # warm-up: kernels, allocator, the L-BFGS history
        with gram(variant):
            timed(fn, 3)
    for _ in range(args.rounds):
        for name, (fn, variant) in contestants.items():
            with gram(variant):
                times[name] += timed(fn, args.per_round)
    med = {name: statistics.median(w for w, _ in t) for name, t in times.items()}
    cpu = {name: statistics.median(c for _, c in t) for name, t in times.items()}
    load_mid = os.getloadavg()

    runs: dict[str, list[float]] = {}
    small_c = stlib.resize(content, args.objective_size)
    small_s = stlib.resize(style, args.objective_size)
    threads = torch.get_num_threads()
    for label, variant, n_threads in (*((v, v, threads) for v in VARIANTS), ("before, 1 thread", "before", 1)):
        torch.set_num_threads(n_threads)
        with gram(variant):
            r = stlib.stylize(small_c, small_s, model=model, size=args.objective_size, steps=args.steps,
                              precision="bf16", progress=False, rtol=0.0)
        best, curve = float("inf"), []
        for h in r.history:  # the best objective so far: what the run would return (rejected trial steps aside)
            best = min(best, h["total"])
            curve.append(best)
        runs[label] = curve
    torch.set_num_threads(threads)
    n = min(len(c) for c in runs.values())
    ends = endpoints(model, args.steps, [int(v) for v in args.endpoint_sizes.split(",")], threads)

    def apart(a: str, b: str) -> tuple[float, float]:
        rel = [abs(x - y) / abs(y) for x, y in zip(runs[a][:n], runs[b][:n])]
        return rel[-1], max(rel)
    load_end = os.getloadavg()

    amx = "AMX" if "amx_bf16" in flags else "no AMX"
    bf16 = "AVX-512-BF16" if "avx512_bf16" in flags else "no AVX-512-BF16"
    loads = " -> ".join(" ".join(f"{v:.1f}" for v in load) for load in (load_before, load_mid, load_end))
    lines = [BEGIN, "## The Gram at the speed of the convolutions (issue 17; `benchmarks/gram_speed.py`)", "",
             f"Generated on {time.strftime('%Y-%m-%d %H:%M')} at {args.size} px: {torch.get_num_threads()} threads, "
             f"CPU with {amx}, {bf16}; load average (1/5/15 min) {loads}{note}. Median ms per step over "
             f"{args.rounds} interleaved rounds x {args.per_round} steps; **before** = float32 Gram from bf16 "
             "features converted chunk by chunk (`baddbmm_`), **two products** = two bf16 products, float32 sums "
             "(`fp32_gram(two_products=True)`), then the mean squared difference to the target; **after** = "
             "G - A from one bf16 product that starts its float32 sums from the target (`gram_mse`, the default "
             "since issue 17's third stop).", "",
             "| | wall ms per step (median) | quartiles | x floor | CPU ms per step (median) | x floor |",
             "|---|---|---|---|---|---|"]
    for name, t in times.items():
        q = statistics.quantiles([w for w, _ in t], n=4)
        lines.append(f"| {name} | {med[name]:.0f} | {q[0]:.0f}-{q[2]:.0f} | {med[name] / med['floor']:.2f} "
                     f"| {cpu[name]:.0f} | {cpu[name] / cpu['floor']:.2f} |")
    (end, most), (end_ctl, most_ctl) = apart("after", "before"), apart("before, 1 thread", "before")
    end_two, most_two = apart("two products", "before")
    lines += ["", f"Best objective so far over {n}-step `stylize` runs at {args.objective_size} px (bf16, same "
              f"start): before {runs['before'][n - 1]:.6g}, two products {runs['two products'][n - 1]:.6g}, after "
              f"{runs['after'][n - 1]:.6g}. Relative difference from before, at the end and the largest over the "
              f"run: two products {end_two:.1e} / {most_two:.1e}, after {end:.1e} / {most:.1e}. For scale, the "
              f"same float32-Gram run at 1 thread instead of {threads} (the same maths, summed in another order): "
              f"{end_ctl:.1e} / {most_ctl:.1e}.", "",
              f"The best objective of {args.steps}-step runs (bf16, from the photo), more pairs and sizes: the "
              "relative change with each Gram next to the change from running the float32 Gram at 1 thread "
              f"instead of {threads} (what the endpoints of two runs of the same maths differ by), and the Grams' "
              "objectives at one image (the before run's result):", "",
              "| run | before | two products | after | two products vs before | after vs before | before at 1 "
              "thread vs before | same image: two products vs before | same image: after vs before |",
              "|---|---|---|---|---|---|---|---|---|", *ends, END]
    section = "\n".join(lines)
    print("\n" + section)
    if args.write:
        results = HERE / "RESULTS.md"
        text = results.read_text() if results.exists() else ""
        if BEGIN in text:
            text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
        else:
            text = text.rstrip("\n") + ("" if KEPT_MARK in text else "\n\n" + KEPT_MARK) + "\n\n" + section + "\n"
        results.write_text(text)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "gram_speed.json").write_text(json.dumps({
        "size": args.size, "flags": sorted(f for f in flags if "bf16" in f or "amx" in f),
        "load": [load_before, load_mid, load_end], "ms_wall_cpu": times, "median_ms": med, "median_cpu_ms": cpu,
        "best_objective": runs}, indent=1))


if __name__ == "__main__":
    main()
