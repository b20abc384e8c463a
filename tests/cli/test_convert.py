"""``xnatpic convert`` and ``xnatpic info`` end to end: exit codes, report, bad scans."""

from __future__ import annotations

import json
import zipfile

import pytest

from xnatpic.cli.main import main

from ..paravision.builders import write_study


@pytest.fixture
def study(tmp_path):
    return write_study(tmp_path / "study", {"1": {}, "2": {"seed": 1}, "3": {"seed": 2}})


def _report(path):
    return json.loads(path.read_text())


class TestConvert:
    def test_all_scans_convert(self, study, tmp_path):
        out = tmp_path / "out"
        assert main(["convert", str(study), "-o", str(out)]) == 0
        report = _report(out / "conversion-report.json")
        assert report["summary"] == {"converted": 3, "skipped": 0, "failed": 0}
        for scan in ("1", "2", "3"):
            assert list((out / "mouse-1" / "study-1" / scan).glob("*.dcm"))

    def test_scan_selection(self, study, tmp_path):
        out = tmp_path / "out"
        assert main(["convert", str(study), "-o", str(out), "--scans", "2"]) == 0
        assert [r["scan"] for r in _report(out / "conversion-report.json")["recos"]] == ["2"]

    def test_unknown_scan_is_a_usage_error(self, study, tmp_path, capsys):
        assert main(["convert", str(study), "-o", str(tmp_path / "o"), "--scans", "7"]) == 2
        assert "no scan 7" in capsys.readouterr().err

    def test_missing_source_is_a_usage_error(self, tmp_path):
        assert main(["convert", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2

    def test_one_bad_scan_does_not_stop_the_others(self, study, tmp_path, capsys):
        data = study / "2/pdata/1/2dseq"
        data.write_bytes(data.read_bytes()[:100])
        out = tmp_path / "out"
        report_path = tmp_path / "r.json"
        assert main(["convert", str(study), "-o", str(out), "--jobs", "2",
                     "--report", str(report_path)]) == 1
        report = _report(report_path)
        status = {r["scan"]: r for r in report["recos"]}
        assert status["1"]["status"] == status["3"]["status"] == "converted"
        assert status["2"]["status"] == "failed"
        assert "2dseq is truncated" in status["2"]["reason"]
        assert str(data) in status["2"]["reason"]
        session = out / "mouse-1" / "study-1"
        assert not (session / "2").exists(), "nothing partial is left looking complete"
        assert not [p for p in session.iterdir() if ".partial" in p.name]
        assert "scan 2 reco 1 failed" in capsys.readouterr().err

    def test_unparseable_jcamp_fails_that_scan_only(self, study, tmp_path):
        visu = study / "3/pdata/1/visu_pars"
        visu.write_text(visu.read_text().replace("##$VisuCoreDataSlope=( 6 )",
                                                 "##$VisuCoreDataSlope=( 6 )\n<unterminated"))
        out = tmp_path / "out"
        assert main(["convert", str(study), "-o", str(out)]) == 1
        status = {r["scan"]: r for r in _report(out / "conversion-report.json")["recos"]}
        assert status["3"]["status"] == "failed"
        assert f"{visu}" in status["3"]["reason"] and "VisuCoreDataSlope" in status["3"]["reason"]
        assert status["1"]["status"] == "converted"

    def test_missing_visu_pars_fails_that_scan_only(self, study, tmp_path):
        (study / "1/pdata/1/visu_pars").unlink()
        out = tmp_path / "out"
        assert main(["convert", str(study), "-o", str(out)]) == 1
        status = {r["scan"]: r for r in _report(out / "conversion-report.json")["recos"]}
        assert status["1"]["status"] == "failed"
        assert "visu_pars is missing" in status["1"]["reason"]
        assert status["2"]["status"] == "converted"

    def test_not_paravision(self, tmp_path, capsys):
        (tmp_path / "x").mkdir()
        assert main(["convert", str(tmp_path / "x"), "-o", str(tmp_path / "o")]) == 1
        assert "not a ParaVision study" in capsys.readouterr().err

    def test_zip_with_parent_members(self, tmp_path, capsys):
        archive = tmp_path / "evil.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("../../evil", "x")
        assert main(["convert", str(archive), "-o", str(tmp_path / "o")]) == 1
        assert "would be extracted outside" in capsys.readouterr().err

    def test_spectroscopy_is_skipped_with_reason(self, corpus, tmp_path):
        out = tmp_path / "out"
        assert main(["convert", str(corpus / "pv360-csi/study"), "-o", str(out)]) == 0
        status = {r["scan"]: r for r in _report(out / "conversion-report.json")["recos"]}
        assert status["CSI"]["status"] == "skipped"
        assert "spectroscopic" in status["CSI"]["reason"]
        assert status["T2"]["status"] == "converted" and status["T2"]["files"] == 16

    def test_nifti_format(self, study, tmp_path):
        out = tmp_path / "out"
        assert main(["convert", str(study), "-o", str(out), "--format", "nifti"]) == 0
        assert list((out / "mouse-1" / "study-1" / "1").glob("*.nii*"))


class TestInfo:
    def test_json(self, study, capsys):
        assert main(["info", str(study), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert [s["scan"] for s in info["scans"]] == ["1", "2", "3"]
        reco = info["scans"][0]["recos"][0]
        assert reco["matrix"] == [6, 4]
        assert reco["echo_times_ms"] == [10.0, 20.0, 30.0]
        assert [g["axis"] for g in reco["frame_groups"]] == ["echo", "slice"]

    def test_tree(self, study, capsys):
        assert main(["info", str(study)]) == 0
        out = capsys.readouterr().out
        assert "scan 2" in out and "[echo 3 × slice 2]" in out


class TestDeidentify:
    def _uids(self, out):
        import pydicom

        files = sorted(out.rglob("*.dcm"))
        ds = pydicom.dcmread(files[0])
        return ds.StudyInstanceUID, ds.PatientID

    def test_salt_comes_from_the_environment(self, study, tmp_path, monkeypatch, capsys):
        monkeypatch.delenv("XNATPIC_DEIDENTIFY_SALT", raising=False)
        assert main(["convert", str(study), "-o", str(tmp_path / "x"), "--scans", "1",
                     "--deidentify"]) != 0  # refused: no salt (issue 9)
        assert "XNATPIC_DEIDENTIFY_SALT" in capsys.readouterr().err
        assert not list((tmp_path / "x").rglob("*.dcm"))
        monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", "another-secret-salt-0")
        assert main(["convert", str(study), "-o", str(tmp_path / "a"), "--scans", "1",
                     "--deidentify"]) == 0
        monkeypatch.setenv("XNATPIC_DEIDENTIFY_SALT", "s3cr3t-Qx7-v9Lm-2Kd")
        assert main(["convert", str(study), "-o", str(tmp_path / "b"), "--scans", "1",
                     "--deidentify"]) == 0
        assert main(["convert", str(study), "-o", str(tmp_path / "c"), "--scans", "1",
                     "--deidentify"]) == 0
        other, salted, again = (self._uids(tmp_path / d) for d in "abc")
        assert salted == again, "the same salt gives the same pseudonyms and UIDs"
        assert salted[0] != other[0] and salted[1] != other[1]
        assert salted[1].startswith("ANON-") and "mouse" not in salted[1]

