"""The IVIS Living Image reader: sections, typed parameters, images, sequences, errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from tests.optical.conftest import default_click
from xnatpic.errors import XnatpicError
from xnatpic.optical import OpticalError, find_ivis_studies, is_ivis_folder, open_ivis
from xnatpic.optical.clickinfo import parse_click_text, read_click_text
from xnatpic.optical.parameters import calibration_of, image_infos
from xnatpic.optical.synthetic import write_click, write_sequence

#: Lines in the layout the PIXI and XNAT-PIC parsers read (key, colon, tab, value).
SAMPLE = """*** ClickNumber:\tJD20230412103000_002
ClickInfoType:\tAnalyzedClickInfo
Living Image Version:\t4.7.3.20616
*** User Label Name Set:\tLiving Image Universal
User:\tjd
Animal Number:\tmouse 7
Sex:\tMale
Time Point:\tday 14
# a comment line
*** luminescent image:\tluminescent.TIF
Acquisition Date:\tWednesday, April 12, 2023
Acquisition Time:\t10:30:00
Binning Factor:\t8
Luminescent Exposure (Seconds):\t120
f Number:\t1.2
Field of View:\t22.6
Emission filter:\t520
Excitation filter:\t465
Measured Temperature:\t-90.1
*** Graph Controls:
Intensity Calibration:\tRadiance (Photons)
Calibration Value Per Count:\t2.5e+04
*** User Label Name Set:\tsecond set
User:\tnot me
"""


class TestClickText:
    def test_sections_keys_and_first_of_repeated(self, tmp_path: Path):
        text = parse_click_text(SAMPLE, tmp_path / "AnalyzedClickInfo.txt")
        assert [s.name for s in text.sections][:3] == ["ClickNumber", "User Label Name Set",
                                                       "luminescent image"]
        assert text.section("clicknumber").value == "JD20230412103000_002"
        assert text.section("User Label Name Set").get("user") == "jd"  # first set
        assert len(text.sections_named("User Label Name Set")) == 2
        assert text.find("Acquisition Time") == "10:30:00"  # colons inside values kept

    def test_typed_image_parameters(self, tmp_path: Path):
        info = image_infos(parse_click_text(SAMPLE, tmp_path / "a.txt"))[0]
        assert (info.kind, info.binning, info.exposure_s, info.f_number, info.fov_cm) == \
            ("luminescent", 8, 120.0, 1.2, 22.6)
        assert (info.emission_nm, info.excitation_nm) == (520.0, 465.0)
        assert info.ccd_temperature_c == -90.1
        assert info.acquired == dt.datetime(2023, 4, 12, 10, 30, 0)

    def test_trailing_comment_and_section_aliases(self, tmp_path: Path):
        text = parse_click_text("*** darkcharge image:\tdark.TIF\nBinning Factor:\t4 # CCD\n"
                                "Background Exposure (Seconds):\t30\t# dark\n",
                                tmp_path / "a.txt")
        (info,) = image_infos(text)
        assert (info.kind, info.binning, info.exposure_s) == ("background", 4, 30.0)
        assert text.sections[0].get("Binning Factor") == "4"

    def test_calibration(self, tmp_path: Path):
        cal = calibration_of(parse_click_text(SAMPLE, tmp_path / "a.txt"))
        assert (cal.per_count, cal.unit, cal.quantity) == (2.5e4, "p/s/cm²/sr", "radiance")

    def test_calibrated_unit_without_factor_is_refused(self, tmp_path: Path):
        text = parse_click_text(SAMPLE.replace("2.5e+04", "n/a"), tmp_path / "a.txt")
        with pytest.raises(OpticalError, match=r"a\.txt:\d+: .*Calibration Value Per Count"):
            calibration_of(text)

    def test_not_living_image_text(self, tmp_path: Path):
        path = tmp_path / "ClickInfo.txt"
        path.write_text("hello: world\n")
        with pytest.raises(OpticalError, match=r"ClickInfo.txt: not a Living Image file"):
            read_click_text(path)

    def test_unparseable_date_names_file_and_section(self, tmp_path: Path):
        text = parse_click_text(SAMPLE.replace("Wednesday, April 12, 2023", "12/04/2023"),
                                tmp_path / "a.txt")
        with pytest.raises(OpticalError, match=r"luminescent image.*12/04/2023"):
            image_infos(text)


class TestAcquisition:
    def test_images_and_geometry(self, click_folder: Path):
        acq = open_ivis(click_folder).first
        assert set(acq.images) == {"photograph", "luminescent", "background", "readbias"}
        click = default_click()
        assert acq.signal.shape == (click.signal_pixels, click.signal_pixels)
        assert acq.photograph.shape == (click.ccd_pixels, click.ccd_pixels)
        # same field of view, so the photograph's pixels are `binning` times finer
        photo, signal = acq.photograph.pixel_spacing_mm, acq.signal.pixel_spacing_mm
        assert signal[0] == pytest.approx(click.binning * photo[0])
        assert signal[1] == pytest.approx(click.fov_cm * 10 / click.signal_pixels)

    def test_labels_camera_click(self, click_folder: Path):
        acq = open_ivis(click_folder).first
        assert acq.click_number == default_click().click_number
        assert acq.labels.animal == "M1" and acq.labels.get("Group") == "control"
        assert acq.camera.system_id == "IS0000SYN"
        assert acq.calibration.per_count == default_click().per_count

    def test_dark_is_read_bias_plus_dark_charge_of_the_signal_exposure(self, click_folder):
        click = default_click()
        dark = open_ivis(click_folder).first.dark()
        truth = click.read_bias + click.dark_rate * click.exposure_s  # 600 + 0.1·60
        assert np.allclose(dark, truth)

    def test_pixels_are_lazy(self, click_folder: Path):
        acq = open_ivis(click_folder).first
        (click_folder / "luminescent.TIF").write_bytes(b"II*\x00broken")  # after opening
        with pytest.raises(OpticalError, match=r"luminescent.TIF"):
            acq.signal.read()

    def test_missing_listed_tiff(self, click_folder: Path):
        (click_folder / "background.TIF").unlink()
        with pytest.raises(OpticalError, match=r"background.TIF: listed in .* but missing"):
            open_ivis(click_folder)

    def test_unreadable_tiff(self, click_folder: Path):
        (click_folder / "photograph.TIF").write_bytes(b"not a tiff")
        with pytest.raises(OpticalError, match=r"photograph.TIF: not a readable TIFF"):
            open_ivis(click_folder)

    def test_errors_are_xnatpic_errors(self, tmp_path: Path):
        with pytest.raises(XnatpicError, match="not an IVIS click folder"):
            open_ivis(tmp_path)

    def test_dark_shape_mismatch(self, click_folder: Path):
        from PIL import Image
        Image.fromarray(np.zeros((10, 10), np.uint16)).save(click_folder / "readbiasonly.TIF")
        with pytest.raises(OpticalError, match=r"readbiasonly.TIF: 10×10"):
            open_ivis(click_folder).first.dark()

    def test_click_info_only(self, tmp_path: Path):
        folder = write_click(tmp_path / "c", default_click(analyzed=False))
        acq = open_ivis(folder).first
        assert acq.analyzed is None and not acq.calibration.calibrated  # counts


class TestSequences:
    def test_sequence_in_time_order_and_discovery(self, tmp_path: Path):
        late = default_click(click_number="B_late", acquired=dt.datetime(2026, 1, 1, 13))
        early = default_click(click_number="Z_early", acquired=dt.datetime(2026, 1, 1, 9))
        seq = write_sequence(tmp_path / "root" / "SEQ1", [late, early])
        single = write_click(tmp_path / "root" / "other" / "C1",
                             dataclasses.replace(early, click_number="C1"))
        study = open_ivis(seq)
        assert [a.click_number for a in study.acquisitions] == ["Z_early", "B_late"]
        assert is_ivis_folder(seq) and is_ivis_folder(single)
        assert sorted(find_ivis_studies(tmp_path / "root")) == sorted([single, seq])
