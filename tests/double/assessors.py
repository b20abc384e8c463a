"""Image assessors of the XNAT double: ROI collections as XNAT's viewer saves them.

The OHIF viewer's ROI export (radiologics-kate/OHIF-Viewer-XNAT,
Packages/icr-xnat-roi/client/lib/classes/DICOMSEGExporter.js @046342d) makes an ROI
collection in three requests on the session's assessor URI
``/data/archive/projects/P/subjects/S/experiments/E/assessors/<ID>`` (:27), ID
``RoiCollection_<random>`` (:204):

1. ``PUT <assessor>?inbody=true`` with the ``RoiCollection`` XML (:38-40, :169-194:
   ``label``, ``collectionType`` SEG, ``references/seriesUID``, ``name``): an
   ``icr:roiCollectionData`` assessor;
2. ``PUT <assessor>/resources/SEG?format=DICOM...`` (:52): the resource, labelled by the
   collection type;
3. ``PUT <assessor>/resources/SEG/files/<name>.dcm?inbody=true`` (:64): the file.

Its reader lists the session's assessors (``GET .../assessors?format=json``, rows with
``xsiType``, AsyncMaskFetcher.js @0aa62c5 :499) and each collection's files (``GET
<assessor>/files?format=json``, rows whose ``collection`` is the resource label, :405,
:431).

XNAT keeps an image assessor's files in ``<session dir>/ASSESSORS/<archive directory name
(its label)>/<resource label>/`` (container-service Assessor.java:110-118), which
:func:`write_assessors` reproduces in a local archive, with the assessor's row (id,
label, xsiType) in the archive's metadata as XNAT's database holds it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xnatpic.xnat.metadata import update_project

if TYPE_CHECKING:
    from tests.double.server import Session

__all__ = ["StoredAssessor", "route", "write_assessors"]

Answer = tuple[int, Any, str, "dict[str, str] | None"]

#: xsi:type of an assessor document by its root element (the icr schema's element
#: ``RoiCollection`` is of type ``icr:roiCollectionData``).
ROOT_TYPES = {"RoiCollection": "icr:roiCollectionData"}


@dataclass
class StoredAssessor:
    """One image assessor: its row, document and resources (label -> name -> bytes)."""

    id: str
    label: str
    xsi: str
    xml: bytes
    fields: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, bytes]] = field(default_factory=dict)


def _parse(body: bytes, ident: str) -> tuple[str, str, dict[str, str]]:
    """(xsiType, label, simple fields) of an assessor document."""
    from tests.double.server import HttpError

    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise HttpError(400, f"cannot parse the assessor document: {exc}") from exc
    local = root.tag.rpartition("}")[2].rpartition(":")[2]
    xsi = ROOT_TYPES.get(local)
    if xsi is None:
        raise HttpError(400, f"unknown assessor element {local!r}")
    fields = {child.tag.rpartition("}")[2]: (child.text or "").strip()
              for child in root if len(child) == 0}
    return xsi, root.get("label") or ident, fields


def route(session: Session, method: str, rest: str, query: dict[str, str], body: bytes
          ) -> Answer:
    """Answer ``/assessors...`` requests of one session."""
    from tests.double.server import HttpError

    stored: dict[str, StoredAssessor] = session.assessors
    if rest == "/assessors" and method == "GET":
        return 200, {"ResultSet": {"Result": [
            {"ID": a.id, "label": a.label, "xsiType": a.xsi, "session_ID": session.id,
             "project": session.project,
             "URI": f"/data/experiments/{a.id}"} for a in stored.values()],
            "totalRecords": str(len(stored))}}, "application/json", None
    m = re.fullmatch(r"/assessors/([^/]+)(/.*)?", rest)
    if not m:
        raise HttpError(404, f"no route {method} {rest}")
    ident, sub = m.group(1), m.group(2) or ""
    assessor = stored.get(ident) or next((a for a in stored.values() if a.label == ident),
                                         None)
    if not sub:
        if method == "PUT":
            if query.get("inbody", "").lower() != "true" or not body:
                raise HttpError(400, "an assessor is created from its XML document "
                                     "(inbody=true)")
            xsi, label, fields = _parse(body, ident)
            created = assessor is None
            stored[ident] = StoredAssessor(ident, label, xsi, body, fields,
                                           assessor.resources if assessor else {})
            return (201 if created else 200), ident, "text/plain", None
        if assessor is None:
            raise HttpError(404, f"no assessor {ident}")
        return 200, {"items": [{"meta": {"xsi:type": assessor.xsi},
                                "data_fields": {"ID": assessor.id, "label": assessor.label,
                                                **assessor.fields}}]}, \
            "application/json", None
    if assessor is None:
        raise HttpError(404, f"no assessor {ident}")
    if sub == "/files" and method == "GET":
        return 200, {"ResultSet": {"Result": [
            {"Name": name, "Size": str(len(data)), "collection": res,
             "URI": f"/data/experiments/{session.id}/assessors/{assessor.id}/resources/"
                    f"{res}/files/{name}"}
            for res, files in assessor.resources.items() for name, data in files.items()]}},\
            "application/json", None
    m = re.fullmatch(r"/resources/([^/]+)(?:/files(?:/(.+))?)?", sub)
    if not m:
        raise HttpError(404, f"no route {method} {rest}")
    res, name = m.group(1), m.group(2)
    if method == "PUT" and name is None:
        if res in assessor.resources:
            raise HttpError(409, "Specified resource already exists.")
        assessor.resources[res] = {}
        return 201, res, "text/plain", None
    if method == "PUT":
        assessor.resources.setdefault(res, {})[name] = body
        return 200, "", "text/plain", None
    files = assessor.resources.get(res)
    if files is None or (name is not None and name not in files):
        raise HttpError(404, f"no resource {res}" if files is None else f"no file {name}")
    if name is None:
        return 200, {"ResultSet": {"Result": [{"Name": n, "Size": str(len(d))}
                                              for n, d in files.items()]}}, \
            "application/json", None
    return 200, files[name], "application/octet-stream", None


def write_assessors(session: Session, session_dir: Path) -> list[Path]:
    """Store the session's assessors in a local archive as XNAT keeps them.

    Files go to ``session_dir/ASSESSORS/<label>/<resource>/<name>`` and each assessor's
    row (id, label, xsiType) to the archive's metadata (``<archive>/.xnatpic``), the
    session folder being ``<archive>/<project>/arc001/<label>``.

    Returns
    -------
    list of Path
        The assessor folders written.
    """
    archive = session_dir.parent.parent.parent
    written = []
    with update_project(archive, session_dir.parent.parent.name) as meta:
        row = meta.ensure_experiment(session_dir.name, session.subject)
        rows = [a for a in row.get("assessors", []) if a.get("id") not in session.assessors]
        for assessor in session.assessors.values():
            folder = session_dir / "ASSESSORS" / assessor.label
            for res, files in assessor.resources.items():
                for name, data in files.items():
                    path = folder / res / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
            rows.append({"id": assessor.id, "label": assessor.label, "xsiType": assessor.xsi})
            written.append(folder)
        row["assessors"] = rows
    return written
