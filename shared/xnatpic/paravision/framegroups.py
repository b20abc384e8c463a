"""Frame groups: VisuFGOrderDesc turned into named axes and per-frame parameter lookup.

ParaVision orders the frames of a 2dseq by frame groups, the first varying fastest
(pv6 MSME: ``(7, FG_ECHO)`` then ``(9, FG_SLICE)``). ``VisuGroupDepVals`` names the
parameters whose first dimension follows a group, starting at a given element. This
module is the one place that knows that layout; everything else asks it for "the value
of parameter P for frame f".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from xnatpic.errors import ParaVisionError
from xnatpic.paravision.jcamp import ParameterSet

__all__ = ["AXIS_NAMES", "FrameGroup", "FrameLayout", "frame_layout"]

#: ParaVision frame-group id → axis name used throughout xnatpic.
AXIS_NAMES: dict[str, str] = {
    "FG_SLICE": "slice",
    "FG_ECHO": "echo",
    "FG_CYCLE": "repetition",
    "FG_MOVIE": "movie",
    "FG_DIFFUSION": "diffusion",
    "FG_IRMODE": "ir_mode",
    "FG_ISA": "isa",
    "FG_COMPLEX": "complex",
    "FG_DTI": "dti",
    "FG_CHANNEL": "channel",
    "FG_SPECTROSCOPY": "spectroscopy",
}


@dataclass(frozen=True)
class FrameGroup:
    """One frame group of VisuFGOrderDesc.

    Attributes
    ----------
    id : str
        ParaVision id, e.g. ``FG_ECHO``.
    name : str
        Axis name (see :data:`AXIS_NAMES`).
    size : int
        Number of elements.
    comment : str
        ParaVision's comment (e.g. ``vtr``, ``Non-selective Inversion``).
    dependents : dict of str to int
        Parameters that follow this group, with the element where they start.
    """

    id: str
    name: str
    size: int
    comment: str
    dependents: dict[str, int]


@dataclass(frozen=True)
class FrameLayout:
    """The frame groups of a reco and the index of every frame along each of them."""

    groups: tuple[FrameGroup, ...]
    frame_count: int
    indices: np.ndarray  # (frame_count, len(groups)), int

    def group(self, name: str) -> FrameGroup | None:
        """The group with axis name ``name``, or None."""
        return next((g for g in self.groups if g.name == name), None)

    def index(self, frame: int, name: str) -> int | None:
        """Index of ``frame`` along axis ``name``, or None when the reco has no such axis."""
        for k, g in enumerate(self.groups):
            if g.name == name:
                return int(self.indices[frame, k])
        return None

    def per_frame(self, params: ParameterSet, name: str) -> list[Any] | None:
        """The value of parameter ``name`` for every frame, or None when absent.

        Resolution order: a VisuGroupDepVals entry; one element per frame; a single
        element for all frames; one element per element of exactly one group.
        Array values are split along their first dimension.
        """
        if name not in params:
            return None
        rows = _rows(params[name])
        for k, g in enumerate(self.groups):
            if name in g.dependents:
                start = g.dependents[name]
                needed = start + g.size
                if len(rows) < needed:
                    raise ParaVisionError(
                        f"{params.path}: {name} has {len(rows)} elements but frame group "
                        f"{g.id} needs {needed}"
                    )
                return [rows[start + int(i)] for i in self.indices[:, k]]
        if len(rows) == self.frame_count:
            return list(rows)
        if len(rows) == 1:
            return [rows[0]] * self.frame_count
        matching = [k for k, g in enumerate(self.groups) if g.size == len(rows)]
        if len(matching) == 1:
            k = matching[0]
            return [rows[int(i)] for i in self.indices[:, k]]
        return None


def _rows(value: Any) -> list[Any]:
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return [value.item()]
        return list(value) if value.ndim > 1 else value.tolist()
    if isinstance(value, list):
        return value
    return [value]


def frame_layout(visu: ParameterSet, frame_count: int) -> FrameLayout:
    """Read the frame groups of a reco's visu_pars.

    Parameters
    ----------
    visu : ParameterSet
        The reco's visu_pars.
    frame_count : int
        VisuCoreFrameCount.

    Returns
    -------
    FrameLayout
        Without VisuFGOrderDesc, a single anonymous ``frame`` axis holds every frame.

    Raises
    ------
    ParaVisionError
        When the groups do not multiply to the frame count.
    """
    desc, dep_vals = (None if isinstance(v, np.ndarray) and v.size == 0 else v  # "( 0 )"
                      for v in (visu.get("VisuFGOrderDesc"), visu.get("VisuGroupDepVals")))
    dep_vals = dep_vals or []
    if isinstance(dep_vals, tuple):
        dep_vals = [dep_vals]
    dep_list = [(str(d[0]), int(d[1])) for d in dep_vals if d and d[0]]
    groups: list[FrameGroup] = []
    if desc:
        if isinstance(desc, tuple):
            desc = [desc]
        for entry in desc:
            if len(entry) < 5:
                raise ParaVisionError(f"{visu.path}: malformed VisuFGOrderDesc entry {entry!r}")
            size, fg_id, comment, start, count = entry[:5]
            fg_id = str(fg_id)
            deps = {n: s for n, s in dep_list[int(start):int(start) + int(count)]}
            name = AXIS_NAMES.get(fg_id, fg_id.removeprefix("FG_").lower())
            groups.append(FrameGroup(fg_id, name, int(size), str(comment or ""), deps))
    product = int(np.prod([g.size for g in groups])) if groups else 0
    if not groups or product != frame_count:
        if groups and frame_count % product == 0 and product > 0:
            # Extra frames beyond the described groups (seen with repetitions not
            # described in VisuFGOrderDesc): an outermost anonymous axis holds them.
            groups.append(FrameGroup("", "frame", frame_count // product, "", {}))
        elif groups:
            raise ParaVisionError(
                f"{visu.path}: frame groups {[(g.id, g.size) for g in groups]} describe "
                f"{product} frames but VisuCoreFrameCount is {frame_count}"
            )
        else:
            groups = [FrameGroup("", "frame", frame_count, "", {})]
    sizes = [g.size for g in groups]
    # First group varies fastest: Fortran-order unravel.
    indices = np.stack(np.unravel_index(np.arange(frame_count), sizes, order="F"), axis=1)
    return FrameLayout(tuple(groups), frame_count, indices.astype(np.int64))
