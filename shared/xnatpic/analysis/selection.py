"""Which scan of a session a step analyses, decided from DICOM attributes only.

A series is classified by what varies between its measurements (never by protocol or
series names), in this order of precedence:

==========  ============================================================================
kind        rule
==========  ============================================================================
cest        several saturation offsets (xnatpic private block), some beyond ±2 ppm
wassr       several saturation offsets, all saturated ones within ±2 ppm
diffusion   several b-values
fair        several inversion times, FAIR selective and non-selective images (private
            inversion mode, docs/private-tags.md)
ir          several inversion times
vtr         several repetition times (one TI at most)
t2          several echo times, one TR, spin echo (ScanningSequence SE, no GR)
t2star      several echo times, one TR, gradient echo (ScanningSequence GR)
single      nothing varies (or only what no step fits)
==========  ============================================================================
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xnatpic.analysis.errors import BadSeriesError, NoScanError, NoSuitableScanError
from xnatpic.analysis.inputs import Frame, dicom_files, read_frames, read_header
from xnatpic.analysis.scan_index import IndexEntry, ScanIndex, scan_index, scan_key
from xnatpic.arrays import distinct

__all__ = [
    "KIND_DESCRIPTIONS",
    "STEP_KINDS",
    "ScanInfo",
    "classify_frames",
    "describe_scan",
    "paravision_scan_ids",
    "read_scan_entry",
    "scan_folder",
    "select_scan",
    "session_index",
    "session_scans",
    "stored_scan_id",
]

_log = logging.getLogger(__name__)

#: Saturated offsets all within this many ppm make a WASSR (B0) series, not CEST.
WASSR_MAX_PPM = 2.0
#: Frames at least this far from water are unsaturated M0 references.
M0_PPM = 20.0

KIND_DESCRIPTIONS = {
    "cest": "a CEST Z-spectrum (several saturation offsets)",
    "wassr": "a WASSR B0 spectrum (saturation offsets within ±2 ppm)",
    "diffusion": "a diffusion series (several b-values)",
    "fair": "a FAIR series (several inversion times, selective and non-selective images)",
    "ir": "an inversion-recovery series (several inversion times)",
    "vtr": "a variable-TR series (several repetition times)",
    "t2": "a multi-echo spin-echo series (several echo times, one TR)",
    "t2star": "a multi-gradient-echo series (several echo times, one TR)",
    "single": "a series in which no echo time, TR, TI, b-value or saturation offset varies",
}

#: Kinds each step accepts, in order of preference.
STEP_KINDS: dict[str, tuple[str, ...]] = {
    "t2map": ("t2",),
    "t2starmap": ("t2star",),
    "t1map": ("vtr", "ir", "fair"),
    "perfusion": ("fair",),
    "adcmap": ("diffusion",),
    "cest": ("cest",),
}

#: Resource folders searched first for a scan's DICOM files.
_PREFERRED_RESOURCES = ("DICOM", "MRI2DICOM", "secondary")


@dataclass(frozen=True)
class ScanInfo:
    """A scan of a session and its classification.

    Attributes
    ----------
    scan_id : str
        Scan id (folder name under ``SCANS``).
    folder : Path
        The folder holding the scan's DICOM files.
    kind : str
        One of :data:`KIND_DESCRIPTIONS`.
    n_frames : int
        Number of 2-D frames.
    detail : str
        What varies, e.g. ``"12 echo times 10-120 ms"``.
    inversion_modes : tuple of str
        Distinct FAIR inversion modes of the frames (``SELECTIVE``, ``NONSELECTIVE``; ``""``
        for frames without one), sorted.
    """

    scan_id: str
    folder: Path
    kind: str
    n_frames: int
    detail: str
    inversion_modes: tuple[str, ...] = ()


def _distinct(frames: list[Frame], name: str) -> np.ndarray:
    values = np.array([np.nan if getattr(f, name) is None else getattr(f, name)
                       for f in frames], dtype=np.float64)
    values = values[np.isfinite(values)]
    return distinct(np.round(values, 4))


def _describe(values: np.ndarray, what: str, unit: str) -> str:
    return f"{values.size} {what} {values.min():g}-{values.max():g} {unit}".rstrip()


def classify_frames(frames: list[Frame], scanning_sequence: tuple[str, ...]) -> tuple[str, str]:
    """Classify a series from its frames' attributes.

    Parameters
    ----------
    frames : list of Frame
        Frames of one series (headers only are enough).
    scanning_sequence : tuple of str
        The series' ScanningSequence values.

    Returns
    -------
    (kind, detail) : tuple of str
    """
    sat = _distinct(frames, "sat_ppm")
    if sat.size > 1:
        saturated = sat[np.abs(sat) < M0_PPM]
        kind = "wassr" if saturated.size and np.abs(saturated).max() <= WASSR_MAX_PPM else "cest"
        return kind, _describe(sat, "saturation offsets", "ppm")
    for name, kind, what, unit in (("b", "diffusion", "b-values", "s/mm²"),
                                   ("ti_protocol", "ir", "inversion times", "ms"),
                                   ("tr", "vtr", "repetition times", "ms")):
        values = _distinct(frames, name)
        if values.size > 1:
            modes = {f.inversion_mode for f in frames}
            if kind == "ir" and {"SELECTIVE", "NONSELECTIVE"} <= modes:
                return "fair", _describe(values, what, unit) + ", selective and non-selective"
            return kind, _describe(values, what, unit)
    te = _distinct(frames, "te")
    if te.size > 1:
        gradient_echo = "GR" in scanning_sequence and "SE" not in scanning_sequence
        return ("t2star" if gradient_echo else "t2"), _describe(te, "echo times", "ms")
    return "single", "one measurement per slice"


def paravision_scan_ids(present: list[str], wanted: str) -> list[str]:
    """The stored scan ids of ParaVision scan ``E`` or scan/reco ``E-P``.

    xnatpic writes SeriesNumber ``10000*E + P`` (``10000*E + 100*P + package`` for several
    slice packages), as ParaVision's own DICOM export does, and XNAT names scans by it;
    ``xnatpic info`` and ``convert`` name them ``E`` and ``E-P``.

    Examples
    --------
    >>> paravision_scan_ids(["10101", "10102", "90001", "110001"], "9")
    ['90001']
    >>> paravision_scan_ids(["10101", "10102", "90001"], "1-1")
    ['10101', '10102']
    >>> paravision_scan_ids(["90001"], "9-2")
    []
    """
    scan, _, reco = wanted.partition("-")
    if not scan.isdigit() or (reco and not reco.isdigit()):
        return []
    found = []
    for name in present:
        if not name.isdigit() or int(name) < 10000 or int(name) // 10000 != int(scan):
            continue
        rest = int(name) % 10000
        if not reco or rest == int(reco) or (rest >= 100 and rest // 100 == int(reco)):
            found.append(name)
    return found


def stored_scan_id(session: Path, scan_id: str) -> str:
    """The folder name under ``SCANS`` of scan ``scan_id`` (a stored id, or a ParaVision
    scan ``E`` / ``E-P`` stored as one series).

    Raises
    ------
    NoScanError
        When no scan, or several series, match.
    """
    scans = Path(session) / "SCANS"
    if (scans / str(scan_id)).is_dir():
        return str(scan_id)
    present = sorted((p.name for p in scans.glob("*") if p.is_dir()), key=scan_key)
    matches = paravision_scan_ids(present, str(scan_id))
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NoScanError(f"{session}: ParaVision scan {scan_id} is stored as several "
                          f"series ({', '.join(matches)}); name one of them")
    raise NoScanError(f"{session}: no scan {scan_id!r} (scans: "
                      f"{', '.join(present) or 'none'}; a ParaVision scan E reco P is "
                      "series 10000*E+P)")


def scan_folder(session: Path, scan_id: str) -> Path:
    """The folder holding the DICOM files of scan ``scan_id`` in a session.

    ``SCANS/<id>/DICOM`` is preferred, then ``MRI2DICOM``, then any resource with DICOM.

    Raises
    ------
    NoScanError
        When the scan or its DICOM files do not exist.
    """
    scan_id = stored_scan_id(session, scan_id)
    folder = Path(session) / "SCANS" / scan_id
    resources = sorted(p for p in folder.iterdir() if p.is_dir())
    ranked = sorted(resources, key=lambda p: (p.name not in _PREFERRED_RESOURCES,
                                              _PREFERRED_RESOURCES.index(p.name)
                                              if p.name in _PREFERRED_RESOURCES else 0, p.name))
    for resource in ranked:
        if dicom_files(resource):
            return resource
    if dicom_files(folder):
        return folder
    raise NoScanError(f"{folder}: scan {scan_id} has no DICOM files "
                      f"(resources: {', '.join(p.name for p in resources) or 'none'})")


def _scanning_sequence(path: Path) -> tuple[str, ...]:
    header = read_header(path)
    scanning = tuple(str(v) for v in np.atleast_1d(header.get("ScanningSequence", [])))
    if not scanning and str(header.get("EchoPulseSequence", "")):
        technique = str(header.EchoPulseSequence)
        scanning = tuple(v for v, ok in (("SE", technique in ("SPIN", "BOTH")),
                                         ("GR", technique in ("GRADIENT", "BOTH"))) if ok)
    return scanning


def read_scan_entry(session: Path, scan_id: str, signature: str) -> IndexEntry:
    """Read the headers of one scan (no pixel data) into an index entry; an unreadable
    scan gives an entry holding the error."""
    try:
        folder = scan_folder(session, scan_id)
        try:
            frames = read_frames(folder, pixels=False)
        except BadSeriesError as exc:
            raise BadSeriesError(f"scan {scan_id}: {exc}") from exc
    except (NoScanError, BadSeriesError) as exc:
        return IndexEntry(signature, error=str(exc), error_type=type(exc).__name__)
    scanning = _scanning_sequence(frames[0].path)
    kind, detail = classify_frames(frames, scanning)
    modes = tuple(sorted({f.inversion_mode or "" for f in frames}))
    return IndexEntry(signature, folder.relative_to(session).as_posix(), kind, detail,
                      len(frames), modes, scanning)


def session_index(session: Path) -> ScanIndex:
    """The session's up-to-date scan index (:mod:`xnatpic.analysis.scan_index`)."""
    return scan_index(session, read_scan_entry)


