"""The command line of the map steps (``pipelines/<step>/run.py`` call :func:`main`).

::

    run.py --input /input --output /output [--scan ID] [--threshold F] [step options]

``--input`` is the session in archive layout (``SCANS/<id>/<resource>/*.dcm``); the maps
go to ``OUTPUT/maps/<run-key>/`` (``<method>-scan<id>``, see
:mod:`xnatpic.analysis.outputs`). Exit 0 on success; 3
(:data:`~xnatpic.step_output.NOT_APPLICABLE_EXIT`) when no scan of the session fits the
step, with ``<step>: not applicable: ...`` as the last stderr line; 1 with
the reason as the last stderr line (and nothing left in ``OUTPUT/maps``) otherwise; an
``--output`` the step cannot write fails first, with that one line only.

Exit 4 (:data:`EXIT_NOT_ENOUGH_SIGNAL`) when the noise gate finds that the data cannot
support the map (:func:`xnatpic.analysis.mask.signal_mask`): the last stderr line is
``<step>: not enough signal: <figures>``, and ``OUTPUT/maps`` keeps the report, the
statistics (status fractions, no headline number), the mask and the status maps. XNAT
marks any non-zero exit Failed and uploads no output then (container-service
services/impl/ContainerServiceImpl.java:1288 and :2204 exitCodeIsFailed;
ContainerFinalizeServiceImpl.java:253-260, outputs only when processing completed), so
on XNAT the reason is in the step's stderr log.

A run whose primary map is valid in fewer than half of the mask voxels
(:data:`xnatpic.analysis.outputs.VALID_FRACTION_MIN`) exits 0 with its outputs, outcome
``mostly failed`` in stats.json and the report, and ``<step>: warning: mostly failed:
<figures>`` as the last stderr line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from xnatpic.analysis.errors import AnalysisError, NoScanError, NoSuitableScanError
from xnatpic.analysis.inputs import AnalysisSeries, read_series, with_saturation_offsets
from xnatpic.analysis.inversion import IR_MODELS
from xnatpic.analysis.maps import (
    RATIO_PPM,
    StepResult,
    compute_adc,
    compute_cest,
    compute_t1,
    compute_t2,
    compute_t2star,
)
from xnatpic.analysis.mask import SNR_FLOOR
from xnatpic.analysis.outputs import MOSTLY_FAILED, write_outputs
from xnatpic.analysis.perfusion import (
    BLOOD_T1_MS,
    PARTITION_ML_PER_G,
    compute_perfusion,
    fair_scan_pair,
    merge_fair,
)
from xnatpic.analysis.selection import ScanInfo, scan_folder, select_scan, session_scans
from xnatpic.errors import XnatpicError
from xnatpic.step_output import (
    NOT_APPLICABLE_EXIT,
    NOT_APPLICABLE_MARK,
    NOT_ENOUGH_SIGNAL_EXIT,
    NOT_ENOUGH_SIGNAL_MARK,
    OutputNotWritableError,
    check_output_writable,
)

__all__ = ["EXIT_NOT_ENOUGH_SIGNAL", "STEPS", "build_parser", "execute", "main", "run_step"]

#: Exit status of a step whose data cannot support the map ("not enough signal").
EXIT_NOT_ENOUGH_SIGNAL = NOT_ENOUGH_SIGNAL_EXIT

_log = logging.getLogger("xnatpic.analysis")

#: Folder under --output holding the maps (the command's output path).
OUTPUT_FOLDER = "maps"


def _float_list(text: str) -> tuple[float, ...]:
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") \
            from exc


#: Options whose value is a comma-separated list that may start with a minus sign.
_NUMBER_LIST_OPTIONS = ("--offsets-ppm", "--mtr-ppm", "--ratio-ppm")


def _attach_number_lists(argv: list[str]) -> list[str]:
    """``--offsets-ppm -100,-10`` as ``--offsets-ppm=-100,-10``: the Container Service
    writes flag and value as two words, and argparse takes a word starting with ``-``
    (that is not a single negative number) for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _NUMBER_LIST_OPTIONS and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and not argv[i + 1].startswith("--"):
            out.append(f"{word}={argv[i + 1]}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


def _add_decay(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=("nlls", "loglinear", "arlo", "epg"), default="nlls",
                   help="fit: mono-exponential non-linear least squares (default), "
                        "log-linear or ARLO; epg (T2 only): stimulated-echo EPG model "
                        "with the refocusing angle fitted")
    p.add_argument("--offset", action="store_true", help="fit a constant offset too")
    p.add_argument("--drop-first-echo", action="store_true",
                   help="ignore the first echo (stimulated echoes)")


def _add_t1(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=("auto", "vtr", "ir"), default="auto",
                   help="variable TR, inversion recovery, or from the scan (auto)")
    p.add_argument("--echo-train-ms", type=float, default=-1.0,
                   help="VTR: readout train (excitation to last echo) subtracted from TR, "
                        "the recovery time of RARE-VTR (default -1: RARE factor x echo "
                        "spacing from the acquisition; 0: nominal TR)")
    _add_ir_model(p)


def _add_ir_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ir-model", choices=tuple(IR_MODELS), default="auto",
                   help="inversion-recovery model: timed (per-frame TI, TR and readout; "
                        "inversion factor fixed), timed-free (inversion factor fitted, "
                        ">= 4 TIs), three / two (TR >> T1 assumed), or auto (timed-free "
                        "with >= 4 TIs, timed with 3; three/two without TR)")
    p.add_argument("--inversion-factor", type=float, default=1.0,
                   help="inversion factor of the timed model (1: perfect inversion)")


