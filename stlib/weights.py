"""Where VGG-19's weights come from: torchvision's ImageNet file, an exported file, or a seeded random draw.

Three formats load:
- torchvision's full checkpoint (``vgg19-dcbb9e9d.pth``, keys ``features.N.*`` and ``classifier.*``): it is
  memory-mapped and only the ``features.*`` tensors are copied, so the 548 MB classifier never reaches RAM;
- a features-only file written by ``stlib weights export`` (fp16 ~40 MB or fp32 ~80 MB, keys by Gatys
  name, with a checksum of its tensors inside);
- a bare ``vgg.features.state_dict()`` (keys ``N.weight``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import urllib.error
import warnings
from pathlib import Path
from typing import Any

import torch

from .layers import VGG19_LAYERS, layer_channels, layer_index

#: File format tag of ``stlib weights export`` output.
EXPORT_FORMAT = "stlib-vgg19-features"
#: Default name of an exported features-only file in the torch hub cache.
EXPORT_NAME = "stlib-vgg19-features-fp16.pth"
#: Seed of the offline random weights (fixed, so every machine draws the same network).
RANDOM_SEED = 19

_HOW_TO_GET = (
    "To use real ImageNet weights: on a machine with internet run `stlib weights download` "
    "(or `stlib weights export -o vgg19-features.pth` for a 40 MB features-only file), copy the file here "
    "and set STLIB_WEIGHTS=/path/to/file (or pass weights='/path/to/file')."
)


class WeightsError(RuntimeError):
    """A weights file is missing, truncated, corrupt or of an unknown format; the message says how to fix it."""


class OfflineWeightsWarning(UserWarning):
    """Warned once when no ImageNet weights are available and seeded random weights are used instead."""


# --------------------------------------------------------------------------------------------- locations
def imagenet_url() -> str:
    """URL of torchvision's ``VGG19_Weights.IMAGENET1K_V1`` checkpoint."""
    from torchvision.models import VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1.url


def cache_dir() -> Path:
    """The torch hub checkpoint folder (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/...``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_imagenet_path(url: str | None = None) -> Path:
    """Where the ImageNet checkpoint from ``url`` is (or would be) cached."""
    return cache_dir() / os.path.basename(url or imagenet_url())


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_prefix(path: Path) -> str | None:
    """The SHA-256 prefix that torch hub file names carry (``vgg19-dcbb9e9d.pth`` -> ``dcbb9e9d``)."""
    match = re.search(r"-([a-f0-9]{8,64})\.", path.name)
    return match.group(1) if match else None


def verify_checksum(path: str | Path) -> str | None:
    """Check a file against its ``.sha256`` side file or the hash prefix in its name; return the digest.

    Returns None when there is nothing to check against. A verified file gets a small stamp
    (``<file>.verified``, holding size and mtime) so the 548 MB checkpoint is not re-hashed every load.
    """
    path = Path(path)
    side = path.with_name(path.name + ".sha256")
    expected = _side_digest(side, path) if side.exists() else _hash_prefix(path)
    if expected is None:
        return None
    stamp = path.with_name(path.name + ".verified")
    stat = path.stat()
    fingerprint = f"{stat.st_size} {stat.st_mtime_ns} {expected}"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return expected
    actual = sha256_file(path)
    if not actual.startswith(expected):
        raise WeightsError(
            f"checksum mismatch for {path}: expected sha256 {expected}..., got {actual[:len(expected)]}... "
            "The file is corrupt or incomplete. Delete it and download it again "
            f"(`stlib weights download`), or re-export it. {_HOW_TO_GET}"
        )
    try:
        stamp.write_text(fingerprint)
    except OSError:
        pass  # a read-only cache is fine; we just hash again next time
    return actual


def _side_digest(side: Path, path: Path) -> str:
    """The SHA-256 written in a ``.sha256`` side file (``sha256sum`` format); an empty or garbled one is an error."""
    words = side.read_text(errors="replace").split()
    digest = words[0].lower() if words else ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise WeightsError(
            f"{side} should hold the SHA-256 of {path.name} (64 hex digits) but is "
            f"{'empty' if not words else 'garbled'}, so the file cannot be checked. Delete {side.name} (the file "
            f"is then loaded without a checksum) or write it again with `sha256sum {path.name} > {side.name}`."
        )
    return digest


# --------------------------------------------------------------------------------------------- download
def download_imagenet(url: str | None = None, *, progress: bool = True) -> Path:
    """Download torchvision's VGG-19 ImageNet checkpoint into the torch hub cache (once) and return its path.

    The download has a total deadline and a size cap (``stlib.downloads``); only a complete file whose
    SHA-256 matches the prefix in its name is moved into place.
    """
    url = url or imagenet_url()
    dst = cached_imagenet_path(url)
    if dst.exists():
        verify_checksum(dst)
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    _fetch_verified(url, dst, progress)
    verify_checksum(dst)
    return dst


def _fetch_verified(url: str, dst: Path, progress: bool) -> None:
    """Download ``url`` to ``dst`` within a deadline and a size cap (``stlib.downloads``), via a partial file
    that only replaces ``dst`` once it is complete and its SHA-256 matches the prefix in ``dst``'s name."""
    from .downloads import WEIGHTS_DEADLINE_S, WEIGHTS_MAX_BYTES, DownloadError, deadline_s, fetch, max_bytes

    part = dst.with_name(dst.name + ".partial")
    try:
        with open(part, "wb") as sink:
            fetch(url, sink, deadline=deadline_s(WEIGHTS_DEADLINE_S), limit=max_bytes(WEIGHTS_MAX_BYTES),
                  progress=progress)
        prefix = _hash_prefix(dst)
        if prefix and not sha256_file(part).startswith(prefix):
            raise WeightsError(f"the download from {url} is corrupt (its SHA-256 does not start with {prefix}); "
                               f"try again. {_HOW_TO_GET}")
        os.replace(part, dst)
    except DownloadError as err:
        raise WeightsError(f"{err}. {_HOW_TO_GET}") from None
    except urllib.error.HTTPError as err:
        raise WeightsError(f"downloading {url} failed: HTTP {err.code} {err.reason}. {_HOW_TO_GET}") from None
    except (urllib.error.URLError, OSError) as err:
        raise WeightsError(
            f"could not reach {url} ({getattr(err, 'reason', err)}): this machine seems to be offline. "
            + _HOW_TO_GET
        ) from None
    finally:
        part.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------- formats
