"""Pictures for the course: image grids, loss curves, feature maps, Gram heat maps and VGG-19 layer tables.

Every function returns a ``matplotlib.figure.Figure`` and never shows it by side effect: the figure is
closed in pyplot before it is returned, so Jupyter draws it exactly once when it is a cell's last value
(elsewhere use ``display(fig)`` or ``fig.savefig("out.png")``). Functions that take ``ax=`` draw into your
axes instead and return that axes' figure, leaving it open.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import matplotlib
import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .images import load_image
from .layers import VGG19_LAYERS, layer_index, layer_stride, receptive_field
from .model import VGG19Features, extract_features

ImageLike = Any  # tensor (1,3,H,W)/(3,H,W)/(H,W), PIL image, NumPy array, path, bundled name, StylizeResult


# ------------------------------------------------------------------------------------------------ helpers
def _as_image(item: ImageLike) -> torch.Tensor:
    """Anything picture-like -> (1, 3, H, W) float in [0, 1] on the CPU."""
    if hasattr(item, "image") and isinstance(getattr(item, "image"), torch.Tensor):  # StylizeResult
        item = item.image
    if isinstance(item, torch.Tensor):
        item = item.detach().float().cpu()
    return load_image(item, min_size=1)


def _hwc(image: torch.Tensor) -> Any:
    """(1, 3, H, W) tensor -> (H, W, 3) NumPy array for imshow."""
    return image[0].clamp(0, 1).permute(1, 2, 0).numpy()


def _finish(fig: Figure) -> Figure:
    """Detach a pyplot-made figure from pyplot so it is displayed only as a return value."""
    plt.close(fig)
    return fig


def _wrap(title: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(title), width=max(8, width))) if title else ""


# ------------------------------------------------------------------------------------------------ images
def show_images(
    images: Union[ImageLike, Sequence[ImageLike], Mapping[str, ImageLike]],
    titles: Optional[Sequence[str]] = None,
    ncols: Optional[int] = None,
    size: float = 3.0,
    true_size: bool = False,
) -> Figure:
    """A grid of images with titles; a dict gives ``{title: image}``; each image is drawn ``size`` inches wide,
    or with ``true_size=True`` all at one pixel scale (the largest fills its panel, a half-size one half of it)."""
    if isinstance(images, Mapping):
        titles = list(images.keys()) if titles is None else titles
        items = list(images.values())
    elif isinstance(images, (list, tuple)):
        items = list(images)
    else:
        items = [images]
    if not items:
        raise ValueError("show_images needs at least one image")
    titles = [""] * len(items) if titles is None else [str(t) for t in titles]
    if len(titles) != len(items):
        raise ValueError(f"got {len(items)} images but {len(titles)} titles: give one title per image")
    pictures = [_as_image(item) for item in items]
    ncols = min(len(pictures), 5) if ncols is None else max(1, int(ncols))
    nrows = math.ceil(len(pictures) / ncols)
    aspect = max(p.shape[-2] / p.shape[-1] for p in pictures)  # height / width of the tallest picture
    title_room = 0.45 if any(titles) else 0.1
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size * aspect + title_room)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(pictures):
            ax.imshow(_hwc(pictures[i]))
            if true_size:  # every panel spans the largest picture's pixels, so smaller ones look smaller
                ax.set_xlim(-0.5, max(p.shape[-1] for p in pictures) - 0.5)
                ax.set_ylim(max(p.shape[-2] for p in pictures) - 0.5, -0.5)
            ax.set_title(_wrap(titles[i], int(size * 9)), fontsize=10)
    fig.tight_layout(pad=0.3)
    return _finish(fig)


# ------------------------------------------------------------------------------------------------ losses
def _history(run: Any) -> List[Dict[str, Any]]:
    if hasattr(run, "history"):
        return list(run.history)
    if isinstance(run, (list, tuple)) and all(isinstance(h, Mapping) for h in run):
        return list(run)
    raise TypeError(f"plot_losses needs StylizeResults or history lists (lists of dicts), got {type(run).__name__}")


def _value(entry: Mapping[str, Any], key: str) -> Optional[float]:
    if key in entry:
        return float(entry[key])
    layers = entry.get("layers", {})
    return float(layers[key]) if key in layers else None


def plot_losses(
    runs: Any, key: str = "total", x: str = "step", logy: bool = True, ax: Optional[Axes] = None
) -> Figure:
    """Loss curves of several runs: ``runs`` maps label -> StylizeResult (or its history); ``x`` is "step" or "time".

    ``key`` is "total", "content", "style", "tv" or a per-layer key such as "style:relu3_1". A dot marks the
    step whose image a run returned (``best`` in its history). Trials the safeguarded L-BFGS rejected
    (``accepted`` False: the image went back, so the picture never got that bad) are hollow circles, not
    joined into the line of accepted steps.
    """
    if x not in ("step", "time"):
        raise ValueError(f"x must be 'step' or 'time' (seconds), not {x!r}")
    if not isinstance(runs, Mapping):
        runs = {"run": runs}
    if not runs:
        raise ValueError("plot_losses needs at least one run")
    curves = []
    for label, run in runs.items():  # everything is checked before a figure exists, so an error leaks none
        history = _history(run)
        if not history:
            continue
        values = [_value(h, key) for h in history]
        if all(v is None for v in values):
            available = sorted(k for k in history[0] if k not in ("layers", "size", "precision", "step", "time", "accepted", "best"))
            available += sorted(history[0].get("layers", {}))
            raise KeyError(f"no loss called {key!r} in run {label!r}; available: {', '.join(available)}")
        xs = [float(h["step"] if x == "step" else h["time"]) for h in history]
        drawn = [(a, v, h.get("accepted", True)) for a, v, h in zip(xs, values, history)
                 if v is not None and (v > 0 or not logy)]
        best = [(a, v) for a, v, h in zip(xs, values, history) if h.get("best") and v is not None and (v > 0 or not logy)]
        rejected = [(a, v) for a, v, ok in drawn if not ok]
        curves.append((str(label), [a for a, _, ok in drawn if ok], [v for _, v, ok in drawn if ok], best, rejected))
    own = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
    any_rejected = False
    for label, xs_drawn, ys_drawn, best, rejected in curves:
        line, = ax.plot(xs_drawn, ys_drawn, label=label, linewidth=1.6)
        for bx, by in best:  # the step whose image the run returned
            ax.plot([bx], [by], "o", color=line.get_color(), markersize=5)
        if rejected:  # trials that were evaluated and undone: hollow, outside the line
            any_rejected = True
            ax.plot([p[0] for p in rejected], [p[1] for p in rejected], "o", markerfacecolor="none",
                    markeredgecolor=line.get_color(), markersize=4.5, markeredgewidth=1.0, linestyle="none")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("optimisation step" if x == "step" else "wall time (seconds)")
    ax.set_ylabel(f"{key} loss")
    ax.grid(True, which="major", alpha=0.3)
    if any_rejected:  # one legend entry for every run's rejected trials
        ax.plot([], [], "o", markerfacecolor="none", markeredgecolor="grey", linestyle="none",
                label="rejected trial (undone)")
    if len(runs) > 1 or next(iter(runs)) != "run" or any_rejected:
        ax.legend(frameon=False)
    fig = ax.figure
    if own:
        fig.tight_layout()
        return _finish(fig)
    return fig


# ------------------------------------------------------------------------------------------ per-layer shares
def _share_rows(rows: Mapping[str, Any]) -> List[Tuple[str, Dict[str, float]]]:
    """``{label: LayerShares | {layer: share}}`` -> [(bar label, {layer: share})]: a LayerShares gives two bars."""
    out = []
    for label, item in rows.items():
        if hasattr(item, "loss") and hasattr(item, "gradient"):
            out += [(f"{label}: loss", dict(item.loss)), (f"{label}: gradient", dict(item.gradient))]
        elif isinstance(item, Mapping):
            out.append((str(label), {str(k): float(v) for k, v in item.items()}))
        else:
            raise TypeError(f"plot_layer_shares: {label!r} is a {type(item).__name__}, not LayerShares or a dict")
    return out


def draw_layer_shares(ax: Axes, rows: Mapping[str, Any], font_pt: float = 9.0) -> None:
    """Draw stacked horizontal bars on ``ax``, one per row, each split into the style layers' shares (in %).

    ``rows`` maps a label to a ``stlib.shares.LayerShares`` (two bars: loss and gradient) or to a dict
    ``{layer: share}``. Shares of 8 % and more are written on their segment. Uses no pyplot (any thread)."""
    bars = _share_rows(rows)
    layers = list(dict.fromkeys(name for _, shares in bars for name in shares))
    layers.sort(key=layer_index)
    colors = matplotlib.colormaps["viridis"]
    color = {name: colors(0.1 + 0.8 * i / max(1, len(layers) - 1)) for i, name in enumerate(layers)}
    for row, (label, shares) in enumerate(bars):
        total = sum(shares.values()) or 1.0
        left = 0.0
        for name in layers:
            width = 100 * shares.get(name, 0.0) / total
            ax.barh(row, width, left=left, color=color[name], edgecolor="white", linewidth=0.5,
                    label=name if row == 0 else None)
            if width >= 8 * font_pt / 9:  # room for "52%" at this font size
                dark = layers.index(name) < len(layers) / 2
                ax.text(left + width / 2, row, f"{width:.0f}%", ha="center", va="center", fontsize=font_pt * 0.85,
                        color="white" if dark else "black")
            left += width
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([label for label, _ in bars], fontsize=font_pt)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the style pull (%)", fontsize=font_pt)
    ax.tick_params(axis="x", labelsize=font_pt)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(layers), frameon=False, fontsize=font_pt * 0.85,
              handlelength=0.7, handletextpad=0.3, columnspacing=0.6, borderaxespad=0.2)


def plot_layer_shares(rows: Mapping[str, Any], ax: Optional[Axes] = None) -> Figure:
    """Each style layer's share of the weighted style loss and of the gradient, as stacked bars.

    ``rows`` maps a label to a ``LayerShares`` (``stlib.shares.layer_shares``, ``StylizeResult.shares``), a
    ``StylizeResult`` (its shares at the start, or the loss shares of its best step) or a dict
    ``{layer: share}``. A layer whose segment is a sliver is, in practice, switched off."""
    resolved = {}
    for label, item in rows.items():
        if hasattr(item, "layer_shares") and callable(item.layer_shares):  # a StylizeResult
            item = item.shares.get("start") if getattr(item, "shares", None) else item.layer_shares()
        resolved[label] = item
    n_bars = len(_share_rows(resolved))
    own = ax is None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.0, 0.9 + 0.36 * n_bars))
    draw_layer_shares(ax, resolved)
    fig = ax.figure
    if own:
        fig.tight_layout()
        return _finish(fig)
    return fig


# ------------------------------------------------------------------------------------------------ features
def _feature_batch(features: torch.Tensor, what: str) -> torch.Tensor:
    if features.dim() == 3:
        features = features.unsqueeze(0)
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"{what} must be one image's feature maps (1, C, H, W) or (C, H, W), got "
                         f"{tuple(features.shape)}")
    return features.detach().float().cpu()[0]


def _strongest(maps: torch.Tensor, n: int) -> List[int]:
    """Indices of the ``n`` channels whose maps vary most over space (flat maps show nothing), in channel order."""
    spread = maps.flatten(1).std(dim=1)
    return sorted(torch.argsort(spread, descending=True)[:n].tolist())


def show_feature_maps(
    features: Union[torch.Tensor, Mapping[str, torch.Tensor]],
    n: int = 16,
    ncols: Optional[int] = None,
    size: float = 1.3,
    pick: str = "strongest",
    cmap: str = "viridis",
) -> Figure:
    """Feature maps as small images: one (1, C, H, W) tensor as a grid, or a dict ``{layer: (1, C, H, W)}`` as one row per layer.

    ``pick="strongest"`` shows the ``n`` channels that vary most over the image, ``"first"`` channels 0..n-1.
    Each map is scaled to its own range (bright = strong activation).
    """
    if pick not in ("strongest", "first"):
        raise ValueError(f"pick must be 'strongest' or 'first', not {pick!r}")
    if isinstance(features, Mapping):
        blocks = {str(k): _feature_batch(v, f"features[{k!r}]") for k, v in features.items()}
        ncols = n if ncols is None else ncols
    else:
        blocks = {"": _feature_batch(features, "features")}
        ncols = min(n, 8) if ncols is None else ncols
    if not blocks:
        raise ValueError("show_feature_maps needs at least one layer")
    rows_per_block = {k: math.ceil(min(n, v.shape[0]) / ncols) for k, v in blocks.items()}
    nrows = sum(rows_per_block.values())
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size * 1.08), squeeze=False)
    row = 0
    for name, maps in blocks.items():
        chosen = _strongest(maps, n) if pick == "strongest" else list(range(min(n, maps.shape[0])))
        for r in range(rows_per_block[name]):
            for col in range(ncols):
                ax = axes[row + r, col]
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)
                i = r * ncols + col
                if i >= len(chosen):
                    continue
                ax.imshow(maps[chosen[i]].numpy(), cmap=cmap, interpolation="nearest")
                ax.set_title(f"ch {chosen[i]}", fontsize=7, pad=2)
            if r == 0 and name:
                c, h, w = maps.shape
                axes[row, 0].set_ylabel(f"{name}\n{c}×{h}×{w}", fontsize=9, rotation=0, ha="right", va="center")
        row += rows_per_block[name]
    fig.tight_layout(pad=0.2, h_pad=0.3, w_pad=0.1)
    return _finish(fig)


def show_gram(
    gram: Union[torch.Tensor, Mapping[str, torch.Tensor]],
    channels: Optional[int] = 64,
    title: Optional[str] = None,
    size: float = 3.2,
    cmap: str = "magma",
    ax: Optional[Axes] = None,
    shared_scale: bool = False,
) -> Figure:
    """Heat map of a Gram matrix (C, C) or (1, C, C), or of several side by side (dict ``{title: gram}``).

    Only the first ``channels`` x ``channels`` block is drawn (None: all), so single cells stay visible.
    ``shared_scale=True`` gives every panel the same colour scale, so their sizes can be compared.
    """
    grams = dict(gram) if isinstance(gram, Mapping) else {title or "": gram}
    if not grams:
        raise ValueError("show_gram needs at least one Gram matrix")
    if ax is not None and len(grams) != 1:
        raise ValueError("ax= draws one Gram matrix; pass a single tensor, or no ax for a dict")
    matrices = {}
    for name, g in grams.items():
        g = g.detach().float().cpu()
        if g.dim() == 3 and g.shape[0] == 1:
            g = g[0]
        if g.dim() != 2 or g.shape[0] != g.shape[1]:
            raise ValueError(f"a Gram matrix is (C, C) or (1, C, C), got {tuple(g.shape)}; "
                             "for a batch, pick one image: gram[0]")
        matrices[name] = g
    own = ax is None
    if ax is None:
        fig, axes = plt.subplots(1, len(grams), figsize=(len(grams) * (size + 0.5), size), squeeze=False)
        axes_list = list(axes.flat)
    else:
        fig, axes_list = ax.figure, [ax]
    def block(g: torch.Tensor) -> torch.Tensor:
        k = g.shape[0] if channels is None else min(int(channels), g.shape[0])
        return g[:k, :k]

    limits: Dict[str, Any] = {}
    if shared_scale:
        limits = {"vmin": min(float(block(g).min()) for g in matrices.values()),
                  "vmax": max(float(block(g).max()) for g in matrices.values())}
    for a, (name, g) in zip(axes_list, matrices.items()):
        im = a.imshow(block(g).numpy(), cmap=cmap, interpolation="nearest", **limits)
        a.set_title(_wrap(name, int(size * 10)), fontsize=10)
        a.set_xlabel("channel j", fontsize=8)
        a.set_ylabel("channel i", fontsize=8)
        a.tick_params(labelsize=7)
        a.figure.colorbar(im, ax=a, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    if own:
        fig.tight_layout()
        return _finish(fig)
    return fig


# ------------------------------------------------------------------------------------------------ layers
class LayerRow(NamedTuple):
    """One line of ``layer_table``: a layer's name, its output shape (C, H, W), stride and receptive field (pixels)."""

    name: str
    shape: Tuple[int, int, int]
    stride: int
    receptive_field: int