def _add_perfusion(p: argparse.ArgumentParser) -> None:
    _add_ir_model(p)
    p.add_argument("--blood-t1", type=float, default=BLOOD_T1_MS,
                   help=f"arterial blood T1 in ms (default {BLOOD_T1_MS:g}, about 7 T)")
    p.add_argument("--partition", type=float, default=PARTITION_ML_PER_G,
                   help="blood-tissue partition coefficient of water, mL/g "
                        f"(default {PARTITION_ML_PER_G:g})")


def _add_adc(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=("loglinear", "nlls"), default="loglinear")
    p.add_argument("--dti", choices=("auto", "yes", "no"), default="auto",
                   help="fit the tensor (auto: with >= 6 directions)")


def _add_cest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wassr-scan", default="",
                   help="WASSR scan id for B0 (blank: found automatically; none: use the "
                        "Z-spectrum minimum)")
    p.add_argument("--mtr-ppm", type=_float_list, default=(2.0, 3.5),
                   help="MTRasym offsets in ppm, comma-separated (default 2.0,3.5)")
    p.add_argument("--ratio-ppm", type=_float_list, default=RATIO_PPM,
                   help="two offsets of the ratiometric index (default 4.2,5.5: iopamidol; "
                        "none: skip)")
    p.add_argument("--b0-method", choices=("auto", "lorentzian", "parabola", "spline"),
                   default="auto",
                   help="refinement of the water minimum (auto: Lorentzian for WASSR, "
                        "parabola for the Z-spectrum; spline: cubic-spline minimum)")
    p.add_argument("--offsets-ppm", type=_float_list, default=(),
                   help="saturation offsets in ppm, comma-separated in acquisition order "
                        "(one repetition of the list or one per measurement), for DICOM "
                        "that has none (not written by xnatpic); needs the scan input "
                        "(--scan; --param scan=ID with xnatpic launch)")


@contextlib.contextmanager
def _scan(info: ScanInfo) -> Iterator[None]:
    """Prefix the errors raised while reading or fitting ``info`` with its scan id."""
    try:
        yield
    except AnalysisError as exc:
        raise type(exc)(f"scan {info.scan_id}: {exc}") from exc