def _expected_shapes() -> "dict[str, tuple[int, ...]]":
    shapes: "dict[str, tuple[int, ...]]" = {}
    in_channels = 3
    for name in VGG19_LAYERS:
        if name.startswith("conv"):
            out = layer_channels(name)
            shapes[f"{name}.weight"] = (out, in_channels, 3, 3)
            shapes[f"{name}.bias"] = (out,)
            in_channels = out
    return shapes


def _tensor_digest(state: "dict[str, torch.Tensor]") -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _to_named(raw: "dict[str, torch.Tensor]", path: Path) -> "dict[str, torch.Tensor]":
    """Convert torchvision keys (``features.21.weight`` or ``21.weight``) to Gatys keys (``conv4_2.weight``)."""
    named: "dict[str, torch.Tensor]" = {}
    for key, value in raw.items():
        parts = key.split(".")
        if parts[0] == "classifier":
            continue  # never copied out of the memory map
        if parts[0] == "features":
            parts = parts[1:]
        if len(parts) == 2 and parts[0].isdigit():
            named[f"{VGG19_LAYERS[int(parts[0])]}.{parts[1]}"] = value
        elif len(parts) == 2 and parts[0] in VGG19_LAYERS:
            named[f"{parts[0]}.{parts[1]}"] = value
    return named


def _check_state(state: "dict[str, Any]", path: Path) -> str:
    """Refuse a state that is not VGG-19's features: missing keys, non-tensors, wrong shapes, non-float or
    non-finite values, each named. Returns a sentence saying what was checked."""
    expected = _expected_shapes()
    missing = sorted(set(expected) - set(state), key=lambda k: layer_index(k.split(".")[0]))
    if missing:
        raise WeightsError(
            f"{path} is not a VGG-19 weights file: it lacks {', '.join(missing[:4])}"
            f"{' ...' if len(missing) > 4 else ''}. {_HOW_TO_GET}"
        )
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: {key} is a {type(value).__name__}, not a tensor, so this is not a VGG-19 "
                               f"weights file stlib can use. {_HOW_TO_GET}")
        if tuple(value.shape) != shape:
            raise WeightsError(f"{path}: {key} has shape {tuple(value.shape)}, VGG-19 needs {shape}.")
        if not value.is_floating_point():
            raise WeightsError(
                f"{path}: {key} holds {str(value.dtype).replace('torch.', '')} values, but VGG-19 weights are "
                f"floating-point numbers (float16, bfloat16 or float32): this is not a usable weights file. {_HOW_TO_GET}"
            )
        bad = int(value.numel() - torch.isfinite(value).sum())
        if bad:
            raise WeightsError(
                f"{path}: {key} contains {bad} NaN or infinite value(s) (of {value.numel()}), so the network "
                "would only produce NaN. The file is damaged: delete it and download or export it again."
            )
    dtypes = sorted({str(state[k].dtype).replace("torch.", "") for k in expected})
    return (f"{len(expected)} tensors present, all finite {'/'.join(dtypes)} values, every shape as VGG-19 needs")


