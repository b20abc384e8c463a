"""The phantom study is a faithful ParaVision 6.0.1 study: files, parameters, frames, storage."""

from __future__ import annotations

import numpy as np
import pytest

from xnatpic.paravision.jcamp import read_jcamp
from xnatpic.phantom.geometry import GEOMETRIES
from xnatpic.phantom.protocols import PROTOCOLS

SCANS = [p.scan for p in PROTOCOLS]


def _names(text: str) -> list[str]:
    return text.split()


VISU_REQUIRED = _names(
    "VisuUid VisuCoreFrameCount VisuCoreDim VisuCoreSize VisuCoreDimDesc VisuCoreExtent "
    "VisuCoreFrameThickness VisuCoreUnits VisuCoreOrientation VisuCorePosition VisuCoreDataMin "
    "VisuCoreDataMax VisuCoreDataOffs VisuCoreDataSlope VisuCoreFrameType VisuCoreWordType "
    "VisuCoreByteOrder VisuCoreSlicePacksDef VisuCoreSlicePacksSlices "
    "VisuCoreSlicePacksSliceDist VisuFGOrderDescDim VisuFGOrderDesc VisuGroupDepVals "
    "VisuSubjectName VisuSubjectId VisuSubjectUid VisuStudyUid VisuStudyDate VisuStudyId "
    "VisuStudyNumber VisuExperimentNumber VisuProcessingNumber VisuSeriesNumber "
    "VisuAcqSequenceName VisuAcqEchoTime VisuAcqFlipAngle VisuAcqImagingFrequency "
    "VisuAcquisitionProtocol VisuAcqScanTime VisuSubjectPosition VisuSubjectType "
    "VisuInstitution VisuStation VisuManufacturer VisuCreatorVersion"
)
ACQP_REQUIRED = _names(
    "ACQ_sw_version BF1 ACQ_protocol_name ACQ_scan_name ACQ_method NI NR ACQ_echo_time "
    "ACQ_repetition_time ACQ_inversion_time ACQ_flip_angle ACQ_size ACQ_dim"
)
METHOD_REQUIRED = _names(
    "Method PVM_EchoTime EffectiveTE PVM_RepetitionTime PVM_FrqWork PVM_SPackArrNSlices "
    "PVM_Matrix PVM_Fov PVM_SliceThick PVM_SPackArrSliceDistance PVM_SPackArrGradOrient"
)
METHOD_BY_MODEL = {
    "saturation_recovery": ["MultiRepTime"],
    "inversion_recovery": ["PVM_FairTIR_Arr", "MultiRepTime"],
    "diffusion": _names(
        "PVM_DwEffBval PVM_DwBvalEach PVM_DwGradVec PVM_DwDir PVM_DwAoImages "
        "PVM_DwNDiffDir PVM_DwBMat"
    ),
    "z_spectrum": _names(
        "PVM_SatTransFreqValues PVM_SatTransFreqUnit PVM_SatTransPulseAmpl_uT "
        "PVM_SatTransNPulses PVM_NSatFreq PVM_SatTransFL PVM_SatTransPulse"
    ),
}


def _category(value):
    if isinstance(value, np.ndarray):
        return ("array", value.ndim, "str" if value.dtype.kind == "U" else "number")
    if isinstance(value, bool | int | float):
        return "number"
    return type(value).__name__


class TestLayout:
    def test_study_files(self, phantom_dir):
        assert (phantom_dir / "subject").is_file()
        assert (phantom_dir / "truth" / "truth.json").is_file()
        for scan in SCANS:
            folder = phantom_dir / str(scan)
            for name in ("acqp", "method", "visu_pars", "pdata/1/2dseq", "pdata/1/visu_pars",
                         "pdata/1/reco"):  # fmt: skip
                assert (folder / name).is_file(), f"scan {scan}: {name}"

    @pytest.mark.parametrize("name", ["acqp", "method", "visu_pars", "pdata/1/reco"])
    def test_jcamp_headers(self, phantom_dir, name):
        for scan in SCANS:
            lines = (phantom_dir / str(scan) / name).read_text().splitlines()
            assert lines[0] == "##TITLE=Parameter List, ParaVision 6.0.1"
            assert lines[1] == "##JCAMPDX=4.24"
            assert lines[-1] == "##END="
            assert all(len(line) < 80 or "<" in line for line in lines)

    def test_scan_visu_pars_copies_reco_visu_pars(self, phantom_dir):
        for scan in SCANS:
            folder = phantom_dir / str(scan)
            assert (folder / "visu_pars").read_bytes() == (
                folder / "pdata" / "1" / "visu_pars"
            ).read_bytes()

    def test_subject(self, phantom_dir, read_scan):
        subject = read_jcamp(phantom_dir / "subject")
        assert subject["SUBJECT_study_instance_uid"] == read_scan(2).visu["VisuStudyUid"]
        assert subject["SUBJECT_position"] == "SUBJ_POS_Prone"