def _t2(args: argparse.Namespace, session: Path) -> tuple[StepResult, dict[str, str]]:
    return _decay(args, session, "t2map", compute_t2)


def _t2star(args: argparse.Namespace, session: Path) -> tuple[StepResult, dict[str, str]]:
    return _decay(args, session, "t2starmap", compute_t2star)


def _decay(args: argparse.Namespace, session: Path, step: str,
           compute: Callable[..., StepResult]) -> tuple[StepResult, dict[str, str]]:
    info = select_scan(session, step, scan_id=args.scan or None)
    _log.info("%s: scan %s, %s", step, info.scan_id, info.detail)
    with _scan(info):
        series = read_series(info.folder)
        result = compute(series, method=args.method, threshold=args.threshold,
                         snr_floor=args.snr_floor,
                         offset=args.offset, drop_first_echo=args.drop_first_echo)
    return result, {"source": info.scan_id}


def _t1(args: argparse.Namespace, session: Path) -> tuple[StepResult, dict[str, str]]:
    kinds = {"auto": ("vtr", "ir", "fair"), "ir": ("ir", "fair")}.get(args.method,
                                                                     (args.method,))
    info = select_scan(session, "t1map", scan_id=args.scan or None, kinds=kinds)
    _log.info("t1map: scan %s, %s (%s)", info.scan_id, info.detail, info.kind)
    with _scan(info):
        result = compute_t1(read_series(info.folder),
                            method="ir" if info.kind == "fair" else info.kind,
                            threshold=args.threshold, ir_model=args.ir_model,
                            inversion_factor=args.inversion_factor,
                            snr_floor=args.snr_floor,
                            echo_train_ms=None if args.echo_train_ms < 0
                            else args.echo_train_ms)
    return result, {"source": info.scan_id}


def _perfusion(args: argparse.Namespace, session: Path) -> tuple[StepResult, dict[str, str]]:
    try:
        info = select_scan(session, "perfusion", scan_id=args.scan or None)
    except NoSuitableScanError:
        pair = None if args.scan else fair_scan_pair(session)
        if pair is None:
            raise
        selective, nonselective = pair
        _log.info("perfusion: selective scan %s, non-selective scan %s", selective.scan_id,
                  nonselective.scan_id)
        with _scan(selective):
            sel_series = read_series(selective.folder)
        with _scan(nonselective):
            series = merge_fair(sel_series, read_series(nonselective.folder))
        scans = {"selective": selective.scan_id, "nonselective": nonselective.scan_id}
        named = selective
    else:
        _log.info("perfusion: scan %s, %s", info.scan_id, info.detail)
        with _scan(info):
            series = read_series(info.folder)
        scans, named = {"source": info.scan_id}, info
    with _scan(named):
        result = compute_perfusion(series, threshold=args.threshold, ir_model=args.ir_model,
                                   inversion_factor=args.inversion_factor,
                                   blood_t1=args.blood_t1, partition=args.partition,
                                   snr_floor=args.snr_floor)
    return result, scans


def _adc(args: argparse.Namespace, session: Path) -> tuple[StepResult, dict[str, str]]:
    info = select_scan(session, "adcmap", scan_id=args.scan or None)
    _log.info("adcmap: scan %s, %s", info.scan_id, info.detail)
    with _scan(info):
        result = compute_adc(read_series(info.folder), method=args.method,
                             threshold=args.threshold, dti=args.dti,
                             snr_floor=args.snr_floor)
    return result, {"source": info.scan_id}


def _wassr(args: argparse.Namespace, session: Path, cest: ScanInfo) -> ScanInfo | None:
    choice = (args.wassr_scan or "").strip()
    if choice.lower() == "none":
        return None
    if choice:
        return select_scan(session, "cest", scan_id=choice, kinds=("wassr",))
    found = [s for s in session_scans(session) if s.kind == "wassr"]
    if not found:
        _log.info("cest: no WASSR scan; B0 from the Z-spectrum minimum")
        return None
    return found[-1]


