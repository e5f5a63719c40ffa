"""Feed-forward style networks (issue 21): training time, apply speed, and quality against optimisation.

    .venv/bin/python benchmarks/realtime.py                 # ~6 min on a 2-core CPU: writes benchmarks/REALTIME.md
    .venv/bin/python benchmarks/realtime.py --minutes 1     # a quicker look
    .venv/bin/python benchmarks/realtime.py --device cuda   # on a GPU: 256 px crops, Johnson's network, 1500 steps

Writes ``benchmarks/REALTIME.md`` (or ``--out``), the training curve ``realtime_curve.png`` and the sample grid
``realtime_samples.png`` next to it. Measured: the training run (steps, seconds, probe objective), the apply time
per image (median of ``--repeats`` forward passes after a warm-up) at 256 and 512 px for the CPU and GPU networks
in float32 and in the engine's reduced precision, and, on the held-out photos, the objective reached by the network
against ``stylize`` (L-BFGS, ``--opt-steps`` steps), both scored in float32 with the same targets.
No test asserts any of these times.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see benchmarks/README.md)

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def apply_ms(net, size: int, precision: str, device: torch.device, repeats: int) -> float:
    """Median milliseconds of one forward pass on a (1, 3, size, size*3/4) photo, after one warm-up."""
    from stlib.engine.precision import autocast

    photo = torch.rand(1, 3, size * 3 // 4, size, generator=torch.Generator().manual_seed(0)).to(device)
    net = net.to(device).eval()
    times = []
    with torch.no_grad(), autocast(precision, device):
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            net(photo)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="swirls")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time limit (CPU; default 3)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--opt-steps", type=int, default=100, help="L-BFGS steps of the optimisation baseline")
    parser.add_argument("--note", default="", help="a sentence for the report (e.g. the machine was shared)")
    parser.add_argument("--out", default=str(HERE / "REALTIME.md"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import stlib
    from stlib import measures, plots
    from stlib.engine.precision import resolve_precision
    from stlib.images import load_image
    from stlib.style_training import HELD_OUT_PHOTOS, score, train_style
    from stlib.transform_net import JOHNSON, SMALL, TransformNet

    dev = torch.device(args.device)
    gpu = dev.type == "cuda"
    vgg = stlib.load_vgg19(os.environ.get("STLIB_WEIGHTS", "random"), device=dev)
    low = resolve_precision("auto", dev)
    size = 256 if gpu else 128
    loads = [load_average()]
    result = train_style(args.style, model=vgg, size=size, steps=1500 if gpu else 10_000,
                         time_limit=None if gpu else args.minutes * 60, every=20, progress=True)
    loads.append(load_average())
    probes = [(h["step"], h["time"], h["probe"]) for h in result.history if "probe" in h]
    out = Path(args.out)
    fig = plots.plot_losses({"training batch": result.history}, x="time")
    ax = fig.axes[0]
    ax.plot([p[1] for p in probes], [p[2] for p in probes], "o-", label="probe crops", markersize=3)
    ax.legend(frameon=False)
    plots.save_figure(fig, out.with_name("realtime_curve.png"))

    terms = stlib.preset_for(vgg.weights_source)
    painting = load_image(args.style, size)
    rows, panels = [], {}
    for name in HELD_OUT_PHOTOS:
        photo = load_image(name, size)
        stylised = result.apply(photo)  # the first pass at a new size sets up its kernels: not timed
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            stylised = result.apply(photo)
            timings.append(1000 * (time.perf_counter() - t0))
        net_ms = statistics.median(timings)
        opt = stlib.stylize(photo, painting, model=vgg, size=size, steps=args.opt_steps, progress=False)
        rows.append({"photo": name, "photo_objective": score(vgg, photo, photo, painting, terms),
                     "net_objective": score(vgg, stylised, photo, painting, terms), "net_ms": net_ms,
                     "opt_objective": score(vgg, opt.image, photo, painting, terms), "opt_s": opt.elapsed,
                     "net_pattern_px": measures.pattern_scale(stylised, photo),
                     "opt_pattern_px": measures.pattern_scale(opt.image, photo)})
        panels.update({name: photo, f"{name}: network ({net_ms:.0f} ms)": stylised,  # titles are keys: one per photo
                       f"{name}: stylize, {args.opt_steps} steps ({opt.elapsed:.1f} s)": opt.image})
    panels["painting"] = painting
    plots.save_figure(plots.show_images(panels, ncols=3, size=2.6), out.with_name("realtime_samples.png"))
    loads.append(load_average())

    speeds = []
    for label, config in (("CPU network (16 ch, 3 blocks)", SMALL), ("Johnson's network (32 ch, 5 blocks)", JOHNSON)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = TransformNet(config)
        for side in (256, 512):
            for precision in ("fp32", low) if low != "fp32" else ("fp32",):
                speeds.append({"network": label, "params": net.parameter_count(), "px": side,
                               "precision": precision, "ms": apply_ms(net, side, precision, dev, args.repeats)})
    loads.append(load_average())

    where = torch.cuda.get_device_name(dev) if gpu else f"CPU, {torch.get_num_threads()} threads ({platform.processor() or platform.machine()})"
    s = result.settings
    lines = [
        "# Feed-forward style networks: training time, apply speed, quality vs optimisation",
        "",
        f"`benchmarks/realtime.py` on {where}, torch {torch.__version__}, VGG weights `{vgg.weights_source}`, "
        f"precision auto = {low}. Load average (1/5/15 min) at start, after training, after the comparison, at the "
        f"end: {'; '.join(loads)}." + (f" {args.note}" if args.note else ""),
        "",
        "## Training",
        "",
        f"Style `{args.style}`, {size} px crops, batch {s['batch_size']}, Adam lr {s['lr']}, network "
        f"{result.net.config.channels} channels / {result.net.config.residual_blocks} residual blocks "
        f"({result.net.parameter_count():,} parameters): **{s['steps']} steps in {result.elapsed:.0f} s** "
        f"({result.elapsed / max(1, s['steps']):.2f} s per step, set-up included); probe objective "
        f"{probes[0][2]:.4g} (step {probes[0][0]}) -> best {s['best_probe']:.4g} (step {s['best_step']}). "
        "Curve: `realtime_curve.png`; samples: `realtime_samples.png`.",
        "",
        "## Quality against time on the held-out photos (objective scored in float32, same targets)",
        "",
        "Pattern: `stlib.measures.pattern_scale` of what each answer added to the photo (the distance at which its "
        "luminance autocorrelation falls below 1/2): broad patches measure many pixels, fine grain a few.",
        "",
        "| photo | objective of the photo | network: objective | network: time | network: pattern | "
        "stylize (L-BFGS): objective | stylize: time | stylize: pattern |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['photo']} | {r['photo_objective']:.4g} | {r['net_objective']:.4g} | {r['net_ms']:.0f} ms | "
                     f"{r['net_pattern_px']:.1f} px | {r['opt_objective']:.4g} ({args.opt_steps} steps) | "
                     f"{r['opt_s']:.1f} s | {r['opt_pattern_px']:.1f} px |")
    lines += ["", "## Apply time per image (median of %d forward passes, 4:3 photo, no gradients)" % args.repeats, "",
              "| network | parameters | long edge | precision | ms per image |", "|---|---|---|---|---|"]
    for r in speeds:
        lines.append(f"| {r['network']} | {r['params']:,} | {r['px']} px | {r['precision']} | {r['ms']:.0f} |")
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"training": {k: v for k, v in s.items()}, "probes": probes,
                                                    "comparison": rows, "apply": speeds, "loads": loads},
                                                   indent=1, default=str))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
