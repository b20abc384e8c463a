"""What names a map run: its key, the subject and session it belongs to, and its text
made fit to publish (relative paths, no float noise, valid JSON).

- :func:`run_key`: ``<method>-scan<source scan id>`` in lower case, the run's folder in
  the step's resource (two T1 maps of one session, VTR and IR, coexist).
- :func:`session_identity`: subject and session as XNAT's DICOM routing assigned them
  (``Project:``/``Subject:``/``Session:`` in PatientComments; :mod:`xnatpic.dicom.routing`),
  else the archive folder's name for the session and PatientName/PatientID (XNAT's
  fallback routing: subject from PatientName, session from PatientID).
- :class:`PathScrubber`: host paths of the mounts replaced by ``/input``, ``/output`` or
  made relative to them.
- :func:`tidy`: JSON-ready values: floats to 12 significant digits (``0.1 + 0.2`` is
  ``0.3``), NaN and infinities as null, numpy scalars and paths as plain values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from xnatpic.dicom.routing import read_routing

__all__ = ["PathScrubber", "run_key", "session_identity", "tidy"]

#: Types with no text inside (numbers, None): what :class:`PathScrubber` leaves alone.
_PLAIN = frozenset({float, int, bool, type(None)})

#: Fit method of steps whose parameters name none.
_STEP_METHODS = {"perfusion": "fair"}


def run_key(step: str, parameters: dict[str, Any], scans: dict[str, str]) -> str:
    """``<method>-scan<id>``, lower case, only letters, digits and ``-``.

    The method is the fit actually used: ``parameters["method"]`` (t2map, t2starmap,
    t1map, adcmap), the B0 method for cest, ``fair`` for perfusion; the scan is
    ``scans["source"]``.

    Examples
    --------
    >>> run_key("t1map", {"method": "vtr"}, {"source": "90001"})
    'vtr-scan90001'
    >>> run_key("cest", {"b0_method": "lorentzian"}, {"source": "7", "wassr": "8"})
    'lorentzian-scan7'
    """
    method = str(parameters.get("method") or parameters.get("b0_method")
                 or _STEP_METHODS.get(step, step))
    key = f"{method}-scan{scans['source']}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", key).strip("-")


def session_identity(header: Dataset, session_dir: Path | None = None) -> dict[str, str]:
    """``{"label", "subject", "from"}`` of the session a series belongs to (keys absent
    when unknown).

    Parameters
    ----------
    header : pydicom Dataset
        A header of the session's series.
    session_dir : Path, optional
        The session folder as mounted; its name is the session label when it sits in an
        archive (``<project>/arc001/<session>``).
    """
    routing = read_routing(header)
    out: dict[str, str] = {}
    sources = []
    if routing.get("session"):
        out["label"] = routing["session"]
    elif session_dir is not None and re.fullmatch(r"arc\d+", Path(session_dir).parent.name):
        out["label"] = Path(session_dir).name
        sources.append("session: archive folder")
    elif str(header.get("PatientID", "") or ""):
        out["label"] = str(header.PatientID)
        sources.append("session: PatientID")
    if routing.get("subject"):
        out["subject"] = routing["subject"]
    elif str(header.get("PatientName", "") or "").strip("^ "):
        out["subject"] = " ".join(str(header.PatientName).replace("^", " ").split())
        sources.append("subject: PatientName")
    if routing:
        sources.insert(0, "DICOM routing (PatientComments)")
    if out:
        out["from"] = "; ".join(sources)
    return out


@dataclass(frozen=True)
class PathScrubber:
    """Replace the host paths of the step's mounts in text.

    A string naming a mount root becomes ``/input`` or ``/output``; a path under it
    becomes relative to it (``SCANS/2/DICOM``).
    """

    input_root: Path | None = None
    output_root: Path | None = None

    @cached_property
    def _patterns(self) -> list[tuple[str, str, re.Pattern[str], re.Pattern[str]]]:
        """Per mount path form, longest first: (form, mount, path-under-it pattern,
        the-path-itself pattern); computed once (``resolve`` is a system call)."""
        pairs = []
        for root, name in ((self.input_root, "/input"), (self.output_root, "/output")):
            if root is None:
                continue
            forms = {str(Path(root).resolve())} | ({str(root)} if Path(root).is_absolute()
                                                  else set())
            pairs += [(form.rstrip("/"), name) for form in forms if form.rstrip("/")]
        return [(form, name, re.compile(re.escape(form) + "/"),
                 re.compile(re.escape(form) + r"(?![\w.-])"))
                for form, name in sorted(pairs, key=lambda p: -len(p[0]))]

    def text(self, value: str) -> str:
        """``value`` with every mount path replaced."""
        for form, name, under, itself in self._patterns:
            if value == form:
                return name
            if form not in value:
                continue
            value = itself.sub(name, under.sub("", value))
        return value

    def __call__(self, value: Any) -> Any:
        """Every string inside ``value`` (dicts, lists, paths) scrubbed."""
        if type(value) in _PLAIN:  # most of a run's statistics: nothing to scrub
            return value
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, (str, Path)):
            return self.text(str(value))
        return value


def _rounded(number: float) -> float | None:
    """``number`` to 12 significant digits; None when not finite (JSON has no NaN)."""
    return float(f"{number:.12g}") if math.isfinite(number) else None


def tidy(value: Any) -> Any:
    """``value`` ready for ``json.dumps`` (see the module docstring)."""
    kind = type(value)  # the common exact types first, as the checks below treat them
    if kind is float:
        return _rounded(value)
    if kind is str or kind is int or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(v) for v in value]
    if isinstance(value, np.ndarray):
        return tidy(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _rounded(float(value))
    if isinstance(value, Path):
        return str(value)
    return value