def _cest_scan(args: argparse.Namespace, session: Path) -> tuple[ScanInfo, AnalysisSeries]:
    """The CEST scan and its series; with --offsets-ppm the named scan, whatever its
    attributes say, with those offsets."""
    offsets = tuple(args.offsets_ppm)
    if not offsets:
        info = select_scan(session, "cest", scan_id=args.scan or None)
        with _scan(info):
            return info, read_series(info.folder)
    if not args.scan:
        raise NoScanError("--offsets-ppm gives the offsets of one scan: name it with the scan "
                          "input (--scan ID; --param scan=ID with xnatpic launch)")
    folder = scan_folder(session, args.scan)
    info = ScanInfo(str(args.scan), folder, "cest", 0,
                    f"{len(offsets)} saturation offsets from --offsets-ppm")
    with _scan(info):
        return info, with_saturation_offsets(read_series(folder), offsets)


def _cest(args: argparse.Namespace, session: Path) -> tuple[StepResult, dict[str, str]]:
    info, series = _cest_scan(args, session)
    _log.info("cest: scan %s, %s", info.scan_id, info.detail)
    wassr_info = _wassr(args, session, info)
    wassr = None
    scans = {"cest": info.scan_id}
    if wassr_info is not None:
        with _scan(wassr_info):
            wassr = read_series(wassr_info.folder)
        if wassr.data.shape[:3] != series.data.shape[:3]:
            if args.wassr_scan:
                raise NoScanError(f"WASSR scan {wassr_info.scan_id} has grid "
                                  f"{wassr.data.shape[:3]}, CEST scan {info.scan_id} "
                                  f"{series.data.shape[:3]}; they must match")
            _log.warning("cest: WASSR scan %s is on another grid; B0 from the Z-spectrum",
                         wassr_info.scan_id)
            wassr = None
        else:
            scans["wassr"] = wassr_info.scan_id
            _log.info("cest: B0 from WASSR scan %s", wassr_info.scan_id)
    ratio = tuple(args.ratio_ppm) or None
    if ratio is not None and len(ratio) != 2:
        raise NoScanError(f"--ratio-ppm needs two offsets, got {list(ratio)}")
    with _scan(info):
        result = compute_cest(series, wassr=wassr, mtr_ppm=tuple(args.mtr_ppm),
                              ratio_ppm=ratio, threshold=args.threshold,
                              b0_method=args.b0_method, snr_floor=args.snr_floor)
    return result, scans


#: step -> (description, option adder, runner).
STEPS: dict[str, tuple[str, Callable[..., None], Callable[..., Any]]] = {
    "t2map": ("T2 map from a multi-echo spin-echo (MSME) scan", _add_decay, _t2),
    "t2starmap": ("T2* map from a multi-gradient-echo (MGE) scan", _add_decay, _t2star),
    "t1map": ("T1 map from a variable-TR or inversion-recovery scan", _add_t1, _t1),
    "adcmap": ("ADC map, and DTI FA/MD/AD/RD/V1 with >= 6 directions", _add_adc, _adc),
    "cest": ("CEST: Z-spectrum, B0, MTRasym and a ratiometric index", _add_cest, _cest),
    "perfusion": ("perfusion (CBF) map from a FAIR series (selective and non-selective "
                  "inversions)", _add_perfusion, _perfusion),
}


def build_parser(step: str) -> argparse.ArgumentParser:
    """The argument parser of ``step``."""
    description, add_options, _ = STEPS[step]
    p = argparse.ArgumentParser(prog=step, description=description)
    p.add_argument("--input", type=Path, default=Path("/input"),
                   help="the session (archive layout: SCANS/<id>/<resource>/)")
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--scan", default="", help="scan id (blank: chosen from DICOM attributes)")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="mask threshold as a fraction of the 99th percentile signal "
                        "(0: Otsu)")
    p.add_argument("--snr-floor", type=float, default=SNR_FLOOR,
                   help="voxels below this SNR are 'no signal'; fewer than half of the mask "
                        f"above it ends 'not enough signal', exit 4 (default {SNR_FLOOR:g}; "
                        "0: no gate)")
    p.add_argument("-v", "--verbose", action="store_true")
    add_options(p)
    return p


