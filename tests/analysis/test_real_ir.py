"""Inversion-recovery T1 and FAIR perfusion on the real pv6 pasta phantom, against an
independent truth.

Independent side (nothing from xnatpic): the 2dseq files read with numpy, the timing read
by hand from the method files (MultiRepTime, PVM_FairTIR_Arr, RecoveryTime,
PVM_ObjOrderList, PVM_RareFactor × PVM_EchoTime), per-voxel fits with scipy. Our side: the
scans converted to DICOM by ``xnatpic convert`` and mapped by the t1map and perfusion steps
(launched as on XNAT). Voxels are matched through the DICOM geometry (each DICOM file's
2dseq frame index and position); the comparison is on the same voxels.

The judge (issue 10): on scans 13 and 30 the IR T1 agrees with scan 11's VTR T1 on the
same voxels within 15 % (3 TIs cannot fix the inversion efficiency; the right timing
lands near -11 % of the nominal-TR VTR, about -8 % of the VTR with the recovery after the
echo train used here; the k = 2 model with TR >> T1 near -24 %).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from scipy.optimize import least_squares

from tests.analysis.conftest import launch_step, make_session
from tests.analysis.helpers import run_dir
from tests.browser import render
from tests.dicom.conftest import run_dciodvfy
from tests.oracles import require_executable
from xnatpic.analysis.session_index import write_session_index
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.output_names import folder_key

STUDY = "pv6-dicomifier/study"
N_VOXELS = 250


def _param(folder: Path, file: str, name: str) -> list[str]:
    """The whitespace-separated values of JCAMP parameter ``name`` (array sizes dropped)."""
    text = (folder / file).read_text(encoding="latin-1")
    match = re.search(rf"^##\${name}=(.*?)(?=^##|^\$\$)", text, re.S | re.M)
    assert match, f"{name} not in {folder / file}"
    body = match.group(1).strip()
    if body.startswith("( "):
        body = body.split(")", 1)[1]
    return body.replace("(", " ").replace(")", " ").replace(",", " ").split()


def _floats(folder: Path, file: str, name: str) -> np.ndarray:
    return np.array([float(v) for v in _param(folder, file, name)])


def _twodseq(scan: Path) -> np.ndarray:
    """(frames, rows, columns) real values of a 16-bit 2dseq, slope applied."""
    reco = scan / "pdata" / "1"
    assert _param(reco, "visu_pars", "VisuCoreWordType") == ["_16BIT_SGN_INT"]
    assert _param(reco, "visu_pars", "VisuCoreByteOrder") == ["littleEndian"]
    columns, rows = (int(v) for v in _param(reco, "visu_pars", "VisuCoreSize"))
    slope = _floats(reco, "visu_pars", "VisuCoreDataSlope")
    raw = np.fromfile(reco / "2dseq", dtype="<i2").reshape(-1, rows, columns)
    return raw * slope[:, None, None]


#: Starting T1s (ms) of the scipy fits: the magnitude IR cost has local minima (a kink
#: where a point crosses the null), so the best of several starts is kept.
STARTS = (300.0, 700.0, 1500.0, 2500.0, 4000.0, 8000.0)


def _fit(model, y: np.ndarray) -> float:
    best = None
    for start in STARTS:
        result = least_squares(lambda p: model(p[1]) * p[0] - y, [float(y.max()), start],
                               bounds=([0.0, 10.0], [np.inf, 1e5]))
        if best is None or result.cost < best.cost:
            best = result
    return float(best.x[1])


def _vtr(y: np.ndarray, recovery: np.ndarray) -> float:
    """S0 (1 - exp(-recovery/T1)); recovery = TR - echo train (RARE-VTR: the refocusing
    train keeps Mz near 0 until its end, as the IR model assumes of its readout)."""
    return _fit(lambda t1: 1 - np.exp(-recovery / t1), y)


def _vtr_recovery(study: Path) -> np.ndarray:
    train = (_floats(study / "11", "method", "PVM_RareFactor")[0]
             * _floats(study / "11", "method", "PVM_EchoTime")[0])
    return _floats(study / "11", "method", "MultiRepTime") - train


def _ir(y: np.ndarray, ti: np.ndarray, tr: np.ndarray | None, readout: float) -> float:
    """|M0 (1 - 2 exp(-TI/T1) + exp(-(TR - readout)/T1))|; TR None: TR >> T1 (k = 2)."""
    def model(t1: float) -> np.ndarray:
        tail = 0.0 if tr is None else np.exp(-(tr - readout) / t1)
        return np.abs(1 - 2 * np.exp(-ti / t1) + tail)
    return _fit(model, y)


@pytest.fixture(scope="module")
def outputs(corpus_dir, tmp_path_factory) -> dict[str, Path]:
    study = corpus_dir / STUDY
    work = tmp_path_factory.mktemp("real-ir")
    assert xnatpic_main(["convert", str(study), "-o", str(work / "dcm"),
                         "--scans", "11,13,30"]) == 0
    folders = {folder_key(p.name): p for p in (work / "dcm").glob("*/*/*") if p.is_dir()}
    session = make_session(work / "archive", folders, label="pasta")
    out = {"dicom_" + k: v for k, v in folders.items()}
    out["session"] = session
    # one after the other into the same session: VTR, then IR, then FAIR (T1MAP x 3)
    for name, step, params, key in (("t1_11", "t1map", {"scan": "11"}, "vtr-scan11"),
                                    ("t1_13", "t1map", {"scan": "13"}, "ir-scan13"),
                                    ("t1_30", "t1map", {"scan": "30"}, "ir-scan30"),
                                    ("perfusion", "perfusion", {}, "fair-scan30")):
        result = launch_step(step, session, work / "build", params)
        assert result.ok, (name, result.error, Path(result.stderr).read_text()[-2000:])
        out[name] = run_dir(Path(result.stored[0]), key)
    return out


def test_vtr_and_ir_t1_maps_coexist(outputs):
    """Issue 12: t1map on the VTR scan 11, then on the IR scans 13 and 30 of the same
    session, through the launcher: T1MAP keeps the three runs, each its own maps, report
    and provenance (XNAT's insertResources reuses a resource of the same label and copies
    the new run folder into it; docs/xnat-conformance.md)."""
    resource = outputs["session"] / "RESOURCES" / "T1MAP"
    runs = sorted(p.name for p in resource.iterdir() if p.is_dir())
    assert runs == ["ir-scan13", "ir-scan30", "vtr-scan11"]
    for key, method, scan in (("vtr-scan11", "vtr", "11"), ("ir-scan13", "ir", "13"),
                              ("ir-scan30", "ir", "30")):
        provenance = json.loads((resource / key / "provenance.json").read_text())
        assert (provenance["step"], provenance["method"], provenance["run_key"]) == (
            "t1map", method, key)
        assert provenance["scans"]["source"] == scan
        assert provenance["session"]["label"] == "pasta"
        assert provenance["parameters"]["method"] == method
        stats = json.loads((resource / key / "stats.json").read_text())
        assert stats["maps"]["T1"]["role"] == "primary" and stats["maps"]["T1"]["unit"] == "ms"
    # the VTR and IR maps of the same phantom: different fits, T1 within 15 % (the judge)
    vtr = np.nanmedian(_map(resource / "vtr-scan11", "T1"))
    ir = np.nanmedian(_map(resource / "ir-scan13", "T1"))
    assert abs(ir / vtr - 1) < 0.15 and ir != vtr
    catalog = (resource / "T1MAP_catalog.xml").read_text()
    for key in runs:
        assert f'URI="{key}/nifti/T1.nii.gz"' in catalog


def test_session_index_of_the_real_session(outputs, tmp_path):
    """The session index of the converted pasta session: the three T1 runs and the
    perfusion run, each with its status, SNR, valid fraction and T1 median; rendered in
    Chromium with every image and link present."""
    session = outputs["session"]
    page = write_session_index(session, tmp_path / "index")
    index = json.loads((tmp_path / "index" / "index.json").read_text())
    assert index["session"] == "pasta" and index["project"] == "PRECLIN"
    keys = [(r["resource"], r["run_key"]) for r in index["runs"]]
    assert sorted(keys) == [("PERFUSIONMAP", "fair-scan30"), ("T1MAP", "ir-scan13"),
                            ("T1MAP", "ir-scan30"), ("T1MAP", "vtr-scan11")]
    for entry in index["runs"]:
        stats = json.loads(((tmp_path / "index") / entry["stats"]).read_text())
        assert entry["median_snr"] == stats["noise"]["median_snr"]
        assert entry["valid_fraction"] == stats["valid_fraction"]
        assert entry["outcome"] == stats["outcome"]
    rendered = render(page, screenshot=tmp_path / "index.png")
    assert rendered.problems == []
    for key in ("vtr-scan11", "ir-scan13", "ir-scan30", "fair-scan30"):
        assert key in rendered.text
    assert "T1: median" in rendered.text and " ms" in rendered.text


def _frame_slices(dicom: Path, n_slices: int) -> list[int]:
    """2dseq slice index at each NIfTI z (slices ascending along the DICOM normal)."""
    positions: dict[int, float] = {}
    for path in dicom.glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        frame = int(ds.private_block(0x0029, "XNATPIC 1.0")[0x10].value)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        positions[frame % n_slices] = float(np.dot(normal, [float(v) for v in
                                                            ds.ImagePositionPatient]))
    return sorted(positions, key=positions.__getitem__)


def _map(resource: Path, name: str) -> np.ndarray:
    return np.asarray(nib.load(resource / "nifti" / f"{name}.nii.gz").dataobj)


@pytest.fixture(scope="module")
def scan13(corpus_dir, outputs) -> dict[str, np.ndarray]:
    """Our IR T1 and the independent fits on the same sampled voxels of scan 13."""
    study = corpus_dir / STUDY
    ti = _floats(study / "13", "method", "PVM_FairTIR_Arr")
    tr = _floats(study / "13", "method", "MultiRepTime")
    recovery = _floats(study / "13", "method", "RecoveryTime")[0]
    order = [int(v) for v in _param(study / "13", "method", "PVM_ObjOrderList")]
    readout = (_floats(study / "13", "method", "PVM_RareFactor")[0]
               * _floats(study / "13", "method", "PVM_EchoTime")[0])
    period = (tr[0] - ti[0] - recovery) / len(order)
    vtr_tr = _vtr_recovery(study)
    ir_data = _twodseq(study / "13").reshape(ti.size, len(order), 160, 192)
    vtr_data = _twodseq(study / "11").reshape(vtr_tr.size, len(order), 160, 192)
    slices = _frame_slices(outputs["dicom_13"], len(order))
    assert slices == _frame_slices(outputs["dicom_11"], len(order))
    ours = _map(outputs["t1_13"], "T1")
    mask = _map(outputs["t1_13"], "mask") > 0
    rng = np.random.default_rng(10)
    picked = np.argwhere(mask)[rng.choice(int(mask.sum()), N_VOXELS, replace=False)]
    rows: dict[str, list[float]] = {k: [] for k in ("ours", "timed", "naive", "vtr", "pos")}
    for x, y, z in picked:
        s = slices[z]
        position = order.index(s)
        signal = ir_data[:, s, y, x]
        rows["ours"].append(float(ours[x, y, z]))
        rows["timed"].append(_ir(signal, ti + position * period, tr, readout))
        rows["naive"].append(_ir(signal, ti, None, 0.0))
        rows["vtr"].append(_vtr(vtr_data[:, s, y, x], vtr_tr))
        rows["pos"].append(position)
    return {k: np.array(v) for k, v in rows.items()}


class TestScan13:
    def test_matches_an_independent_fit_of_the_same_model(self, scan13):
        ratio = scan13["ours"] / scan13["timed"]
        assert np.all(np.isfinite(scan13["ours"]))
        assert np.median(np.abs(ratio - 1)) < 0.005
        assert np.percentile(np.abs(ratio - 1), 95) < 0.03

    def test_agrees_with_the_vtr_t1_of_scan_11(self, scan13):
        """The issue's judge: within 15 % of VTR on the same voxels."""
        bias = np.median(scan13["ours"]) / np.median(scan13["vtr"]) - 1
        assert abs(bias) < 0.15, bias
        assert abs(np.median(scan13["ours"] / scan13["vtr"]) - 1) < 0.15

    def test_the_timing_is_what_makes_it_agree(self, scan13):
        """Without the timing (k = 2, TR >> T1, protocol TI) the same voxels are > 15 % off."""
        bias = np.median(scan13["naive"]) / np.median(scan13["vtr"]) - 1
        assert bias < -0.15, bias

    def test_slices_read_first_agree_best(self, scan13):
        """Slices read in the first half of the train (no cross-talk from neighbours read
        before them) agree with VTR within 10 %."""
        early = scan13["pos"] <= 4
        bias = np.median(scan13["ours"][early] / scan13["vtr"][early]) - 1
        assert abs(bias) < 0.10, bias


