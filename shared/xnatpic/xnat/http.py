"""The one HTTP transport to XNAT: a persistent connection, a JSESSIONID session, bodies
streamed from and to files, redirects kept on XNAT's own origin, credentials never shown.

Standard library only (``http.client``), so the core install and the step images need
neither ``requests`` nor ``xnat``. One :class:`XnatConnection` is one TCP connection
(HTTP/1.1 keep-alive) and one XNAT session; it is meant for one thread at a time (a lock
serialises callers that share it). The uploader gives each worker thread its own.

Login (the order xnatpy uses, xnat/__init__.py ``_create_jsession``):

* a user name that is an alias token (a UUID, what the Container Service hands a
  container) is sent as HTTP Basic, and the ``JSESSIONID`` cookie XNAT sets on the answer
  is used from then on;
* otherwise ``PUT /data/services/auth`` with the form ``username``/``password``; XNAT
  answers the session id as the body (and as ``Set-Cookie: JSESSIONID``). When XNAT
  refuses that service (an old XNAT, a site that disabled it), every request carries
  HTTP Basic instead.

A ``401`` to a request sent with the session cookie (the session expired) logs in again
once and sends the request again; a second ``401`` is the caller's to read.

Safety rules (issue 16):

* a redirect is followed only to the same origin (scheme, host, port); a redirect to
  another origin is **refused** (:class:`XnatRequestError` naming where XNAT pointed),
  never followed with or without the credentials;
* a plain ``http://`` address of a host that is not loopback is warned about once per
  address (the password and the session travel unencrypted);
* an address holding ``user:password@`` is refused; the message shows it without them;
* no message, log line or exception text holds the password, the Authorization header
  or the session id.

Statuses are the caller's: :meth:`XnatConnection.request` returns every answer, whatever
its status and body (XNAT's Restlet HTML status pages included); only a failure to talk to
XNAT at all raises (:class:`XnatTransportError`).
"""

from __future__ import annotations

import base64
import html
import http.client
import ipaddress
import logging
import os
import re
import select
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from xnatpic.xnat.errors import XnatRequestError

__all__ = [
    "XnatConnection",
    "XnatResponse",
    "XnatTransportError",
    "check_address",
    "xnat_message",
]

_log = logging.getLogger(__name__)

#: Bytes per read and write of a streamed body.
BLOCK = 1 << 20
#: Redirects followed for one request.
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_ALIAS_TOKEN = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                          r"[0-9A-Fa-f]{12}")
_TAG = re.compile(r"<[^>]+>")
_warned_plain: set[str] = set()
_warned_lock = threading.Lock()


class XnatTransportError(XnatRequestError):
    """XNAT could not be reached, did not answer in time, or broke the connection.

    ``timeout`` tells a request that got no answer in time (XNAT may still be working
    on it) from one that never reached XNAT or was cut off.
    """

    def __init__(self, message: str, *, timeout: bool = False, reason: str = "") -> None:
        super().__init__(message)
        self.timeout = timeout
        #: what went wrong, without the request ("cannot reach XNAT: ...")
        self.reason = reason or message


