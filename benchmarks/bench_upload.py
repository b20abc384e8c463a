"""Upload throughput: ``xnatpic upload --jobs 4`` vs the naive XNAT-PIC way, same run.

Data: the phantom (``xnatpic phantom OUT --snr 50``) and, when the corpus is beside the
project, ``pv6-dicomifier/study``, converted to DICOM once; each is copied
:data:`COPIES` times with new UIDs and animal ids, so there are several sessions to
send. The fake XNAT of ``tests/double/server.py`` runs in its own process on
loopback; it unzips and parses every file, and is given :data:`LATENCY` s per answer and
:data:`FILE_DELAY` s of import work per file (what a real XNAT spends writing, cataloguing
and indexing; waiting, not CPU, so that imports can overlap as they do on a real server).

* baseline (XNAT-PIC): per session, sequentially, a new xnatpy connection, one deflated
  zip of the whole session, one ``POST /data/services/import``, disconnect;
* xnatpic: :func:`xnatpic.upload.upload_sessions` with ``jobs=4`` (one import per scan,
  stored zips, existence checks, resources, manifest) and with ``jobs=1`` for reference.

Both end with every file on the server (checked). Printed: MB/s of DICOM, sessions/min,
and the ratio xnatpic/baseline (target ≥ 3 with ``--jobs 4``), best of :data:`REPEATS`
rounds (the machine may be shared), with the CPU time of client and server.

Run: ``cd /work/main && .venv/bin/python -m benchmarks upload``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pydicom
import xnat

from xnatpic.conversion import convert_study
from xnatpic.phantom import write_phantom
from xnatpic.upload import ServerTarget, build_plans, discover_sources, upload_sessions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PV6 = PROJECT_ROOT.parent / "shared" / "data" / "paravision" / "pv6-dicomifier" / "study"
COPIES = 4
LATENCY = 0.01
FILE_DELAY = 0.002
JOBS = 4
REPEATS = 2


def _copies(converted: Path, name: str, out: Path) -> None:
    """COPIES copies of a converted study with new study/series/SOP UIDs and animal id."""
    files = sorted(p for p in converted.rglob("*.dcm"))
    for k in range(COPIES):
        maps: dict[str, str] = {}

        def new(uid: str, k: int = k, maps: dict[str, str] = maps) -> str:
            if uid not in maps:
                maps[uid] = pydicom.uid.generate_uid(entropy_srcs=[uid, str(k), "bench"])
            return maps[uid]

        for path in files:
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID = new(ds.StudyInstanceUID)
            ds.SeriesInstanceUID = new(ds.SeriesInstanceUID)
            ds.SOPInstanceUID = new(ds.SOPInstanceUID)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = f"{name}{k}"
            ds.StudyDescription = f"{name}{k}"
            target = out / f"{name}{k}" / path.relative_to(converted)
            target.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(target)


def _server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.double", "BASE", "OURS", "OURS1",
         "--latency", str(LATENCY), "--file-delay", str(FILE_DELAY)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _baseline(url: str, sessions: list[tuple[str, str, list[Path]]], work: Path) -> float:
    start = time.perf_counter()
    for subject, label, files in sessions:
        conn = xnat.connect(url, no_parse_model=True, loglevel="WARNING")
        archive = work / f"{label}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in files:
                zf.write(f, f"{f.parent.name}/{f.name}")
        with archive.open("rb") as body:
            conn.post("/data/services/import", data=body, headers={
                "Content-Type": "application/zip"}, query={
                "import-handler": "DICOM-zip", "PROJECT_ID": "BASE", "SUBJECT_ID": subject,
                "EXPT_LABEL": label, "overwrite": "append", "dest": "/archive",
                "inbody": "true"})
        conn.disconnect()
    return time.perf_counter() - start


def _check(url: str, project: str, plans: list, expected: dict[str, int]) -> None:
    target = ServerTarget(url)
    try:
        for plan in plans:
            plan.project = project
            counts = target.scan_counts(plan)
            assert sum(counts.values()) == expected[plan.session], (project, plan.session)
    finally:
        target.close()


def _one_round(incoming: Path, sessions: list[tuple[str, str, list[Path]]],
               expected: dict[str, int], root: Path) -> list[tuple[str, float]]:
    proc, url = _server()
    try:
        base = _baseline(url, sessions, root)
        print(f"  server CPU after baseline: {_cpu(proc.pid):.1f} s", flush=True)
        _check(url, "BASE", build_plans(discover_sources([incoming]), "BASE",
                                        session_template="{study_name}"), expected)
        rows = [("baseline (XNAT-PIC: zip per session, sequential)", base)]
        for jobs, project in ((1, "OURS1"), (JOBS, "OURS")):
            plans = build_plans(discover_sources([incoming]), project,
                                session_template="{study_name}")
            start, cpu = time.perf_counter(), time.process_time()
            report = upload_sessions(plans, ServerTarget(url), jobs=jobs)
            seconds = time.perf_counter() - start
            print(f"  client CPU --jobs {jobs}: {time.process_time() - cpu:.1f} s; "
                  f"server CPU so far: {_cpu(proc.pid):.1f} s", flush=True)
            assert not report.failed, [r.error for r in report.failed]
            _check(url, project, plans, expected)
            rows.append((f"xnatpic upload --jobs {jobs}", seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


def main() -> None:
    """Prepare the sessions, run both ways against the same server, print the figures."""
    from tests.double.server import PASSWORD, USER

    os.environ["XNAT_USER"], os.environ["XNAT_PASS"] = USER, PASSWORD
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        root = Path(tmp)
        studies = {"phantom": write_phantom(root / "phantom", snr=50.0) and root / "phantom"}
        if PV6.is_dir():
            studies["pv6"] = PV6
        else:
            print(f"(corpus absent: {PV6}; phantom only)")
        incoming = root / "incoming"
        for name, study in studies.items():
            convert_study(study, root / f"converted-{name}")
            _copies(root / f"converted-{name}", name, incoming)
        plans = build_plans(discover_sources([incoming]), "OURS",
                            session_template="{study_name}")
        sessions = [(p.subject, p.session, p.source.files) for p in plans]
        expected = {p.session: len(p.source.files) for p in plans}
        total = sum(f.stat().st_size for p in plans for f in p.source.files)
        print(f"{len(plans)} sessions, {sum(expected.values())} DICOM files, "
              f"{total / 1e6:.1f} MB; fake XNAT on loopback: {LATENCY * 1e3:.0f} ms per "
              f"answer, {FILE_DELAY * 1e3:.0f} ms import work per file")
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; best of "
              f"{REPEATS} runs, each against a fresh server", flush=True)
        best: dict[str, float] = {}
        for _ in range(REPEATS):
            for label, seconds in _one_round(incoming, sessions, expected, root):
                best[label] = min(seconds, best.get(label, seconds))
        rows = list(best.items())
        base = rows[0][1]
        print(f"{'':52s} {'seconds':>8s} {'MB/s':>7s} {'sessions/min':>13s} {'× baseline':>10s}")
        for label, seconds in rows:
            print(f"{label:52s} {seconds:8.2f} {total / 1e6 / seconds:7.1f} "
                  f"{len(plans) * 60 / seconds:13.1f} {base / seconds:10.2f}")
        ratio = base / rows[-1][1]
        print(f"ratio xnatpic --jobs {JOBS} / baseline: {ratio:.2f}× (target ≥ 3×: "
              f"{'met' if ratio >= 3 else 'NOT met'})")


if __name__ == "__main__":
    main()
