"""XNAT session and scan types of a DICOM study, by modality: one mapping for every target.

XNAT's DICOM import (dicom-xnat's session builders) types a session by its modality and
falls back to ``xnat:otherDicomSessionData``; the server client (:mod:`.server`) checks an
existing session against it and the archive target (:mod:`.archive_target`) records it,
so a local archive holds the types a server would.

Scans follow their session type (``xnat:mrSessionData`` → ``xnat:mrScanData``...), except
Secondary Capture images, which XNAT stores as ``xnat:scScanData`` (our IVIS conversion
writes Secondary Capture with Modality ``OT``: :mod:`xnatpic.optical.dicom`), and scans
of a modality with no type of its own (``xnat:otherDicomScanData``).
"""

from __future__ import annotations

__all__ = ["SESSION_XSI", "scan_xsi", "session_xsi"]

SESSION_XSI = {"MR": "xnat:mrSessionData", "PT": "xnat:petSessionData",
               "CT": "xnat:ctSessionData", "US": "xnat:usSessionData",
               "OPT": "xnat:optSessionData", "OP": "xnat:opSessionData",
               "XA": "xnat:xaSessionData", "CR": "xnat:crSessionData",
               "DX": "xnat:dxSessionData", "MG": "xnat:mgSessionData",
               "NM": "xnat:nmSessionData"}
#: Modalities of Secondary Capture images (the IVIS conversion's ``OT``; ``SC``).
_SECONDARY_CAPTURE = {"OT", "SC"}


def session_xsi(modality: str) -> str:
    """XNAT session type of a study whose session modality is ``modality``.

    Examples
    --------
    >>> session_xsi("CT")
    'xnat:ctSessionData'
    >>> session_xsi("OT")
    'xnat:otherDicomSessionData'
    """
    return SESSION_XSI.get(modality.upper(), "xnat:otherDicomSessionData") if modality \
        else "xnat:mrSessionData"


def scan_xsi(modality: str) -> str:
    """XNAT scan type of a series of modality ``modality``.

    Examples
    --------
    >>> scan_xsi("PT"), scan_xsi("OT"), scan_xsi("SR")
    ('xnat:petScanData', 'xnat:scScanData', 'xnat:otherDicomScanData')
    """
    if modality.upper() in _SECONDARY_CAPTURE:
        return "xnat:scScanData"
    return session_xsi(modality).replace("SessionData", "ScanData")
