"""The truth beside the study matches the images: plain numpy fits recover the known values."""

from __future__ import annotations

import numpy as np
import pytest

from xnatpic import __version__
from xnatpic.errors import XnatpicError
from xnatpic.phantom import read_truth, read_truth_map
from xnatpic.phantom.compartments import COMPARTMENTS
from xnatpic.phantom.geometry import GEOMETRIES

MAPS = ("labels", "M0", "T1", "T2", "T2s", "ADC", "MD", "FA", "B0_ppm", "B0_Hz", "D")
BY_NAME = {c.name: c for c in COMPARTMENTS}


def _roi_mean(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the voxels of mask (slices, rows, cols) of data (slices, n, rows, cols)."""
    return np.moveaxis(data, 1, -1)[mask].mean(axis=0)


def _grid_fit(x: np.ndarray, y: np.ndarray, model) -> float:
    """T minimising ||y − a·model(x, T)|| with a linear amplitude a (plain grid search)."""
    grid = np.geomspace(10.0, 10000.0, 20001)
    basis = model(x[None, :], grid[:, None])
    amp = (basis @ y) / np.einsum("ij,ij->i", basis, basis)
    residual = np.linalg.norm(y[None, :] - amp[:, None] * basis, axis=1)
    return float(grid[np.argmin(residual)])


class TestTruthFile:
    def test_document(self, truth, phantom_settings):
        assert truth["snr"] == phantom_settings["snr"]
        assert truth["seed"] == phantom_settings["seed"]
        assert truth["xnatpic_version"] == __version__
        assert truth["label_encoding"]["0"].startswith("air")
        assert {int(k) for k in truth["label_encoding"]} == {0} | {c.label for c in COMPARTMENTS}
        assert [s["scan"] for s in truth["scans"]] == list(range(1, 9))
        for key in ("formulae", "compartments", "b0_field", "units", "conventions", "geometries"):
            assert truth[key]
        assert "Z(Δω)" in truth["formulae"]["z_spectrum"]
        fibre = next(c for c in truth["compartments"] if c["name"] == "vial_D_fibre")
        assert 0.55 < fibre["FA"] < 0.65

    @pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
    def test_maps_align_with_the_image_matrix(self, truth, truth_maps, geometry):
        shape = GEOMETRIES[geometry].shape
        assert shape[1:] == (64, 96)  # rows = VisuCoreSize[1], columns = VisuCoreSize[0]
        for name in MAPS:
            array = truth_maps(geometry, name)
            assert array.shape[:3] == shape, name
            assert truth["maps"][geometry][name] == f"maps/{geometry}/{name}.npy"
        labels = truth_maps(geometry, "labels")
        assert labels.dtype == np.uint8
        for comp in COMPARTMENTS:
            inside = labels == comp.label
            assert np.all(truth_maps(geometry, "T1")[inside] == comp.t1)
            assert np.all(truth_maps(geometry, "T2")[inside] == comp.t2)

    def test_readers(self, phantom_dir, truth, truth_maps, tmp_path):
        assert read_truth(phantom_dir) == truth
        t2 = read_truth_map(phantom_dir, "axial", "T2")
        assert np.array_equal(t2, truth_maps("axial", "T2"))
        with pytest.raises(XnatpicError, match="no phantom truth here"):
            read_truth(tmp_path)
        with pytest.raises(XnatpicError, match="no truth map 'T9'"):
            read_truth_map(phantom_dir, "axial", "T9")

    def test_every_compartment_in_the_axial_slices(self, truth_maps):
        labels = truth_maps("axial", "labels")
        assert set(np.unique(labels)) == {0} | {c.label for c in COMPARTMENTS}
        sphere = BY_NAME["sphere_E_amide"].label
        per_slice = [(s == sphere).sum() for s in labels]
        assert per_slice[0] == 0 and min(per_slice[1:]) > 20  # slice order is visible

    def test_labels_are_not_symmetric(self, truth_maps):
        labels = truth_maps("axial", "labels")
        assert not np.array_equal(labels, labels[:, ::-1, :])
        assert not np.array_equal(labels, labels[:, :, ::-1])


class TestSignalsMatchTruth:
    @pytest.mark.parametrize(("scan", "key"), [(2, "T2"), (5, "T2s")])
    def test_log_linear_fit_recovers_decay(self, read_scan, truth, truth_maps, scan, key):
        data = read_scan(scan)
        te = np.asarray(data.visu["VisuAcqEchoTime"], dtype=float)
        sigma = truth["scans"][scan - 1]["noise_sigma"]
        labels = truth_maps("axial", "labels")
        grouped = data.grouped()
        for comp in COMPARTMENTS:
            signal = _roi_mean(grouped, labels == comp.label)
            keep = signal > 10 * sigma
            assert keep.sum() >= 4, comp.name
            slope = np.polyfit(te[keep], np.log(signal[keep]), 1)[0]
            expected = getattr(comp, key.lower())
            assert -1.0 / slope == pytest.approx(expected, rel=0.03), comp.name

    def test_saturation_recovery_t1(self, read_scan, truth_maps):
        data = read_scan(3)
        tr = np.asarray(data.method["MultiRepTime"], dtype=float)
        # RARE-VTR: recovery from the end of the echo train (RARE factor x echo spacing).
        tr = tr - float(data.method["PVM_RareFactor"]) * float(data.method["PVM_EchoTime"])
        labels = truth_maps("axial", "labels")
        for comp in COMPARTMENTS:
            signal = _roi_mean(data.grouped(), labels == comp.label)
            t1 = _grid_fit(tr, signal, lambda x, t: 1.0 - np.exp(-x / t))
            assert t1 == pytest.approx(comp.t1, rel=0.03), comp.name

    def test_inversion_recovery_t1(self, read_scan, truth_maps):
        """Steady-state FAIR timing read from the ParaVision parameters alone: slice p of
        PVM_ObjOrderList is excited p x (MultiRepTime - TI - RecoveryTime) / slices after
        the first; its echo train (RareFactor x EchoTime) saturates it, and Mz recovers
        from zero until the next inversion, MultiRepTime after the last."""
        data = read_scan(4)
        m = data.method
        ti = np.asarray(m["PVM_FairTIR_Arr"], dtype=float)
        tr = np.asarray(m["MultiRepTime"], dtype=float)
        readout = float(m["PVM_RareFactor"]) * float(m["PVM_EchoTime"])
        order = [int(s) for s in np.atleast_1d(m["PVM_ObjOrderList"])]
        period = (tr - ti - float(m["RecoveryTime"])) / len(order)
        assert np.ptp(period) < 1e-6
        delays = np.array([order.index(s) for s in range(len(order))]) * period[0]
        grouped = data.grouped()
        labels = truth_maps("axial", "labels")
        for comp in COMPARTMENTS:
            slices = [s for s in range(len(order)) if (labels[s] == comp.label).sum() > 20]
            signal = np.concatenate([_roi_mean(grouped[s:s + 1], labels[s:s + 1] == comp.label)
                                     for s in slices])
            ti_eff = np.concatenate([ti + delays[s] for s in slices])
            recovery = np.tile(tr - readout, len(slices))
            t1 = _grid_fit(ti_eff, signal, lambda x, t, r=recovery: np.abs(
                1.0 - 2.0 * np.exp(-x / t) + np.exp(-r / t)))
            assert t1 == pytest.approx(comp.t1, rel=0.01), comp.name

    def test_tensor_fit_from_paravision_parameters(self, read_scan, truth, truth_maps):
        data = read_scan(6)
        m = data.method
        grad = np.asarray(m["PVM_DwGradVec"], dtype=float)
        norms = np.linalg.norm(grad, axis=1)
        unit = np.divide(grad, norms[:, None], out=np.zeros_like(grad), where=norms[:, None] > 0)
        rotation = np.asarray(data.visu["VisuCoreOrientation"][0], dtype=float).reshape(3, 3)
        g = unit @ rotation  # gradient frame -> subject frame
        b = np.asarray(m["PVM_DwEffBval"], dtype=float)
        design = np.column_stack([
            np.ones_like(b), -b * g[:, 0] ** 2, -b * g[:, 1] ** 2, -b * g[:, 2] ** 2,
            -2 * b * g[:, 0] * g[:, 1], -2 * b * g[:, 0] * g[:, 2], -2 * b * g[:, 1] * g[:, 2],
        ])  # fmt: skip
        labels = truth_maps("oblique", "labels")
        for comp in COMPARTMENTS:
            signal = _roi_mean(data.grouped(), labels == comp.label)
            coef = np.linalg.lstsq(design, np.log(signal), rcond=None)[0]
            dxx, dyy, dzz, dxy, dxz, dyz = coef[1:]
            tensor = np.array([[dxx, dxy, dxz], [dxy, dyy, dyz], [dxz, dyz, dzz]])
            lam, vec = np.linalg.eigh(tensor)
            fa = np.sqrt(1.5) * np.linalg.norm(lam - lam.mean()) / np.linalg.norm(lam)
            row = next(c for c in truth["compartments"] if c["name"] == comp.name)
            assert lam.mean() == pytest.approx(row["MD_mm2_s"], rel=0.05), comp.name
            assert fa == pytest.approx(row["FA"], abs=0.05), comp.name
            if row["FA"] > 0.3:
                e1 = np.asarray(comp.principal_direction)
                e1 = e1 / np.linalg.norm(e1)
                assert abs(vec[:, -1] @ e1) > 0.99

    def test_wassr_minimum_is_the_b0_map(self, read_scan, truth, truth_maps):
        data = read_scan(8)
        hz = np.asarray(data.method["PVM_SatTransFreqValues"], dtype=float)
        ppm = hz / data.method["PVM_FrqWork"][0]
        spectra = np.moveaxis(data.grouped(), 1, -1)[..., 1:]  # drop the M0 frame
        offsets = ppm[1:]
        labels, b0 = truth_maps("axial", "labels"), truth_maps("axial", "B0_ppm")
        bath = labels == BY_NAME["bath"].label
        z = spectra[bath]
        k = np.clip(np.argmin(z, axis=1), 1, offsets.size - 2)
        left, mid, right = (z[np.arange(len(k)), k + d] for d in (-1, 0, 1))
        step = offsets[1] - offsets[0]
        vertex = offsets[k] + step * 0.5 * (left - right) / (left - 2 * mid + right)
        assert np.median(np.abs(vertex - b0[bath])) < 0.03
        assert np.ptp(b0[bath]) > 0.3  # the field does vary across the phantom

    def test_cest_dip_only_where_the_pool_is(self, read_scan, truth, truth_maps):
        data = read_scan(7)
        enc = truth["scans"][6]["encoding"]
        ppm = np.asarray(enc["offsets_ppm"])
        labels, b0 = truth_maps("axial", "labels"), truth_maps("axial", "B0_ppm")
        m0_frame = enc["m0_reference_frames"][0]
        sweep = np.delete(np.arange(ppm.size), m0_frame)
        asym = {}
        for comp in COMPARTMENTS:
            inside = labels == comp.label
            spectrum = _roi_mean(data.grouped(), inside)
            z = spectrum[sweep] / spectrum[m0_frame]
            shift = b0[inside].mean()  # B0-corrected asymmetry at 2 ppm
            at = np.interp([-2.0 + shift, 2.0 + shift], ppm[sweep], z)
            asym[comp.name] = at[0] - at[1]
        assert asym["vial_C_amine"] > 0.08
        for name in ("vial_A", "vial_B", "vial_D_fibre"):
            assert abs(asym[name]) < 0.03, name

    def test_noise_level_in_air(self, read_scan, truth, truth_maps, phantom_settings):
        data = read_scan(2)
        sigma = truth["scans"][1]["noise_sigma"]
        assert sigma == pytest.approx(truth["scans"][1]["noiseless_max"] / phantom_settings["snr"])
        air = truth_maps("axial", "labels") == 0
        rayleigh_mean = sigma * np.sqrt(np.pi / 2)
        assert np.moveaxis(data.grouped(), 1, -1)[air].mean() == pytest.approx(
            rayleigh_mean, rel=0.05
        )
