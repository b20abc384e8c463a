"""§3: every map step through the local launcher on the converted phantom (SNR 100).

Accuracy is measured against the phantom's truth maps, compartment by compartment
(labels 1-6): the signed median relative error ``median((fit - truth) / truth)`` must be
within 1 % for T2, T2*, T1 (VTR and IR), ADC and MD; FA within 0.02 in the anisotropic
fibre vial (in isotropic compartments FA has a noise floor, checked separately); B0 from
WASSR within 0.02 ppm of the truth at every voxel's compartment median; MTRasym within
0.005 of the analytic value from truth.json's pools and amplitude maps.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.analysis.conftest import RESOURCES, launch_step
from tests.analysis.helpers import run_dir
from tests.browser import render
from tests.oracles import require_executable
from xnatpic.analysis.report import format_number
from xnatpic.analysis.session_index import write_session_index
from xnatpic.phantom import read_truth, read_truth_map

#: Truth geometry of each step's phantom scan.
GEOMETRY = {"t2map": "axial", "t2starmap": "axial", "t1map": "axial", "t1map-ir": "axial",
            "adcmap": "oblique", "cest": "axial"}


#: Run key of each launch below (<method>-scan<id>).
RUN_KEYS = {"t2map": "nlls-scan2", "t2starmap": "nlls-scan5", "t1map": "vtr-scan3",
            "adcmap": "loglinear-scan6", "cest": "lorentzian-scan7", "t1map-ir": "ir-scan4",
            "t1map-ir-only": "ir-scan4"}


@pytest.fixture(scope="module")
def runs(phantom_session, phantom_dicom, tmp_path_factory) -> dict[str, Path]:
    """Launch every step once; step -> the run folder in its stored resource."""
    build = tmp_path_factory.mktemp("builds")
    out: dict[str, Path] = {}
    for step in ("t2map", "t2starmap", "t1map", "adcmap", "cest"):
        result = launch_step(step, phantom_session, build)
        assert result.ok, (step, result.error, Path(result.stderr).read_text()[-3000:])
        assert [Path(p).name for p in result.stored] == [RESOURCES[step]]
        out[step] = run_dir(phantom_session / "RESOURCES" / RESOURCES[step], RUN_KEYS[step])
    # T1 by inversion recovery on the IR scan of the same session: a second T1MAP run
    result = launch_step("t1map", phantom_session, build, {"scan": "4"})
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
    out["t1map-ir"] = run_dir(phantom_session / "RESOURCES" / "T1MAP", "ir-scan4")
    # and a session whose only T1 scan is the IR one (auto-detected)
    ir_root = tmp_path_factory.mktemp("ir")
    ir_session = ir_root / "PRECLIN" / "arc001" / "ir_only"
    shutil.copytree(phantom_dicom["4"], ir_session / "SCANS" / "4" / "DICOM")
    result = launch_step("t1map", ir_session, build)
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
    out["t1map-ir-only"] = run_dir(ir_session / "RESOURCES" / "T1MAP")
    return out


def _map(resource: Path, name: str) -> np.ndarray:
    return np.asarray(nib.load(resource / "nifti" / f"{name}.nii.gz").dataobj)


def _truth(study: Path, geometry: str, name: str) -> np.ndarray:
    """Truth map transposed from (slice, row, column) to the maps' (x, y, z)."""
    return read_truth_map(study, geometry, name).transpose(2, 1, 0)


def _median_relative_errors(fit: np.ndarray, truth: np.ndarray, labels: np.ndarray
                            ) -> dict[int, float]:
    out = {}
    for label in np.unique(labels[labels > 0]):
        inside = labels == label
        out[int(label)] = float(np.nanmedian((fit[inside] - truth[inside]) / truth[inside]))
    return out


