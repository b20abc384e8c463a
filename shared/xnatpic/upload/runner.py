"""Send sessions to a destination, several at a time, each in its own try.

Per session: skip it when the destination already holds it complete (its manifest has
the same source fingerprint and every scan the same file count); else convert, check the
session does not hold another study, resolve what earlier imports left in XNAT's
prearchive, send the files the destination does not hold (per SOPInstanceUID: a partly
stored scan gets only its missing files, as XNAT refuses a file it holds), verify, send the
raw ParaVision zip and the conversion report, set fields, and write the manifest last.
Every step is idempotent and retried on transient failures; a session that still fails
is reported and the others go on.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.dicom.routing import XnatRouting
from xnatpic.errors import XnatpicError
from xnatpic.upload.errors import SessionConflictError, UploadError
from xnatpic.upload.prepare import (
    RAW_RESOURCE,
    ScanFiles,
    SessionPlan,
    convert_source,
    prepare_session,
    zip_files,
)
from xnatpic.upload.report import SessionResult, UploadReport
from xnatpic.upload.retry import RetryPolicy, with_retry
from xnatpic.upload.reuse import Converted
from xnatpic.upload.target import MANIFEST_NAME, Target

__all__ = ["BATCH_BYTES", "Callbacks", "session_state", "upload_sessions"]

_log = logging.getLogger(__name__)


def _noop(*_: Any) -> None:
    return None


@dataclass
class Callbacks:
    """Progress hooks (called from worker threads).

    ``start(plan, total_bytes)`` once a session is prepared, ``advance(plan, nbytes)`` as
    scans and resources are stored, ``done(result)`` when a session ends.
    """

    start: Callable[[SessionPlan, int], None] = field(default=_noop)
    advance: Callable[[SessionPlan, int], None] = field(default=_noop)
    done: Callable[[SessionResult], None] = field(default=_noop)


def _raw_label(plan: SessionPlan) -> str:
    """The raw-data resource of a session: PARAVISION, or IVIS for an IVIS folder."""
    return RAW_RESOURCE.get(plan.source.kind, "PARAVISION")


def _complete(target: Target, plan: SessionPlan, policy: RetryPolicy) -> int | None:
    """Scans of a session already complete at the destination, else None."""
    if not target.stateful:
        return None
    manifest = with_retry(lambda: target.manifest(plan), what=f"{plan.key}: manifest",
                          policy=policy)
    if not manifest or manifest.get("fingerprint") != plan.source.fingerprint():
        return None
    counts = with_retry(lambda: target.scan_counts(plan), what=f"{plan.key}: scans",
                        policy=policy)
    scans = manifest.get("scans", {})
    if any(counts.get(sid) != info.get("files") for sid, info in scans.items()):
        return None
    raw = manifest.get("raw")
    if raw and raw not in with_retry(lambda: target.resource_files(plan, _raw_label(plan)),
                                     what=f"{plan.key}: raw resource", policy=policy):
        return None
    return len(scans)


#: Scans are imported in zips of about this size: few round trips, yet a retry or a
#: re-run resends only the scans of a batch that are not complete.
BATCH_BYTES = 64 * 1024 * 1024


def _batches(scans: Sequence[ScanFiles], limit: int) -> list[list[ScanFiles]]:
    out: list[list[ScanFiles]] = []
    current: list[ScanFiles] = []
    size = 0
    for scan in scans:
        if current and size + scan.size > limit:
            out.append(current)
            current, size = [], 0
        current.append(scan)
        size += scan.size
    if current:
        out.append(current)
    return out


def session_state(target: Target, plan: SessionPlan, policy: RetryPolicy | None = None
                  ) -> str:
    """What an upload would do with a session: ``skip (complete)``, ``finish (partial)``,
    ``upload (new)``, or ``send`` for a destination that cannot be asked (DICOM node).

    Raises
    ------
    UploadError
        When the destination cannot be queried.
    """
    if not target.stateful:
        return "send"
    policy = policy or RetryPolicy(attempts=2)
    if _complete(target, plan, policy) is not None:
        return "skip (complete)"
    try:
        held = with_retry(lambda: target.study_uid(plan), what=f"{plan.key}: session",
                          policy=policy)
    except SessionConflictError as exc:
        return f"conflict ({exc})"
    if held is None:
        return "upload (new)"
    study = plan.source.fields.get("study_uid", "")
    if held and study and held != study and plan.source.kind == "dicom":
        return f"conflict (holds study {held})"
    return "finish (partial)"


def _server_id(ids: dict[str, str], scan: ScanFiles) -> str:
    return ids.get(scan.series_uid, scan.id)


def _missing(target: Target, plan: SessionPlan, scans: Sequence[ScanFiles]
             ) -> tuple[list[ScanFiles], list[ScanFiles]]:
    """(scans or parts of scans the destination lacks, scans it holds complete).

    Scans are matched by SeriesInstanceUID to the ids XNAT gave them; a scan holding
    some of its files is asked which instances (by SOPInstanceUID) when the destination
    can tell, so only the others are sent (XNAT refuses a file it holds: "Duplicate DICOM
    file uploaded").

    Raises
    ------
    SessionConflictError
        When a scan holds more files than the study has.
    """
    counts = target.scan_counts(plan)
    scan_ids = getattr(target, "scan_ids", None)
    ids = scan_ids(plan) if scan_ids is not None and counts else {}
    held_sops = getattr(target, "held_sops", None)
    missing, present = [], []
    for scan in scans:
        sid = _server_id(ids, scan)
        have = counts.get(sid, 0)
        if have > len(scan.files):
            raise SessionConflictError(
                f"{plan.key}: scan {sid} holds {have} files at the destination but the "
                f"study has {len(scan.files)}; another series with SeriesNumber {scan.id}?")
        if have == len(scan.files):
            present.append(scan)
        elif have and held_sops is not None and scan.files:
            rest = scan.only(set(scan.instance_uids()) - held_sops(plan, sid))
            if rest.files:
                _log.info("%s: scan %s holds %d of %d files; sending the %d it lacks",
                          plan.key, sid, have, len(scan.files), len(rest.files))
                missing.append(rest)
            else:
                present.append(scan)
        else:
            missing.append(scan)
    return missing, present


def _send_batch(target: Target, plan: SessionPlan, batch: list[ScanFiles], work: Path,
                index: int, policy: RetryPolicy) -> int:
    attempts, sent = [0], [0]

    def step() -> None:
        attempts[0] += 1
        todo = batch
        if attempts[0] > 1 and target.stateful:
            # a failed attempt may have landed (e.g. 500 after storing, an import that
            # outlived its timeout, one cut off whose complete entries XNAT kept in the
            # prearchive): archive what it left, send only the files the destination lacks
            resolve = getattr(target, "resolve_prearchive", None)
            if resolve is not None:
                resolve(plan, cut=True)
            todo = _missing(target, plan, batch)[0]
            if not todo:
                _log.info("%s: batch %d found complete after a failed attempt", plan.key,
                          index)
                return
        files = [f for s in todo for f in s.files]
        if not target.sends_zip:  # stores the files from their paths: no zip to make
            target.send_scans(plan, todo, None)
            sent[0] = sum(f.stat().st_size for f in files)
            return
        common = Path(*_common_parts([f.parent for f in files]))
        zip_path = zip_files(files, common, work / "zips" / f"batch-{index}.zip")
        try:
            target.send_scans(plan, todo, zip_path)
            sent[0] = zip_path.stat().st_size
        finally:
            zip_path.unlink(missing_ok=True)

    scans = ", ".join(s.id for s in batch)
    with_retry(step, what=f"{plan.key}: scans {scans}", policy=policy)
    return sent[0]


def _common_parts(folders: Sequence[Path]) -> tuple[str, ...]:
    parts = folders[0].parts
    for folder in folders[1:]:
        n = 0
        while n < min(len(parts), len(folder.parts)) and parts[n] == folder.parts[n]:
            n += 1
        parts = parts[:n]
    return parts


def _held(target: Target, plan: SessionPlan, scans: Sequence[ScanFiles]
          ) -> dict[str, tuple[str, int]]:
    """SeriesInstanceUID → (scan id, file count) the destination holds."""
    counts = target.scan_counts(plan)
    scan_ids = getattr(target, "scan_ids", None)
    ids = scan_ids(plan) if scan_ids is not None else {}
    return {s.series_uid: (_server_id(ids, s), counts.get(_server_id(ids, s), 0))
            for s in scans}


def _ensure_resource(target: Target, plan: SessionPlan, label: str, path: Path, name: str,
                     policy: RetryPolicy) -> int:
    size = path.stat().st_size

    def step() -> int:
        if target.resource_files(plan, label).get(name) == size:
            return 0
        target.put_resource_file(plan, label, path, name)
        return size

    return with_retry(step, what=f"{plan.key}: resource {label}/{name}", policy=policy)


def _upload_one(plan: SessionPlan, target: Target, work_root: Path, policy: RetryPolicy,
                deidentify: bool, converter: Callable[..., tuple[str, list[str]]] | None,
                callbacks: Callbacks, keep: bool, batch_bytes: int,
                converted: Converted | None = None) -> SessionResult:
    result = SessionResult(str(plan.source.path), plan.project, plan.subject, plan.session)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f"{plan.session}-", dir=work_root))
    try:
        present = _complete(target, plan, policy)
        if present is not None:
            result.status, result.scans_present = "complete", present
            return result
        prepared = prepare_session(plan, work, deidentify=deidentify, converter=converter,
                                   converted=converted)
        result.conversion = _conversion(plan, converted)
        for scan in prepared.scans:  # converted here, removed with the work folder
            scan.owned = not keep and work in scan.files[0].parents
        callbacks.start(plan, prepared.size)
        held = with_retry(lambda: target.study_uid(plan), what=f"{plan.key}: session",
                          policy=policy)
        if held and held != prepared.study_uid:
            raise SessionConflictError(
                f"{plan.key}: session {plan.session!r} of project {plan.project} already holds "
                f"study {held}, not {prepared.study_uid} ({plan.source.path}); choose another "
                "label with --session-template")
        with_retry(lambda: target.ensure_session(plan, prepared.study_uid),
                   what=f"{plan.key}: create", policy=policy)
        resolve = getattr(target, "resolve_prearchive", None)
        if held is not None and resolve is not None:
            # what an earlier, cut-off or refused, import left in the prearchive would be
            # reused by the next import of the study: archive it or delete it first
            with_retry(lambda: resolve(plan), what=f"{plan.key}: prearchive", policy=policy)
        # a session that did not exist holds no scan: round trips saved per new session
        missing: list[ScanFiles] = list(prepared.scans)
        if held is not None and target.stateful:
            missing, present = with_retry(lambda: _missing(target, plan, prepared.scans),
                                          what=f"{plan.key}: scans", policy=policy)
            for scan in present:
                result.scans_present += 1
                callbacks.advance(plan, scan.size)
        for index, batch in enumerate(_batches(missing, batch_bytes)):
            result.bytes_sent += _send_batch(target, plan, batch, work, index, policy)
            result.scans_sent += len(batch)
            callbacks.advance(plan, sum(s.size for s in batch))
        result.files = sum(len(s.files) for s in prepared.scans)
        held_now = None
        if target.stateful:
            held_now = with_retry(lambda: _held(target, plan, prepared.scans),
                                  what=f"{plan.key}: verify", policy=policy)
            for scan in prepared.scans:
                sid, have = held_now.get(scan.series_uid, (scan.id, 0))
                if have != len(scan.files):
                    # every import was accepted: XNAT left files out on purpose (series
                    # import filter, anonymisation script, non-image instances)
                    result.warnings.append(
                        f"scan {sid}: XNAT kept {have} of {len(scan.files)} files (a series "
                        "import filter or anonymisation script on the project?)")
                    _log.warning("%s: %s", plan.key, result.warnings[-1])
            held_now = {k: v for k, v in held_now.items() if v[1]}
        if prepared.raw_zip is not None:
            result.bytes_sent += _ensure_resource(target, plan, _raw_label(plan), prepared.raw_zip,
                                                  prepared.raw_zip.name, policy)
            callbacks.advance(plan, prepared.raw_zip.stat().st_size)
        if prepared.report is not None:
            result.bytes_sent += _ensure_resource(target, plan, "CONVERSION", prepared.report,
                                                  prepared.report.name, policy)
        with_retry(lambda: target.set_fields(plan), what=f"{plan.key}: fields", policy=policy)
        if prepared.conversion_failures:
            raise UploadError(f"{plan.key}: uploaded, but {len(prepared.conversion_failures)} "
                              f"reco(s) failed to convert: "
                              f"{'; '.join(prepared.conversion_failures)}")
        manifest = work / MANIFEST_NAME
        manifest.write_text(json.dumps(prepared.manifest(held_now), indent=2) + "\n")
        with_retry(lambda: target.put_resource_file(plan, "CONVERSION", manifest,
                                                    MANIFEST_NAME),
                   what=f"{plan.key}: manifest", policy=policy)
        result.status = "uploaded"
    except XnatpicError as exc:
        result.error = str(exc)
        _log.error("%s", exc)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        result.error = f"{plan.key}: {type(exc).__name__}: {exc}"
        _log.error("%s (traceback: --debug)", result.error)
        _log.debug("%s: traceback", plan.key, exc_info=exc)
    finally:
        result.seconds = time.perf_counter() - started
        discard = getattr(target, "discard", None)
        if result.status != "uploaded" and discard is not None:
            discard(plan)  # a new session that failed leaves nothing (archive target)
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _conversion(plan: SessionPlan, converted: Converted | None) -> str:
    """How the upload report names the DICOM of a session (:attr:`SessionResult.conversion`)."""
    if plan.source.kind not in RAW_RESOURCE:
        return "as found"
    if converted is not None and plan.source.kind == "paravision":
        return converted.describe()
    return "converted"


def upload_sessions(plans: Sequence[SessionPlan], target: Target, *, jobs: int = 1,
                    work_dir: str | Path | None = None, deidentify: bool = False,
                    policy: RetryPolicy | None = None, callbacks: Callbacks | None = None,
                    keep_work: bool = False, destination: str = "",
                    batch_bytes: int = BATCH_BYTES, converted: Converted | None = None
                    ) -> UploadReport:
    """Upload every planned session; one failing session never stops the others.

    Parameters
    ----------
    plans : sequence of SessionPlan
    target : Target
        Server, archive or DICOM node.
    jobs : int
        Sessions at a time (threads; ParaVision conversion runs in as many processes).
    work_dir : path, optional
        Where conversions and zips go (default: a temporary folder, removed after).
    deidentify : bool
        Convert with the de-identification profile.
    policy : RetryPolicy, optional
        Retries of transient failures.
    callbacks : Callbacks, optional
        Progress hooks.
    keep_work : bool
        Keep converted DICOM and zips in ``work_dir``.
    batch_bytes : int
        Scans are imported in zips of about this size (one scan may exceed it).
    converted : Converted, optional
        The user's ``xnatpic convert`` of the one ParaVision study planned, sent instead of
        converting it again once checked (:mod:`xnatpic.upload.reuse`).

    Returns
    -------
    UploadReport

    Raises
    ------
    ProjectNotFoundError
        Before any session when the project does not exist.
    UploadError
        When ``converted`` is given for other than one ParaVision study.
    """
    if jobs < 1:
        raise UploadError(f"--jobs must be at least 1, got {jobs}")
    if converted is not None and [p.source.kind for p in plans] != ["paravision"]:
        raise UploadError(
            f"--converted {converted.folder}: one conversion is of one ParaVision study; "
            f"the sources hold {len(plans)} studies "
            f"({', '.join(sorted({p.source.kind for p in plans})) or 'none'})")
    policy = policy or RetryPolicy()
    callbacks = callbacks or Callbacks()
    report = UploadReport(destination or target.name, plans[0].project if plans else "")
    started = time.perf_counter()
    if plans:
        project = plans[0].project
        with_retry(lambda: target.check_project(project), what=f"project {project}",
                   policy=policy)
    owned = None if work_dir else tempfile.TemporaryDirectory(prefix="xnatpic-upload-")
    root = Path(work_dir) if work_dir else Path(owned.name)  # type: ignore[union-attr]
    root.mkdir(parents=True, exist_ok=True)
    needs_conversion = 0 if converted else sum(p.source.kind == "paravision" for p in plans)
    procs = ProcessPoolExecutor(max_workers=min(jobs, needs_conversion)) if (
        jobs > 1 and needs_conversion > 1) else None
    converter = None
    if procs is not None:
        def converter(source: str, output: str, deid: bool,
                      routing: XnatRouting | None = None) -> tuple[str, list[str]]:
            return procs.submit(convert_source, source, output, deid, routing).result()
    try:
        def one(plan: SessionPlan) -> SessionResult:
            res = _upload_one(plan, target, root, policy, deidentify, converter, callbacks,
                              keep_work, batch_bytes, converted)
            callbacks.done(res)
            return res

        if jobs == 1 or len(plans) <= 1:
            report.results = [one(p) for p in plans]
        else:
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="upload") as pool:
                report.results = list(pool.map(one, plans))
    finally:
        if procs is not None:
            procs.shutdown()
        target.close()
        if owned is not None:
            owned.cleanup()
    report.seconds = time.perf_counter() - started
    return report
