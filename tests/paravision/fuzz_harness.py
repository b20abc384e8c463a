"""Coverage-guided fuzzing of the JCAMP parser, visu_pars resolution and the 2dseq reader.

One input is the text of a visu_pars file, then (after the first ``##END=`` line) the
bytes of its 2dseq. Each input is parsed, checked and, when it parses, written as scan 1
of a one-scan study whose reco is planned, loaded and read frame by frame. Only
:class:`~xnatpic.errors.XnatpicError` may escape; anything else (ZeroDivisionError,
OverflowError, MemoryError...) is a crash that atheris saves under
``tests/fuzz_corpus/crashes/``, and tests/paravision/test_fuzz_regressions.py replays
every saved crash.

Run with ``make fuzz`` (``FUZZ_SECONDS=300`` by default), or directly::

    .venv/bin/python tests/paravision/fuzz_harness.py -max_total_time=60 \\
        -artifact_prefix=tests/fuzz_corpus/crashes/ tests/fuzz_corpus/work tests/fuzz_corpus/seeds
"""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path

SEPARATOR = b"\n##END=\n"
#: Memory a single input may use (the limits must hold well under it).
ADDRESS_SPACE_LIMIT = 2 * 1024 ** 3

_WORK: list[Path] = []


def _write_study(visu: bytes, data: bytes) -> Path:
    if not _WORK:  # one folder per process, reused by every input
        _WORK.append(Path(tempfile.mkdtemp(prefix="xnatpic-fuzz-")))
    study = _WORK[0] / "study"
    reco = study / "1" / "pdata" / "1"
    reco.mkdir(parents=True, exist_ok=True)
    (study / "subject").write_bytes(b"##$SUBJECT_id=<fuzz>\n##END=\n")
    (study / "1" / "acqp").write_bytes(b"##$ACQ_method=<Bruker:MSME>\n##END=\n")
    (reco / "visu_pars").write_bytes(visu + SEPARATOR)
    (reco / "2dseq").write_bytes(data)
    return study


def check_one(payload: bytes) -> None:
    """Run one input through the parser, the checks and the reader.

    Raises
    ------
    Exception
        Anything but :class:`~xnatpic.errors.XnatpicError` (those are expected).
    """
    from xnatpic.errors import XnatpicError
    from xnatpic.paravision.dataset import open_dataset
    from xnatpic.paravision.framegroups import frame_layout
    from xnatpic.paravision.jcamp import parse_jcamp
    from xnatpic.paravision.limits import decode_jcamp
    from xnatpic.paravision.series import load_series
    from xnatpic.paravision.validate import check_visu_pars

    visu, _, data = payload.partition(SEPARATOR)
    try:
        params = parse_jcamp(decode_jcamp(visu), path="visu_pars")
        check_visu_pars(params)
        count = params.get("VisuCoreFrameCount", 1)
        frame_layout(params, count if isinstance(count, int) else 1)
    except XnatpicError:
        return
    study_path = _write_study(visu, data)
    try:
        with open_dataset(study_path) as study:
            for scan in study.scans:
                for reco in scan.recos:
                    series = load_series(reco)
                    for index in range(min(series.stack.frame_count, 4)):
                        series.stack.frame(index)
                    _ = [image.position for image in series.images[:4]]
    except XnatpicError:
        return


def main() -> None:
    import atheris

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    with atheris.instrument_imports(include=["xnatpic"]):
        import xnatpic.paravision.dataset
        import xnatpic.paravision.framegroups
        import xnatpic.paravision.jcamp
        import xnatpic.paravision.series
        import xnatpic.paravision.validate  # noqa: F401
    atheris.Setup(sys.argv, check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
