"""Copy the content photos that stlib ships into ``stlib/data/content/``.

The photos come from image files that installed packages already ship, so no
download is needed and each one's licence is documented by its package::

    python images/make_content.py               # writes stlib/data/content/*.jpg
    python images/make_content.py --out /tmp/x

Sources and licences (copied into images/CREDITS.md) — all from the docstrings
of the ``skimage.data`` functions (scikit-image >= 0.21):

* astronaut  — ``skimage.data.astronaut()``: Eileen Collins, NASA; "No known
  copyright restrictions, released into the public domain."
* coffee     — ``skimage.data.coffee()``: Pikolo Espresso Bar, photographer
  Rachel Michetti; "No copyright restrictions. CC0 by the photographer."
* chelsea    — ``skimage.data.chelsea()``: Chelsea the cat, photographer Stefan
  van der Walt; "No copyright restrictions. CC0 by the photographer."
* rocket     — ``skimage.data.rocket()``: DSCOVR launch on Falcon 9, SpaceX;
  "released in the public domain."

matplotlib's ``sample_data/grace_hopper.jpg`` is deliberately NOT copied:
matplotlib's installed files state no licence for it (only a pointer to its
Wikimedia Commons page in the JPEG comment), so its licence cannot be checked
from the package itself.

Needs scikit-image (a dev dependency of stlib: ``pip install -e .[dev]``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

MAX_SIZE = 512  # long edge, pixels
JPEG_QUALITY = 92
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "stlib" / "data" / "content"  # package data


def _sources() -> dict[str, Callable[[], np.ndarray]]:
    """Name → function returning an H×W×3 uint8 photo (imports scikit-image lazily)."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - only without dev dependencies
        raise SystemExit("make_content.py needs scikit-image: pip install scikit-image") from exc
    return {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea, "rocket": data.rocket}


def prepare(photo: np.ndarray) -> Image.Image:
    """H×W×3 uint8 array → RGB PIL image downscaled (LANCZOS) to at most MAX_SIZE on the long edge."""
    img = Image.fromarray(np.ascontiguousarray(photo[..., :3]), mode="RGB")
    scale = MAX_SIZE / max(img.size)
    if scale < 1.0:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
    return img


def main(argv: list[str] | None = None) -> None:
    """Write the content JPEGs into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, load in _sources().items():
        path = args.out / f"{name}.jpg"
        img = prepare(load())
        img.save(path, quality=JPEG_QUALITY, optimize=True)
        print(f"wrote {path} {img.width}×{img.height} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
