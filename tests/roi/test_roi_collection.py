"""ROIs drawn in XNAT's viewer reach roi-stats as Container Service passes an assessor.

An ROI collection is stored in the XNAT double as the OHIF viewer saves it (an
``icr:roiCollectionData`` assessor from its RoiCollection XML, a resource labelled by the
collection type, SEG or RTSTRUCT, holding the file; tests/double/assessors.py), then
copied into the local archive as XNAT keeps it (``ASSESSORS/<label>/<resource>/``). The
ROIs are drawn on the source series of the converted phantom's MSME scan (scan 2): a
DICOM SEG built with highdicom from the phantom's truth labels (BINARY and LABELMAP), and
an RTSTRUCT whose square contours enclose known voxels. The maps are the t2map step's run
on scan 2 (launched here) and a second run of known values in the same resource.
roi-stats runs through ``xnatpic launch --runtime local`` with the ROI-collection
wrapper (a derived Assessor of the session, matched on its xsiType, feeding the ``roi``
mount); every statistic is checked against numpy over the same voxels of the map, and
every row must say where it came from. The automatic mask is checked to come from the
anatomical source image (scan 2), not from a map (a pure-noise map is present).
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.conftest import (  # noqa: F401
    corpus_dir,
    launch_step,
    make_session,
    phantom_dicom,
    phantom_study,
)
from tests.double import PASSWORD, USER, XnatDouble
from tests.double.assessors import write_assessors
from tests.oracles import require_module
from tests.roi.helpers import rtstruct
from xnatpic.analysis.inputs import read_series
from xnatpic.analysis.mask import foreground_mask
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.phantom import read_truth_map
from xnatpic.xnat.http import XnatConnection

hd = require_module("highdicom", "highdicom (test extra) writes the SEG oracle")
from pydicom.sr.codedict import codes  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
XNATPIC = Path(sys.executable).parent / "xnatpic"
COMMAND = ROOT / "commands" / "roi-stats.json"
WRAPPER = "xnatpic-roi-stats-roi-collection"
LABEL = "mouse1_d0"
SUBJECT = "XNAT_S00001"
#: the t2map step's run on scan 2, and a second run of T2 values known exactly (the
#: phantom's truth plus noise, failed fits in one vial) stored beside it as another run
RUN, TRUTH_RUN = "nlls-scan2", "truth-scan2"
#: phantom truth label -> segment name (three vials of known T2)
VIALS = {2: "vial_T2_30ms", 3: "vial_T2_65ms", 4: "vial_T2_110ms"}
#: RTSTRUCT squares: name -> (i0, i1, j0, j1, k) voxel index ranges of the map
BOXES = {"box_a": (40, 45, 20, 26, 2), "box_b": (10, 13, 30, 33, 4)}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _first_echo_images(folder: Path) -> list[pydicom.Dataset]:
    """One image per slice position (the first echo), as the viewer displays the series."""
    by_position: dict[tuple[float, ...], pydicom.Dataset] = {}
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        key = tuple(round(float(v), 3) for v in ds.ImagePositionPatient)
        if key not in by_position or float(ds.EchoTime) < float(by_position[key].EchoTime):
            by_position[key] = ds
    return list(by_position.values())


def _slice_index(ds: pydicom.Dataset, series_affine_lps: np.ndarray) -> int:
    ijk = np.linalg.solve(series_affine_lps, [*map(float, ds.ImagePositionPatient), 1.0])
    return int(np.rint(ijk[2]))


def _description(number: int, label: str) -> object:
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=label,
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)


def _seg(images: list[pydicom.Dataset], labels: np.ndarray, affine_lps: np.ndarray,
         seg_type: str, segments: dict[int, str] = VIALS) -> bytes:
    """A SEG of ``segments`` (label value -> name) on the source images (frame k =
    labels[:, :, k].T: rows, columns)."""
    frames = np.zeros((len(images), *labels.shape[1::-1]), np.uint8)
    for n, ds in enumerate(images):
        plane = labels[:, :, _slice_index(ds, affine_lps)].T
        for number, value in enumerate(segments, start=1):
            frames[n][plane == value] = number
    seg = hd.seg.Segmentation(
        source_images=images, pixel_array=frames,
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, seg_type),
        segment_descriptions=[_description(n, name) for n, name in
                              enumerate(segments.values(), start=1)],
        series_instance_uid=hd.UID(), series_number=300, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="OHIF-XNAT viewer (test)",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return buffer.getvalue()


def _rtstruct(affine_lps: np.ndarray, frame_uid: str) -> bytes:
    """Square contours whose edges lie half a voxel outside the BOXES voxel ranges."""
    rois = {}
    for name, (i0, i1, j0, j1, k) in BOXES.items():
        corners = [(i0 - 0.5, j0 - 0.5), (i1 + 0.5, j0 - 0.5), (i1 + 0.5, j1 + 0.5),
                   (i0 - 0.5, j1 + 0.5)]
        rois[name] = [np.array([(affine_lps @ [i, j, k, 1.0])[:3] for i, j in corners])]
    ds = rtstruct(rois, frame_uid)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _collection_xml(ident: str, label: str, kind: str, series_uid: str) -> bytes:
    """The RoiCollection document the viewer PUTs (DICOMSEGExporter.js:169-194)."""
    return (f"<?xml version='1.0' encoding='UTF-8'?>"
            f"<RoiCollection xmlns:icr='http://www.icr.ac.uk/icr' "
            f"xmlns:xnat='http://nrg.wustl.edu/xnat' id='{ident}' label='{label}' "
            f"project='PRECLIN' version='1'><date>2026-12-04</date><time>12:00:00</time>"
            f"<imageSession_ID>{LABEL}</imageSession_ID><UID>{hd.UID()}</UID>"
            f"<collectionType>{kind}</collectionType><subjectID>{SUBJECT}</subjectID>"
            f"<references><seriesUID>{series_uid}</seriesUID></references>"
            f"<name>{label}</name></RoiCollection>").encode()


def _save_collection(fake: XnatDouble, ident: str, label: str, kind: str, payload: bytes,
                     series_uid: str) -> None:
    """The viewer's three requests (DICOMSEGExporter.js:38-64) against the double."""
    conn = XnatConnection(fake.url, USER, PASSWORD)
    base = f"/data/archive/projects/PRECLIN/subjects/{SUBJECT}/experiments/{LABEL}/" \
           f"assessors/{ident}"
    answers = [
        conn.request("PUT", base, query={"inbody": "true"},
                     body=_collection_xml(ident, label, kind, series_uid),
                     headers={"Content-Type": "text/xml"}),
        conn.request("PUT", f"{base}/resources/{kind}",
                     query={"content": "EXTERNAL", "format": "DICOM"}),
        conn.request("PUT", f"{base}/resources/{kind}/files/{label}.dcm",
                     query={"inbody": "true", "content": "EXTERNAL", "format": "DICOM"},
                     body=payload, headers={"Content-Type": "application/dicom"}),
    ]
    conn.close()
    assert [a.status for a in answers] == [201, 201, 200], [a.text for a in answers]


