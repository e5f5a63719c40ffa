"""Where the time of one stylize step goes on a CUDA GPU (a diagnostic, not part of the benchmark's figures).

    python benchmarks/gpu_step_profile.py            # ~30 s on an H100/H200; prints a table

For each size: the captured forward+backward graph alone (replays back to back), the whole stylize step
(graph + L-BFGS + bookkeeping, from the run's history), the same with cuDNN's autotuner on
(``torch.backends.cudnn.benchmark``, plus what the tuning itself cost), and the eager step; then the
GPU kernels of one eager 512 px forward+backward that take the most time.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stlib  # noqa: E402
from stlib.engine.precision import autocast, memory_format, resolve_precision  # noqa: E402
from stlib.presets import preset_for  # noqa: E402
from stlib.engine.objective import compute_targets, objective  # noqa: E402
from stlib.engine.steps import GraphedStep, detached  # noqa: E402


def graph_ms(model, size: int, replays: int = 50) -> tuple:
    """(ms per replay of the captured fwd+bwd, seconds the capture with its warm-up took)."""
    dev = torch.device("cuda")
    prec = resolve_precision("auto", dev)
    fmt = memory_format(prec, dev)
    model.to(memory_format=fmt)
    p = preset_for(model.weights_source)
    c = stlib.resize(stlib.load_image("astronaut"), size).to(dev)
    s = stlib.resize(stlib.load_image("swirls"), size).to(dev)
    with autocast(prec, dev):
        targets = compute_targets(model, c, [s], p.content_layers, p.style_layers, [1.0])
    x = c.clone().requires_grad_(True)

    def run():
        with autocast(prec, dev, cache=False):
            terms = objective(model, x.contiguous(memory_format=fmt), targets, p.content_layers, p.style_layers,
                              p.content_weight, p.style_weight, p.tv_weight)
        terms["total"].backward()
        return detached(terms)

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    g = GraphedStep(run, x)
    torch.cuda.synchronize()
    capture = time.perf_counter() - t0
    for _ in range(5):
        g()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(replays):
        g()
    torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t0) / replays, capture


def step_ms(model, size: int, graph: bool, steps: int = 30) -> float:
    c, s = stlib.load_image("astronaut"), stlib.load_image("swirls")
    r = stlib.stylize(c, s, size=size, steps=steps, model=model, progress=False, rtol=0.0, cuda_graph=graph)
    times = [h["time"] for h in r.history]
    return 1000 * statistics.median(b - a for a, b in zip(times[5:], times[6:]))


def main() -> None:
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    model = stlib.load_vgg19("random", device="cuda")
    print("| size | graph replay only | stylize step (graph) | eager step | graph replay, cudnn.benchmark "
          "| stylize step, cudnn.benchmark | capture (+ tuning) |")
    print("|---|---|---|---|---|---|---|")
    for size in (256, 512, 1024):
        torch.backends.cudnn.benchmark = False
        g, cap = graph_ms(model, size)
        st, eager = step_ms(model, size, True), step_ms(model, size, False)
        torch.backends.cudnn.benchmark = True
        gb, capb = graph_ms(model, size)
        stb = step_ms(model, size, True)
        torch.backends.cudnn.benchmark = False
        print(f"| {size} px | {g:.2f} ms | {st:.2f} ms | {eager:.2f} ms | {gb:.2f} ms | {stb:.2f} ms "
              f"| {cap * 1000:.0f} ms (+tuning: {capb * 1000:.0f} ms) |", flush=True)

    from torch.profiler import ProfilerActivity, profile

    dev = torch.device("cuda")
    p = preset_for(model.weights_source)
    c = stlib.resize(stlib.load_image("astronaut"), 512).to(dev)
    model.to(memory_format=torch.channels_last)
    with autocast("bf16", dev):
        targets = compute_targets(model, c, [c.flip(-1)], p.content_layers, p.style_layers, [1.0])
    x = c.clone().requires_grad_(True)

    def eager_step() -> None:
        x.grad = None
        with autocast("bf16", dev):
            terms = objective(model, x.contiguous(memory_format=torch.channels_last), targets, p.content_layers,
                              p.style_layers, p.content_weight, p.style_weight, p.tv_weight)
        terms["total"].backward()
        torch.cuda.synchronize()

    for _ in range(3):
        eager_step()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        eager_step()
    averages = prof.key_averages()
    for key in ("cuda_time_total", "device_time_total"):
        try:
            print(averages.table(sort_by=key, row_limit=18, max_name_column_width=60))
            break
        except (AttributeError, KeyError, ValueError) as err:
            print(f"(sort by {key}: {err})")

if __name__ == "__main__":
    main()
