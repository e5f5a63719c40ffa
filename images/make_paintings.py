"""Downscale the public-domain paintings that stlib ships into ``stlib/data/style/``.

The originals are photographs of two-dimensional public-domain paintings kept in the project's shared
folder (``../shared/paintings/``, taken from the ``examples/inputs/`` folder of jcjohnson/neural-style,
where they serve the same purpose). Faithful reproductions of public-domain 2-D artworks carry no new
copyright (US: Bridgeman v. Corel; EU: Directive 2019/790, art. 14)::

    python images/make_paintings.py              # reads ../shared/paintings, writes stlib/data/style
    python images/make_paintings.py --src DIR --out /tmp/x

Each is resized (LANCZOS) to at most 512 px on the long edge and saved as JPEG quality 90, so the four
together stay under 400 KB. The credits are in images/CREDITS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

MAX_SIZE = 512  # long edge, pixels
JPEG_QUALITY = 90
ROOT = Path(__file__).resolve().parents[1]
#: The shared folder sits beside the repository (or beside the folder of git worktrees).
_SHARED = [base / "shared" / "paintings" for base in (ROOT, ROOT.parent, ROOT.parent.parent)]
DEFAULT_SRC = next((p for p in _SHARED if p.is_dir()), _SHARED[1])
DEFAULT_OUT = ROOT / "stlib" / "data" / "style"

#: Bundled name -> (file in the shared folder, painting, artist (died), year).
PAINTINGS = {
    "starry_night": ("starry_night.jpg", "The Starry Night", "Vincent van Gogh (1890)", 1889),
    "shipwreck": ("shipwreck.jpg", "The Shipwreck", "J. M. W. Turner (1851)", 1805),
    "woman_with_hat": ("woman-with-hat-matisse.jpg", "Woman with a Hat", "Henri Matisse (1954)", 1905),
    "the_scream": ("the_scream.jpg", "The Scream", "Edvard Munch (1944)", 1893),
}


def prepare(path: Path) -> Image.Image:
    """An RGB copy of the painting at ``path``, downscaled to at most MAX_SIZE on the long edge."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = MAX_SIZE / max(img.size)
        if scale < 1.0:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)
        return img


def main(argv: list[str] | None = None) -> None:
    """Write the downscaled paintings into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC, help=f"folder of originals (default: {DEFAULT_SRC})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (source, title, artist, year) in PAINTINGS.items():
        img = prepare(args.src / source)
        path = args.out / f"{name}.jpg"
        img.save(path, quality=JPEG_QUALITY, optimize=True)
        print(f"wrote {path} {img.width}x{img.height} ({path.stat().st_size // 1024} KB): {title}, {artist}, {year}")


if __name__ == "__main__":
    main()
