"""The XNAT double answers as XNAT's source says (plain HTTP, not our client).

Each test names the XNAT source or XNAT REST test it checks the double against; the rows
of docs/xnat-conformance.md (upload section) point here.
"""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator

import pydicom
import pytest
import requests

from tests.double.server import BASIC_AUTH, XnatDouble
from tests.upload.conftest import _uid, dicom_instance

DEMO = "xnat:subjectData/demographics[@xsi:type=xnat:demographicData]/"
STUDY = _uid("double-study")


@pytest.fixture
def http(fake: XnatDouble) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = BASIC_AUTH
    yield session
    session.close()


def _zip(*series: tuple[str, int | str, range], modality: str = "MR",
         study: str = STUDY) -> bytes:
    """A zip of instances: (series key, SeriesNumber, instance indexes) per series."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for key, number, indexes in series:
            for i in indexes:
                ds = dicom_instance(study, _uid("double-series", study, key), number, i,
                                    modality=modality)
                out = io.BytesIO()
                ds.save_as(out, enforce_file_format=True)
                zf.writestr(f"{key}/IM{i:04d}.dcm", out.getvalue())
    return buffer.getvalue()


def _import(http: requests.Session, fake: XnatDouble, body: bytes, *, label: str = "S1",
            subject: str = "mouse1", dest: str = "/archive", **extra: str) -> requests.Response:
    query = {"import-handler": "DICOM-zip", "PROJECT_ID": "PRECLIN", "SUBJECT_ID": subject,
             "EXPT_LABEL": label, "overwrite": "append", "dest": dest, "inbody": "true",
             **extra}
    return http.post(f"{fake.url}/data/services/import", params=query, data=body,
                     headers={"Content-Type": "application/zip"}, timeout=30)


def _prearchive(http: requests.Session, fake: XnatDouble) -> list[dict[str, str]]:
    resp = http.get(f"{fake.url}/data/prearchive/projects/PRECLIN", params={"format": "json"})
    assert resp.status_code == 200
    return resp.json()["ResultSet"]["Result"]


class TestStatuses:
    def test_errors_are_html_status_pages(self, fake, http):
        resp = http.get(f"{fake.url}/data/projects/NOPE", params={"format": "json"})
        assert resp.status_code == 404
        assert resp.text.startswith("<html>")

    def test_creation_is_201_an_existing_resource_409(self, fake, http):
        base = f"{fake.url}/data/projects/PRECLIN/subjects/mouse1"
        assert http.put(base).status_code == 201
        assert http.put(base).status_code == 200
        session = f"{base}/experiments/S1"
        assert http.put(session, params={"xsiType": "xnat:mrSessionData"}).status_code == 201
        assert http.put(f"{session}/resources/RAW").status_code == 201
        again = http.put(f"{session}/resources/RAW")
        assert again.status_code == 409 and again.text.startswith("<html>")
        assert "Specified resource already exists." in again.text


class TestImport:
    def test_scan_ids_from_series_number_as_written_and_n_mr1(self, fake, http):
        body = _zip(("a", "03", range(1, 3)), ("b", "03", range(1, 3)), ("c", 7, range(1, 2)))
        assert _import(http, fake, body).status_code == 200
        session = fake.session("PRECLIN", "S1")
        assert sorted(session.scans) == ["03", "03-MR1", "7"]
        assert session.series["03"] != session.series["03-MR1"]

    def test_duplicate_file_is_refused_wrapped_in_400_and_kept(self, fake, http):
        body = _zip(("a", 3, range(1, 4)))
        assert _import(http, fake, body).status_code == 200
        again = _import(http, fake, body)
        assert again.status_code == 400
        assert "unable to archive for the Prearchive session" in again.text
        (row,) = _prearchive(http, fake)
        assert (row["status"], row["name"], row["tag"]) == ("CONFLICT", "S1", STUDY)
        # the specific answer comes through the archive service
        archived = http.post(f"{fake.url}/data/services/archive",
                             params={"src": row["url"], "overwrite": "append"})
        assert archived.status_code == 409 and "Duplicate DICOM file uploaded" in archived.text

    def test_the_refused_copy_is_reused_until_deleted(self, fake, http):
        assert _import(http, fake, _zip(("a", 3, range(1, 3)))).status_code == 200
        assert _import(http, fake, _zip(("a", 3, range(1, 3)))).status_code == 400
        # a new file of the same study lands in the refused copy: refused again
        assert _import(http, fake, _zip(("a", 3, range(3, 4)))).status_code == 400
        (row,) = _prearchive(http, fake)
        assert http.delete(f"{fake.url}/data{row['url']}").status_code == 200
        assert _import(http, fake, _zip(("a", 3, range(3, 4)))).status_code == 200
        assert len(fake.session("PRECLIN", "S1").scans["3"]) == 3

    def test_overwrite_files_lets_a_held_file_in(self, fake, http):
        body = _zip(("a", 3, range(1, 3)))
        assert _import(http, fake, body).status_code == 200
        assert _import(http, fake, body).status_code == 400
        (row,) = _prearchive(http, fake)
        http.delete(f"{fake.url}/data{row['url']}")
        assert _import(http, fake, body, overwrite_files="true").status_code == 200
        assert len(fake.session("PRECLIN", "S1").scans["3"]) == 2
        assert _prearchive(http, fake) == []

    def test_another_modality_is_refused(self, fake, http):
        http.put(f"{fake.url}/data/projects/PRECLIN/subjects/mouse1/experiments/S1",
                 params={"xsiType": "xnat:petSessionData"})
        assert _import(http, fake, _zip(("a", 3, range(1, 2)))).status_code == 400
        (row,) = _prearchive(http, fake)
        archived = http.post(f"{fake.url}/data/services/archive",
                             params={"src": row["url"], "overwrite": "append"})
        assert archived.status_code == 409 and "modality" in archived.text

    def test_ct_study_makes_a_ct_session(self, fake, http):
        assert _import(http, fake, _zip(("a", 2, range(1, 3)), modality="CT")).status_code \
            == 200
        assert fake.session("PRECLIN", "S1").xsi == "xnat:ctSessionData"

    def test_open_workflows_refuse_the_archive(self, fake, http):
        assert _import(http, fake, _zip(("a", 3, range(1, 2)))).status_code == 200
        fake.session("PRECLIN", "S1").workflows.append("mri2dicom")
        assert _import(http, fake, _zip(("a", 3, range(2, 3)))).status_code == 400
        (row,) = _prearchive(http, fake)
        archived = http.post(f"{fake.url}/data/services/archive",
                             params={"src": row["url"], "overwrite": "append"})
        assert archived.status_code == 409
        assert "Session processing may already be in progress: mri2dicom" in archived.text

    def test_another_subject_is_refused_by_the_archiver(self, fake, http):
        assert _import(http, fake, _zip(("a", 3, range(1, 2)))).status_code == 200
        other = _import(http, fake, _zip(("a", 3, range(2, 3))), subject="mouse2")
        assert other.status_code == 400
        (row,) = _prearchive(http, fake)
        archived = http.post(f"{fake.url}/data/services/archive",
                             params={"src": row["url"], "overwrite": "append"})
        assert archived.status_code == 409 and "Already Exists for another Subject" in \
            archived.text

    def test_archiving_twice_at_once_is_423(self, fake, http):
        fake.add_fault(r"POST /data/services/import", "slow-archive", delay=1.5)
        worker = threading.Thread(target=_import, args=(http, fake, _zip(("a", 3, range(1, 3)))))
        worker.start()
        deadline = time.monotonic() + 10
        while not any(r["status"] == "ARCHIVING" for r in _prearchive(http, fake)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (row,) = _prearchive(http, fake)
        second = requests.post(f"{fake.url}/data/services/archive", headers={
            "Authorization": BASIC_AUTH}, params={"src": row["url"], "overwrite": "append"})
        worker.join()
        assert second.status_code == 423 and "Duplicate archive attempt" in second.text
        assert len(fake.session("PRECLIN", "S1").scans["3"]) == 2

    def test_a_cut_off_import_leaves_its_complete_entries(self, fake, http):
        fake.add_fault(r"POST /data/services/import", "drop")
        with pytest.raises(requests.ConnectionError):
            _import(http, fake, _zip(("a", 3, range(1, 9))))
        (row,) = _prearchive(http, fake)
        assert row["status"] == "RECEIVING"
        (prearc,) = fake.prearc
        kept = prearc.scans["3"]
        assert 0 < len(kept) < 8
        for data in kept.values():
            pydicom.dcmread(io.BytesIO(data))  # whole files, not truncated ones

    def test_a_slow_import_completes_after_the_client_gave_up(self, fake, http):
        fake.add_fault(r"POST /data/services/import", "slow-archive", delay=1.0)
        with pytest.raises(requests.Timeout):
            http.post(f"{fake.url}/data/services/import", params={
                "import-handler": "DICOM-zip", "PROJECT_ID": "PRECLIN",
                "SUBJECT_ID": "mouse1", "EXPT_LABEL": "S1", "overwrite": "append",
                "dest": "/archive"}, data=_zip(("a", 3, range(1, 4))), timeout=0.3)
        deadline = time.monotonic() + 10
        while ("PRECLIN", "S1") not in fake.sessions or fake.prearc:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert len(fake.session("PRECLIN", "S1").scans["3"]) == 3

    def test_older_importer_answers_prearchive_then_303(self, fake, http):
        fake.prearchive, fake.project_autoarchive, fake.archive_delay = True, True, 0.1
        resp = _import(http, fake, _zip(("a", 3, range(1, 3))))
        uri = resp.text.strip()
        assert resp.status_code == 200 and uri.startswith("/data/prearchive/projects/PRECLIN/")
        deadline = time.monotonic() + 10
        while fake.prearc:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        late = http.post(f"{fake.url}/data/services/archive",
                         params={"src": uri[len("/data"):]}, allow_redirects=False)
        assert late.status_code == 303
        assert late.headers["Location"].endswith("/experiments/S1")


class TestSubjects:
    """Subject demographics exactly as xnat.xsd's ``<xs:complexType name="demographicData">``
    (xnat-web commit 542ad929): the values below are written from the schema and XML
    Schema 1.0 part 2 (xs:date 3.2.9, xs:integer 3.3.13, xs:float 3.2.4), not from the
    double. Enumerations restrict xs:string (exact, case included); the typed elements
    collapse blanks."""

    @pytest.mark.parametrize(("field", "value"), [
        # enumeration of element "gender": male, female, other, unknown, M, F
        ("gender", "male"), ("gender", "female"), ("gender", "other"),
        ("gender", "unknown"), ("gender", "M"), ("gender", "F"),
        # enumeration of element "handedness"
        ("handedness", "left"), ("handedness", "right"), ("handedness", "ambidextrous"),
        ("handedness", "unknown"),
        # element "dob": xs:date (timezone allowed, leap day of a leap year)
        ("dob", "2020-01-02"), ("dob", "2020-02-29"), ("dob", "2000-02-29"),
        ("dob", "2020-01-02Z"), ("dob", "2020-01-02+05:30"), ("dob", "-0044-03-15"),
        ("dob", " 2020-01-02 "),
        # elements "yob" and "age": xs:integer
        ("yob", "2021"), ("yob", "+2021"), ("yob", "0021"), ("age", "3"), ("age", "-3"),
        ("age", "007"),
        # elements "weight" and "height": xs:float extensions
        ("weight", "21.5"), ("weight", "21"), ("weight", "-1"), ("weight", ".5"),
        ("weight", "5."), ("weight", "2.15E1"), ("weight", "1e-3"), ("weight", "INF"),
        ("weight", "-INF"), ("weight", "NaN"), ("height", "9.1"), ("height", " 9 "),
    ])
    def test_values_of_the_schema_are_stored(self, fake, http, field, value):
        resp = http.put(f"{fake.url}/data/projects/PRECLIN/subjects/mouse1",
                        params={DEMO + field: value})
        assert resp.status_code == 201, resp.text
        assert fake.subjects[("PRECLIN", "mouse1")][DEMO.split("/", 1)[1] + field] == value

    @pytest.mark.parametrize(("field", "value"), [
        ("gender", "f"), ("gender", "m"), ("gender", "Male"), ("gender", "U"),
        ("gender", "O"), ("gender", "x"), ("gender", " male"),
        ("handedness", "Left"), ("handedness", "both"), ("handedness", "paw"),
        ("dob", "01/02/2020"), ("dob", "20200102"), ("dob", "2020-1-2"),
        ("dob", "2021-02-29"), ("dob", "1900-02-29"), ("dob", "2020-04-31"),
        ("dob", "2020-13-01"), ("dob", "0000-01-01"), ("dob", "2020-01-02T00:00:00"),
        ("dob", "02020-01-01"), ("dob", "2020-01-02+15:00"),
        ("yob", "2021.0"), ("yob", "twenty"), ("yob", "2 021"), ("yob", "1e3"),
        ("age", "3.5"), ("age", "3y"),
        ("weight", "heavy"), ("weight", "21,5"), ("weight", "25 g"), ("weight", "+INF"),
        ("weight", "Infinity"), ("weight", "inf"), ("weight", "nan"), ("weight", "1e"),
        ("weight", "."), ("height", "0x10"), ("height", "1_000"),
    ])
    def test_values_outside_the_schema_are_400(self, fake, http, field, value):
        resp = http.put(f"{fake.url}/data/projects/PRECLIN/subjects/mouse1",
                        params={DEMO + field: value})
        assert resp.status_code == 400 and f"for {field}" in resp.text

    def test_vocabulary_values_are_stored(self, fake, http):
        resp = http.put(f"{fake.url}/data/projects/PRECLIN/subjects/mouse1", params={
            DEMO + "gender": "female", DEMO + "dob": "2020-01-02", DEMO + "weight": "21.5"})
        assert resp.status_code == 201

    @pytest.mark.parametrize("pair", [("dob", "yob"), ("dob", "age"), ("yob", "age")])
    def test_one_of_dob_yob_age(self, fake, http, pair):
        """``<xs:choice minOccurs="0">`` of dob, yob, age: in one PUT or across two."""
        values = {"dob": "2020-01-02", "yob": "2020", "age": "1"}
        url = f"{fake.url}/data/projects/PRECLIN/subjects/mouse1"
        assert http.put(url, params={DEMO + f: values[f] for f in pair}).status_code == 400
        assert http.put(url, params={DEMO + pair[0]: values[pair[0]]}).status_code == 201
        assert http.put(url, params={DEMO + pair[1]: values[pair[1]]}).status_code == 400

    def test_a_put_under_another_subject_moves_the_session(self, fake, http):
        base = f"{fake.url}/data/projects/PRECLIN/subjects"
        http.put(f"{base}/mouse1/experiments/S1", params={"xsiType": "xnat:mrSessionData"})
        assert http.put(f"{base}/mouse2/experiments/S1").status_code == 200
        assert fake.session("PRECLIN", "S1").subject == "mouse2"


class TestProjects:
    def test_name_or_secondary_id_in_use_is_409(self, fake, http):
        resp = http.put(f"{fake.url}/data/projects/OTHER",
                        params={"name": "PRECLIN", "secondary_ID": "OTHER"})
        assert resp.status_code == 409

    def test_a_name_matching_another_project_id_case_aside_is_409(self, fake, http):
        resp = http.put(f"{fake.url}/data/projects/OTHER", params={"name": "preclin"})
        assert resp.status_code == 409

    def test_reused_deleted_id_is_403(self, fake, http):
        fake.deleted_projects.add("GONE")
        assert http.put(f"{fake.url}/data/projects/GONE").status_code == 403

    def test_new_project_is_201(self, fake, http):
        assert http.put(f"{fake.url}/data/projects/NEW", params={"name": "New"}).status_code \
            == 201
