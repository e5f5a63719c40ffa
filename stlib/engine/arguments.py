"""Checks of ``stylize``'s arguments: one sentence naming the argument and what would work, before any work.

Kept apart from the optimisation so each check reads on its own: ``check_arguments`` runs first,
``check_init`` turns an init tensor into a valid image, ``check_scaled_sizes`` says which image a chosen
``size`` (or a coarse scale) makes too small, and ``explains_memory_errors`` turns an allocation failure into a ``MemoryError``
that says which size did not fit.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, Mapping, Sequence, TypeVar

import torch

from ..layers import deepest, layer_stride

F = TypeVar("F", bound=Callable[..., Any])

#: The smallest long edge ``size`` may ask for (VGG-19 halves an image five times; load_image's minimum).
MIN_SIZE = 32


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_arguments(*, styles: Sequence[Any], size: Any, steps: Any, lr: Any, seed: Any, scales: Any,
                    style_blend: Any) -> None:
    """Raise ``ValueError`` naming the first argument of ``stylize`` that cannot work."""
    if not styles:
        raise ValueError("style is an empty list: pass at least one style image (a path, name, PIL image or tensor)")
    if size is not None and (not _is_int(size) or size < MIN_SIZE):
        raise ValueError(f"size must be a whole number of pixels >= {MIN_SIZE} (the long edge) or None, not {size!r}")
    counts = [steps] if not isinstance(steps, (list, tuple)) else list(steps)
    if not counts or not all(_is_int(n) and n >= 0 for n in counts):
        raise ValueError(f"steps must be a whole number >= 0 (or a list of them, one per scale), not {steps!r}")
    if lr is not None and (not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0):
        raise ValueError(f"lr must be a finite number > 0 (or None for the optimiser's default), not {lr!r}")
    if not _is_int(seed):
        raise ValueError(f"seed must be a whole number, not {seed!r}")
    if not (scales is None or scales == "auto" or (_is_int(scales) and scales >= 1)
            or (isinstance(scales, (list, tuple)) and scales and all(isinstance(f, numbers.Real) for f in scales))):
        raise ValueError(f"scales must be None, 'auto', a number of octaves >= 1 or a non-empty list of increasing "
                         f"fractions in (0, 1], not {scales!r}")
    if style_blend is not None:
        blend = list(style_blend) if isinstance(style_blend, (list, tuple)) else [style_blend]
        ok = len(blend) == len(styles) and all(isinstance(b, numbers.Real) and math.isfinite(b) and b >= 0
                                               for b in blend)
        if not ok or sum(blend) <= 0:
            raise ValueError(f"style_blend needs {len(styles)} finite weight(s) >= 0, not all zero (one per style "
                             f"image), got {style_blend!r}")


def check_init(init: Any) -> Any:
    """An init tensor as a valid 1x3xHxW image in [0, 1] (uint8 is read as 0-255); strings pass through."""
    if not isinstance(init, torch.Tensor):
        return init
    from ..images import load_image

    try:
        return load_image(init, min_size=1)
    except ValueError as err:
        raise ValueError(f"init: {err}") from None


def check_scaled_sizes(images: Mapping[str, torch.Tensor], layers: Sequence[str], size: int, sizes: Sequence[int],
                       scales: Any) -> None:
    """Raise ``ValueError`` if an image, resized to any of the scales' long edges ``sizes``, would be too small
    for the deepest of ``layers`` (computed from the shapes: nothing is resized here).

    ``images``: {"content image": (1, 3, H, W), "style image": ...}; ``size``: the final long edge.
    """
    if not layers:
        return
    need = max(layer_stride(deepest(list(layers))), 1)
    for scale_size in sorted(set(sizes)):
        for role, img in images.items():
            h, w = img.shape[-2:]
            ratio = scale_size / max(h, w)  # the arithmetic of stlib.images.resize
            h, w = max(1, round(h * ratio)), max(1, round(w * ratio))
            if min(h, w) >= need:
                continue
            final = scale_size == size
            where = f"at size={size}" if final else f"at the {scale_size} px coarse scale of scales={scales!r}"
            raise ValueError(
                f"the {role} becomes {w}×{h} px {where}, but VGG-19 needs at least {need} px on each side: use a "
                f"larger size (--size on the command line){'' if final else ' or fewer scales'}, or crop the "
                f"{role} to a less elongated shape"
            )


def _is_allocation_failure(err: BaseException) -> bool:
    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and ("not enough memory" in text or "can't allocate memory" in text
                                           or "out of memory" in text.lower()))


def explains_memory_errors(fn: F) -> F:
    """Decorate ``stylize``: an allocation failure becomes a ``MemoryError`` saying which size did not fit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuntimeError as err:
            if not _is_allocation_failure(err):
                raise
            size = kwargs.get("size")
            raise MemoryError(
                f"out of memory: a run at size={size if size is not None else 'default'} does not fit "
                f"({' '.join(str(err).split())[:160]})."
            ) from None

    return wrapper  # type: ignore[return-value]
