"""Which seeded offline weights let notebook 01's content row teach what ImageNet weights teach?

Gatys et al.'s Fig. 1 (bottom row) reconstructs a photo from white noise at relu1_2 ... relu5_2: with ImageNet
weights the layout survives to relu4_2 and detail fades with depth. This script builds candidate random
VGG-19 weights, reconstructs the photo from each layer the way notebook 01 does (``stlib.stylize`` with
``style_weight=0``, ``init="noise"``, average pooling) and scores each reconstruction by SSIM against the photo
(scikit-image, colour, data range 1). Results go to benchmarks/OFFLINE_WEIGHTS.md (``--write``).

    python benchmarks/offline_weights.py --size 128 --steps 100 --candidates current he_plain
    python benchmarks/offline_weights.py --size 192 --steps 150 --candidates current random --write

Optimiser: ``--optimizer stylize`` uses stlib.stylize exactly as the notebook does; ``--optimizer wolfe`` uses
torch.optim.LBFGS with a strong-Wolfe line search and the same number of loss evaluations, to separate what the
weights allow from what the optimiser reaches.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Callable, Dict

import torch
from skimage.metrics import structural_similarity

import stlib
from stlib import weights as W
from stlib.model import VGG19Features

LAYERS = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]
State = Dict[str, torch.Tensor]


# --------------------------------------------------------------------------------------------- candidates
def _he(shape, gen, zero_mean: bool) -> torch.Tensor:
    fan_in = shape[1] * shape[2] * shape[3]
    w = torch.randn(shape, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_in)
    if zero_mean:
        w -= w.mean(dim=(1, 2, 3), keepdim=True)
    return w


def _build(first: Callable | None, rest: Callable, seed: int = W.RANDOM_SEED) -> State:
    gen = torch.Generator().manual_seed(seed)
    state: State = {}
    for key, shape in W._expected_shapes().items():
        if key.endswith(".bias"):
            state[key] = torch.zeros(shape)
        elif key == "conv1_1.weight" and first is not None:
            state[key] = first(shape, gen).float()
        else:
            state[key] = rest(shape, gen).float()
    return state


def old_zero_mean(seed: int = W.RANDOM_SEED) -> State:
    """stlib's offline weights until issue 13: He-scaled Gaussian filters made zero-mean (float32 draw)."""
    gen = torch.Generator().manual_seed(seed)
    state: State = {}
    for key, shape in W._expected_shapes().items():
        if key.endswith(".weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            w = torch.randn(shape, generator=gen).mul_((2.0 / fan_in) ** 0.5)
            state[key] = w.sub_(w.mean(dim=(1, 2, 3), keepdim=True))
        else:
            state[key] = torch.zeros(shape)
    return state


def _partial_mean(shape, gen, keep: float) -> torch.Tensor:
    """He Gaussian with ``1 - keep`` of each filter's mean removed (keep=0: the old zero-mean filters)."""
    w = _he(shape, gen, False)
    return w - (1 - keep) * w.mean(dim=(1, 2, 3), keepdim=True)


def _orth(shape, gen, zero_mean: bool = False) -> torch.Tensor:
    """A (semi-)orthogonal (out, in*9) matrix with gain sqrt(2) (He's ReLU gain), rows scaled like He's."""
    rows, cols = shape[0], shape[1] * shape[2] * shape[3]
    a = torch.randn(max(rows, cols), min(rows, cols), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    q = q if rows >= cols else q.T
    # rows of an orthonormal-columns (rows x cols) matrix have mean norm sqrt(cols/rows): rescale to sqrt(2)
    q = q * math.sqrt(2.0 * max(rows, cols) / cols) if rows >= cols else q * math.sqrt(2.0)
    return q.reshape(shape)


def _with_mean(shape, gen, frac: float) -> torch.Tensor:
    """He Gaussian plus a positive constant per filter carrying ``frac`` of the filter's energy."""
    w = _he(shape, gen, True)
    fan_in = shape[1] * shape[2] * shape[3]
    return math.sqrt(1 - frac) * w + math.sqrt(frac * 2.0 / fan_in) * torch.ones(shape, dtype=w.dtype)


def _with_rand_mean(shape, gen, frac: float) -> torch.Tensor:
    """He Gaussian zero-mean part plus a constant of random sign per filter carrying ``frac`` of the energy."""
    w = _he(shape, gen, True)
    fan_in = shape[1] * shape[2] * shape[3]
    sign = torch.randint(0, 2, (shape[0], 1, 1, 1), generator=gen).double() * 2 - 1
    return math.sqrt(1 - frac) * w + math.sqrt(frac * 2.0 / fan_in) * sign * torch.ones(shape, dtype=w.dtype)


def _gabor_first(shape, gen) -> torch.Tensor:
    """conv1_1 like a trained net's: oriented luminance edges (odd and even Gabor-like 3x3), colour-opponent
    edges and blobs, then random He filters for the rest; each filter has He's expected norm."""
    out = shape[0]
    yy, xx = torch.meshgrid(torch.arange(-1.0, 2.0, dtype=torch.float64), torch.arange(-1.0, 2.0, dtype=torch.float64),
                            indexing="ij")
    lum = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64) / math.sqrt(3)
    rg = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64) / math.sqrt(2)
    by = torch.tensor([-0.5, -0.5, 1.0], dtype=torch.float64) / math.sqrt(1.5)
    filters = []
    for k in range(8):  # 8 orientations x odd/even phase on luminance
        theta = math.pi * k / 8
        u = xx * math.cos(theta) + yy * math.sin(theta)
        env = torch.exp(-(xx ** 2 + yy ** 2) / 2)
        odd = env * torch.sin(math.pi / 2 * u)
        even = env * torch.cos(math.pi * u)
        even = even - even.mean()
        filters += [lum[:, None, None] * odd, lum[:, None, None] * even]
    for axis in (rg, by):  # colour-opponent edges (4 orientations, both signs) and blobs (both signs)
        for k in range(4):
            theta = math.pi * k / 4
            u = xx * math.cos(theta) + yy * math.sin(theta)
            odd = torch.exp(-(xx ** 2 + yy ** 2) / 2) * torch.sin(math.pi / 2 * u)
            filters += [axis[:, None, None] * odd, -axis[:, None, None] * odd]
        blob = torch.exp(-(xx ** 2 + yy ** 2))
        filters += [axis[:, None, None] * blob, -axis[:, None, None] * blob]
    for sign in (1.0, -1.0):  # brightness blobs: keep the mean luminance
        filters.append(sign * lum[:, None, None] * torch.exp(-(xx ** 2 + yy ** 2)))
    w = torch.stack(filters)
    w = w / w.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * math.sqrt(2.0)
    rest = _he((out - len(w),) + tuple(shape[1:]), gen, False)
    return torch.cat([w, rest])