class TestParameters:
    @pytest.mark.parametrize("scan", SCANS)
    def test_required_parameters(self, read_scan, scan):
        data = read_scan(scan)
        proto = next(p for p in PROTOCOLS if p.scan == scan)
        assert not [k for k in VISU_REQUIRED if k not in data.visu]
        assert not [k for k in ACQP_REQUIRED if k not in data.acqp]
        needed = METHOD_REQUIRED + METHOD_BY_MODEL.get(proto.model, [])
        assert not [k for k in needed if k not in data.method]
        assert data.acqp["ACQ_sw_version"] == "PV 6.0.1"
        assert data.method["Method"] == proto.method == data.visu["VisuAcqSequenceName"]
        assert data.acqp["BF1"] == data.method["PVM_FrqWork"][0]

    @pytest.mark.parametrize(
        ("ours", "real"),
        [("2/pdata/1/visu_pars", "9/pdata/1/visu_pars"), ("2/method", "9/method"),
         ("2/acqp", "9/acqp"), ("3/pdata/1/visu_pars", "11/pdata/1/visu_pars"),
         ("3/method", "11/method"), ("4/method", "13/method"), ("4/acqp", "13/acqp"),
         ("6/method", "21/method"), ("6/pdata/1/visu_pars", "21/pdata/1/visu_pars"),
         ("6/pdata/1/reco", "21/pdata/1/reco")],
    )  # fmt: skip
    def test_parameter_kinds_match_real_paravision(self, phantom_dir, corpus, ours, real):
        mine = read_jcamp(phantom_dir / ours)
        reference = read_jcamp(corpus / "pv6-dicomifier" / "study" / real)
        shared = [k for k in mine if k in reference]
        assert len(shared) >= 0.8 * len(mine), "mostly real ParaVision parameter names"
        wrong = {k: (_category(mine[k]), _category(reference[k])) for k in shared
                 if _category(mine[k]) != _category(reference[k])}  # fmt: skip
        assert not wrong

    @pytest.mark.parametrize("scan", SCANS)
    def test_frames_and_2dseq_size(self, phantom_dir, read_scan, scan):
        data = read_scan(scan)
        visu = data.visu
        sizes = [int(g[0]) for g in visu["VisuFGOrderDesc"]]
        frames = int(visu["VisuCoreFrameCount"])
        assert int(np.prod(sizes)) == frames == data.acqp["NI"] * data.acqp["NR"]
        assert visu["VisuFGOrderDescDim"] == len(sizes)
        itemsize = 4 if visu["VisuCoreWordType"] == "_32BIT_FLOAT" else 2
        size = (phantom_dir / str(scan) / "pdata" / "1" / "2dseq").stat().st_size
        assert size == frames * 96 * 64 * itemsize
        for name in ("VisuCoreDataSlope", "VisuCoreDataOffs", "VisuCoreDataMin",
                     "VisuCoreDataMax"):  # fmt: skip
            assert visu[name].shape == (frames,)
        assert np.allclose(visu["VisuCoreDataMin"], data.values.min(axis=(1, 2)))
        assert np.allclose(visu["VisuCoreDataMax"], data.values.max(axis=(1, 2)))
        deps = visu["VisuGroupDepVals"]
        assert sum(int(g[4]) for g in visu["VisuFGOrderDesc"]) == len(deps)

    def test_frame_group_orders_like_real_scans(self, read_scan):
        ids = {s: [(g[1], g[2]) for g in read_scan(s).visu["VisuFGOrderDesc"]] for s in SCANS}
        assert ids[1] == [("FG_SLICE", "")]
        assert ids[2] == [("FG_ECHO", ""), ("FG_SLICE", "")]
        assert ids[3] == [("FG_SLICE", ""), ("FG_MOVIE", "vtr")]
        assert ids[4] == [("FG_SLICE", ""), ("FG_MOVIE", "Non-selective Inversion")]
        assert ids[5] == [("FG_ECHO", ""), ("FG_SLICE", "")]
        assert ids[6] == [("FG_SLICE", ""), ("FG_DIFFUSION", "diffusion")]
        assert ids[7] == ids[8] == [("FG_SLICE", ""), ("FG_CYCLE", "")]
        assert read_scan(2).visu["VisuAcqEchoTime"].size >= 10
        assert read_scan(3).method["MultiRepTime"].size >= 6
        assert read_scan(4).visu["VisuAcqInversionTime"].size >= 8
        assert read_scan(5).visu["VisuAcqEchoTime"].size >= 8

    def test_storage_variants(self, read_scan):
        msme, vtr, mge = read_scan(2), read_scan(3), read_scan(5)
        assert len(set(msme.visu["VisuCoreDataSlope"].tolist())) == msme.stored.shape[0]
        assert np.all(vtr.visu["VisuCoreDataOffs"] != 0)
        assert vtr.stored.dtype == np.int16 and vtr.stored.min() < -30000
        assert mge.visu["VisuCoreWordType"] == "_32BIT_FLOAT"
        assert mge.stored.dtype == np.float32
        assert np.all(mge.visu["VisuCoreDataSlope"] == 1)

    @pytest.mark.parametrize("scan", SCANS)
    def test_geometry(self, read_scan, scan):
        visu = read_scan(scan).visu
        proto = next(p for p in PROTOCOLS if p.scan == scan)
        geom = GEOMETRIES[proto.geometry]
        assert visu["VisuCoreSize"].tolist() == [96, 64]
        spacing = visu["VisuCoreExtent"] / visu["VisuCoreSize"]
        assert spacing[0] != spacing[1]
        orientation = visu["VisuCoreOrientation"].reshape(-1, 3, 3)
        assert orientation.shape[0] == geom.n_slices
        for rot in orientation:
            assert np.allclose(rot @ rot.T, np.eye(3))
            assert np.isclose(np.linalg.det(rot), 1.0)
        positions = visu["VisuCorePosition"]
        steps = np.diff(positions, axis=0)
        assert np.allclose(steps, visu["VisuCoreSlicePacksSliceDist"][0] * orientation[0][2])
        half = spacing[0] * 48 * orientation[:, 0] + spacing[1] * 32 * orientation[:, 1]
        centre = positions + half  # the centre of a slice is on voxel (32, 48)
        assert np.allclose(centre.mean(axis=0), geom.centre)

    def test_oblique_and_coronal_scans(self, read_scan):
        oblique = read_scan(6).visu["VisuCoreOrientation"][0].reshape(3, 3)
        assert np.count_nonzero(np.abs(oblique) > 1e-6) > 5
        coronal = read_scan(1).visu["VisuCoreOrientation"][0].reshape(3, 3)
        assert np.allclose(np.abs(coronal[2]), [0, 1, 0])
        assert read_scan(1).method["PVM_SPackArrSliceOrient"][0] == "coronal"

    def test_diffusion_parameters(self, read_scan):
        data = read_scan(6)
        m = data.method
        n_exp = m["PVM_DwAoImages"] + m["PVM_DwNDiffDir"] * m["PVM_DwNDiffExpEach"]
        assert n_exp == m["PVM_DwNDiffExp"] == m["PVM_DwEffBval"].size
        assert m["PVM_DwNDiffDir"] >= 6 and m["PVM_DwBvalEach"].tolist() == [500, 1000]
        norms = np.linalg.norm(m["PVM_DwGradVec"], axis=1)
        nominal = np.r_[[0] * m["PVM_DwAoImages"], np.tile(m["PVM_DwBvalEach"], 6)]
        assert np.allclose(norms, np.sqrt(nominal / m["PVM_DwMaxBval"]))
        bmat = data.visu["VisuAcqDiffusionBMatrix"].reshape(-1, 3, 3)
        assert np.allclose(np.trace(bmat, axis1=1, axis2=2), m["PVM_DwEffBval"])
        comments = data.visu["VisuFGElemComment"]
        assert comments[0] == "A0 1 B 0" and comments[-1].startswith("Dir 6 B ")

    def test_saturation_parameters(self, read_scan):
        cest, wassr = read_scan(7).method, read_scan(8).method
        assert cest["PVM_SatTransFreqUnit"] == "unit_ppm"
        assert cest["PVM_SatTransFreqValues"][0] == -300
        assert cest["PVM_SatTransFreqValues"][1:].min() == -6
        assert cest["PVM_SatTransFreqValues"].max() == 6
        assert wassr["PVM_SatTransFreqUnit"] == "unit_hz"
        ppm = wassr["PVM_SatTransFreqValues"][1:] / wassr["PVM_FrqWork"][0]
        assert np.isclose(ppm.min(), -1) and np.isclose(ppm.max(), 1)
        assert wassr["PVM_SatTransPulseAmpl_uT"] < cest["PVM_SatTransPulseAmpl_uT"]
        for m in (cest, wassr):
            assert m["PVM_NSatFreq"] == m["PVM_SatTransFreqValues"].size
