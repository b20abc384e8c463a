"""Subject and group of a project's sessions from XNAT's REST API.

On XNAT the mounted project folder holds no ``session.json``: the subject of each session
and the subject's group live in XNAT's database. With XNAT_HOST, XNAT_USER and XNAT_PASS
(which the Container Service sets for every container) they are read from
``/data/projects/{p}/experiments`` and ``/data/projects/{p}/subjects``.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from typing import Any

from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.rest import XnatClient, load_credentials

__all__ = ["fetch_project_metadata", "xnat_available"]

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


def fetch_project_metadata(project: str, client: XnatClient | None = None
                           ) -> dict[str, dict[str, str]]:
    """Session label -> ``{"subject": label, "group": group}`` for a project.

    Raises
    ------
    XnatRequestError
        When XNAT cannot be reached or answers unexpectedly.
    """
    client = client or XnatClient(load_credentials())
    quoted = urllib.parse.quote(project, safe="")
    subjects = _rows(client, f"/data/projects/{quoted}/subjects", "ID,label,group")
    by_id = {str(s.get("ID", "")): s for s in subjects}
    sessions = _rows(client, f"/data/projects/{quoted}/experiments",
                     "ID,label,subject_ID,subject_label")
    out: dict[str, dict[str, str]] = {}
    for row in sessions:
        subject = by_id.get(str(row.get("subject_ID", "")), {})
        out[str(row.get("label", ""))] = {
            "subject": str(row.get("subject_label") or subject.get("label") or ""),
            "group": str(subject.get("group") or ""),
        }
    _log.info("XNAT: subject and group of %d session(s) of %s", len(out), project)
    return out
