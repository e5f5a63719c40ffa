"""``stlib train-style`` and ``stlib apply``: train a feed-forward style network once, then paint photos with it.

    stlib train-style painting.jpg -o painting.pt            # CPU: 128 px crops, about 3 minutes
    stlib apply painting.pt photo.jpg -o out.png             # milliseconds per photo
    stlib apply painting.pt photo.jpg -o out.png --strength 0.6

``stlib.cli`` registers these subcommands (``add_commands``), hands them its shared helpers (``args.cli``: output
checks, model loading, status lines) and handles errors, exit codes and Ctrl-C.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

#: CPU defaults: the issue's budget, a visible style within about 3 minutes at 128 px on a 2-core laptop.
CPU_SIZE, CPU_MINUTES, CPU_STEPS = 128, 3.0, 1000
#: GPU defaults: larger crops, Johnson's network, more steps (no time limit).
GPU_SIZE, GPU_STEPS = 256, 2000
#: ``STLIB_FAST=1``: a tiny run that only proves the pipeline works.
FAST_SIZE, FAST_STEPS = 64, 4
#: Image suffixes: a trained style is not an image, and -o style.png is almost certainly a slip.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text}")
    return value


def _strength(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 (the photo) and 1 (the full style), not {text}")
    return value


def _check_style_output(out: Path, painting: Any, input_path: Any) -> None:
    """Refuse an image suffix, overwriting the painting, or an unwritable place - before minutes of training."""
    from .images import check_writable

    if out.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"-o {out}: a trained style is not an image; name it e.g. {out.with_suffix('.pt').name}")
    source = input_path(painting)
    if source is not None and out.exists() and out.resolve() == source.resolve():
        raise ValueError(f"-o {out} would overwrite the painting {painting}: choose another output name")
    check_writable(out)


def cmd_train_style(args: argparse.Namespace) -> int:
    """``stlib train-style PAINTING -o STYLE.pt``."""
    cli = args.cli
    from .engine.precision import resolve_precision
    from .images import load_image
    from .style_training import TRAIN_PHOTOS, TrainInfo, train_style
    from .transform_net import JOHNSON, SMALL, NetConfig

    out = Path(args.output).expanduser()
    _check_style_output(out, args.painting, cli.input_path)
    interrupts = args.interrupts
    model, dev = cli.load_model(args.weights, "max", args.device)
    precision = resolve_precision(args.precision, dev)
    gpu = dev.type == "cuda"
    fast = cli.fast()
    size = args.size or (FAST_SIZE if fast else GPU_SIZE if gpu else CPU_SIZE)
    steps = args.steps if args.steps is not None else (FAST_STEPS if fast else GPU_STEPS if gpu else CPU_STEPS)
    minutes = args.minutes if args.minutes is not None else (None if gpu or fast else CPU_MINUTES)
    base = JOHNSON if gpu else SMALL
    config = NetConfig(channels=args.channels or base.channels,
                       residual_blocks=base.residual_blocks if args.blocks is None else args.blocks)
    load_image(args.painting)  # a bad painting is reported before anything else happens
    photos = args.photos or list(TRAIN_PHOTOS)
    for photo in photos:
        load_image(photo)
    limit = f", at most {minutes:g} min" if minutes else ""
    cli.say(f"device: {dev}, precision: {precision}; network {config.channels} channels, {config.residual_blocks} "
         f"residual blocks; {steps} steps of {args.batch_size} crops at {size} px{limit}")
    cli.say(f"training photos: {', '.join(map(str, photos))} (random crops, scales and flips)")
    t0 = time.perf_counter()
    said = []

    def estimate(info: TrainInfo) -> None:
        if not said:  # the first report: seconds per step so far -> the whole run
            per_step = info.elapsed / info.step
            total = per_step * steps if not minutes else min(per_step * steps, minutes * 60)
            cli.say(f"\nestimate: {per_step:.2f} s per step, about {total / 60:.1f} min in all; "
                 "Ctrl-C stops and keeps the best weights so far")
            said.append(True)

    interrupts.start_run()
    result = train_style(args.painting, model=model, size=size, batch_size=args.batch_size, steps=steps,
                         time_limit=None if not minutes else minutes * 60, lr=args.lr, net_config=config,
                         content_weight=args.content_weight, style_weight=args.style_weight,
                         tv_weight=args.tv_weight, photos=photos, seed=args.seed, precision=args.precision,
                         every=FAST_STEPS if fast else 20, progress=True, callback=estimate, stop=interrupts)
    with interrupts.deferred():  # a second Ctrl-C must not cut the save short
        saved = result.save(out)
    size_mb = saved.stat().st_size / 1e6
    cli.say(f"{result.settings['steps']} steps in {time.perf_counter() - t0:.1f} s; best probe objective "
         f"{result.settings['best_probe']:.4g} at step {result.settings['best_step']}")
    cli.say(f"saved {saved} ({size_mb:.1f} MB); apply it with: stlib apply {saved} PHOTO -o OUT.png")
    if interrupts.is_set() or result.stopped == "interrupted":
        import sys

        print(f"stlib: interrupted (Ctrl-C); the best weights so far are saved in {saved}", file=sys.stderr, flush=True)
        return cli.interrupt_exit
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """``stlib apply STYLE.pt PHOTO -o OUT``."""
    cli = args.cli
    from .images import load_image, save_image
    from .model import resolve_device
    from .style_file import load_style

    out = Path(args.output).expanduser()
    cli.check_output(out, {"photo": args.photo})
    try:
        dev = resolve_device(args.device)
    except ValueError as err:
        raise ValueError(f"--device {args.device}: {err}") from None
    style = load_style(args.style, device=dev)
    photo = load_image(args.photo, max_size=args.size)
    t0 = time.perf_counter()
    image = style.apply(photo, strength=args.strength)
    ms = 1000 * (time.perf_counter() - t0)
    saved = save_image(image, out)
    h, w = image.shape[-2:]
    trained = style.settings.get("style", "?")
    cli.say(f"style {trained!r} ({Path(args.style).name}) applied to {w}x{h} px in {ms:.0f} ms on {dev}"
         + (f", strength {args.strength:g}" if args.strength != 1 else ""))
    cli.say(f"saved {saved}")
    return 0


def add_commands(sub: Any, cli: Any) -> None:
    """Add ``train-style`` and ``apply`` to the ``stlib`` command's subparsers ``sub``. ``cli``: the command line's
    shared helpers (``say``, ``fast``, ``load_model``, ``check_output``, ``input_path``, ``interrupt_exit``,
    ``run_options``, ``positive_int``, ``non_negative_int``), kept by ``stlib.cli``; each command finds them in
    ``args.cli``."""
    _positive_int, _non_negative_int = cli.positive_int, cli.non_negative_int

    t = sub.add_parser("train-style", help="train a feed-forward network for one style (then `stlib apply` is instant)",
                       description="Train a small image transformation network (Johnson et al. 2016) with stlib's "
                                   "content and style losses on crops of the bundled photos. On a CPU: 128 px, "
                                   f"at most {CPU_MINUTES:g} minutes; on a GPU: {GPU_SIZE} px, {GPU_STEPS} steps. "
                                   "Ctrl-C stops and saves the best weights so far.")
    t.add_argument("painting", metavar="PAINTING", help="style image: path, URL or bundled name (e.g. swirls)")
    t.add_argument("-o", "--output", required=True, metavar="STYLE", help="the trained style file to write (e.g. style.pt)")
    t.add_argument("--size", type=_positive_int, help=f"training crop size (default {CPU_SIZE} on a CPU, {GPU_SIZE} on a GPU)")
    t.add_argument("--steps", type=_non_negative_int, help=f"training steps (default {CPU_STEPS} on a CPU, {GPU_STEPS} on a GPU)")
    t.add_argument("--minutes", type=_positive_float,
                   help=f"stop after this many minutes (default {CPU_MINUTES:g} on a CPU, none on a GPU)")
    t.add_argument("--batch-size", type=_positive_int, default=4, help="crops per step (default 4)")
    t.add_argument("--lr", type=_positive_float, default=2e-3, help="Adam's learning rate (default 2e-3)")
    t.add_argument("--channels", type=_positive_int, help="network width C (default 16 on a CPU, 32 on a GPU)")
    t.add_argument("--blocks", type=_non_negative_int, help="residual blocks (default 3 on a CPU, 5 on a GPU)")
    t.add_argument("--photos", nargs="+", metavar="PHOTO", help="photos to crop from (default: the bundled "
                                                                "astronaut and coffee)")
    t.add_argument("--style-weight", type=float, help="style weight (default: from the preset)")
    t.add_argument("--content-weight", type=float, help="content weight (default: from the preset)")
    t.add_argument("--tv-weight", type=float, help="total-variation weight (default: from the preset)")
    t.add_argument("--seed", type=int, default=0, help="seed of the initial weights and the crops (default 0)")
    cli.run_options(t)
    t.set_defaults(func=cmd_train_style, cli=cli)

    a = sub.add_parser("apply", help="paint a photo with a style trained by `stlib train-style`",
                       description="Run a trained style network on PHOTO: one forward pass.")
    a.add_argument("style", metavar="STYLE", help="a trained style file (from `stlib train-style`)")
    a.add_argument("photo", metavar="PHOTO", help="photo: path, URL or bundled name (e.g. chelsea)")
    a.add_argument("-o", "--output", required=True, metavar="OUT", help="output image (.png or .jpg)")
    a.add_argument("--size", type=_positive_int, default=1024, help="long edge of the result at most (default 1024)")
    a.add_argument("--strength", type=_strength, default=1.0,
                   help="0 = the photo, 1 = the full style (default 1): a blend of the two")
    a.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    a.set_defaults(func=cmd_apply, cli=cli)
