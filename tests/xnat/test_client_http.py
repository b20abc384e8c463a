"""The one XNAT transport (xnatpic.xnat.http) against a scripted HTTP server: session login,
keep-alive, streaming both ways, redirects, plain HTTP, and no credentials in any output."""

from __future__ import annotations

import base64
import logging
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from xnatpic.xnat import http as xhttp
from xnatpic.xnat.errors import XnatRequestError
from xnatpic.xnat.http import XnatConnection, XnatTransportError, check_address
from xnatpic.xnat.rest import Credentials, XnatClient, XnatHttpError, load_credentials

USER, PASSWORD = "alice", "pa55-w0rd-SECRET"
ALIAS, ALIAS_SECRET = "0f8fad5b-d9cb-469f-a165-70867728950e", "alias-SECRET-token"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
TOKEN = "A1B2C3D4E5F60718293A4B5C6D7E8F90"
MB = 1 << 20

Handler = Callable[["Scripted"], "tuple[int, dict[str, str], bytes] | None"]


class Scripted(BaseHTTPRequestHandler):
    """Answers from ``server.routes[(method, path)]``; records every request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        return

    def _handle(self) -> None:
        server = self.server
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:  # read (and count) the body in blocks, never whole
            block = self.rfile.read(min(MB, length - received))
            if not block:
                break
            received += len(block)
        server.seen.append({"method": self.command, "path": path, "target": self.path,
                            "headers": dict(self.headers), "received": received,
                            "peer": self.client_address[1]})
        route = server.routes.get((self.command, path)) or server.routes.get(("*", path))
        answer = route(self) if route else (404, {}, b"<html><h3>Not Found</h3></html>")
        if answer is None:
            return
        status, headers, body = answer
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if isinstance(body, Path):
            with body.open("rb") as handle:
                while block := handle.read(MB):
                    self.wfile.write(block)
        else:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = _handle


def _login(handler: Scripted) -> tuple[int, dict[str, str], bytes]:
    handler.server.logins += 1
    token = f"{TOKEN[:-2]}{handler.server.logins:02d}"
    handler.server.tokens.add(token)
    return 200, {"Set-Cookie": f"JSESSIONID={token}; Path=/; HttpOnly"}, token.encode()


def _authorised(handler: Scripted) -> bool:
    cookie = handler.headers.get("Cookie", "")
    return (handler.headers.get("Authorization") in (BASIC, _basic(ALIAS, ALIAS_SECRET))
            or any(f"JSESSIONID={t}" == cookie for t in handler.server.tokens))


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _ok(text: bytes = b"ok") -> Handler:
    def answer(handler: Scripted) -> tuple[int, dict[str, str], bytes]:
        if not _authorised(handler):
            return 401, {"Content-Type": "text/html"}, \
                b"<html><h3>Login attempt failed. Please try again.</h3></html>"
        return 200, {"Content-Type": "text/plain"}, text
    return answer


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.daemon_threads = True
    httpd.seen, httpd.tokens, httpd.logins = [], set(), 0
    httpd.routes = {("PUT", "/data/services/auth"): _login, ("*", "/data/thing"): _ok()}
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


other_server = server  # a second origin (another port)


def _conn(server: ThreadingHTTPServer, **kw: object) -> XnatConnection:
    return XnatConnection(server.url, USER, PASSWORD, **kw)


def _secret_free(*texts: str) -> None:
    basic_token = BASIC.split()[1]
    for text in texts:
        for secret in (PASSWORD, basic_token, TOKEN[:-2], ALIAS_SECRET):
            assert secret not in text


class TestSession:
    def test_one_login_then_the_cookie_alone_on_one_connection(self, server):
        conn = _conn(server)
        for _ in range(3):
            assert conn.request("GET", "/data/thing").body == b"ok"
        conn.close()
        assert [s["method"] + " " + s["path"] for s in server.seen] == [
            "PUT /data/services/auth", "GET /data/thing", "GET /data/thing",
            "GET /data/thing", "DELETE /data/JSESSION"]
        things = [s for s in server.seen if s["path"] == "/data/thing"]
        assert all("Authorization" not in s["headers"] for s in things)
        assert all(s["headers"]["Cookie"] == f"JSESSIONID={TOKEN[:-2]}01" for s in things)
        assert len({s["peer"] for s in server.seen}) == 1  # keep-alive: one TCP connection

    def test_expired_session_logs_in_again_once(self, server):
        conn = _conn(server)
        conn.request("GET", "/data/thing")
        server.tokens.clear()  # XNAT forgot the session
        assert conn.request("GET", "/data/thing").status == 200
        assert server.logins == 2
        assert [s["path"] for s in server.seen].count("/data/services/auth") == 2

    def test_wrong_password_is_the_callers_401_and_never_shown(self, server, caplog):
        caplog.set_level(logging.DEBUG)
        server.routes[("PUT", "/data/services/auth")] = lambda h: (
            401, {}, b"<html><h3>Login attempt failed. Please try again.</h3></html>")
        client = XnatClient(Credentials(server.url, USER, "not-" + PASSWORD))
        with pytest.raises(XnatHttpError) as err:
            client.request("GET", "/data/thing")
        assert err.value.status == 401
        assert "Login attempt failed" in str(err.value)
        _secret_free(str(err.value), caplog.text, repr(client.http), repr(client.credentials))

    def test_basic_fallback_when_the_auth_service_is_missing(self, server):
        del server.routes[("PUT", "/data/services/auth")]
        conn = _conn(server)
        assert conn.request("GET", "/data/thing").status == 200
        assert server.seen[-1]["headers"]["Authorization"] == BASIC

    def test_alias_token_uses_basic_and_takes_xnats_cookie(self, server):
        def set_cookie(handler: Scripted) -> tuple[int, dict[str, str], bytes]:
            status, headers, body = _ok()(handler)
            server.tokens.add(TOKEN)
            return status, {**headers, "Set-Cookie": f"JSESSIONID={TOKEN}; Path=/"}, body
        server.routes[("*", "/data/thing")] = set_cookie
        conn = XnatConnection(server.url, ALIAS, ALIAS_SECRET)
        conn.request("GET", "/data/thing")
        conn.request("GET", "/data/thing")
        assert "/data/services/auth" not in [s["path"] for s in server.seen]
        assert server.seen[0]["headers"]["Authorization"] == _basic(ALIAS, ALIAS_SECRET)
        assert server.seen[1]["headers"] == {**server.seen[1]["headers"],
                                             "Cookie": f"JSESSIONID={TOKEN}"}
        assert "Authorization" not in server.seen[1]["headers"]


class TestStatuses:
    def test_any_status_is_returned_with_xnats_message(self, server):
        conn = _conn(server)
        resp = conn.request("GET", "/data/missing")
        assert (resp.status, resp.message) == (404, "Not Found")

    def test_timeout_is_a_transport_error_that_says_so(self, server):
        def slow(handler: Scripted) -> tuple[int, dict[str, str], bytes]:
            time.sleep(1.0)
            return 200, {}, b"late"
        server.routes[("GET", "/data/slow")] = slow
        conn = _conn(server, timeout=0.2)
        with pytest.raises(XnatTransportError, match=r"did not answer within 0\.2 s") as err:
            conn.request("GET", "/data/slow")
        assert err.value.timeout is True

    def test_connection_closed_by_xnat_while_idle_is_reopened(self, server):
        def close_after(handler: Scripted) -> tuple[int, dict[str, str], bytes]:
            handler.close_connection = True  # closes after answering, without saying so
            return 200, {}, b"ok"
        server.routes[("GET", "/data/closing")] = close_after
        conn = _conn(server)
        conn.request("GET", "/data/closing")
        time.sleep(0.2)
        assert conn.request("GET", "/data/thing").body == b"ok"
        assert len({s["peer"] for s in server.seen}) == 2


class TestStreaming:
    def test_upload_is_streamed_from_the_file_with_its_length(self, server, tmp_path):
        big = tmp_path / "big.zip"
        with big.open("wb") as out:
            for _ in range(48):
                out.write(b"\x5a" * MB)
        conn = _conn(server)
        conn.request("GET", "/data/thing")  # login first: only the upload is measured
        tracemalloc.start()
        try:
            resp = conn.request("POST", "/data/thing", body=big,
                                headers={"Content-Type": "application/zip"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status == 200
        sent = server.seen[-1]
        assert sent["headers"]["Content-Length"] == str(48 * MB)
        assert "Transfer-Encoding" not in sent["headers"]
        assert sent["received"] == 48 * MB
        assert peak < 8 * MB  # a few blocks, never the 48 MB file

    def test_download_is_streamed_to_a_file(self, server, tmp_path):
        source = tmp_path / "src.bin"
        with source.open("wb") as out:
            for k in range(32):
                out.write(bytes([k]) * MB)
        server.routes[("GET", "/data/files")] = lambda h: (
            200, {"Content-Length": str(32 * MB)}, source)
        conn = _conn(server)
        conn.request("GET", "/data/thing")
        target = tmp_path / "got.bin"
        tracemalloc.start()
        try:
            resp = conn.request("GET", "/data/files", download=target)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert resp.status == 200 and resp.body == b""
        assert target.read_bytes() == source.read_bytes()
        assert peak < 8 * MB

    def test_import_dicom_zip_streams(self, server, tmp_path):
        archive = tmp_path / "d.zip"
        archive.write_bytes(b"PK" + b"\x00" * (3 * MB))
        server.routes[("POST", "/data/services/import")] = _ok(b"/data/archive/x\r\n")
        client = XnatClient(Credentials(server.url, USER, PASSWORD))
        assert client.import_dicom_zip(archive, project="P", subject="S",
                                       session_label="E") == "/data/archive/x"
        assert server.seen[-1]["received"] == 3 * MB + 2


class TestRedirects:
    def test_same_origin_redirect_is_followed_with_the_session(self, server):
        server.routes[("POST", "/data/old")] = lambda h: (307, {"Location": "/data/thing"},
                                                          b"")
        server.routes[("GET", "/data/see")] = lambda h: (
            303, {"Location": f"{server.url}/data/thing?x=1"}, b"")
        conn = _conn(server)
        assert conn.request("POST", "/data/old", body=b"payload").body == b"ok"
        assert server.seen[-1]["method"] == "POST" and server.seen[-1]["received"] == 7
        assert conn.request("GET", "/data/see").body == b"ok"
        assert server.seen[-1]["target"] == "/data/thing?x=1"
        assert server.seen[-1]["headers"]["Cookie"].startswith("JSESSIONID=")

    def test_redirect_to_another_origin_is_refused(self, server, other_server, caplog):
        caplog.set_level(logging.DEBUG)
        other_server.routes[("*", "/steal")] = _ok()
        server.routes[("GET", "/data/away")] = lambda h: (
            302, {"Location": f"{other_server.url}/steal"}, b"")
        client = XnatClient(Credentials(server.url, USER, PASSWORD))
        with pytest.raises(XnatRequestError, match="redirected to another address") as err:
            client.request("GET", "/data/away")
        assert other_server.seen == []  # not followed, with or without credentials
        assert other_server.url in str(err.value)
        _secret_free(str(err.value), caplog.text)

    def test_same_host_other_scheme_is_another_origin(self, server):
        server.routes[("GET", "/data/tls")] = lambda h: (
            301, {"Location": f"https://127.0.0.1:{server.server_address[1]}/x"}, b"")
        with pytest.raises(XnatRequestError, match="another address"):
            _conn(server).request("GET", "/data/tls")


class TestAddresses:
    def test_credentials_in_the_address_are_refused_and_not_shown(self, monkeypatch):
        address = f"https://{USER}:{PASSWORD}@xnat.example.org"
        with pytest.raises(XnatRequestError) as err:
            check_address(address)
        assert "https://xnat.example.org" in str(err.value)
        _secret_free(str(err.value))
        monkeypatch.setenv("XNAT_USER", USER)
        monkeypatch.setenv("XNAT_PASS", PASSWORD)
        with pytest.raises(XnatRequestError) as err:
            load_credentials(address)
        _secret_free(str(err.value))

    def test_plain_http_warns_once_per_address_not_for_loopback(self, caplog, monkeypatch):
        monkeypatch.setattr(xhttp, "_warned_plain", set())
        caplog.set_level(logging.WARNING, logger="xnatpic.xnat.http")
        check_address("http://xnat.example.org")
        check_address("http://xnat.example.org/")
        check_address("http://127.0.0.1:8080")
        check_address("http://localhost")
        check_address("https://xnat.example.org")
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1
        assert warnings[0].startswith("http://xnat.example.org is plain HTTP")

    def test_upload_refuses_credentials_in_server_address(self, tmp_path, capsys,
                                                          monkeypatch):
        from xnatpic.cli.main import main

        monkeypatch.setenv("XNAT_USER", USER)
        monkeypatch.setenv("XNAT_PASS", PASSWORD)
        (tmp_path / "src").mkdir()
        rc = main(["upload", str(tmp_path / "src"), "--project", "P", "--server",
                   f"https://{USER}:{PASSWORD}@xnat.example.org"])
        out = capsys.readouterr()
        assert rc != 0
        _secret_free(out.out, out.err)


@pytest.fixture
def tls_server(tmp_path) -> Iterator[ThreadingHTTPServer]:
    """The scripted server over HTTPS with a self-signed certificate for 127.0.0.1."""
    import shutil
    import ssl
    import subprocess

    assert shutil.which("openssl"), "openssl is needed to make the test certificate"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    httpd.seen, httpd.tokens, httpd.logins = [], set(), 0
    httpd.routes = {("PUT", "/data/services/auth"): _login, ("*", "/data/thing"): _ok()}
    httpd.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.cert = cert
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


class TestTls:
    def test_unknown_certificate_is_refused(self, tls_server):
        with pytest.raises(XnatTransportError, match="CERTIFICATE_VERIFY_FAILED") as err:
            _conn(tls_server).request("GET", "/data/thing")
        _secret_free(str(err.value))
        assert tls_server.seen == []  # nothing sent, the password least of all

    def test_trusted_certificate_is_accepted(self, tls_server, monkeypatch):
        monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.cert))
        assert _conn(tls_server).request("GET", "/data/thing").body == b"ok"

    def test_insecure_skips_the_check_and_says_so_once(self, tls_server, caplog,
                                                         monkeypatch):
        monkeypatch.setattr(xhttp, "_warned_plain", set())
        caplog.set_level(logging.WARNING, logger="xnatpic.xnat.http")
        assert _conn(tls_server, verify=False).request("GET", "/data/thing").body == b"ok"
        _conn(tls_server, verify=False)
        assert [r.getMessage() for r in caplog.records] == [
            f"{tls_server.url}: the certificate is not verified (--insecure): anyone on the "
            "way can read the password"]


class TestProxy:
    def test_https_proxy_variable_tunnels_with_connect(self, server, monkeypatch):
        """HTTP(S)_PROXY as urllib honoured them: CONNECT to XNAT, then the same requests
        through the tunnel (the proxy sees no credentials: they travel inside)."""
        import socket

        seen: list[bytes] = []
        listener = socket.create_server(("127.0.0.1", 0))

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                return
            finally:
                dst.close()

        def proxy() -> None:
            client, _ = listener.accept()
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            seen.append(head)
            host, port = head.split()[1].decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
            pipe(client, upstream)

        threading.Thread(target=proxy, daemon=True).start()
        for name in ("no_proxy", "NO_PROXY", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
        conn = _conn(server)
        assert conn.request("GET", "/data/thing").body == b"ok"
        assert conn.request("GET", "/data/thing").body == b"ok"  # the same tunnel
        conn.close()
        listener.close()
        assert len(seen) == 1
        assert seen[0].startswith(f"CONNECT 127.0.0.1:{server.server_address[1]} ".encode())
        assert PASSWORD.encode() not in seen[0] and b"Authorization" not in seen[0]
