"""Names of conversion outputs: scan, reco and protocol, safe on every file system.

Like dcm2niix (``-f %s_%p``: series number and protocol) and brkraw (``tonii``:
``<study>_<scan>_<reco>``), every name carries the scan number and the protocol:

* folder of a reco: ``<scan>_<protocol>``, ``<scan>-<reco>_<protocol>`` for recos other
  than 1 (``9_T2_TurboRARE``, ``9-2_T2_TurboRARE``);
* files: ``<scan>-<reco>_<protocol>`` then, per slice package when the reco has several
  imaging planes, ``_pack<n>`` (n = 1, 2...), then

  - classic DICOM: ``_<instance:05d>.dcm`` (``9-1_T2_TurboRARE_00001.dcm``),
  - enhanced DICOM: ``.dcm``,
  - ParaVision sidecar: ``.paravision.json``,
  - NIfTI: ``.nii.gz`` (or ``.nii``), ``.json``, ``.bval``, ``.bvec``.

The protocol is DICOM's ProtocolName (VisuAcquisitionProtocol, else ACQ_protocol_name)
made safe by :func:`safe_name_part`: accents folded (``é`` → ``e``), every run of other
characters (spaces, path separators, control and non-Latin characters, ``_``) one ``_``, no
leading or trailing ``_ . -``, at most :data:`PROTOCOL_MAX` characters; a protocol with
nothing left is left out (``9``, ``9-1_00001.dcm``). The same reco always gets the same
names.

With ``--deidentify`` the protocol is the one the de-identified ProtocolName carries
(cleaned of the study's identifying words, dates, addresses and numbers: PS3.15 Clean
Descriptors, ``docs/deidentification.md``), or left out when the profile removes
descriptions.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from xnatpic.errors import XnatpicError

if TYPE_CHECKING:
    from xnatpic.dicom.deidentify import DeidentifyProfile
    from xnatpic.paravision.dataset import Reco
    from xnatpic.paravision.series import ImageSeries

__all__ = ["PROTOCOL_MAX", "file_stem", "folder_key", "folder_name", "package_stem",
           "protocol_name", "safe_name_part", "series_stem"]

#: Most characters of the protocol part of a name (dcm2niix's and brkraw's names stay
#: well under file-system limits the same way).
PROTOCOL_MAX = 48

#: Runs of anything but letters, digits, ``.`` and ``-`` (underscores included: a run
#: becomes one ``_``).
_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")
_EDGES = "._-"


def safe_name_part(text: str, limit: int = PROTOCOL_MAX) -> str:
    """``text`` as a file-name part: ASCII letters, digits, ``_ . -`` only.

    Accents are folded (NFKD, combining marks dropped), every run of any other character
    (and of ``_``) becomes one ``_``, leading and trailing ``_ . -`` go, and the result is cut to
    ``limit`` characters (never ending in ``_ . -``). Never holds a path separator, a
    control character or ``..`` alone; may be empty.
    """
    folded = "".join(c for c in unicodedata.normalize("NFKD", text)
                     if not unicodedata.combining(c))
    return _UNSAFE.sub("_", folded).strip(_EDGES)[:limit].strip(_EDGES)


def protocol_name(reco: Reco) -> str:
    """The reco's protocol as DICOM's ProtocolName takes it (VisuAcquisitionProtocol,
    else ACQ_protocol_name); empty when ParaVision recorded none."""
    acqp = reco.scan.acqp
    name = reco.visu_pars.text("VisuAcquisitionProtocol") or (
        acqp.text("ACQ_protocol_name") if acqp is not None else None)
    return name or ""


def _protocol_part(reco: Reco, deidentify: DeidentifyProfile | None) -> str:
    try:
        protocol = protocol_name(reco)
    except XnatpicError:
        # Unreadable parameters: the reco's own conversion reports them (naming must
        # not stop the other recos).
        return ""
    if deidentify is not None:
        if not deidentify.keep_descriptions:
            return ""
        from xnatpic.dicom.deidentify_text import clean_text, reco_identity_tokens

        protocol = clean_text(protocol, reco_identity_tokens(reco))
    return safe_name_part(protocol)


def _join(base: str, protocol: str) -> str:
    return f"{base}_{protocol}" if protocol else base


def folder_name(reco: Reco, deidentify: DeidentifyProfile | None = None) -> str:
    """``<scan>[-<reco>]_<protocol>``: the folder of one reco's output."""
    scan = safe_name_part(reco.scan.id, 64) or "scan"
    base = scan if reco.number == "1" else f"{scan}-{safe_name_part(reco.number, 64) or 'reco'}"
    return _join(base, _protocol_part(reco, deidentify))


def folder_key(name: str) -> str:
    """The ``<scan>[-<reco>]`` a reco folder's name starts with (``9_T2_TurboRARE`` → ``9``,
    ``9-2_T2`` → ``9-2``): ParaVision scan and reco numbers hold no ``_``."""
    return name.split("_", 1)[0]


def file_stem(reco: Reco, deidentify: DeidentifyProfile | None = None) -> str:
    """``<scan>-<reco>_<protocol>``: the start of every file name of one reco."""
    base = safe_name_part(reco.label, 64) or "reco"
    return _join(base, _protocol_part(reco, deidentify))


def package_stem(stem: str, package: int, package_count: int) -> str:
    """``stem``, plus ``_pack<n>`` (n = package + 1) when the reco has several packages."""
    return f"{stem}_pack{package + 1}" if package_count > 1 else stem


def series_stem(series: ImageSeries, package: int,
                deidentify: DeidentifyProfile | None = None) -> str:
    """The name stem of one output series (slice ``package`` of ``series``)."""
    return package_stem(file_stem(series.reco, deidentify), package, series.package_count)