@pytest.fixture(scope="module")
def study(tmp_path_factory, phantom_study, phantom_dicom) -> dict:  # noqa: F811
    """The session (scan 2, the t2map step's run on it, a second T2 run of known values and
    a noise ADC map run) and its ROI collections."""
    root = tmp_path_factory.mktemp("roicoll")
    session = make_session(root, {"2": phantom_dicom["2"]}, label=LABEL)
    result = launch_step("t2map", session, root / "t2map-build")
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
    fitted = np.asarray(nib.load(session / "RESOURCES" / "T2MAP" / RUN / "nifti" /
                                 "T2.nii.gz").dataobj)
    series = read_series(session / "SCANS" / "2" / "DICOM")
    labels = read_truth_map(phantom_study, "axial", "labels").transpose(2, 1, 0)
    rng = np.random.default_rng(7)
    t2 = read_truth_map(phantom_study, "axial", "T2").transpose(2, 1, 0).astype(np.float32)
    t2 = t2 + rng.normal(0, 2.0, t2.shape).astype(np.float32)
    t2[labels == 3] = np.where(rng.random(int((labels == 3).sum())) < 0.1, np.nan,
                               t2[labels == 3])  # failed fits in one vial
    adc = rng.normal(1e-3, 5e-4, t2.shape).astype(np.float32)   # a noise map
    for label, run, name, data, unit, step in (
            ("T2MAP", TRUTH_RUN, "T2", t2, "ms", "t2map"),
            ("ADCMAP", "wls-scan2", "ADC", adc, "mm2/s", "adcmap")):
        folder = session / "RESOURCES" / label / run
        (folder / "nifti").mkdir(parents=True)
        nib.save(nib.Nifti1Image(data, series.affine), folder / "nifti" / f"{name}.nii.gz")
        (folder / "stats.json").write_text(json.dumps(
            {"step": step, "maps": {name: {"unit": unit, "role": "primary"}}}))
        (folder / "provenance.json").write_text(json.dumps({
            "step": step, "method": run.split("-")[0], "run_key": run,
            "scans": {"source": "2"}, "session": {"label": LABEL, "subject": SUBJECT},
            "inputs": [{"frame_of_reference_uid": series.frame_of_reference_uid,
                        "series_instance_uid": series.series_instance_uid}]}))
    images = _first_echo_images(session / "SCANS" / "2" / "DICOM")
    fake = XnatDouble(("PRECLIN",)).start()
    try:
        fake.new_session("PRECLIN", SUBJECT, LABEL, "xnat:mrSessionData")
        uid = series.series_instance_uid
        _save_collection(fake, "RoiCollection_seg1", "vials_binary", "SEG",
                         _seg(images, labels, series.affine_lps, "BINARY"), uid)
        _save_collection(fake, "RoiCollection_seg2", "vials_labelmap", "SEG",
                         _seg(images, labels, series.affine_lps, "LABELMAP"), uid)
        _save_collection(fake, "RoiCollection_rt1", "boxes", "RTSTRUCT",
                         _rtstruct(series.affine_lps, series.frame_of_reference_uid), uid)
        conn = XnatConnection(fake.url, USER, PASSWORD)
        base = f"/data/experiments/{fake.session('PRECLIN', LABEL).id}/assessors"
        listed = conn.request("GET", base, query={"format": "json"}).json()
        files = conn.request("GET", f"{base}/RoiCollection_rt1/files",
                             query={"format": "json"}).json()
        conn.close()
        written = write_assessors(fake.session("PRECLIN", LABEL), session)
    finally:
        fake.stop()
    return {"session": session, "labels": labels, "t2": t2, "fitted": fitted,
            "series": series,
            "listed": listed["ResultSet"]["Result"], "written": written,
            "files": files["ResultSet"]["Result"],
            "build": root / "build"}


