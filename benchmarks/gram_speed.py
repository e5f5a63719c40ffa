"""The Gram matrix at the speed of the convolutions (issue 17, section 3): one stylize step against the floor.

    .venv/bin/python benchmarks/gram_speed.py                 # ~3 min on 2 cores; writes benchmarks/out/gram_speed.json
    .venv/bin/python benchmarks/gram_speed.py --size 128 --rounds 3 --steps 40   # a quicker look

Side by side in one process, interleaved round by round so that other jobs slow every contestant alike:
- floor: the raw bf16 forward + backward of VGG-19 up to relu5_1 (plain modules under autocast; no losses,
  no optimiser);
- stlib before: a full stylize step (fast forward, losses, backward, L-BFGS) with the float32 Gram of
  issue 17's "before" (bf16 features converted to float32 chunk by chunk, summed by ``baddbmm_``);
- stlib after: the same step with the two-product bf16 Gram (``stlib.engine.precision._split_half_gram``).
Then two ``stylize`` runs of ``--steps`` steps, before and after, and how far apart their objectives are.
Prints a Markdown table; the raw numbers go to benchmarks/out/gram_speed.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep: fairer on a shared machine

import argparse  # noqa: E402
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
from stlib.engine import precision as P  # noqa: E402
from stlib.engine.objective import compute_targets, objective  # noqa: E402
from stlib.engine.optim import make_optimizer  # noqa: E402
from stlib.engine.steps import Closure, EagerStep  # noqa: E402
from stlib.layers import deepest  # noqa: E402
from stlib.presets import preset_for  # noqa: E402


@contextmanager
def gram(variant: str) -> Iterator[None]:
    """Run with the Gram of ``variant``: "after" (today's), or "before" (the chunked float32 Gram)."""
    real = P._split_half_gram_is_exact
    if variant == "before":
        P._split_half_gram_is_exact = lambda device, dtype: False  # type: ignore[assignment]
    try:
        yield
    finally:
        P._split_half_gram_is_exact = real


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


def timed(step: Callable[[], None], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds (default 6)")
    ap.add_argument("--per-round", type=int, default=4, help="timed steps per contestant per round (default 4)")
    ap.add_argument("--steps", type=int, default=100, help="steps of the two objective runs (default 100)")
    args = ap.parse_args()
    torch.manual_seed(0)
    flags = set(P._cpuinfo_flags())
    model = stlib.load_vgg19("random").to(memory_format=torch.channels_last)
    p = preset_for(model.weights_source)
    last = deepest([*p.content_layers, *p.style_layers])
    content = stlib.resize(stlib.load_image("astronaut"), args.size)
    style = stlib.resize(stlib.load_image("swirls"), args.size)
    load_before = os.getloadavg()
    with gram("before"):
        before = stlib_step(model, content, style)
    after = stlib_step(model, content, style)
    floor = floor_step(model, content.contiguous(memory_format=torch.channels_last), last)
    contestants = {"floor": (floor, "after"), "stlib before": (before, "before"), "stlib after": (after, "after")}
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for name, (fn, variant) in contestants.items():  # warm-up: kernels, allocator, the L-BFGS history
        with gram(variant):
            timed(fn, 3)
    for _ in range(args.rounds):
        for name, (fn, variant) in contestants.items():
            with gram(variant):
                times[name] += timed(fn, args.per_round)
    med = {name: statistics.median(t) for name, t in times.items()}
    load_mid = os.getloadavg()

    runs = {}
    for variant in ("before", "after"):
        with gram(variant):
            r = stlib.stylize(content, style, model=model, size=args.size, steps=args.steps, precision="bf16",
                              progress=False, rtol=0.0)
        runs[variant] = [h["total"] for h in r.history]
    n = min(len(runs["before"]), len(runs["after"]))
    rel = [abs(a - b) / abs(b) for a, b in zip(runs["after"][:n], runs["before"][:n])]
    load_end = os.getloadavg()

    amx = "AMX" if "amx_bf16" in flags else "no AMX"
    bf16 = "AVX-512-BF16" if "avx512_bf16" in flags else "no AVX-512-BF16"
    print(f"\n{args.size} px, {torch.get_num_threads()} threads, CPU: {amx}, {bf16}; load average "
          f"{' '.join(f'{v:.1f}' for v in load_before)} -> {' '.join(f'{v:.1f}' for v in load_mid)} -> "
          f"{' '.join(f'{v:.1f}' for v in load_end)}")
    print(f"median ms per step over {args.rounds} interleaved rounds x {args.per_round} steps\n")
    print("| | ms per step (median) | quartiles | x floor |")
    print("|---|---|---|---|")
    for name, t in times.items():
        q = statistics.quantiles(t, n=4)
        print(f"| {name} | {med[name]:.0f} | {q[0]:.0f}-{q[2]:.0f} | {med[name] / med['floor']:.2f} |")
    print(f"\nobjective over {n} steps: final before {runs['before'][n - 1]:.6g}, after {runs['after'][n - 1]:.6g}, "
          f"relative difference at the end {rel[-1]:.2e}, largest on the way {max(rel):.2e}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "gram_speed.json").write_text(json.dumps({
        "size": args.size, "flags": sorted(f for f in flags if "bf16" in f or "amx" in f),
        "load": [load_before, load_mid, load_end], "ms": times, "median_ms": med,
        "objective_before": runs["before"], "objective_after": runs["after"]}, indent=1))


if __name__ == "__main__":
    main()
