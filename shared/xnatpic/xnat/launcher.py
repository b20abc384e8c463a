"""Run one resolved launch with podman, docker or as a local process, then store outputs.

As the Container Service (v3.7.3; files under container-service
``src/main/java/org/nrg/containers/``) does:

- mounts (``resolve._mounts``): an archive folder fed by a wrapper input is mounted
  read-only; a writable one is first copied into a build folder; every other mount is a
  fresh build folder, created with the default mode plus owner write (0755 under the usual
  umask), owned by whoever runs the launch (CommandResolutionServiceImpl.java:3116-3129).
  Nothing is opened to other users: the container runs as the invoking user's uid:gid
  (``--user``), as on an XNAT whose admin set the container user to XNAT's uid:gid
  (DockerControlApi.java:614).
- environment: the command's ``environment-variables`` (filled with raw input values),
  then XNAT_USER, XNAT_PASS, XNAT_HOST, XNAT_WORKFLOW_ID and XNAT_EVENT_ID
  (ContainerServiceImpl.java:816-829) added to the same immutable map builder, so a
  command naming one of them fails before any container starts ("Multiple entries with
  same key", ResolvedCommand.java:343-353 into Guava's ImmutableMap; caught as
  "Failed (Staging)", ContainerServiceImpl.java:613-615). XNAT_HOST/USER/PASS point at a
  :class:`~xnatpic.xnat.metaserver.MetadataServer` answering XNAT's REST questions from the
  local archive, with credentials made for the launch; containers use ``--network host``
  to reach it on 127.0.0.1.
- command: the ENTRYPOINT gets the split command line, or ``/bin/sh -c LINE`` with the
  entrypoint cleared when ``override-entrypoint`` is true (DockerControlApi.java:606-618);
  ``working-directory`` (filled) is the container's workdir.
- outputs, only when the process exits 0, one handler at a time in handler order
  (ContainerFinalizeServiceImpl.java:258-271, 377-394): a failure of a ``required`` output
  makes the job "Failed (Upload)" and the other outputs are still stored; a failure of an optional
  one is only logged. ``required`` defaults to false. Under a folder ``path`` everything is
  uploaded (``glob`` is ignored, :448-456 and :588-592); an empty folder still makes its
  resource.

:func:`launch` starts from a session (session- and scan-context wrappers);
:func:`launch_project` launches a project-context wrapper (root input a ``Project``) once
on a project, whose mount is the project's archive root ``<archive>/<PROJECT>/arc001``
(Project.java:91), its Resource outputs stored in ``<project>/RESOURCES/<label>/``.
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
import stat
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xnatpic.errors import XnatpicError
from xnatpic.step_output import step_outcome
from xnatpic.xnat.archive import XnatObject, load_project, load_session
from xnatpic.xnat.errors import ContainerRuntimeError, LaunchError, ResolutionError
from xnatpic.xnat.hardening import (
    PODMAN_HARDENING,
    copy_output,
    local_environment,
)
from xnatpic.xnat.local_entrypoint import (
    dockerfile_entrypoint,
    host_entrypoint,
    repository_root,
    step_of_image,
)
from xnatpic.xnat.metadata import locate_session, update_project
from xnatpic.xnat.metaserver import MetadataServer
from xnatpic.xnat.resolve import ResolvedCommand, ResolvedOutput, find_wrapper, resolve
from xnatpic.xnat.runtime import detect_runtime, image_entrypoint, runtime_env
from xnatpic.xnat.secrets import resolve_secrets
from xnatpic.xnat.swarm import ENGINE_RUNTIMES, run_on_engine

__all__ = [
    "XNAT_ENV",
    "LaunchOptions",
    "LaunchResult",
    "check_storable",
    "container_argv",
    "container_environment",
    "launch",
    "launch_project",
    "rewrite_paths",
    "store_outputs",
]

_log = logging.getLogger(__name__)

#: Variables the Container Service sets in every container (ContainerServiceImpl.java:824-828).
XNAT_ENV = ("XNAT_USER", "XNAT_PASS", "XNAT_HOST", "XNAT_WORKFLOW_ID", "XNAT_EVENT_ID")

#: Workflow statuses a launch ends with (ContainerServiceImpl.java:1791-1809 and
#: ContainerFinalizeServiceImpl.java:258-271).
COMPLETE = "Complete"
FAILED = "Failed"
FAILED_RESOLUTION = "Failed (Command resolution)"
FAILED_STAGING = "Failed (Staging)"
FAILED_UPLOAD = "Failed (Upload)"


class _Failed(XnatpicError):
    """A launch failure with the workflow status XNAT would give it."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LaunchOptions:
    """How to run a launch.

    Attributes
    ----------
    runtime : str
        ``auto`` (docker with an engine, else podman), ``docker`` (the Engine API),
        ``swarm`` (a Swarm service, :mod:`xnatpic.xnat.swarm`), ``podman`` or ``local``.
    image_override : str or None
        Run this image instead of the command's ``image``.
    entrypoint : list of str or None
        For ``local``: the program the command line is given to (default: the image's
        ENTRYPOINT, read with docker/podman).
    build_root : Path
        Where each launch gets its build folder (output mounts, logs, launch.json).
    network : str or None
        Container network (default ``host``: the metadata server listens on 127.0.0.1).
    timeout : float or None
        Seconds before the launch is stopped and failed.
    limits : bool
        Apply ``limit-memory``, ``reserve-memory`` and ``limit-cpu`` to the container.
    user : str or None
        ``UID:GID`` the container runs as (XNAT's "container user"); default the invoking
        user's, who owns the build folders.
    xnat_env : dict or None
        XNAT_HOST, XNAT_USER and XNAT_PASS to give the step instead of starting a local
        metadata server (to let it ask a real XNAT).
    prune : bool
        Remove a launch's output folders from its build folder once every output is
        stored (logs, launch.json and result.json stay); a failed launch keeps them.
    """

    runtime: str = "auto"
    image_override: str | None = None
    entrypoint: list[str] | None = None
    build_root: Path = field(default_factory=lambda: Path("xnatpic-launches"))
    network: str | None = None
    timeout: float | None = None
    limits: bool = True
    user: str | None = None
    xnat_env: dict[str, str] | None = None
    prune: bool = False


