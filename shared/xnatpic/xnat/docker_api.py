"""A small Docker Engine API client over the engine's unix socket (standard library only).

The Container Service talks to Docker through docker-java, i.e. the Engine's HTTP API
(container-service src/main/java/org/nrg/containers/api/DockerControlApi.java); so does
this client, with ``http.client`` over ``AF_UNIX``. It covers what a launch needs: ping
and info, image pull, containers (create, start, wait, logs, inspect, stats, remove),
Swarm (init, leave), services (create, inspect, update, logs, remove) and tasks.
``docker`` (docker-py) would add a dependency for the same dozen calls.

The socket is ``DOCKER_HOST`` when it is ``unix://PATH``, else ``/var/run/docker.sock``.
The API version is pinned (:data:`API_VERSION`, Docker 20.10) so requests and answers
keep one shape on newer engines.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import urllib.parse
from collections.abc import Iterator
from typing import Any

from xnatpic.xnat.errors import ContainerRuntimeError

__all__ = ["API_VERSION", "DEFAULT_SOCKET", "DockerApiError", "DockerClient",
           "demultiplex", "socket_path"]

#: Engine API version of every request (Docker 20.10; engines >= 25 still accept it).
API_VERSION = "1.41"
DEFAULT_SOCKET = "/var/run/docker.sock"


class DockerApiError(ContainerRuntimeError):
    """The engine answered a request with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"Docker Engine API {method} {path}: {status} {message}")
        self.status = status
        self.engine_message = message


def socket_path(docker_host: str | None = None) -> str:
    """The engine's unix socket from ``DOCKER_HOST`` (or the default socket).

    Raises
    ------
    ContainerRuntimeError
        When ``DOCKER_HOST`` names something other than a unix socket.
    """
    host = os.environ.get("DOCKER_HOST", "") if docker_host is None else docker_host
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://"):]
    raise ContainerRuntimeError(f"DOCKER_HOST={host}: only unix:// sockets are supported "
                                "by xnatpic's Docker Engine client; unset it or point it at "
                                "unix:///var/run/docker.sock")


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError as exc:
            sock.close()
            raise ContainerRuntimeError(
                f"cannot reach the Docker engine at {self._path}: {exc.strerror or exc} "
                "(is dockerd running? DOCKER_HOST=unix://PATH names another socket)") from exc
        self.sock = sock


def demultiplex(raw: bytes) -> tuple[bytes, bytes]:
    """Split the engine's multiplexed log stream into (stdout, stderr).

    Each frame is an 8-byte header (stream 1 stdout, 2 stderr; big-endian length) and
    its payload; a stream without headers (a TTY) is all stdout.
    """
    out, err = bytearray(), bytearray()
    pos = 0
    if raw and raw[0] not in (0, 1, 2):
        return raw, b""
    while pos + 8 <= len(raw):
        kind, size = raw[pos], struct.unpack(">I", raw[pos + 4:pos + 8])[0]
        payload = raw[pos + 8:pos + 8 + size]
        (err if kind == 2 else out).extend(payload)
        pos += 8 + size
    return bytes(out), bytes(err)


