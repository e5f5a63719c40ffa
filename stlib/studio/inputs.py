"""The studio's pictures: bundled names, file paths and uploaded files, decoded once and cached."""

from __future__ import annotations

import io
from typing import Any

import torch
from PIL import Image

from ..images import ImageLoadError, load_image, to_pil

#: Largest long edge an image is kept at once loaded (stylize shrinks it further to the chosen size).
MAX_SIZE = 1024
UPLOAD_PREFIX = "upload:"


def uploaded_files(value: Any) -> list[tuple[str, bytes]]:
    """``(name, bytes)`` for each file in a ``FileUpload.value``, for ipywidgets 7 and 8 alike."""
    if not value:
        return []
    files: list[tuple[str, bytes]] = []
    if isinstance(value, dict):
        # ipywidgets 7: {filename: {"metadata": {"name", "type", "size", "lastModified"}, "content": bytes}}
        for key, entry in value.items():
            name = entry.get("metadata", {}).get("name", key) if isinstance(entry, dict) else key
            files.append((str(name), bytes(entry["content"])))
    else:
        # ipywidgets 8: a tuple of {"name", "type", "size", "last_modified", "content": memoryview}
        for entry in value:
            files.append((str(entry.get("name", "upload")), bytes(entry["content"])))
    return files


def decode_upload(name: str, data: bytes, max_size: int = MAX_SIZE) -> torch.Tensor:
    """Decode an uploaded file's bytes into a (1, 3, H, W) image, or raise ImageLoadError naming the file."""
    if not data:
        raise ImageLoadError(f"Could not load {name!r}: the file is empty. Upload it again.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            pil = img.copy()
    except Image.DecompressionBombError:
        raise ImageLoadError(
            f"Could not load {name!r}: it has too many pixels to open safely. Upload a smaller copy "
            f"(a long edge of {max_size} px is plenty)."
        ) from None
    except Exception as exc:  # PIL raises several unrelated types for bad files
        raise ImageLoadError(
            f"Could not load {name!r}: it is not an image Pillow can read ({type(exc).__name__}). "
            "Upload a PNG or JPEG file."
        ) from None
    try:
        return load_image(pil, max_size=max_size)
    except ImageLoadError as exc:
        raise ImageLoadError(f"Could not load {name!r}: {exc}") from None


def png_bytes(image: torch.Tensor, compress_level: int = 1) -> bytes:
    """PNG bytes of an image (1, 3, H, W) in [0, 1]; low compression, because speed matters more here."""
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


class ImageStore:
    """Images by key: a bundled name or path (loaded on first use) or ``upload:<file name>``."""

    def __init__(self) -> None:
        self._uploads: dict[str, bytes] = {}
        self._images: dict[str, torch.Tensor] = {}

    def add_upload(self, name: str, data: bytes) -> str:
        """Decode an uploaded file (ImageLoadError if unreadable) and return its key."""
        image = decode_upload(name, data)
        key = UPLOAD_PREFIX + name
        self._uploads[key], self._images[key] = data, image
        return key

    def get(self, key: str) -> torch.Tensor:
        """The image (1, 3, H, W) for ``key``; ImageLoadError naming it if it cannot be loaded."""
        if key not in self._images:
            if key.startswith(UPLOAD_PREFIX):
                self._images[key] = decode_upload(key[len(UPLOAD_PREFIX):], self._uploads.get(key, b""))
            else:
                try:
                    self._images[key] = load_image(key, max_size=MAX_SIZE)
                except ImageLoadError as exc:
                    raise ImageLoadError(f"Could not load {key!r}: {exc}") from None
        return self._images[key]
