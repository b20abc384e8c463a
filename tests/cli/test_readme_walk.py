"""Issue 11: a walk through the READMEs runs every command they show, without an edit.

The commands are read from the documents themselves, not copied here: every ```sh block of
README.md (run as one bash script per block, ``set -euo pipefail``, in a fresh folder laid
out as a clone: ``.venv/bin/xnatpic`` and ``.venv/bin/python`` are this venv's,
``commands/`` and ``pipelines/`` this checkout's, ``../shared`` the real corpus), and every
``xnatpic launch`` block of containers/README.md and containers/*/README.md (with
``--runtime local`` added, as containers/README.md says any of them may be, so no image is
needed) or runs the venv's Python. A command fails the walk when it exits non-zero or
prints a traceback; a launch may end "not applicable" (exit 3, a documented outcome) only
where the session has no scan for the step (:data:`NOT_APPLICABLE`). The image examples
(``podman run``/``docker run`` of a built image) are walked by tests/containers.

Only the commands that need what a test machine has not are left out, each named in
:data:`NOT_RUN` with the reason (an XNAT server, a registry, a Swarm, an image, an ROI
collection drawn in XNAT's viewer); a documented command not listed there is run, so a new
or changed command is walked as soon as it is written. Placeholders the documents use for
the reader's own data (:data:`PLACEHOLDERS`) are given real values: a synthetic IVIS click
folder, the corpus, a session resource of masks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent
README = PROJECT_ROOT / "README.md"
CONTAINER_READMES = [PROJECT_ROOT / "containers" / "README.md",
                     *sorted((PROJECT_ROOT / "containers").glob("*/README.md"))]

#: Documented commands not run here (substring of the joined command → why).
NOT_RUN = {
    "--server https://xnat.example.org": "needs an XNAT server",
    "RPORT": "the Swarm walk of tests/swarm (a private dockerd, registry and swarm)",
    "--runtime swarm": "the Swarm walk of tests/swarm",
    "roi-collection=tumour_d0": "an ROI collection drawn in XNAT's viewer "
                                "(tests/roi/test_roi_collection.py)",
}

#: Steps with no scan in the phantom session (it has no FAIR pair of inversion modes).
NOT_APPLICABLE = {"xnatpic-perfusion"}

#: The reader's own data in the documents → what the walk gives instead.
PLACEHOLDERS = {
    "/data/2024-05-14": "../shared/data/paravision/pv6-acidocest",
    "'<your salt>'": "$(openssl rand -hex 16)",
}


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the ```language blocks of a Markdown text."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def indented_blocks(text: str) -> list[str]:
    """The bodies of the 4-space indented code blocks of a Markdown text (outside fences)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    blocks, current = [], []
    for line in text.splitlines():
        if line.startswith("    ") or (current and not line.strip()):
            current.append(line[4:])
            continue
        if current:
            blocks.append("\n".join(current).strip("\n"))
        current = []
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return [b for b in blocks if b]