@pytest.fixture(scope="module")
def scan30(corpus_dir, outputs) -> dict[str, np.ndarray]:
    """Scan 30 (one slice, selective and non-selective interleaved): ours and scipy."""
    study = corpus_dir / STUDY
    ti = _floats(study / "30", "method", "PVM_FairTIR_Arr")
    tr = _floats(study / "30", "method", "MultiRepTime")
    readout = (_floats(study / "30", "method", "PVM_RareFactor")[0]
               * _floats(study / "30", "method", "PVM_EchoTime")[0])
    modes = _param(study / "30" / "pdata" / "1", "visu_pars", "VisuFGElemComment")
    assert " ".join(modes) == "<Selective Inversion> <Non-selective Inversion>"
    data = _twodseq(study / "30").reshape(ti.size, 2, 160, 192)  # FG_IRMODE fastest
    # the VTR slice at scan 30's position (PVM_SliceOffset)
    offset30 = _floats(study / "30", "method", "PVM_SliceOffset")[0]
    offsets11 = _floats(study / "11", "method", "PVM_SliceOffset")
    s11 = int(np.argmin(np.abs(offsets11 - offset30)))
    assert abs(offsets11[s11] - offset30) < 1e-3
    vtr_tr = _vtr_recovery(study)
    vtr_data = _twodseq(study / "11").reshape(vtr_tr.size, offsets11.size, 160, 192)
    t1 = _map(outputs["t1_30"], "T1")
    t1_sel = _map(outputs["t1_30"], "T1_selective")
    cbf = _map(outputs["perfusion"], "CBF")
    mask = _map(outputs["t1_30"], "mask") > 0
    rng = np.random.default_rng(30)
    picked = np.argwhere(mask)[rng.choice(int(mask.sum()), N_VOXELS, replace=False)]
    rows: dict[str, list[float]] = {k: [] for k in ("ns", "sel", "ns_ref", "sel_ref",
                                                    "vtr", "cbf")}
    for x, y, z in picked:
        rows["ns"].append(float(t1[x, y, z]))
        rows["sel"].append(float(t1_sel[x, y, z]))
        rows["cbf"].append(float(cbf[x, y, z]))
        rows["sel_ref"].append(_ir(data[:, 0, y, x], ti, tr, readout))
        rows["ns_ref"].append(_ir(data[:, 1, y, x], ti, tr, readout))
        rows["vtr"].append(_vtr(vtr_data[:, s11, y, x], vtr_tr))
    return {k: np.array(v) for k, v in rows.items()}


