"""Robust image input/output for style transfer.

`load_image` turns almost anything that holds a picture — a file path, a URL,
the name of a bundled image, a PIL image, a NumPy array or a torch tensor —
into the one format the rest of stlib uses: a float32 tensor of shape
1×3×H×W with values in [0, 1], on the CPU.  Every way that can go wrong
raises `ImageLoadError` with a sentence that says what happened and what to
do about it.

`save_image`, `to_pil` and `resize` go the other way, and `bundled_images`
lists the example photos and style images shipped inside the package
(``stlib/data/content/`` and ``stlib/data/style/``).
"""

from __future__ import annotations

import http.client
import io
import math
import os
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "ImageLoadError",
    "ImageNotFoundError",
    "load_image",
    "save_image",
    "check_writable",
    "to_pil",
    "resize",
    "images_dir",
    "bundled_images",
    "bundled_image",
]

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
BUNDLED_KINDS = ("content", "style")
ABSURD_PIXELS = 1_000_000_000  # refuse images above one gigapixel outright
#: stylize and the CLI downscale larger images on load (a 196-megapixel photo is fine) unless size asks for more.
WORKING_MAX_SIZE = 2048
FLOAT_TOLERANCE = 0.1  # float pixels this far outside [0, 1] are clamped; further is an error
#: Saving clamps an optimiser's overshoot (e.g. 1.3) but refuses another convention: 0-255 data would come out
#: white, a [-1, 1] or mean/std-normalised image black.
SAVE_CLAMP_RANGE = (-0.5, 2.0)
DATA_DIR = Path(__file__).resolve().parent / "data"  # package data: content/ and style/

_PIL_LIMIT_LOCK = threading.RLock()


class ImageLoadError(ValueError):
    """An image could not be loaded; the message says why and what to do."""


class ImageNotFoundError(ImageLoadError, FileNotFoundError):
    """An image file, bundled image or the images folder does not exist."""

    def __init__(self, message: str, filename: str | None = None) -> None:
        super().__init__(message)
        self.filename = filename

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""  # not OSError's "[Errno None] None: ..." form


# --------------------------------------------------------------------------- bundled images
def images_dir() -> Path:
    """Folder holding the bundled images (``content/`` and ``style/``).

    They ship inside the package (``stlib/data/``), so any install — editable, a wheel, a git URL —
    finds them.  The environment variable ``STLIB_IMAGES`` points stlib at another folder laid out
    the same way (e.g. a class's own picture set).
    """
    env = os.environ.get("STLIB_IMAGES")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise ImageNotFoundError(
                f"STLIB_IMAGES is set to {env!r}, but that folder does not exist. "
                "Point it at a folder with content/ and/or style/ inside, or unset it."
            )
        return path
    path = DATA_DIR
    if any((path / kind).is_dir() for kind in BUNDLED_KINDS):
        return path
    raise ImageNotFoundError(
        f"stlib's bundled images are missing from {path} (this install of stlib is incomplete). "
        "Reinstall stlib (pip install --force-reinstall stlib), or set the environment variable "
        "STLIB_IMAGES to a folder with content/ and style/ inside."
    )


def bundled_images(kind: str | None = None) -> dict[str, Path]:
    """Map name (file stem) → path of the bundled images: kind "content", "style", or both when None."""
    if kind is not None and kind not in BUNDLED_KINDS:
        raise ValueError(f"kind must be 'content', 'style' or None, not {kind!r}.")
    root = images_dir()
    found: dict[str, Path] = {}
    for k in BUNDLED_KINDS if kind is None else (kind,):
        folder = root / k
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                found.setdefault(path.stem, path)
    return found


def bundled_image(name: str) -> Path:
    """Path of the bundled image called `name` (e.g. "astronaut", "swirls")."""
    images = bundled_images()
    stem = Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else name
    if stem in images:
        return images[stem]
    raise ImageNotFoundError(f"There is no bundled image called {name!r}. {_bundled_listing()}")


def _bundled_listing() -> str:
    """A sentence listing the bundled image names (or saying none could be found)."""
    try:
        content, style = bundled_images("content"), bundled_images("style")
    except ImageNotFoundError:
        return ("(The bundled example images could not be found either: reinstall stlib, or set STLIB_IMAGES "
                "to a folder with content/ and style/ inside.)")
    return (
        f"Bundled content images: {', '.join(content) or 'none'}; "
        f"bundled style images: {', '.join(style) or 'none'}."
    )


