"""``write_dicom_series``: one ParaVision reco → DICOM series (+ JSON sidecars).

One output series per reco, and one per slice package when the reco holds several
imaging planes (a 3-plane localizer gives 3 series). Each series is written as classic
MR Image Storage (one file per image, ``<stem>_<number:05d>.dcm``) or, with
``enhanced=True``, as one Enhanced MR Image Storage file (``<stem>.dcm``), plus
``<stem>.paravision.json`` holding every ParaVision parameter of the reco; ``<stem>`` is
``<scan>-<reco>_<protocol>[_pack<n>]`` (:mod:`xnatpic.output_names`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from xnatpic.dicom.classic import write_classic
from xnatpic.dicom.context import SeriesContext
from xnatpic.dicom.deidentify import DeidentifyProfile
from xnatpic.dicom.derived import ENHANCED_MR_IMAGE_STORAGE, MR_IMAGE_STORAGE
from xnatpic.dicom.engine import resolve
from xnatpic.dicom.enhanced import write_enhanced
from xnatpic.dicom.modules import GENERAL_SERIES
from xnatpic.dicom.pixels import choose_encoding
from xnatpic.dicom.routing import XnatRouting
from xnatpic.dicom.sidecar import write_sidecar
from xnatpic.dicom.transforms import text
from xnatpic.dicom.uids import SeriesUids
from xnatpic.errors import ConversionError
from xnatpic.output_names import series_stem
from xnatpic.paravision.series import ImageSeries

__all__ = ["WrittenSeries", "write_dicom_series"]

_log = logging.getLogger(__name__)
_DESCRIPTION = next(r for r in GENERAL_SERIES.rows if r.keyword == "SeriesDescription")


@dataclass(frozen=True)
class WrittenSeries:
    """One DICOM series written by :func:`write_dicom_series`.

    Attributes
    ----------
    series_instance_uid, study_instance_uid : str
        The series' UIDs.
    package : int
        Slice package (0-based) the series holds.
    files : list of Path
        The DICOM files (classic: one per image in InstanceNumber order; enhanced: one).
    frame_count : int
        Number of images (classic) or frames (enhanced).
    sidecar : Path
        The ``.paravision.json`` sidecar.
    modality : str
        ``MR``.
    sop_class_uid : str
        MR Image Storage or Enhanced MR Image Storage.
    series_number : int
        SeriesNumber written.
    series_description : str or None
        SeriesDescription written.
    image_indices : list of int
        :attr:`Image.index` of each image (classic file order / enhanced frame order).
    """

    series_instance_uid: str
    study_instance_uid: str
    package: int
    files: list[Path]
    frame_count: int
    sidecar: Path
    modality: str = "MR"
    sop_class_uid: str = MR_IMAGE_STORAGE
    series_number: int = 0
    series_description: str | None = None
    image_indices: list[int] = field(default_factory=list)


def _study_source(ctx_params: dict) -> str:
    visu, subject = ctx_params["visu"], ctx_params["subject"]
    for params, name in ((visu, "VisuStudyUid"), (subject, "SUBJECT_study_instance_uid")):
        if params is not None and text(params.get(name)):
            return str(text(params.get(name)))
    parts = [str(visu.get(n, "")) for n in ("VisuStudyId", "VisuStudyDate", "VisuSubjectId")]
    return "|".join(parts)


def write_dicom_series(series: ImageSeries, out_dir: Path, *, enhanced: bool = False,
                       deidentify: DeidentifyProfile | None = None,
                       routing: XnatRouting | None = None) -> list[WrittenSeries]:
    """Write a reco as DICOM: one series per slice package, with JSON sidecars.

    Parameters
    ----------
    series : ImageSeries
        The reco, from :func:`xnatpic.paravision.series.load_series`.
    out_dir : Path
        Existing folder to write into.
    enhanced : bool
        One Enhanced MR Image Storage file per series instead of classic MR files.
    deidentify : DeidentifyProfile or None
        Apply the animal de-identification profile.
    routing : XnatRouting or None
        Write ``Project: Subject: Session:`` into PatientComments for XNAT's DICOM routing
        (after de-identification: give it the pseudonymised labels).

    Returns
    -------
    list of WrittenSeries
        One per slice package, in package order.

    Raises
    ------
    ConversionError
        When ``out_dir`` is not a folder, a Type 1 attribute has no source value, or a
        file cannot be written; the message names the reco.
    ParaVisionError
        When the reco's parameters are inconsistent (raised by the reader).
    """
    out_dir = Path(out_dir)
    reco = series.reco
    if not out_dir.is_dir():
        raise ConversionError(f"{reco.path}: output folder {out_dir} does not exist")
    if not series.images:
        raise ConversionError(f"{reco.path}: the reco has no images to write")
    encoding = choose_encoding(series, series.images)
    _log.info("%s: %s", reco.label, encoding.reason)
    storage = "enhanced" if enhanced else "classic"
    written: list[WrittenSeries] = []
    for package in range(series.package_count):
        images = series.package_images(package)
        params = {"visu": reco.visu_pars, "subject": reco.scan.study.subject}
        uids = SeriesUids.derive(
            study_source=_study_source(params),
            reco_uid=str(reco.visu_pars.get("VisuUid", "")),
            scan=reco.scan.id, reco=reco.number, package=package, storage=storage,
            subject_position=str(reco.visu_pars.get("VisuSubjectPosition", "")),
            salt=None if deidentify is None else deidentify.uid_key(),
        )
        ctx = SeriesContext(series, package, images, uids, encoding, enhanced, deidentify,
                            routing)
        if enhanced:
            files, indices = write_enhanced(ctx, out_dir)
        else:
            files, indices = write_classic(ctx, out_dir)
        sidecar = write_sidecar(
            ctx, out_dir / f"{series_stem(series, package, deidentify)}.paravision.json",
            files, indices)
        description = resolve(_DESCRIPTION.sources, _DESCRIPTION.transform, ctx)
        if deidentify is not None and not deidentify.keep_descriptions:
            description = None
        written.append(WrittenSeries(
            series_instance_uid=uids.series, study_instance_uid=uids.study, package=package,
            files=files, frame_count=len(indices), sidecar=sidecar,
            sop_class_uid=ENHANCED_MR_IMAGE_STORAGE if enhanced else MR_IMAGE_STORAGE,
            series_number=int(ctx.series_value("series_number")),
            series_description=description, image_indices=indices,
        ))
    return written
