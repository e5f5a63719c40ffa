"""Count, for the course's key runs, evaluations whose loss exceeds 2x the best before them (issue 10).

    python benchmarks/rises.py            # writes benchmarks/RISES.md and benchmarks/rises.png

Runs notebook 06's plain transfer (astronaut + swirls, 192 px, 60 steps, precision auto) and notebook 01's
content reconstructions from noise (chelsea, 192 px, 150 steps, average pooling, one layer each), once with
stylize's safeguarded L-BFGS (``optimizer="lbfgs"``, the default) and once with the plain one-evaluation
L-BFGS that stylize ran before (``"lbfgs-plain"``), on the offline weights.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import stlib  # noqa: E402

HERE = Path(__file__).resolve().parent


def rises(totals: list[float]) -> int:
    """Evaluations above twice the best loss seen before them."""
    count, best = 0, float("inf")
    for t in totals:
        if t > 2 * best:
            count += 1
        best = min(best, t)
    return count


def runs(steps_scale: float = 1.0):
    vgg = stlib.load_vgg19("random")
    vgg_avg = stlib.load_vgg19("random", pooling="avg")
    n06, n01 = max(2, round(60 * steps_scale)), max(2, round(150 * steps_scale))
    yield "nb06 plain", dict(content="astronaut", style="swirls", size=192, steps=n06, model=vgg)
    for layer in ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"):
        yield f"nb01 {layer}", dict(content="chelsea", style="swirls", size=192, steps=n01, model=vgg_avg,
                                    style_weight=0, content_layers=[layer], tv_weight=0, init="noise")


def main() -> None:
    scale = float(os.environ.get("RISES_STEPS_SCALE", "1"))
    rows, fig_data = [], []
    for name, kwargs in runs(scale):
        row = [name]
        for optimizer in ("lbfgs-plain", "lbfgs"):
            t0 = time.perf_counter()
            r = stlib.stylize(precision="auto", progress=False, optimizer=optimizer, **kwargs)
            totals = r.losses("total")
            row += [rises(totals), f"{r.steps}", str(r.stop_reason.value if r.stop_reason else "-"),
                    f"{min(totals):.4g}", f"{totals[-1] / min(totals):.2f}", f"{time.perf_counter() - t0:.0f}"]
            fig_data.append((name, optimizer, totals))
        rows.append(row)
        print(row, flush=True)
    names = sorted({n for n, _, _ in fig_data}, key=[n for n, _, _ in fig_data].index)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8))
    for ax, name in zip(axes, names):
        for n, opt, totals in fig_data:
            if n == name:
                ax.semilogy(range(1, len(totals) + 1), totals, label="before (plain)" if opt == "lbfgs-plain"
                            else "after (safeguarded)")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("evaluation", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "rises.png", dpi=90)
    head = ("| run | plain: >2x rises | steps | stop | best | last/best | s | safeguarded: >2x rises | steps | stop "
            "| best | last/best | s |\n|" + "---|" * 13)
    lines = [f"# Rises above 2x the best so far (issue 10)\n",
             f"`python benchmarks/rises.py` on {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__}, Python {sys.version.split()[0]}, offline weights, "
             f"precision auto. Plot: `benchmarks/rises.png`.\n", head]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    (HERE / "RISES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
