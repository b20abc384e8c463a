"""Convert a ParaVision study scan by scan, each reco in its own try, with a report.

One bad scan never stops the others: every reco ends as ``converted``, ``skipped``
(with the reason: spectroscopy, nothing reconstructed...) or ``failed`` (with the
error). Output of a reco is written into a temporary folder beside its destination and
renamed into place only when complete, so nothing partial is left looking complete.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatpic import __version__
from xnatpic.errors import SelectionError, UnsupportedDataError, XnatpicError
from xnatpic.strictness import collect_problems, current_strictness, strictness

if TYPE_CHECKING:  # the reader (numpy) is imported where it is used: `convert --help`
    from xnatpic.dicom.routing import XnatRouting
    from xnatpic.paravision.dataset import Reco, Study
    from xnatpic.paravision.jcamp import ParameterSet

__all__ = [
    "DEIDENTIFIED_SOURCE",
    "FORMATS",
    "MIN_SALT_LENGTH",
    "SALT_VARIABLE",
    "ConversionReport",
    "RecoResult",
    "SaltError",
    "convert_study",
    "deidentified_output_labels",
    "deidentify_salt",
    "output_labels",
    "require_deidentify_salt",
    "sanitize_label",
]

_log = logging.getLogger(__name__)

#: Output formats of :func:`convert_study`.
FORMATS = ("dicom", "enhanced", "nifti")
#: NIfTI compressions (:data:`xnatpic.nifti.writer.COMPRESSIONS`), the default first.
NIFTI_COMPRESSIONS = ("fast", "best", "none")


@dataclass
class RecoResult:
    """What happened to one reco."""

    scan: str
    reco: str
    status: str  # converted | skipped | failed
    reason: str | None = None
    output: str | None = None
    files: int = 0
    series_uids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    method: str | None = None
    #: Parameter problems met under ``--strict warn`` (xnatpic.strictness), without values.
    warnings: list[str] = field(default_factory=list)


@dataclass
class ConversionReport:
    """The outcome of a conversion, serialisable to JSON."""

    source: str
    output: str
    format: str
    xnatpic_version: str = __version__
    results: list[RecoResult] = field(default_factory=list)

    @property
    def failed(self) -> list[RecoResult]:
        """Recos that failed."""
        return [r for r in self.results if r.status == "failed"]

    def counts(self) -> dict[str, int]:
        """Number of recos per status."""
        out = {"converted": 0, "skipped": 0, "failed": 0}
        for r in self.results:
            out[r.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "source": self.source,
            "output": self.output,
            "format": self.format,
            "xnatpic_version": self.xnatpic_version,
            "summary": self.counts(),
            "recos": [asdict(r) for r in self.results],
        }

    def write(self, path: Path, *, mask_paths: bool = False) -> Path:
        """Write the report as JSON to ``path`` (its folder created).

        ``mask_paths`` (a de-identified report that is uploaded): no source path and no
        output folder, which would name the animal and the study.
        """
        data = self.to_dict()
        if mask_paths:
            data["source"] = data["output"] = "(de-identified)"
            for reco in data["recos"]:
                reco["output"] = None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def sanitize_label(text: str, fallback: str) -> str:
    """Make ``text`` safe as a folder name and XNAT label (letters, digits, ``_ . -``)."""
    label = _UNSAFE.sub("_", text.strip()).strip("._")
    return label[:64] or fallback


def _text(params: ParameterSet | None, *names: str) -> str | None:
    return None if params is None else params.text(*names)


def _first_visu(study: Study) -> ParameterSet | None:
    for scan in study.scans:
        for reco in scan.recos:
            if (reco.path / "visu_pars").is_file():
                return reco.visu_pars
    return None


def output_labels(study: Study) -> tuple[str, str]:
    """Subject and session folder names of a study (from subject, else first visu_pars)."""
    visu = _first_visu(study)
    subject = (_text(study.subject, "SUBJECT_id") or _text(visu, "VisuSubjectId")
               or _text(study.subject, "SUBJECT_name_string") or "subject")
    session = (_text(visu, "VisuStudyId") or _text(study.subject, "SUBJECT_study_name")
               or study.name)
    return sanitize_label(subject, "subject"), sanitize_label(session, "session")


def deidentified_output_labels(study: Study, salt: str) -> tuple[str, str]:
    """The pseudonym and study pseudonym the de-identified DICOM of ``study`` carries
    (PatientID and StudyID), as folder names: nothing in the output path names the animal
    or the study.

    The study and subject are keyed as :mod:`xnatpic.dicom.deidentify` keys them (study:
    VisuStudyUid, SUBJECT_study_instance_uid, VisuStudyId, the folder name; subject:
    VisuSubjectId, SUBJECT_id, VisuSubjectName, SUBJECT_name_string).
    """
    from xnatpic.dicom.deidentify import DeidentifyProfile

    visu = _first_visu(study)
    study_key = (_text(visu, "VisuStudyUid") or _text(study.subject,
                                                      "SUBJECT_study_instance_uid")
                 or _text(visu, "VisuStudyId") or study.name)
    subject_key = (_text(visu, "VisuSubjectId") or _text(study.subject, "SUBJECT_id")
                   or _text(visu, "VisuSubjectName")
                   or _text(study.subject, "SUBJECT_name_string") or "")
    profile = DeidentifyProfile(salt=salt)
    return profile.pseudonym(study_key, subject_key), profile.study_pseudonym(study_key)


#: Environment variable holding the secret salt of the de-identification profile.
SALT_VARIABLE = "XNATPIC_DEIDENTIFY_SALT"


#: Fewest characters of a salt: a short one can be found by trying every salt against
#: one known animal's pseudonym, which then unmasks every other animal.
MIN_SALT_LENGTH = 16


class SaltError(XnatpicError):
    """``--deidentify`` without a usable secret salt."""


def deidentify_salt() -> str:
    """The de-identification salt from the environment (never from the command line)."""
    return os.environ.get(SALT_VARIABLE, "")


def require_deidentify_salt() -> str:
    """The salt of ``--deidentify``, refusing a missing or short one.

    Pseudonyms, UIDs and the date shift are keyed hashes of the original values; with no
    salt (or a guessable one) anyone holding the original data recomputes them and links
    the de-identified data back to the animal.

    Raises
    ------
    SaltError
        Naming :data:`SALT_VARIABLE` and what to set it to.
    """
    salt = deidentify_salt()
    if not salt.strip():
        raise SaltError(
            f"--deidentify needs a secret salt in the environment variable {SALT_VARIABLE} "
            f"(at least {MIN_SALT_LENGTH} characters, kept by the data steward; e.g. "
            f"export {SALT_VARIABLE}=$(openssl rand -hex 16)); without it anyone holding the "
            "original data can recompute the pseudonyms, UIDs and date shifts. The same salt "
            "gives the same pseudonyms on every run")
    if len(salt) < MIN_SALT_LENGTH:
        raise SaltError(
            f"{SALT_VARIABLE} holds {len(salt)} characters; a de-identification salt needs at "
            f"least {MIN_SALT_LENGTH} (e.g. $(openssl rand -hex 16)): a short one can be found "
            "by trying them all against one known animal")
    from xnatpic.dicom.deidentify import salt_weakness

    weakness = salt_weakness(salt)
    if weakness:
        raise SaltError(
            f"{SALT_VARIABLE} is too weak for de-identification: {weakness}; use a random "
            "one (e.g. $(openssl rand -hex 16)), a guessable salt can be found by trying "
            "likely ones against one known animal")
    return salt


def _write(reco: Reco | str, destination: str, fmt: str, deidentify: bool,
           routing: XnatRouting | None = None, strict: str | None = None,
           nifti_compression: str = "fast") -> tuple[int, list[str], list[str]]:
    """Worker: convert one reco under the strictness ``strict`` (default: the one in force).

    ``reco`` is the planned :class:`Reco` (in this process: its parameter files are parsed
    once, for planning and writing) or, in a worker process, its folder.
    Returns the number of files, the series UIDs and the parameter problems warned about.
    """
    with strictness(strict or current_strictness()), collect_problems() as problems:
        n_files, uids = _write_reco(reco, destination, fmt, deidentify, routing,
                                    nifti_compression)
    return n_files, uids, problems


def _write_reco(reco: Reco | str, destination: str, fmt: str, deidentify: bool,
                routing: XnatRouting | None = None, nifti_compression: str = "fast"
                ) -> tuple[int, list[str]]:
    """Convert one reco (or reco folder) into ``destination`` (atomically)."""
    from xnatpic.paravision.dataset import open_dataset
    from xnatpic.paravision.series import load_series

    if isinstance(reco, str):
        reco = open_dataset(reco).scans[0].recos[0]
    series = load_series(reco)
    final = Path(destination)
    staging = final.with_name(f".{final.name}.partial-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        if fmt == "nifti":
            from xnatpic.nifti import write_nifti_series

            profile = None
            if deidentify:  # pydicom is imported only then
                from xnatpic.dicom.deidentify import DeidentifyProfile

                profile = DeidentifyProfile(salt=deidentify_salt())
            files = write_nifti_series(series, staging, deidentify=profile,
                                       compression=nifti_compression)
            uids: list[str] = []
        else:
            from xnatpic.dicom import DeidentifyProfile, write_dicom_series

            profile = DeidentifyProfile(salt=deidentify_salt()) if deidentify else None
            written = write_dicom_series(series, staging, enhanced=(fmt == "enhanced"),
                                         deidentify=profile, routing=routing)
            files = [f for w in written for f in w.files]
            uids = [w.series_instance_uid for w in written]
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(files), uids


def _folder(reco: Reco, salt: str | None) -> str:
    """``<scan>[-<reco>]_<protocol>`` (:mod:`xnatpic.output_names`; the protocol as the
    de-identified files carry it when ``salt`` is given)."""
    from xnatpic.output_names import folder_name

    if salt is None:  # pydicom (under xnatpic.dicom) is imported only to de-identify
        return folder_name(reco)
    from xnatpic.dicom.deidentify import DeidentifyProfile

    return folder_name(reco, DeidentifyProfile(salt=salt))


def _data_size(reco: Reco) -> int:
    try:
        return reco.data_path.stat().st_size
    except OSError:
        return 0


def _import_writer(fmt: str) -> None:
    """Import the writer of ``fmt`` (they are imported lazily: pydicom is slow to load)."""
    importlib.import_module("xnatpic.nifti" if fmt == "nifti" else "xnatpic.dicom")


def _method_name(reco: Reco) -> str | None:
    try:
        return _text(reco.scan.method, "Method") or _text(reco.scan.acqp, "ACQ_method")
    except XnatpicError:
        return None


def _lost_image_data(reco: Reco) -> str | None:
    """Why a reco whose visu_pars describes image frames but whose 2dseq is missing has
    lost data (a failure, not a skip), or None."""
    if reco.data_path.is_file() or not (reco.path / "visu_pars").is_file():
        return None
    try:
        visu = reco.visu_pars
        frames = int(visu.get("VisuCoreFrameCount", 0) or 0)
    except (XnatpicError, TypeError, ValueError):
        return None
    if frames <= 0 or "VisuCoreSize" not in visu:
        return None
    state = "not a regular file" if reco.data_path.exists() else "missing"
    return (f"{reco.data_path}: {state}, but visu_pars describes {frames} image frame(s) "
            f"of {visu.get('VisuCoreSize')}; the image data were lost (copy the complete "
            "pdata folder from the scanner)")


def _plan(study: Study, scans: Iterable[str] | None) -> tuple[list[Reco], list[RecoResult]]:
    from xnatpic.paravision.series import classify_reco

    wanted = None if scans is None else {str(s) for s in scans}
    if wanted is not None:
        missing = sorted(wanted - {scan.id for scan in study.scans}, key=_sort_key)
        if missing:
            raise SelectionError(
                f"{study.path}: no scan {', '.join(missing)} "
                f"(scans: {', '.join(s.id for s in study.scans)})"
            )
    todo: list[Reco] = []
    results: list[RecoResult] = []
    for scan in study.scans:
        if wanted is not None and scan.id not in wanted:
            continue
        if not scan.recos:
            results.append(RecoResult(scan.id, "-", "skipped",
                                      f"{scan.path}: no pdata/<n> reco (raw data only)"))
            continue
        for reco in scan.recos:
            lost = _lost_image_data(reco)
            if lost is not None:
                results.append(RecoResult(scan.id, reco.number, "failed", lost,
                                          method=_method_name(reco)))
                continue
            try:
                reason = classify_reco(reco)
            except XnatpicError as exc:
                results.append(RecoResult(scan.id, reco.number, "failed", str(exc)))
                continue
            if reason is not None:
                results.append(RecoResult(scan.id, reco.number, "skipped", reason,
                                          method=_method_name(reco)))
            else:
                todo.append(reco)
    return todo, results


def convert_study(
    source: str | Path,
    output: str | Path,
    *,
    fmt: str = "dicom",
    scans: Iterable[str] | None = None,
    jobs: int = 1,
    deidentify: bool = False,
    on_progress: Callable[[RecoResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    routing: XnatRouting | None = None,
    nifti_compression: str = "fast",
) -> ConversionReport:
    """Convert every image reco of a ParaVision study.

    Parameters
    ----------
    source : str or Path
        Study, scan or reco folder, or a zip of one.
    output : str or Path
        Root of the output tree ``<subject>/<session>/<scan>[-<reco>]_<protocol>/``
        (:mod:`xnatpic.output_names`; with
        ``deidentify``: the pseudonym and the study pseudonym the DICOM carries, never the
        animal or study name).
    fmt : {"dicom", "enhanced", "nifti"}
        Classic MR Image Storage, Enhanced MR Image Storage, or NIfTI-1.
    scans : iterable of str, optional
        Scan ids to convert (default: all).
    jobs : int
        Recos converted in parallel (processes).
    deidentify : bool
        Apply the de-identification profile (DICOM and NIfTI); needs the salt
        (:func:`require_deidentify_salt`).
    on_progress : callable, optional
        Called with each :class:`RecoResult` as it completes.
    on_start : callable, optional
        Called once with the number of recos to convert.
    routing : XnatRouting, optional
        Project, subject and session written into PatientComments for XNAT's DICOM
        routing (DICOM only).
    nifti_compression : {"fast", "best", "none"}
        NIfTI only: ISA-L gzip (default), zlib level 9, or uncompressed ``.nii``.

    Returns
    -------
    ConversionReport
        One result per reco (and per scan without recos).

    Raises
    ------
    NotParaVisionError, UnsafeArchiveError
        When the source itself cannot be opened; per-reco problems are reported instead.
    SaltError
        With ``deidentify`` and no usable salt.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if nifti_compression not in NIFTI_COMPRESSIONS:
        raise ValueError(f"unknown NIfTI compression {nifti_compression!r}; choose one of "
                         f"{', '.join(NIFTI_COMPRESSIONS)}")
    salt = require_deidentify_salt() if deidentify else ""
    output = Path(output)
    from xnatpic.paravision.dataset import open_dataset

    with open_dataset(source) as study:
        subject, session = (deidentified_output_labels(study, salt) if deidentify
                            else output_labels(study))
        todo, results = _plan(study, scans)
        report = ConversionReport(str(source), str(output), fmt, results=results)
        for r in results:
            if on_progress:
                on_progress(r)
        if on_start:
            on_start(len(todo))
        base = output / subject / session
        base.mkdir(parents=True, exist_ok=True)
        jobs_list = [(reco, base / _folder(reco, salt if deidentify else None))
                     for reco in todo]
        if jobs <= 1 or len(jobs_list) <= 1:
            for reco, dest in jobs_list:
                result = _run_one(reco, dest, fmt, deidentify, routing, nifti_compression)
                report.results.append(result)
                if on_progress:
                    on_progress(result)
        else:
            from concurrent.futures import ProcessPoolExecutor  # multiprocessing: ~8 ms

            _import_writer(fmt)  # once, before the workers fork, instead of once per worker
            # Largest first, so the workers finish together instead of one waiting
            # on a big reco submitted last.
            jobs_list.sort(key=lambda job: -_data_size(job[0]))
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                futures = [
                    (reco, dest, time.perf_counter(),
                     pool.submit(_write, str(reco.path), str(dest), fmt, deidentify, routing,
                                 current_strictness(), nifti_compression=nifti_compression))
                    for reco, dest in jobs_list
                ]
                for reco, dest, start, future in futures:
                    result = _collect(reco, dest, start, future.result, fmt)
                    report.results.append(result)
                    if on_progress:
                        on_progress(result)
        if deidentify:
            _mask_source(report, (str(source), str(study.path)), _identity_tokens(study))
    report.results.sort(key=lambda r: (_sort_key(r.scan), _sort_key(r.reco)))
    return report