def commands(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def runnable(command: str) -> bool:
    return not any(marker in command for marker in NOT_RUN)


def script(block: str, *, local: bool = False) -> str:
    """A bash script of a block's runnable commands (``--runtime local`` added to each
    ``xnatpic launch`` when ``local``), placeholders replaced."""
    lines = []
    for command in commands(block):
        if not runnable(command):
            continue
        for placeholder, value in PLACEHOLDERS.items():
            command = command.replace(placeholder, value)
        if local and "xnatpic launch" in command:
            if "--runtime" not in command:
                command = re.sub(r"(xnatpic launch \S+)", r"\1 --runtime local", command)
            command += " || test $? -eq 3"  # not applicable: checked in the reports
        lines.append(command)
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


def clone_like(folder: Path, corpus: Path) -> Path:
    """A folder laid out as a fresh clone beside ``shared/`` (what the READMEs assume)."""
    walk = folder / "walk"
    walk.mkdir()
    (walk / ".venv").symlink_to(BIN.parent)  # the venv whole: its python finds pyvenv.cfg
    for name in ("commands", "pipelines"):
        (walk / name).symlink_to(PROJECT_ROOT / name)
    (folder / "shared" / "data").mkdir(parents=True)
    (folder / "shared" / "data" / "paravision").symlink_to(corpus)
    return walk


def run_script(text: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{cwd / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
           "COLUMNS": "200"}
    env.pop("XNAT_HOST", None)
    return subprocess.run(["bash", "-c", text], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900, check=False)


def assert_walked(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode == 0, f"{text}\n--- stdout\n{proc.stdout[-3000:]}\n" \
                                 f"--- stderr\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


def write_ivis_click(folder: Path) -> None:
    """A synthetic Living Image click folder (xnatpic.optical.synthetic) where README.md's
    IVIS example expects the reader's own."""
    from xnatpic.optical.synthetic import GaussianSource, SyntheticClick, write_click

    write_click(folder, SyntheticClick(sources=[GaussianSource(4.0, 6.0, 0.5, 1.0e8)]))


def test_readme_blocks_parse():
    """The walk reads what it should: README.md's blocks hold the commands a new user is
    shown first, and every skipped command is one NOT_RUN names."""
    text = README.read_text()
    shown = [c for block in fenced_blocks(text, "sh") for c in commands(block)]
    assert any(c.startswith(".venv/bin/xnatpic convert") for c in shown)
    assert any("session-maps.json" in c for c in shown)
    assert [c for c in shown if not runnable(c)] == [
        c for c in shown if "--server https://xnat.example.org" in c]


def test_readme_walk(tmp_path, corpus):
    """Every ```sh block of README.md, in order, in a folder laid out as a fresh clone."""
    walk = clone_like(tmp_path, corpus)
    text = README.read_text()
    write_ivis_click(walk / "IVIS" / "JD20230412103000_002")
    write_ivis_click(walk / "data" / "JD20230412103000_002")
    (csv,) = fenced_blocks(text, "csv")
    (walk / "animals.csv").write_text(csv)
    for block in fenced_blocks(text, "sh"):
        if block.lstrip().startswith("make "):
            continue  # make demo / make test: the lead's and CI's own runs
        body = script(block)
        assert_walked(run_script(body, walk), body)
    session = walk / "ARCHIVE" / "PRECLIN" / "arc001" / "plateforme_18062016_20160718"
    # what the README says the walk leaves: a run folder, the session index, the ROI
    # statistics folder of the automatic mask and the project summary
    assert (session / "RESOURCES" / "T2MAP" / "nlls-scan90001" / "report.html").is_file()
    assert (session / "RESOURCES" / "SESSION_MAPS" / "index.html").is_file()
    assert (session / "RESOURCES" / "ROISTATS" / "auto" / "roi_stats.csv").is_file()
    summary = walk / "ARCHIVE" / "PRECLIN" / "RESOURCES" / "PROJECT_SUMMARY"
    for name in ("summary.html", "summary.csv", "animals.csv", "groups.csv",
                 "comparisons.csv", "summary.json"):
        assert (summary / name).is_file(), name
    assert list((summary / "plots").glob("*.png"))
    assert list((walk / "out-nii").rglob("9-1_T2map_MSME.nii"))  # --nifti-compression none


#: How the walked commands of the containers' READMEs begin.
WALKED = ("xnatpic launch", ".venv/bin/", "for step")


def launch_blocks() -> list[tuple[str, str]]:
    """(document, block) of every indented block of the containers' READMEs that launches
    a command and has something runnable."""
    found = []
    for path in CONTAINER_READMES:
        for block in indented_blocks(path.read_text()):
            if any(runnable(c) and (c.startswith(WALKED) or "xnatpic launch" in c)
                   for c in commands(block)):
                found.append((str(path.relative_to(PROJECT_ROOT)), block))
    return found


def test_container_readmes_launch_locally(tmp_path, corpus):
    """Every `xnatpic launch` block of containers/README.md and the step READMEs, in order,
    with --runtime local, on an archive whose session is the documents' `mouse1_d0` (the
    phantom in project PRECLIN, a synthetic IVIS click in project BLI), with the mask
    resources they name."""
    walk = clone_like(tmp_path, corpus)
    write_ivis_click(walk / "ivis" / "JD20230412103000_002")
    proc = run_script(
        "set -euo pipefail\n"
        "xnatpic phantom studies/phantom --seed 0\n"
        "xnatpic upload studies --project PRECLIN --archive ARCHIVE"
        " --session-template mouse1_d0\n"
        "xnatpic upload ivis --project BLI --archive ARCHIVE --session-template mouse1_d0\n",
        walk)
    assert_walked(proc, "archive")
    session = walk / "ARCHIVE" / "PRECLIN" / "arc001" / "mouse1_d0"
    blocks = launch_blocks()
    assert {doc for doc, _ in blocks} >= {"containers/README.md",
                                          "containers/roi-stats/README.md",
                                          "containers/session-maps/README.md",
                                          "containers/project-summary/README.md"}
    masks = ("MASKS", "SEGMENTATIONS")
    ran_masks = False
    for doc, block in blocks:
        if any(f"mask={m}" in block for m in masks) and not ran_masks:
            _write_masks(session, masks)
            ran_masks = True
        body = script(block, local=True)
        assert_walked(run_script(body, walk), f"{doc}:\n{body}")
    assert (walk / "ARCHIVE" / "PRECLIN" / "RESOURCES" / "PROJECT_SUMMARY"
            / "summary.html").is_file()
    reports = [json.loads(p.read_text()) for p in
               sorted((walk / "xnatpic-launches").glob("report-*.json"))]
    assert len(reports) >= 10
    assert not [r["command"] for r in reports if r["failed"]]
    assert {r["command"] for r in reports if r["not_applicable"]} <= NOT_APPLICABLE


def _write_masks(session: Path, labels: tuple[str, ...]) -> None:
    """Session resources of masks (a NIfTI label map: the t2map run's own fit mask, label
    1) under each name the documents use for the reader's mask resource."""
    fits = sorted((session / "RESOURCES" / "T2MAP").glob("*/nifti/mask.nii.gz"))
    assert fits, "no t2map run before the roi-stats example"
    for label in labels:
        folder = session / "RESOURCES" / label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "labels.nii.gz").write_bytes(fits[0].read_bytes())
        (folder / "labels_labels.json").write_text('{"1": "phantom"}')


@pytest.mark.parametrize("marker", sorted(NOT_RUN))
def test_every_skip_is_still_documented(marker):
    """A NOT_RUN entry whose command left the documents is stale: remove it."""
    texts = [README.read_text(), *(p.read_text() for p in CONTAINER_READMES)]
    assert any(marker in c for t in texts
               for block in [*fenced_blocks(t, "sh"), *indented_blocks(t)]
               for c in commands(block)), marker