def _launch(session: Path, build: Path, *args: str,
            wrapper: str = WRAPPER) -> subprocess.CompletedProcess:
    entry = f"{shlex.quote(sys.executable)} {ROOT / 'pipelines' / 'roi_stats' / 'run.py'}"
    return subprocess.run([str(XNATPIC), "launch", str(COMMAND), "--wrapper", wrapper,
                           "--session", str(session), *args, "--runtime", "local",
                           "--entrypoint", entry, "--build-dir", str(build)],
                          capture_output=True, text=True, check=False, timeout=600)


def _oracle(values: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Statistics by numpy over the voxels of ``mask`` (finite values only)."""
    inside = values[mask].astype(np.float64)
    used = inside[np.isfinite(inside)]
    q1, median, q3 = np.percentile(used, [25, 50, 75])
    return {"mean": used.mean(), "sd": used.std(ddof=1), "median": median, "q1": q1,
            "q3": q3, "n": used.size, "n_excluded": inside.size - used.size}


def _check(row: dict[str, str], expected: dict[str, float]) -> None:
    for key in ("mean", "sd", "median", "q1", "q3"):
        assert float(row[key]) == pytest.approx(expected[key], rel=1e-5), key
    assert (int(row["n"]), int(row["n_excluded"])) == (expected["n"], expected["n_excluded"])


def _stats(study: dict, label: str) -> list[dict[str, str]]:
    return _read_csv(study["session"] / "RESOURCES" / "ROISTATS" / label / "roi_stats.csv")


def test_collections_stored_as_xnat_stores_them(study):
    assert sorted((r["ID"], r["label"], r["xsiType"]) for r in study["listed"]) == [
        ("RoiCollection_rt1", "boxes", "icr:roiCollectionData"),
        ("RoiCollection_seg1", "vials_binary", "icr:roiCollectionData"),
        ("RoiCollection_seg2", "vials_labelmap", "icr:roiCollectionData")]
    session = study["session"]
    assert sorted(p.relative_to(session).as_posix() for p in
                  (session / "ASSESSORS").rglob("*") if p.is_file()) == [
        "ASSESSORS/boxes/RTSTRUCT/boxes.dcm",
        "ASSESSORS/vials_binary/SEG/vials_binary.dcm",
        "ASSESSORS/vials_labelmap/SEG/vials_labelmap.dcm"]
    # the viewer's reader picks files by their resource ("collection") = collectionType
    assert [(f["Name"], f["collection"]) for f in study["files"]] == [
        ("boxes.dcm", "RTSTRUCT")]


@pytest.mark.parametrize("ident,label", [("RoiCollection_seg1", "vials_binary"),
                                         ("RoiCollection_seg2", "vials_labelmap")])
def test_seg_collection(study, ident, label):
    proc = _launch(study["session"], study["build"], "--param", f"roi-collection={ident}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [r for r in _stats(study, label) if r["map"] == "T2"]
    assert sorted((r["run_key"], r["roi"]) for r in rows) == sorted(
        (run, name) for run in (RUN, TRUTH_RUN) for name in VIALS.values())
    for vial, name in VIALS.items():
        for run, values, method in ((RUN, study["fitted"], "nlls"),
                                    (TRUTH_RUN, study["t2"], "truth")):
            (row,) = [r for r in rows if r["roi"] == name and r["run_key"] == run]
            _check(row, _oracle(values, study["labels"] == vial))
            assert {k: row[k] for k in ("session", "resource", "step", "method",
                                        "source_scan", "map_file", "mask_source",
                                        "mask_kind", "units")} == {
                "session": LABEL, "resource": "T2MAP", "step": "t2map", "method": method,
                "source_scan": "2", "map_file": f"RESOURCES/T2MAP/{run}/nifti/T2.nii.gz",
                "mask_source": f"{label}/SEG/{label}.dcm", "mask_kind": "roi-collection",
                "units": "ms"}
        # the fitted T2 of each vial is the phantom's (SNR 100)
        fitted = next(r for r in rows if r["roi"] == name and r["run_key"] == RUN)
        truth = float(name.split("_T2_")[1].removesuffix("ms"))
        assert float(fitted["median"]) == pytest.approx(truth, rel=0.03), name
    assert int(next(r for r in rows if r["roi"] == "vial_T2_65ms" and
                    r["run_key"] == TRUTH_RUN)["n_excluded"]) > 0
    # the step's by-products are measured too, each row naming its map
    assert {r["map"] for r in _stats(study, label) if r["run_key"] == RUN} >= {
        "T2", "S0", "R_squared"}
    prov = json.loads((study["session"] / "RESOURCES" / "ROISTATS" / label /
                       "provenance.json").read_text())
    assert prov["parameters"]["roi_collection"] == label
    assert prov["mask"] == {"kind": "roi-collection", "name": label}
    assert [m["source"] for m in prov["masks"]] == [f"{label}/SEG/{label}.dcm"]
    assert str(study["session"].parent) not in json.dumps(prov)  # no host folder


def test_rtstruct_collection(study):
    proc = _launch(study["session"], study["build"], "--param",
                   "roi-collection=RoiCollection_rt1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [r for r in _stats(study, "boxes") if r["map"] == "T2" and
            r["run_key"] == TRUTH_RUN]
    assert sorted(r["roi"] for r in rows) == sorted(BOXES)
    for name, (i0, i1, j0, j1, k) in BOXES.items():
        mask = np.zeros(study["t2"].shape, bool)
        mask[i0:i1 + 1, j0:j1 + 1, k] = True
        (row,) = [r for r in rows if r["roi"] == name]
        _check(row, _oracle(study["t2"], mask))
        assert row["mask_source"] == "boxes/RTSTRUCT/boxes.dcm"


def test_several_collections_need_a_choice(study, tmp_path):
    proc = _launch(study["session"], tmp_path / "build")
    assert proc.returncode != 0
    assert "roi-collection" in proc.stderr and "3 Assessor" in proc.stderr, proc.stderr[-2000:]


def test_auto_mask_is_computed_on_the_source_scan(study):
    proc = _launch(study["session"], study["build"], wrapper="xnatpic-roi-stats-session")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _stats(study, "auto")
    assert {(r["resource"], r["run_key"], r["roi"]) for r in rows} == {
        ("T2MAP", RUN, "foreground"), ("T2MAP", TRUTH_RUN, "foreground"),
        ("ADCMAP", "wls-scan2", "foreground")}
    anatomy = foreground_mask(study["series"].data)
    truth = study["labels"] > 0
    dice = 2 * (anatomy & truth).sum() / (anatomy.sum() + truth.sum())
    assert dice > 0.95, dice  # the phantom's objects, not noise
    t2 = next(r for r in rows if r["map"] == "T2" and r["run_key"] == TRUTH_RUN)
    _check(t2, _oracle(study["t2"], anatomy))
    fitted = next(r for r in rows if r["map"] == "T2" and r["run_key"] == RUN)
    _check(fitted, _oracle(study["fitted"], anatomy))
    adc = next(r for r in rows if r["map"] == "ADC")
    assert int(adc["n"]) == int(anatomy.sum())  # the same source mask, not the noise map's
    for row in rows:
        assert row["mask_source"].startswith(
            "auto: Otsu foreground of scan 2 (SCANS/2/DICOM, T2map_MSME"), row["mask_source"]
        assert row["mask_kind"] == "auto"


def test_aim_only_collection_is_refused(study, tmp_path):
    session = study["session"]
    aim = session / "ASSESSORS" / "aim_only" / "AIM"
    aim.mkdir(parents=True)
    (aim / "aim_only.xml").write_text("<ImageAnnotationCollection/>")
    try:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "pipelines" / "roi_stats" / "run.py"), "--input",
             str(session), "--output", str(tmp_path / "out"), "--roi-dir",
             str(aim.parent), "--roi-collection", "aim_only"],
            capture_output=True, text=True, check=False, timeout=300)
    finally:
        (aim / "aim_only.xml").unlink()
        aim.rmdir()
        aim.parent.rmdir()
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("roi-stats: error: ROI collection aim_only")
    assert "AIM annotations are not read" in last
    assert "Traceback" not in proc.stderr


def test_auto_scan_must_be_a_scan_of_the_session(study, tmp_path):
    build = tmp_path / "build"
    proc = _launch(study["session"], build, "--param", "auto_scan=9",
                   wrapper="xnatpic-roi-stats-session")
    assert proc.returncode == 1
    (stderr,) = build.glob("*/stderr.log")
    last = stderr.read_text().strip().splitlines()[-1]
    assert last.startswith("roi-stats: error: map RESOURCES/ADCMAP/wls-scan2/nifti/ADC.nii.gz"
                           ": source scan 9 cannot be read for the automatic mask"), last
    assert "no scan '9'" in last


def test_seg_on_a_real_corpus_scan(corpus_dir, tmp_path_factory):  # noqa: F811
    """pv6 scan 9 (MSME, alphabet pasta in saline): t2map's real run, a SEG drawn on the
    scan's own images (a disc on slice 5, a box on slice 3) saved as an ROI collection;
    roi-stats must give numpy's statistics over those voxels of the fitted T2 map."""
    root = tmp_path_factory.mktemp("roicoll-real")
    out = root / "dicom"
    study = corpus_dir / "pv6-dicomifier" / "study"
    assert xnatpic_main(["convert", str(study), "-o", str(out), "--scans", "9"]) == 0
    (folder,) = [p for p in out.glob("*/*/*") if p.is_dir()]
    session = make_session(root / "archive", {folder.name: folder}, label=LABEL)
    result = launch_step("t2map", session, root / "t2map-build")
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
    (t2_file,) = (session / "RESOURCES" / "T2MAP").glob("*/nifti/T2.nii.gz")
    fitted = np.asarray(nib.load(t2_file).dataobj)
    series = read_series(session / "SCANS" / folder.name / "DICOM")
    nx, ny, nz = fitted.shape
    assert (nx, ny, nz) == series.data.shape[:3] and nz > 5
    labels = np.zeros(fitted.shape, np.uint8)
    xx, yy = np.mgrid[:nx, :ny]
    labels[..., 4][(xx - nx // 2) ** 2 + (yy - ny // 2) ** 2 < (min(nx, ny) // 5) ** 2] = 1
    labels[nx // 4:nx // 4 + 6, ny // 4:ny // 4 + 5, 2] = 2
    segments = {1: "centre_disc", 2: "box"}
    images = _first_echo_images(session / "SCANS" / folder.name / "DICOM")
    assert len(images) == nz
    fake = XnatDouble(("PRECLIN",)).start()
    try:
        fake.new_session("PRECLIN", SUBJECT, LABEL, "xnat:mrSessionData")
        _save_collection(fake, "RoiCollection_real", "pasta_rois", "SEG",
                         _seg(images, labels, series.affine_lps, "BINARY", segments),
                         series.series_instance_uid)
        write_assessors(fake.session("PRECLIN", LABEL), session)
    finally:
        fake.stop()
    proc = _launch(session, root / "build")  # the only ROI collection: no choice needed
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _read_csv(session / "RESOURCES" / "ROISTATS" / "pasta_rois" / "roi_stats.csv")
    t2_rows = {r["roi"]: r for r in rows if r["map"] == "T2"}
    assert sorted(t2_rows) == ["box", "centre_disc"]
    for value, name in segments.items():
        _check(t2_rows[name], _oracle(fitted, labels == value))
        assert t2_rows[name]["mask_source"] == "pasta_rois/SEG/pasta_rois.dcm"
        assert t2_rows[name]["source_scan"] == folder.name
        assert t2_rows[name]["map_file"] == t2_file.relative_to(session).as_posix()


def test_launches_with_other_masks_add_folders(study, tmp_path):
    """Two ROI collections one after the other: the second adds its folder to ROISTATS
    beside the first (ContainerFinalizeServiceImpl.java:487 merges into the resource)."""
    for ident in ("RoiCollection_seg1", "RoiCollection_rt1"):
        proc = _launch(study["session"], tmp_path / ident, "--param", f"roi-collection={ident}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    stored = study["session"] / "RESOURCES" / "ROISTATS"
    assert {"boxes", "vials_binary"} <= {p.name for p in stored.iterdir() if p.is_dir()}
    for label in ("boxes", "vials_binary"):
        assert sorted(p.name for p in (stored / label).iterdir()) == [
            "provenance.json", "roi_stats.csv", "roi_stats.json"]
