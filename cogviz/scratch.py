"""Work arrays that a thread keeps between calls of the metrics.

A fresh numpy array of a few hundred kB or more is new memory: the allocator maps it (or takes it back
from the operating system after the last call freed it), and every page the arithmetic touches first
is a page fault. On a small video the optical flow's temporaries cost thousands of page faults per
call, a fifth of ``anchor_metrics``' time (``benchmarks/bench_metrics.py``). :func:`work_array` hands
the same array to the same call site on the next call instead: no new memory, no fault.
"""
from __future__ import annotations

import threading

import numpy as np

#: the most bytes of work arrays one thread keeps; past them its store starts over
KEEP_BYTES = 2**26

_local = threading.local()


def work_array(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised array for the call site ``name``, the same one (per thread, shape and dtype)
    on every call: the caller overwrites it whole and never hands it out (copy what it returns). An
    array larger than :data:`KEEP_BYTES` is made fresh and not kept."""
    store = getattr(_local, "arrays", None)
    if store is None:
        store = _local.arrays = {}
    key = (name, tuple(int(n) for n in shape), np.dtype(dtype).str)
    array = store.get(key)
    if array is None:
        array = np.empty(key[1], dtype)
        if array.nbytes > KEEP_BYTES:
            return array
        if sum(a.nbytes for a in store.values()) + array.nbytes > KEEP_BYTES:
            store.clear()
        store[key] = array
    return array
