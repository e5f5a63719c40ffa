"""How responsive is the studio? Drives ``stlib.studio.Studio`` without a browser and measures

(a) slider latency: from a style-weight change during a run to the first preview image computed under the new
    settings (and, for information, to the first such preview at full size);
(b) Stop latency: from pressing Stop to the worker thread having ended.

Targets: (a) <= 1 s, (b) <= 1 s. Writes benchmarks/STUDIO_RESULTS.md (machine, load average, torch version).

    .venv/bin/python benchmarks/studio_latency.py            # 256 px, 5 repeats, with and without preview stage
    .venv/bin/python benchmarks/studio_latency.py --size 128 --repeats 3 --modes auto
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

os.environ.setdefault("STLIB_WEIGHTS", "random")
os.environ.setdefault("STLIB_OFFLINE", "1")

import torch  # noqa: E402

import stlib  # noqa: E402
from stlib.studio import Studio  # noqa: E402

TARGET_S = 1.0


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    """1/5/15-minute load averages, as text."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


class PreviewWatch:
    """Records (time, settings generation, preview long edge) each time the preview widget changes."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.events: List[tuple] = []
        self.lock = threading.Lock()
        studio.preview.observe(self._seen, names="value")

    def _seen(self, _change: dict) -> None:
        image = self.studio.image
        edge = max(image.shape[-2:]) if image is not None else 0
        with self.lock:
            self.events.append((time.perf_counter(), self.studio.preview_generation, edge))

    def first_after(self, t0: float, generation: int, min_edge: int = 0) -> Optional[float]:
        with self.lock:
            for t, gen, edge in self.events:
                if t >= t0 and gen >= generation and edge >= min_edge:
                    return t - t0
        return None


def wait_for(condition, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def slider_trials(studio: Studio, watch: PreviewWatch, repeats: int, rng: random.Random) -> List[Dict[str, float]]:
    """Move the style-weight slider ``repeats`` times during one run; time the first new previews."""
    size = int(studio.size.value)
    trials = []
    studio.run()
    if not wait_for(lambda: studio.preview_count >= 3 and studio.image is not None
                    and max(studio.image.shape[-2:]) >= size, 300):
        raise RuntimeError(f"the run did not reach full size: {studio.status.value}")
    for i in range(repeats):
        # land at a random point inside a full-size step, the hardest moment to interrupt
        time.sleep(rng.uniform(0.5, 1.5))
        exponent = 1 if i % 2 == 0 else -1
        new_value = studio.style_weight.value * 10 ** (0.5 * exponent)
        t0 = time.perf_counter()
        studio.style_weight.value = new_value
        generation = studio.generation
        if not wait_for(lambda: watch.first_after(t0, generation, size) is not None, 120):
            raise RuntimeError(f"no full-size preview after a slider change: {studio.status.value}")
        first = watch.first_after(t0, generation)
        full = watch.first_after(t0, generation, size)
        preview = studio.calls[-1].preview_size if studio.calls else None
        trials.append({"first": first, "full": full, "preview_size": preview or size})
        print(f"  slider {i + 1}: first new preview {first:.2f} s (at {preview or size} px), "
              f"first full-size {full:.2f} s", flush=True)
        settle = time.perf_counter()  # one more full-size preview before the next change
        wait_for(lambda: watch.first_after(settle, generation, size) is not None, 60)
    studio.stop(wait=True, timeout=30)
    return trials


def stop_trials(studio: Studio, repeats: int, rng: random.Random) -> List[float]:
    """Start a run, let it go a little, press Stop; time until the worker thread has ended."""
    out = []
    for i in range(repeats):
        count = studio.preview_count
        studio.run()
        wait_for(lambda: studio.preview_count >= count + 2, 120)
        time.sleep(rng.uniform(0.0, 1.0))
        t0 = time.perf_counter()
        studio.stop(wait=True, timeout=30)
        elapsed = time.perf_counter() - t0
        if studio.running:
            raise RuntimeError("the worker did not end within 30 s of Stop")
        if studio.image is None:
            raise RuntimeError("Stop lost the image")
        out.append(elapsed)
        print(f"  stop {i + 1}: worker idle after {elapsed:.3f} s", flush=True)
    return out


def summary(values: List[float]) -> str:
    return f"{statistics.median(values):.2f} s / {max(values):.2f} s"


def verdict(values: List[float]) -> str:
    return "meets" if max(values) <= TARGET_S else ("median meets" if statistics.median(values) <= TARGET_S else "misses")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="auto,off", help="preview modes to measure: auto (preview stage) and/or off")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("STUDIO_RESULTS.md"))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; on a busy machine fewer can be faster)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = random.Random(0)
    model = stlib.load_vgg19(os.environ["STLIB_WEIGHTS"])
    load_before = load_average()
    results = {}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        print(f"preview mode {mode}:", flush=True)
        studio = Studio("astronaut", "swirls", model=model, size=args.size, steps=1000,
                        preview="auto" if mode == "auto" else None)
        watch = PreviewWatch(studio)
        sliders = slider_trials(studio, watch, args.repeats, rng)
        stops = stop_trials(studio, args.repeats, rng)
        step_s = studio.measured_step_seconds(args.size)
        results[mode] = {"sliders": sliders, "stops": stops, "step_s": step_s}
        studio.close()
    load_after = load_average()

    lines = [
        "# Studio responsiveness",
        "",
        f"Measured by `benchmarks/studio_latency.py` on {time.strftime('%Y-%m-%d %H:%M')} (no browser: widgets "
        "driven from Python).",
        "",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores visible, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}",
        f"- Load average (1/5/15 min) before: {load_before}; after: {load_after}. The machine is shared with "
        "other engineers' torch jobs, so timings are noisy.",
        f"- Settings: {args.size} px, offline seeded weights ({os.environ['STLIB_WEIGHTS']}), precision auto "
        f"({stlib.engine.precision.resolve_precision('auto', torch.device('cpu'))}), L-BFGS, preview every step, "
        f"{args.repeats} repeats.",
        "- (a) slider: time from a style-weight change during a run to the first preview computed under the new "
        "settings; 'full size' is the first such preview at the full size. (b) Stop: time from Stop to the worker "
        "thread having ended (the image is kept).",
        "",
        f"Target: first new preview <= {TARGET_S:.0f} s after the slider is released; Stop <= {TARGET_S:.0f} s.",
        "",
        "| preview stage | full-size step | (a) first new preview, median / max | (a) first full-size, median / max | (b) Stop, median / max |",
        "|---|---|---|---|---|",
    ]
    for mode, r in results.items():
        first = [t["first"] for t in r["sliders"]]
        full = [t["full"] for t in r["sliders"]]
        sizes = sorted({int(t["preview_size"]) for t in r["sliders"]})
        stage = f"auto ({'/'.join(map(str, sizes))} px)" if mode == "auto" else "off"
        step = f"{r['step_s']:.2f} s" if r["step_s"] else "n/a"
        lines.append(f"| {stage} | {step} | {summary(first)} ({verdict(first)}) | {summary(full)} | "
                     f"{summary(r['stops'])} ({verdict(r['stops'])}) |")
    lines += ["", "Raw trials (seconds):", ""]
    for mode, r in results.items():
        lines.append(f"- {mode}: first " + ", ".join(f"{t['first']:.2f}" for t in r["sliders"])
                     + "; full size " + ", ".join(f"{t['full']:.2f}" for t in r["sliders"])
                     + "; stop " + ", ".join(f"{s:.3f}" for s in r["stops"]))
    lines.append("")
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