CANDIDATES: Dict[str, Callable[[], State]] = {
    "old": old_zero_mean,
    "he_plain": lambda: _build(None, lambda s, g: _he(s, g, False)),
    "half_mean": lambda: _build(None, lambda s, g: _partial_mean(s, g, 0.5)),
    "orth": lambda: _build(None, lambda s, g: _orth(s, g)),
    "mean25": lambda: _build(None, lambda s, g: _with_mean(s, g, 0.25)),
    "rmean25": lambda: _build(None, lambda s, g: _with_rand_mean(s, g, 0.25)),
    "gabor_he": lambda: _build(_gabor_first, lambda s, g: _he(s, g, False)),
    "random": lambda: W.random_weights(),
}


# --------------------------------------------------------------------------------------------- measuring
def model_from(state: State, pooling: str = "avg") -> VGG19Features:
    model = VGG19Features(pooling=pooling)
    model.layers.load_state_dict(state)
    model.weights_source = "random"
    return model.eval().requires_grad_(False)


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Colour SSIM of two (1, 3, H, W) images in [0, 1]."""
    x, y = (t[0].permute(1, 2, 0).double().clamp(0, 1).numpy() for t in (a, b))
    return float(structural_similarity(x, y, channel_axis=2, data_range=1.0))


def reconstruct_wolfe(model: VGG19Features, photo: torch.Tensor, layer: str, steps: int) -> torch.Tensor:
    """Content reconstruction from the notebook's seeded noise with torch's L-BFGS + strong-Wolfe line search."""
    with torch.no_grad():
        target = stlib.extract_features(model, photo, [layer])[layer]
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(photo.shape, generator=gen).requires_grad_(True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=steps, max_eval=steps, history_size=10,
                            tolerance_grad=0, tolerance_change=0, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = stlib.content_loss(stlib.extract_features(model, x, [layer])[layer], target)
        loss.backward()
        return loss

    opt.step(closure)
    return x.detach().clamp(0, 1)


def reconstruct_stylize(model: VGG19Features, photo: torch.Tensor, layer: str, steps: int,
                        precision: str) -> torch.Tensor:
    """Notebook 01's call."""
    result = stlib.stylize(photo, "swirls", style_weight=0, content_layers=[layer], tv_weight=0, init="noise",
                           size=max(photo.shape[-2:]), steps=steps, model=model, precision=precision,
                           progress=False)
    return result.image