@pytest.mark.parametrize(("step", "name", "truth_name"), [
    ("t2map", "T2", "T2"),
    ("t2starmap", "T2star", "T2s"),
    ("t1map", "T1", "T1"),
    ("t1map-ir", "T1", "T1"),
    ("adcmap", "ADC", "MD"),
    ("adcmap", "MD", "MD"),
])
def test_median_relative_error_within_1_percent(runs, phantom_study, step, name, truth_name):
    geometry = GEOMETRY[step]
    labels = _truth(phantom_study, geometry, "labels")
    fit = _map(runs[step], name)
    assert fit.shape == labels.shape
    errors = _median_relative_errors(fit, _truth(phantom_study, geometry, truth_name), labels)
    assert len(errors) == 6
    worst = max(errors.values(), key=abs)
    assert abs(worst) <= 0.01, errors
    # every compartment voxel was fitted (finite) and inside the automatic mask
    mask = _map(runs[step], "mask") > 0
    assert mask[labels > 0].mean() > 0.99
    assert np.isfinite(fit[labels > 0]).mean() > 0.99


def test_t1_methods_auto_detected(runs):
    vtr = json.loads((runs["t1map"] / "provenance.json").read_text())
    ir = json.loads((runs["t1map-ir-only"] / "provenance.json").read_text())
    assert vtr["parameters"]["method"] == "vtr" and vtr["scans"] == {"source": "3"}
    assert ir["parameters"]["method"] == "ir" and ir["scans"] == {"source": "4"}
    assert (vtr["method"], vtr["run_key"]) == ("vtr", "vtr-scan3")
    assert (ir["method"], ir["run_key"]) == ("ir", "ir-scan4")
    # 9 inversion times and a repetition time: the auto IR model is the timed one with the
    # inversion factor fitted.
    assert ir["parameters"]["ir_model"] == "timed-free" and "ir_model" not in vtr["parameters"]


def test_fa_in_fibre_vial_within_002(runs, phantom_study):
    labels = _truth(phantom_study, "oblique", "labels")
    fa = _map(runs["adcmap"], "FA")
    truth = _truth(phantom_study, "oblique", "FA")
    fibre = labels == 5  # vial_D_fibre, the only anisotropic compartment
    assert truth[fibre].min() > 0.3
    assert abs(float(np.nanmedian(fa[fibre])) - float(np.median(truth[fibre]))) <= 0.02
    # isotropic compartments: FA is the noise floor only (truth 0)
    assert float(np.nanmedian(fa[(labels > 0) & ~fibre])) < 0.1


def test_v1_along_fibre(runs, phantom_study):
    """V1 (image axes) points along the fibre direction of the truth tensor."""
    labels = _truth(phantom_study, "oblique", "labels")
    tensor = read_truth_map(phantom_study, "oblique", "D").transpose(2, 1, 0, 3, 4)
    fibre = labels == 5
    v1 = _map(runs["adcmap"], "V1")[fibre]
    affine = nib.load(runs["adcmap"] / "nifti" / "V1.nii.gz").affine
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    world_ras = v1 @ axes.T
    d = tensor[fibre][0]
    principal = np.linalg.eigh(d)[1][:, -1]  # subject frame = DICOM LPS
    principal_ras = principal * np.array([-1.0, -1.0, 1.0])
    cosine = np.abs(world_ras @ principal_ras)
    assert np.median(cosine) > 0.99


def test_b0_from_wassr_within_002_ppm(runs, phantom_study):
    labels = _truth(phantom_study, "axial", "labels")
    b0 = _map(runs["cest"], "B0")
    truth = _truth(phantom_study, "axial", "B0_ppm")
    for label in range(1, 7):
        inside = labels == label
        assert abs(float(np.nanmedian(b0[inside] - truth[inside]))) <= 0.02, label
    assert float(np.nanpercentile(np.abs(b0 - truth)[labels > 0], 99)) <= 0.02
    provenance = json.loads((runs["cest"] / "provenance.json").read_text())
    assert provenance["scans"] == {"source": "7", "cest": "7", "wassr": "8"}


def _lorentzian(x: float, centre: float, fwhm: float) -> float:
    return (fwhm / 2) ** 2 / ((fwhm / 2) ** 2 + (x - centre) ** 2)


@pytest.mark.parametrize("ppm", [2.0, 3.5])
def test_mtrasym_within_0005_of_analytic(runs, phantom_study, ppm):
    truth = read_truth(phantom_study)
    labels = _truth(phantom_study, "axial", "labels")
    expected = np.zeros(labels.shape)
    for pool, spec in truth["cest_pools"].items():
        amplitude = _truth(phantom_study, "axial", f"cest_{pool}")
        expected += amplitude * (_lorentzian(ppm, spec["offset_ppm"], spec["fwhm_ppm"])
                                 - _lorentzian(-ppm, spec["offset_ppm"], spec["fwhm_ppm"]))
    fit = _map(runs["cest"], f"MTRasym_{ppm:g}ppm")
    assert expected.max() > 0.01  # some compartment has an effect at this offset
    for label in range(1, 7):
        inside = labels == label
        assert abs(float(np.nanmedian(fit[inside] - expected[inside]))) <= 0.005, label


def test_each_resource_holds_every_output(runs):
    for step, resource in runs.items():
        stats = json.loads((resource / "stats.json").read_text())
        provenance = json.loads((resource / "provenance.json").read_text())
        assert provenance["step"] == step.split("-")[0]
        assert provenance["inputs"][0]["series_instance_uid"].startswith("2.25.")
        assert provenance["inputs"][0]["sop_instance_uids"]
        html = (resource / "report.html").read_text()
        previewed = {name: e for name, e in stats["maps"].items() if "dicom" in e}
        assert {e["role"] for e in previewed.values()} <= {"primary", "byproduct"}
        for name, entry in stats["maps"].items():
            assert (resource / "nifti" / f"{name}.nii.gz").is_file(), name
            assert entry["unit"] and entry["role"] in ("primary", "byproduct", "spectrum")
        for name, entry in previewed.items():
            assert (resource / entry["preview"]).read_bytes()[:4] == b"\x89PNG"
            assert sorted((resource / entry["dicom"]).glob("*.dcm"))
            assert f"<h2>{name}</h2>" in html
            assert entry["whole"]["n_voxels"] == stats["mask_voxels"]
        status_pngs = sum((resource / "png" / f"{name}_status.png").is_file()
                          for name in previewed)
        figures = sum((resource / "png" / f).is_file()
                      for f in ("zspectrum.svg", "V1_direction.png"))
        assert figures == {"cest": 1, "adcmap": 1}.get(step, 0), step
        assert html.count("data:image/png;base64,") + html.count(
            "data:image/svg+xml;base64,") == len(previewed) + status_pngs + figures
        assert (resource / "stats.csv").read_text().startswith(
            "map,role,unit,slice,n_voxels")
        assert provenance["session"]["label"] == resource.parents[2].name
        assert str(resource.parents[3]) not in json.dumps(provenance) + html


def test_every_dicom_map_passes_dciodvfy(runs):
    require_executable("dciodvfy", "'make tools' installs dicom3tools")
    checked = 0
    for run, resource in runs.items():
        # every map stats.json declares as a DICOM series is one, and no other (CEST's
        # *_precision maps are by-products with a status and a series; the count follows)
        declared = {name for name, e in json.loads(
            (resource / "stats.json").read_text())["maps"].items() if "dicom" in e}
        written = {folder.name for folder in (resource / "dicom").iterdir()}
        assert written == declared, (run, sorted(written ^ declared))
        for folder in sorted((resource / "dicom").iterdir()):
            path = sorted(folder.glob("*.dcm"))[0]
            proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True,
                                  check=False)
            errors = [line for line in (proc.stdout + proc.stderr).splitlines()
                      if line.startswith("Error")]
            assert errors == [], (str(path), errors)
            checked += 1
    assert checked == sum(sum("dicom" in e for e in json.loads(
        (r / "stats.json").read_text())["maps"].values()) for r in runs.values()) > 0


