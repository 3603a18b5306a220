"""Work arrays that a thread keeps between calls of the metrics, and the threads that keep them.

A fresh numpy array of a few hundred kB or more is new memory: the allocator maps it (or takes it back
from the operating system after the last call freed it), and every page the arithmetic touches first
is a page fault. On a small video the metrics' temporaries cost thousands of page faults per call, a
sixth of ``anchor_metrics``' time (``benchmarks/bench_metrics.py``). :func:`work_array` hands the
same array to the same call site on the next call instead: no new memory, no fault. The threads the
metrics run on beside the caller are kept too (:func:`pool`), so that their arrays outlive a call.
"""
from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: the most bytes of work arrays one thread keeps; past them its store starts over
KEEP_BYTES = 2**25

_local = threading.local()
_stores: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # every live thread's store, for release()
_pools: dict[tuple, ThreadPoolExecutor] = {}
_lock = threading.Lock()


class _Store(dict):
    """One thread's work arrays (a dict that a weak reference can point to)."""


def work_array(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An uninitialised array for the call site ``name``, the same one (per thread, shape and dtype)
    on every call: the caller overwrites it whole and never hands it out (copy what it returns). An
    array larger than :data:`KEEP_BYTES` is made fresh and not kept."""
    store = getattr(_local, "arrays", None)
    if store is None:
        store = _local.arrays = _Store()
        with _lock:
            _stores[threading.get_ident()] = store
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


def kept_bytes() -> int:
    """The bytes of work arrays all threads keep now."""
    with _lock:
        return sum(a.nbytes for store in _stores.values() for a in list(store.values()))


def release() -> None:
    """Drop every thread's work arrays (they are made again when next needed)."""
    with _lock:
        for store in _stores.values():
            store.clear()


def pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The process's executor ``name`` with ``threads`` threads, made once and kept (a forked child
    makes its own: the parent's threads are not in it)."""
    key = (name, threads, os.getpid())
    with _lock:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix=f"cogviz-{name}")
        return _pools[key]


def on_pool(name: str) -> bool:
    """Whether this thread is one of :func:`pool` ``name``'s (work it submits there and waits for could
    wait forever: run it here instead)."""
    return threading.current_thread().name.startswith(f"cogviz-{name}_")
