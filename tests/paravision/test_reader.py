"""Dataset tree, 2dseq reading, frame groups and per-frame parameters."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from xnatpic.errors import (
    MissingParameterError,
    NotParaVisionError,
    ParaVisionError,
    UnsafeArchiveError,
    UnsupportedDataError,
)
from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import load_series

from .builders import write_reco, write_study


def _zip(folder, archive):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent))
    return archive


class TestDataset:
    def test_study_scan_and_reco_folders(self, tmp_path):
        study = write_study(tmp_path / "s", {"3": {}, "10": {}, "2": {}})
        assert [s.id for s in open_dataset(study).scans] == ["2", "3", "10"]
        assert [s.id for s in open_dataset(study / "10").scans] == ["10"]
        one = open_dataset(study / "3" / "pdata" / "1")
        assert [r.label for s in one.scans for r in s.recos] == ["3-1"]
        assert one.subject["SUBJECT_id"] == "mouse-1"

    def test_zip_equals_folder(self, tmp_path):
        study = write_study(tmp_path / "s", {"5": {"seed": 3}})
        archive = _zip(study, tmp_path / "s.zip")
        with open_dataset(archive) as zipped:
            a = load_series(zipped.scans[0].recos[0])
            folder_series = load_series(open_dataset(study).scans[0].recos[0])
            assert np.array_equal(a.stack.frames(), folder_series.stack.frames())
            extracted = zipped.path
        assert not extracted.exists(), "the extraction folder is removed on close"

    def test_zip_with_parent_members_is_refused(self, tmp_path):
        archive = tmp_path / "evil.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("study/subject", "##$SUBJECT_id=<x>\n")
            zf.writestr("../escape.txt", "boom")
        with pytest.raises(UnsafeArchiveError, match=r"'\.\./escape\.txt'"):
            open_dataset(archive)
        assert not (tmp_path.parent / "escape.txt").exists()

    def test_not_paravision(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(NotParaVisionError, match="not a ParaVision study"):
            open_dataset(tmp_path)
        with pytest.raises(NotParaVisionError, match="not a ParaVision folder"):
            open_dataset(tmp_path / "notes.txt")


class TestTwoDSeq:
    @pytest.mark.parametrize("word_type", ["_16BIT_SGN_INT", "_32BIT_SGN_INT",
                                           "_8BIT_UNSGN_INT", "_32BIT_FLOAT"])
    @pytest.mark.parametrize("byte_order", ["littleEndian", "bigEndian"])
    def test_word_types_and_byte_orders(self, tmp_path, word_type, byte_order):
        stored = write_reco(tmp_path / "1", word_type=word_type, byte_order=byte_order)
        series = load_series(open_dataset(tmp_path / "1").scans[0].recos[0])
        slopes = [0.5 + 0.25 * f for f in range(stored.shape[0])]
        for image in series.images:
            expected = stored[image.frame].astype(np.float64) * slopes[image.frame] + image.frame
            assert np.array_equal(series.stored(image), stored[image.frame])
            assert np.allclose(series.real(image), expected)

    def test_negative_values_are_kept(self, tmp_path):
        stored = write_reco(tmp_path / "1")
        series = load_series(open_dataset(tmp_path / "1").scans[0].recos[0])
        assert stored.min() < 0
        assert min(series.real(im).min() for im in series.images) < 0

    def test_truncated_2dseq(self, tmp_path):
        write_reco(tmp_path / "1")
        data = tmp_path / "1/pdata/1/2dseq"
        data.write_bytes(data.read_bytes()[:-10])
        with pytest.raises(ParaVisionError, match=r"2dseq is truncated: 278 bytes on disk, "
                                                  r"expected 288"):
            load_series(open_dataset(tmp_path / "1").scans[0].recos[0])

    def test_oversized_2dseq(self, tmp_path):
        write_reco(tmp_path / "1")
        with open(tmp_path / "1/pdata/1/2dseq", "ab") as f:
            f.write(b"\0" * 4)
        with pytest.raises(ParaVisionError, match="larger than its header says"):
            load_series(open_dataset(tmp_path / "1").scans[0].recos[0])

    def test_unknown_word_type(self, tmp_path):
        write_reco(tmp_path / "1")
        visu = tmp_path / "1/pdata/1/visu_pars"
        visu.write_text(visu.read_text().replace("_16BIT_SGN_INT", "_12BIT_PACKED"))
        # corrupt data, not unsupported data: the reco fails (issue 16)
        with pytest.raises(ParaVisionError, match="unknown VisuCoreWordType '_12BIT_PACKED'"):
            load_series(open_dataset(tmp_path / "1").scans[0].recos[0])

    def test_zero_frames(self, tmp_path):
        write_reco(tmp_path / "1", necho=1, nslices=1)
        visu = tmp_path / "1/pdata/1/visu_pars"
        text = visu.read_text().replace("VisuCoreFrameCount=1", "VisuCoreFrameCount=0")
        visu.write_text(text)
        (tmp_path / "1/pdata/1/2dseq").write_bytes(b"")
        with pytest.raises(ParaVisionError, match="the reco has zero frames"):
            load_series(open_dataset(tmp_path / "1").scans[0].recos[0])

    def test_missing_visu_pars(self, tmp_path):
        write_reco(tmp_path / "1")
        (tmp_path / "1/pdata/1/visu_pars").unlink()
        with pytest.raises(MissingParameterError, match="visu_pars is missing"):
            load_series(open_dataset(tmp_path / "1").scans[0].recos[0])


class TestFrameGroups:
    def test_echo_fastest_then_slice(self, tmp_path):
        write_reco(tmp_path / "1", necho=3, nslices=2)
        series = load_series(open_dataset(tmp_path / "1").scans[0].recos[0])
        assert [(g.name, g.size) for g in series.layout.groups] == [("echo", 3), ("slice", 2)]
        assert [im.echo_time for im in series.images] == [10, 20, 30, 10, 20, 30]
        assert [im.echo_number for im in series.images] == [1, 2, 3, 1, 2, 3]
        assert [im.position[2] for im in series.images] == [0, 0, 0, 2, 2, 2]
        assert series.pixel_spacing == (0.5, 0.25)  # rows first
        assert series.spacing_between_slices() == 2.0


    def test_complex_frames(self, tmp_path):
        write_reco(tmp_path / "1", necho=2, nslices=2)
        visu = tmp_path / "1/pdata/1/visu_pars"
        text = visu.read_text().replace("<FG_ECHO>", "<FG_COMPLEX>")
        frame_type = "##$VisuCoreFrameType=( 1 )\nCOMPLEX_IMAGE\n##END="
        visu.write_text(text.replace("##END=", frame_type))
        series = load_series(open_dataset(tmp_path / "1").scans[0].recos[0])
        assert [im.complex_component for im in series.images] == ["REAL", "IMAGINARY"] * 2

    def test_disk_reverse_slice_order(self, tmp_path):
        write_reco(tmp_path / "1", necho=1, nslices=3)
        visu = tmp_path / "1/pdata/1/visu_pars"
        visu.write_text(visu.read_text().replace(
            "##END=", "##$VisuCoreDiskSliceOrder=disk_reverse_slice_order\n##END="))
        series = load_series(open_dataset(tmp_path / "1").scans[0].recos[0])
        # The first stored slice is the last element of VisuCorePosition.
        assert [im.position[2] for im in series.images] == [4.0, 2.0, 0.0]


class TestCorpusSeries:
    def test_msme_echoes(self, corpus):
        study = open_dataset(corpus / "pv6-dicomifier/study")
        series = load_series(study.scan("9").recos[0])
        assert (series.rows, series.columns) == (160, 192)
        tes = sorted({im.echo_time for im in series.images})
        assert tes == pytest.approx([7.7 * k for k in range(1, 8)])
        assert series.pixel_spacing == pytest.approx((35 / 160, 40 / 192))

    def test_vtr_repetition_times(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-dicomifier/study").scan("11").recos[0])
        assert sorted({im.repetition_time for im in series.images}) == [500, 1500, 3000]

    def test_inversion_times(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-dicomifier/study").scan("13").recos[0])
        assert sorted({im.inversion_time for im in series.images}) == [14.8, 300, 1000]

    def test_diffusion(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-dicomifier/study").scan("21").recos[0])
        bvals = sorted({round(im.diffusion.b_value, 3) for im in series.images})
        assert bvals == [25.338, 525.069]
        weighted = [im for im in series.images if im.diffusion.b_value > 100]
        direction = series.diffusion_direction_patient(weighted[0])
        assert np.allclose(np.abs(direction), [0, 0, 1])

    def test_cest_offsets_cycle(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-acidocest/study").scan("4").recos[0])
        hz = [im.saturation_offset_hz for im in series.images]
        assert len(hz) == 176 and hz[:3] == [-30032, -30032, -30032] and hz[44] == -30032
        assert hz[43] == 3003
        assert series.images[0].is_m0 and not series.images[15].is_m0
        assert series.images[3].saturation_offset_ppm == pytest.approx(-3003 / 300.319057478109)

    def test_repetition_time_stamps(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-acidocest/study").scan("4").recos[0])
        period = 34489.84 / 1000 / 176  # VisuAcqScanTime over the 176 repetitions
        offsets = [im.acquisition_offset for im in series.images]
        assert offsets[0] == 0 and offsets[1] == pytest.approx(period)
        assert offsets[-1] == pytest.approx(175 * period)
        msme = load_series(open_dataset(corpus / "pv6-dicomifier/study").scan("9").recos[0])
        assert {im.acquisition_offset for im in msme.images} == {None}

    def test_localizer_packages(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-dicomifier/study").scan("1").recos[0])
        assert series.package_count == 3

    def test_3d_volume_slices(self, corpus):
        series = load_series(open_dataset(corpus / "pv6-dicomifier/study").scan("4").recos[0])
        assert len(series.images) == 20
        step = series.images[1].position - series.images[0].position
        assert np.linalg.norm(step) == pytest.approx(series.slice_thickness)

    def test_spectroscopy_is_unsupported(self, corpus):
        study = open_dataset(corpus / "pv360-csi/study")
        with pytest.raises(UnsupportedDataError, match="spectroscopic"):
            load_series(study.scan("CSI").recos[0])