#: What a de-identified report says instead of the source path (which often names the
#: animal or the study, e.g. ``chin/20220316_B16F10Eso_M1``).
DEIDENTIFIED_SOURCE = "(de-identified source)"


def _identity_tokens(study: Study) -> frozenset[str]:
    """The study's identifying words (subject, study, people, site) and folder names."""
    from xnatpic.dicom.deidentify_text import identity_tokens

    folders = {part.lower() for path in (study.path, study.path.parent)
               for part in (path.name, path.stem) if len(part) >= 3}
    return identity_tokens({"subject": study.subject, "visu": _first_visu(study)}) | folders


def _mask_source(report: ConversionReport, paths: tuple[str, ...],
                 tokens: frozenset[str] = frozenset()) -> None:
    """Remove the source paths from a de-identified report (its ``source`` and the reasons
    of skipped or failed recos): it travels with the data. The reasons are also cleaned of
    the study's identifying words, folder names, dates and long numbers."""
    from xnatpic.dicom.deidentify_text import clean_text

    report.source = DEIDENTIFIED_SOURCE
    for result in report.results:
        if result.reason:
            for path in sorted(paths, key=len, reverse=True):
                result.reason = result.reason.replace(path, DEIDENTIFIED_SOURCE)
            result.reason = clean_text(result.reason, tokens)


