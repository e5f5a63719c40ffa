"""The ``stlib`` command line: ``stlib transfer``, ``stlib demo`` and ``stlib weights ...``.

    stlib transfer photo.jpg painting.jpg -o out.png --size 384 --steps 200
    stlib demo                       # bundled astronaut + swirls -> out/demo.png and out/demo_grid.png
    stlib weights info               # which weights "auto" would use, and where the cache is
    stlib train-style painting.jpg -o style.pt; stlib apply style.pt photo.jpg -o out.png   (stlib.cli_style)

``main(argv)`` returns the exit code (0 fine, 2 bad input, 130 Ctrl-C) so tests can call it in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Sequence

from .units import format_bytes

#: Command-line errors the user can fix: reported as one line on stderr, exit code 2, no traceback.
USER_ERROR_EXIT = 2
#: ``stlib weights selftest`` on weights it cannot judge (not ImageNet's): neither passed (0) nor failed (1).
NOT_JUDGED_EXIT = 3
INTERRUPT_EXIT = 130

#: The demo: bundled images, size and L-BFGS steps (measured: <= 60 s on a 2-core CPU, model build included).
DEMO_CONTENT = "astronaut"
DEMO_STYLE = "swirls"
DEMO_SIZE = 256
DEMO_STEPS = 60
#: ``STLIB_FAST=1`` (CI, smoke tests): a tiny run that only proves the pipeline works.
DEMO_FAST_SIZE = 64
DEMO_FAST_STEPS = 4

_RANDOM_NOTE = (
    "note: these are seeded RANDOM weights, so the result is an offline approximation (colours and "
    "textures, not painterly strokes). For real ImageNet weights run `stlib weights download` on a machine "
    "with internet, or set STLIB_WEIGHTS=/path/to/vgg19-features.pth."
)


# ----------------------------------------------------------------------------------------------- helpers
class _Interrupts:
    """The CLI's Ctrl-C handler: each press is counted and raises ``KeyboardInterrupt``.

    It is also ``stylize``'s ``stop`` (``is_set()``), so a press that library code swallowed (an exception
    raised inside a finaliser is only printed) still ends the run at the next step. Presses within
    ``GRACE_S`` of the last one that raised (an impatient double press) and presses while the result is
    being saved only count: they must not cut short the saving of the best image, or the exit after it.
    """

    GRACE_S = 3.0

    def __init__(self) -> None:
        self.presses = 0
        self.quiet = False
        self._raised_at = -math.inf
        self._previous: Any = None

    def __call__(self, signum: int, frame: Any) -> None:
        self.presses += 1
        if self.quiet or time.monotonic() - self._raised_at < self.GRACE_S:
            os.write(2, b"\nstlib: stopping (Ctrl-C was pressed); the best image so far is kept\n")
            return
        self._raised_at = time.monotonic()
        raise KeyboardInterrupt

    def is_set(self) -> bool:
        """True once Ctrl-C was pressed (the ``stop`` protocol of ``stylize``)."""
        return self.presses > 0

    def install(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self)
        return self

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def start_run(self) -> None:
        """Raise if Ctrl-C was pressed during set-up, even if something swallowed its KeyboardInterrupt."""
        if self.is_set():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Presses inside only count (they do not raise)."""
        quiet, self.quiet = self.quiet, True
        try:
            yield
        finally:
            self.quiet = quiet


def _say(message: str) -> None:
    """Print a status line to stdout right away (the progress bar writes to stderr)."""
    print(message, flush=True)


def _one_line(err: BaseException) -> str:
    """An exception's message on one line (multi-line messages are joined)."""
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) and text.startswith(("'", '"')) and text.endswith(("'", '"')):
        text = text[1:-1]  # KeyError quotes its message
    return text or type(err).__name__


def _fast() -> bool:
    """True when ``STLIB_FAST`` asks for quick runs (CI)."""
    return os.environ.get("STLIB_FAST", "").strip() not in ("", "0")


