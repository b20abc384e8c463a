"""Names of conversion outputs carry the scan and a file-system-safe protocol
(:mod:`xnatpic.output_names`), for classic and enhanced DICOM and NIfTI, de-identified
too; the protocol in a name is the ProtocolName the written file itself carries."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.dicom.synthetic import load, string, write_study
from xnatpic.cli.main import main as xnatpic_main
from xnatpic.conversion import SALT_VARIABLE
from xnatpic.dicom import DeidentifyProfile, write_dicom_series
from xnatpic.output_names import (
    PROTOCOL_MAX,
    folder_key,
    package_stem,
    safe_name_part,
)

SALT = "names-test-9fQ2xLm7Zr4Tk"
_SAFE = re.compile(r"[A-Za-z0-9_.\-]*")


class TestSafeNamePart:
    @pytest.mark.parametrize(("text", "expected"), [
        ("T2_TurboRARE", "T2_TurboRARE"),
        ("T2 TurboRARE (hi-res)", "T2_TurboRARE_hi-res"),
        ("../../etc/passwd", "etc_passwd"),
        ("C:\\Users\\op\\proto", "C_Users_op_proto"),
        ("a\x00b\nc\x1b[31m\u202eevil", "a_b_c_31m_evil"),
        ("Température_é", "Temperature_e"),
        ("Ångström µs", "Angstrom_s"),  # NFKD: µ (micro) → μ (Greek), not ASCII → "_"
        ("拡散強調", ""),
        ("DTI_拡散強調_b1000", "DTI_b1000"),
        ("...", ""),
        ("-rf", "rf"),
    ])
    def test_examples(self, text, expected):
        assert safe_name_part(text) == expected

    def test_any_text_gives_a_bounded_safe_name(self):
        rng = random.Random(0)
        alphabet = ("abcXYZ019 _.-/\\:*?\"<>|\x00\x07\n\t\u202e\u200béüßÅ拡散\U0001F600" +
                    "".join(chr(c) for c in range(0x80, 0x100)))
        for _ in range(2000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
            name = safe_name_part(text)
            assert _SAFE.fullmatch(name), (text, name)
            assert len(name) <= PROTOCOL_MAX
            assert not name.startswith(("_", ".", "-")) and not name.endswith(("_", ".", "-"))
            assert safe_name_part(name) == name  # stable: a safe name stays itself

    def test_long_protocol_is_cut(self):
        assert safe_name_part("x" * 300) == "x" * PROTOCOL_MAX
        assert safe_name_part("a" * (PROTOCOL_MAX - 1) + "_b") == "a" * (PROTOCOL_MAX - 1)


def test_package_stem_and_folder_key():
    assert package_stem("9-1_Loc", 0, 1) == "9-1_Loc"
    assert [package_stem("9-1_Loc", p, 3) for p in range(3)] == [
        "9-1_Loc_pack1", "9-1_Loc_pack2", "9-1_Loc_pack3"]
    assert folder_key("9_T2_TurboRARE") == "9"
    assert folder_key("9-2_T2_TurboRARE") == "9-2"
    assert folder_key("9") == "9"


def _study(root: Path, protocol: str) -> Path:
    stored = np.arange(3 * 4 * 4, dtype="i2").reshape(3, 4, 4)
    write_study(root, stored, visu={"VisuAcquisitionProtocol": string(protocol)})
    return root


def _protocol_part(name: str, stem: str) -> str:
    return name.removeprefix(stem).split(".", 1)[0]


@pytest.mark.parametrize("fmt", ["dicom", "enhanced", "nifti"])
def test_convert_names_carry_scan_and_protocol(tmp_path, fmt):
    study = _study(tmp_path / "study", "T2 MSME/é (fast)")
    out = tmp_path / "out"
    assert xnatpic_main(["convert", str(study), "-o", str(out), "--format", fmt]) == 0
    (folder,) = [p for p in out.glob("*/*/*") if p.is_dir()]
    assert folder.name == "5_T2_MSME_e_fast"
    assert folder_key(folder.name) == "5"
    names = sorted(p.name for p in folder.iterdir())
    stem = "5-1_T2_MSME_e_fast"
    if fmt == "dicom":
        assert names == [f"{stem}.paravision.json"] + [f"{stem}_{n:05d}.dcm"
                                                        for n in (1, 2, 3)]
    elif fmt == "enhanced":
        assert names == [f"{stem}.dcm", f"{stem}.paravision.json"]
    else:
        assert names == [f"{stem}.json", f"{stem}.nii.gz"]
    if fmt != "nifti":
        ds = pydicom.dcmread(next(folder.glob("*.dcm")))
        # the name's protocol is the file's own ProtocolName, made safe
        assert ds.ProtocolName == "T2 MSME/é (fast)"
        assert f"5-1_{safe_name_part(ds.ProtocolName)}" == stem


@pytest.mark.parametrize("fmt", ["dicom", "nifti"])
def test_deidentified_names_carry_the_cleaned_protocol(tmp_path, monkeypatch, fmt):
    # The protocol names the animal (M-042, its SUBJECT_id) and a date: the name carries
    # what the de-identified ProtocolName carries, never the original.
    study = _study(tmp_path / "study", "T2 M-042 20210504 Mickey")
    monkeypatch.setenv(SALT_VARIABLE, SALT)
    out = tmp_path / "out"
    assert xnatpic_main(["convert", str(study), "-o", str(out), "--format", fmt,
                         "--deidentify"]) == 0
    paths = [p.relative_to(out).as_posix() for p in out.rglob("*")]
    for word in ("M-042", "042", "20210504", "Mickey"):
        assert not any(word in p for p in paths), (word, paths)
    (folder,) = [p for p in out.glob("*/*/*") if p.is_dir()]
    assert folder_key(folder.name) == "5" and folder.name.startswith("5_T2")
    if fmt == "dicom":
        ds = pydicom.dcmread(next(folder.glob("*.dcm")))
        assert folder.name == f"5_{safe_name_part(ds.ProtocolName)}"


def test_descriptions_removed_leave_the_protocol_out(tmp_path):
    series = load(_study(tmp_path / "study", "T2 MSME") / "5" / "pdata" / "1")
    (tmp_path / "out").mkdir()
    profile = DeidentifyProfile(salt=SALT, keep_descriptions=False)
    written = write_dicom_series(series, tmp_path / "out", deidentify=profile)
    assert [f.name for f in written[0].files] == [f"5-1_{n:05d}.dcm" for n in (1, 2, 3)]
    assert written[0].sidecar.name == "5-1.paravision.json"
    assert "ProtocolName" not in pydicom.dcmread(written[0].files[0])


def test_help_documents_the_names(capsys):
    with pytest.raises(SystemExit):
        xnatpic_main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "<scan>[-<reco>]_<protocol>/" in text and "[_pack<n>]" in text


@pytest.mark.parametrize("fmt", ["dicom", "enhanced"])
def test_real_localizer_packages_named_pack1_to_3(corpus, tmp_path, fmt):
    """A real three-plane localizer (PV5): one series per plane, ``_pack1`` to ``_pack3``,
    each named with the protocol the acqp records."""
    scan = corpus / "pv5-misc" / "brukerMRI-tripilot" / "100"
    out = tmp_path / "out"
    assert xnatpic_main(["convert", str(scan), "-o", str(out), "--format", fmt]) == 0
    (folder,) = [p for p in out.glob("*/*/*") if p.is_dir()]
    ds = pydicom.dcmread(next(folder.glob("*.dcm")))
    protocol = safe_name_part(str(ds.ProtocolName))
    assert protocol and folder.name == f"100_{protocol}"
    stems = {p.name.removesuffix(".paravision.json") for p in folder.glob("*.paravision.json")}
    assert stems == {f"100-1_{protocol}_pack{n}" for n in (1, 2, 3)}
    for stem in stems:
        dicoms = sorted(folder.glob(f"{stem}*.dcm"))
        assert dicoms, stem
        series = {pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID for p in dicoms}
        assert len(series) == 1  # one package, one series
