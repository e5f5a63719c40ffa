"""Train a feed-forward style network (``stlib.transform_net``) with stlib's own objective.

Per-image optimisation (``stylize``) solves one problem per photo. *Amortisation* (Johnson et al. 2016;
Ulyanov et al. 2016) learns, once, a network ``net`` such that ``net(photo)`` is a good answer for *every*
photo: the training loss is the same objective, averaged over a stream of photos,

    L(net) = mean over photos p of  objective(net(p); content target F(p), style target G(painting))

with the content/style/TV weights and layers of the preset that suits the VGG weights (``stlib.presets``),
computed by ``stlib.engine.objective`` (float32 Gram matrices of bf16 features) under the engine's precision
(bf16 autocast on AMX/AVX-512-BF16 CPUs, bf16/fp16 on CUDA GPUs). The photos are random crops (scales 40-100 %
of the short side), flips and positions of the bundled photos ``TRAIN_PHOTOS``; ``HELD_OUT_PHOTOS`` are never
trained on, so that the course can measure how well the network generalises.

The best weights - by the objective on a fixed probe batch of training crops, evaluated every ``every``
steps - are what ``train_style`` returns, also when Ctrl-C ends it early.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from .engine.objective import Targets, compute_targets, objective
from .engine.precision import autocast, memory_format, resolve_precision
from .images import load_image, resize
from .model import VGG19Features, load_vgg19, resolve_device
from .presets import Preset, preset_for
from .style_file import TrainedStyle, apply_net  # noqa: F401 - TrainedStyle is what train_style returns
from .transform_net import JOHNSON, SMALL, NetConfig, TransformNet

#: Bundled photos the network trains on (random crops of them), and the ones it never sees.
TRAIN_PHOTOS = ("astronaut", "coffee")
HELD_OUT_PHOTOS = ("chelsea", "rocket")
#: Random crops take this fraction (range) of the photo's short side before being resized to ``size``.
CROP_SCALES = (0.4, 1.0)
#: Adam's learning rate (Johnson et al. use 1e-3 for 40,000 steps; a short CPU run learns faster at a larger one).
DEFAULT_LR = 2e-3
#: Photos per probe batch, the fixed crops whose objective decides which weights are the best.
PROBE_SIZE = 4


@dataclass
class TrainInfo:
    """What ``train_style``'s callback receives every ``every`` steps and at the end."""

    step: int
    steps: int
    elapsed: float
    loss: float          # this step's training objective (mean over its batch)
    probe: float         # the objective on the fixed probe crops
    best_probe: float
    net: TransformNet

    def preview(self, photo: torch.Tensor) -> torch.Tensor:
        """The network's current output for ``photo`` (1, 3, H, W), on the CPU."""
        return apply_net(self.net, photo)


def random_crops(photos: Sequence[torch.Tensor], count: int, size: int, generator: torch.Generator,
                 scales: tuple[float, float] = CROP_SCALES) -> torch.Tensor:
    """``count`` augmented square crops (count, 3, size, size) of ``photos`` (each (1, 3, H, W)): a random photo,
    a random side of ``scales`` times its short side, a random position, resized to ``size``, flipped left-right
    half of the time. All randomness comes from ``generator`` (reproducible, the global one is left alone)."""
    if not photos:
        raise ValueError("random_crops needs at least one photo")
    crops = []
    for _ in range(count):
        r = torch.rand(5, generator=generator).tolist()
        photo = photos[min(int(r[0] * len(photos)), len(photos) - 1)]
        h, w = photo.shape[-2:]
        side = max(8, round(min(h, w) * (scales[0] + (scales[1] - scales[0]) * r[1])))
        top, left = int(r[2] * (h - side + 1)), int(r[3] * (w - side + 1))
        crop = resize(photo[..., top:top + side, left:left + side], (size, size))
        crops.append(crop.flip(-1) if r[4] < 0.5 else crop)
    return torch.cat(crops)


def with_weights(preset: Preset, **overrides: float | None) -> Preset:
    """``preset`` with the weights in ``overrides`` that are not None (content_weight, style_weight, tv_weight)."""
    return dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None})


def style_targets(model: VGG19Features, painting: torch.Tensor, terms: Preset) -> dict[str, torch.Tensor]:
    """The painting's Gram matrices ``{layer: (1, C, C)}`` at the style layers (computed once per training)."""
    return compute_targets(model, painting, [painting], {}, terms.style_layers, [1.0]).style


def batch_objective(model: VGG19Features, outputs: torch.Tensor, photos: torch.Tensor,
                    grams: dict[str, torch.Tensor], terms: Preset) -> dict[str, Any]:
    """``stlib.engine.objective.objective`` of ``outputs`` (B, 3, H, W) against the photos' own content
    features and the painting's Grams ``grams``: the terms, each the mean over the batch."""
    content = compute_targets(model, photos, [], terms.content_layers, {}, []).content
    targets = Targets(content=content, style=grams)
    return objective(model, outputs, targets, terms.content_layers, terms.style_layers, terms.content_weight,
                     terms.style_weight, terms.tv_weight)