def _load_model(weights: str, pooling: str, device: str):
    """Load VGG-19 and say which weights it got; the offline warning becomes one plain line."""
    from .model import load_vgg19, resolve_device
    from .weights import OfflineWeightsWarning, weights_origin

    try:
        dev = resolve_device(device)
    except ValueError as err:
        raise ValueError(f"--device {device}: {err}") from None
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineWeightsWarning)  # _RANDOM_NOTE below says it in one line
        model = load_vgg19(weights, pooling=pooling, device=dev)
    _say(f"weights: {model.weights_source} (VGG-19 features, {pooling} pooling, loaded in "
         f"{time.perf_counter() - t0:.1f} s)")
    if weights_origin(model.weights_source) == "random":
        _say(_RANDOM_NOTE)
    return model, dev


#: ``stlib transfer`` says so (and how to make it quicker) before a run estimated to take longer than this.
SLOW_RUN_SECONDS = 15 * 60


def _check_estimate(dev: Any, precision: str, options: dict[str, Any], force: bool, shape: tuple[int, int],
                    model: Any = None) -> None:
    """Print ``stlib.estimate``'s prediction for a content image of ``shape`` (H, W); refuse a run that would
    not fit in memory (unless ``force``). ``model``: the loaded network, which the estimate times."""
    from .engine.budget import estimate
    from .engine.settings import default_size

    size = options.get("size") or default_size(dev)
    steps = 300 if options.get("steps") is None else options["steps"]
    scale = size / max(shape)
    est = estimate((max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))), device=dev, steps=steps,
                   precision=precision, scales=options.get("scales"), optimizer=options.get("optimizer") or "lbfgs",
                   model=model)
    _say(f"estimate: {est.message}")
    if not est.fits:
        smaller = size
        while smaller > 64 and not estimate(smaller, device=dev, steps=steps, precision=precision,
                                            scales=options.get("scales")).fits:
            smaller = smaller * 3 // 4
        hint = f"try --size {smaller}" if smaller < size else "use a smaller --size"
        if not force:
            raise ValueError(f"a {size} px run needs about {format_bytes(est.peak_bytes)} but "
                             f"{format_bytes(est.available_bytes)} is free on {dev}: {hint} "
                             "(or --force to try anyway)")
        _say(f"warning: this may run out of memory ({hint}); running anyway because of --force")
    elif est.seconds > SLOW_RUN_SECONDS:
        quicker = "--scales 3 or " if not options.get("scales") and size > 384 else ""
        _say(f"this will take a while: {quicker}--steps {max(50, steps // 3)} or --size {max(128, size // 2)} "
             "for a quicker look; Ctrl-C stops it and keeps the best image so far")


