"""Local archives for the launch tests: files in XNAT's layout, metadata in .xnatpic/."""

from __future__ import annotations

import sys
from pathlib import Path

from xnatpic.xnat.metadata import update_project

#: A step that records its arguments, environment and working directory, and writes
#: outputs as asked: ``--write NAME`` writes ``/output/NAME/file.txt``, ``--empty NAME``
#: makes an empty folder, ``--fail`` exits 3, ``--touch PATH`` writes a file anywhere.
STEP = r'''
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
def values(flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]
out = Path(values("--output")[0]) if "--output" in args else None
record = {"args": args, "cwd": os.getcwd(),
          "env": {k: v for k, v in os.environ.items() if k.startswith(("XNAT_", "STEP_"))}}
if out is not None:
    (out / "record.json").write_text(json.dumps(record))
for path in values("--touch"):
    Path(path).write_text("touched")
if "--fail" in args:
    print("step failed on purpose", file=sys.stderr)
    sys.exit(3)
for name in values("--write"):
    (out / name).mkdir(parents=True, exist_ok=True)
    (out / name / "file.txt").write_text(name)
for name in values("--empty"):
    (out / name).mkdir(parents=True, exist_ok=True)
'''


def step_entrypoint(tmp_path: Path) -> list[str]:
    """The recording step as an ENTRYPOINT for ``--runtime local``."""
    script = tmp_path / "step.py"
    script.write_text(STEP)
    return [sys.executable, str(script)]


def make_session(archive: Path, label: str, *, project: str = "PRECLIN",
                 subject: str = "mouse1", scans: dict[str, str] | None = None,
                 group: str | None = None, fields: dict[str, str] | None = None) -> Path:
    """A session ``<archive>/<project>/arc001/<label>`` and its rows in ``.xnatpic/``.

    ``scans`` maps scan ids to scan types (default a T1 scan 3 and an MSME scan 4, each
    with a DICOM resource; the MSME scan has a NIFTI resource too).
    """
    scans = scans if scans is not None else {"3": "T1_RARE", "4": "MSME"}
    session = archive / project / "arc001" / label
    for sid, stype in scans.items():
        for res in ("DICOM", "NIFTI") if stype == "MSME" else ("DICOM",):
            (session / "SCANS" / sid / res).mkdir(parents=True)
            (session / "SCANS" / sid / res / f"{res.lower()}.dat").write_bytes(b"y")
    (session / "RESOURCES" / "PARAVISION").mkdir(parents=True)
    (session / "RESOURCES" / "PARAVISION" / "acqp").write_text("##TITLE=x\n")
    with update_project(archive, project) as meta:
        meta.ensure_experiment(label, subject, xsiType="xnat:mrSessionData",
                               fields=fields or {})
        meta.ensure_subject(subject, group=group)
        for sid, stype in scans.items():
            meta.set_scan(label, sid, type=stype, series_description=f"{stype} axial",
                          modality="MR", quality="usable")
    return session
