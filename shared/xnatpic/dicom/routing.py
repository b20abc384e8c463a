"""XNAT's DICOM routing text: ``Project: P Subject: S Session: X`` in PatientComments.

When an import names no project (no ``PROJECT_ID``/``dest``, or one XNAT cannot
resolve, e.g. a DICOM C-STORE or a plain ``/data/services/import``), XNAT's default
identifier (``ClassicDicomObjectIdentifier`` → ``XnatDefaultDicomObjectIdentifier`` and
``Xnat15DicomProjectIdentifier`` in xnat-web ``org.nrg.dcm.id``) looks, in this order, at

1. PatientComments (0010,4000), 2. StudyComments (0032,4000), 3. AdditionalPatientHistory
   (0010,21B0) for ``Project:``/``Subject:``/``Session:`` assignments, then
4. StudyDescription and 5. AccessionNumber as a project id (subject from PatientName,
   session from PatientID),

taking the first value that names a project the user can reach
(``DbBackedProjectIdentifier.apply``). An assignment matches when the whole element reads
``[anything ending in a space, ',' or ';']Project: VALUE[a space, ',' or ';' and anything]``,
case-insensitively, VALUE being letters, digits, ``_`` and ``-``
(``ContainedAssignmentExtractor`` in dicom-xnat-util; ``.`` does not cross line breaks,
so the element must be one line). XNAT's own test sets ``Project:%s Subject:%s Session:%s``
(xnat-rest-tests ``TestDicomRouting.XnatDefaultRoutingTest.run``).

So the converter writes the routing assignments into PatientComments, the first place
XNAT looks: free text that happened to be in StudyDescription (a study name) can then no
longer send the data to another project. A subject comment the scanner recorded is kept
in front of them, on one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from xnatpic.errors import XnatpicError

__all__ = ["XnatRouting", "apply_routing", "read_routing"]

#: What ContainedAssignmentExtractor accepts as a value (``[\w\-]*``, ASCII word characters).
_VALUE = re.compile(r"[A-Za-z0-9_-]+")
#: PatientComments is LT: at most 10240 characters.
_LT_MAX = 10240


@dataclass(frozen=True)
class XnatRouting:
    """Where XNAT's default DICOM routing must land a study.

    Raises
    ------
    XnatpicError
        When a label holds a character XNAT's routing pattern stops at.
    """

    project: str
    subject: str
    session: str

    def __post_init__(self) -> None:
        for name in ("project", "subject", "session"):
            value = getattr(self, name)
            if not _VALUE.fullmatch(value):
                raise XnatpicError(
                    f"DICOM routing: {name} label {value!r} must hold only letters, digits, "
                    "'_' and '-' (what XNAT's 'Project:/Subject:/Session:' routing reads)")

    def text(self) -> str:
        """``Project: P Subject: S Session: X``."""
        return f"Project: {self.project} Subject: {self.subject} Session: {self.session}"


def apply_routing(ds: Dataset, routing: XnatRouting | None) -> None:
    """Write the routing assignments into ``ds.PatientComments`` (after de-identification,
    so they carry the labels given, pseudonyms with ``--deidentify``).

    An existing comment is kept before them, its line breaks made spaces (XNAT's pattern
    does not cross lines); earlier ``Project:`` words in it are harmless, as XNAT takes
    the last assignment of each name.
    """
    if routing is None:
        return
    previous = " ".join(str(ds.get("PatientComments", "") or "").split())
    text = routing.text()
    if previous:
        text = f"{previous[:_LT_MAX - len(text) - 2]}; {text}"
    ds.PatientComments = text


def read_routing(ds: Dataset) -> dict[str, str]:
    """The ``Project:``/``Subject:``/``Session:`` assignments XNAT's default routing reads
    from ``ds`` (PatientComments, StudyComments, AdditionalPatientHistory, first element
    holding any; the last assignment of each name wins), lower-case keys; empty when none.
    """
    for keyword in ("PatientComments", "StudyComments", "AdditionalPatientHistory"):
        text = " ".join(str(ds.get(keyword, "") or "").split())
        found = {m.group(1).lower(): m.group(2) for m in re.finditer(
            r"(?:^|[\s,;])(Project|Subject|Session):\s*([A-Za-z0-9_-]+)", text, re.I)}
        if found:
            return found
    return {}