def score(model: VGG19Features, image: torch.Tensor, photo: torch.Tensor, painting: torch.Tensor,
          terms: Preset) -> float:
    """The float32 objective of ``image`` (1, 3, H, W) as a stylisation of ``photo`` with ``painting``: the one
    number that compares a network's output with ``stylize``'s result at equal content (same targets)."""
    device = model.mean.device
    with torch.no_grad():
        grams = style_targets(model, painting.to(device), terms)
        return float(batch_objective(model, image.to(device), photo.to(device), grams, terms)["total"])


def _seeded_net(config: NetConfig, seed: int) -> TransformNet:
    """A network initialised from ``seed`` without disturbing torch's global random generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TransformNet(config)


def train_style(
    style: Any,
    *,
    model: VGG19Features | None = None,
    weights: str = "auto",
    size: int = 128,
    batch_size: int = 4,
    steps: int = 300,
    time_limit: float | None = None,
    lr: float = DEFAULT_LR,
    net_config: NetConfig | None = None,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    photos: Sequence[Any] = TRAIN_PHOTOS,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    every: int = 25,
    progress: bool = True,
    callback: Callable[[TrainInfo], bool | None] | None = None,
    stop: Any = None,
) -> TrainedStyle:
    """Train a ``TransformNet`` to paint photos in the style of ``style`` (a path, bundled name or tensor).

    ``size``: side of the square training crops; ``batch_size`` crops per step; ``steps`` Adam steps, or fewer
    when ``time_limit`` seconds run out. Objective weights default to ``stlib.preset_for(model)``'s.
    ``photos``: what the crops are taken from (default ``TRAIN_PHOTOS``). ``seed`` fixes the network's
    initialisation and the crops: the same seed, settings and machine give the same network, bit for bit.
    ``callback(TrainInfo)`` runs every ``every`` steps and at the end (returning False stops);
    ``stop.is_set()`` is checked every step. Ctrl-C (``KeyboardInterrupt``) ends training and keeps the best
    weights so far; ``result.stopped`` says so.
    """
    _check_arguments(size=size, batch_size=batch_size, steps=steps, every=every, time_limit=time_limit)
    t_start = time.perf_counter()
    run = _Training.prepare(style, model, weights, device, precision, size, lr, net_config, photos, seed,
                            content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)
    settings = {
        "style": style if isinstance(style, str) else "an image", "size": size, "batch_size": batch_size,
        "lr": lr, "seed": seed, "photos": [p if isinstance(p, str) else "an image" for p in photos],
        **run.summary(),
    }
    history, stopped = run.train(steps, batch_size, time_limit, every, progress, callback, stop, t_start)
    elapsed = time.perf_counter() - t_start
    settings.update({"steps": len(history), "best_step": run.best_step, "start_probe": run.start_probe,
                     "best_probe": run.best_probe, "train_seconds": round(elapsed, 2)})
    return TrainedStyle(net=run.net.cpu().to(memory_format=torch.contiguous_format), settings=settings,
                        history=history, elapsed=elapsed, stopped=stopped)


def _check_arguments(*, size: int, batch_size: int, steps: int, every: int, time_limit: float | None) -> None:
    """A ValueError that names the argument, for counts that are not whole numbers in range."""
    for name, value in (("size", size), ("batch_size", batch_size), ("steps", steps), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "steps" else 1):
            raise ValueError(f"{name} must be a whole number >= {0 if name == 'steps' else 1}, not {value!r}")
    if size < 32:
        raise ValueError(f"size={size} is too small: VGG-19's style layers need crops of at least 32 pixels")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds (or None), not {time_limit!r}")


@dataclass
class _Training:
    """One training run: the frozen VGG-19 and its targets, the network and its optimiser, the photos' crops,
    and the best weights so far (judged on fixed probe crops)."""

    model: VGG19Features
    net: TransformNet
    optimiser: torch.optim.Optimizer
    terms: Preset
    preset: str
    grams: dict[str, torch.Tensor]  # the painting's Gram matrices at the training size
    pool: list[torch.Tensor]  # the training photos, crops are cut from
    probe: torch.Tensor  # (PROBE_SIZE, 3, size, size) fixed crops on the device
    generator: torch.Generator  # the training crops' randomness
    size: int
    device: torch.device
    precision: str
    layout: torch.memory_format
    best_probe: float = math.inf
    start_probe: float = math.inf
    best_step: int = 0
    best_state: dict[str, Any] | None = None

    @classmethod
    def prepare(cls, style: Any, model: VGG19Features | None, weights: str, device: str, precision: str, size: int,
                lr: float, net_config: NetConfig | None, photos: Sequence[Any], seed: int,
                **weight_overrides: float | None) -> _Training:
        """Load what ``train_style`` needs and seed the network, the crops and the probe from ``seed``."""
        dev = resolve_device(device) if model is None else model.mean.device
        if model is None:
            model = load_vgg19(weights, device=dev)
        chosen = resolve_precision(precision, dev)
        layout = memory_format(chosen, dev)
        model.to(memory_format=layout)
        preset = preset_for(model.weights_source)
        terms = with_weights(preset, **weight_overrides)
        config = net_config if net_config is not None else (JOHNSON if dev.type == "cuda" else SMALL)
        painting = load_image(style, max_size=2 * size)
        pool = [load_image(p, max_size=2 * size) for p in photos]  # crops of up to the whole photo, then resized
        probe = random_crops(pool, PROBE_SIZE, size, torch.Generator().manual_seed(seed + 10_000)).to(dev)
        net = _seeded_net(config, seed).to(dev).to(memory_format=layout)
        with autocast(chosen, dev):
            grams = style_targets(model, resize(painting, size).to(dev), terms)
        return cls(model, net, torch.optim.Adam(net.parameters(), lr=lr), terms, preset.name, grams, pool, probe,
                   torch.Generator().manual_seed(seed), size, dev, chosen, layout)

    def summary(self) -> dict[str, Any]:
        """The objective's settings, for ``TrainedStyle.settings``."""
        t = self.terms
        return {"content_weight": t.content_weight, "style_weight": t.style_weight, "tv_weight": t.tv_weight,
                "content_layers": dict(t.content_layers), "style_layers": dict(t.style_layers), "preset": self.preset,
                "vgg_weights": self.model.weights_source, "device": str(self.device), "precision": self.precision}

    def probe_value(self) -> float:
        """The objective of the network's outputs on the probe crops (evaluation mode, no gradient)."""
        self.net.eval()
        with torch.no_grad(), autocast(self.precision, self.device):
            photos = self.probe.contiguous(memory_format=self.layout)
            value = float(batch_objective(self.model, self.net(photos), photos, self.grams, self.terms)["total"])
        self.net.train()
        return value

    def keep_if_best(self, step: int) -> float:
        """Measure the probe; keep the weights when they are the best so far. Returns the probe's value."""
        value = self.probe_value()
        if value < self.best_probe:
            self.best_probe, self.best_state, self.best_step = value, copy.deepcopy(self.net.state_dict()), step
        return value

    def step(self, batch_size: int) -> dict[str, float]:
        """One Adam step on ``batch_size`` fresh crops; the batch's mean terms. A non-finite objective raises
        ``FloatingPointError`` before the weights change."""
        photos = random_crops(self.pool, batch_size, self.size, self.generator).to(self.device)
        photos = photos.contiguous(memory_format=self.layout)
        self.optimiser.zero_grad(set_to_none=True)
        with autocast(self.precision, self.device):
            terms = batch_objective(self.model, self.net(photos), photos, self.grams, self.terms)
        total = float(terms["total"].detach())
        if not math.isfinite(total):
            raise FloatingPointError(total)
        terms["total"].backward()
        self.optimiser.step()
        return {k: float(terms[k].detach()) for k in ("total", "content", "style", "tv")}

    def train(self, steps: int, batch_size: int, time_limit: float | None, every: int, progress: bool,
              callback: Callable[[TrainInfo], bool | None] | None, stop: Any,
              t_start: float) -> tuple[list[dict[str, Any]], str | None]:
        """``train_style``'s loop: up to ``steps`` steps (or ``time_limit`` seconds since ``t_start``), the probe
        and ``callback`` every ``every`` steps and at the end. Leaves the best weights in ``self.net`` (evaluation
        mode). Returns (the history, why it stopped early or None); Ctrl-C ends it like ``stop``."""
        history: list[dict[str, Any]] = []
        self.start_probe = self.best_probe = self.probe_value()  # the start is the first best (even a NaN one)
        self.best_state, self.best_step = copy.deepcopy(self.net.state_dict()), 0
        stopped = None
        bar = tqdm(total=steps, disable=not progress, desc="train-style", unit="step", leave=True)
        try:
            for step in range(1, steps + 1):
                if stop is not None and stop.is_set():
                    stopped = "interrupted"
                    break
                try:
                    values = self.step(batch_size)
                except FloatingPointError as err:
                    stopped = f"the objective became {err.args[0]} at step {step}; the best weights so far are kept"
                    break
                record: dict[str, Any] = {"step": step, "time": time.perf_counter() - t_start, **values}
                history.append(record)
                bar.update(1)
                bar.set_postfix(loss=f"{record['total']:.4g}", refresh=False)
                out_of_time = time_limit is not None and record["time"] >= time_limit
                if step % every == 0 or step == steps or out_of_time:
                    if time_limit is not None and step < steps:  # the bar's total (and ETA) from the time limit
                        bar.total = min(steps, max(step + 1, int(time_limit * step / record["time"])))
                        bar.refresh()
                    record["probe"] = self.keep_if_best(step)
                    if callback is not None:
                        info = TrainInfo(step, steps, record["time"], record["total"], record["probe"],
                                         self.best_probe, self.net)
                        if callback(info) is False:
                            stopped = "the callback asked to stop"
                            break
                if out_of_time:
                    stopped = f"time limit ({time_limit:g} s)" if step < steps else None
                    break
        except KeyboardInterrupt:
            stopped = "interrupted"
        finally:
            bar.close()
        assert self.best_state is not None
        self.net.load_state_dict(self.best_state)
        self.net.eval()
        for record in history:
            record["best"] = record["step"] == self.best_step
        return history, stopped