class TestScan30:
    def test_selective_and_nonselective_fitted_separately(self, scan30):
        for ours, ref in (("ns", "ns_ref"), ("sel", "sel_ref")):
            ratio = scan30[ours] / scan30[ref]
            assert np.median(np.abs(ratio - 1)) < 0.005, ours
            assert np.percentile(np.abs(ratio - 1), 95) < 0.03, ours

    def test_agrees_with_the_vtr_t1_of_scan_11(self, scan30):
        bias = np.median(scan30["ns"] / scan30["vtr"]) - 1
        assert abs(bias) < 0.15, bias

    def test_perfusion_of_a_phantom_is_near_zero(self, scan30, outputs):
        """No flow in a pasta phantom: far below tissue perfusion (mouse brain 100-200
        mL/100 g/min) and equal to the flow computed from the independent T1s."""
        lam, blood = 0.9, 2300.0
        reference = lam * scan30["ns_ref"] / blood * (
            1 / scan30["sel_ref"] - 1 / scan30["ns_ref"]) * 6e6
        assert abs(np.median(scan30["cbf"])) < 20.0
        assert abs(np.median(scan30["cbf"]) - np.median(reference)) < 2.0
        provenance = json.loads((outputs["perfusion"] / "provenance.json").read_text())
        parameters = provenance["parameters"]
        assert parameters["blood_t1_ms"] == blood and parameters["partition_ml_per_g"] == lam
        assert parameters["fair_modes"] == ["NONSELECTIVE", "SELECTIVE"]


