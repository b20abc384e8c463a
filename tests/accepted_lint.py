"""The lint warnings a shipped command may carry, and why (one policy for every test).

- W104: commands/ names images without a registry host; the prefix is added at build and
  register time (containers/README.md, `make images REGISTRY=...`).
- W131: a secret from a system property, when the command's description tells the
  administrator which property to set.
- W117: a derived input that can match several children of its parent, only where the
  researcher picks it at launch (user-settable and required): roi-stats' ROI collection among
  the session's ``icr:roiCollectionData`` assessors; the launch UI offers every match
  (CommandResolutionServiceImpl.java:1319-1358).
"""

from __future__ import annotations

from typing import Any

__all__ = ["accepted_warnings"]


def accepted_warnings(command: dict[str, Any] | list[dict[str, Any]]) -> set[str]:
    """Codes of the warnings ``command`` (or a label's array of commands) may carry."""
    commands = command if isinstance(command, list) else [command]
    accepted = {"W104"}
    for cmd in commands:
        properties = [s["source"]["identifier"] for s in cmd.get("secrets", [])]
        if properties and all(p in cmd.get("description", "") for p in properties):
            accepted.add("W131")
        derived = [d for w in cmd.get("xnat", []) for d in w.get("derived-inputs", [])
                   if d.get("matcher")]
        if derived and all(d.get("user-settable") and d.get("required") for d in derived):
            accepted.add("W117")
    return accepted