def _info(session: Path, scan_id: str, entry: IndexEntry) -> ScanInfo:
    entry.raise_error()
    return ScanInfo(scan_id, Path(session) / entry.folder, entry.kind, entry.n_frames,
                    entry.detail, entry.inversion_modes)


def describe_scan(session: Path, scan_id: str) -> ScanInfo:
    """Classify one scan of a session from its DICOM headers (through the scan index).

    Raises
    ------
    NoScanError
        When the scan has no DICOM files.
    BadSeriesError
        When its DICOM cannot be read as one series.
    """
    stored = stored_scan_id(session, scan_id)
    return _info(session, stored, session_index(session).entries[stored])


def session_scans(session: Path) -> list[ScanInfo]:
    """Classify every scan of a session that holds a readable DICOM series.

    Scans without DICOM or with unreadable series are skipped with a log line.
    """
    index = session_index(session)
    log = _log.info if index.read else _log.debug  # once per session, not per step
    out = []
    for scan_id, entry in index.entries.items():
        if entry.error:
            log("scan %s skipped: %s", scan_id, entry.error)
            continue
        log("scan %s: %s (%s)", scan_id, entry.kind, entry.detail)
        out.append(_info(session, scan_id, entry))
    return out


def select_scan(session: Path, step: str, *, scan_id: str | None = None,
                kinds: tuple[str, ...] | None = None) -> ScanInfo:
    """Choose the scan a step analyses.

    Parameters
    ----------
    session : Path
        Session folder in archive layout (``SCANS/<id>/<resource>/``).
    step : str
        Step name (a key of :data:`STEP_KINDS`), used in messages.
    scan_id : str, optional
        Use this scan; it must be of an accepted kind.
    kinds : tuple of str, optional
        Accepted kinds (default ``STEP_KINDS[step]``).

    Returns
    -------
    ScanInfo
        The chosen scan; with several candidates the one with the highest id (the latest
        acquisition) wins.

    Raises
    ------
    NoScanError
        When the given scan is of another kind, or no scan of the session fits.
    """
    accepted = kinds or STEP_KINDS[step]
    wanted = " or ".join(KIND_DESCRIPTIONS[k] for k in accepted)
    if scan_id:
        info = describe_scan(session, scan_id)
        if info.kind not in accepted:
            raise NoScanError(
                f"scan {scan_id} ({info.folder}): {step} needs {wanted}, but this is "
                f"{KIND_DESCRIPTIONS[info.kind]} ({info.detail}); choose another scan")
        return info
    candidates = [s for s in session_scans(session) if s.kind in accepted]
    if not candidates:
        raise NoSuitableScanError(
            f"{session}: no scan fits {step}: it needs {wanted}; if one does and its "
            "attributes are missing, name it with the scan input (--param scan=ID with "
            "xnatpic launch, --scan ID with run.py)")
    kind = next(k for k in accepted if any(s.kind == k for s in candidates))
    of_kind = [s for s in candidates if s.kind == kind]
    chosen = of_kind[-1]
    if len(of_kind) > 1:
        _log.warning("%s: scans %s fit; using scan %s (the latest)", step,
                     ", ".join(s.scan_id for s in of_kind), chosen.scan_id)
    return chosen
