"""Run every benchmark module (``benchmarks/bench_*.py``) in name order.

Each module defines ``main() -> None`` that prints its figures and the ratio against a
baseline measured in the same run. ``python -m benchmarks NAME...`` runs only those.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks


def _modules(selected: list[str]) -> list[str]:
    found = pkgutil.iter_modules(benchmarks.__path__)
    names = sorted(m.name for m in found if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    return names


def main(argv: list[str]) -> int:
    for name in _modules(argv):
        print(f"\n=== {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
