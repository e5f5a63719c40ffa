"""How stlib shows numbers to people: weights, durations and sizes, one formatter each (CLI, estimate, studio)."""

from __future__ import annotations


def format_number(value: float) -> str:
    """A weight as a person reads it, two significant digits: ``1e+05`` -> ``1e5``, ``3.16e5`` -> ``3.2e5``, ``5``."""
    text = f"{value:.2g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3 min 5 s`` or ``1 h 2 min``: a duration a person reads at a glance."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def format_bytes(n_bytes: float) -> str:
    """``512 bytes``, ``40.1 MB``, ``800 MB``, ``1.5 GB`` (decimal units, as disks and downloads count them)."""
    size = float(n_bytes)
    if size < 1000:
        return f"{size:.0f} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            return f"{size:.1f} {unit}" if size < 100 else f"{size:.0f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover

