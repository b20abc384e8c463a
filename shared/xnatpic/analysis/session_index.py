"""One page per session: every map run, its status and headline values, with previews.

:func:`write_session_index` reads a session in archive layout
(``<project>/arc001/<session>/RESOURCES/<LABEL>/<run-key>/``, as the map steps write their
runs, :mod:`xnatpic.analysis.outputs`) and writes ``index.html`` and ``index.json``: for
every run of every map resource its step, method, scans, outcome, median SNR, fraction of
valid voxels, the headline values of its primary maps with their units (whole mask, and
each ROI of ``RESOURCES/ROISTATS/roi_stats.csv`` when roi-stats has run), and links to
its report, statistics and previews. Every link is relative to the index, so the pages
work wherever the archive is opened (or served by XNAT).
"""

from __future__ import annotations

import csv
import datetime as _dt
import html
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from xnatpic import __version__
from xnatpic.analysis.previews import Preview
from xnatpic.analysis.report import PREVIEW_STYLE, format_number, preview_figure
from xnatpic.analysis.runs import map_run, run_folders

__all__ = ["INDEX_FILES", "collect_runs", "scans_text", "write_self_contained_index",
           "write_session_index"]

_log = logging.getLogger(__name__)

_STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:90em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;
padding:3px 8px;text-align:left;vertical-align:top}th{background:#eee}
.complete{color:#1b5e20;font-weight:bold}.warning{color:#b71c1c;font-weight:bold}
.sub{color:#555}figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
figure img{max-width:28em;border:1px solid #ccc}figcaption{font-size:90%}
""" + PREVIEW_STYLE


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _log.warning("%s: skipped, not readable JSON (%s)", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _run_folders(session_dir: Path) -> list[tuple[Path, Path]]:
    """(resource, run folder) of every map run: ``RESOURCES/<L>/<key>/stats.json`` (and a
    resource holding ``stats.json`` itself, the layout before run folders)."""
    def holds(folder: Path) -> bool:
        return (folder / "stats.json").is_file() and (folder / "provenance.json").is_file()

    return [(resource, run)
            for resource in sorted(p for p in (session_dir / "RESOURCES").glob("*")
                                   if p.is_dir())
            for run in run_folders(resource, holds)]


def _roi_rows(session_dir: Path) -> list[dict[str, str]]:
    """Rows of the session's roi_stats.csv files (none when roi-stats has not run)."""
    rows: list[dict[str, str]] = []
    for path in sorted((session_dir / "RESOURCES" / "ROISTATS").rglob("roi_stats.csv")):
        with path.open(encoding="utf-8", newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def _headline(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    whole = entry.get("whole") or {}
    return {"map": name, "unit": entry.get("unit", ""), "role": entry.get("role", "primary"),
            **{k: whole.get(k) for k in ("median", "q1", "q3", "mean", "sd", "n_voxels")},
            "valid_fraction": whole.get("fraction_fitted")}


def collect_runs(session_dir: Path, out_dir: Path) -> list[dict[str, Any]]:
    """Every map run of a session as an index entry (links relative to ``out_dir``)."""
    session_dir = Path(session_dir)
    roi_rows = _roi_rows(session_dir)

    def link(path: Path) -> str | None:
        return Path(os.path.relpath(path, out_dir)).as_posix() if path.is_file() else None

    runs = []
    for resource, folder in _run_folders(session_dir):
        stats = _read_json(folder / "stats.json") or {}
        prov = _read_json(folder / "provenance.json") or {}
        run = map_run(resource, folder, prov, stats)
        label, key = run.resource, run.run_key
        maps = stats.get("maps") or {}
        primary = {n: e for n, e in maps.items()
                   if isinstance(e, dict) and run.role(n) == "primary" and "whole" in e}
        headline = [_headline(n, e) for n, e in primary.items()]
        fractions = [h["valid_fraction"] for h in headline if h["valid_fraction"] is not None]
        valid = stats.get("valid_fraction", min(fractions) if fractions else None)
        previews = [{"map": n, "png": link(folder / f"png/{n}.png"),
                     "status_png": link(folder / f"png/{n}_status.png"),
                     "figure": e.get("preview_figure"),
                     "status_figure": e.get("status_preview_figure")}
                    for n, e in primary.items()]
        previews += [{"map": caption, "png": link(folder / "png" / f), "status_png": None,
                      "figure": None, "status_figure": None}
                     for caption, f in (("Z-spectrum", "zspectrum.svg"),
                                        ("V1 direction", "V1_direction.png"))]
        rois = [{"map": r.get("map"), "roi": r.get("roi"), "unit": r.get("units", ""),
                 **{k: r.get(k) for k in ("median", "q1", "q3", "mean", "sd", "n")}}
                for r in roi_rows if r.get("resource") == label
                and (r.get("run_key") or "") == key and r.get("map") in primary]
        noise = stats.get("noise") or {}
        runs.append({
            "resource": label, "run_key": key, "step": run.step, "method": run.method,
            "scans": run.scans,
            "outcome": stats.get("outcome", "unknown"),
            "outcome_reason": stats.get("outcome_reason", ""),
            "median_snr": noise.get("median_snr"), "valid_fraction": valid,
            "mask_voxels": stats.get("mask_voxels"), "headline": headline, "roi": rois,
            "report": link(folder / "report.html"), "stats": link(folder / "stats.json"),
            "provenance": link(folder / "provenance.json"),
            "previews": [p for p in previews if p["png"]],
            "session": prov.get("session") or {}})
    return runs


def _identity(session_dir: Path, runs: list[dict[str, Any]], subject: str | None,
              project: str | None, session: str | None = None) -> dict[str, str | None]:
    """Project, subject and session: as given, else the archive layout
    (``<project>/arc001/<session>``) and the runs' provenance (the subject the DICOM
    routing or PatientName named)."""
    folder = Path(session_dir)
    if project is None and folder.parent.name.startswith("arc"):
        project = folder.parent.parent.name
    if subject is None:
        subject = next((r["session"].get("subject") for r in runs
                        if r["session"].get("subject")), None)
    return {"project": project, "subject": subject, "session": session or folder.name}


def _value(h: dict[str, Any]) -> str:
    if h.get("median") in (None, ""):
        return f"{h['map']}: no value"
    unit = h.get("unit") or ""
    text = f"{h['map']}: median {format_number(float(h['median']))} {unit}"
    if h.get("q1") not in (None, "") and h.get("q3") not in (None, ""):
        text += f" [IQR {format_number(float(h['q1']))}–{format_number(float(h['q3']))}]"
    if h.get("mean") not in (None, ""):
        sd = h.get("sd")
        text += (f"; mean {format_number(float(h['mean']))}"
                 + ("" if sd in (None, "") else f" ± {format_number(float(sd))}") + f" {unit}")
    return text


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def scans_text(scans: dict[str, str]) -> str:
    """The scans of a run by role, for a reader: ``source`` (the scan that keys the run)
    only where no other role names it.

    Examples
    --------
    >>> scans_text({"source": "7", "cest": "7", "wassr": "8"})
    'cest 7, wassr 8'
    >>> scans_text({"source": "2"})
    'source 2'
    """
    named = [v for k, v in scans.items() if k != "source"]
    return ", ".join(f"{k} {v}" for k, v in scans.items()
                     if k != "source" or v not in named)


def _row(run: dict[str, Any]) -> str:
    css = "complete" if run["outcome"] == "complete" else "warning"
    status = html.escape(run["outcome"]) + (
        f"<br><span class='sub'>{html.escape(run['outcome_reason'])}</span>"
        if run["outcome_reason"] else "")
    values = "<br>".join(html.escape(_value(h)) for h in run["headline"]) or "-"
    if run["roi"]:
        values += "<br>" + "<br>".join(
            html.escape(f"ROI {r['roi']}: " + _value(r)) for r in run["roi"])
    report = (f"<a href='{html.escape(run['report'])}'>report</a>" if run["report"]
              else "-")
    snr = "-" if run["median_snr"] is None else format_number(float(run["median_snr"]))
    return (f"<tr><td>{html.escape(run['resource'])}</td>"
            f"<td><a href='#{html.escape(run['resource'])}-{html.escape(run['run_key'])}'>"
            f"{html.escape(run['run_key'] or '-')}</a></td>"
            f"<td>{html.escape(str(run['step']))} ({html.escape(str(run['method']))})</td>"
            f"<td>{html.escape(scans_text(run['scans']))}</td><td class='{css}'>{status}</td>"
            f"<td>{snr}</td>"
            f"<td>{_pct(run['valid_fraction'])}</td><td>{values}</td><td>{report}</td></tr>")


def _previews(run: dict[str, Any]) -> str:
    anchor = f"{run['resource']}-{run['run_key']}"
    parts = [f"<h2 id='{html.escape(anchor)}'>{html.escape(run['resource'])} / "
             f"{html.escape(run['run_key'] or '-')}: {html.escape(run['outcome'])}</h2>"]
    for p in run["previews"]:
        for key, figure, caption in (("png", "figure", p["map"]),
                                     ("status_png", "status_figure",
                                      f"{p['map']} voxel status")):
            if p.get(key):
                parts.append(_figure(p[key], caption, p.get(figure)))
    return "\n".join(parts)


def _figure(link: str, caption: str, description: dict[str, Any] | None) -> str:
    """A preview linked to its file: with its slice numbers, colour bar and legend as the
    step report draws them (:func:`~xnatpic.analysis.report.preview_figure`) when its
    run recorded them, the plain picture otherwise (a plot, a run of an older xnatpic)."""
    image = (f"<a href='{html.escape(link)}'><img src='{html.escape(link)}' "
             f"alt='{html.escape(caption)}'></a>")
    if description:
        try:
            return preview_figure(Preview.described(Path(link), caption, description), image)
        except (KeyError, TypeError, ValueError) as exc:
            _log.warning("session index: the scale of %s is unreadable (%s); shown without",
                         link, exc)
    return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"


def write_session_index(session_dir: Path, out_dir: Path, *, subject: str | None = None,
                        project: str | None = None, session: str | None = None) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/index.json`` for one session.

    Parameters
    ----------
    session_dir : Path
        The session in archive layout (``.../arc001/<session>``, with ``RESOURCES/``).
    out_dir : Path
        Where the index goes (created); links are relative to it.
    subject, project, session : str, optional
        The subject, project and session labels (a caller holding XNAT's metadata gives
        them); default: the subject the runs' provenance names, the project of the archive
        path, the session folder's name.

    Returns
    -------
    Path
        ``out_dir/index.html``.
    """
    session_dir, out_dir = Path(session_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = collect_runs(session_dir, out_dir)
    who = _identity(session_dir, runs, subject, project, session)
    document = {"project": who["project"], "subject": who["subject"],
                "session": who["session"], "xnatpic_version": __version__,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "links": "relative to this file", "runs": runs}
    (out_dir / "index.json").write_text(json.dumps(document, indent=2, allow_nan=False)
                                        + "\n", encoding="utf-8")
    title = f"Session {who['session']}"
    sub = (f"subject {who['subject'] or 'unknown'}"
           + (f" · project {who['project']}" if who["project"] else "")
           + f" · {len(runs)} map run{'s' if len(runs) != 1 else ''}")
    head = "".join(f"<th>{h}</th>" for h in (
        "resource", "run", "step (method)", "scans", "status", "median SNR", "valid voxels",
        "headline values (whole mask; ROIs)", "report"))
    body = "".join(_row(r) for r in runs) or (
        "<tr><td colspan='9'>no map run in this session (run a map step first)</td></tr>")
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
            f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(sub)}</p>"
            f"<table><tr>{head}</tr>{body}</table>\n"
            + "\n".join(_previews(r) for r in runs)
            + f"<p class='sub'>xnatpic {html.escape(__version__)}; "
            "<a href='index.json'>index.json</a></p></body></html>")
    path = out_dir / "index.html"
    path.write_text(page, encoding="utf-8")
    _log.info("session index: %s (%d runs)", path, len(runs))
    return path


def _link_back(report: Path, index: Path) -> None:
    """Put a link to the session index at the top of a copied step report."""
    href = html.escape(Path(os.path.relpath(index, report.parent)).as_posix())
    text = report.read_text(encoding="utf-8")
    nav = f"<p class='sub'><a href='{href}'>&larr; session index</a></p>"
    head, body, rest = text.partition("<body>")
    report.write_text(head + body + nav + rest if body else nav + text, encoding="utf-8")


#: What a self-contained index copies of each run: no NIfTI or DICOM.
INDEX_FILES = ("report.html", "stats.json", "stats.csv", "provenance.json", "png")


def write_self_contained_index(session_dir: Path, out_dir: Path, *,
                               subject: str | None = None,
                               project: str | None = None) -> Path:
    """The session index in ``out_dir`` with every run's report, statistics and previews
    copied beside it (``RESOURCES/<LABEL>/<run-key>/``, :data:`INDEX_FILES`; each copied
    report links back to the index) and the session's ``roi_stats.csv`` tables.

    Every link of the page stays inside the folder, so it works wherever the folder is
    stored: as an XNAT resource served at ``.../resources/<LABEL>/files/`` (where a link
    to another resource of the session would need XNAT's URL layout, not the archive's),
    in the archive and in a downloaded copy.

    Parameters
    ----------
    session_dir : Path
        The session in archive layout (``RESOURCES/<LABEL>/<run-key>/``).
    out_dir : Path
        The folder of the index and its copies (created).
    subject, project : str, optional
        As for :func:`write_session_index`; the project defaults to the one of
        ``session_dir``'s archive path.

    Returns
    -------
    Path
        ``out_dir/index.html``.
    """
    session_dir, out_dir = Path(session_dir), Path(out_dir)
    resources = session_dir / "RESOURCES"
    for resource, folder in _run_folders(session_dir):
        target = out_dir / "RESOURCES" / resource.name / folder.relative_to(resource)
        for name in INDEX_FILES:
            source = folder / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True)
            elif source.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
        if (target / "report.html").is_file():
            _link_back(target / "report.html", out_dir / "index.html")
    for table in (resources / "ROISTATS").rglob("roi_stats.csv"):
        target = out_dir / table.relative_to(session_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(table, target)
    if project is None and session_dir.parent.name.startswith("arc"):
        project = session_dir.parent.parent.name
    return write_session_index(out_dir, out_dir, subject=subject, project=project,
                               session=session_dir.name)
