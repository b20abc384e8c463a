"""The ParaVision dataset tree: study → scans → recos, from a folder or an archive.

A study folder holds ``subject`` (optional in PV 5) and one folder per scan (``acqp``,
``method``, ``pdata/<n>/``); each reco folder ``pdata/<n>`` holds ``2dseq``, ``visu_pars``
and ``reco``. :func:`open_dataset` accepts a study, scan or reco folder, or a ``.zip`` /
``.PvDatasets`` archive of any of them. Parameter files are parsed when first used.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

from xnatpic.errors import MissingParameterError, NotParaVisionError, UnsafeArchiveError
from xnatpic.paravision.jcamp import ParameterSet, read_jcamp
from xnatpic.paravision.validate import check_visu_pars

__all__ = ["Reco", "Scan", "Study", "extract_archive", "is_study_folder", "open_dataset"]

_log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".zip", ".pvdatasets")


def _natural_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def _read_optional(path: Path) -> ParameterSet | None:
    return read_jcamp(path) if path.is_file() else None


@dataclass(eq=False)
class Reco:
    """One reconstruction ``pdata/<number>`` of a scan."""

    scan: Scan
    number: str
    path: Path

    @property
    def label(self) -> str:
        """``<scan>-<reco>``, e.g. ``9-1``; used in messages and output folder names."""
        return f"{self.scan.id}-{self.number}"

    @property
    def data_path(self) -> Path:
        """The image file ``2dseq``."""
        return self.path / "2dseq"

    @cached_property
    def visu_pars(self) -> ParameterSet:
        """The reco's ``visu_pars`` (required for conversion)."""
        path = self.path / "visu_pars"
        if not path.is_file():
            raise MissingParameterError(
                f"{path}: visu_pars is missing; ParaVision writes it with every reco "
                "(PV 5.1 and later), re-export the scan from ParaVision"
            )
        params = read_jcamp(path)
        check_visu_pars(params)  # a malformed value fails this reco only (issue 16)
        return params

    @cached_property
    def reco(self) -> ParameterSet | None:
        """The reco's ``reco`` parameters, when present."""
        return _read_optional(self.path / "reco")

    def __repr__(self) -> str:
        return f"Reco({self.label!r}, {str(self.path)!r})"


@dataclass(eq=False)
class Scan:
    """One scan (experiment) folder of a study."""

    study: Study
    id: str
    path: Path

    @cached_property
    def acqp(self) -> ParameterSet | None:
        """The ``acqp`` parameters, when present."""
        return _read_optional(self.path / "acqp")

    @cached_property
    def method(self) -> ParameterSet | None:
        """The ``method`` parameters, when present."""
        return _read_optional(self.path / "method")

    @cached_property
    def recos(self) -> list[Reco]:
        """The scan's recos, in number order (empty when nothing was reconstructed)."""
        pdata = self.path / "pdata"
        if not pdata.is_dir():
            return []
        found = [
            Reco(self, child.name, child)
            for child in pdata.iterdir()
            if child.is_dir() and any((child / f).exists() for f in ("2dseq", "visu_pars", "reco"))
        ]
        return sorted(found, key=lambda r: _natural_key(r.number))

    def __repr__(self) -> str:
        return f"Scan({self.id!r}, {str(self.path)!r})"


@dataclass(eq=False)
class Study:
    """A ParaVision study: its ``subject`` file and its scans.

    Use as a context manager (or call :meth:`close`) when it was opened from an archive,
    so the temporary extraction folder is removed.
    """

    path: Path
    scans: list[Scan] = field(default_factory=list)
    source: Path | None = None
    _tempdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @cached_property
    def subject(self) -> ParameterSet | None:
        """The study's ``subject`` parameters (absent in some PV 5 exports)."""
        return _read_optional(self.path / "subject")

    @property
    def name(self) -> str:
        """The folder name of the study (or of the archive it came from)."""
        return (self.source or self.path).name

    def scan(self, scan_id: str) -> Scan:
        """Return the scan with id ``scan_id``.

        Raises
        ------
        KeyError
            When the study has no such scan.
        """
        for scan in self.scans:
            if scan.id == str(scan_id):
                return scan
        raise KeyError(f"{self.path}: no scan {scan_id!r} (scans: {[s.id for s in self.scans]})")

    def close(self) -> None:
        """Remove the extraction folder of an archive (no-op for folders)."""
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_scan_dir(path: Path) -> bool:
    return path.is_dir() and (
        (path / "acqp").is_file() or (path / "method").is_file() or (path / "pdata").is_dir()
    )


def _is_reco_dir(path: Path) -> bool:
    return path.is_dir() and path.parent.name == "pdata" and (
        (path / "2dseq").exists() or (path / "visu_pars").is_file()
    )


def _scan_dirs(study_path: Path) -> list[Path]:
    return sorted(
        (p for p in study_path.iterdir() if _is_scan_dir(p)), key=lambda p: _natural_key(p.name)
    )


def is_study_folder(path: Path) -> bool:
    """Whether ``path`` is a ParaVision study folder: it holds a ``subject`` file or at least
    one scan folder (a folder with ``acqp``, ``method`` or ``pdata/``).

    The one rule used by :func:`open_dataset`, ``xnatpic upload``'s discovery and the
    mri2dicom step.
    """
    path = Path(path)
    return path.is_dir() and ((path / "subject").is_file() or bool(_scan_dirs(path)))


