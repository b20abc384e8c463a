"""Run one resolved launch with podman, docker or as a local process, then store outputs.

Mirrors the Container Service: inputs fed by wrapper inputs are the archive folders
mounted read-only, every other mount is a fresh writable folder of a per-launch build
directory, XNAT_HOST/XNAT_USER/XNAT_PASS (and XNAT_WORKFLOW_ID, XNAT_EVENT_ID) are in the
environment, stdout and stderr are kept as logs, and outputs are stored as resources
on their ``as-a-child-of`` parent in the archive only when the process exits 0.

:func:`launch` starts from a session (session- and scan-context wrappers);
:func:`launch_project` launches a project-context wrapper (root input a ``Project``) once
on a project folder, mounted read-only as XNAT mounts the project's archive folder, its
Resource outputs stored in ``<project>/RESOURCES/<label>/``.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import resource
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.errors import XnatpicError
from xnatpic.xnat.archive import XnatObject, load_project, load_session
from xnatpic.xnat.errors import ContainerRuntimeError, LaunchError
from xnatpic.xnat.resolve import ResolvedCommand, find_wrapper, resolve
from xnatpic.xnat.runtime import detect_runtime, image_entrypoint, runtime_env

__all__ = [
    "XNAT_ENV",
    "LaunchOptions",
    "LaunchResult",
    "container_argv",
    "launch",
    "launch_project",
    "rewrite_paths",
    "store_outputs",
]

_log = logging.getLogger(__name__)

#: Variables the Container Service sets in every container.
XNAT_ENV = ("XNAT_HOST", "XNAT_USER", "XNAT_PASS", "XNAT_WORKFLOW_ID", "XNAT_EVENT_ID")


@dataclass
class LaunchOptions:
    """How to run a launch.

    Attributes
    ----------
    runtime : str
        ``auto`` (docker with an engine, else podman), ``docker``, ``podman`` or ``local``.
    image_override : str or None
        Run this image instead of the command's ``image``.
    entrypoint : list of str or None
        For ``local``: the program the command line is given to (default: the image's
        ENTRYPOINT, read with docker/podman).
    build_root : Path
        Where each launch gets its build folder (output mounts, logs, launch.json).
    network : str or None
        Container network (default ``none``, or ``host`` when XNAT_HOST is set).
    timeout : float or None
        Seconds before the launch is stopped and failed.
    limits : bool
        Apply ``limit-memory``, ``reserve-memory`` and ``limit-cpu`` to the container.
    """

    runtime: str = "auto"
    image_override: str | None = None
    entrypoint: list[str] | None = None
    build_root: Path = field(default_factory=lambda: Path("xnatpic-launches"))
    network: str | None = None
    timeout: float | None = None
    limits: bool = True


@dataclass
class LaunchResult:
    """What happened to one launch (JSON-ready through :meth:`as_dict`).

    ``session`` and ``session_dir`` name the root launched on: a session, or the project
    for a project launch (``root_type`` says which).
    """

    session: str
    session_dir: str
    wrapper: str
    root_type: str = "Session"
    status: str = "Failed"
    exit_code: int | None = None
    build_dir: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    stored: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    max_rss_mib: float | None = None

    @property
    def ok(self) -> bool:
        """True when the container exited 0 and every output was stored."""
        return self.status == "Complete"

    def as_dict(self) -> dict[str, Any]:
        """The result as a dict."""
        return asdict(self)


def rewrite_paths(text: str, mapping: dict[str, str]) -> str:
    """Replace container paths by host paths where they start a path in ``text``.

    Examples
    --------
    >>> rewrite_paths("--input /input --output=/output/x /inputs", {"/input": "/a",
    ...               "/output": "/b"})
    '--input /a --output=/b/x /inputs'
    """
    for container in sorted(mapping, key=len, reverse=True):
        pattern = re.compile(r"(?<![\w./-])" + re.escape(container.rstrip("/"))
                             + r"(?=/|$|[^\w.-])")
        text = pattern.sub(lambda _m, c=container: mapping[c].rstrip("/"), text)
    return text


def _xnat_env(workflow: str) -> dict[str, str]:
    return {
        "XNAT_HOST": os.environ.get("XNAT_HOST", ""),
        "XNAT_USER": os.environ.get("XNAT_USER", ""),
        "XNAT_PASS": os.environ.get("XNAT_PASS", ""),
        "XNAT_WORKFLOW_ID": workflow,
        "XNAT_EVENT_ID": workflow,
    }


def container_argv(resolved: ResolvedCommand, runtime: str, image: str,
                   hosts: dict[str, Path], env_names: list[str], *, network: str,
                   limits: bool, name: str) -> list[str]:
    """Return the ``docker run``/``podman run`` argument list of a launch.

    Environment variables are passed by name only (``-e NAME``) so their values (the
    XNAT password) never appear on a command line; the caller puts them in the
    runtime's environment.
    """
    cmd = resolved.command
    argv = [runtime, "run", "--rm", "--name", name, "--network", network]
    for mount in resolved.mounts:
        suffix = "" if mount.writable else ":ro"
        argv += ["-v", f"{hosts[mount.name]}:{mount.path}{suffix}"]
    for env_name in env_names:
        argv += ["-e", env_name]
    if limits:
        if cmd.get("limit-memory"):
            argv += ["--memory", f"{int(cmd['limit-memory'])}m"]
        if cmd.get("reserve-memory"):
            argv += ["--memory-reservation", f"{int(cmd['reserve-memory'])}m"]
        if cmd.get("limit-cpu"):
            argv += ["--cpus", str(cmd["limit-cpu"])]
    if cmd.get("working-directory"):
        argv += ["--workdir", str(cmd["working-directory"])]
    if resolved.override_entrypoint:
        return [*argv, "--entrypoint", "/bin/sh", image, "-c", resolved.command_line]
    return [*argv, image, *resolved.arguments]


def _parent_folder(parent: XnatObject, what: str) -> Path:
    if parent.directory is not None:
        if parent.type in ("Session", "Project"):
            return parent.directory / "RESOURCES"
        if parent.type in ("Scan", "Assessor"):
            return parent.directory
    raise LaunchError(f"{what}: storing on a {parent.type} is not supported by the local "
                      "archive (only projects launched with --project, sessions, scans and "
                      "assessors have a folder)")


def _write_catalog(folder: Path, label: str) -> None:
    entries = "".join(
        f'    <cat:entry URI="{p.relative_to(folder).as_posix()}" '
        f'ID="{p.relative_to(folder).as_posix()}"/>\n'
        for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(
            "_catalog.xml")
    )
    (folder / f"{label}_catalog.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<cat:Catalog xmlns:cat="http://nrg.wustl.edu/catalog" ID="{label}">\n'
        f"  <cat:entries>\n{entries}  </cat:entries>\n</cat:Catalog>\n",
        encoding="utf-8",
    )


def store_outputs(resolved: ResolvedCommand, hosts: dict[str, Path]) -> list[Path]:
    """Store every handled output in the archive; check all before copying any.

    Each output goes to its ``as-a-child-of`` parent's folder: ``RESOURCES/<label>/`` of a
    session or project, ``SCANS/<id>/<label>/`` of a scan, the assessor's folder;
    an Assessor output (one XML file) to ``ASSESSORS/<name>/`` of its session.

    Returns
    -------
    list of Path
        The resource folders written.

    Raises
    ------
    LaunchError
        When a required output is missing, an Assessor output is not one XML file or
        not on a session, or a parent has no folder in the local archive.
    """
    outputs = {o["name"]: o for o in resolved.command.get("outputs", [])}
    plans: list[tuple[dict[str, Any], Path, Path]] = []
    handler_folders: dict[str, Path] = {}
    for handler in resolved.wrapper.get("output-handlers", []):
        output = outputs[handler["accepts-command-output"]]
        source = hosts[output["mount"]] / output.get("path", "")
        what = f"output {output['name']!r} (handler {handler['name']!r})"
        if not source.exists() or (source.is_dir() and not any(source.iterdir())):
            if output.get("required", True):
                raise LaunchError(f"{what}: {source} is missing or empty; the command exited 0 "
                                  "but did not write this required output")
            continue
        parent_name = handler["as-a-child-of"]
        if parent_name in handler_folders:
            base = handler_folders[parent_name]
        else:
            parent = resolved.wrapper_inputs[parent_name].obj
            if parent is None:
                raise LaunchError(f"{what}: parent input {parent_name!r} holds no object")
            base = _parent_folder(parent, what)
        htype = handler.get("type", "Resource")
        if htype == "Resource":
            dest = base / handler["label"]
        elif htype == "Assessor":
            xmls = [source] if source.is_file() else sorted(source.glob("*.xml"))
            if len(xmls) != 1:
                raise LaunchError(f"{what}: an Assessor output must be exactly one XML file, "
                                  f"found {len(xmls)} in {source}")
            source = xmls[0]
            owner = resolved.wrapper_inputs[parent_name].obj if parent_name in \
                resolved.wrapper_inputs else None
            if owner is None or owner.type != "Session" or owner.directory is None:
                raise LaunchError(f"{what}: an Assessor is stored on a session; parent "
                                  f"{parent_name!r} is not one")
            dest = owner.directory / "ASSESSORS" / source.stem
            handler_folders[handler["name"]] = dest
        else:
            raise LaunchError(f"{what}: {htype} handlers are not supported by the local "
                              "archive; test them on XNAT")
        plans.append((handler, source, dest))
    written: list[Path] = []
    for handler, source, dest in plans:
        dest.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / source.name)
        if handler.get("type", "Resource") == "Resource":
            _write_catalog(dest, handler["label"])
        written.append(dest)
    return written


def _build_dir(root: Path, session: str, wrapper: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = root / f"{session}-{wrapper}-{stamp}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    return path


def _local_argv(resolved: ResolvedCommand, options: LaunchOptions, image: str,
                mapping: dict[str, str]) -> list[str]:
    if resolved.override_entrypoint:
        return ["/bin/sh", "-c", rewrite_paths(resolved.command_line, mapping)]
    entrypoint = options.entrypoint
    if entrypoint is None:
        try:
            entrypoint = image_entrypoint(image, detect_runtime())
        except ContainerRuntimeError as exc:
            raise LaunchError(f"--runtime local needs the image's ENTRYPOINT: give "
                              f"--entrypoint CMD ({exc})") from exc
        if not entrypoint:
            raise LaunchError(f"image {image} has no ENTRYPOINT; give --entrypoint CMD")
    return [*entrypoint, *(rewrite_paths(a, mapping) for a in resolved.arguments)]


def _run(argv: list[str], env: dict[str, str], cwd: Path | None, stdout: Path, stderr: Path,
         timeout: float | None) -> int:
    with stdout.open("wb") as out, stderr.open("wb") as err:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=err, env=env, cwd=cwd,
                                  timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise LaunchError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc
        except subprocess.TimeoutExpired as exc:
            raise LaunchError(f"stopped after {timeout:g} s (--timeout)") from exc
    return proc.returncode


def _execute(resolved: ResolvedCommand, result: LaunchResult, options: LaunchOptions,
             build: Path) -> None:
    image = options.image_override or str(resolved.command.get("image"))
    hosts: dict[str, Path] = {}
    for mount in resolved.mounts:
        if mount.host is not None:
            hosts[mount.name] = mount.host.resolve()
        else:
            folder = build / "mounts" / mount.name
            folder.mkdir(parents=True)
            folder.chmod(0o777)  # the image runs as a non-root user
            hosts[mount.name] = folder.resolve()
    workflow = f"local-{build.name}"
    env = {**_xnat_env(workflow), **resolved.environment}
    stdout, stderr = build / "stdout.log", build / "stderr.log"
    result.stdout, result.stderr = str(stdout), str(stderr)
    (build / "launch.json").write_text(
        json.dumps({**resolved.summary(), "runtime": options.runtime, "image-run": image},
                   indent=2) + "\n", encoding="utf-8")
    runtime = options.runtime
    start_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if runtime == "local":
        mapping = {m.path: str(hosts[m.name]) for m in resolved.mounts}
        argv = _local_argv(resolved, options, image, mapping)
        local_env = {**os.environ, **{k: rewrite_paths(v, mapping) for k, v in env.items()}}
        workdir = resolved.command.get("working-directory")
        cwd = Path(rewrite_paths(workdir, mapping)) if workdir else build
        _log.info("%s: running %s", result.session, shlex.join(argv))
        code = _run(argv, local_env, cwd, stdout, stderr, options.timeout)
        end_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if end_rss > start_rss:
            result.max_rss_mib = round(end_rss / 1024, 1)
    else:
        if runtime == "auto":
            runtime = detect_runtime()
        network = options.network or ("host" if env.get("XNAT_HOST") else "none")
        name = f"xnatpic-{uuid.uuid4().hex[:12]}"
        argv = container_argv(resolved, runtime, image, hosts, sorted(env), network=network,
                              limits=options.limits, name=name)
        _log.info("%s: running %s", result.session, shlex.join(argv))
        code = _run(argv, runtime_env(runtime, {**os.environ, **env}), None, stdout, stderr,
                    options.timeout)
    result.exit_code = code
    if code != 0:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-3:]
        raise LaunchError(f"exited {code}; outputs not stored; see {stderr}"
                          + (f": {' | '.join(tail)}" if tail else ""))
    result.stored = [str(p) for p in store_outputs(resolved, hosts)]


def launch(command: dict[str, Any], wrapper_name: str | None, session_dir: Path,
           params: dict[str, str] | None = None, options: LaunchOptions | None = None
           ) -> LaunchResult:
    """Launch ``wrapper_name`` of ``command`` on one archived session.

    Parameters
    ----------
    command : dict
        The command (see :func:`xnatpic.xnat.schema.load_commands`).
    wrapper_name : str or None
        Which wrapper (None: the only one).
    session_dir : Path
        A session folder in XNAT's archive layout.
    params : dict, optional
        Launch parameters by input name.
    options : LaunchOptions, optional
        Runtime, build folder, limits...

    Returns
    -------
    LaunchResult
        Never raises for a failed launch: ``status`` is ``Failed`` and ``error`` says why
        (resolution, runtime, exit code, missing outputs).
    """
    return _launch(command, wrapper_name, Path(session_dir), load_session, params, options)


def launch_project(command: dict[str, Any], wrapper_name: str | None, project_dir: Path,
                   params: dict[str, str] | None = None,
                   options: LaunchOptions | None = None) -> LaunchResult:
    """Launch a project-context wrapper of ``command`` once on an archived project.

    The wrapper's root input is a ``Project`` (see
    :func:`xnatpic.xnat.archive.load_project`): a mount it feeds is the whole project
    folder (``arc001/<session>/``, ``RESOURCES/``), read-only; Resource outputs on the
    project are stored in ``<project>/RESOURCES/<label>/`` when the process exits 0.

    Parameters
    ----------
    command : dict
        The command.
    wrapper_name : str or None
        Which wrapper (None: the only one).
    project_dir : Path
        The project folder ``<archive>/<project>`` (or its ``arc001``).
    params : dict, optional
        Launch parameters by input name.
    options : LaunchOptions, optional
        Runtime, build folder, limits...

    Returns
    -------
    LaunchResult
        ``root_type`` ``Project``; never raises for a failed launch (see :func:`launch`).
    """
    return _launch(command, wrapper_name, Path(project_dir), load_project, params, options)


def _launch(command: dict[str, Any], wrapper_name: str | None, folder: Path,
            loader: Callable[[Path], XnatObject], params: dict[str, str] | None,
            options: LaunchOptions | None) -> LaunchResult:
    options = options or LaunchOptions()
    result = LaunchResult(session=folder.name, session_dir=str(folder),
                          wrapper=wrapper_name or "?",
                          root_type="Project" if loader is load_project else "Session")
    start = time.monotonic()
    try:
        wrapper = find_wrapper(command, wrapper_name)
        result.wrapper = str(wrapper.get("name"))
        root = loader(folder)
        result.session = root.ident
        resolved = resolve(command, wrapper, root, params)
        build = _build_dir(Path(options.build_root), root.ident, result.wrapper)
        result.build_dir = str(build)
        _execute(resolved, result, options, build)
        result.status = "Complete"
    except XnatpicError as exc:
        result.error = str(exc)
    finally:
        result.seconds = round(time.monotonic() - start, 2)
        if result.build_dir:
            Path(result.build_dir, "result.json").write_text(
                json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
    return result