def xnat_message(text: str, limit: int = 300) -> str:
    """XNAT's message in an answer: the ``<h3>`` of a Restlet status page (else its first
    ``<p>``), or a plain body with its white space collapsed.

    Examples
    --------
    >>> xnat_message("<html><h3>Project not found</h3><p>x</p></html>")
    'Project not found'
    """
    if text.lstrip()[:14].lower().startswith(("<html", "<!doctype")):
        match = (re.search(r"<h3>(.*?)</h3>", text, re.S | re.I)
                 or re.search(r"<p>(.*?)</p>", text, re.S | re.I))
        text = match.group(1) if match else ""
        text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())[:limit]


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_address(address: str) -> urllib.parse.SplitResult:
    """Parse XNAT's address; refuse one holding credentials; warn once about plain HTTP
    to a host that is not loopback.

    Raises
    ------
    XnatRequestError
        When the address holds ``user[:password]@`` (the message shows the address
        without them), or is not an http(s) URL.
    """
    parts = urllib.parse.urlsplit(address.rstrip("/"))
    if "@" in parts.netloc:
        clean = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        raise XnatRequestError(
            f"XNAT address {clean} holds a user name or password: give the address "
            "alone and the credentials in XNAT_USER/XNAT_PASS or ~/.netrc")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise XnatRequestError(f"XNAT address {address!r} is not an http(s) URL "
                               "(e.g. https://xnat.example.org)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        origin = f"{parts.scheme}://{parts.netloc}"
        _warn_once(origin, "%s is plain HTTP: the password and the XNAT session travel "
                   "unencrypted; use https:// unless this network is trusted", origin)
    return parts


def _warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning the first time ``key`` is seen in this process."""
    with _warned_lock:
        first = key not in _warned_plain
        _warned_plain.add(key)
    if first:
        _log.warning(message, *args)


@dataclass
class XnatResponse:
    """One answer: status, reason, headers and body (empty when streamed to a file)."""

    status: int
    reason: str
    headers: Mapping[str, str] = field(repr=False)
    body: bytes = field(default=b"", repr=False)
    url: str = ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def message(self) -> str:
        """XNAT's message (see :func:`xnat_message`)."""
        return xnat_message(self.text)

    def json(self) -> Any:
        """The body as JSON (``ValueError`` when it is not)."""
        import json

        return json.loads(self.body)


def _body_source(body: bytes | Path | BinaryIO | None) -> tuple[Any, int]:
    """What to send and its length; a file is sent from where it stands to its end."""
    if body is None:
        return None, 0
    if isinstance(body, bytes | bytearray):
        return bytes(body), len(body)
    if isinstance(body, Path):
        return body, body.stat().st_size
    start = body.tell()
    size = os.fstat(body.fileno()).st_size if hasattr(body, "fileno") else None
    if size is None:
        body.seek(0, os.SEEK_END)
        size = body.tell()
        body.seek(start)
    return body, size - start


class XnatConnection:
    """One persistent connection and session to XNAT.

    Parameters
    ----------
    host : str
        XNAT's address (``https://xnat.example.org``, optionally with a path prefix).
    user, password : str
        The account (or alias token); kept out of ``repr``, messages and logs.
    verify : bool
        Verify HTTPS certificates.
    timeout : float
        Seconds any one read or write may wait (a large upload may take longer in all).
    """

    def __init__(self, host: str, user: str, password: str, *, verify: bool = True,
                 timeout: float = 120.0) -> None:
        self._parts = check_address(host)
        self.origin = f"{self._parts.scheme}://{self._parts.netloc}".lower()
        self.prefix = self._parts.path.rstrip("/")
        self.timeout = timeout
        self.verify = verify
        if not verify and self._parts.scheme == "https":
            _warn_once(f"insecure {self.origin}", "%s: the certificate is not verified "
                       "(--insecure): anyone on the way can read the password", self.origin)
        self._user, self._password = user, password
        self._basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self._conn: http.client.HTTPConnection | None = None
        self._session: str | None = None
        self._login_state = "none"  # none | session | basic
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"XnatConnection({self.origin}{self.prefix}, user={self._user!r})"

    # -- connection --------------------------------------------------------------------
    def _open(self) -> http.client.HTTPConnection:
        parts = self._parts
        try:
            port = parts.port
        except ValueError as exc:
            reason = "cannot reach XNAT: the port is not a number"
            raise XnatTransportError(f"{self.origin}: {reason}", reason=reason) from exc
        host = parts.hostname or ""
        proxy = None
        if not urllib.request.proxy_bypass(host):
            proxy = urllib.request.getproxies().get(parts.scheme)
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}") \
            if proxy else None
        connect_host, connect_port = (via.hostname or "", via.port or 8080) if via \
            else (host, port)
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                connect_host, connect_port, timeout=self.timeout, context=context,
                blocksize=BLOCK)
        else:
            conn = http.client.HTTPConnection(connect_host, connect_port,
                                              timeout=self.timeout, blocksize=BLOCK)
        if via is not None:
            headers = {}
            if via.username:
                token = (f"{urllib.parse.unquote(via.username)}:"
                         f"{urllib.parse.unquote(via.password or '')}")
                headers["Proxy-Authorization"] = "Basic " + base64.b64encode(
                    token.encode()).decode()
            conn.set_tunnel(host, port, headers=headers)
        return conn

    def _connection(self) -> http.client.HTTPConnection:
        conn = self._conn
        if conn is not None and conn.sock is not None:
            # an idle keep-alive connection the server closed reads as ready (EOF)
            try:
                ready, _, _ = select.select([conn.sock], [], [], 0)
            except (OSError, ValueError):
                ready = [conn.sock]
            if ready:
                conn.close()
                conn = self._conn = None
        if conn is None:
            conn = self._conn = self._open()
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- login -------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        if self._login_state == "none":
            self._login()
        if self._session:
            return {"Cookie": f"JSESSIONID={self._session}"}
        return {"Authorization": self._basic}

    def _login(self) -> None:
        """Open an XNAT session (see the module's notes); fall back to HTTP Basic."""
        self._session = None
        if _ALIAS_TOKEN.fullmatch(self._user):
            self._login_state = "basic"  # the cookie is picked up from the answers
            return
        form = urllib.parse.urlencode({"username": self._user, "password": self._password})
        resp = self._send("PUT", self.prefix + "/data/services/auth", form.encode(),
                          {"Content-Type": "application/x-www-form-urlencoded"}, None)
        token = _session_cookie(resp.headers) or resp.text.strip()
        if resp.status == 200 and re.fullmatch(r"[0-9A-Za-z._-]{8,200}", token or ""):
            self._session = token
            self._login_state = "session"
            _log.debug("%s: XNAT session opened", self.origin)
        else:
            self._login_state = "basic"
            _log.debug("%s: no XNAT session (PUT /data/services/auth answered HTTP %d); "
                       "HTTP Basic on every request", self.origin, resp.status)

    # -- requests ----------------------------------------------------------------------
    def url(self, path: str, query: Mapping[str, str] | None = None) -> str:
        """The path (with the address's prefix) and query, as sent."""
        target = path if path.startswith(self.prefix + "/") or not self.prefix \
            else self.prefix + path
        if query:
            target += ("&" if "?" in target else "?") + urllib.parse.urlencode(query)
        return target

    def request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                body: bytes | Path | BinaryIO | None = None,
                headers: Mapping[str, str] | None = None,
                download: Path | None = None) -> XnatResponse:
        """Send one request and return XNAT's answer, whatever its status.

        Parameters
        ----------
        method, path : str
            ``path`` is quoted already and starts with ``/`` (``/data/...``).
        query : mapping, optional
            Query parameters (encoded here).
        body : bytes, Path or binary file, optional
            A file (or path) is streamed in blocks with its size as Content-Length; a
            file object is sent from its current position.
        headers : mapping, optional
            Extra headers (Content-Type...).
        download : Path, optional
            Stream a 2xx answer's body into this file instead of memory.

        Raises
        ------
        XnatTransportError
            XNAT cannot be reached, did not answer within ``timeout`` or broke the
            connection.
        XnatRequestError
            The path is not a URL path, or XNAT redirected to another origin.
        """
        if re.search(r"[\s\x00-\x1f]", path) or not path.startswith("/"):
            raise XnatRequestError(f"{method} {path!r}: not a URL path (unquoted characters)")
        with self._lock:
            target = self.url(path, query)
            for _ in range(MAX_REDIRECTS + 1):
                resp = self._authorised(method, target, body, dict(headers or {}), download)
                if resp.status not in _REDIRECTS or "Location" not in resp.headers:
                    return resp
                method, target, body = self._redirect(method, target, body, resp)
            raise XnatRequestError(f"{method} {_path_only(target)}: more than "
                                   f"{MAX_REDIRECTS} redirects")

    def _authorised(self, method: str, target: str, body: Any, headers: dict[str, str],
                    download: Path | None) -> XnatResponse:
        auth = self._auth_headers()
        resp = self._send(method, target, body, {**headers, **auth}, download)
        if resp.status == 401 and "Cookie" in auth:
            _log.info("%s: XNAT session ended; logging in again", self.origin)
            self._login()
            resp = self._send(method, target, body, {**headers, **self._auth_headers()},
                              download)
        return resp

    def _redirect(self, method: str, target: str, body: Any, resp: XnatResponse
                  ) -> tuple[str, str, Any]:
        location = urllib.parse.urljoin(f"{self.origin}{target}", resp.headers["Location"])
        where = urllib.parse.urlsplit(location)
        origin = f"{where.scheme}://{where.netloc.rpartition('@')[2]}".lower()
        if origin != self.origin:
            raise XnatRequestError(
                f"{method} {_path_only(target)}: XNAT redirected to another address "
                f"({origin}); not followed, so the credentials stay with {self.origin}. "
                "Give that address as XNAT's address if it is XNAT")
        new_target = where.path + (f"?{where.query}" if where.query else "")
        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
            return ("GET" if method != "HEAD" else method), new_target, None
        if hasattr(body, "seek"):
            body.seek(0)
        return method, new_target, body

    def _send(self, method: str, target: str, body: Any, headers: dict[str, str],
              download: Path | None) -> XnatResponse:
        source, size = _body_source(body)
        headers = {"Accept": "application/json, text/plain, */*", **headers}
        if source is not None or method in ("POST", "PUT"):
            headers["Content-Length"] = str(size)
        start = source.tell() if hasattr(source, "tell") else 0
        name = f"{method} {self.origin}{_path_only(target)}"
        _log.debug("%s", name)
        try:
            conn = self._connection()
            if isinstance(source, Path):
                with source.open("rb") as handle:
                    conn.request(method, target, body=handle, headers=headers)
            else:
                conn.request(method, target, body=source, headers=headers)
            answer = conn.getresponse()
            resp = XnatResponse(answer.status, answer.reason, answer.headers,
                                url=self.origin + target)
            if download is not None and 200 <= answer.status < 300:
                with download.open("wb") as out:
                    while block := answer.read(BLOCK):
                        out.write(block)
            else:
                resp.body = answer.read()
            if answer.will_close:
                self._drop()
        except TimeoutError as exc:
            self._drop()
            reason = f"XNAT did not answer within {self.timeout:g} s"
            raise XnatTransportError(f"{name}: {reason}", timeout=True, reason=reason
                                     ) from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            cause = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            reason = f"cannot reach XNAT: {cause}"
            raise XnatTransportError(f"{name}: {reason}", reason=reason) from exc
        finally:
            if hasattr(source, "seek"):
                source.seek(start)
        cookie = _session_cookie(resp.headers)
        if cookie and self._login_state == "basic":
            self._session = cookie  # XNAT opened a session for the Basic request
        return resp

    def close(self) -> None:
        """End the XNAT session (``DELETE /data/JSESSION``, as xnatpy's disconnect) and
        close the connection; failures here are only logged."""
        with self._lock:
            if self._session is not None and self._conn is not None:
                try:
                    self._send("DELETE", self.prefix + "/data/JSESSION", None,
                               {"Cookie": f"JSESSIONID={self._session}"}, None)
                except XnatRequestError as exc:
                    _log.debug("ending the XNAT session: %s", exc)
            self._session = None
            self._login_state = "none"
            self._drop()


def _session_cookie(headers: Any) -> str | None:
    values = headers.get_all("Set-Cookie") if hasattr(headers, "get_all") else None
    for value in values or []:
        match = re.match(r"\s*JSESSIONID=([^;]+)", value)
        if match:
            return match.group(1)
    return None


def _path_only(target: str) -> str:
    """A request target without its query (values may be long or personal)."""
    return target.split("?", 1)[0]
