"""Generate the style images that stlib ships in ``stlib/data/style/``.

Every image is drawn from a fixed random seed with NumPy and Pillow only, so
running this script again reproduces the committed PNGs pixel for pixel
(``tests/test_images.py`` checks that)::

    python images/make_styles.py                 # writes stlib/data/style/*.png
    python images/make_styles.py --out /tmp/x    # writes somewhere else
    python images/make_styles.py --only mosaic   # just one of them

Good style images for Gatys-style transfer have strong, repeated texture and
saturated colour: the Gram matrices of VGG features only "see" texture
statistics, so a smooth gradient would transfer almost nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 512  # pixels on the long edge of every style image
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "stlib" / "data" / "style"  # package data


# --------------------------------------------------------------------------- helpers
def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int, cells_x: int | None = None) -> np.ndarray:
    """Return an h×w float array in [0, 1] of smooth value noise with about `cells` bumps per side.

    With `cells_x` the noise has `cells` bumps vertically and `cells_x` horizontally (streaky noise).
    """
    cy, cx = cells, cells_x or cells
    coarse = rng.random((cy + 3, cx + 3)).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize((w + 2 * w // cx, h + 2 * h // cy), Image.Resampling.BICUBIC)
    a = np.asarray(img)[h // cy : h // cy + h, w // cx : w // cx + w]
    a = a - a.min()
    return a / max(float(a.max()), 1e-6)


def palette_map(t: np.ndarray, colours: list[tuple[int, int, int]]) -> np.ndarray:
    """Map values t in [0, 1] (any shape) through a piecewise-linear colour ramp → (..., 3) float RGB 0-255."""
    cols = np.asarray(colours, dtype=np.float32)
    x = np.clip(t, 0.0, 1.0) * (len(cols) - 1)
    i = np.minimum(x.astype(np.int64), len(cols) - 2)
    f = (x - i)[..., None]
    return cols[i] * (1.0 - f) + cols[i + 1] * f


def to_image(rgb: np.ndarray) -> Image.Image:
    """Float RGB array 0-255 (H×W×3) → RGB PIL image."""
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), mode="RGB")


def jitter(rng: np.random.Generator, colours: np.ndarray, amount: float) -> list[tuple[int, int, int]]:
    """Randomly vary the brightness and hue of n colours (n×3 floats 0-255) → list of n int RGB tuples."""
    n = len(colours)
    c = colours * rng.uniform(1.0 - amount, 1.0 + amount, (n, 1)) + rng.normal(0.0, amount * 40.0, (n, 3))
    return [tuple(row) for row in np.clip(np.rint(c), 0, 255).astype(int).tolist()]


# --------------------------------------------------------------------------- styles
def swirls(rng: np.random.Generator) -> Image.Image:
    """Van-Gogh-like flowing brush strokes along a swirling vector field, in bold blues and yellows."""
    w = h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)

    # Flow direction: smooth noise plus a few vortices (the "stars").
    angle = smooth_noise(rng, h, w, 4) * 2.0 * np.pi
    vortices = [(rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h, rng.choice([-1.0, 1.0])) for _ in range(4)]
    weight_sum = np.ones_like(angle)
    vx, vy = np.cos(angle), np.sin(angle)
    for cx, cy, spin in vortices:
        dx, dy = xx - cx, yy - cy
        r = np.sqrt(dx * dx + dy * dy) + 1e-3
        wgt = 6.0 * np.exp(-((r / (0.22 * w)) ** 2))
        vx = vx + wgt * (-dy / r) * spin
        vy = vy + wgt * (dx / r) * spin
        weight_sum += wgt
    norm = np.sqrt(vx * vx + vy * vy) + 1e-6
    vx, vy = vx / norm, vy / norm

    # Colour: deep blues with bright yellow-white glows around the vortices.
    glow = np.zeros_like(angle)
    for cx, cy, _ in vortices:
        glow = np.maximum(glow, np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (0.13 * w) ** 2)))
    tone = 0.6 * smooth_noise(rng, h, w, 6) + 0.55 * glow
    ramp = [(10, 22, 75), (22, 55, 145), (45, 100, 200), (100, 160, 225), (245, 210, 70), (255, 240, 170)]
    base = palette_map(tone, ramp)
    img = to_image(base)
    draw = ImageDraw.Draw(img)

    def strokes(n: int, steps: int, step_len: float, width: tuple[int, int], amount: float, colour=None) -> None:
        px = rng.uniform(0, w, n)
        py = rng.uniform(0, h, n)
        paths = [np.stack([px, py], axis=1)]
        for _ in range(steps):
            ix = np.clip(px.astype(np.int64), 0, w - 1)
            iy = np.clip(py.astype(np.int64), 0, h - 1)
            px = px + step_len * vx[iy, ix]
            py = py + step_len * vy[iy, ix]
            paths.append(np.stack([px, py], axis=1))
        pts = np.round(np.stack(paths, axis=1), 1).tolist()  # n × (steps+1) × 2
        widths = rng.integers(width[0], width[1] + 1, n).tolist()
        if colour is None:
            sx = np.clip(np.stack(paths)[0, :, 0].astype(np.int64), 0, w - 1)
            sy = np.clip(np.stack(paths)[0, :, 1].astype(np.int64), 0, h - 1)
            colours = jitter(rng, base[sy, sx], amount)
        else:
            colours = jitter(rng, np.tile(np.asarray(colour, np.float32), (n, 1)), amount)
        for k in range(n):
            draw.line([tuple(p) for p in pts[k]], fill=colours[k], width=widths[k], joint="curve")

    strokes(2600, 9, 3.0, (5, 8), 0.25)  # broad under-painting
    strokes(5200, 7, 2.5, (2, 4), 0.3)  # finer strokes on top
    strokes(350, 7, 3.0, (2, 3), 0.1, colour=(250, 205, 60))  # yellow accents
    strokes(450, 6, 3.0, (1, 1), 0.1, colour=(12, 18, 50))  # dark outlines
    strokes(300, 6, 3.0, (1, 1), 0.05, colour=(255, 250, 225))  # impasto highlights
    return img


def mosaic(rng: np.random.Generator) -> Image.Image:
    """Voronoi tiles in stained-glass colours, separated by dark lead grout."""
    w = h = SIZE
    # Jittered grid of seeds gives tiles of similar size.
    n_side = 14
    gy, gx = np.mgrid[0:n_side, 0:n_side].astype(np.float64)
    cell = SIZE / n_side
    sx = ((gx + 0.5 + rng.uniform(-0.42, 0.42, gx.shape)) * cell).ravel()
    sy = ((gy + 0.5 + rng.uniform(-0.42, 0.42, gy.shape)) * cell).ravel()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d1 = np.full((h, w), np.inf, np.float32)
    d2 = np.full((h, w), np.inf, np.float32)
    label = np.zeros((h, w), np.int64)
    for k in range(sx.size):
        d = np.sqrt((xx - sx[k]) ** 2 + (yy - sy[k]) ** 2)
        closer = d < d1
        d2 = np.where(closer, d1, np.minimum(d2, d))
        label = np.where(closer, k, label)
        d1 = np.where(closer, d, d1)

    glass = np.array(
        [
            (200, 20, 40), (230, 60, 30), (250, 170, 20), (255, 215, 60), (30, 150, 60),
            (20, 110, 200), (30, 60, 170), (110, 40, 170), (20, 170, 180), (220, 40, 130),
        ],
        dtype=np.float32,
    )
    tile_col = glass[rng.integers(0, len(glass), sx.size)] * rng.uniform(0.75, 1.15, (sx.size, 1))
    rgb = tile_col[label]
    # Light through glass: brighter towards each tile's centre, plus a mottled surface.
    centre = np.clip(1.0 - d1 / (0.9 * cell), 0.0, 1.0)[..., None]
    rgb = rgb * (0.75 + 0.45 * centre)
    mottle = smooth_noise(rng, h, w, 48)[..., None]
    rgb = rgb * (0.8 + 0.4 * mottle)
    # Lead grout where the two nearest seeds are about equally far.
    edge = d2 - d1
    grout = np.clip((edge - 2.0) / 2.0, 0.0, 1.0)[..., None]  # 0 on the line, 1 inside
    lead = np.array([22, 20, 26], np.float32) + 30.0 * np.clip(1.0 - np.abs(edge - 1.0), 0, 1)[..., None]
    rgb = rgb * grout + lead * (1.0 - grout)
    return to_image(rgb)


def pointillism(rng: np.random.Generator) -> Image.Image:
    """Dense dots of varied size and saturated colour over a sunlit landscape, after Seurat."""
    w = h = SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # An underlying scene: sky, sun, distant hills, a field of flowers.
    horizon = 0.45 * h + 25.0 * np.sin(xx / w * 2.0 * np.pi * 1.3 + 0.7) + 15.0 * np.sin(xx / w * 2 * np.pi * 3.1)
    sky_t = np.clip(yy / h / 0.5, 0, 1)
    sky = palette_map(sky_t, [(40, 90, 200), (90, 160, 235), (250, 200, 150)])
    sun = np.exp(-(((xx - 0.72 * w) ** 2 + (yy - 0.2 * h) ** 2) / (0.07 * w) ** 2))[..., None]
    sky = sky * (1 - sun) + np.array([255, 230, 80], np.float32) * sun
    field_t = smooth_noise(rng, h, w, 5)
    field = palette_map(field_t, [(20, 90, 40), (60, 150, 50), (190, 200, 40), (240, 120, 30), (200, 40, 90)])
    scene = np.where((yy < horizon)[..., None], sky, field)

    img = Image.new("RGB", (w, h), (245, 240, 225))
    draw = ImageDraw.Draw(img)
    complementary = np.array(
        [(255, 120, 40), (40, 80, 220), (250, 220, 40), (150, 40, 190), (30, 170, 120)], np.float32
    )
    for n, rmin, rmax in ((7000, 4, 7), (14000, 2, 5), (6000, 1, 3)):
        xs = rng.uniform(-4, w + 4, n)
        ys = rng.uniform(-4, h + 4, n)
        rs = rng.uniform(rmin, rmax, n)
        accent = rng.random(n) < 0.18
        ix = np.clip(xs.astype(np.int64), 0, w - 1)
        iy = np.clip(ys.astype(np.int64), 0, h - 1)
        colours = np.where(accent[:, None], complementary[rng.integers(0, len(complementary), n)], scene[iy, ix])
        fills = jitter(rng, colours, 0.22)
        boxes = np.stack([xs - rs, ys - rs, xs + rs, ys + rs], axis=1).tolist()
        for k in range(n):
            draw.ellipse(boxes[k], fill=fills[k])
    return img


def stripes(rng: np.random.Generator) -> Image.Image:
    """Bold wavy diagonal stripes in contrasting colours with dark edges and a brushed finish."""
    ss = 2  # render at 2× and downsample for smooth edges
    w = h = SIZE * ss
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / ss
    u = (xx + yy) / np.sqrt(2.0)
    v = (xx - yy) / np.sqrt(2.0)
    warp = (
        14.0 * np.sin(v / 38.0 + 0.5)
        + 7.0 * np.sin(v / 13.0 + u / 90.0)
        + 18.0 * (smooth_noise(rng, h, w, 4) - 0.5)
    )
    period = 26.0
    pos = (u + warp) / period
    idx = np.floor(pos).astype(np.int64)
    frac = pos - idx
    colours = np.array(
        [(230, 30, 90), (255, 160, 20), (20, 160, 170), (25, 35, 110), (250, 230, 60), (120, 40, 160)],
        dtype=np.float32,
    )
    order = rng.permutation(len(colours))
    rgb = colours[order[idx % len(colours)]]
    # Brush texture: fine streaks running along each stripe (horizontal streaks turned by 45°).
    big = int(w * 1.5)
    streak_img = Image.fromarray(smooth_noise(rng, big, big, 160, 12), mode="F").rotate(45, Image.Resampling.BILINEAR)
    off = (big - w) // 2
    streak = np.asarray(streak_img)[off : off + h, off : off + w]
    rgb = rgb * (0.78 + 0.35 * streak[..., None])
    # Dark edges between stripes.
    edge = np.minimum(frac, 1.0 - frac) * period
    rgb = rgb * np.clip(edge / 2.5, 0.0, 1.0)[..., None] + np.array([15, 12, 20], np.float32) * (
        1.0 - np.clip(edge / 2.5, 0.0, 1.0)[..., None]
    )
    img = to_image(rgb)
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def shards(rng: np.random.Generator) -> Image.Image:
    """Cubist shards: overlapping translucent triangles with black outlines."""
    w = h = SIZE
    img = Image.new("RGB", (w, h), (235, 225, 200))
    palette = np.array(
        [(225, 40, 35), (250, 150, 20), (255, 215, 40), (40, 150, 70), (25, 90, 200), (25, 30, 70), (200, 70, 140),
         (60, 180, 200), (240, 225, 190), (120, 40, 140)],
        dtype=np.float32,
    )
    layer = Image.new("RGBA", (w, h))
    for k in range(420):
        cx, cy = rng.uniform(-30, w + 30), rng.uniform(-30, h + 30)
        size = rng.uniform(25, 110) * (1.0 - 0.6 * k / 420)
        a = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.1, 4.2]) + rng.uniform(-0.5, 0.5, 3)
        r = size * rng.uniform(0.5, 1.0, 3)
        pts = [(float(cx + r[i] * np.cos(a[i])), float(cy + r[i] * np.sin(a[i]))) for i in range(3)]
        colour = jitter(rng, palette[rng.integers(0, len(palette))][None], 0.15)[0]
        layer.paste((0, 0, 0, 0), (0, 0, w, h))
        fill = colour + (int(rng.integers(150, 235)),)
        ImageDraw.Draw(layer).polygon(pts, fill=fill, outline=(15, 15, 20, 255), width=2)
        img.paste(layer, (0, 0), layer)
    # Canvas grain.
    grain = 14.0 * (smooth_noise(rng, h, w, 128) - 0.5)[..., None]
    return to_image(np.asarray(img, dtype=np.float32) + grain)


STYLES: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "swirls": swirls,
    "mosaic": mosaic,
    "pointillism": pointillism,
    "stripes": stripes,
    "shards": shards,
}
SEEDS = {"swirls": 1889, "mosaic": 1150, "pointillism": 1884, "stripes": 1968, "shards": 1907}


def make(name: str) -> Image.Image:
    """Draw the style image `name` from its fixed seed."""
    return STYLES[name](np.random.default_rng(SEEDS[name]))


def main(argv: list[str] | None = None) -> None:
    """Write the style PNGs (all, or those named with --only) into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", choices=sorted(STYLES), help="generate just these styles")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or list(STYLES):
        path = args.out / f"{name}.png"
        make(name).save(path)
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