# --------------------------------------------------------------------------- loading
def load_image(source: ImageSource, max_size: int | None = None, *, min_size: int = 32) -> torch.Tensor:
    """Load a path, URL, bundled name, PIL image, array or tensor → float32 1×3×H×W in [0, 1] on CPU."""
    if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1):
        raise ValueError(f"max_size must be a positive whole number of pixels or None, not {max_size!r}.")
    if max_size is not None and max_size < min_size:
        raise ValueError(f"max_size={max_size} is smaller than min_size={min_size}; images would come out too small.")

    if isinstance(source, torch.Tensor):
        out = _tensor_to_image(source)
        label = f"the tensor of shape {tuple(source.shape)}"
    elif isinstance(source, np.ndarray):
        out = _array_to_image(source)
        label = f"the array of shape {source.shape}"
    elif isinstance(source, Image.Image):
        label = "the PIL image"
        _check_min_size(source.size, min_size, label)
        return _pil_pipeline(source, max_size, min_size, label, may_draft=False)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if text.lower().startswith(("http://", "https://")):
            data = _download(text)
            return _load_encoded(io.BytesIO(data), max_size, min_size, label=text)
        path = _resolve_path(text)
        with open(path, "rb") as fh:
            return _load_encoded(fh, max_size, min_size, label=str(path))
    else:
        raise ImageLoadError(
            f"load_image cannot read a {type(source).__name__}. Pass a file path, an http(s) URL, the name of a "
            "bundled image (e.g. 'astronaut'), a PIL image, a NumPy array or a torch tensor."
        )

    _check_min_size((out.shape[-1], out.shape[-2]), min_size, label)
    if max_size is not None and max(out.shape[-2:]) > max_size:
        out = resize(out, max_size)
        _check_min_size((out.shape[-1], out.shape[-2]), min_size, label, after_max_size=max_size)
    return out.contiguous()