def _export_state(raw: dict, path: Path) -> "dict[str, Any]":
    """The tensors of an ``stlib weights export`` file, refusing one without them or with altered ones."""
    state = raw.get("state_dict")
    if not isinstance(state, dict):
        found = "no 'state_dict' entry" if state is None else f"a {type(state).__name__} as its 'state_dict'"
        raise WeightsError(f"{path} is an stlib export file with {found}, so it holds no weights (it was not "
                           "written completely). Export it again with `stlib weights export`.")
    _check_state(state, path)
    if _tensor_digest({k: state[k] for k in state if isinstance(state[k], torch.Tensor)}) != raw.get("tensor_sha256"):
        raise WeightsError(
            f"{path} is corrupt: its tensors do not match the checksum recorded when it was exported. "
            "Export it again with `stlib weights export`."
        )
    return state


def _checksum_note(path: Path, digest: str | None) -> str:
    """How the file's SHA-256 was checked, for ``stlib weights info``."""
    if digest is None:
        return "file sha256 not checked (no .sha256 file and no hash in its name)"
    against = "its .sha256 file" if path.with_name(path.name + ".sha256").exists() else "the hash in its name"
    return f"file sha256 verified against {against}"


def _imagenet_prefix() -> str:
    """The SHA-256 prefix of torchvision's ImageNet checkpoint (from its file name)."""
    return _hash_prefix(Path(imagenet_url())) or "?"