def evaluate(name: str, photo: torch.Tensor, steps: int, optimizer: str, precision: str,
             layers=LAYERS, save: Path | None = None) -> Dict[str, float]:
    model = model_from(CANDIDATES[name]())
    scores: Dict[str, float] = {}
    images = {}
    start = time.perf_counter()
    for layer in layers:
        if optimizer == "wolfe":
            image = reconstruct_wolfe(model, photo, layer, steps)
        else:
            image = reconstruct_stylize(model, photo, layer, steps, precision)
        scores[layer] = ssim(image, photo)
        images[layer] = image
    scores["seconds"] = time.perf_counter() - start
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        row = torch.cat([photo] + [images[k] for k in layers], dim=-1)
        stlib.save_image(row, save / f"{name}_{optimizer}_{photo.shape[-1]}.png")
    return scores


def transfer(name: str, content: str, style: str, size: int, steps: int, style_weight: float,
             layer_weights: Dict[str, float], tv_weight: float, save: Path) -> Dict[str, float]:
    """One style transfer as ``stlib demo`` runs it (max pooling, from the content image), saved as a PNG."""
    model = model_from(CANDIDATES[name](), pooling="max")
    result = stlib.stylize(content, style, size=size, steps=steps, model=model, style_weight=style_weight,
                           style_layers=layer_weights, tv_weight=tv_weight, seed=0, progress=False)
    save.mkdir(parents=True, exist_ok=True)
    tag = f"{name}_{Path(content).stem}_{Path(style).stem}_{size}_sw{style_weight:g}_tv{tv_weight:g}"
    stlib.save_image(result.image, save / f"{tag}.png")
    first, last = result.history[0], result.history[-1]
    out = {"style_start": first["style"], "style_end": last["style"], "content_end": last["content"],
           "seconds": result.elapsed, "file": str(save / f"{tag}.png")}
    for layer in layer_weights:
        key = next(k for k in first["layers"] if layer in k and "style" in k)
        out[layer] = f"{first['layers'][key]:.3g}->{last['layers'][key]:.3g}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", nargs="+", default=["old", "random"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--photo", default="chelsea")
    parser.add_argument("--optimizer", choices=["stylize", "wolfe"], default="stylize")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--layers", nargs="+", default=LAYERS)
    parser.add_argument("--save", type=Path, default=None, help="folder for the reconstruction rows (PNG)")
    parser.add_argument("--transfer", nargs=2, metavar=("CONTENT", "STYLE"), default=None,
                        help="run style transfers instead of reconstructions")
    parser.add_argument("--style-weight", type=float, nargs="+", default=[1e5])
    parser.add_argument("--style-layers", type=float, nargs=5, default=None, help="relu1_1 ... relu5_1 weights")
    parser.add_argument("--tv", type=float, nargs="+", default=[0.0])
    args = parser.parse_args()
    if args.transfer:
        layers = dict(zip(stlib.STYLE_LAYERS, args.style_layers or [1.0] * 5))
        for name in args.candidates:
            for sw in args.style_weight:
                for tv in args.tv:
                    r = transfer(name, *args.transfer, args.size, args.steps, sw, layers, tv, args.save or Path("."))
                    print(name, f"sw={sw:g} tv={tv:g}", {k: (round(v, 4) if isinstance(v, float) else v)
                                                          for k, v in r.items()}, flush=True)
        return
    photo = stlib.load_image(args.photo, args.size)
    print(f"{args.photo} {tuple(photo.shape[-2:])}, {args.steps} steps, optimizer {args.optimizer}")
    print("candidate      " + " ".join(f"{k:>8}" for k in args.layers) + "   seconds")
    for name in args.candidates:
        s = evaluate(name, photo, args.steps, args.optimizer, args.precision, args.layers, args.save)
        print(f"{name:<14} " + " ".join(f"{s[k]:8.3f}" for k in args.layers) + f"   {s['seconds']:7.1f}", flush=True)
    if args.save is not None and len(args.candidates) > 1:
        rows = [args.save / f"{name}_{args.optimizer}_{photo.shape[-1]}.png" for name in args.candidates]
        figure(rows, args.candidates, ["photo"] + list(args.layers), args.save / "content_row.png")


def figure(rows, names, columns, out: Path) -> None:
    """Stack the saved rows (one per candidate) into one labelled PNG."""
    from PIL import Image, ImageDraw

    images = [Image.open(r).convert("RGB") for r in rows]
    w, h, pad, top = images[0].width, images[0].height, 90, 16
    canvas = Image.new("RGB", (w + pad, top + len(images) * (h + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    tile = w // len(columns)
    for i, col in enumerate(columns):
        draw.text((pad + i * tile + 4, 2), col, fill="black")
    for j, (image, name) in enumerate(zip(images, names)):
        canvas.paste(image, (pad, top + j * (h + 4)))
        draw.text((4, top + j * (h + 4) + h // 2 - 6), name, fill="black")
    canvas.save(out)


if __name__ == "__main__":
    main()
