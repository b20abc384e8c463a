"""Container Service endpoints of the XNAT double (``/xapi/...``).

Filled in by the Container Service conformance work: commands, wrappers, enabling,
launch, bulk launch and workflows, each answer citing the container-service source line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from email.message import Message

    from tests.double.server import XnatDouble


def route(double: XnatDouble, method: str, path: str, query: dict[str, str], body: bytes,
          headers: Message) -> tuple[int, Any, str, dict[str, str] | None]:
    """Answer one ``/xapi`` request: (status, body, content type, extra headers)."""
    from tests.double.server import HttpError

    raise HttpError(404, f"The requested resource {path} was not found")