def test_enhanced_mr_carries_the_same_timing(corpus_dir, outputs, tmp_path):
    """Scan 13 as one Enhanced MR file (per-frame MR Modifier InversionTimes, MR Timing
    RepetitionTime, private timing in the per-frame group): the same T1 map."""
    work = tmp_path
    assert xnatpic_main(["convert", str(corpus_dir / STUDY), "-o", str(work / "dcm"),
                         "--scans", "13", "--format", "enhanced"]) == 0
    folders = {folder_key(p.name): p for p in (work / "dcm").glob("*/*/*") if p.is_dir()}
    [enhanced] = [pydicom.dcmread(p, stop_before_pixels=True)
                  for p in folders["13"].glob("*.dcm")]
    assert int(enhanced.NumberOfFrames) == 27
    session = make_session(work / "archive", folders, label="enhanced")
    result = launch_step("t1map", session, work / "build", {"scan": "13"})
    assert result.ok, Path(result.stderr).read_text()[-2000:]
    ours = _map(run_dir(Path(result.stored[0])), "T1")
    classic = _map(outputs["t1_13"], "T1")
    both = np.isfinite(ours) & np.isfinite(classic)
    assert both.sum() > 0.99 * np.isfinite(classic).sum()
    np.testing.assert_allclose(ours[both], classic[both], rtol=1e-4)
    provenance = json.loads((run_dir(Path(result.stored[0])) / "provenance.json").read_text())
    delays = provenance["parameters"]["timing"]["NONSELECTIVE"]["slice_delays_ms"]
    assert max(delays) == pytest.approx(8 * 63.17, abs=0.1)