@dataclass
class LaunchResult:
    """What happened to one launch (JSON-ready through :meth:`as_dict`).

    ``session`` and ``session_dir`` name the root launched on: a session, or the project
    for a project launch (``root_type`` says which). ``status`` is the workflow status
    XNAT would show: ``Complete``, ``Failed`` (non-zero exit), ``Failed (Upload)``,
    ``Failed (Staging)`` or ``Failed (Command resolution)``; ``outcome`` is what it means
    here, where a step that does not apply to the session is not a failure.
    """

    session: str
    session_dir: str
    wrapper: str
    root_type: str = "Session"
    status: str = FAILED
    exit_code: int | None = None
    build_dir: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    stored: list[str] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    max_rss_mib: float | None = None
    step_outcome: str | None = None  # what the step said of itself (step_output)
    task: dict[str, Any] | None = None  # docker/swarm: the engine's run (xnatpic.xnat.swarm)

    @property
    def ok(self) -> bool:
        """True when the container exited 0 and every required output was stored."""
        return self.status == COMPLETE

    @property
    def outcome(self) -> str:
        """``complete``, ``not applicable`` (the step exited
        :data:`~xnatpic.step_output.NOT_APPLICABLE_EXIT`: nothing to do in this session),
        ``not enough signal`` (:data:`~xnatpic.step_output.NOT_ENOUGH_SIGNAL_EXIT`: the
        data cannot give a map) or ``failed``; XNAT shows the middle two Failed."""
        if self.ok:
            return "complete"
        return self.step_outcome or "failed"

    @property
    def not_applicable(self) -> bool:
        """The step found nothing to do in this session."""
        return self.step_outcome == "not applicable"

    def as_dict(self) -> dict[str, Any]:
        """The result as a dict (with its ``outcome``)."""
        return {**asdict(self), "outcome": self.outcome}


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


def container_environment(resolved: ResolvedCommand, xnat: dict[str, str]) -> dict[str, str]:
    """The container's environment: the command's variables, then XNAT's five.

    Raises
    ------
    _Failed
        ``Failed (Staging)`` when the command names one of XNAT's variables: XNAT adds its
        own to the same immutable map and Guava refuses a second entry for a key
        (ResolvedCommand.java:343-353, ContainerServiceImpl.java:794-795).
    """
    env = dict(resolved.environment)
    for name in XNAT_ENV:
        if name in env:
            shown = "****" if name == "XNAT_PASS" else xnat.get(name, "")
            raise _Failed(FAILED_STAGING, (
                f"Multiple entries with same key: {name}={env[name]} and {name}={shown} "
                f"(the command's environment-variables name {name}, which XNAT sets itself; "
                "remove it from the command)"))
        env[name] = xnat.get(name, "")
    return env


