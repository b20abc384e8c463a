"""A command's ``secrets``, resolved for a local launch as Container Service resolves them.

Container Service (v3.7.3) knows one source, ``system-property`` (the value of
``System.getProperty(identifier)`` in XNAT's JVM, set with ``-Didentifier=VALUE``), and one
destination, ``environment-variable`` (the container's variable ``identifier``): container-
service src/main/java/org/nrg/containers/secrets/SystemPropertySecretSource.java:72,
EnvironmentVariableSecretDestination.java. Every secret of the command is resolved on
every launch, and one without a value fails the launch before any container starts:
"Could not resolve secret ..." (services/impl/CommandResolutionServiceImpl.java:3062)
caused by "Did not obtain value for secret ..." (secrets/ResolvedSecret.java:62).

The local launcher has no JVM: the system property ``NAME`` is read from the launching
environment's variable ``XNATPIC_SYSPROP_<NAME>``, ``NAME`` upper-cased with every
character but letters and digits made ``_`` (``xnatpic.deidentify.salt`` →
``XNATPIC_SYSPROP_XNATPIC_DEIDENTIFY_SALT``). As with ``System.getProperty``, a variable
set to the empty string is a value; an unset one is not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from xnatpic.xnat.errors import ResolutionError

__all__ = ["SYSPROP_PREFIX", "SecretResolutionError", "resolve_secrets", "sysprop_variable"]

#: Prefix of the environment variables standing for XNAT's JVM system properties.
SYSPROP_PREFIX = "XNATPIC_SYSPROP_"
_SOURCE = "system-property"
_DESTINATION = "environment-variable"


class SecretResolutionError(ResolutionError):
    """A secret of the command has no value (or a source/destination CS does not know)."""


def sysprop_variable(name: str) -> str:
    """The environment variable that holds system property ``name`` for a local launch.

    Examples
    --------
    >>> sysprop_variable("xnatpic.deidentify.salt")
    'XNATPIC_SYSPROP_XNATPIC_DEIDENTIFY_SALT'
    """
    return SYSPROP_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _describe(secret: Mapping[str, Any]) -> str:
    """The secret as CS's ``Secret.toString`` writes it (no value)."""
    source = secret.get("source") or {}
    destination = secret.get("destination") or {}
    return (f'Secret{{source=SystemProperty{{"{source.get("identifier")}"}}, '
            f'destination=EnvironmentVariable{{name="{destination.get("identifier")}"}}}}')


def resolve_secrets(command: Mapping[str, Any],
                    host_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The container variables of the command's secrets (name → value).

    Raises
    ------
    SecretResolutionError
        When a secret's system property is not defined (``XNATPIC_SYSPROP_<NAME>`` unset),
        or its source or destination is not one Container Service knows.

    Examples
    --------
    >>> cmd = {"secrets": [{"source": {"type": "system-property", "identifier": "a.b"},
    ...        "destination": {"type": "environment-variable", "identifier": "S"}}]}
    >>> resolve_secrets(cmd, {"XNATPIC_SYSPROP_A_B": "x", "S": "ignored"})
    {'S': 'x'}
    """
    host = os.environ if host_env is None else host_env
    out: dict[str, str] = {}
    for secret in command.get("secrets") or []:
        source = secret.get("source") or {}
        destination = secret.get("destination") or {}
        if source.get("type") != _SOURCE or destination.get("type") != _DESTINATION:
            raise SecretResolutionError(
                f"Could not resolve secret {secret}: Container Service knows only a "
                f"{_SOURCE!r} source and an {_DESTINATION!r} destination")
        variable = sysprop_variable(str(source.get("identifier")))
        value = host.get(variable)
        if value is None:
            described = _describe(secret)
            raise SecretResolutionError(
                f"Could not resolve secret {described}: Did not obtain value for secret "
                f"{described}. Define the system property for a local launch with "
                f"{variable}=VALUE (XNAT: -D{source.get('identifier')}=VALUE in JAVA_OPTS)")
        out[str(destination.get("identifier"))] = value
    return out
