"""End to end on the phantom: t2map's real maps, a DICOM SEG of the truth compartments
drawn on the real source DICOM (highdicom), roi-stats through the local launcher.

The SEG's frames come from the MSME images themselves (their positions, orientation and
FrameOfReferenceUID), so the test crosses every convention between DICOM LPS, the map
steps' NIfTI RAS and the ROI grid; the ROI medians must match the truth T2 of each
compartment.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from tests.analysis.conftest import launch_step, make_session
from tests.analysis.helpers import run_dir
from tests.oracles import require_module
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.nifti.affine import LPS_TO_RAS
from xnatpic.output_names import folder_key
from xnatpic.phantom import read_truth_map, write_phantom
from xnatpic.roi import Grid, read_seg
from xnatpic.xnat.launcher import LaunchOptions, launch

hd = require_module("highdicom", "highdicom (test extra) writes the SEG oracle")
from pydicom.sr.codedict import codes  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def t2_session(tmp_path_factory) -> Path:
    """A phantom session with the MSME scan and the T2MAP resource from the t2map step."""
    base = tmp_path_factory.mktemp("roi-phantom")
    write_phantom(base / "study", snr=100.0, seed=0)
    assert xnatpic_main(["convert", str(base / "study"), "-o", str(base / "dicom")]) == 0
    scans = {folder_key(p.name): p for p in (base / "dicom").glob("*/*/*") if p.is_dir()}
    session = make_session(base / "archive", scans)
    result = launch_step("t2map", session, base / "builds")
    assert result.ok, (result.error, Path(result.stderr).read_text()[-3000:])
    return session


def _seg_from_truth(session: Path, study: Path, out: Path) -> tuple[np.ndarray, str]:
    """A SEG of the truth labels on the t2map source scan; returns labels (x, y, z), FoR."""
    resource = run_dir(session / "RESOURCES" / "T2MAP")  # the t2map run folder
    provenance = json.loads((resource / "provenance.json").read_text())
    scan = provenance["scans"]["source"]
    img = nib.load(resource / "nifti" / "T2.nii.gz")
    labels = read_truth_map(study, "axial", "labels").transpose(2, 1, 0)  # (x, y, z)
    assert labels.shape == img.shape[:3]
    by_position = {}
    for path in sorted((session / "SCANS" / scan / "DICOM").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        by_position.setdefault(tuple(np.round(np.asarray(ds.ImagePositionPatient, float), 3)),
                               ds)
    sources, frames = [], []
    lps = LPS_TO_RAS @ img.affine
    for k in range(labels.shape[2]):
        key = tuple(np.round(lps[:3, 3] + k * lps[:3, 2], 3))
        sources.append(by_position[key])          # the DICOM image of map slice k
        frames.append(labels[:, :, k].T)          # (rows, columns)
    numbers = sorted(int(v) for v in np.unique(labels) if v > 0)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=n, segment_label=f"vial{n}",
        segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for n in numbers]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=np.stack(frames).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=99,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="test",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    out.mkdir(parents=True)
    seg.save_as(out / "truth_seg.dcm")
    return labels, str(sources[0].FrameOfReferenceUID)


def test_seg_on_real_maps_gives_truth_t2(t2_session, tmp_path):
    study = t2_session.parents[3] / "study"
    labels, frame_uid = _seg_from_truth(t2_session, study, t2_session / "RESOURCES" / "SEG")
    command = json.loads((ROOT / "commands" / "roi-stats.json").read_text())
    options = LaunchOptions(runtime="local", build_root=tmp_path, timeout=600, entrypoint=[
        sys.executable, str(ROOT / "pipelines" / "roi_stats" / "run.py")])
    result = launch(command, "xnatpic-roi-stats-session", t2_session,
                    {"mask": "SEG", "maps": "T2MAP"}, options)
    assert result.ok, (result.error, Path(result.stderr or "/dev/null").read_text()[-3000:])
    with (t2_session / "RESOURCES" / "ROISTATS" / "SEG" / "roi_stats.csv").open() as fh:
        rows = {(r["map"], r["roi"]): r for r in csv.DictReader(fh)}
    truth_t2 = read_truth_map(study, "axial", "T2").transpose(2, 1, 0)
    for n in sorted(int(v) for v in np.unique(labels) if v > 0):
        row = rows[("T2", f"vial{n}")]
        assert int(row["n"]) + int(row["n_excluded"]) == int((labels == n).sum())
        expected = float(np.median(truth_t2[labels == n]))
        assert float(row["median"]) == pytest.approx(expected, rel=0.01), n
    # the SEG lands exactly on the truth compartments of the map grid
    img = nib.load(run_dir(t2_session / "RESOURCES" / "T2MAP") / "nifti" / "T2.nii.gz")
    on_map = read_seg(t2_session / "RESOURCES" / "SEG" / "truth_seg.dcm").on_grid(
        Grid(img.shape[:3], img.affine))
    for n in sorted(int(v) for v in np.unique(labels) if v > 0):
        assert np.array_equal(on_map[f"vial{n}"], labels == n), n
    prov = json.loads((t2_session / "RESOURCES" / "ROISTATS" / "SEG" / "provenance.json")
                      .read_text())
    assert prov["masks"][0]["frame-of-reference-uid"] == frame_uid
