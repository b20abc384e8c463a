"""Processes started for one job (``xnatpic convert``, a step's container) load lean:
numpy without a BLAS thread team, pydicom without what they never use.

numpy's OpenBLAS starts a thread per core when numpy is imported (about 60 ms of a
small study's conversion on two cores); a conversion's only linear algebra is on 3 x 3
geometry, which OpenBLAS never splits between threads, so :func:`numpy_single_threaded`
asks for one thread (``OPENBLAS_NUM_THREADS``, unless the user set it) before numpy
loads.

A conversion allocates enough (parameter files, per-frame values) for the cyclic garbage
collector to run often, and its passes over the oldest generation walk every object the
imports made (modules, functions, pydicom's dictionaries) though none of them will be
freed before the process ends: :func:`freeze_imports` moves them out of the collector's
passes (``gc.freeze``), about a tenth of a small study's conversion.

Importing pydicom loads, besides the DICOM dictionaries and codecs a conversion needs:

* the optional packages of :data:`HIDDEN` (``requests``/``tqdm`` for downloading
  pydicom's test files, PIL for ICC profiles and palettes, ``jpeg_ls`` for the deprecated
  JPEG-LS handler), which pydicom takes as missing when they are hidden;
* ``pydicom.data`` (and with it ``urllib.request``, ``http.client``, ``ssl``, ``email``)
  and ``pydicom.examples`` (which searches pydicom's test-file folder 13 times), used
  only when a test file or palette is asked for: :data:`DEFERRED` stand in for them
  while pydicom loads and import the real module on first use.

Together that is about a third of pydicom's import, the largest part of converting a
small study. A step (:func:`lean_step_start`) reads DICOM it did not write, which may be
compressed: it keeps PIL and ``jpeg_ls`` (pydicom's image decoders) and hides only
:data:`STEP_HIDDEN`. All of it only for a process started for the command: nothing is changed or
frozen when numpy or pydicom is loaded already, nothing is hidden once pydicom is
loaded, and a pydicom that needs more of the deferred modules while it loads is loaded
again the ordinary way.

A map step's arithmetic makes and frees temporaries of a few MiB (a map's voxels times
its samples) hundreds of times. glibc's malloc gives each such block its own ``mmap``
and returns it to the kernel when freed, so every temporary is faulted in page by page
again: half of a T1 fit's page faults on real data (32,000 -> 16,000).
:func:`reuse_freed_memory` tells malloc to keep freed blocks for reuse (``mallopt``), in
a process started by :func:`lean_step_start` only (the steps and ``xnatpic upload``); the
peak memory stays about that of the largest set of live arrays (2-6 % more measured).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["BLAS_THREADS", "DEFERRED", "HIDDEN", "STEP_HIDDEN", "freeze_imports",
           "fresh_process", "import_pydicom_lean", "lean_step_start",
           "numpy_single_threaded", "reuse_freed_memory"]

#: The environment variable OpenBLAS reads its thread count from when numpy loads.
BLAS_THREADS = "OPENBLAS_NUM_THREADS"

#: Optional packages hidden from pydicom while it loads.
HIDDEN = ("requests", "tqdm", "PIL", "jpeg_ls")
#: Hidden from pydicom in a step: the download packages only (a step may have to decode
#: compressed images of another scanner with PIL or jpeg_ls).
STEP_HIDDEN = ("requests", "tqdm")
#: pydicom modules deferred while it loads -> the functions pydicom takes from them then.
DEFERRED: dict[str, frozenset[str]] = {
    "pydicom.data": frozenset({"get_palette_files"}),
    "pydicom.examples": frozenset(),
}


#: glibc ``mallopt`` parameters (malloc.h) and the values a step sets: blocks up to
#: 256 MiB from the heap rather than their own mapping, the heap's free top kept up to
#: 512 MiB instead of being returned to the kernel after every free.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_STEP_MALLOC = ((_M_MMAP_THRESHOLD, 256 << 20), (_M_TRIM_THRESHOLD, 512 << 20))


class _Deferred(types.ModuleType):
    """Stands in for a module while pydicom loads: each function listed in
    :data:`DEFERRED` imports the real module when called; anything else is missing."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in DEFERRED[self.__name__]:
            raise AttributeError(f"{self.__name__}.{name} is deferred by xnatpic.lean_start")
        module = self.__name__

        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(importlib.import_module(module), name)(*args, **kwargs)

        return call


def fresh_process() -> bool:
    """True while numpy is not loaded yet: a process started for one command or step, whose
    start :mod:`xnatpic.lean_start` may still shape."""
    return "numpy" not in sys.modules


def numpy_single_threaded() -> bool:
    """One OpenBLAS thread for this process (and the workers it forks), set before numpy
    loads; left alone when numpy is loaded already or the user chose a count.

    Returns
    -------
    bool
        True when numpy was not loaded yet: a process started for this command.
    """
    if not fresh_process():
        return False
    os.environ.setdefault(BLAS_THREADS, "1")
    return True


def freeze_imports() -> None:
    """Keep every object made so far out of the garbage collector's passes.

    For a process started for the command only (see :func:`numpy_single_threaded`): in a
    longer-lived one, garbage made before would never be collected.
    """
    gc.freeze()


def reuse_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks for reuse instead of unmapping them.

    Returns
    -------
    bool
        True when the C library is glibc and took every setting; False elsewhere (musl,
        macOS), where nothing is changed.
    """
    import ctypes  # here: the conversion's lean start does not need it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # no mallopt: not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _STEP_MALLOC)


def import_pydicom_lean(hide: tuple[str, ...] = HIDDEN) -> None:
    """Import pydicom without the packages ``hide`` and with :data:`DEFERRED` deferred."""
    if "pydicom" in sys.modules:
        return
    hidden = [name for name in hide if name not in sys.modules]
    stand_ins = {name: _Deferred(name) for name in DEFERRED}
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("pydicom")
    except ImportError:  # a pydicom needing more at load time: the ordinary import
        for name in [m for m in sys.modules if m == "pydicom" or m.startswith("pydicom.")]:
            del sys.modules[name]
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    importlib.import_module("pydicom")  # loaded above, or now in full


def lean_step_start() -> bool:
    """Start a step's process lean: one BLAS thread, pydicom without :data:`STEP_HIDDEN`,
    freed memory reused (:func:`reuse_freed_memory`).

    Called by ``pipelines/<step>/run.py`` before it imports the step; the step calls
    :func:`freeze_imports` once its imports are done when this returned True.

    Returns
    -------
    bool
        True when numpy was not loaded yet (a process started for the step).
    """
    fresh = numpy_single_threaded()
    if fresh:
        reuse_freed_memory()
        import_pydicom_lean(STEP_HIDDEN)
    return fresh