class DockerClient:
    """Requests to one Docker engine.

    Parameters
    ----------
    path : str, optional
        The engine's unix socket (default :func:`socket_path`).
    timeout : float
        Seconds to wait for an answer (streams use no timeout).
    """

    def __init__(self, path: str | None = None, timeout: float = 120.0) -> None:
        self.path = path or socket_path()
        self.timeout = timeout

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        url = f"/v{API_VERSION}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(
                {k: (json.dumps(v) if isinstance(v, dict) else
                     str(v).lower() if isinstance(v, bool) else v)
                 for k, v in query.items() if v is not None})
        return url

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any,
              headers: dict[str, str] | None, timeout: float | None
              ) -> tuple[_UnixConnection, http.client.HTTPResponse]:
        conn = _UnixConnection(self.path, timeout)
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            conn.request(method, self._url(path, query), body=data, headers=sent)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if isinstance(exc, ContainerRuntimeError):
                raise
            raise ContainerRuntimeError(f"Docker engine at {self.path}: {method} {path}: "
                                        f"{exc}") from exc
        if response.status >= 400:
            text = response.read().decode(errors="replace")
            conn.close()
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise DockerApiError(method, path, response.status, message.strip())
        return conn, response

    def request(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                body: Any = None, headers: dict[str, str] | None = None,
                timeout: float | None = -1.0) -> Any:
        """Send one request; return the decoded JSON answer (None when empty).

        Raises
        ------
        DockerApiError
            When the engine answers with a status >= 400 (its message included).
        ContainerRuntimeError
            When the engine cannot be reached.
        """
        conn, response = self._send(method, path, query, body, headers,
                                    self.timeout if timeout == -1.0 else timeout)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ContainerRuntimeError(f"Docker engine at {self.path}: {method} {path}: "
                                        f"{exc or type(exc).__name__}") from exc
        finally:
            conn.close()
        if not raw:
            return None
        if "json" in (response.getheader("Content-Type") or ""):
            return json.loads(raw)
        return raw

    def stream_json(self, path: str, query: dict[str, Any] | None = None,
                    method: str = "GET") -> Iterator[dict[str, Any]]:
        """Yield the JSON objects of a streamed answer (stats, pull progress)."""
        conn, response = self._send(method, path, query, None, None, None)
        try:
            buffer = b""
            while True:
                try:
                    chunk = response.read1(65536)
                except (OSError, http.client.HTTPException) as exc:  # the engine closed it
                    raise ContainerRuntimeError(f"Docker engine at {self.path}: {path}: "
                                                f"stream ended: {exc!r}") from exc
                if not chunk:
                    break
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
            if buffer.strip():
                yield json.loads(buffer)
        finally:
            conn.close()

    # --- engine ------------------------------------------------------------------------
    def ping(self) -> bool:
        """True when the engine answers ``/_ping``."""
        try:
            return self.request("GET", "/_ping", timeout=5) == b"OK"
        except ContainerRuntimeError:
            return False

    def info(self) -> dict[str, Any]:
        """``GET /info`` (NCPU, MemTotal, Swarm state...)."""
        return self.request("GET", "/info")

    def swarm_init(self, advertise: str = "127.0.0.1", listen: str = "127.0.0.1:2377"
                   ) -> str:
        """Make this engine a one-node swarm manager; return the node id."""
        return self.request("POST", "/swarm/init", body={
            "ListenAddr": listen, "AdvertiseAddr": advertise, "ForceNewCluster": False})

    def swarm_leave(self) -> None:
        """Leave the swarm (forced: the last manager)."""
        self.request("POST", "/swarm/leave", query={"force": True})

    # --- images ------------------------------------------------------------------------
    def image_exists(self, image: str) -> bool:
        """True when the engine holds ``image``."""
        try:
            self.request("GET", f"/images/{urllib.parse.quote(image, safe='')}/json")
        except DockerApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def pull(self, image: str) -> None:
        """Pull ``image`` by name (``POST /images/create``).

        Raises
        ------
        ContainerRuntimeError
            With the engine's reason when the pull fails (it reports errors in the stream).
        """
        name, _, tag = image.rpartition(":")
        if "/" in tag or not name:
            name, tag = image, "latest"
        for event in self.stream_json("/images/create", {"fromImage": name, "tag": tag},
                                      method="POST"):
            if "error" in event:
                raise ContainerRuntimeError(f"cannot pull {image}: {event['error']}")

    def remove_all_images(self) -> int:
        """Remove every image the engine holds (forced, all its names); return how many."""
        images = self.request("GET", "/images/json") or []
        for image in images:
            self.request("DELETE", f"/images/{image['Id']}", query={"force": True},
                         timeout=600)
        return len(images)

    # --- containers --------------------------------------------------------------------
    def create_container(self, config: dict[str, Any], name: str | None = None
                         ) -> dict[str, Any]:
        """``POST /containers/create``; returns ``{"Id", "Warnings"}``."""
        return self.request("POST", "/containers/create", query={"name": name}, body=config)

    def start_container(self, container_id: str) -> None:
        """``POST /containers/{id}/start``."""
        self.request("POST", f"/containers/{container_id}/start")

    def wait_container(self, container_id: str, timeout: float | None = None) -> int:
        """Block until the container stops; return its exit code."""
        answer = self.request("POST", f"/containers/{container_id}/wait", timeout=timeout)
        return int(answer["StatusCode"])

    def inspect_container(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``."""
        return self.request("GET", f"/containers/{container_id}/json")

    def container_logs(self, container_id: str) -> tuple[bytes, bytes]:
        """The container's (stdout, stderr), read once (no follow)."""
        raw = self.request("GET", f"/containers/{container_id}/logs",
                           query={"stdout": True, "stderr": True, "follow": False})
        return demultiplex(raw or b"")

    def container_stats(self, container_id: str) -> Iterator[dict[str, Any]]:
        """The engine's stats stream of a running container (about one a second)."""
        return self.stream_json(f"/containers/{container_id}/stats", {"stream": True})

    def kill_container(self, container_id: str) -> None:
        """``POST /containers/{id}/kill``."""
        self.request("POST", f"/containers/{container_id}/kill")

    def remove_container(self, container_id: str) -> None:
        """``DELETE /containers/{id}`` (forced)."""
        self.request("DELETE", f"/containers/{container_id}", query={"force": True})

    # --- services and tasks ------------------------------------------------------------
    def create_service(self, spec: dict[str, Any]) -> str:
        """``POST /services/create``; returns the service id."""
        return self.request("POST", "/services/create", body=spec)["ID"]

    def inspect_service(self, service_id: str) -> dict[str, Any]:
        """``GET /services/{id}``."""
        return self.request("GET", f"/services/{service_id}")

    def update_service(self, service_id: str, version: int, spec: dict[str, Any]) -> None:
        """``POST /services/{id}/update`` at ``version`` (the engine's optimistic lock)."""
        self.request("POST", f"/services/{service_id}/update", query={"version": version},
                     body=spec)

    def service_tasks(self, service_id: str) -> list[dict[str, Any]]:
        """The tasks of one service (``GET /tasks?filters={"service": [...]}``)."""
        return self.request("GET", "/tasks", query={"filters": {"service": [service_id]}})

    def service_logs(self, service_id: str) -> tuple[bytes, bytes]:
        """The service's (stdout, stderr), read once (no follow)."""
        raw = self.request("GET", f"/services/{service_id}/logs",
                           query={"stdout": True, "stderr": True, "follow": False})
        return demultiplex(raw or b"")

    def remove_service(self, service_id: str) -> None:
        """``DELETE /services/{id}``."""
        self.request("DELETE", f"/services/{service_id}")
