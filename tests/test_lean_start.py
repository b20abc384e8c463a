"""``xnatpic convert`` and the steps load lean (xnatpic.lean_start): numpy with one BLAS
thread, pydicom without its optional download and image packages and with pydicom.data
and pydicom.examples deferred. Each case runs in a fresh interpreter, where
``sys.modules`` shows what was imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.oracles import require_module
from tests.paravision.builders import write_study

_PROBE = """
import os, sys
{setup}
from xnatpic.cli.main import main
code = main(sys.argv[1:])
import gc
blas = os.environ.get("OPENBLAS_NUM_THREADS")
frozen = gc.get_freeze_count() > 0
loaded = sorted(m for m in ("requests", "PIL", "pydicom.data", "pydicom.examples",
                            "urllib.request") if m in sys.modules)
import requests, PIL.Image, pydicom.examples
import pydicom.pixels.processing as processing
palette = processing.get_palette_files("hotiron.dcm")  # the deferred function, real
print("RESULT", code, blas, frozen, loaded, processing.HAVE_PIL,
      pydicom.examples.get_path("ct").name, [p.rpartition("/")[2] for p in palette])
"""


def _convert(study, out, setup: str = "", **env: str) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(setup=setup), "convert",
                           str(study), "-o", str(out)],
                          capture_output=True, text=True, check=True, env=environ | env)
    return proc.stdout.rpartition("RESULT ")[2].strip().split(maxsplit=3)


@pytest.fixture
def study(tmp_path):
    require_module("requests", "the lean start hides it while pydicom loads")
    require_module("PIL", "the lean start hides it from the converter's pydicom")
    return write_study(tmp_path / "study", {"1": {}})


def test_convert_loads_pydicom_lean_and_the_rest_stays_usable(study, tmp_path):
    code, blas, frozen, rest = _convert(study, tmp_path / "out")
    # one OpenBLAS thread asked for before numpy loads; the imports kept out of the
    # garbage collector's passes
    assert (code, blas, frozen) == ("0", "1", "True")
    # nothing of the hidden or deferred was loaded by the conversion; afterwards all of it
    # imports and works (PIL is missing for pydicom's ICC-profile helpers only)
    assert rest == "[] False CT_small.dcm ['hotiron.dcm']"


def test_a_pydicom_needing_more_while_loading_is_loaded_in_full(study, tmp_path):
    # pydicom taking another name from pydicom.data while it loads: the lean import gives
    # up and pydicom is imported the ordinary way (download and image packages included)
    setup = ("from xnatpic import lean_start\n"
             "lean_start.DEFERRED['pydicom.data'] = frozenset()")
    code, _, _, rest = _convert(study, tmp_path / "out", setup)
    assert code == "0"
    assert rest == ("['PIL', 'pydicom.data', 'pydicom.examples', 'requests', "
                    "'urllib.request'] True CT_small.dcm ['hotiron.dcm']")


def test_a_blas_thread_count_set_by_the_user_is_kept(study, tmp_path):
    code, blas, _, _ = _convert(study, tmp_path / "out", OPENBLAS_NUM_THREADS="2")
    assert (code, blas) == ("0", "2")


def test_a_process_with_numpy_loaded_is_left_alone(study, tmp_path):
    # a process that loaded numpy before (a test calling main()): the thread count could
    # no longer apply to it, only leak to its children, and frozen garbage of its
    # earlier work would never be collected
    code, blas, frozen, _ = _convert(study, tmp_path / "out", "import numpy")
    assert (code, blas, frozen) == ("0", "None", "False")


_STEP_PROBE = """
import os, runpy, sys
sys.argv = [sys.argv[1], *sys.argv[2:]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
import gc
loaded = sorted(m for m in ("requests", "pydicom.data") if m in sys.modules)
import pydicom.uid
import pydicom.pixels.decoders.pillow as pillow  # the image decoders stay available
print("RESULT", code, os.environ.get("OPENBLAS_NUM_THREADS"), gc.get_freeze_count() > 0,
      loaded, pillow.is_available(pydicom.uid.JPEGBaseline8Bit))
"""


def test_a_step_loads_lean_but_keeps_pydicoms_image_decoders(tmp_path):
    """A map step started as its container starts it: pydicom without requests and its
    test-data module, numpy with one BLAS thread, and PIL still decoding JPEG input."""
    require_module("PIL", "a step keeps pydicom's PIL decoder")
    from tests.analysis.conftest import make_session
    from xnatpic.cli.main import main as xnatpic_main

    study = tmp_path / "phantom"
    assert xnatpic_main(["phantom", str(study), "--seed", "0"]) == 0
    dicom = tmp_path / "dicom"
    assert xnatpic_main(["convert", str(study), "-o", str(dicom), "--scans", "2"]) == 0
    (series,) = [p for p in dicom.glob("*/*/*") if p.is_dir()]
    session = make_session(tmp_path / "archive", {"2": series})
    run = Path(__file__).resolve().parents[1] / "pipelines" / "t2map" / "run.py"
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", _STEP_PROBE, str(run), "--input",
                           str(session), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, env=environ)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = proc.stdout.rpartition("RESULT ")[2].strip()
    assert result == "0 1 True [] True"
    assert any((tmp_path / "out" / "maps").rglob("*.nii.gz"))



_HEAP = """
import ctypes, sys
{setup}
import numpy as np

class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2 (malloc.h), all size_t
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
temporary = np.ones(5 << 20)  # 40 MiB, as a step's temporaries on a large map
mapped = mallinfo2().hblkhd  # bytes in blocks with a mapping of their own
del temporary
kept = mallinfo2().fordblks  # freed bytes the heap keeps for reuse
print("RESULT", mapped >> 20, kept >> 20)
"""


def _heap_mib(setup: str) -> tuple[int, int]:
    proc = subprocess.run([sys.executable, "-c", _HEAP.format(setup=setup)],
                          capture_output=True, text=True, check=True)
    mapped, kept = proc.stdout.rpartition("RESULT ")[2].split()
    return int(mapped), int(kept)


def test_a_steps_temporaries_reuse_freed_memory_instead_of_mapping_it_again():
    # by default glibc gives a 40 MiB block a mapping of its own and unmaps it when
    # freed (the next temporary is faulted in page by page again); after a step's lean
    # start it comes from the heap, which keeps it when freed
    plain_mapped, plain_kept = _heap_mib("")
    lean_mapped, lean_kept = _heap_mib("from xnatpic.lean_start import lean_step_start\n"
                                       "assert lean_step_start()")
    assert plain_mapped >= 40 and plain_kept < 40
    assert lean_mapped < 40 <= lean_kept


_COMMAND = """
import os, sys
from xnatpic.cli.main import main
code = main(sys.argv[1:])
print("RESULT", code, os.environ.get("OPENBLAS_NUM_THREADS"))
"""


@pytest.mark.parametrize("command", ["info", "phantom"])
def test_every_command_runs_numpy_with_one_blas_thread(command, study, tmp_path):
    # set once by the command line before the subcommand's module loads (cli.main)
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    target = study if command == "info" else tmp_path / "phantom"
    proc = subprocess.run([sys.executable, "-c", _COMMAND, command, str(target)],
                          capture_output=True, text=True, check=True, env=environ)
    assert proc.stdout.rpartition("RESULT ")[2].split() == ["0", "1"], proc.stderr[-2000:]