def _default_user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def container_argv(resolved: ResolvedCommand, runtime: str, image: str,
                   hosts: dict[str, Path], env_names: list[str], *, network: str,
                   limits: bool, name: str, user: str | None = None) -> list[str]:
    """Return the ``docker run``/``podman run`` argument list of a launch.

    Environment variables are passed by name only (``-e NAME``) so their values (the
    XNAT password) never appear on a command line; the caller puts them in the
    runtime's environment. Binds are ``HOST:PATH`` plus ``:ro`` when not writable
    (Container.java:847-849).
    """
    cmd = resolved.command
    argv = [runtime, "run", "--rm", "--name", name, "--network", network,
            "--user", user or _default_user()]
    if runtime == "podman" and os.getuid() != 0:
        argv += ["--userns", "keep-id"]  # rootless podman: host uid stays the uid inside
    if runtime == "podman":
        argv += PODMAN_HARDENING  # xnatpic only, not CS (xnat/hardening.py)
    for mount in resolved.mounts:
        suffix = "" if mount.writable else ":ro"
        argv += ["-v", f"{hosts[mount.name]}:{mount.path}{suffix}"]
    for env_name in env_names:
        argv += ["-e", env_name]
    for key, value in resolved.container_labels.items():
        argv += ["--label", f"{key}={value}"]
    if limits:
        if cmd.get("limit-memory"):
            argv += ["--memory", f"{int(cmd['limit-memory'])}m"]
        if cmd.get("reserve-memory"):
            argv += ["--memory-reservation", f"{int(cmd['reserve-memory'])}m"]
        if cmd.get("limit-cpu"):
            argv += ["--cpus", str(cmd["limit-cpu"])]
    if resolved.working_directory:
        argv += ["--workdir", resolved.working_directory]
    if resolved.override_entrypoint:
        return [*argv, "--entrypoint", "", image, "/bin/sh", "-c", resolved.command_line]
    return [*argv, image, *resolved.arguments]


def _parent_folder(parent: XnatObject) -> Path:
    if parent.directory is not None:
        if parent.type == "Session":
            return parent.directory / "RESOURCES"
        if parent.type == "Project":
            return parent.directory.parent / "RESOURCES"
        if parent.type in ("Scan", "Assessor"):
            return parent.directory
    raise LaunchError(f"storing on a {parent.type} is not supported by the local archive "
                      "(only projects, sessions, scans and assessors have a folder)")


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


def _register_resource(dest: Path, parent: XnatObject, label: str) -> None:
    """Give a new resource its database key in the archive's metadata."""
    if parent.type == "Project" and parent.directory is not None:
        archive, project = parent.directory.parent.parent, parent.ident
    else:
        session_dir = parent.directory if parent.type == "Session" else None
        owner = parent.children.get("Session", [None])[0] if session_dir is None else None
        session_dir = session_dir or (owner.directory if owner else None)
        where = locate_session(session_dir) if session_dir else None
        if where is None:
            return
        archive, project = where[0], where[1]
    with update_project(archive, project) as meta:
        meta.resource_key(f"{parent.uri}/resources/{label}")


def _upload_one(output: ResolvedOutput, resolved: ResolvedCommand, hosts: dict[str, Path],
                created: dict[str, tuple[XnatObject, Path]]) -> Path:
    """Store one output handler's files; return the folder written.

    Raises
    ------
    LaunchError
        Why this output could not be stored (ContainerFinalizeServiceImpl.java:396-575).
    """
    if output.mount not in hosts:
        raise LaunchError(f'Mount "{output.mount}" does not exist.')
    root = hosts[output.mount]
    source = root / output.path if output.path else root
    if not source.exists():
        raise LaunchError(f"Could not upload files to resource: {source} does not exist "
                          f"(output path {output.path!r} in mount {output.mount!r})")
    if output.parent in created:
        parent_obj, base = created[output.parent]
    else:
        winp = resolved.wrapper_inputs.get(output.parent)
        parent_obj = winp.obj if winp is not None else None
        if parent_obj is None:
            raise LaunchError(f'Cannot upload output "{output.name}". Could not instantiate '
                              f'object from input "{output.parent}".')
        base = _parent_folder(parent_obj)
    if output.type == "Resource":
        label = output.label or output.name
        dest = base / label
        # A label that exists is merged into, as xnat-web's DefaultCatalogService
        # createAndInsertResourceCatalog reuses the catalog of that label and copies each
        # entry in (same names overwritten, other files kept; docs/xnat-conformance.md).
        dest.mkdir(parents=True, exist_ok=True)
        copy_output(source, dest)  # never follows symbolic links (issue 16)
        _write_catalog(dest, label)
        _register_resource(dest, parent_obj, label)
        return dest
    if output.type == "Assessor":
        xmls = [source] if source.is_file() else sorted(source.iterdir())
        if len(xmls) != 1 or not xmls[0].name.endswith(".xml"):
            raise LaunchError(f"Expecting precisely one xml file to upload for Assessor; "
                              f"found {[p.name for p in xmls]} in {source}")
        if parent_obj.type != "Session" or parent_obj.directory is None:
            raise LaunchError(f"output {output.name!r}: an Assessor is stored on a session; "
                              f"parent {output.parent!r} is a {parent_obj.type}")
        dest = parent_obj.directory / "ASSESSORS" / xmls[0].stem
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(xmls[0], dest / xmls[0].name)
        assessor = XnatObject("Assessor", {"id": xmls[0].stem, "uri": (
            f"{parent_obj.uri}/assessors/{xmls[0].stem}")}, dest,
            {"Session": [parent_obj]})
        created[output.handler] = (assessor, dest)
        return dest
    raise LaunchError(f"output {output.name!r}: {output.type} handlers are not supported by "
                      "the local archive; test them on XNAT")


def store_outputs(resolved: ResolvedCommand, hosts: dict[str, Path]
                  ) -> tuple[list[Path], list[str], list[str]]:
    """Store each output on its own, in handler order, as XNAT's finalizing step does.

    Returns
    -------
    stored : list of Path
        The folders written.
    required_failures : list of str
        Why required outputs failed (the job is then "Failed (Upload)").
    optional_failures : list of str
        Why optional outputs failed (only logged by XNAT).
    """
    stored: list[Path] = []
    required: list[str] = []
    optional: list[str] = []
    created: dict[str, tuple[XnatObject, Path]] = {}
    for output in resolved.outputs:
        try:
            stored.append(_upload_one(output, resolved, hosts, created))
        except (LaunchError, OSError) as exc:
            message = f"output {output.name}: {exc}"
            _log.error("Cannot upload files for command output %s: %s", output.name, exc)
            (required if output.required else optional).append(message)
    return stored, required, optional


def _build_dir(root: Path, session: str, wrapper: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    path = root / f"{session}-{wrapper}-{stamp}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    return path


def _make_build_folder(folder: Path) -> None:
    """A new folder with the default mode plus owner write, as XNAT creates one
    (CommandResolutionServiceImpl.java:3116-3129: createDirectory, setWritable(true))."""
    folder.mkdir(parents=True)
    folder.chmod(folder.stat().st_mode | stat.S_IWUSR)


def _local_entrypoint(image: str) -> list[str]:
    """The host command standing in for ``image``'s ENTRYPOINT (``--runtime local``).

    From a clone: the step's Dockerfile (``containers/<step>/Dockerfile``) mapped onto the
    clone's ``pipelines/`` and this Python (:mod:`xnatpic.xnat.local_entrypoint`);
    otherwise the image's own ENTRYPOINT, read with docker or podman.
    """
    root = repository_root()
    if root is not None:
        dockerfile = root / "containers" / step_of_image(image) / "Dockerfile"
        entrypoint = dockerfile_entrypoint(dockerfile) if dockerfile.is_file() else None
        if entrypoint:
            return host_entrypoint(entrypoint, root)
    try:
        entrypoint = image_entrypoint(image, detect_runtime())
    except ContainerRuntimeError as exc:
        raise LaunchError(f"--runtime local: image {image} is not a step of this clone "
                          f"(no containers/{step_of_image(image)}/Dockerfile) and its "
                          f"ENTRYPOINT cannot be read ({exc}); give --entrypoint CMD") from exc
    if not entrypoint:
        raise LaunchError(f"image {image} has no ENTRYPOINT; give --entrypoint CMD")
    return host_entrypoint(entrypoint, root) if root is not None else entrypoint


def _local_argv(resolved: ResolvedCommand, options: LaunchOptions, image: str,
                mapping: dict[str, str]) -> list[str]:
    if resolved.override_entrypoint:  # host paths quoted: the shell sees them as one word
        quoted = {path: shlex.quote(host) for path, host in mapping.items()}
        return ["/bin/sh", "-c", rewrite_paths(resolved.command_line, quoted)]
    entrypoint = options.entrypoint or _local_entrypoint(image)
    return [*entrypoint, *(rewrite_paths(a, mapping) for a in resolved.arguments)]


def _unwritable(folder: Path) -> Path | None:
    """The first existing folder at or above ``folder`` when it cannot be written, else
    None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return None if os.access(existing, os.W_OK) else existing


def check_storable(resolved: ResolvedCommand, archive: Path | None) -> None:
    """Refuse a launch whose outputs could not be stored, before the step runs.

    Raises
    ------
    LaunchError
        Naming the folder that cannot be written (a read-only archive, another owner's).
    """
    folders = []
    for output in resolved.outputs:
        winp = resolved.wrapper_inputs.get(output.parent)
        if winp is not None and winp.obj is not None:
            try:
                folders.append(_parent_folder(winp.obj))
            except LaunchError:
                continue  # reported when storing, as XNAT does
    if archive is not None and folders:
        folders.append(archive / ".xnatpic")
    for folder in folders:
        blocked = _unwritable(folder)
        if blocked is not None:
            raise LaunchError(f"outputs would be stored in {folder}, but {blocked} is not "
                              "writable (a read-only archive?); nothing was run: make the "
                              "archive writable or launch on a writable copy")


def _prune_outputs(resolved: ResolvedCommand, hosts: dict[str, Path], build: Path) -> None:
    """Remove the build folder's mounts once their outputs are stored (logs stay)."""
    for mount in resolved.mounts:
        if mount.host is None and mount.name in hosts:
            folder = build / "mounts" / mount.name
            if folder.is_dir():
                shutil.rmtree(folder)
    mounts = build / "mounts"
    if mounts.is_dir() and not any(mounts.iterdir()):
        mounts.rmdir()


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


def _archive_of(root: XnatObject) -> Path | None:
    if root.type == "Project" and root.directory is not None:
        return root.directory.parent.parent
    where = locate_session(root.directory) if root.directory is not None else None
    return where[0] if where else None


def _execute(resolved: ResolvedCommand, result: LaunchResult, options: LaunchOptions,
             build: Path, xnat: dict[str, str]) -> None:
    image = options.image_override or str(resolved.command.get("image"))
    workflow = f"local-{build.name}"
    env = container_environment(resolved, {**xnat, "XNAT_WORKFLOW_ID": workflow,
                                           "XNAT_EVENT_ID": workflow})
    env.update(resolve_secrets(resolved.command))
    hosts: dict[str, Path] = {}
    for mount in resolved.mounts:
        if mount.host is not None:
            hosts[mount.name] = mount.host.resolve()
            continue
        folder = build / "mounts" / mount.name
        _make_build_folder(folder)
        if mount.copy_from is not None and mount.copy_from.is_file():
            # CRSI 2745-2747: a file is copied into the build folder and mounted itself
            shutil.copy2(mount.copy_from, folder / mount.copy_from.name)
            folder = folder / mount.copy_from.name
        elif mount.copy_from is not None:
            shutil.copytree(mount.copy_from, folder, dirs_exist_ok=True)
        hosts[mount.name] = folder.resolve()
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
        local_env = local_environment({k: rewrite_paths(v, mapping) for k, v in env.items()})
        workdir = resolved.working_directory
        cwd = Path(rewrite_paths(workdir, mapping)) if workdir else build
        _log.info("%s: running %s", result.session, shlex.join(argv))
        code = _run(argv, local_env, cwd, stdout, stderr, options.timeout)
        end_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if end_rss > start_rss:
            result.max_rss_mib = round(end_rss / 1024, 1)
    else:
        if runtime == "auto":
            runtime = detect_runtime()
        network = options.network or "host"
        if network != "host" and xnat.get("XNAT_HOST", "").startswith("http://127.0.0.1:"):
            _log.warning("%s: network %r: the step cannot reach the archive's metadata at "
                         "%s (use the host network)", result.session, network,
                         xnat["XNAT_HOST"])
        name = f"xnatpic-{uuid.uuid4().hex[:12]}"
        if runtime in ENGINE_RUNTIMES:  # through the Docker Engine API, as CS does
            run = run_on_engine(runtime, resolved, image, hosts, env, name=name,
                                user=options.user or _default_user(), network=network,
                                limits=options.limits, timeout=options.timeout,
                                stdout=stdout, stderr=stderr)
            result.task = run.as_dict()
            result.max_rss_mib = run.memory.get("peak_mib")
            if run.failure:
                raise _Failed(FAILED, f"{run.failure}; outputs not stored")
            code = int(run.exit_code if run.exit_code is not None else -1)
        else:
            argv = container_argv(resolved, runtime, image, hosts, sorted(env),
                                  network=network, limits=options.limits, name=name,
                                  user=options.user)
            _log.info("%s: running %s", result.session, shlex.join(argv))
            code = _run(argv, runtime_env(runtime, {**os.environ, **env}), None, stdout,
                        stderr, options.timeout)
    result.exit_code = code
    last = (stderr.read_text(errors="replace").strip().splitlines() or [""])[-1]
    said = step_outcome(code, last)
    if said is not None:  # XNAT shows Failed; the step says why it made no map
        result.step_outcome = said
        raise _Failed(FAILED, f"{last} (see {stderr})")
    if code != 0:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-3:]
        raise _Failed(FAILED, f"exited {code}; outputs not stored; see {stderr}"
                      + (f": {' | '.join(tail)}" if tail else ""))
    stored, required, optional = store_outputs(resolved, hosts)
    result.stored = [str(p) for p in stored]
    result.warnings += optional
    if required:
        raise _Failed(FAILED_UPLOAD, "Failed to upload required outputs. "
                      + " | ".join(required))
    if options.prune:
        _prune_outputs(resolved, hosts, build)


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
        A session folder in XNAT's archive layout (``<archive>/<P>/arc001/<label>``).
    params : dict, optional
        Launch parameters by input name.
    options : LaunchOptions, optional
        Runtime, build folder, limits...

    Returns
    -------
    LaunchResult
        Never raises for a failed launch: ``status`` says how it failed and ``error`` why.
    """
    return _launch(command, wrapper_name, Path(session_dir), load_session, params, options)


def launch_project(command: dict[str, Any], wrapper_name: str | None, project_dir: Path,
                   params: dict[str, str] | None = None,
                   options: LaunchOptions | None = None) -> LaunchResult:
    """Launch a project-context wrapper of ``command`` once on an archived project.

    A mount the ``Project`` input feeds is the project's archive root
    ``<archive>/<PROJECT>/arc001`` (its session folders), read-only; Resource outputs on
    the project are stored in ``<project>/RESOURCES/<label>/``.

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
        try:
            resolved = resolve(command, wrapper, root, params)
            resolve_secrets(command)  # CS: a secret without a value fails the launch
        except ResolutionError as exc:
            raise _Failed(FAILED_RESOLUTION, str(exc)) from exc
        archive = _archive_of(root)
        check_storable(resolved, archive)
        try:
            build = _build_dir(Path(options.build_root), root.ident, result.wrapper)
        except OSError as exc:
            raise LaunchError(f"--build-dir {options.build_root}: cannot create a build "
                              f"folder: {exc.strerror}") from exc
        result.build_dir = str(build)
        with ExitStack() as stack:
            xnat = options.xnat_env
            if xnat is None:
                if archive is None:
                    xnat = {}
                else:
                    xnat = stack.enter_context(MetadataServer(archive)).env()
            _execute(resolved, result, options, build, xnat)
        result.status = COMPLETE
    except _Failed as exc:
        result.status = exc.status
        result.error = str(exc)
    except XnatpicError as exc:
        result.error = str(exc)
    except OSError as exc:  # a disk that fills up or turns read-only during the launch
        result.error = f"{exc.filename or 'build folder'}: {exc.strerror or exc}"
    finally:
        result.seconds = round(time.monotonic() - start, 2)
        if result.build_dir:
            try:
                Path(result.build_dir, "result.json").write_text(
                    json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")
            except OSError as exc:
                _log.error("%s: cannot write result.json: %s", result.build_dir, exc)
    return result
