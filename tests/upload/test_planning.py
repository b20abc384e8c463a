"""Discovery, labels, metadata, retries and the dry-run plan."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.upload.conftest import write_dicom_studies
from xnatpic.cli.main import main
from xnatpic.upload import build_plans, discover_sources, load_metadata
from xnatpic.upload.errors import MetadataError, SourceError, TransientError, UploadError
from xnatpic.upload.labels import render_label, sanitize_xnat_label
from xnatpic.upload.retry import RetryPolicy, with_retry


class TestLabels:
    @pytest.mark.parametrize(("text", "label"), [
        ("plateforme^18062016", "plateforme_18062016"), ("a.b c", "a_b_c"),
        ("__x__", "x"), ("M-1_d7", "M-1_d7"), ("é", "x")])
    def test_sanitize(self, text, label):
        assert sanitize_xnat_label(text, "x") == label

    def test_template(self):
        assert render_label("{animal_id}_{date}", {"animal_id": "m 1", "date": "20240101"},
                            fallback="s") == "m_1_20240101"

    def test_missing_field_is_named(self):
        with pytest.raises(SourceError, match=r"needs \['cage'\].*fields with a value: "
                                              r"animal_id"):
            render_label("{cage}", {"animal_id": "m1"}, fallback="s", source="study")


class TestMetadata:
    def test_csv_scopes(self, tmp_path):
        path = tmp_path / "m.csv"
        path.write_text("animal_id,species,session.group,subject.timepoint,dose\n"
                        "m1,mouse,g1,t0,5\n")
        meta = load_metadata(path).lookup("folder", "session", "m1")
        assert meta.subject == {"animal_id": "m1", "species": "mouse", "timepoint": "t0"}
        assert meta.session == {"group": "g1", "dose": "5"}

    def test_json_list_and_unused_keys(self, tmp_path):
        path = tmp_path / "m.json"
        path.write_text(json.dumps([{"key": "a", "sex": "F"}, {"key": "typo", "sex": "M"}]))
        meta = load_metadata(path)
        assert meta.lookup("a").subject == {"sex": "female"}
        assert meta.unused() == ["typo"]

    @pytest.mark.parametrize(("text", "match"), [
        ("{bad json", "not valid JSON"), ('[1, 2]', "list of objects"),
        ('[{"sex": "F"}]', "has no key")])
    def test_bad_json(self, tmp_path, text, match):
        path = tmp_path / "m.json"
        path.write_text(text)
        with pytest.raises(MetadataError, match=match):
            load_metadata(path)

    def test_missing_file(self, tmp_path):
        with pytest.raises(MetadataError, match="no such metadata file"):
            load_metadata(tmp_path / "none.csv")


class TestDiscovery:
    def test_dicom_grouped_by_study_across_folders(self, tmp_path):
        expected = write_dicom_studies(tmp_path / "in")
        # move one series of study1 elsewhere: still one session
        moved = tmp_path / "in" / "elsewhere"
        sorted((tmp_path / "in" / "mouse1" / "study1").iterdir())[-1].rename(moved)
        sources = discover_sources([tmp_path / "in"])
        assert sorted(len(s.files) for s in sources) == [8, 8, 8]
        plans = build_plans(sources, "P")
        assert {p.session for p in plans} == set(expected)

    def test_zip_and_folder_of_paravision(self, phantom_study, tmp_path):
        zipped = tmp_path / "day" / "m1.zip"
        zipped.parent.mkdir()
        with zipfile.ZipFile(zipped, "w") as zf:
            for p in phantom_study.rglob("*"):
                if p.is_file():
                    zf.write(p, p.relative_to(phantom_study.parent).as_posix())
        (sources,) = [discover_sources([tmp_path / "day"])]
        assert [(s.kind, s.name) for s in sources] == [("paravision", "m1")]
        assert sources[0].fields["animal_id"] and sources[0].fields["date"].isdigit()

    def test_same_label_twice_is_refused(self, tmp_path):
        write_dicom_studies(tmp_path / "a", (("m1", "day"),))
        write_dicom_studies(tmp_path / "b", (("m2", "day"),))
        sources = discover_sources([tmp_path / "a", tmp_path / "b"])
        with pytest.raises(SourceError, match="both become session 'day_20240101'"):
            build_plans(sources, "P")
        plans = build_plans(sources, "P", session_template="{animal_id}_{study_name}")
        assert sorted(p.session for p in plans) == ["m1_day", "m2_day"]

    def test_unrelated_zip_is_skipped_but_a_named_one_refused(self, tmp_path, caplog):
        write_dicom_studies(tmp_path / "in", (("m1", "s"),))
        junk = tmp_path / "in" / "notes.zip"
        with zipfile.ZipFile(junk, "w") as zf:
            zf.writestr("notes.txt", "hello")
        (source,) = discover_sources([tmp_path / "in"])
        assert source.kind == "dicom"
        assert "notes.zip: a zip holding no ParaVision study" in caplog.text
        with pytest.raises(SourceError, match=r"notes\.zip: cannot read the ParaVision study"):
            discover_sources([junk])

    def test_nothing_to_upload(self, tmp_path):
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(SourceError, match="nothing to upload"):
            discover_sources([tmp_path])

    def test_bad_project_id(self, tmp_path):
        write_dicom_studies(tmp_path, (("m1", "s"),))
        with pytest.raises(SourceError, match="project ids hold only"):
            build_plans(discover_sources([tmp_path]), "my project")


class TestRetry:
    def test_transient_then_success(self):
        calls, waits = [], []

        def step() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise TransientError("HTTP 503")
            return "ok"

        assert with_retry(step, what="x", policy=RetryPolicy(5, 1.0, 30.0),
                          sleep=waits.append) == "ok"
        assert len(waits) == 2 and 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0

    def test_gives_up_with_the_last_error(self):
        def step() -> None:
            raise TransientError("dropped")

        with pytest.raises(UploadError, match="x: failed 3 times, last: dropped"):
            with_retry(step, what="x", policy=RetryPolicy(3), sleep=lambda _: None)

    def test_permanent_errors_are_not_retried(self):
        calls = []

        def step() -> None:
            calls.append(1)
            raise UploadError("HTTP 403")

        with pytest.raises(UploadError, match="403"):
            with_retry(step, what="x", policy=RetryPolicy(5), sleep=lambda _: None)
        assert len(calls) == 1


class TestDryRun:
    def test_json_plan(self, dicom_studies, tmp_path, capsys):
        src, expected = dicom_studies
        meta = tmp_path / "m.csv"
        meta.write_text("key,strain,timepoint\nmouse2,C57BL/6,d3\n")
        archive = tmp_path / "archive"
        rc = main(["upload", str(src), "--project", "PRECLIN", "--dry-run", "--json",
                   "--metadata", str(meta), "--archive", str(archive)])
        assert rc == 0
        plan = json.loads(capsys.readouterr().out)
        assert plan["destination"] == f"archive {archive}"
        rows = {s["session"]: s for s in plan["sessions"]}
        assert set(rows) == set(expected)
        assert rows["study2_20240101"]["subject_fields"] == {"strain": "C57BL/6"}
        assert rows["study2_20240101"]["session_fields"] == {"timepoint": "d3"}
        assert not archive.exists()

    def test_table_plan(self, dicom_studies, capsys, monkeypatch):
        src, _ = dicom_studies
        monkeypatch.setenv("COLUMNS", "250")
        assert main(["upload", str(src), "--project", "PRECLIN", "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert "study3_20240101" in out and "3 session(s) in project PRECLIN" in out
        assert out.count("upload (new)") == 3

    def test_bad_jobs_is_a_usage_error(self, dicom_studies):
        src, _ = dicom_studies
        assert main(["upload", str(src), "--project", "P", "--jobs", "0"]) == 2

    def test_missing_source(self, tmp_path, capsys):
        assert main(["upload", str(tmp_path / "none"), "--project", "P"]) == 1
        assert "no such file or folder" in capsys.readouterr().err


def test_source_fingerprint_changes_with_data(tmp_path: Path) -> None:
    write_dicom_studies(tmp_path, (("m1", "s"),))
    before = discover_sources([tmp_path])[0].fingerprint()
    first = sorted(tmp_path.rglob("*.dcm"))[0]
    first.write_bytes(first.read_bytes() + b"\0\0")
    assert discover_sources([tmp_path])[0].fingerprint() != before
