"""Render a report page in headless Chromium (Debian's ``chromium``) and say what went wrong.

The browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes on file descriptors 3 and 4), so the check is the
browser's own: every ``<img>`` decoded (``complete`` and a non-zero ``naturalWidth``), no
failed load, no script exception or console error, and every local link target on disk.

Usage in a test::

    page = render(out / "report.html", screenshot=tmp_path / "report.png")
    assert page.problems == []

Chromium is an oracle: :func:`tests.oracles.require_executable` fails the test under
``XNATPIC_REQUIRE_ORACLES=1`` (``make test``, CI) when it is missing.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.oracles import require_executable

__all__ = ["Rendered", "render"]

#: Flags for a headless, offline, throw-away browser (no sandbox: tests may run as root).
_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-file-access-from-files", "--remote-debugging-pipe", "--window-size=1280,1000",
)
_IMAGES = """JSON.stringify(Array.from(document.images).map(i => ({
    src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})))"""
_LINKS = """JSON.stringify(Array.from(document.querySelectorAll('a[href]'))
    .map(a => a.href))"""


@dataclass
class Rendered:
    """What the browser saw on one page.

    Attributes
    ----------
    page:
        The rendered file.
    title:
        ``document.title``.
    text:
        The page's visible text (``document.body.innerText``).
    images:
        Every image's resolved URL.
    links:
        Every link's resolved URL.
    problems:
        One line per failure: a broken image, a failed load, a script error, a console
        error, a local link to a missing file. Empty when the page is sound.
    screenshot:
        The full-page PNG, when asked for.
    """

    page: Path
    title: str = ""
    text: str = ""
    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class _Pipe:
    """The DevTools protocol over Chromium's pipe: one request at a time, events kept."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self._proc = proc
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError(f"Chromium closed its pipe (exit {self._proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._out, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == method:
                return


def _problems_from_events(events: list[dict[str, Any]]) -> list[str]:
    problems = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            problems.append(f"script error: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = " ".join(str(a.get("value", a.get("description", "")))
                            for a in params.get("args", []))
            problems.append(f"console error: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            problems.append(f"{entry.get('source', 'log')} error: {entry.get('text')} "
                            f"{entry.get('url', '')}".rstrip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"failed load: {params.get('errorText')} "
                            f"({params.get('type', '')} request {params.get('requestId')})")
    return problems


def _local_path(url: str) -> Path | None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(urllib.parse.unquote(parsed.path))


def _evaluate(pipe: _Pipe, session: str, expression: str) -> Any:
    result = pipe.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                       session=session)
    return result.get("result", {}).get("value")


def render(page: Path, screenshot: Path | None = None, timeout: float = 90.0) -> Rendered:
    """Load ``page`` (a local HTML file) in headless Chromium and report what is wrong.

    Parameters
    ----------
    page:
        The HTML file.
    screenshot:
        Where to write a full-page PNG (optional).
    timeout:
        Seconds for the load and each protocol call.

    Returns
    -------
    Rendered
        Title, text, resolved image and link URLs, and the problems found.
    """
    chromium = require_executable("chromium", "Debian package chromium (make tools)")
    page = Path(page).resolve()
    rendered = Rendered(page=page)
    if not page.is_file():
        rendered.problems.append(f"no such page: {page}")
        return rendered
    to_r, to_w = os.pipe()      # browser reads commands on fd 3
    from_r, from_w = os.pipe()  # browser writes answers on fd 4
    # Chromium's helper processes may still write the profile as it is removed
    with tempfile.TemporaryDirectory(prefix="xnatpic-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        def _child_fds() -> None:
            # Copy first: either pipe end may already sit on 3 or 4.
            commands, answers = os.dup(to_r), os.dup(from_w)
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        proc = subprocess.Popen(
            [chromium, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4, to_r, from_w), preexec_fn=_child_fds)
        os.close(to_r)
        os.close(from_w)
        pipe = _Pipe(proc, to_w, from_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
            session = pipe.call("Target.attachToTarget",
                                {"targetId": target["targetId"], "flatten": True},
                                timeout=timeout)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", session=session, timeout=timeout)
            pipe.events.clear()
            pipe.call("Page.navigate", {"url": page.as_uri()}, session=session,
                      timeout=timeout)
            pipe.wait_for("Page.loadEventFired", timeout=timeout)
            rendered.title = _evaluate(pipe, session, "document.title") or ""
            rendered.text = _evaluate(pipe, session, "document.body.innerText") or ""
            images = json.loads(_evaluate(pipe, session, _IMAGES) or "[]")
            rendered.images = [i["src"] for i in images]
            rendered.links = json.loads(_evaluate(pipe, session, _LINKS) or "[]")
            if screenshot is not None:
                shot = pipe.call("Page.captureScreenshot",
                                 {"format": "png", "captureBeyondViewport": True},
                                 session=session, timeout=timeout)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
                rendered.screenshot = screenshot
            rendered.problems += _problems_from_events(pipe.events)
            rendered.problems += [f"broken image: {i['src']}" for i in images if not i["ok"]]
            for link in rendered.links:
                target_path = _local_path(link.split("#", 1)[0])
                if target_path is not None and not target_path.exists():
                    rendered.problems.append(f"link to a missing file: {target_path}")
        finally:
            os.close(to_w)
            os.close(from_r)
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=30)
    return rendered
