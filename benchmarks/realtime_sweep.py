"""Which training settings make the feed-forward style network's pictures better? A time-boxed side-by-side sweep.

    .venv/bin/python benchmarks/realtime_sweep.py --seconds 50 base tanh=0.5 tanh=0.5+lr=0.001
    .venv/bin/python benchmarks/realtime_sweep.py --seconds 120 --tag long base tanh=0.5

Each variant is ``+``-joined ``key=value`` changes to ``train_style``'s defaults: ``lr``, ``content_weight``,
``style_weight``, ``tv_weight``, ``batch_size``, ``size``, ``precision``, ``photos=a,b,...`` (training photos or
any bundled images), ``net=CxN`` (channels x residual blocks), ``layers=w1,w2,w3,w4,w5`` (training weights of the
style layers relu1_1 ... relu5_1; scoring keeps the preset's), and four experimental network changes:
``tanh=S``, an output head ``photo + S * tanh(change)`` clamped to [0, 1] instead of ``sigmoid(logit(photo) +
change)``; ``noise=K``, K channels of unit Gaussian noise concatenated to the last convolution's input (fresh
every training step, seeded when applied; Ulyanov et al.'s texture networks feed noise); ``outinit=S``, the last
convolution starts from Gaussian weights of standard deviation S / sqrt(fan-in) instead of zero (a zero start
makes any added variance, i.e. texture, a second-order effect with no first-order gradient); ``linear=P``, the
head ``photo + change`` with a straight-through clamp to [0, 1] (the forward pass clamps, the backward pass passes
the gradient as if unclamped), plus, if P > 0, the gradient of a penalty P * sum(out-of-range excess^2).
Two more (issue 21, fourth sweep): ``skip=1``, a full-resolution path to the output - ``down1``'s features (C
channels, full resolution) are concatenated to ``up2``'s output before the last convolution (U-Net style);
``branch=K``, a small full-resolution branch (two 3x3 conv-norm-ReLU layers, K channels) on the photo,
concatenated the same way; ``colour=S``, a per-pixel colour path: a 1x1 convolution of the photo (3 -> 3 channels,
starting at zero, its output times S) added to the change, so one colour transform can serve the whole picture;
and ``distill=K``, a distilled warm start: ``stylize`` (``dsteps=S`` L-BFGS steps,
default 40) paints K random training crops, the network is trained for ``dsec=T`` seconds (default 20) to
reproduce them (L1 in pixels, Adam), and ``train_style`` then goes on from those weights with its own objective
for the rest of the budget (painting and distilling count in ``--seconds``).
``base`` is the defaults. Every variant trains for the same ``--seconds`` from ``--seed`` (default 0) in one
process (so shared-load noise hits them alike), then is scored on the held-out photos with the same float32
objective ``score`` uses and with ``stlib.measures.pattern_scale`` of what the network added to each photo
(broad blobs: many pixels; ``stylize``'s grain: a few). The JSON line also has the probe every 10 steps.
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
NET_KEYS = ("tanh", "noise", "outinit", "linear", "skip", "branch", "colour")
DISTILL_KEYS = ("distill", "dsteps", "dsec")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def parse_variant(text: str) -> tuple[dict[str, float], dict[str, object]]:
    """``"tanh=0.5+lr=0.001"`` -> ({"tanh": 0.5}, {"lr": 0.001}); ``"base"`` -> ({}, {}). The first dict holds the
    experimental network changes (``NET_KEYS`` and ``layers``), the second ``train_style``'s keywords."""
    changes: dict[str, object] = {}
    settings: dict[str, object] = {}
    for part in text.split("+"):
        key, _, value = part.partition("=")
        if key == "base":
            continue
        if key in NET_KEYS or key in DISTILL_KEYS:
            changes[key] = float(value)
        elif key == "layers":
            changes[key] = dict(zip(STYLE_LAYERS, (float(v) for v in value.split(","))))
        elif key in FLOAT_KEYS:
            settings[key] = float(value)
        elif key in INT_KEYS:
            settings[key] = int(value)
        elif key == "precision":
            settings[key] = value
        elif key == "photos":
            settings[key] = tuple(value.split(","))
        elif key == "net":
            from stlib.transform_net import NetConfig

            channels, blocks = value.split("x")
            settings["net_config"] = NetConfig(channels=int(channels), residual_blocks=int(blocks))
        else:
            raise SystemExit(f"unknown setting {key!r} in {text!r}; known: precision, photos, net, layers, "
                             f"{', '.join(NET_KEYS + FLOAT_KEYS + INT_KEYS)}")
    return changes, settings


