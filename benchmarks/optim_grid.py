"""Does the optimiser move in every precision? A grid of stylize runs (issue 18): content images x settings x
precisions x sizes, each reported as best objective / fp32's at equal steps, best / start, stop reason, rejected
trials and seconds.

    .venv/bin/python benchmarks/optim_grid.py --quick          # ~5 min on a 2-core CPU: 64 px, 60 steps
    .venv/bin/python benchmarks/optim_grid.py                  # the full grid: 64/128/192 px, 150 steps (~hours)
    .venv/bin/python benchmarks/optim_grid.py --compare before.json after.json   # the side-by-side table + plot

Writes benchmarks/out/optim_grid_<label>.json (git-ignored); --compare writes benchmarks/OPTIM_GRID_<sizes>px.md
and benchmarks/optim_grid_<sizes>px.png. --noise measures bf16's evaluation noise instead (EVAL_NOISE).
Targets: no run stalled; reduced precision's best at most 1.5x fp32's.
tests/test_optim_grid.py runs a fast subset (both cases of the issue) with ``case``/``run_case`` from here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: spinning threads on a shared box

import torch  # noqa: E402

import stlib  # noqa: E402
from stlib import course  # noqa: E402

HERE = Path(__file__).resolve().parent
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
SYNTHETIC = ("quadrants", "gradient", "flat", "noise", "painting")
STYLE = "swirls"


def synthetic(name: str, side: int = 96) -> torch.Tensor:
    """A synthetic content image (1, 3, side, side): flat quadrants (red, green / blue, white), a smooth
    diagonal gradient, one flat grey, seeded uniform noise, or the painting itself."""
    if name == "quadrants":
        x, h = torch.zeros(1, 3, side, side), side // 2
        x[0, 0, :h, :h] = 1
        x[0, 1, :h, h:] = 1
        x[0, 2, h:, :h] = 1
        x[0, :, h:, h:] = 1
        return x
    if name == "gradient":
        ramp = torch.linspace(0, 1, side)
        g = (ramp[:, None] + ramp[None, :]) / 2
        return torch.stack([g, 1 - g, g.flip(0)]).unsqueeze(0)
    if name == "flat":
        return torch.full((1, 3, side, side), 0.5)
    if name == "noise":
        return torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(1))
    if name == "painting":
        return stlib.load_image(STYLE, side)
    raise ValueError(f"unknown synthetic content {name!r}")


def case(setting: str, content: str = "chelsea") -> dict:
    """The stylize keyword arguments of one grid setting (precision, size and steps are added by the caller).

    "defaults" (stylize/CLI), "style:relu3_1" (the course's style-only run from noise up to that layer, average
    pooling), "content:relu2_2" (content-only reconstruction from noise), "adam", "max"/"avg" pooling, "multiscale".
    """
    image = stlib.load_image(content) if content in PHOTOS else synthetic(content)
    kw: dict = {"content": image, "style": STYLE}
    if setting.startswith("style:"):
        last = stlib.STYLE_LAYERS.index(setting.split(":")[1])
        kw.update(content_weight=0, tv_weight=0, init="noise", pooling="avg",
                  style_layers=list(stlib.STYLE_LAYERS[: last + 1]))
    elif setting.startswith("content:"):
        kw.update(style_weight=0, tv_weight=0, init="noise", content_layers=[setting.split(":")[1]])
    elif setting == "adam":
        kw.update(optimizer="adam")
    elif setting in ("max", "avg"):
        kw.update(pooling=setting)
    elif setting == "multiscale":
        kw.update(scales=2)
    elif setting != "defaults":
        raise ValueError(f"unknown setting {setting!r}")
    return kw


_MODELS: dict = {}


def run_case(setting: str, content: str, precision: str, size: int, steps: int) -> dict:
    """One run of the grid: its best and start objective, stop reason, rejected trials and seconds."""
    kw = case(setting, content)
    pooling = kw.pop("pooling", "max")
    if pooling not in _MODELS:
        _MODELS[pooling] = course.load_model(pooling=pooling, note=False)
    t0 = time.perf_counter()
    r = stlib.stylize(**kw, size=size, steps=steps, precision=precision, model=_MODELS[pooling], progress=False)
    seconds = time.perf_counter() - t0
    totals = [h["total"] for h in r.history]
    return {"setting": setting, "content": content, "precision": precision, "size": size, "steps": steps,
            "start": totals[0], "best": min(totals), "stop": r.stop_reason.value if r.stop_reason else "-",
            "rejected": sum(not h.get("accepted", True) for h in r.history), "evaluations": len(totals),
            "seconds": round(seconds, 2)}


def grid(quick: bool) -> list[tuple[str, str]]:
    """(setting, content) pairs: every content with the defaults, then the other settings on one photo."""
    contents = ("chelsea",) + SYNTHETIC if quick else PHOTOS + SYNTHETIC
    layers = ("relu1_1", "relu3_1", "relu5_1") if quick else stlib.STYLE_LAYERS
    content_layers = ("relu2_2", "relu4_2") if quick else ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
    pairs = [("defaults", c) for c in contents]
    pairs += [(f"style:{name}", "chelsea") for name in layers]
    pairs += [(f"content:{name}", "chelsea") for name in content_layers]
    pairs += [(s, "chelsea") for s in ("adam", "avg", "multiscale")]
    pairs += [("defaults", "astronaut")] if quick else []  # a second photo even in quick mode
    return pairs


def measure_noise(sizes: list[int], points: int = 6) -> list[dict]:
    """The relative rounding noise of one bf16 evaluation of the objective: at the grid's start images and at
    nearby points (+-5e-4 uniform), the size of ``f_bf16(x) / f_fp32(x) - 1`` (rms, max) and how much it changes
    between the start and a nearby point (jump): what ``EVAL_NOISE`` is set from.
    Each value is a stylize run's first evaluation (steps=1) from that exact image."""
    from stlib.engine.scales import initial_image

    rows = []
    gen = torch.Generator().manual_seed(0)
    for size in sizes:
        for setting, content in (("defaults", "quadrants"), ("defaults", "chelsea"), ("style:relu3_1", "chelsea"),
                                 ("style:relu5_1", "chelsea"), ("content:relu4_2", "chelsea")):
            kw = case(setting, content)
            pooling = kw.pop("pooling", "max")
            model = _MODELS.setdefault(pooling, course.load_model(pooling=pooling, note=False))
            photo = stlib.load_image(kw["content"], size)
            x0 = initial_image(kw.pop("init", "content"), photo, photo, 0)
            rel = []
            for k in range(points):
                x = x0 if k == 0 else (x0 + 1e-3 * (torch.rand(x0.shape, generator=gen) - 0.5)).clamp(0, 1)
                f = {p: stlib.stylize(**kw, init=x, size=size, steps=1, precision=p, model=model,
                                      progress=False).history[0]["total"] for p in ("fp32", "bf16")}
                rel.append(f["bf16"] / f["fp32"] - 1)
            row = {"setting": setting, "content": content, "size": size,
                   "rms": float(torch.tensor(rel).square().mean().sqrt()), "max": max(abs(r) for r in rel),
                   "jump": max(abs(r - rel[0]) for r in rel[1:])}  # off the start image: what a first trial sees
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def compare(before_path: Path, after_path: Path, md: Path, png: Path) -> None:
    """The side-by-side table (markdown) and plot of two grid runs (e.g. main's code and this branch's)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before, after = json.loads(before_path.read_text()), json.loads(after_path.read_text())
    key = lambda r: (r["setting"], r["content"], r["size"], r["precision"])  # noqa: E731
    fp32 = {label: {key(r)[:3]: r["best"] for r in d["runs"] if r["precision"] == "fp32"}
            for label, d in (("before", before), ("after", after))}
    rows = [f"# Optimiser grid (issue 18): {before['label']} vs {after['label']}", "",
            f"Machine: {after['machine']}. {after['note']}", "",
            f"Steps per run: {after['steps']}; sizes {after['sizes']}. best/fp32: the run's best objective over fp32's "
            "best at the same steps (each scored in its own precision); best/start: best over the first evaluation. "
            "Targets: nothing stalled (and no 'converged' at the start), best/fp32 <= 1.5.", "",
            "| setting | content | px | prec | best/fp32 before | after | best/start before | after "
            "| stop before | after | rejected before | after | s before | after |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    b_runs = {key(r): r for r in before["runs"]}
    points = []
    for r in after["runs"]:
        b = b_runs.get(key(r))
        if b is None:
            continue
        rb, ra = b["best"] / fp32["before"][key(b)[:3]], r["best"] / fp32["after"][key(r)[:3]]
        points.append((key(r), rb, ra, b["best"] / b["start"], r["best"] / r["start"]))
        rows.append(f"| {r['setting']} | {r['content']} | {r['size']} | {r['precision']} | {rb:.3g} | {ra:.3g} | "
                    f"{b['best'] / b['start']:.2e} | {r['best'] / r['start']:.2e} | {b['stop']} | {r['stop']} | "
                    f"{b['rejected']} | {r['rejected']} | {b['seconds']:.1f} | {r['seconds']:.1f} |")
    tb = sum(b["seconds"] for b in before["runs"])
    ta = sum(r["seconds"] for r in after["runs"])
    rows += ["", f"Total seconds: before {tb:.0f}, after {ta:.0f} (one process each; how they ran: the note above; a "
             "shared machine makes them noisy)."]
    md.write_text("\n".join(rows) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = [f"{k[0]} / {k[1]} / {k[3]}" for k, *_ in points]
    for ax, (i, j, title, target) in zip(axes, ((1, 2, "best / fp32's best (equal steps)", 1.5),
                                                (3, 4, "best / start", None))):
        ys = range(len(points))
        ax.scatter([p[i] for p in points], ys, marker="o", facecolors="none", edgecolors="tab:red", label="before")
        ax.scatter([p[j] for p in points], ys, marker="o", color="tab:blue", s=14, label="after")
        ax.set_xscale("log")
        ax.set_title(title)
        if target:
            ax.axvline(target, color="grey", ls="--", lw=1)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels if ax is axes[0] else [], fontsize=6)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"optimiser grid, {after['sizes']} px, {after['steps']} steps: {before['label']} vs {after['label']}")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 px, 60 steps, fewer contents and layers")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--sizes", type=int, nargs="+", default=None)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--label", default="after")
    parser.add_argument("--note", default="")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--noise", action="store_true", help="measure bf16's relative evaluation noise instead")
    args = parser.parse_args()
    if args.noise:
        measure_noise(args.sizes or [64, 192])
        return
    if args.compare:
        sizes = "_".join(str(v) for v in json.loads(args.compare[1].read_text())["sizes"])
        compare(*args.compare, HERE / f"OPTIM_GRID_{sizes}px.md", HERE / f"optim_grid_{sizes}px.png")
        return
    steps = args.steps or (60 if args.quick else 150)
    sizes = args.sizes or ([64] if args.quick else [64, 128, 192])
    runs = []
    for size in sizes:
        for setting, content in grid(args.quick):
            for precision in args.precisions:
                r = run_case(setting, content, precision, size, steps)
                print(json.dumps(r), flush=True)
                runs.append(r)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    (out / f"optim_grid_{args.label}.json").write_text(json.dumps(
        {"label": args.label, "machine": machine, "note": args.note, "steps": steps, "sizes": sizes, "runs": runs},
        indent=1))


if __name__ == "__main__":
    main()
