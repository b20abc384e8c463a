"""``xnatpic convert`` loads pydicom lean (xnatpic.cli.convert_imports): without its
optional download and image packages, with pydicom.data and pydicom.examples deferred.
Each case runs in a fresh interpreter, where ``sys.modules`` shows what was imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ..paravision.builders import write_study

_PROBE = """
import sys
{setup}
from xnatpic.cli.main import main
code = main(sys.argv[1:])
loaded = sorted(m for m in ("requests", "PIL", "pydicom.data", "pydicom.examples",
                            "urllib.request") if m in sys.modules)
import requests, PIL.Image, pydicom.examples
import pydicom.pixels.processing as processing
palette = processing.get_palette_files("hotiron.dcm")  # the deferred function, real
print("RESULT", code, loaded, processing.HAVE_PIL, pydicom.examples.get_path("ct").name,
      [p.rpartition("/")[2] for p in palette])
"""


def _convert(study, out, setup: str = "") -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(setup=setup), "convert",
                           str(study), "-o", str(out)],
                          capture_output=True, text=True, check=True)
    return proc.stdout.rpartition("RESULT ")[2].strip().split(maxsplit=1)


@pytest.fixture
def study(tmp_path):
    pytest.importorskip("requests")
    pytest.importorskip("PIL")
    return write_study(tmp_path / "study", {"1": {}})


def test_convert_loads_pydicom_lean_and_the_rest_stays_usable(study, tmp_path):
    code, rest = _convert(study, tmp_path / "out")
    assert code == "0"
    # nothing of the hidden or deferred was loaded by the conversion; afterwards all of it
    # imports and works (PIL is missing for pydicom's ICC-profile helpers only)
    assert rest == "[] False CT_small.dcm ['hotiron.dcm']"


def test_a_pydicom_needing_more_while_loading_is_loaded_in_full(study, tmp_path):
    # pydicom taking another name from pydicom.data while it loads: the lean import gives
    # up and pydicom is imported the ordinary way (download and image packages included)
    setup = ("from xnatpic.cli import convert_imports\n"
             "convert_imports.DEFERRED['pydicom.data'] = frozenset()")
    code, rest = _convert(study, tmp_path / "out", setup)
    assert code == "0"
    assert rest == ("['PIL', 'pydicom.data', 'pydicom.examples', 'requests', "
                    "'urllib.request'] True CT_small.dcm ['hotiron.dcm']")
