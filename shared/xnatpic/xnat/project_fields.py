"""Subject, group and timepoint of a project's sessions from XNAT's REST API.

The mounted project folder holds only files: the subject of each session, the subject's
group and the session's custom fields (``timepoint``) live in XNAT's database. With
XNAT_HOST, XNAT_USER and XNAT_PASS (which the Container Service sets for every container,
and ``xnatpic launch`` points at the local archive's metadata) they are read from
``/data/projects/{p}/subjects``, ``/data/projects/{p}/experiments`` and each session's
``/data/experiments/{id}?format=json`` (custom fields are its ``fields/field`` children,
as xnat-rest-tests TestDicomDataExtraction.java:111-116 reads them).
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from typing import Any

from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.rest import XnatClient, load_credentials

__all__ = ["custom_fields", "fetch_project_metadata", "xnat_available"]

_log = logging.getLogger(__name__)


def xnat_available() -> bool:
    """Whether XNAT_HOST, XNAT_USER and XNAT_PASS are all set."""
    return all(os.environ.get(v) for v in ("XNAT_HOST", "XNAT_USER", "XNAT_PASS"))


def _rows(client: XnatClient, path: str, columns: str) -> list[dict[str, Any]]:
    answer = client.json("GET", path, params={"format": "json", "columns": columns})
    try:
        return list(answer["ResultSet"]["Result"])
    except (TypeError, KeyError) as exc:
        raise XnatRequestError(f"GET {path}: expected a ResultSet") from exc


def custom_fields(item: dict[str, Any]) -> dict[str, str]:
    """The custom fields (name -> value) of an ``items[0]`` of XNAT's JSON format.

    Examples
    --------
    >>> custom_fields({"children": [{"field": "fields/field", "items": [
    ...     {"data_fields": {"name": "timepoint", "field": "d0"}}]}]})
    {'timepoint': 'd0'}
    """
    out: dict[str, str] = {}
    for child in item.get("children") or []:
        if isinstance(child, dict) and child.get("field") == "fields/field":
            for entry in child.get("items") or []:
                data = entry.get("data_fields", {}) if isinstance(entry, dict) else {}
                if data.get("name"):
                    out[str(data["name"])] = str(data.get("field", ""))
    return out


def _session_fields(client: XnatClient, ident: str) -> dict[str, str]:
    path = f"/data/experiments/{urllib.parse.quote(ident, safe='')}"
    answer = client.json("GET", path, params={"format": "json"})
    try:
        item = answer["items"][0]
    except (TypeError, KeyError, IndexError) as exc:
        raise XnatRequestError(f"GET {path}: expected XNAT's items format") from exc
    return custom_fields(item)


def fetch_project_metadata(project: str, client: XnatClient | None = None
                           ) -> dict[str, dict[str, str]]:
    """Session label -> ``{"subject": label, "group": group, "timepoint": tp}``.

    Raises
    ------
    XnatRequestError
        When XNAT cannot be reached or answers unexpectedly.
    """
    if client is None:
        with XnatClient(load_credentials()) as own:
            return fetch_project_metadata(project, own)
    quoted = urllib.parse.quote(project, safe="")
    subjects = _rows(client, f"/data/projects/{quoted}/subjects", "ID,label,group")
    by_id = {str(s.get("ID", "")): s for s in subjects}
    sessions = _rows(client, f"/data/projects/{quoted}/experiments",
                     "ID,label,subject_ID,subject_label")
    out: dict[str, dict[str, str]] = {}
    for row in sessions:
        subject = by_id.get(str(row.get("subject_ID", "")), {})
        fields = _session_fields(client, str(row.get("ID", ""))) if row.get("ID") else {}
        out[str(row.get("label", ""))] = {
            "subject": str(row.get("subject_label") or subject.get("label") or ""),
            "group": str(subject.get("group") or ""),
            "timepoint": fields.get("timepoint", ""),
        }
    _log.info("XNAT: subject, group and timepoint of %d session(s) of %s", len(out), project)
    return out
