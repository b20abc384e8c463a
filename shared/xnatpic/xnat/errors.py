"""Errors of the XNAT Container Service support, all deriving from XnatpicError."""

from __future__ import annotations

from xnatpic.errors import XnatpicError

__all__ = [
    "ArchiveError",
    "CommandFileError",
    "ContainerRuntimeError",
    "IllegalValueError",
    "LabelError",
    "LaunchError",
    "MatcherSyntaxError",
    "ResolutionError",
    "XnatRequestError",
]


class CommandFileError(XnatpicError, ValueError):
    """A command.json (or an image label) cannot be read or is not a command."""


class MatcherSyntaxError(XnatpicError, ValueError):
    """A JSONPath filter (a wrapper input ``matcher``) cannot be parsed."""


class ArchiveError(XnatpicError, ValueError):
    """A folder is not a session in XNAT's archive layout, or its metadata is bad."""


class ResolutionError(XnatpicError, ValueError):
    """A wrapper or command input cannot be resolved to a value for a launch."""


class IllegalValueError(ResolutionError):
    """A resolved value holds characters the Container Service refuses (``;``, ``&&``...)."""


class LaunchError(XnatpicError):
    """A container could not be started, failed, or its outputs could not be stored."""


class ContainerRuntimeError(LaunchError):
    """No usable container runtime (docker or podman), or it refused to run."""


class LabelError(XnatpicError, ValueError):
    """An image label and commands/ disagree, or a command changed without a new version."""


class XnatRequestError(XnatpicError):
    """An XNAT REST request failed (HTTP error, unexpected answer, missing credentials)."""
