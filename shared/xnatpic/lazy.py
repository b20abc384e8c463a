"""Package exports imported on first use (PEP 562).

A package's ``__init__`` that imports every submodule makes each of them pay for all:
importing :mod:`xnatpic.dicom.private` used to import the whole ParaVision → DICOM
converter, and a map step paid for it at every start. A package lists its exports
instead and lets :func:`lazy_exports` import the module of a name when it is first read.

Examples
--------
>>> getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math", "dumps": "json"})
>>> getattr_("sqrt")(9.0)
3.0
>>> sorted(dir_())
['dumps', 'sqrt']
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package``.

    Parameters
    ----------
    package : str
        The package's ``__name__``; a name read once is stored in its namespace, so the
        next read costs nothing.
    exports : mapping
        Exported name -> the module defining it.

    Returns
    -------
    (__getattr__, __dir__)
        Assign them at the package's top level.
    """

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace = sys.modules.get(package)
        if namespace is not None:
            setattr(namespace, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