def layer_table(model: VGG19Features, image: torch.Tensor, layers: Optional[Sequence[str]] = None) -> List[LayerRow]:
    """Output shape, stride and receptive field of each VGG-19 layer (default: all 37) for ``image`` (1, 3, H, W)."""
    names = list(VGG19_LAYERS) if layers is None else [str(n) for n in layers]
    names.sort(key=layer_index)
    with torch.no_grad():
        feats = extract_features(model, image, names)
    return [LayerRow(n, tuple(int(s) for s in feats[n].shape[1:]), layer_stride(n), receptive_field(n))  # type: ignore[misc]
            for n in names]


def format_layer_table(rows: Sequence[LayerRow]) -> str:
    """``layer_table`` rows as a plain-text table (one line per layer)."""
    lines = [f"{'layer':<9}{'output C x H x W':>20}{'stride':>8}{'receptive field':>17}"]
    for row in rows:
        c, h, w = row.shape
        lines.append(f"{row.name:<9}{f'{c} x {h} x {w}':>20}{row.stride:>8}{f'{row.receptive_field} px':>17}")
    return "\n".join(lines)


def plot_layer_table(model: VGG19Features, image: torch.Tensor, layers: Optional[Sequence[str]] = None) -> Figure:
    """Channels, positions (H*W) and receptive field of each layer, drawn against depth: the table as a picture."""
    rows = layer_table(model, image, layers)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    xs = range(len(rows))
    left.semilogy(xs, [r.shape[0] for r in rows], "o-", label="channels C", markersize=3)
    left.semilogy(xs, [r.shape[1] * r.shape[2] for r in rows], "s-", label="positions H×W", markersize=3)
    left.set_title("what each layer outputs")
    left.legend(frameon=False)
    right.plot(xs, [r.receptive_field for r in rows], "o-", color="tab:red", markersize=3)
    right.axhline(max(image.shape[-2:]), color="grey", linestyle="--", linewidth=1)
    right.text(0, max(image.shape[-2:]), " image size", va="bottom", fontsize=8, color="grey")
    right.set_title("receptive field (pixels one unit sees)")
    for a in (left, right):
        ticks = [i for i, r in enumerate(rows) if not r.name.startswith("conv")]
        a.set_xticks(ticks)
        a.set_xticklabels([rows[i].name for i in ticks], rotation=90, fontsize=7)
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    return _finish(fig)


def show_receptive_fields(
    image: ImageLike, layers: Sequence[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), size: float = 4.0
) -> Figure:
    """The image with a centred square per layer showing how many pixels one unit of that layer sees."""
    picture = _as_image(image)
    h, w = picture.shape[-2:]
    fig, ax = plt.subplots(figsize=(size * 1.6, size * h / w))
    ax.imshow(_hwc(picture))
    colors = plt.get_cmap("plasma")
    for i, name in enumerate(sorted(layers, key=layer_index)):
        rf = receptive_field(name)
        color = colors(i / max(1, len(layers) - 1) * 0.85)
        ax.add_patch(plt.Rectangle((w / 2 - rf / 2, h / 2 - rf / 2), rf, rf, fill=False, edgecolor=color,
                                   linewidth=2, label=f"{name}: {rf} x {rf} px"))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9,
              title=f"one unit sees\n(image {w} x {h} px)", title_fontsize=9)
    fig.tight_layout(pad=0.2)
    return _finish(fig)


def save_figure(fig: Figure, path: Union[str, Path], dpi: int = 110) -> Path:
    """Write a figure to ``path`` (PNG/PDF/SVG by suffix), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