def _resolve_path(text: str) -> Path:
    """Turn a user-given string into an existing image file path (or a bundled image), else raise."""
    if not text.strip():
        raise ImageLoadError(
            f"The image path is empty. Pass a file path, a URL, or a bundled name. {_bundled_listing()}"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        examples = [p.name for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES][:5]
        hint = f" It contains for example: {', '.join(examples)}." if examples else " It contains no image files."
        raise ImageLoadError(
            f"{text!r} is a folder, not an image file. Pass the path of one image file inside it.{hint}"
        )
    if path.is_file():
        return path
    looks_like_name = not any(sep in text for sep in ("/", "\\")) and text not in ("", ".", "..")
    if looks_like_name:
        try:
            return bundled_image(text)
        except ImageNotFoundError:
            pass
    raise ImageNotFoundError(
        f"No image file at {text!r} (looked for {path.resolve()}). Check the spelling and the current folder "
        f"({Path.cwd()}), or use a bundled image by name. {_bundled_listing()}",
        filename=text,
    )


def _download(url: str) -> bytes:
    """Fetch the bytes at `url` within a total deadline and a size cap, turning failures into ImageLoadError."""
    from .downloads import IMAGE_DEADLINE_S, IMAGE_MAX_BYTES, DownloadError, deadline_s, fetch, max_bytes

    buf = io.BytesIO()
    try:
        fetch(url, buf, deadline=deadline_s(IMAGE_DEADLINE_S), limit=max_bytes(IMAGE_MAX_BYTES))
    except DownloadError as exc:
        raise ImageLoadError(
            f"{exc}. Download the image in a browser (or a smaller version of it), "
            "save it next to your notebook, and pass its file path instead."
        ) from None
    except urllib.error.HTTPError as exc:
        raise ImageLoadError(
            f"Downloading {url} failed: the server answered HTTP {exc.code} {exc.reason}. "
            "Check that the address is right (open it in a browser), or download the image yourself and pass its path."
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise ImageLoadError(
            f"Could not reach {url} ({reason}). Are you offline? Download the image in a browser, "
            "save it next to your notebook, and pass its file path to load_image instead."
        ) from None
    return buf.getvalue()


@contextmanager
def _pillow_size_limit_lifted() -> Iterator[None]:
    """Temporarily switch off Pillow's decompression-bomb check (we check sizes ourselves); restores it after.

    The global is changed under a lock and always restored, so loads in several threads are serialised.
    """
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _load_encoded(fh: Any, max_size: int | None, min_size: int, label: str) -> torch.Tensor:
    """Decode an encoded image (file object) → 1×3×H×W tensor, downscaling huge images while decoding."""
    limit = Image.MAX_IMAGE_PIXELS
    # Pillow's own decompression-bomb check would refuse a legitimate 100-megapixel photo even when we are
    # about to shrink it; we lift it while decoding (restored afterwards) and apply our own limits instead.
    with _pillow_size_limit_lifted():
        try:
            img = Image.open(fh)
        except UnidentifiedImageError:
            raise ImageLoadError(
                f"{label} is not an image Pillow can read (is it really a JPEG/PNG, or maybe a web page, text or "
                "a format such as HEIC?). Open it in an image viewer and re-save it as PNG or JPEG."
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _corrupt_error(label, exc) from None
        with img:
            width, height = img.size
            pixels = width * height
            if pixels > ABSURD_PIXELS:
                raise ImageLoadError(
                    f"{label} claims to be {width}×{height} pixels ({pixels / 1e9:.1f} gigapixels), far too large "
                    "to load. Style transfer works on images of a few hundred pixels: make a smaller copy first."
                )
            if max_size is None and limit is not None and pixels > 2 * limit:
                raise _bomb_error(label, pixels, limit)
            _check_min_size(img.size, min_size, label)
            return _pil_pipeline(img, max_size, min_size, label, may_draft=True)


def _bomb_error(label: str, pixels: int, limit: int) -> ImageLoadError:
    """The ImageLoadError for an image above Pillow's decompression-bomb limit when no max_size was given."""
    return ImageLoadError(
        f"{label} has {pixels / 1e6:.0f} megapixels, more than Pillow's safety limit of {2 * limit / 1e6:.0f} "
        "megapixels for loading at full size. Pass max_size (e.g. load_image(..., max_size=512)) to downscale "
        "it while loading."
    )


def _corrupt_error(label: str, exc: BaseException) -> ImageLoadError:
    """The ImageLoadError for a file Pillow recognised but could not decode."""
    return ImageLoadError(
        f"{label} appears truncated or corrupt ({exc}). It may not have finished downloading or copying: "
        "download or export it again, or try another image."
    )


def _pil_pipeline(
    img: Image.Image, max_size: int | None, min_size: int, label: str, *, may_draft: bool
) -> torch.Tensor:
    """PIL image (any mode) → 1×3×H×W float tensor: draft, EXIF-rotate, flatten alpha, reduce, LANCZOS-resize."""
    try:
        if may_draft and max_size is not None and img.format == "JPEG" and max(img.size) > max_size:
            scale = max_size / max(img.size)
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: the result stays >= the requested size.
            img.draft(img.mode, (math.ceil(img.width * scale), math.ceil(img.height * scale)))
        img.load()
    except (OSError, SyntaxError, EOFError, ValueError) as exc:
        raise _corrupt_error(label, exc) from None
    try:
        img = ImageOps.exif_transpose(img)  # phone photos: stored sideways plus an "orientation" tag
    except (ValueError, TypeError, KeyError, OSError, SyntaxError, AttributeError):
        pass  # unreadable EXIF data (or Pillow < 9.2 on a TIFF whose file it already closed): pixels as stored
    img, int_scale = _to_working_mode(img, label)

    if max_size is not None and max(img.size) > max_size:
        scale = max_size / max(img.size)
        target = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        factor = int(1.0 / scale / 2.0)  # reduce() cheaply while keeping >= 2× the target for LANCZOS
        if factor >= 2:
            img = img.reduce(factor)
        img = img.resize(target, Image.Resampling.LANCZOS)
        _check_min_size(img.size, min_size, label, after_max_size=max_size)

    if img.mode == "F":
        arr = np.array(img, dtype=np.float32)
        arr = np.clip(arr / np.float32(int_scale), 0.0, 1.0) if int_scale else _check_float_range(arr, label)
        t = torch.from_numpy(np.ascontiguousarray(arr))[None].expand(3, -1, -1)
    else:
        arr = np.array(img, dtype=np.uint8)
        t = torch.from_numpy(arr).to(torch.float32).div_(255.0)
        t = t[None].expand(3, -1, -1) if t.ndim == 2 else t.permute(2, 0, 1)
    return t.unsqueeze(0).contiguous()


def _to_working_mode(img: Image.Image, label: str) -> tuple[Image.Image, float | None]:
    """Convert any Pillow mode to "RGB", "L" or "F"; alpha goes onto white. Returns (image, divisor for "F" or None)."""
    mode = img.mode
    if mode in ("RGB", "L", "CMYK"):
        return _to_srgb(img), None
    if mode == "1":
        return img.convert("L"), None
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba)
        return flat.convert("L" if mode in ("LA", "La") else "RGB"), None
    if mode == "P":
        return img.convert("RGB"), None
    if mode.startswith("I;16"):
        # 16-bit PNG/TIFF hold 0..65535: keep the full precision in a float image and divide later.
        return img.convert("I").convert("F"), 65535.0
    if mode == "I":
        return img.convert("F"), _int32_scale(img, label)
    if mode == "F":
        return img, None
    try:
        return img.convert("RGB"), None
    except (ValueError, OSError) as exc:
        raise ImageLoadError(
            f"{label} uses Pillow mode {mode!r}, which is not supported ({exc}). "
            "Re-save it as an ordinary RGB PNG or JPEG."
        ) from None


def _int32_scale(img: Image.Image, label: str) -> float:
    """The divisor for a 32-bit integer image: the smallest of 255, 65535 and its own maximum that holds it.

    32-bit TIFFs carry no declared range; 8-bit or 16-bit data saved as int32 is common, and dividing
    0-255 data by 65535 would give a black picture.
    """
    lo, hi = img.getextrema()
    if lo < 0:
        raise ImageLoadError(
            f"{label} is a 32-bit integer image with negative values ({lo} to {hi}), so it has no meaning as "
            "brightness. Rescale it to 0-255 (or save it as an 8-bit PNG) first."
        )
    return 255.0 if hi <= 255 else 65535.0 if hi <= 65535 else float(hi)


def _to_srgb(img: Image.Image) -> Image.Image:
    """Convert RGB/L/CMYK to RGB (or keep L), honouring an embedded ICC colour profile when there is one."""
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK"):
        try:
            from PIL import ImageCms  # optional part of Pillow (needs littlecms)
        except ImportError:
            ImageCms = None  # type: ignore[assignment]
        if ImageCms is not None:
            try:
                src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
                return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
            except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
                pass  # a broken profile: fall back to Pillow's plain conversion
    return img if img.mode in ("RGB", "L") else img.convert("RGB")


def _check_min_size(size: tuple[int, int], min_size: int, label: str, after_max_size: int | None = None) -> None:
    """Raise ImageLoadError if the (width, height) `size` is too small for VGG-19."""
    width, height = size
    if min(width, height) >= min_size:
        return
    if after_max_size is not None:
        raise ImageLoadError(
            f"{label} becomes {width}×{height} pixels after downscaling to max_size={after_max_size}; VGG-19 needs "
            f"at least {min_size} pixels on each side. Use a larger max_size or a less elongated image (crop it)."
        )
    raise ImageLoadError(
        f"{label}: image is {width}×{height} pixels; VGG-19 needs at least {min_size} pixels on each side "
        f"(it halves the size five times). Use a larger image."
    )


def _check_float_range(arr: np.ndarray, label: str) -> np.ndarray:
    """Refuse NaN/inf and values far outside [0, 1] in a float image; clamp small overshoots."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise ImageLoadError(
            f"{label} contains {bad} NaN or infinite value(s), so it is not a valid image. "
            "Check the computation that produced it (e.g. a division by zero or a diverging optimisation)."
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -FLOAT_TOLERANCE or hi > 1.0 + FLOAT_TOLERANCE:
        hint = " It looks like 0-255 values: divide by 255." if hi > 2.0 and lo >= 0.0 else ""
        raise ImageLoadError(
            f"{label} has float values from {lo:.3g} to {hi:.3g}, but float images must lie in [0, 1].{hint} "
            "If it was normalised (e.g. with ImageNet mean/std), undo that first, or clamp it with .clamp(0, 1)."
        )
    return np.clip(arr, 0.0, 1.0)


_SHAPES_HELP_ARRAY = "NumPy images must be H×W, H×W×1, H×W×3 or H×W×4 (channels last)"
_SHAPES_HELP_TENSOR = "tensors must be H×W, 1×H×W, 3×H×W, 1×1×H×W or 1×3×H×W (channels first)"


def _array_to_image(arr: np.ndarray) -> torch.Tensor:
    """NumPy H×W / H×W×{1,3,4} array (uint8, uint16, bool or float in [0, 1]) → 1×3×H×W float tensor."""
    label = f"the array of shape {arr.shape}"
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise ImageLoadError(
            f"{label} looks channels-first; {_SHAPES_HELP_ARRAY}. Use arr.transpose(1, 2, 0), "
            "or pass it as a torch tensor, where channels come first."
        )
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
        raise ImageLoadError(f"Cannot use {label}: {_SHAPES_HELP_ARRAY}.")
    data = _scale_to_unit(arr, label)
    if data.ndim == 2:
        data = data[..., None]
    return _channels_last_to_tensor(data)


def _tensor_to_image(t: torch.Tensor) -> torch.Tensor:
    """Tensor H×W / C×H×W / 1×C×H×W (C = 1, 3, 4; float in [0, 1] or uint8), any device → 1×3×H×W on CPU."""
    shape = tuple(t.shape)
    label = f"the tensor of shape {shape}"
    if t.ndim == 4:
        if shape[0] != 1:
            raise ImageLoadError(
                f"{label} holds {shape[0]} images; pass one of them, e.g. images[0:1]. ({_SHAPES_HELP_TENSOR}.)"
            )
        t = t[0]
    if t.ndim == 3 and shape[-1] in (1, 3, 4) and t.shape[0] not in (1, 3, 4):
        raise ImageLoadError(f"{label} looks channels-last; {_SHAPES_HELP_TENSOR}. Use t.permute(2, 0, 1).")
    if t.ndim not in (2, 3) or (t.ndim == 3 and t.shape[0] not in (1, 3, 4)):
        raise ImageLoadError(f"Cannot use {label}: {_SHAPES_HELP_TENSOR}.")
    t = t.detach().cpu()
    if t.ndim == 2:
        t = t[None]
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    if t.dtype == getattr(torch, "uint16", None):
        arr = t.to(torch.int32).numpy().astype(np.uint16)
    else:
        arr = t.numpy()
    data = _scale_to_unit(np.moveaxis(arr, 0, -1), label)
    return _channels_last_to_tensor(data)


def _scale_to_unit(arr: np.ndarray, label: str) -> np.ndarray:
    """uint8 / uint16 / bool / float array → float32 array in [0, 1] (same shape)."""
    if arr.size == 0:
        raise ImageLoadError(f"{label} has no pixels (a side of length 0). Pass a real image.")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return _check_float_range(arr.astype(np.float32), label)
    raise ImageLoadError(
        f"{label} has dtype {arr.dtype}; images must be uint8 (0-255), uint16 (0-65535), bool, or float in [0, 1]. "
        "Convert it, e.g. with .astype(np.uint8) if the values are 0-255."
    )


def _channels_last_to_tensor(data: np.ndarray) -> torch.Tensor:
    """H×W×C float32 array in [0, 1] (C = 1, 3 or 4; alpha goes onto white) → 1×3×H×W tensor."""
    if data.shape[-1] == 4:
        alpha = data[..., 3:]
        data = data[..., :3] * alpha + (1.0 - alpha)
    if data.shape[-1] == 1:
        data = np.repeat(data, 3, axis=-1)
    t = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)).permute(2, 0, 1)
    return t.unsqueeze(0).contiguous()


# --------------------------------------------------------------------------- output
def _as_chw(image: torch.Tensor) -> torch.Tensor:
    """Accept 1×C×H×W / C×H×W / H×W (C = 1 or 3; float in [0, 1] or uint8 0-255) on any device → 3×H×W float
    CPU tensor in [0, 1], detached. Anything that would come out black, white or garbage is refused instead."""
    t = image.detach()
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise ValueError(
                f"Expected one image (1×3×H×W), got a batch of shape {tuple(t.shape)}; pick one, e.g. x[0]."
            )
        t = t[0]
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"Expected an image tensor of shape 1×3×H×W or 3×H×W, got {tuple(image.shape)}.")
    if t.numel() == 0:
        raise ValueError(f"The image tensor of shape {tuple(image.shape)} has no pixels; there is nothing to save.")
    t = t.cpu()
    if t.dtype == torch.uint8:
        t = t.float() / 255.0
    elif t.dtype == torch.bool:
        t = t.float()
    elif not t.is_floating_point():
        raise ValueError(
            f"The image tensor holds {str(t.dtype).replace('torch.', '')} values; images are float in [0, 1] or "
            "uint8 0-255. Convert it, e.g. t.to(torch.uint8) if the values are 0-255."
        )
    t = t.to(torch.float32)
    _check_float_pixels(t)
    return t.clamp(0.0, 1.0).expand(3, -1, -1) if t.shape[0] == 1 else t.clamp(0.0, 1.0)


def _check_float_pixels(t: torch.Tensor) -> None:
    """Refuse NaN/inf pixels and floats outside ``SAVE_CLAMP_RANGE`` (they would be written black or white)."""
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = int(t.numel() - finite.sum())
        raise ValueError(
            f"The image has {bad} NaN or infinite pixel value(s), so it was not turned into a picture (they would "
            "show as black). This usually means an optimisation diverged: lower its weights or learning rate."
        )
    lo, hi = float(t.min()), float(t.max())
    if lo < SAVE_CLAMP_RANGE[0] or hi > SAVE_CLAMP_RANGE[1]:
        hint = " It looks like 0-255 values: divide by 255 (or convert to torch.uint8)." if hi > 2.0 and lo >= 0 else ""
        raise ValueError(
            f"The image has float values from {lo:.3g} to {hi:.3g}, but float images must lie in [0, 1].{hint} "
            "If it was normalised (e.g. with ImageNet mean/std), undo that first, or clamp it with .clamp(0, 1)."
        )


def to_pil(image: torch.Tensor) -> Image.Image:
    """Tensor 1×3×H×W or 3×H×W (float in [0, 1] or uint8; any device, may require grad) → RGB PIL image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = _as_chw(image).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(arr, mode="RGB")


def check_writable(path: str | os.PathLike) -> Path:
    """Raise ``OSError`` with a sentence if an image could not be written at ``path`` (checked by creating it).

    Used before a long run, so an unwritable output is reported before the work, not after it.
    """
    path = Path(path).expanduser()
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(f"Cannot save {path}: {folder} is a file, not a folder. Choose another path.")
            break
    if path.is_dir():
        raise IsADirectoryError(f"Cannot save to {path}: it is a folder. Give a file name, e.g. {path / 'result.png'}.")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise OSError(f"Cannot write {path} ({exc.strerror or exc}). Choose another output file or folder.") from None
    if not existed:
        path.unlink()
    return path


def save_image(image: torch.Tensor | Image.Image, path: str | os.PathLike) -> Path:
    """Save a 1×3×H×W / 3×H×W tensor (float in [0, 1] or uint8 0-255) or a PIL image; format from the suffix.

    The file appears complete or not at all (written to a temporary name, then renamed). Returns the path.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if not suffix:
        raise ValueError(f"Cannot tell which format to use for {str(path)!r}: add a suffix such as .png or .jpg.")
    pil = to_pil(image) if isinstance(image, torch.Tensor) else image
    if not isinstance(pil, Image.Image):
        raise TypeError(f"save_image needs a torch tensor or a PIL image, not {type(image).__name__}.")
    if suffix in (".jpg", ".jpeg") and pil.mode != "RGB":  # JPEG has no alpha: flatten onto white like load_image
        pil = to_pil(load_image(pil, min_size=1))
    check_writable(path)
    part = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        if suffix in (".jpg", ".jpeg"):
            pil.save(part, quality=95)
        else:
            pil.save(part)
        os.replace(part, path)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"Cannot save {str(path)!r}: {exc}. Use .png or .jpg.") from None
    finally:
        part.unlink(missing_ok=True)
    return path


def resize(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize a 1×3×H×W (or 3×H×W) tensor to long edge `size` or exactly (H, W), antialiased bilinear."""
    if image.ndim not in (3, 4):
        raise ValueError(f"resize expects a 1×3×H×W or 3×H×W tensor, got shape {tuple(image.shape)}.")
    x = image[None] if image.ndim == 3 else image
    h, w = x.shape[-2:]
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(f"size must be a positive number of pixels, not {size}.")
        scale = size / max(h, w)
        target = (max(1, round(h * scale)), max(1, round(w * scale)))
    elif isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) and s >= 1 for s in size):
        target = (int(size[0]), int(size[1]))
    else:
        raise ValueError(f"size must be an int (long edge) or a (height, width) pair of positive ints, not {size!r}.")
    if not x.is_floating_point():
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if tuple(x.shape[-2:]) != target:
        x = F.interpolate(x, size=target, mode="bilinear", align_corners=False, antialias=True)
    out = x.clamp(0.0, 1.0)
    return out[0] if image.ndim == 3 else out
