"""Which training settings make the feed-forward style network's pictures better? A time-boxed side-by-side sweep.

    .venv/bin/python benchmarks/realtime_sweep.py --seconds 50 base tanh=0.5 tanh=0.5+lr=0.001
    .venv/bin/python benchmarks/realtime_sweep.py --seconds 120 --tag long base tanh=0.5

Each variant is ``+``-joined ``key=value`` changes to ``train_style``'s defaults: ``lr``, ``content_weight``,
``style_weight``, ``tv_weight``, ``batch_size``, ``size``, ``precision``, and ``tanh=S``, an experimental output
head (``photo + S * tanh(change)``, clamped to [0, 1], instead of the network's ``sigmoid(logit(photo) + change)``).
``base`` is the defaults. Every variant trains for the same ``--seconds`` from seed 0 in one process (so shared-load
noise hits them alike), then is scored on the held-out photos with the same float32 objective ``score`` uses.
Prints one JSON line per variant and writes the outputs as one grid, ``realtime_sweep_<tag>.png``, next to this file.
Findings: ``benchmarks/REALTIME_TUNING.md``. No test asserts any of this.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see benchmarks/README.md)

import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
FLOAT_KEYS = ("lr", "content_weight", "style_weight", "tv_weight")
INT_KEYS = ("batch_size", "size")


def parse_variant(text: str) -> tuple[float | None, dict[str, object]]:
    """``"tanh=0.5+lr=0.001"`` -> (0.5, {"lr": 0.001}); ``"base"`` -> (None, {})."""
    head: float | None = None
    settings: dict[str, object] = {}
    for part in text.split("+"):
        key, _, value = part.partition("=")
        if key == "base":
            continue
        if key == "tanh":
            head = float(value)
        elif key in FLOAT_KEYS:
            settings[key] = float(value)
        elif key in INT_KEYS:
            settings[key] = int(value)
        elif key == "precision":
            settings[key] = value
        else:
            raise SystemExit(f"unknown setting {key!r} in {text!r}; known: tanh, precision, "
                             f"{', '.join(FLOAT_KEYS + INT_KEYS)}")
    return head, settings


@contextlib.contextmanager
def tanh_head(scale: float | None) -> Iterator[None]:
    """While active, every ``TransformNet`` outputs ``clamp(photo + scale * tanh(change), 0, 1)`` (None: unchanged)."""
    import torch.nn.functional as F

    from stlib import transform_net

    original = transform_net.TransformNet.forward
    if scale is None:
        yield
        return

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        h, w = photos.shape[-2:]
        x = F.pad(photos, (0, -w % transform_net.DOWNSCALE, 0, -h % transform_net.DOWNSCALE), mode="reflect")
        x = self.up2(self.up1(self.residuals(self.down3(self.down2(self.down1(x))))))
        change = self.out(x).float()[..., :h, :w]
        return (photos.float() + scale * torch.tanh(change)).clamp(0, 1)

    transform_net.TransformNet.forward = forward
    try:
        yield
    finally:
        transform_net.TransformNet.forward = original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--seconds", type=float, default=50.0, help="training time per variant")
    parser.add_argument("--style", default="swirls")
    parser.add_argument("--tag", default="sweep")
    args = parser.parse_args()
    parsed = [(v, *parse_variant(v)) for v in args.variants]

    import matplotlib

    matplotlib.use("Agg")
    import stlib
    from stlib import plots
    from stlib.images import load_image
    from stlib.style_training import HELD_OUT_PHOTOS, score, train_style

    vgg = stlib.load_vgg19(os.environ.get("STLIB_WEIGHTS", "random"))
    terms = stlib.preset_for(vgg.weights_source)
    painting = load_image(args.style, 128)
    photos = {name: load_image(name, 128) for name in HELD_OUT_PHOTOS}
    panels = {}
    for label, head, settings in parsed:
        with tanh_head(head):
            result = train_style(args.style, model=vgg, steps=100_000, time_limit=args.seconds, every=10,
                                 progress=False, seed=0, **settings)
            outputs = {name: result.apply(photo) for name, photo in photos.items()}
        held = {name: score(vgg, outputs[name], photo, painting, terms) for name, photo in photos.items()}
        for name, image in outputs.items():
            panels[f"{label}\n{name}: {held[name]:.3g}"] = image
        losses = [h["total"] for h in result.history]
        print(json.dumps({"variant": label, "steps": len(losses), "best_step": result.settings["best_step"],
                          "start_probe": round(result.settings["start_probe"], 1),
                          "best_probe": round(result.settings["best_probe"], 1),
                          "held_out": {k: round(v, 1) for k, v in held.items()},
                          "held_out_sum": round(sum(held.values()), 1),
                          "last20_train_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 1)}), flush=True)
    plots.save_figure(plots.show_images(panels, ncols=4, size=2.4), HERE / f"realtime_sweep_{args.tag}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
