"""Issue 22's "before vs after, on the same machine in one sitting": the tutorial baseline, stlib as it was when
the issue was filed and stlib now, in one run of this script.

    .venv/bin/python benchmarks/before_after.py                  # before = a1fcfa9, ~20 min on 2 cores
    .venv/bin/python benchmarks/before_after.py --before <ref> --evals 100 --mem-steps 4   # a quicker look

The *before* code is checked out into a temporary git worktree and imported from there in child processes
(the same venv, the same torch); the *after* code is this checkout, also in children, so both run alike.
Every image either of them returns on the way is scored in this process by ``run.py``'s float32 objective (the
same formula, preset and targets for everyone), against the baseline's curve measured in the same sitting.
Then peak memory: fresh processes, 512 px, precision auto, before and after alternately (VmHWM growth above
the imports, as ``run.py``'s memory table reports it). Writes benchmarks/BEFORE_AFTER.md and
benchmarks/before_after.png. Not part of the test-suite.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as run.py: must precede torch

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Dict, List, Optional, Tuple  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: main just before issue 22's first commit (6fdd19e's parent): the code the issue's table measured.
BEFORE_REF = "a1fcfa9"


def _vmhwm() -> int:
    """Peak resident memory in bytes (run.peak_rss_bytes; a child must not import run.py, which puts this
    checkout's stlib on the path)."""
    match = re.search(r"VmHWM:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) * 1024 if match else 0


# ------------------------------------------------------------------------------------------------ children
def child(spec: Dict[str, Any]) -> None:
    """In a fresh process, with ``spec["tree"]``'s stlib: a race (every iterate saved) or a memory run."""
    sys.path.insert(0, spec["tree"])
    import torch

    import stlib

    torch.set_num_threads(int(spec["threads"]))
    assert Path(stlib.__file__).resolve().is_relative_to(Path(spec["tree"]).resolve()), stlib.__file__
    after_imports = _vmhwm()
    model = stlib.load_vgg19("random")
    content = stlib.resize(stlib.load_image(spec["content"]), spec["size"])
    style = stlib.resize(stlib.load_image(spec["style"]), spec["size"])
    options = dict(spec.get("options", {}))
    if spec["kind"] == "race":
        snaps: List[Tuple[float, Any]] = []
        options["callback"] = lambda info: snaps.append((info.elapsed, info.image.detach().cpu().clone()))
        options["every"] = 1
    result = stlib.stylize(content, style, size=spec["size"], steps=spec["steps"], precision="auto", model=model,
                           progress=False, rtol=0.0, **options)
    out = {"precision": result.precision, "seconds": result.elapsed, "growth": _vmhwm() - after_imports,
           "ms_per_step": 1000 * result.seconds_per_step}
    if spec["kind"] == "race":
        torch.save({"snaps": snaps, "returned": result.image.detach().cpu()}, spec["save"])
    print("RESULT " + json.dumps(out))


def run_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    env = dict(os.environ, STLIB_WEIGHTS="random", STLIB_OFFLINE="1", PYTHONPATH=spec["tree"])
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=3600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"child {spec['label']} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


# ------------------------------------------------------------------------------------------------ parent
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--before", default=BEFORE_REF, help=f"git ref of the 'before' code (default {BEFORE_REF})")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--evals", type=int, default=300, help="the baseline's closure evaluations = stlib's steps")
    parser.add_argument("--mem-size", type=int, default=512)
    parser.add_argument("--mem-steps", type=int, default=15)
    parser.add_argument("--mem-rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--rewrite", action="store_true",
                        help="redraw the plot and rewrite BEFORE_AFTER.md from the last run's out/before_after.json")
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    if args.rewrite:
        res = json.loads((args.out / "out" / "before_after.json").read_text())
        _plot(res, args.out / "before_after.png")
        (args.out / "BEFORE_AFTER.md").write_text(_markdown(res))
        return 0

    os.environ.setdefault("STLIB_WEIGHTS", "random")
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(HERE))
    sys.path.insert(1, str(ROOT))
    import run as bench_run  # run.py: the baseline, the scorer, the machine line, the equal-time comparison

    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before], capture_output=True,
                         text=True, check=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "stlib"],
                                capture_output=True, text=True).stdout.strip())
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    device = torch.device("cpu")
    info = bench_run.machine_info(device)
    with tempfile.TemporaryDirectory(prefix="stlib-before-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), sha], check=True)
        try:
            res = _sitting(args, bench_run, str(tree), tmp)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    res.update(before=sha, after=head + (" + uncommitted changes under stlib/" if dirty else ""), started=started,
               machine=info, bf16_label=bench_run._bf16_label(info))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "out").mkdir(exist_ok=True)
    (args.out / "out" / "before_after.json").write_text(json.dumps(res, indent=1))
    _plot(res, args.out / "before_after.png")
    (args.out / "BEFORE_AFTER.md").write_text(_markdown(res))
    print((args.out / "BEFORE_AFTER.md").read_text())
    return 0


RACES = [  # (label, which tree, stylize options): each version's default run, then two opt-in levers of today's
    ("before (default options)", "before", {}),
    ("after (default options)", "after", {}),
    ("after, fp32_finish=True", "after", {"fp32_finish": True}),
    ("after, init=\"palette\"", "after", {"init": "palette"}),
]
RACE_COLOURS = ("tab:purple", "tab:red", "tab:orange", "tab:green")  # one per race, in RACES' order