@contextlib.contextmanager
def network_changes(changes: dict[str, object]) -> Iterator[None]:
    """While active, ``TransformNet`` and ``train_style`` carry the experimental ``changes`` (see the docstring)."""
    import dataclasses

    import torch.nn.functional as F

    from stlib import style_training, transform_net

    cls = transform_net.TransformNet
    original = cls.__init__, cls.forward, style_training.preset_for
    tanh, noise, outinit, linear, skip, branch, colour = (changes.get(k) for k in NET_KEYS)
    layers = changes.get("layers")

    def init(self, config=None, **fields):
        original[0](self, config, **fields)
        if branch:
            k = int(branch)
            self.branch = torch.nn.Sequential(transform_net.ConvLayer(3, k, 3, norm=self.config.norm),
                                              transform_net.ConvLayer(k, k, 3, norm=self.config.norm))
        if noise or skip or branch:
            extra = int(noise or 0) + (self.config.channels if skip else 0) + int(branch or 0)
            self.out = transform_net.ConvLayer(self.config.channels + extra, 3, 9, relu=False)
            torch.nn.init.zeros_(self.out.conv.weight)
            torch.nn.init.zeros_(self.out.conv.bias)
        if outinit:
            torch.nn.init.normal_(self.out.conv.weight, std=float(outinit) / self.out.conv.weight[0].numel() ** 0.5)
        if colour:
            self.colour = torch.nn.Conv2d(3, 3, 1)
            torch.nn.init.zeros_(self.colour.weight)
            torch.nn.init.zeros_(self.colour.bias)

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        h, w = photos.shape[-2:]
        x = F.pad(photos, (0, -w % transform_net.DOWNSCALE, 0, -h % transform_net.DOWNSCALE), mode="reflect")
        first = self.down1(x)
        parts = [self.up2(self.up1(self.residuals(self.down3(self.down2(first)))))]
        if skip:
            parts.append(first)
        if branch:
            parts.append(self.branch(x))
        x = torch.cat(parts, 1) if len(parts) > 1 else parts[0]
        if noise:
            seeded = None if self.training else torch.Generator().manual_seed(0)
            extra = torch.randn((x.shape[0], int(noise), *x.shape[-2:]), generator=seeded).to(x)
            x = torch.cat([x, extra], 1)
        change = self.out(x).float()[..., :h, :w]
        if colour:  # one colour transform for every pixel, learned (scaled by ``colour``) beside the conv path
            change = change + float(colour) * self.colour(photos.float())
        if linear is not None:
            raw = photos.float() + change
            if float(linear) and raw.requires_grad:  # out-of-range penalty P * sum(excess^2), as a gradient only
                raw.register_hook(lambda grad: grad + 2 * float(linear) * (raw - raw.clamp(0, 1)).detach())
            return raw + (raw.clamp(0, 1) - raw).detach()  # straight-through clamp: forward clamps, backward is 1
        if tanh:
            return (photos.float() + float(tanh) * torch.tanh(change)).clamp(0, 1)
        return torch.sigmoid(torch.logit(photos.float(), eps=transform_net.LOGIT_EPS) + change)

    if noise or outinit or skip or branch or colour:
        cls.__init__ = init
    if noise or tanh or linear is not None or skip or branch or colour:
        cls.forward = forward
    if layers:
        style_training.preset_for = lambda source: dataclasses.replace(original[2](source), style_layers=layers)
    try:
        yield
    finally:
        cls.__init__, cls.forward, style_training.preset_for = original


