"""Draw the region masks that stlib ships (``stlib/data/masks/``) from the bundled photos, by a colour rule.

    python images/make_masks.py            # writes stlib/data/masks/rocket_sky.png
    python images/make_masks.py --out /tmp/x

``rocket_sky``: the evening sky of ``rocket.jpg`` (white) against the launch towers, the rocket and the
ground (black) - a pixel is sky when it is clearly bluer than it is red or green; a median filter then
removes isolated pixels. A two-region example for spatial control (``stlib.regions``, notebook 06).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "stlib" / "data" / "masks"
PHOTOS = [ROOT / "stlib" / "data" / "content", ROOT / "images" / "content"]


def rocket_sky(photo: Image.Image) -> Image.Image:
    """White where the photo shows sky (blue > red + 25 and blue > green + 5), black elsewhere."""
    rgb = np.asarray(photo.convert("RGB"), dtype=np.int16)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    sky = (b > r + 25) & (b > g + 5)
    mask = Image.fromarray(np.where(sky, 255, 0).astype(np.uint8), mode="L")
    return mask.filter(ImageFilter.MedianFilter(7)).filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))


def main(argv: list[str] | None = None) -> None:
    """Write the masks into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    source = next(folder / "rocket.jpg" for folder in PHOTOS if (folder / "rocket.jpg").is_file())
    with Image.open(source) as photo:
        mask = rocket_sky(photo)
    path = args.out / "rocket_sky.png"
    mask.save(path, optimize=True)
    share = float(np.asarray(mask).mean() / 255)
    print(f"wrote {path} {mask.width}x{mask.height}: {share:.0%} sky")


if __name__ == "__main__":
    main()
