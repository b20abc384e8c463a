"""The one XNAT double of the whole test suite.

One HTTP server (:class:`tests.double.server.XnatDouble`) answers as XNAT does: the
plumbing and the REST data API (``server.py``), the import service, prearchive and archiver
(``prearchive.py``), and the Container Service's ``/xapi`` endpoints
(``container_service.py``). Each behaviour cites the XNAT source file
and line, or the XNAT REST test, it copies; docs/xnat-conformance.md lists them with the
tests of ours that rely on them. It is never kinder than XNAT: errors come as XNAT's HTML
status pages, existing resources answer 409, and so on.
"""

from tests.double.server import PASSWORD, USER, XnatDouble

__all__ = ["PASSWORD", "USER", "XnatDouble"]