def _sort_key(text: str) -> tuple[int, int | str]:
    return (0, int(text)) if text.isdigit() else (1, text)


def _run_one(reco: Reco, dest: Path, fmt: str, deidentify: bool,
             routing: XnatRouting | None, nifti_compression: str = "fast") -> RecoResult:
    start = time.perf_counter()
    return _collect(reco, dest, start,
                    lambda: _write(reco, str(dest), fmt, deidentify, routing,
                                   nifti_compression=nifti_compression), fmt)


def _collect(reco: Reco, dest: Path, start: float,
             call: Callable[[], tuple[int, list[str], list[str]]], fmt: str) -> RecoResult:
    method = _method_name(reco)
    try:
        n_files, uids, warnings = call()
    except UnsupportedDataError as exc:
        return RecoResult(reco.scan.id, reco.number, "skipped", str(exc), method=method)
    except XnatpicError as exc:
        _log.error("scan %s reco %s: %s", reco.scan.id, reco.number, exc)
        return RecoResult(reco.scan.id, reco.number, "failed", str(exc), method=method,
                          seconds=time.perf_counter() - start)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        # Unexpected data the reader did not foresee: report it against this reco,
        # with the exception type so it can be fixed, and carry on with the others.
        _log.error("scan %s reco %s: %s: %s (traceback: --debug)", reco.scan.id,
                   reco.number, type(exc).__name__, exc)
        _log.debug("scan %s reco %s: traceback", reco.scan.id, reco.number, exc_info=exc)
        return RecoResult(reco.scan.id, reco.number, "failed",
                          f"{reco.path}: {type(exc).__name__}: {exc}", method=method,
                          seconds=time.perf_counter() - start)
    return RecoResult(reco.scan.id, reco.number, "converted", None, str(dest), n_files, uids,
                      time.perf_counter() - start, method, warnings)