def read_weights_file(path: str | Path) -> "tuple[dict[str, torch.Tensor], dict]":
    """Load a weights file as ``({'conv1_1.weight': fp32 tensor, ...}, info)``, verifying its checksums and
    contents (VGG-19's keys and shapes, finite floating-point tensors); ``info["checked"]`` says what was checked
    and ``info["origin"]`` is "imagenet" only for a file whose SHA-256 is torchvision's checkpoint's."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"weights file {path} does not exist. {_HOW_TO_GET}")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder; give the path of a .pth weights file. {_HOW_TO_GET}")
    digest = verify_checksum(path)
    try:
        raw = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)  # torch 2.1 mmaps only a str
    except Exception as err:  # torch raises several types for truncated/corrupt archives
        raise WeightsError(
            f"could not read weights file {path} ({type(err).__name__}: {err}). The file is truncated, "
            "corrupt or not a PyTorch checkpoint: delete it and download or export it again. " + _HOW_TO_GET
        ) from err
    if not isinstance(raw, dict):
        raise WeightsError(f"{path} holds a {type(raw).__name__}, not a VGG-19 state dict. {_HOW_TO_GET}")
    info: dict = {"path": str(path), "sha256": digest, "size_bytes": path.stat().st_size}
    if raw.get("format") == EXPORT_FORMAT:
        state = _export_state(raw, path)
        info.update(format=EXPORT_FORMAT, origin=str(raw.get("origin", "unknown")))
        info["checked"] = _check_state(state, path) + ", tensor checksum recorded at export matches"
    else:
        state = _to_named(raw, path)
        info["checked"] = _check_state(state, path)
        # ImageNet only when the file's SHA-256 is torchvision's checkpoint's, not merely its format.
        verified = digest is not None and digest.startswith(_imagenet_prefix())
        info.update(format="torchvision", origin="imagenet" if verified else "unknown")
    info["checked"] += "; " + _checksum_note(path, digest)
    info["dtype"] = str(state["conv1_1.weight"].dtype).replace("torch.", "")
    state = {k: v.to(torch.float32).clone() for k, v in _expected_shapes_items(state)}
    return state, info


def _expected_shapes_items(state: "dict[str, torch.Tensor]"):
    return ((k, state[k]) for k in _expected_shapes())


def export_weights(
    dst: str | Path,
    source: str | Path = "imagenet",
    dtype: str = "float16",
) -> Path:
    """Write a features-only weights file (fp16 ≈ 40 MB, fp32 ≈ 80 MB) plus a ``.sha256`` side file."""
    if dtype not in ("float16", "float32"):
        raise ValueError("dtype must be 'float16' or 'float32'")
    if str(source) == "imagenet":
        state, info = read_weights_file(download_imagenet())
        origin = "imagenet"
    elif str(source) == "random":
        state, origin = random_weights(), "random"
    else:
        state, info = read_weights_file(source)
        origin = f"file:{source}"
    state = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in state.items()}
    dst = Path(dst).expanduser()
    dst.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": EXPORT_FORMAT, "version": 1, "origin": origin, "state_dict": state,
               "tensor_sha256": _tensor_digest(state)}
    torch.save(payload, dst)
    dst.with_name(dst.name + ".sha256").write_text(f"{sha256_file(dst)}  {dst.name}\n")
    return dst


# --------------------------------------------------------------------------------------------- random
def random_weights(seed: int = RANDOM_SEED) -> "dict[str, torch.Tensor]":
    """Seeded He-initialised VGG-19 weights, bit-identical on every machine.

    Every filter is drawn from N(0, 2 / fan_in) (He et al., 2015) by a local CPU generator in float32, biases
    are 0. He scaling keeps the activations the same size from layer to layer, which lets random filters still
    give useful Gram matrices for texture (Ustyuzhaninov et al., 2017) and keeps the deep layers invertible
    (He, Wang & Hopcroft, NeurIPS 2016): notebook 01 recognises the photo in its relu4_2 reconstruction.
    The filters are *not* made zero-mean: a zero-sum filter cancels the large common (positive) part of the
    ReLU maps it reads, i.e. local brightness and the overall strength of the features below, and the deep
    layers then keep only texture energy - relu4_2 reconstructions were pure noise (SSIM vs the photo 0.01
    instead of 0.46 at 192 px; benchmarks/OFFLINE_WEIGHTS.md).
    """
    gen = torch.Generator().manual_seed(seed)
    state: "dict[str, torch.Tensor]" = {}
    for key, shape in _expected_shapes().items():
        if key.endswith(".weight"):
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=gen).mul_((2.0 / fan_in) ** 0.5)  # in place: no temporaries
        else:
            state[key] = torch.zeros(shape)
    return state


# --------------------------------------------------------------------------------------------- origin
@functools.lru_cache(maxsize=32)
def weights_origin(source: str) -> str:
    """What a ``weights_source`` was trained on: "imagenet", "random" or "unknown".

    ``file:<path>`` sources are looked up in the file: an ``stlib weights export`` file records its
    origin (so an exported copy of the offline weights still counts as "random"); torchvision
    checkpoints are ImageNet's.
    """
    if source in ("imagenet", "random"):
        return source
    if not source.startswith("file:"):
        return "unknown"
    try:
        raw = torch.load(source[5:], map_location="cpu", mmap=True, weights_only=True)
    except Exception:
        return "unknown"
    if isinstance(raw, dict) and raw.get("format") == EXPORT_FORMAT:
        origin = str(raw.get("origin", "unknown"))
        return origin if origin in ("imagenet", "random") else weights_origin(origin)
    return "imagenet"


# --------------------------------------------------------------------------------------------- resolve
def resolve_weights(weights: str | Path = "auto") -> "tuple[dict[str, torch.Tensor], str]":
    """Turn a ``weights`` argument into ``(state_dict, source)`` where source is "imagenet", "file:<path>" or "random"."""
    choice = str(weights)
    if choice == "auto":
        env = os.environ.get("STLIB_WEIGHTS", "").strip()
        if env:
            return resolve_weights(env)
        for candidate in (cached_imagenet_path(), cache_dir() / EXPORT_NAME):
            if candidate.exists():
                state, info = read_weights_file(candidate)
                at_imagenet_path = candidate == cached_imagenet_path() and info["format"] == "torchvision"
                return state, "imagenet" if at_imagenet_path or info["origin"] == "imagenet" else f"file:{candidate}"
        if os.environ.get("STLIB_OFFLINE", "") not in ("", "0"):
            return _offline_fallback("STLIB_OFFLINE is set")
        try:
            return resolve_weights("imagenet")
        except WeightsError as err:
            return _offline_fallback(str(err).split(":")[0])
    if choice == "imagenet":
        state, _ = read_weights_file(download_imagenet())
        return state, "imagenet"
    if choice == "random":
        return random_weights(), "random"
    state, _ = read_weights_file(choice)
    return state, f"file:{choice}"


def _offline_fallback(reason: str) -> "tuple[dict[str, torch.Tensor], str]":
    warnings.warn(
        "stlib: no ImageNet VGG-19 weights available, so seeded RANDOM weights are used. Pictures are an "
        "offline approximation: colours and textures transfer, but not the painterly strokes of the real "
        "network. " + _HOW_TO_GET,
        OfflineWeightsWarning,
        stacklevel=1,  # one fixed location: Python shows it once per session
    )
    return random_weights(), "random"