@pytest.mark.parametrize(("step", "name"), [("t2map", "T2"), ("t2starmap", "T2star"),
                                            ("t1map", "T1"), ("adcmap", "ADC")])
def test_phantom_steps_complete_with_status_maps(runs, step, name):
    """The noise gate lets the phantom through (SNR well above the floor) and every mask
    voxel of the primary map has a status; almost all of them are fitted."""
    stats = json.loads((runs[step] / "stats.json").read_text())
    assert stats["outcome"] == "complete" and stats["outcome_reason"] == ""
    assert stats["noise"]["gate"] == "applied" and stats["noise"]["signal_fraction"] > 0.9
    status = np.asarray(nib.load(runs[step] / "nifti" / f"{name}_status.nii.gz").dataobj)
    mask = np.asarray(nib.load(runs[step] / "nifti" / "mask.nii.gz").dataobj) > 0
    assert (status[mask] > 0).all() and (status[~mask] == 0).all()
    whole = stats["maps"][name]["whole"]
    assert whole["n_voxels"] == int(mask.sum())
    assert whole["fraction_failed"] < 0.01


def test_two_t1_maps_of_one_session_coexist(runs, phantom_session):
    """t1map on the VTR scan, then on the IR scan of the same session: both runs stay in
    T1MAP, each with its own maps and provenance (insertResources merges into the existing
    resource; docs/xnat-conformance.md)."""
    resource = phantom_session / "RESOURCES" / "T1MAP"
    keys = sorted(p.name for p in resource.iterdir() if p.is_dir())
    assert keys == ["ir-scan4", "vtr-scan3"]
    vtr, ir = (json.loads((resource / k / "provenance.json").read_text()) for k in
               ("vtr-scan3", "ir-scan4"))
    assert (vtr["method"], vtr["scans"]["source"]) == ("vtr", "3")
    assert (ir["method"], ir["scans"]["source"]) == ("ir", "4")
    a, b = _map(resource / "vtr-scan3", "T1"), _map(resource / "ir-scan4", "T1")
    assert not np.array_equal(np.nan_to_num(a), np.nan_to_num(b))
    catalog = (resource / "T1MAP_catalog.xml").read_text()
    assert 'URI="vtr-scan3/report.html"' in catalog and 'URI="ir-scan4/report.html"' in catalog


def test_session_index_lists_every_run(runs, phantom_session, tmp_path):
    """The session index of the phantom session: one row per run (the two T1 runs apart),
    statuses, SNR, valid fractions and headline medians from each run's stats.json, links
    relative, and the page renders in Chromium with every image and link present."""
    out = phantom_session / "RESOURCES" / "SESSION_INDEX"
    page = write_session_index(phantom_session, out)
    index = json.loads((out / "index.json").read_text())
    assert index["session"] == "phantom_d0" and index["project"] == "PRECLIN"
    assert index["subject"] == "xnatpic-phantom"  # the runs' provenance (PatientName)
    keys = sorted((r["resource"], r["run_key"]) for r in index["runs"])
    assert keys == sorted((RESOURCES[s.split("-")[0]], RUN_KEYS[s])
                          for s in ("t2map", "t2starmap", "t1map", "t1map-ir", "adcmap",
                                    "cest"))
    for entry in index["runs"]:
        stats = json.loads((out / entry["stats"]).read_text())
        assert entry["outcome"] == stats["outcome"] == "complete"
        assert entry["median_snr"] == stats["noise"]["median_snr"] > 10
        assert entry["valid_fraction"] == stats["valid_fraction"] > 0.9
        headline = {h["map"]: h for h in entry["headline"]}
        primary = {n for n, e in stats["maps"].items() if e["role"] == "primary"}
        assert set(headline) == primary
        for name in primary:
            assert headline[name]["median"] == stats["maps"][name]["whole"]["median"]
            assert headline[name]["unit"] == stats["maps"][name]["unit"]
        for link in [entry["report"]] + [p["png"] for p in entry["previews"]]:
            assert not Path(link).is_absolute() and (out / link).is_file(), link
    html = page.read_text()
    assert "subject xnatpic-phantom" in html and str(phantom_session.parent) not in html
    again = write_session_index(phantom_session, tmp_path / "given", subject="mouse1")
    assert "subject mouse1 · project PRECLIN" in again.read_text()
    rendered = render(page, screenshot=tmp_path / "index.png")
    assert rendered.problems == []
    assert "Session phantom_d0" in rendered.text and "ir-scan4" in rendered.text
    cest = next(r for r in index["runs"] if r["step"] == "cest")
    wassr = cest["scans"]["wassr"]
    assert cest["scans"]["source"] == cest["scans"]["cest"] != wassr
    assert f"cest {cest['scans']['cest']}, wassr {wassr}" in rendered.text
    assert f"source {cest['scans']['cest']}" not in rendered.text  # said once, as cest
    assert len(rendered.images) == sum(
        bool(p["png"]) + bool(p["status_png"]) for r in index["runs"] for p in r["previews"])


