"""mri2dicom step: ParaVision raw data in a session resource -> DICOM (+ XNAT import).

Run by the ENTRYPOINT of two images: ``xnatpic-mri2dicom`` with the command line of
``commands/mri2dicom.json`` and ``xnatpic-mri2dicom-deidentify``, whose command
(``commands/mri2dicom-deidentify.json``) always adds ``--deidentify``::

    run.py --input /input --output /output --resource PARAVISION --format dicom \\
        [--scans 3,9] [--jobs N] [--deidentify] [--import|--no-import] \\
        [--project P --subject S --session-label L]

1. finds the ParaVision study in ``INPUT/RESOURCES/<resource>/`` (a study folder, a zip,
   or several of them);
2. runs ``xnatpic convert SRC -o OUTPUT/dicom --report OUTPUT/report/report.json``
   (one folder per scan/reco: ``dicom/<subject>/<session>/<scan>[-<reco>]_<protocol>/``,
   :mod:`xnatpic.output_names`);
3. with ``--import`` and XNAT_HOST/XNAT_USER/XNAT_PASS set, zips the DICOM and sends it
   into the session through XNAT's import service, which makes one scan with one DICOM
   resource per series;
4. writes ``OUTPUT/report/provenance.json``.

With ``--deidentify`` the secret salt comes from the environment variable
``XNATPIC_DEIDENTIFY_SALT`` (at least 16 characters), which XNAT sets from its own
system property ``xnatpic.deidentify.salt`` through the Container Service ``secrets`` of
the de-identifying command (containers/mri2dicom-deidentify/README.md); the step refuses
to run without it.

Exit 0 when everything converted (and imported, when asked and possible), 1 otherwise;
the reason is the last line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from xnatpic.cli.main import main as xnatpic_main
from xnatpic.confine import EscapingPathError, confined
from xnatpic.conversion import SaltError, require_deidentify_salt
from xnatpic.errors import XnatpicError
from xnatpic.paravision.dataset import is_study_folder
from xnatpic.provenance import now, write_step_provenance
from xnatpic.step_output import check_output_writable
from xnatpic.xnat.rest import XnatClient, load_credentials

_log = logging.getLogger("mri2dicom")

STEP = "mri2dicom"


class StepError(XnatpicError):
    """The step cannot go on; the message says why."""


#: XNAT system property the salt secret reads (commands/mri2dicom-deidentify.json).
SALT_PROPERTY = "xnatpic.deidentify.salt"


def check_salt(deidentify: bool) -> None:
    """Refuse ``--deidentify`` without a usable salt, saying how XNAT provides it.

    Raises
    ------
    StepError
        Naming the variable, the minimum length and XNAT's system property.
    """
    if not deidentify:
        return
    try:
        require_deidentify_salt()
    except SaltError as exc:
        raise StepError(
            f"{exc}. Inside XNAT the salt reaches this container as a Container Service "
            f"secret: the XNAT administrator sets the system property {SALT_PROPERTY} "
            f"(e.g. -D{SALT_PROPERTY}=... in XNAT's JAVA_OPTS) and restarts XNAT; see "
            "containers/mri2dicom-deidentify/README.md") from exc


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line built by the Container Service."""
    p = argparse.ArgumentParser(prog=STEP, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", type=Path, default=Path("/input"))
    p.add_argument("--output", type=Path, default=Path("/output"))
    p.add_argument("--resource", default="PARAVISION")
    p.add_argument("--format", choices=("dicom", "enhanced"), default="dicom")
    p.add_argument("--scans")
    p.add_argument("--jobs", type=float)
    p.add_argument("--deidentify", action="store_true")
    p.add_argument("--import", dest="do_import", action="store_true", default=False)
    p.add_argument("--no-import", dest="do_import", action="store_false")
    p.add_argument("--project")
    p.add_argument("--subject")
    p.add_argument("--session-label")
    return p.parse_args(argv)


def _is_study(path: Path) -> bool:
    return is_study_folder(path)  # the reader's one rule (xnatpic.paravision.dataset)


def find_sources(input_dir: Path, resource: str) -> list[Path]:
    """Return the ParaVision studies (folders or zips) in ``INPUT/RESOURCES/<resource>``.

    Raises
    ------
    StepError
        When the resource is missing or holds no study.
    """
    folder = input_dir / "RESOURCES" / resource
    try:  # issue 16: the resource label may not leave the session's resources
        confined(input_dir / "RESOURCES", resource, what="resource")
    except EscapingPathError as exc:
        raise StepError(str(exc)) from None
    if not folder.is_dir():
        present = sorted(p.name for p in (input_dir / "RESOURCES").glob("*") if p.is_dir())
        raise StepError(f"{folder}: no resource {resource!r} in this session (resources: "
                        f"{', '.join(present) or 'none'}); upload the ParaVision study there "
                        "or set the 'resource' input")
    if _is_study(folder):
        return [folder]
    zips = sorted(folder.rglob("*.zip"))
    studies: list[Path] = []
    for root, dirs, _ in os.walk(folder):
        dirs.sort()
        if _is_study(Path(root)):
            studies.append(Path(root))
            dirs.clear()  # scans of this study are not studies of their own
    sources = zips + studies
    if not sources:
        raise StepError(f"{folder}: no ParaVision study (a folder with 'subject' or scan "
                        "folders with 'acqp', or a .zip of one)")
    return sources


def convert(sources: list[Path], args: argparse.Namespace) -> list[Path]:
    """Run ``xnatpic convert`` on each source; return the report files."""
    dicom_dir = args.output / "dicom"
    report_dir = args.output / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for i, source in enumerate(sources):
        report = report_dir / ("report.json" if i == 0 else f"report-{i + 1}.json")
        argv = ["convert", str(source), "-o", str(dicom_dir), "--format", args.format,
                "--report", str(report)]
        if args.scans:
            argv += ["--scans", args.scans]
        if args.jobs:
            argv += ["--jobs", str(int(args.jobs))]
        if args.deidentify:
            argv.append("--deidentify")
        _log.info("xnatpic %s", " ".join(argv))
        code = xnatpic_main(argv)
        if code != 0:
            raise StepError(f"xnatpic convert {source} exited {code}; see {report} and the "
                            "messages above")
        reports.append(report)
    if not any(dicom_dir.rglob("*.dcm")):
        raise StepError(f"{dicom_dir}: no DICOM written (no image scan in {sources})")
    return reports


def import_into_session(dicom_dir: Path, args: argparse.Namespace) -> str | None:
    """Send the DICOM into the session through XNAT's import service, if possible.

    Returns
    -------
    str or None
        XNAT's answer, or None when import was not asked for or no XNAT is set.
    """
    if not args.do_import:
        return None
    missing = [v for v in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS") if not os.environ.get(v)]
    if missing:
        _log.warning("%s not set: DICOM not imported into XNAT (kept as the MRI2DICOM "
                     "resource only)", ", ".join(missing))
        return None
    absent = [n for n, v in (("--project", args.project), ("--subject", args.subject),
                             ("--session-label", args.session_label)) if not v]
    if absent:
        raise StepError(f"--import needs {', '.join(absent)} (the wrapper derives them from "
                        "the session)")
    # the zip is written to disk and streamed from there (never held whole in memory)
    with XnatClient(load_credentials()) as client, \
            tempfile.TemporaryDirectory(prefix="mri2dicom-") as tmp:
        archive = Path(tmp) / "dicom.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(dicom_dir.rglob("*.dcm")):
                zf.write(path, path.relative_to(dicom_dir).as_posix())
        _log.info("importing %s into %s/%s/%s", archive.name, args.project, args.subject,
                  args.session_label)
        return client.import_dicom_zip(archive, project=args.project, subject=args.subject,
                                       session_label=args.session_label)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the step; return its exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"{STEP} %(levelname)s: %(message)s")
    args = parse_args(argv)
    started = now()
    try:
        check_output_writable(args.output)
        check_salt(args.deidentify)
        sources = find_sources(args.input, args.resource)
        reports = convert(sources, args)
        imported = import_into_session(args.output / "dicom", args)
    except XnatpicError as exc:
        print(f"{STEP}: error: {exc}", file=sys.stderr, flush=True)  # the last line
        return 1
    provenance = write_step_provenance(
        args.output / "report" / "provenance.json", STEP, args, started,
        # a de-identified run names no source: resource file names often name the animal
        sources=(["(de-identified)"] if args.deidentify
                 else [str(s.relative_to(args.input)) for s in sources]),
        reports=[r.name for r in reports],
        **{"dicom-files": sum(1 for _ in (args.output / "dicom").rglob("*.dcm"))},
        imported=imported,
    )
    _log.info("done: %d DICOM file(s)%s", provenance["dicom-files"],
              f", imported: {imported}" if imported else "")
    return 0


if __name__ == "__main__":
    sys.exit(run())