def run_step(step: str, args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    """Select, read, fit and write; return the statistics summary.

    Raises
    ------
    XnatpicError
        With a message naming the scan and the problem.
    """
    _, _, runner = STEPS[step]
    if args.threshold is not None and not 0 <= args.threshold < 1:
        raise NoScanError(f"--threshold must be in [0, 1), got {args.threshold}")
    session = args.input
    if not (session / "SCANS").is_dir():
        raise NoScanError(f"{session}: no SCANS folder; mount the session (archive layout "
                          "SCANS/<id>/<resource>/) at the input")
    result, scans = runner(args, session)
    return write_outputs(result, args.output / OUTPUT_FOLDER, scans=scans, argv=argv,
                         input_root=args.input, output_root=args.output)


def execute(step: str, args: argparse.Namespace, argv: list[str]
            ) -> tuple[int, str, dict[str, Any] | None]:
    """Run ``step`` with parsed ``args`` as its process would; never raises an
    :class:`~xnatpic.errors.XnatpicError`.

    Returns
    -------
    (code, line, summary)
        The exit code (0, 1, :data:`~xnatpic.step_output.NOT_APPLICABLE_EXIT` or
        :data:`EXIT_NOT_ENOUGH_SIGNAL`), the last stderr line of a non-zero code (else
        ``""``) and the statistics summary when maps were written. On failure or "not
        applicable" nothing is left in ``OUTPUT/maps``.
    """
    out = args.output / OUTPUT_FOLDER
    try:
        check_output_writable(args.output)
        summary = run_step(step, args, argv)
    except OutputNotWritableError as exc:  # nothing written, nothing to clean up
        return 1, f"{step}: error: {exc}", None
    except NoSuitableScanError as exc:  # not a failure: the step does not apply here
        if out.exists():
            shutil.rmtree(out)
        return NOT_APPLICABLE_EXIT, f"{step}{NOT_APPLICABLE_MARK}{exc}", None
    except XnatpicError as exc:
        if out.exists():
            shutil.rmtree(out)
        return 1, f"{step}: error: {exc}", None
    if summary.get("outcome") == "not enough signal":
        return (EXIT_NOT_ENOUGH_SIGNAL,
                f"{step}{NOT_ENOUGH_SIGNAL_MARK}{summary['outcome_reason']}", summary)
    return 0, "", summary


def main(step: str, argv: Sequence[str] | None = None) -> int:
    """Run ``step`` with ``argv``; exit code 0 on success, 1 on a failure (reason on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(step).parse_args(_attach_number_lists(argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format=f"{step}: %(levelname)s %(message)s", stream=sys.stderr,
                        force=True)
    start = time.monotonic()
    code, line, summary = execute(step, args, argv)
    if code:
        sys.stderr.write(line + "\n")
        return code
    assert summary is not None
    for name, entry in summary["maps"].items():
        if entry["role"] != "primary":
            continue
        whole = entry["whole"]
        median = "-" if whole["median"] is None else f"{whole['median']:.4g}"
        _log.info("%s: median %s %s in %d voxels (%d failed)", name, median, entry["unit"],
                  whole["n_voxels"], whole["n_failed"])
    _log.info("done in %.1f s: %s", time.monotonic() - start,
              args.output / OUTPUT_FOLDER / summary["run_key"] / "report.html")
    if summary.get("outcome") == MOSTLY_FAILED:
        sys.stderr.write(f"{step}: warning: {MOSTLY_FAILED}: {summary['outcome_reason']}\n")
    return 0