def test_perfusion_refuses_a_scan_without_both_inversion_modes(corpus_dir, outputs, tmp_path):
    """Scan 13 is non-selective only: the perfusion step names what is missing."""
    session = make_session(tmp_path / "archive", {"13": outputs["dicom_13"]}, label="ns")
    result = launch_step("perfusion", session, tmp_path / "build", {"scan": "13"})
    assert not result.ok and result.exit_code == 1
    message = Path(result.stderr).read_text().strip().splitlines()[-1]
    assert "scan 13" in message and "FAIR series" in message, message


def test_perfusion_from_two_scans(outputs, tmp_path):
    """Selective and non-selective images as two scans (scan 30's files split by their
    inversion mode): the step pairs them and gives the same CBF map."""
    folders = {"40": tmp_path / "sel", "41": tmp_path / "ns"}
    for folder in folders.values():
        folder.mkdir()
    for path in outputs["dicom_30"].glob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        mode = ds.private_block(0x0029, "XNATPIC 1.0")[0x37].value
        shutil.copy2(path, folders["40" if mode == "SELECTIVE" else "41"] / path.name)
    session = make_session(tmp_path / "archive", folders, label="two_scans")
    result = launch_step("perfusion", session, tmp_path / "build")
    assert result.ok, Path(result.stderr).read_text()[-2000:]
    resource = run_dir(Path(result.stored[0]), "fair-scan40")
    provenance = json.loads((resource / "provenance.json").read_text())
    assert provenance["scans"] == {"source": "40", "selective": "40", "nonselective": "41"}
    pair, single = _map(resource, "CBF"), _map(outputs["perfusion"], "CBF")
    both = np.isfinite(pair) & np.isfinite(single)
    assert both.sum() > 0.99 * np.isfinite(single).sum()
    np.testing.assert_allclose(pair[both], single[both], rtol=1e-4, atol=1e-3)


def test_derived_dicom_of_the_maps_pass_dciodvfy(outputs):
    """The CBF and T1 maps as derived MR series: no dciodvfy error (the LUT explanation
    must fit its 64-byte LO)."""
    require_executable("dciodvfy", "Debian dicom3tools; run `make tools`")
    for resource, name in ((outputs["perfusion"], "CBF"), (outputs["t1_13"], "T1"),
                           (outputs["t1_30"], "T1")):
        files = sorted((resource / "dicom" / name).glob("*.dcm"))
        assert files, (resource, name)
        errors, _ = run_dciodvfy(files[0])
        assert not errors, (name, errors)
