"""Keep glibc's heap from holding on to the memory of large freed tensors (Linux; a no-op elsewhere).

glibc serves an allocation from its heap unless it is larger than the *mmap threshold*, in which case it gets
its own pages, returned to the system on free. The threshold starts at 128 KiB and rises to the size of every
large block freed (up to 32 MiB), so after the first step of a 512 px run the 16-32 MiB feature maps and
gradients come from the heap, and the holes they leave stay resident: 0.2-0.4 GB of free heap at the peak
(benchmarks/README.md, "Peak memory"). Fixing the threshold at ``MMAP_THRESHOLD_BYTES`` keeps the largest
tensors out of the heap: a 512 px bf16 run peaked ~0.1 GB lower (1.38 -> 1.26 GB). Every mmapped block is
page-faulted in again at each step, though: at 256 px, where the heap's holes are small, the fixed threshold
only added faults (3.4k -> 7.9k per step, ~2 % of a step's CPU time), so ``stylize`` fixes it from
``HEAP_FIX_MIN_SIZE`` px on. Lower thresholds save more and cost more (4 MiB: ~25 % slower steps at 512 px).
"""

from __future__ import annotations

import ctypes
import functools
import sys

#: Allocations at least this large get their own pages (glibc's M_MMAP_THRESHOLD, fixed: no dynamic rise).
MMAP_THRESHOLD_BYTES = 16 * 2**20
#: The smallest long edge (px) of a run for which ``stylize`` and ``estimate`` fix the threshold.
HEAP_FIX_MIN_SIZE = 384
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


@functools.lru_cache(maxsize=None)
def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap threshold to ``threshold`` bytes, once per process. True when it was set (glibc on
    Linux), False elsewhere (macOS, Windows, musl): the run is then the same, only its peak memory is not."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False