def _run(content: Any, style: Any, out: Path, *, weights: str, pooling: str, device: str, precision: str,
         options: dict[str, Any], check: bool = False, force: bool = False, interrupts: "_Interrupts | None" = None):
    """Check ``out``, load the model and images, print the set-up, stylise with a progress bar, save ``out``
    (also after Ctrl-C; to a fallback file named on stderr if ``out`` cannot be written after all).

    ``check``: print the time and memory estimate first, and refuse a run too large to fit (unless ``force``).
    """
    from .engine.precision import resolve_precision
    from .engine.settings import default_size
    from .result import StopReason
    from .transfer import stylize

    interrupts = _Interrupts() if interrupts is None else interrupts
    _check_output(out, {"content": content, "style": style})  # before minutes of work, not after
    t0 = time.perf_counter()
    model, dev = _load_model(weights, pooling, device)
    chosen = resolve_precision(precision, dev)
    _say(f"device: {dev}, precision: {chosen}" + (" (auto)" if precision == "auto" else ""))
    options = {k: v for k, v in options.items() if v is not None}  # None -> stylize's presets
    size = options.get("size") or default_size(dev)
    content, style = _load_inputs(content, style, size)  # before the estimate: a bad file is reported first
    if check:
        _check_estimate(dev, chosen, options, force, tuple(content.shape[-2:]), model)
    interrupts.start_run()  # a Ctrl-C that library code swallowed still counts (raises here)
    try:
        result = stylize(content, style, model=model, precision=precision, progress=True, stop=interrupts, **options)
    except MemoryError as err:
        raise ValueError(f"{err} Use a smaller --size than {size} (without --force, the estimate before the run "
                         "refuses sizes that will not fit).") from None
    lower = "lower --style-weight / --content-weight (or check the weights file)"
    if result.stop_reason == StopReason.NON_FINITE and result.steps == 0:
        raise ValueError(f"the loss was infinite or NaN from the very first step, so there is no result to save: {lower}")
    with interrupts.deferred():  # a second Ctrl-C must not cut the save short
        saved = _save(result, out)
    if result.stop_reason == StopReason.NON_FINITE:
        raise ValueError(f"the loss became infinite or NaN after step {result.steps}; the last image with a finite "
                         f"loss was saved to {saved}, but it is barely styled: {lower}")
    h, w = result.image.shape[-2:]
    if result.stopped and not interrupts.is_set() and result.stop_reason != "interrupted":
        _say(f"stopped early: {result.stopped}")
    if result.stop_reason == StopReason.STALLED:
        _say("warning: the optimiser stalled, so the saved image may be barely changed; try --precision fp32")
    counts = Counter(step["precision"] for step in result.history)
    mix = f" ({' + '.join(f'{n} {p}' for p, n in counts.items())})" if len(counts) > 1 else ""
    _say(f"{result.steps} steps{mix} at {w}x{h} px in {time.perf_counter() - t0:.1f} s "
         f"({result.seconds_per_step:.2f} s/step, preset {result.settings['preset']})")
    if saved == out:
        _say(f"saved {saved}")
    return result, saved


def _check_output(out: Path, inputs: dict[str, Any]) -> None:
    """Refuse an output that would overwrite an input image or that cannot be written (before the run)."""
    from .images import check_writable

    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"the output {str(out)!r} needs a .png or .jpg suffix")
    for role, source in inputs.items():
        path = _input_path(source)
        if path is not None and out.exists() and os.path.samefile(path, out):
            raise ValueError(f"-o {out} would overwrite the {role} image {source}: choose another output name")
    check_writable(out)


def _input_path(source: Any) -> Path | None:
    """The file an image argument names (a path or a bundled name), or None (a URL, a missing file)."""
    from .images import ImageLoadError, _resolve_path

    if not isinstance(source, (str, os.PathLike)) or str(source).lower().startswith(("http://", "https://")):
        return None
    try:
        return _resolve_path(os.fspath(source))
    except (ImageLoadError, OSError):
        return None


def _load_inputs(content: Any, style: Any, size: int):
    """Load both images, downscaled on load so a huge photo works (stylize resizes them to ``size`` later)."""
    from .images import WORKING_MAX_SIZE, load_image

    cap = max(size, WORKING_MAX_SIZE)
    styles = [load_image(s, max_size=cap) for s in style] if isinstance(style, list) else load_image(style, max_size=cap)
    return load_image(content, max_size=cap), styles


def _save(result: Any, out: Path) -> Path:
    """Save the result to ``out``; if that fails after all, to a fallback file (named on stderr). Returns the path."""
    try:
        return result.save(out)
    except (OSError, ValueError) as err:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for folder in (Path.cwd(), Path(tempfile.gettempdir())):
            fallback = folder / f"stlib-result-{stamp}{out.suffix.lower()}"
            try:
                result.save(fallback)
            except (OSError, ValueError):
                continue
            print(f"stlib: error: could not write {out} ({_one_line(err)}); saved the result to {fallback} instead",
                  file=sys.stderr, flush=True)
            return fallback
        raise


