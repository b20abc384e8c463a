"""Upload a conversion the user already made (``xnatpic convert``) instead of converting again.

``xnatpic upload STUDY --converted DIR`` takes the output folder of ``xnatpic convert STUDY
-o DIR`` and its report (``DIR/conversion-report.json``, or the file ``--report`` wrote:
``--conversion-report FILE``). The conversion is used only when it is what the upload's own
conversion would give, else the session fails with one message naming the report (or the
file) and the problem:

* the report is an ``xnatpic convert`` report of this xnatpic version, in classic DICOM
  (``--format dicom``), not de-identified;
* it is of this study: the StudyInstanceUID the files carry is the study's (VisuStudyUid),
  the source it names (when that path exists from here) is this study, and it lists every
  scan and reco of the study (not a ``--scans`` selection);
* nothing changed since: no file of the study is newer than the report, every reco
  folder it lists holds the number of DICOM files it records, of the series it records,
  none newer than the report (the report is written after the last file).

The files are then copied into the session's work folder with XNAT's routing text in
PatientComments (:mod:`xnatpic.upload.reroute`), byte for byte what the upload's own
conversion writes, so every destination gets the same files either way (a DICOM C-STORE
needs the routing; the REST import names project, subject and session in its request,
and the archive stores what XNAT would). :func:`reuse_conversion` returns what
:func:`xnatpic.upload.prepare.convert_source` returns, so the rest of the upload does not
change.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xnatpic import __version__
from xnatpic.dicom.routing import XnatRouting
from xnatpic.upload.errors import UploadError
from xnatpic.upload.reroute import write_with_routing

__all__ = ["REPORT_NAME", "ConversionMismatchError", "Converted", "reuse_conversion"]

#: Where ``xnatpic convert -o DIR`` writes its report without ``--report``.
REPORT_NAME = "conversion-report.json"
#: What a de-identified report says instead of its source path (xnatpic.conversion).
_DEIDENTIFIED = ("(de-identified source)", "(de-identified)")


class ConversionMismatchError(UploadError):
    """The conversion given with ``--converted`` is not what this upload would convert."""


@dataclass(frozen=True)
class Converted:
    """An ``xnatpic convert`` output folder and its report."""

    folder: Path
    report: Path

    @classmethod
    def of(cls, folder: Path, report: Path | None = None) -> Converted:
        """The conversion in ``folder``, its report ``report`` (default: the folder's
        ``conversion-report.json``), both made absolute."""
        folder = folder.absolute()
        return cls(folder, (report or folder / REPORT_NAME).absolute())

    def describe(self) -> str:
        """How the upload report names it."""
        return f"reused: {self.report} (output {self.folder})"


def reuse_conversion(converted: Converted, source: str, output: str, deidentify: bool,
                     routing: XnatRouting | None = None) -> tuple[str, list[str]]:
    """Check ``converted`` is this study's conversion, unchanged, then copy its DICOM into
    ``output/dicom`` with ``routing``; the arguments after ``converted`` and the result are
    those of :func:`xnatpic.upload.prepare.convert_source`.

    Returns
    -------
    (str, list of str)
        The report path (a copy in ``output`` whose folders are the copies) and one line
        per failed reco.

    Raises
    ------
    ConversionMismatchError
        When the conversion is not of this study, changed since, or made with other options.
    """
    where = converted.report
    if deidentify:
        raise ConversionMismatchError(
            f"{where}: a de-identified upload converts with its own pseudonyms; upload "
            "without --converted")
    data = _read_report(where)
    _check_options(where, data)
    stamp = where.stat().st_mtime_ns
    study_uid = _check_study(where, data, Path(source), stamp)
    recos = [reco for reco in data["recos"] if reco.get("status") == "converted"]
    folders = [_reco_folder(converted, data, reco) for reco in recos]
    checked = [_check_folder(where, reco, folder, stamp, study_uid)
               for reco, folder in zip(recos, folders, strict=True)]
    work = Path(output) / "dicom"
    for reco, folder, files in zip(recos, folders, checked, strict=True):
        copy = work / folder.relative_to(converted.folder)
        copy.mkdir(parents=True, exist_ok=True)
        for path in files:
            if routing is None:
                shutil.copyfile(path, copy / path.name)
            else:
                write_with_routing(path, copy / path.name, routing)
        reco["output"] = str(copy)
    data["output"] = str(work)
    data["reused_from"] = {"report": str(converted.report), "output": str(converted.folder)}
    report = Path(output) / REPORT_NAME
    report.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    failed = [f"scan {r['scan']} reco {r['reco']}: {r.get('reason')}" for r in data["recos"]
              if r.get("status") == "failed"]
    return str(report), failed


def _read_report(where: Path) -> dict[str, Any]:
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConversionMismatchError(
            f"{where}: no conversion report (xnatpic convert -o DIR writes DIR/{REPORT_NAME}; "
            "give the one --report wrote with --conversion-report)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConversionMismatchError(f"{where}: cannot read the conversion report: {exc}") \
            from exc
    if not isinstance(data, dict) or not isinstance(data.get("recos"), list) \
            or not all(isinstance(r, dict) for r in data["recos"]):
        raise ConversionMismatchError(f"{where}: not an xnatpic convert report (no 'recos')")
    return data


def _check_options(where: Path, data: dict[str, Any]) -> None:
    """The conversion used the options the upload converts with."""
    if data.get("xnatpic_version") != __version__:
        raise ConversionMismatchError(
            f"{where}: made by xnatpic {data.get('xnatpic_version')}, this is {__version__}; "
            "convert again or upload without --converted")
    if data.get("format") != "dicom":
        raise ConversionMismatchError(
            f"{where}: converted with --format {data.get('format')}; the upload sends classic "
            "DICOM (xnatpic convert --format dicom, the default)")
    if data.get("source") in _DEIDENTIFIED:
        raise ConversionMismatchError(
            f"{where}: a de-identified conversion (--deidentify); upload it with "
            "--deidentify and without --converted")
    if any(r.get("warnings") for r in data["recos"]):
        from xnatpic.strictness import Strictness, current_strictness

        if current_strictness() is Strictness.RAISE:
            raise ConversionMismatchError(
                f"{where}: converted with parameter warnings that --strict raise makes "
                "failures; convert with --strict raise or upload without --converted")


def _check_study(where: Path, data: dict[str, Any], study: Path, stamp: int) -> str:
    """The report is of ``study``, every scan and reco of it, and the study did not change
    after the report was written; return the study's StudyInstanceUID ("" when the
    converter derives it)."""
    named = Path(str(data.get("source", "")))
    if named.exists() and not _same(named, study):
        raise ConversionMismatchError(
            f"{where}: a conversion of {named}, not of {study}")
    from xnatpic.paravision.dataset import open_dataset

    with open_dataset(study) as opened:
        expected = {(scan.id, reco.number) for scan in opened.scans for reco in scan.recos}
        expected |= {(scan.id, "-") for scan in opened.scans if not scan.recos}
        study_uid = _study_uid(opened)
    listed = {(str(r.get("scan")), str(r.get("reco"))) for r in data["recos"]}
    if listed != expected:
        lacking = sorted(f"{s}/{r}" for s, r in expected - listed)
        extra = sorted(f"{s}/{r}" for s, r in listed - expected)
        raise ConversionMismatchError(
            f"{where}: does not list every scan/reco of {study} "
            f"({'lacks ' + ', '.join(lacking) if lacking else ''}"
            f"{'; ' if lacking and extra else ''}"
            f"{'has ' + ', '.join(extra) + ' the study has not' if extra else ''}); "
            "convert the whole study (no --scans)")
    newer = _first_newer(study, stamp)
    if newer is not None:
        raise ConversionMismatchError(
            f"{where}: {newer} changed after the conversion (it is newer than the report); "
            "convert again")
    return study_uid


def _study_uid(study: Any) -> str:
    """The StudyInstanceUID the converter gives the study: VisuStudyUid ("" when unknown
    or not a UID; the converter then derives one)."""
    from xnatpic.dicom.uids import is_valid_uid

    for scan in study.scans:
        for reco in scan.recos:
            if (reco.path / "visu_pars").is_file():
                value = reco.visu_pars.get("VisuStudyUid")
                value = str(value).strip("<> ") if value is not None else ""
                return value if is_valid_uid(value) else ""
    return ""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _first_newer(root: Path, stamp: int) -> Path | None:
    """A file below ``root`` (or ``root`` itself, a zip) modified after ``stamp``."""
    if root.is_file():
        return root if root.stat().st_mtime_ns > stamp else None
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            if path.stat().st_mtime_ns > stamp:
                return path
    return None


def _reco_folder(converted: Converted, data: dict[str, Any], reco: dict[str, Any]) -> Path:
    """Where a reco's files are now: its folder relative to the report's output root, in
    ``converted.folder`` (the report may name them relative to where convert ran)."""
    output = reco.get("output")
    if not output:
        raise ConversionMismatchError(
            f"{converted.report}: scan {reco.get('scan')} reco {reco.get('reco')} names no "
            "output folder")
    try:
        relative = Path(output).relative_to(str(data.get("output", "")))
    except ValueError as exc:
        raise ConversionMismatchError(
            f"{converted.report}: scan {reco.get('scan')} reco {reco.get('reco')}: {output} "
            f"is not below the report's output {data.get('output')}") from exc
    return converted.folder / relative


def _check_folder(where: Path, reco: dict[str, Any], folder: Path, stamp: int,
                  study_uid: str) -> list[Path]:
    """The DICOM files of a converted reco, checked against the report (and, when known,
    the study's StudyInstanceUID)."""
    from xnatpic.upload.prepare import dicom_headers

    what = f"scan {reco.get('scan')} reco {reco.get('reco')}"
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file()
                       and not p.name.endswith(".json"))
    except OSError as exc:
        raise ConversionMismatchError(
            f"{folder}: {what} of {where} is missing ({exc.strerror or exc})") from exc
    if len(files) != reco.get("files"):
        raise ConversionMismatchError(
            f"{folder}: holds {len(files)} DICOM files, the report {where} records "
            f"{reco.get('files')} for {what}; convert again")
    for path in files:
        if path.stat().st_mtime_ns > stamp:
            raise ConversionMismatchError(
                f"{path}: changed after the conversion report {where} was written; "
                "convert again")
    if files:
        head = dicom_headers(files[0])
        if head["SeriesInstanceUID"] not in (reco.get("series_uids") or []):
            raise ConversionMismatchError(
                f"{files[0]}: series {head['SeriesInstanceUID']}, not the series the report "
                f"{where} records for {what}; convert again")
        if study_uid and head["StudyInstanceUID"] != study_uid:
            raise ConversionMismatchError(
                f"{files[0]}: study {head['StudyInstanceUID']}, not this study's "
                f"{study_uid}; a conversion of another study")
    return files