def distilled_net(vgg, style: str, size: int, crops: int, steps: int, seconds: float, seed: int = 0):
    """A ``TransformNet`` (the defaults' CPU config, with any active ``network_changes``) trained for ``seconds``
    to reproduce ``stylize``'s pictures of ``crops`` random training crops (``steps`` L-BFGS steps each, the
    painting at ``size``): L1 in pixels, Adam lr 2e-3, batches of 4 with random left-right flips."""
    import stlib
    from stlib.images import load_image
    from stlib.style_training import TRAIN_PHOTOS, _seeded_net, random_crops
    from stlib.transform_net import SMALL

    painting = load_image(style, size)
    pool = [load_image(p, max_size=2 * size) for p in TRAIN_PHOTOS]
    photos = random_crops(pool, crops, size, torch.Generator().manual_seed(seed + 20_000))
    targets = torch.cat([stlib.stylize(photos[i:i + 1], painting, model=vgg, size=size, steps=steps,
                                       progress=False).image for i in range(crops)])
    net = _seeded_net(SMALL, seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed + 30_000)
    start, step, loss = time_now(), 0, float("nan")
    while time_now() - start < seconds:
        pick = torch.randint(crops, (min(4, crops),), generator=generator)
        x, y = photos[pick], targets[pick]
        if torch.rand(1, generator=generator).item() < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        optimiser.zero_grad(set_to_none=True)
        error = (net(x) - y).abs().mean()
        error.backward()
        optimiser.step()
        step, loss = step + 1, error.item()
    net.distill_info = {"distill_steps": step, "distill_l1": round(loss, 4),
                        "start_l1": round(float((photos - targets).abs().mean()), 4)}
    return net, targets


def time_now() -> float:
    import time

    return time.perf_counter()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--seconds", type=float, default=50.0, help="training time per variant")
    parser.add_argument("--style", default="swirls")
    parser.add_argument("--tag", default="sweep")
    parser.add_argument("--seed", type=int, default=0, help="train_style's seed (network start, crops)")
    args = parser.parse_args()
    parsed = [(v, *parse_variant(v)) for v in args.variants]

    import matplotlib

    matplotlib.use("Agg")
    import stlib
    from stlib import measures, plots
    from stlib.images import load_image
    from stlib.style_training import HELD_OUT_PHOTOS, score, train_style

    vgg = stlib.load_vgg19(os.environ.get("STLIB_WEIGHTS", "random"))
    terms = stlib.preset_for(vgg.weights_source)
    painting = load_image(args.style, 128)
    photos = {name: load_image(name, 128) for name in HELD_OUT_PHOTOS}
    panels = {}
    from stlib import style_training

    for label, changes, settings in parsed:
        with network_changes(changes):
            t0, extra = time_now(), {}
            seeded = style_training._seeded_net
            if changes.get("distill"):
                net, targets = distilled_net(vgg, args.style, settings.get("size", 128), int(changes["distill"]),
                                             int(changes.get("dsteps", 40)), float(changes.get("dsec", 20)), args.seed)
                extra = {**net.distill_info, "distill_seconds": round(time_now() - t0, 1)}
                panels[f"{label}\nstylize target (train crop)"] = targets[:1]
                with torch.no_grad():
                    net.eval()
                    first = photos[HELD_OUT_PHOTOS[0]]
                    start = net(first)
                    panels[f"{label}\ndistilled only: {score(vgg, start, first, painting, terms):.3g}"] = start
                    net.train()
                style_training._seeded_net = lambda config, seed: net
            try:
                result = train_style(args.style, model=vgg, steps=100_000, time_limit=args.seconds - (time_now() - t0),
                                     every=10, progress=False, seed=args.seed, **settings)
            finally:
                style_training._seeded_net = seeded
            outputs = {name: result.apply(photo) for name, photo in photos.items()}
        held = {name: score(vgg, outputs[name], photo, painting, terms) for name, photo in photos.items()}
        pattern = {name: measures.pattern_scale(outputs[name], photo) for name, photo in photos.items()}
        for name, image in outputs.items():
            panels[f"{label}\n{name}: {held[name]:.3g}"] = image
        losses = [h["total"] for h in result.history]
        probes = [round(h["probe"]) for h in result.history if "probe" in h]
        print(json.dumps({"variant": label, "steps": len(losses), **extra, "probes": probes,
                          "best_step": result.settings["best_step"],
                          "start_probe": round(result.settings["start_probe"], 1),
                          "best_probe": round(result.settings["best_probe"], 1),
                          "held_out": {k: round(v, 1) for k, v in held.items()},
                          "held_out_sum": round(sum(held.values()), 1),
                          "pattern_px": {k: round(v, 1) for k, v in pattern.items()},
                          "load": round(os.getloadavg()[0], 1),
                          "last20_train_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 1)}), flush=True)
    plots.save_figure(plots.show_images(panels, ncols=4, size=2.4), HERE / f"realtime_sweep_{args.tag}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