def _study_from_folder(path: Path) -> Study:
    if _is_reco_dir(path):
        scan_path = path.parent.parent
        study = Study(scan_path.parent)
        scan = Scan(study, scan_path.name, scan_path)
        scan.__dict__["recos"] = [Reco(scan, path.name, path)]
        study.scans = [scan]
        return study
    if _is_scan_dir(path) and not (path / "subject").is_file():
        study = Study(path.parent)
        study.scans = [Scan(study, path.name, path)]
        return study
    scan_dirs = _scan_dirs(path)
    if not scan_dirs:
        raise NotParaVisionError(
            f"{path}: not a ParaVision study, scan or reco folder (no 'subject', 'acqp', "
            "'method' or 'pdata' found); point xnatpic at the study folder that holds the "
            "numbered scan folders"
        )
    study = Study(path)
    study.scans = [Scan(study, p.name, p) for p in scan_dirs]
    return study


#: At most this many members in an archive (a study has hundreds to a few thousand files).
MAX_ARCHIVE_MEMBERS = 100_000
#: The archive may expand to this many times its own size ...
MAX_EXPANSION_RATIO = 200
#: ... or to this many bytes, whichever is larger (small archives of smooth data).
MIN_EXPANSION_ALLOWANCE = 256 * 2**20


def _check_expansion(archive: Path, members: list[zipfile.ZipInfo], max_members: int,
                     max_ratio: float, min_allowance: int) -> None:
    """Refuse an archive that would expand beyond the limits (a zip bomb), before writing.

    Python's zip reader never yields more than a member's declared size (a member that
    holds more fails its CRC check), so the declared sizes bound what extraction writes.
    """
    if len(members) > max_members:
        raise UnsafeArchiveError(
            f"{archive}: {len(members)} members, more than the {max_members} a ParaVision "
            "archive may hold; the archive is refused (extract it yourself if it is genuine)"
        )
    packed = max(archive.stat().st_size, 1)
    expanded = sum(info.file_size for info in members)
    allowance = max(min_allowance, int(max_ratio * packed))
    if expanded > allowance:
        raise UnsafeArchiveError(
            f"{archive}: would expand from {packed} to {expanded} bytes "
            f"({expanded / packed:.0f} times its size; the limit is {allowance} bytes: "
            f"{max_ratio:g} times the archive or {min_allowance} bytes); the archive is "
            "refused as a possible zip bomb (extract it yourself if it is genuine)"
        )


def extract_archive(archive: Path, destination: Path, *,
                    max_members: int = MAX_ARCHIVE_MEMBERS,
                    max_ratio: float = MAX_EXPANSION_RATIO,
                    min_allowance: int = MIN_EXPANSION_ALLOWANCE) -> None:
    """Extract a zip archive, refusing unsafe members and archives that expand too much.

    Parameters
    ----------
    archive, destination : Path
        The zip file and the (existing) folder to extract into.
    max_members, max_ratio, min_allowance
        Limits: at most ``max_members`` members, expanding to at most
        ``max(min_allowance, max_ratio * archive size)`` bytes in all.

    Raises
    ------
    UnsafeArchiveError
        For absolute paths, ``..`` components or symbolic links among the members, too
        many members, or an expansion beyond the limits; nothing is extracted then.
    NotParaVisionError
        When the file is not a readable zip archive.
    """
    destination = destination.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            _check_expansion(Path(archive), members, max_members, max_ratio, min_allowance)
            for info in members:
                name = info.filename
                pure = PurePosixPath(name.replace("\\", "/"))
                target = (destination / pure).resolve()
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if pure.is_absolute() or ".." in pure.parts or is_link or not (
                    target == destination or destination in target.parents
                ):
                    raise UnsafeArchiveError(
                        f"{archive}: member {name!r} would be extracted outside the "
                        "extraction folder; the archive is refused"
                    )
            for info in members:
                zf.extract(info, destination)
    except zipfile.BadZipFile as exc:
        raise NotParaVisionError(f"{archive}: not a readable zip archive ({exc})") from exc


def _find_root(folder: Path) -> Path:
    """The topmost folder below ``folder`` that is a study, scan or reco."""
    candidates = [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]
    for candidate in candidates:
        if is_study_folder(candidate) or _is_scan_dir(candidate):
            return candidate
    return folder


def open_dataset(path: str | Path) -> Study:
    """Open a ParaVision study, scan or reco folder, or an archive of one.

    Parameters
    ----------
    path : str or Path
        A study folder (holding numbered scan folders), a scan folder, a reco folder
        (``.../pdata/1``), or a ``.zip`` / ``.PvDatasets`` archive of any of them.

    Returns
    -------
    Study
        The study, restricted to the given scan or reco when one was named.

    Raises
    ------
    NotParaVisionError
        When the path holds no ParaVision data.
    UnsafeArchiveError
        When an archive member would escape the extraction folder.
    """
    path = Path(path)
    if not path.exists():
        raise NotParaVisionError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() not in ARCHIVE_SUFFIXES and not zipfile.is_zipfile(path):
            raise NotParaVisionError(
                f"{path}: not a ParaVision folder or a .zip/.PvDatasets archive"
            )
        tempdir = tempfile.TemporaryDirectory(prefix="xnatpic-")
        try:
            extract_archive(path, Path(tempdir.name))
            study = _study_from_folder(_find_root(Path(tempdir.name)))
        except BaseException:
            tempdir.cleanup()
            raise
        study.source = path
        study._tempdir = tempdir
        return study
    return _study_from_folder(path)