def _exit_code(result, saved: Path, out: Path, interrupts: "_Interrupts") -> int:
    """0 for a finished run; 130 when Ctrl-C ended it (the best image so far was still saved); 2 when the
    result had to go to a fallback file."""
    if interrupts.is_set() or result.stop_reason == "interrupted":
        where = f"the best image so far is saved in {saved}"
        print(f"stlib: interrupted (Ctrl-C) at step {result.steps}; {where}", file=sys.stderr, flush=True)
        return INTERRUPT_EXIT
    return 0 if saved == out else USER_ERROR_EXIT


# ----------------------------------------------------------------------------------------------- commands
def _cmd_transfer(args: argparse.Namespace) -> int:
    """``stlib transfer CONTENT STYLE -o OUT``."""
    options = {name: getattr(args, name) for name in _declared_flags()}  # None (not given): stylize's default
    options["style_masks"] = args.masks
    if args.region_style and not args.masks:
        raise ValueError("--region-style needs --masks: the mask says where each style goes")
    style = [args.style, *args.region_style] if args.masks else args.style
    out = Path(args.output)
    result, saved = _run(args.content, style, out, weights=args.weights, pooling=args.pooling,
                         device=args.device, precision=args.precision, options=options,
                         check=not args.no_estimate, force=args.force, interrupts=args.interrupts)
    return _exit_code(result, saved, out, args.interrupts)


def _grid(content: Any, style: Any, result_image, height: int):
    """A side-by-side PIL image: content | style | result, each scaled to ``height`` pixels, with captions."""
    from PIL import Image, ImageDraw

    from .images import load_image, resize, to_pil

    panels = [("content", load_image(content)), ("style", load_image(style)), ("result", result_image)]
    gap, caption = 8, 18
    tiles = [(label, to_pil(resize(img, (height, max(1, round(img.shape[-1] * height / img.shape[-2]))))))
             for label, img in panels]
    width = sum(t.width for _, t in tiles) + gap * (len(tiles) + 1)
    canvas = Image.new("RGB", (width, height + caption + 2 * gap), "white")
    draw = ImageDraw.Draw(canvas)
    x = gap
    for label, tile in tiles:
        canvas.paste(tile, (x, gap))
        draw.text((x, gap + height + 3), label, fill="black")
        x += tile.width + gap
    return canvas


def _cmd_demo(args: argparse.Namespace) -> int:
    """``stlib demo``: bundled astronaut + swirls, then a content | style | result grid next to it."""
    fast = _fast()
    size = args.size or (DEMO_FAST_SIZE if fast else DEMO_SIZE)
    steps = args.steps if args.steps is not None else (DEMO_FAST_STEPS if fast else DEMO_STEPS)
    out = Path(args.output)
    _say(f"demo: {DEMO_CONTENT} in the style of {DEMO_STYLE}, {size} px, {steps} steps"
         + (" (STLIB_FAST=1)" if fast else ""))
    result, saved = _run(DEMO_CONTENT, DEMO_STYLE, out, weights=args.weights, pooling="max", device=args.device,
                         precision=args.precision, options={"size": size, "steps": steps, "seed": 0},
                         interrupts=args.interrupts)
    grid_path = saved.with_name(f"{saved.stem}_grid.png")
    _grid(DEMO_CONTENT, DEMO_STYLE, result.image, height=result.image.shape[-2]).save(grid_path)
    _say(f"saved {grid_path} (content | style | result)")
    return _exit_code(result, saved, out, args.interrupts)


def _cmd_weights_download(args: argparse.Namespace) -> int:
    """``stlib weights download``: fetch torchvision's ImageNet VGG-19 into the torch hub cache."""
    from .weights import download_imagenet

    path = download_imagenet(url=args.url, progress=True)
    _say(f"ImageNet VGG-19 weights: {path} ({format_bytes(path.stat().st_size)})")
    return 0


