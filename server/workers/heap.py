"""How much freed heap the worker keeps (glibc's malloc), set once at worker start; and
the objects of start-up set apart from the garbage collector's scans.

Request and response bodies come and go in pieces of tens to hundreds of KiB (a socket
read is up to 256 KiB). With glibc's defaults, freeing them shrinks the heap as soon
as 128 KiB or more are free at its top (the threshold rises only as far as the largest
block freed so far), and the next body faults fresh zeroed pages back in: measured on
1 MiB uploads at 10 connections, page faults were a quarter of the worker's time.
``ASYNCWORKER_MALLOC_RETAIN`` keeps up to that many freed bytes per heap for reuse, and
serves blocks up to a quarter of it (at most 4 MiB) from the heap rather than from
their own mappings. It bounds what is kept, not what is used: memory past it goes back
to the system as before. 0 leaves glibc's behaviour (and ``MALLOC_*`` variables) alone.

Each full collection of Python's garbage collector walks every object that has lived long
enough, the app's modules and gunicorn's among them (tens of thousands for a hello app,
hundreds of thousands for a Django project), and under load one runs every second or
so, whatever the requests free. ``ASYNCWORKER_GC_FREEZE`` (on by default) collects once
the app is loaded and moves what remains to the permanent generation (``gc.freeze()``,
as the Python documentation advises for forked workers): measured under h2load, the time
in full collections fell from 0.5 s to 0.15 s in 8 s. The cost: an object alive at that
moment that later becomes unreachable in a cycle is never freed.

The youngest generation is collected when the container objects made since the last
collection, less those freed, pass a threshold: 700 by default. A request in flight
holds 12 to 30 of them (its task, coroutine, scope, exchange...), all freed by reference
counting when it ends, so at a few dozen requests in flight the count stays under 700
and the collector never runs. At a thousand (a loop pass reads a request on hundreds of
connections before any is answered) it passes 700 several times a pass: each collection
walks every request in flight and finds nothing to free, and moves them to the older
generations, whose collections then walk every connection too. Counted under cachegrind
at a thousand connections (``instructions.py --connections 1000 --cache 1048576``), that
was a tenth of the instructions of an ASGI request and half its misses of a 1 MiB cache
(a twentieth and a quarter for WSGI). ``ASYNCWORKER_GC_THRESHOLD`` (50,000 by default:
about two thousand requests in flight) raises the first threshold so the collector runs
on garbage that piles up, not on work in progress; an app that set thresholds of its own
(or turned the collector off) keeps them, and so do thresholds set in gunicorn's config
file. The cost: garbage in reference cycles waits longer to be freed, and a collection,
when one comes, walks up to that many objects (a few milliseconds).
"""

import ctypes
import ctypes.util
import gc

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 4 * 1024 * 1024


def retain_freed_heap(retain: int) -> bool:
    """Keep up to ``retain`` freed bytes per heap; False where there is no glibc mallopt."""
    if retain <= 0:
        return False
    mallopt = _mallopt()
    if mallopt is None:
        return False
    mmap_threshold = min(retain // 4, MMAP_THRESHOLD_MAX)
    return bool(mallopt(M_TRIM_THRESHOLD, retain)) and bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold))


def freeze_startup_objects(freeze: bool) -> bool:
    """Collect, then leave what exists now out of every later collection."""
    if not freeze:
        return False
    gc.collect()
    gc.freeze()
    return True


INTERPRETER_THRESHOLDS = gc.get_threshold()  # (imported with the worker class, before the app)
PYTHON_YOUNG_THRESHOLDS = (700, 2000)  # CPython's own: 3.0 to 3.13, 3.14


def raise_young_threshold(young: int) -> bool:
    """Collect the youngest generation after ``young`` net new objects instead of 700;
    not when ``young`` is 0 or lower than now, nor when the app or gunicorn's config file
    changed the collector's settings (its thresholds, or turned it off)."""
    thresholds = gc.get_threshold()
    if (young <= thresholds[0] or not gc.isenabled() or thresholds != INTERPRETER_THRESHOLDS
            or thresholds[0] not in PYTHON_YOUNG_THRESHOLDS):
        return False
    gc.set_threshold(young, *thresholds[1:])
    return True


def _mallopt():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        if not hasattr(libc, "gnu_get_libc_version"):  # (musl has no tunable heap of this kind)
            return None
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt
