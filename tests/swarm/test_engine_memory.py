"""xnatpic.xnat.engine_memory.cgroup_memory_files: a container's memory cgroup found from
its process, on cgroup v1 and v2 layouts written here, and never another cgroup's. The
measurement itself is checked on the real engine by every launch of test_swarm_runs
(``record`` requires a measured peak)."""

from __future__ import annotations

from pathlib import Path

from xnatpic.xnat.engine_memory import cgroup_memory_files

CONTAINER = "4f" * 32  # a 64-hex container id


def _proc(tmp_path: Path, pid: int, lines: list[str]) -> Path:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cgroup").write_text("\n".join(lines) + "\n")
    return proc


def _cgroup(folder: Path, names: tuple[str, ...]) -> None:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text("1\n")


def test_cgroup_v1_memory_files_of_the_container(tmp_path):
    root = tmp_path / "cgroup"
    _cgroup(root / "memory" / "docker" / CONTAINER,
            ("memory.max_usage_in_bytes", "memory.usage_in_bytes", "memory.stat"))
    proc = _proc(tmp_path, 42, ["12:pids:/docker/" + CONTAINER,
                                f"4:memory:/docker/{CONTAINER}", "0::/"])
    files = cgroup_memory_files(42, CONTAINER, root, proc)
    assert files is not None
    assert [f.name for f in files] == ["memory.max_usage_in_bytes", "memory.usage_in_bytes",
                                       "memory.stat"]
    assert files[0].parent == root / "memory" / "docker" / CONTAINER


def test_cgroup_v2_memory_files_of_a_systemd_scope(tmp_path):
    root = tmp_path / "cgroup"
    scope = f"system.slice/docker-{CONTAINER}.scope"
    _cgroup(root / scope, ("memory.peak", "memory.current", "memory.stat"))
    proc = _proc(tmp_path, 7, [f"0::/{scope}"])
    files = cgroup_memory_files(7, CONTAINER, root, proc)
    assert files is not None and files[0] == root / scope / "memory.peak"


def test_another_process_or_a_missing_file_is_never_taken(tmp_path):
    root = tmp_path / "cgroup"
    other = "ab" * 32
    _cgroup(root / "memory" / "docker" / other,
            ("memory.max_usage_in_bytes", "memory.usage_in_bytes", "memory.stat"))
    # a pid of this host that is not the container's (a remote engine's pid)
    proc = _proc(tmp_path, 5, [f"4:memory:/docker/{other}"])
    assert cgroup_memory_files(5, CONTAINER, root, proc) is None
    # no such process
    assert cgroup_memory_files(6, CONTAINER, root, proc) is None
    # the container's cgroup without a high-water mark file (a kernel before 5.19 on v2)
    _cgroup(root / "docker" / CONTAINER, ("memory.current", "memory.stat"))
    proc = _proc(tmp_path / "b", 8, [f"0::/docker/{CONTAINER}"])
    assert cgroup_memory_files(8, CONTAINER, root, proc) is None