def _cmd_weights_export(args: argparse.Namespace) -> int:
    """``stlib weights export -o PATH``: write a features-only weights file (+ .sha256)."""
    from .weights import export_weights, sha256_file

    out = Path(args.output).expanduser()
    if Path(args.source).expanduser().is_file() and out.exists() and os.path.samefile(args.source, out):
        raise ValueError(f"-o {out} would overwrite the source weights file {args.source}: choose another name")
    path = export_weights(out, source=args.source, dtype=args.dtype)
    _say(f"exported {args.source} VGG-19 features as {args.dtype}: {path} ({format_bytes(path.stat().st_size)})")
    _say(f"sha256: {sha256_file(path)} (also in {path.name}.sha256)")
    _say(f"use it with: STLIB_WEIGHTS={path}  or  stlib.load_vgg19({str(path)!r})")
    return 0


def _info_file(path: Path) -> None:
    """Describe a weights file after loading and checking it (``read_weights_file`` refuses a bad one)."""
    from .weights import EXPORT_FORMAT, read_weights_file, sha256_file

    _, info = read_weights_file(path)
    if info["origin"] == "imagenet" and info["format"] == "torchvision":
        source = "ImageNet (torchvision's VGG-19 checkpoint, sha256 verified)"
    elif info["format"] == EXPORT_FORMAT:
        source = f"{info['origin']} (as recorded by `stlib weights export`)"
    else:
        source = "unknown, not verified as ImageNet (its sha256 is not that of torchvision's checkpoint)"
    _say(f"file:   {info['path']}")
    _say(f"format: {info['format']}")
    _say(f"dtype:  {info['dtype']}")
    _say(f"size:   {format_bytes(info['size_bytes'])} ({info['size_bytes']} bytes)")
    _say(f"sha256: {sha256_file(path)}")
    _say(f"source: {source}")
    _say(f"checked: {info['checked']}")


def _info_auto() -> None:
    """Say what ``weights="auto"`` would load, in the same order as ``stlib.weights.resolve_weights``."""
    from .weights import EXPORT_NAME, cache_dir, cached_imagenet_path, imagenet_url

    _say(f"cache:  {cache_dir()} (set TORCH_HOME to move it)")
    env = os.environ.get("STLIB_WEIGHTS", "").strip()
    offline = os.environ.get("STLIB_OFFLINE", "").strip() not in ("", "0")
    if env:
        _say(f"auto:   STLIB_WEIGHTS={env}")
        if env not in ("imagenet", "random") and Path(env).expanduser().exists():
            _info_file(Path(env).expanduser())
        elif env == "random":
            _say(_RANDOM_NOTE)
        return
    for candidate in (cached_imagenet_path(), cache_dir() / EXPORT_NAME):
        if candidate.exists():
            _say(f"auto:   the cached file {candidate}")
            _info_file(candidate)
            return
    if offline:
        _say("auto:   seeded random weights (STLIB_OFFLINE is set and nothing is cached)")
        _say(_RANDOM_NOTE)
    else:
        _say(f"auto:   nothing cached yet: the first run downloads {imagenet_url()} (548 MB) into the cache, "
             "or falls back to seeded random weights when offline. Run `stlib weights download` to fetch it now.")


def _cmd_weights_selftest(args: argparse.Namespace) -> int:
    """``stlib weights selftest``: one line - do the ImageNet defaults work on these weights? (exit 0 passed,
    1 failed, 3 cannot judge: not ImageNet weights)."""
    from .model import load_vgg19, resolve_device
    from .selftest import cannot_judge, run_selftest
    from .weights import OfflineWeightsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineWeightsWarning)  # the line below says it
        model = load_vgg19(args.weights, device=resolve_device(args.device))
    reason = cannot_judge(model.weights_source)
    if reason is not None:
        _say(reason)
        return NOT_JUDGED_EXIT
    result = run_selftest(model)
    _say(result.line())
    return 0 if result.passed else 1