def test_session_index_draws_each_maps_scale(runs, phantom_session, tmp_path):
    """Every map preview of the session index carries its colour bar (unit, display range)
    and the voxel-status previews their legend, as the step report draws them; the range
    is the 2nd-98th percentile of the map's fitted voxels (signed maps symmetric)."""
    out = tmp_path / "index"
    page = write_session_index(phantom_session, out)
    index = json.loads((out / "index.json").read_text())
    previews = [p for r in index["runs"] for p in r["previews"] if p["figure"]]
    assert len(previews) >= 10
    rendered = render(page, screenshot=tmp_path / "index.png")
    assert rendered.problems == []
    assert rendered.text.count("(display range)") == len(previews)
    t2 = next(r for r in index["runs"] if r["step"] == "t2map")
    folder = phantom_session / "RESOURCES" / RESOURCES["t2map"] / t2["run_key"]
    values, status = _map(folder, "T2"), _map(folder, "T2_status")
    low, high = np.percentile(values[status == 1], [2, 98])
    (figure,) = [p["figure"] for p in t2["previews"] if p["map"] == "T2"]
    bar = figure["colour_bar"]
    assert (bar["unit"], figure["slices"]) == ("ms", values.shape[2])
    np.testing.assert_allclose([bar["low"], bar["high"]], [low, high], rtol=1e-6)
    assert f"ms: {format_number(bar['low'])}" in rendered.text
    b0 = next(p["figure"] for r in index["runs"] for p in r["previews"] if p["map"] == "B0")
    assert b0["colour_bar"]["low"] == -b0["colour_bar"]["high"]
    legends = [label for r in index["runs"] for p in r["previews"] if p["status_figure"]
               for label, _ in p["status_figure"]["legend"]]
    assert "fitted" in legends
    assert rendered.text.count("slice 1") >= 2 * len(previews)


@pytest.mark.parametrize("step", ["t2map", "t1map", "t1map-ir", "adcmap", "cest"])
def test_step_report_renders(runs, step, tmp_path):
    """Each kind of step report in Chromium: no broken image, no console error; subject
    and session in the header, readable parameters, 1-based slices."""
    report = runs[step] / "report.html"
    rendered = render(report, screenshot=tmp_path / f"{step}.png")
    assert rendered.problems == []
    assert "session phantom_d0" in rendered.text
    assert "Complete" in rendered.text
    html = report.read_text()
    assert "<tr><td>1</td>" in html and "<tr><td>0</td>" not in html  # slices from 1
    assert "{" not in html.split("<h2>Parameters</h2>")[1].split("</table>")[0]
    stats = json.loads((runs[step] / "stats.json").read_text())
    primary = next(e for e in stats["maps"].values() if e["role"] == "primary")
    assert [s["slice"] for s in primary["slices"]] == list(range(1, len(primary["slices"]) + 1))
    assert "1-based" in stats["slice_numbering"]
