"""Peak resident memory of one CPU stylize run, stage by stage, in this fresh process.

    .venv/bin/python benchmarks/peak_rss.py                 # 512 px, 15 steps, estimate first (as the CLI does)
    .venv/bin/python benchmarks/peak_rss.py --size 256 --no-estimate
    PYTHONPATH=. /path/to/other-venv/bin/python benchmarks/peak_rss.py   # e.g. with the CPU-only torch wheel

Prints VmHWM (the process's peak resident memory) after `import torch`, after loading the offline weights,
after `stlib.estimate` and after the run, and the run's seconds per step. `import torch` alone differs a
lot between torch builds (the CUDA wheel maps its CUDA libraries even on a CPU), so compare the growth
above it as well as the total.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("STLIB_WEIGHTS", "random")


def peak_gb() -> float:
    match = re.search(r"VmHWM:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) * 1024 / 1e9 if match else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--no-estimate", action="store_true")
    args = parser.parse_args()

    import torch

    after_torch = peak_gb()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import stlib

    model = stlib.load_vgg19("random")
    after_model = peak_gb()
    if not args.no_estimate:
        print(f"estimate: {stlib.estimate(args.size, steps=args.steps, model=model).message}")
    after_estimate = peak_gb()
    result = stlib.stylize("astronaut", "swirls", size=args.size, steps=args.steps, model=model, progress=False,
                           rtol=0.0)
    peak = peak_gb()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size} px, {args.steps} steps "
          f"({result.precision}), {1000 * result.seconds_per_step:.0f} ms/step")
    print(f"peak RSS: import torch {after_torch:.2f} GB | + weights {after_model:.2f} | + estimate "
          f"{after_estimate:.2f} | + run {peak:.2f} GB  (run peak above import torch: {peak - after_torch:.2f} GB)")


if __name__ == "__main__":
    main()
