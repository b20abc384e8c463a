"""XNAT Container Service support: lint commands, launch them locally, talk to XNAT.

Modules, each with one job:

- :mod:`~xnatpic.xnat.schema` — what a ``command.json`` may contain (keys, types).
- :mod:`~xnatpic.xnat.lint` — the validation rules of the Container Service plus
  warnings for what it accepts silently but breaks at launch.
- :mod:`~xnatpic.xnat.jsonpath` — the JSONPath filter subset used by matchers.
- :mod:`~xnatpic.xnat.archive` — sessions and projects in XNAT's archive layout,
  serialised as the Container Service sees them.
- :mod:`~xnatpic.xnat.resolve` — input resolution and command-line building.
- :mod:`~xnatpic.xnat.launcher` — run a resolved command (podman, docker, local) on a
  session, or once on a project for a project-context wrapper.
- :mod:`~xnatpic.xnat.bulk` — launch on every session of a project folder (bulk launch).
- :mod:`~xnatpic.xnat.rest` — a small client of XNAT's REST API.
- :mod:`~xnatpic.xnat.labels` — the ``org.nrg.commands`` image label and versions lock.
"""

from __future__ import annotations

__all__: list[str] = []
