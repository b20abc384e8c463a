"""Deterministic DICOM UIDs derived from ParaVision's own UIDs.

Converting the same reco twice gives the same UIDs, so a re-upload replaces files in
XNAT instead of duplicating them. Derived UIDs are ``2.25.<n>`` UIDs (PS3.5 B.2) where
``n`` is a name-based (SHA-1, RFC 4122 version 5) UUID of the parts that identify the
object, so they are 44 characters at most and never collide with ParaVision's own UIDs or
with each other.

* StudyInstanceUID: VisuStudyUid itself (so every reco of a ParaVision study lands in one
  XNAT session, the same one ParaVision's own DICOM export would use), else
  SUBJECT_study_instance_uid, else a UID derived from the study id, date and subject;
* SeriesInstanceUID: derived from the study UID, VisuUid (one per reco), scan, reco,
  slice package and the storage kind (classic or enhanced);
* SOPInstanceUID: derived from the series UID and the instance number;
* FrameOfReferenceUID: derived from the study UID and the subject's position (one per
  placement of the animal in the magnet).

With de-identification a secret salt enters every derivation and the study UID is derived
too, so the new UIDs cannot be recomputed from the original ones without the salt.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

__all__ = ["SeriesUids", "derived_uid", "is_valid_uid"]

#: Namespace of xnatpic's name-based UUIDs (a fixed, arbitrary UUID).
NAMESPACE = uuid.UUID("6f1c7d7e-3c55-4b8e-9a43-5d2f0e0b7a11")
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_SEPARATOR = "\x1f"  # never in a UID or a ParaVision string: joins parts unambiguously


def is_valid_uid(value: str | None) -> bool:
    """True for a syntactically valid UID of at most 64 characters."""
    return bool(value) and len(value) <= 64 and bool(_UID.match(value))


def derived_uid(*parts: object) -> str:
    """``2.25.<int>`` from a version-5 UUID of ``parts`` (deterministic)."""
    name = _SEPARATOR.join(str(p) for p in parts)
    return f"2.25.{uuid.uuid5(NAMESPACE, name).int}"


@dataclass(frozen=True)
class SeriesUids:
    """The UIDs of one output series.

    Attributes
    ----------
    study, series, frame_of_reference : str
        StudyInstanceUID, SeriesInstanceUID, FrameOfReferenceUID.
    salt : str
        Extra entropy (the de-identification salt; empty otherwise).
    """

    study: str
    series: str
    frame_of_reference: str
    salt: str = ""

    @classmethod
    def derive(cls, *, study_source: str, reco_uid: str, scan: str, reco: str, package: int,
               storage: str, subject_position: str, salt: str | None = None) -> SeriesUids:
        """Derive the UIDs of a series.

        Parameters
        ----------
        study_source : str
            VisuStudyUid (or the fallback identity of the study).
        reco_uid : str
            VisuUid of the reco (may be empty).
        scan, reco : str
            Scan and reco folder names.
        package : int
            Slice package (0-based).
        storage : str
            ``classic`` or ``enhanced``.
        subject_position : str
            VisuSubjectPosition (the frame of reference changes when the animal moves).
        salt : str or None
            De-identification salt; None when not de-identifying. When de-identifying
            (even with an empty salt) the study UID is derived as well.
        """
        anonymous = salt is not None
        salt = salt or ""
        if anonymous or not is_valid_uid(study_source):
            study = derived_uid("study", study_source, salt, "anonymous" if anonymous else "")
        else:
            study = study_source
        series = derived_uid("series", study, reco_uid, scan, reco, package, storage, salt)
        frame_of_reference = derived_uid("frame-of-reference", study, subject_position, salt)
        return cls(study, series, frame_of_reference, salt)

    def instance(self, number: int) -> str:
        """SOPInstanceUID of instance ``number`` of the series."""
        return derived_uid("instance", self.series, number, self.salt)
