"""Convert an IVIS click or sequence folder to DICOM, with the project's conversion report.

Output tree ``<output>/<subject>/<session>/<NN>-<kind>/`` as for ParaVision studies:
subject = the ``Animal Number`` user label (else ``subject``), session = the click number
(or the sequence folder name); with ``deidentify`` the pseudonym and study pseudonym the
DICOM carries. One result per series in the report (``scan`` = series number, ``reco`` =
image kind); a failure fails the study (an unreadable TIFF stops its click).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from xnatpic.conversion import ConversionReport, RecoResult, deidentify_salt, sanitize_label
from xnatpic.dicom.deidentify import DeidentifyProfile
from xnatpic.dicom.routing import XnatRouting
from xnatpic.optical.acquisition import IvisStudy, open_ivis
from xnatpic.optical.dicom import write_ivis_dicom
from xnatpic.optical.errors import OpticalError

__all__ = ["convert_ivis", "ivis_output_labels", "ivis_summary"]


def ivis_output_labels(study: IvisStudy, salt: str | None = None) -> tuple[str, str]:
    """Subject and session folder names (pseudonyms with a de-identification salt)."""
    if salt is not None:
        profile = DeidentifyProfile(salt=salt)
        return (profile.pseudonym(study.key, study.first.labels.animal),
                profile.study_pseudonym(study.key))
    session = study.path.name if study.sequence_info is not None else study.first.click_number
    return (sanitize_label(study.first.labels.animal, "subject"),
            sanitize_label(session, "session"))


def convert_ivis(source: str | Path, output: str | Path, *, deidentify: bool = False,
                 routing: XnatRouting | None = None) -> ConversionReport:
    """Convert an IVIS folder to DICOM (Secondary Capture; see :mod:`.dicom`).

    Raises
    ------
    OpticalError
        When ``source`` is not an IVIS click or sequence folder (reading problems of a
        folder that is one end as ``failed`` results).
    SaltError
        With ``deidentify`` and no usable salt.
    """
    source, output = Path(source), Path(output)
    report = ConversionReport(str(source), str(output), "dicom")
    started = time.monotonic()
    study = open_ivis(source)
    salt = deidentify_salt() if deidentify else None
    subject, session = ivis_output_labels(study, salt)
    final = output / subject / session
    staging = final.with_name(f".{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        profile = DeidentifyProfile(salt=salt) if salt is not None else None
        written = write_ivis_dicom(study, staging, deidentify=profile, routing=routing)
    except OpticalError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        report.results.append(RecoResult("-", "-", "failed", str(exc), method="IVIS"))
        return report
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    seconds = round(time.monotonic() - started, 3)
    for series in written:
        report.results.append(RecoResult(
            str(series.series_number), series.kind, "converted",
            output=str(final / series.folder.name), files=len(series.files),
            series_uids=[series.series_instance_uid], seconds=seconds, method="IVIS"))
    return report


def ivis_summary(study: IvisStudy) -> dict[str, Any]:
    """A JSON-ready summary of an IVIS folder (for ``xnatpic info``)."""
    clicks = []
    for acq in study.acquisitions:
        images = {}
        for kind, image in acq.images.items():
            info = image.info
            images[kind] = {
                "file": info.file, "matrix": list(image.shape),
                "pixel_spacing_mm": image.pixel_spacing_mm, "binning": info.binning,
                "exposure_s": info.exposure_s, "f_number": info.f_number,
                "fov_cm": info.fov_cm, "emission_filter": info.emission_filter,
                "excitation_filter": info.excitation_filter,
                "ccd_temperature_c": info.ccd_temperature_c}
        cal = acq.calibration
        clicks.append({
            "click_number": acq.click_number, "path": str(acq.path),
            "acquired": acq.acquired.isoformat() if acq.acquired else None,
            "signal": acq.signal.info.kind,
            "calibration": {"label": cal.label, "unit": cal.unit, "per_count": cal.per_count},
            "labels": dict(acq.labels.values), "camera": vars(acq.camera), "images": images,
            "rois": sum(k.casefold().startswith("roi") for sec in
                        (acq.analyzed.sections_named("ROIs") if acq.analyzed else [])
                        for k in sec.entries)})
    return {"path": str(study.path), "format": "IVIS Living Image",
            "sequence": study.sequence_info is not None, "clicks": clicks}
