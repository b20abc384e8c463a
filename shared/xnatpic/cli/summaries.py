"""The one-line help of each ``xnatpic`` subcommand, in the order ``xnatpic --help`` lists
them. Kept apart from the subcommand modules so that the listing (and ``--version``)
imports none of them; each module's ``add_parser`` uses its line from here."""

from __future__ import annotations

__all__ = ["SUMMARIES"]

#: Subcommand name (and module ``xnatpic.cli.<name>``) → its help line.
SUMMARIES: dict[str, str] = {
    "info": "show the scans of a ParaVision study",
    "convert": "convert a ParaVision study (folder or zip) to DICOM or NIfTI",
    "phantom": "write a synthetic ParaVision 6.0.1 phantom study with known truth",
    "commands": "lint XNAT Container Service commands, make image labels",
    "launch": "run a Container Service command locally on archived sessions",
    "xnat": "register commands on XNAT and launch them there",
    "upload": "upload ParaVision (converted on the fly) and DICOM studies to XNAT",
}