def _cmd_weights_info(args: argparse.Namespace) -> int:
    """``stlib weights info [PATH]``."""
    if args.path:
        _info_file(Path(args.path))
    else:
        _info_auto()
    return 0


# ----------------------------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, not {text}")
    return value


def _declared_flags() -> "dict[str, Any]":
    """``{option: dataclass field}`` for the run options that have a command-line flag (``stlib.engine.options``)."""
    from dataclasses import fields

    from .engine.options import RunOptions

    return {f.name: f for f in fields(RunOptions) if f.metadata["flag"] is not None}


def _flag_parser(name: str, parse: Any, check: Any) -> Any:
    """argparse's ``type`` for option ``name``: ``parse`` the text; a whole number is also checked by the option's
    own check, so a bad count is a usage error that names the flag (``argument --steps: steps must be ...``). A
    bad weight is left to ``stylize``, whose one-line error names it."""
    def parser(text: str) -> Any:
        try:
            value = parse(text)
            if parse is int:
                check(name, value)
        except (ValueError, KeyError) as err:
            raise argparse.ArgumentTypeError(str(err).strip("'\"")) from None
        return value
    parser.__name__ = parse.__name__  # argparse names the type in "invalid int value"
    return parser


def _add_declared_options(p: argparse.ArgumentParser) -> None:
    """One flag per declared run option with a ``flag`` (``--style-weight`` for ``style_weight``), its help text
    from the declaration; unset flags stay None, so ``stylize`` fills in its own defaults."""
    for name, f in _declared_flags().items():
        choices = f.metadata["choices"]
        kwargs: dict[str, Any] = {"choices": list(choices)} if choices else {
            "type": _flag_parser(name, f.metadata["flag"], f.metadata["check"])}
        p.add_argument("--" + name.replace("_", "-"), help=f.metadata["help"], **kwargs)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default: auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="network precision (default: auto = bf16 on CPUs/GPUs that are fast at it, else fp32)")
    p.add_argument("--weights", default="auto",
                   help="auto, imagenet, random or a weights file (default: auto; see `stlib weights info`)")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with the ``transfer``, ``demo`` and ``weights`` subcommands."""
    parser = argparse.ArgumentParser(
        prog="stlib", description="Neural style transfer (Gatys et al.) from the command line.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"stlib {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("transfer", help="paint a photo in the style of a painting",
                       description="Paint CONTENT in the style of STYLE. Unset weights come from the preset "
                                   "that suits the loaded weights (see stlib.presets).")
    t.add_argument("content", metavar="CONTENT", help="content image: path, URL or bundled name (e.g. astronaut)")
    t.add_argument("style", metavar="STYLE", help="style image: path, URL or bundled name (e.g. swirls)")
    t.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png or .jpg)")
    _add_declared_options(t)
    t.add_argument("--masks", metavar="MASK",
                   help="spatial control: a region mask (bundled name such as rocket_sky, or a greyscale image); "
                        "STYLE paints its white region, --region-style the black one")
    t.add_argument("--region-style", action="append", default=[], metavar="STYLE",
                   help="the style of the next region of --masks (repeat for more regions)")
    t.add_argument("--pooling", choices=["max", "avg"], default="max", help="VGG pooling (default: max)")
    t.add_argument("--no-estimate", action="store_true",
                   help="skip the time/memory estimate printed before the run (it times a few tiny steps, ~2 s)")
    t.add_argument("--force", action="store_true", help="run even when the estimate says it will not fit in memory")
    _add_run_options(t)
    t.set_defaults(func=_cmd_transfer)

    d = sub.add_parser("demo", help="a quick example with the bundled astronaut and swirls images",
                       description=f"Stylise the bundled {DEMO_CONTENT!r} photo with {DEMO_STYLE!r} "
                                   f"({DEMO_SIZE} px, {DEMO_STEPS} steps; STLIB_FAST=1: {DEMO_FAST_SIZE} px, "
                                   f"{DEMO_FAST_STEPS} steps) and write a content | style | result grid.")
    d.add_argument("-o", "--output", default="out/demo.png", metavar="OUT", help="default: out/demo.png")
    d.add_argument("--size", type=_positive_int, help=f"long edge in pixels (default {DEMO_SIZE})")
    d.add_argument("--steps", type=_non_negative_int, help=f"optimisation steps (default {DEMO_STEPS})")
    _add_run_options(d)
    d.set_defaults(func=_cmd_demo)

    w = sub.add_parser("weights", help="download, export or inspect VGG-19 weights files")
    wsub = w.add_subparsers(dest="weights_command", metavar="ACTION")
    wsub.required = True
    wd = wsub.add_parser("download", help="download torchvision's ImageNet VGG-19 (548 MB) into the torch cache")
    wd.add_argument("--url", default=None, help=argparse.SUPPRESS)
    wd.set_defaults(func=_cmd_weights_download)
    we = wsub.add_parser("export", help="write a features-only weights file (fp16 ~40 MB) to copy elsewhere")
    we.add_argument("-o", "--output", required=True, metavar="PATH", help="file to write (.pth)")
    we.add_argument("--source", default="imagenet", help="imagenet (default), random, or a weights file")
    we.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="default: float16")
    we.set_defaults(func=_cmd_weights_export)
    wi = wsub.add_parser("info", help="describe a weights file, or what 'auto' would use")
    wi.add_argument("path", nargs="?", metavar="PATH", help="a weights file (default: what 'auto' would pick)")
    wi.set_defaults(func=_cmd_weights_info)
    ws = wsub.add_parser("selftest", help="one line: do the ImageNet defaults work here? (chelsea x starry_night, "
                                          "256 px, 100 steps; exit 0 passed, 1 failed, 3 not ImageNet weights)")
    ws.add_argument("--weights", default="auto", help="auto (default), imagenet or a weights file")
    ws.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default: auto)")
    ws.set_defaults(func=_cmd_weights_selftest)

    from .cli_style import add_commands  # train-style and apply (feed-forward style networks), with these helpers

    add_commands(sub, SimpleNamespace(say=_say, fast=_fast, load_model=_load_model, check_output=_check_output,
                                      input_path=_input_path, interrupt_exit=INTERRUPT_EXIT,
                                      run_options=_add_run_options, positive_int=_positive_int,
                                      non_negative_int=_non_negative_int))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stlib`` command line with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Ctrl-C is caught from the first line on (torch's import alone takes seconds): it always ends with
    ``stlib: interrupted ...`` and exit code 130, after saving the best image if a run had started.
    """
    interrupts = _Interrupts().install()
    try:
        return _main(argv, interrupts)
    except KeyboardInterrupt:
        print("stlib: interrupted (Ctrl-C); nothing was saved", file=sys.stderr, flush=True)
        return INTERRUPT_EXIT
    finally:
        interrupts.restore()
        if interrupts.is_set() and threading.current_thread() is threading.main_thread():
            # The process is ending: Python's shutdown resets handlers to the default, so a late second press
            # would kill it by signal (status -2 instead of 130). An ignored SIGINT is left alone by the shutdown.
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: Sequence[str] | None, interrupts: _Interrupts) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exit_:  # --help, --version, or a usage error (argparse printed it already)
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else USER_ERROR_EXIT)
    args.interrupts = interrupts
    from .images import ImageLoadError  # after the handler: these imports load torch (seconds)
    from .weights import WeightsError

    try:
        return int(args.func(args))
    except (ImageLoadError, WeightsError, ValueError, KeyError, OSError, MemoryError) as err:
        print(f"stlib: error: {_one_line(err)}", file=sys.stderr)
        return USER_ERROR_EXIT
