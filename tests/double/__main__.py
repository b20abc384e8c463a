"""``python -m tests.double [--latency S] [--file-delay S] PROJECT...``: serve the XNAT double
until killed, its address on the first line (benchmarks)."""

from tests.double.server import _serve

_serve()
