"""A training process's heap on glibc: what keeps a long CPU run's resident
memory near what its tensors use.

A run on the CPU allocates tensors of every batch shape and, at each
evaluation, the encodings of the whole dev set. glibc keeps what is freed in
its heap for later allocations, and from the first large block freed it
raises its mmap threshold up to 32 MiB, so nearly every activation lives in
that heap: biomed stage 2 held 5.4 GB resident while training, of which a
`malloc_trim` (called from a debugger) handed back 3.8 GB, taken again within
the next step, and its peak crept from evaluation to evaluation up to 9.6 GB. Two remedies, both in
`spacy-biobert train`:

- `map_large_blocks`: blocks over 8 MiB (hidden states and attention scores of
  a batch) are mapped on their own, so freeing one returns it at once
  (SPACY_BIOBERT_MMAP_THRESHOLD=bytes chooses another size, 0 none). Over 20
  steps of biomed stage 2 (`bench/allocator.py`, one run each): resident
  memory 3.3 GB (median) instead of 4.4, the peak 5.2 GB instead of 5.8,
  steps as fast (5.29 s against 5.53). At 1 MiB every mid-sized block is mapped too and each
  new one faulted in page by page: 1.9 GB, but 53% slower steps with a quarter
  of the CPU time in the kernel.
- `release_freed_memory`: the logger returns freed heap pages after every
  evaluation and every 50 steps (glibc's `malloc_trim`; `[training.logger]
  release_every` sets the interval: every step held a quarter less resident
  over 50 steps of biomed stage 2, 8% slower).
"""
import ctypes
import ctypes.util
import functools
import os
import sys
from typing import Optional

from ..errors import Errors

# glibc's mallopt parameter number (malloc.h)
M_MMAP_THRESHOLD = -3
# Blocks from this size up are mapped on their own (see the module docstring),
# unless this environment variable says otherwise (0: glibc's own behaviour).
LARGE_BLOCK = 8 << 20
THRESHOLD_VARIABLE = "SPACY_BIOBERT_MMAP_THRESHOLD"


def map_large_blocks(threshold: Optional[int] = None) -> bool:
    """Have glibc map every block of `threshold` bytes or more on its own (and
    stop raising that threshold), so freeing one returns it to the system.
    The threshold is `threshold`, else SPACY_BIOBERT_MMAP_THRESHOLD (bytes; 0
    keeps glibc's own behaviour), else 8 MiB. Returns False, changing nothing,
    where there is no glibc, where the threshold is 0, or where the user chose
    glibc's threshold in the environment (`MALLOC_MMAP_THRESHOLD_`, or
    `glibc.malloc.mmap_threshold` in `GLIBC_TUNABLES`)."""
    if threshold is None:
        threshold = _threshold_from_environment()
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    chosen = "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in tunables
    libc = _glibc()
    if libc is None or chosen or threshold <= 0:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold)))


def _threshold_from_environment() -> int:
    value = os.environ.get(THRESHOLD_VARIABLE, "").strip()
    if not value:
        return LARGE_BLOCK
    try:
        threshold = int(value)
    except ValueError:
        raise ValueError(Errors.E013.format(variable=THRESHOLD_VARIABLE, value=value)) from None
    if threshold < 0:
        raise ValueError(Errors.E013.format(variable=THRESHOLD_VARIABLE, value=value))
    return threshold


def release_freed_memory() -> bool:
    """Return the heap memory freed since the last call to the system
    (glibc's `malloc_trim(0)`); False where there is no glibc. Freed blocks
    otherwise stay resident, and the peak creeps up from one evaluation to
    the next (biomed stage 1: 6.2 GB at its step-300 evaluation, 8.5 GB at
    step 2,100)."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


@functools.lru_cache(maxsize=None)
def _glibc():
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
