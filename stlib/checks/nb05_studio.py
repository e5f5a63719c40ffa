"""Check for notebook 05 (the studio): which style layer's receptive field holds a stroke of a given size."""

from __future__ import annotations

from typing import Any, Callable, Optional

from ..layers import STYLE_LAYERS, receptive_field
from .framework import (
    CheckResult,
    call_student,
    finish,
    todo,
    wrong,
)


# ------------------------------------------------------------------------------------------------ stroke size
def check_stroke_layer(fn: Callable[[int], Optional[str]]) -> CheckResult:
    """Check ``fn(pixels) -> the first style layer whose receptive field is at least `pixels` wide (or None)``."""

    def run() -> str:
        fields = {n: receptive_field(n) for n in STYLE_LAYERS}
        for pixels in (1, 3, 4, 10, 16, 17, 40, 44, 45, 100, 196, 197, 500):
            expected = next((n for n in STYLE_LAYERS if fields[n] >= pixels), None)
            got = call_student(fn, "your stroke_layer", pixels) if expected is not None else _none_ok(fn, pixels)
            if got == expected:
                continue
            if isinstance(got, int):
                raise wrong(f"for {pixels} px it returned the number {got}; return the layer's name, e.g. 'relu3_1'.")
            if got not in STYLE_LAYERS and got is not None:
                raise wrong(f"for {pixels} px it returned {got!r}; answer with one of the style layers "
                            f"{', '.join(STYLE_LAYERS)} (or None when none is large enough).")
            if expected is None:
                raise wrong(f"for {pixels} px no style layer sees that much (relu5_1 sees {fields['relu5_1']} px): "
                            "return None.")
            if got is not None and fields[got] < pixels:
                raise wrong(f"for {pixels} px you chose {got}, whose units see only {fields[got]} px: too small to "
                            "hold the stroke. Compare stlib.layers.receptive_field(layer) with the stroke size.")
            raise wrong(f"for {pixels} px you chose {got}, but {expected} (receptive field {fields[expected]} px) "
                        "already sees it: return the *first* (shallowest) style layer that is large enough.")
        listing = ", ".join(f"{n} {f} px" for n, f in fields.items())
        return f"stroke_layer is right. Receptive fields of the style layers: {listing}."

    return finish("stroke_layer", run)


def _none_ok(fn: Callable[[int], Optional[str]], pixels: int) -> Any:
    """Call ``fn`` where the right answer is None (so a None result is not an unfinished stub)."""
    try:
        return fn(pixels)
    except NotImplementedError:
        raise todo("replace `raise NotImplementedError` in your stroke_layer with your code") from None
    except Exception as err:  # noqa: BLE001
        raise wrong(f"for {pixels} px it raised {type(err).__name__}: {err}; return None when no layer is large "
                    "enough.") from None


#: One possible solution of each exercise (shown by ``stlib.checks.solution`` and hidden in the notebooks).
SOLUTIONS: dict[str, str] = {
    "stroke_layer": '''
def stroke_layer(pixels):
    """The first style layer whose units see at least `pixels` x `pixels` input pixels (None if none does)."""
    for name in stlib.STYLE_LAYERS:
        if stlib.layers.receptive_field(name) >= pixels:
            return name
    return None
''',
}