def _sitting(args: argparse.Namespace, bench_run: Any, before_tree: str, tmp: str) -> Dict[str, Any]:
    import torch

    trees = {"before": before_tree, "after": str(ROOT)}
    bench = bench_run.Bench(torch.device("cpu"), "random")
    score = bench.scorer(args.size)
    loads = [bench_run.load_average()]
    curves: Dict[str, Any] = {}
    curves["baseline"], target, base_seconds = bench_run.baseline_curve(bench, args.size, args.evals, score)
    best_seen = min(v for _, v in curves["baseline"])
    races: Dict[str, Any] = {}
    for label, which, options in RACES:
        loads.append(bench_run.load_average())
        save = str(Path(tmp) / f"race{len(races)}.pt")
        spec = {"kind": "race", "label": label, "tree": trees[which], "threads": args.threads, "size": args.size,
                "steps": args.evals, "content": bench_run.CONTENT, "style": bench_run.STYLE, "options": options,
                "save": save}
        out = run_child(spec)
        saved = torch.load(save)
        curve = [(t, score(img)) for t, img in saved["snaps"]]
        curves[label] = curve
        out.update(
            returned=score(saved["returned"]),
            reached_final_at_s=next((t for t, v in curve if v <= target), None),
            reached_best_at_s=next((t for t, v in curve if v <= best_seen), None),
            worst_vs_baseline=bench_run.worst_at_equal_time(curve, curves["baseline"]),
            best=min(v for _, v in curve))
        races[label] = out
    memory: List[Dict[str, Any]] = []
    for rnd in range(args.mem_rounds):
        for which in ("before", "after"):
            spec = {"kind": "memory", "label": f"memory {which}", "tree": trees[which], "threads": args.threads,
                    "size": args.mem_size, "steps": args.mem_steps, "content": bench_run.CONTENT,
                    "style": bench_run.STYLE}
            memory.append(dict(run_child(spec), which=which, round=rnd + 1))
    loads.append(bench_run.load_average())
    return {"size": args.size, "evals": args.evals, "baseline_seconds": base_seconds, "baseline_final": target,
            "baseline_best_seen": best_seen, "races": races, "curves": curves, "memory": memory,
            "mem_size": args.mem_size, "mem_steps": args.mem_steps, "threads": args.threads, "loads": loads}


def _plot(res: Dict[str, Any], path: Path) -> None:
    """``run.py``'s objective-vs-seconds figure, with this script's contestants."""
    sys.path.insert(0, str(HERE))
    import run as bench_run

    styles = {"baseline": bench_run.PLOT_STYLES["baseline"],
              **{label: (colour, f"stlib {label}") for (label, _, _), colour in zip(RACES, RACE_COLOURS)}}
    bench_run.plot(res["curves"], res["baseline_final"], res["size"], res["evals"], path,
                   best_seen=res["baseline_best_seen"], styles=styles, title="Before vs after, one sitting")


def _s(x: Optional[float], base: float) -> str:
    return "never" if x is None else f"{x:.1f} s (**{x / base:.2f}**)"


def _markdown(res: Dict[str, Any]) -> str:
    m, base = res["machine"], res["baseline_seconds"]
    lines = [
        "# Before vs after, one sitting (issue 22; `benchmarks/before_after.py`)", "",
        f"Generated on {res['started']}: before = main at `{res['before']}` (issue 22's starting point), "
        f"after = `{res['after']}`. CPU: {m.get('cpu', '')} ({m.get('cores')} cores{res['bf16_label']}); "
        f"torch {m.get('torch', '')}; {res['threads']} threads; "
        f"offline weights, astronaut + swirls, the offline preset. Load average (1/5/15 min) at the start, before "
        f"each race and at the end: {' -> '.join(res['loads'])}.", "",
        f"## Time to objective at {res['size']} px", "",
        f"The tutorial baseline ran {res['evals']} closure evaluations in {base:.1f} s and ended at objective "
        f"{res['baseline_final']:.4g}; the best image it had on the way scored {res['baseline_best_seen']:.4g}. "
        f"Each stlib run: {res['evals']} steps, precision auto, every iterate scored by the same float32 "
        "objective; a time is when an iterate first scores at or below the target (ratio to the baseline's time "
        "in bold).", "",
        "| run | precision | reached the baseline's final objective | reached its best-seen | objective returned "
        f"after {res['evals']} steps | best iterate | worst ratio to the baseline at equal time | run time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in res["races"].items():
        lines.append(f"| {label} | {r['precision']} | {_s(r['reached_final_at_s'], base)} | "
                     f"{_s(r['reached_best_at_s'], base)} | {r['returned']:.4g} | {r['best']:.4g} | "
                     f"{r['worst_vs_baseline']:.3f} | {r['seconds']:.1f} s |")
    lines += ["", "![before vs after](before_after.png)", "",
              f"## Peak memory at {res['mem_size']} px ({res['mem_steps']} steps, precision auto, no estimate)", "",
              "Fresh process per line, before and after alternately; growth = peak resident memory (VmHWM) after the "
              "run minus after the imports (torch and stlib), as `run.py`'s memory table reports it.", "",
              "| round | code | precision | growth above the imports | ms per step |", "|---|---|---|---|---|"]
    for r in res["memory"]:
        lines.append(f"| {r['round']} | {r['which']} | {r['precision']} | {r['growth'] / 1e9:.2f} GB | "
                     f"{r['ms_per_step']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
