"""Bounded HTTP downloads: a total deadline and a size cap, not only a timeout per read.

A server that sends one byte every few seconds never trips a per-read timeout, so ``fetch`` also checks
the clock between reads (and a stalled read is cut by the socket timeout, at most the time left).
``STLIB_DOWNLOAD_DEADLINE`` (seconds) and ``STLIB_DOWNLOAD_MAX_MB`` override the defaults of every download.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Callable

#: Images: a photo is a few MB; a minute is generous even on a slow connection.
IMAGE_DEADLINE_S = 60.0
IMAGE_MAX_BYTES = 200 * 2**20
#: Weights: torchvision's VGG-19 checkpoint is 548 MB; 30 min is ~0.3 MB/s.
WEIGHTS_DEADLINE_S = 30 * 60.0
WEIGHTS_MAX_BYTES = 2**30
#: Longest wait for any single read (the deadline may cut it shorter).
READ_TIMEOUT_S = 30.0
USER_AGENT = "stlib (neural style transfer teaching kit)"


class DownloadError(OSError):
    """A download took longer than its deadline or was larger than its size cap."""


def deadline_s(default: float) -> float:
    """The total deadline for a download: ``STLIB_DOWNLOAD_DEADLINE`` (seconds) if set, else ``default``."""
    text = os.environ.get("STLIB_DOWNLOAD_DEADLINE", "").strip()
    try:
        return float(text) if text and float(text) > 0 else default
    except ValueError:
        return default


#: A socket's read timeout: ``socket.timeout``, which only Python 3.10+ makes an alias of ``TimeoutError``.
_TIMEOUTS = (TimeoutError, socket.timeout)


def max_bytes(default: int) -> int:
    """The size cap for a download: ``STLIB_DOWNLOAD_MAX_MB`` (MB) if set, else ``default`` bytes."""
    text = os.environ.get("STLIB_DOWNLOAD_MAX_MB", "").strip()
    try:
        return int(float(text) * 2**20) if text and float(text) > 0 else default
    except ValueError:
        return default


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def fetch(url: str, sink: BinaryIO, *, deadline: float, limit: int, progress: bool = False) -> int:
    """Copy the body at ``url`` into ``sink`` within ``deadline`` seconds and ``limit`` bytes; return its size.

    Raises ``DownloadError`` (deadline, size) or urllib's ``HTTPError``/``URLError``/``OSError`` (network).
    """
    start = time.monotonic()

    def left() -> float:
        remaining = deadline - (time.monotonic() - start)
        if remaining <= 0:
            raise DownloadError(f"The download of {url} took longer than {deadline:g} s and was stopped "
                                "(the server is too slow or stalled)")
        return remaining

    try:
        return _copy(url, sink, left, limit, progress)
    except (*_TIMEOUTS, urllib.error.URLError) as err:
        if isinstance(err, _TIMEOUTS) or isinstance(getattr(err, "reason", None), _TIMEOUTS):
            if time.monotonic() - start >= deadline - 0.05:
                left()  # raises the deadline's DownloadError
        raise


def _copy(url: str, sink: BinaryIO, left: Callable[[], float], limit: int, progress: bool) -> int:
    """``fetch``'s body: stream ``url`` into ``sink``, calling ``left()`` (which raises past the deadline)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=min(READ_TIMEOUT_S, left())) as response:
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise DownloadError(f"The file at {url} is {_mb(int(declared))}, larger than {_mb(limit)}, the most "
                                "stlib downloads")
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=int(declared) if declared and declared.isdigit() else None, unit="B", unit_scale=True,
                       desc=Path(url).name or "download")
        size = 0
        try:
            while True:
                sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
                if sock is not None:
                    sock.settimeout(min(READ_TIMEOUT_S, left()))  # a stalled read ends at the deadline
                block = response.read1(1 << 16)
                if not block:
                    break
                size += len(block)
                if size > limit:
                    raise DownloadError(f"The file at {url} is larger than {_mb(limit)}, the most stlib downloads")
                sink.write(block)
                if bar is not None:
                    bar.update(len(block))
                left()
        finally:
            if bar is not None:
                bar.close()
    return size
