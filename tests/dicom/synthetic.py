"""Tiny synthetic ParaVision studies for DICOM writer tests (written into tmp_path).

:func:`write_study` writes ``subject`` and one scan with ``acqp``, ``method`` and
``pdata/1/{visu_pars,reco,2dseq}``. Parameters are JCAMP text fragments, so a test can
add, change or remove any of them (``None`` removes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xnatpic.paravision.dataset import open_dataset
from xnatpic.paravision.series import ImageSeries, load_series

WORD_TYPES = {"i2": "_16BIT_SGN_INT", "i4": "_32BIT_SGN_INT", "u1": "_8BIT_UNSGN_INT",
              "f4": "_32BIT_FLOAT"}


def arr(values: list | np.ndarray) -> str:
    """A sized numeric array."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    shape = np.asarray(values).shape
    header = ", ".join(str(n) for n in shape) if shape else "1"
    return f"( {header} )\n" + " ".join(f"{v:.10g}" for v in flat)


def string(value: str) -> str:
    """A ``<...>`` string."""
    return f"( 65 )\n<{value}>"


def _jcamp(params: dict[str, str | None]) -> str:
    lines = ["##TITLE=Parameter List, ParaVision 6.0.1", "##JCAMPDX=4.24",
             "##DATATYPE=Parameter Values", "##OWNER=tester"]
    lines += [f"##${k}={v}" for k, v in params.items() if v is not None]
    return "\n".join([*lines, "##END=", ""])


def visu_params(stored: np.ndarray, slopes: list[float], offsets: list[float],
                positions: np.ndarray, *, echo_times: list[float] | None = None,
                orientation: list[float] | None = None) -> dict[str, str | None]:
    """visu_pars for ``stored`` (frames, rows, cols) with one slice per frame."""
    frames, rows, cols = stored.shape
    orientation = orientation or [1, 0, 0, 0, 1, 0, 0, 0, 1]
    return {
        "VisuUid": string("2.25.1001"),
        "VisuCreator": string("ParaVision"),
        "VisuCreatorVersion": string("6.0.1"),
        "VisuCreationDate": "<2021-05-04T10:20:30,123+0200>",
        "VisuCoreFrameCount": str(frames),
        "VisuCoreDim": "2",
        "VisuCoreSize": arr([cols, rows]),
        "VisuCoreDimDesc": "( 2 )\nspatial spatial",
        "VisuCoreExtent": arr([cols * 0.25, rows * 0.5]),
        "VisuCoreFrameThickness": arr([0.7]),
        "VisuCoreOrientation": arr(np.tile(orientation, (frames, 1))),
        "VisuCorePosition": arr(positions),
        "VisuCoreDataSlope": arr(slopes),
        "VisuCoreDataOffs": arr(offsets),
        "VisuCoreWordType": WORD_TYPES[stored.dtype.str[1:]],
        "VisuCoreByteOrder": "littleEndian",
        "VisuFGOrderDescDim": "1",
        "VisuFGOrderDesc": f"( 1 )\n({frames}, <FG_SLICE>, <>, 0, 2)",
        "VisuGroupDepVals": "( 2 )\n(<VisuCoreOrientation>, 0) (<VisuCorePosition>, 0)",
        "VisuSubjectName": string("Mickey Mouse"),
        "VisuSubjectId": string("M-042"),
        "VisuSubjectBirthDate": string("20210101"),
        "VisuSubjectSex": "FEMALE",
        "VisuSubjectType": "Quadruped",
        "VisuSubjectWeight": "0.025",
        "VisuSubjectPosition": "Head_Prone",
        "VisuStudyUid": string("2.25.2002"),
        "VisuStudyDate": "<2021-05-04T09:00:00,000+0200>",
        "VisuStudyId": string("study-7"),
        "VisuStudyReferringPhysician": string("Dr Who"),
        "VisuExperimentNumber": "5",
        "VisuProcessingNumber": "1",
        "VisuInstitution": string("Mouse Institute"),
        "VisuStation": string("Biospec"),
        "VisuAcqDate": "<2021-05-04T10:15:00,000+0200>",
        "VisuAcqSequenceName": string("Bruker:MSME"),
        "VisuAcqEchoSequenceType": "SpinEcho",
        "VisuAcqImagingFrequency": "300.3",
        "VisuAcqRepetitionTime": arr([1000]),
        "VisuAcqEchoTime": arr(echo_times or [12.5]),
        "VisuAcqFlipAngle": "90",
        "VisuAcqScanTime": "64000",
        "VisuAcquisitionProtocol": string("T2_MSME"),
    }


def write_study(root: Path, stored: np.ndarray, *, slopes: list[float] | None = None,
                offsets: list[float] | None = None, visu: dict[str, str | None] | None = None,
                method: dict[str, str | None] | None = None,
                subject: dict[str, str | None] | None = None) -> Path:
    """Write a study with one scan ``5`` whose only reco holds ``stored``; return the reco."""
    frames = stored.shape[0]
    slopes = slopes if slopes is not None else [1.0] * frames
    offsets = offsets if offsets is not None else [0.0] * frames
    positions = np.array([[-4.0, -6.0, 1.5 * k - 3] for k in range(frames)])
    params = visu_params(stored, slopes, offsets, positions)
    params.update(visu or {})
    subject_params = {"SUBJECT_id": string("M-042"), "SUBJECT_type": "Quadruped",
                      "SUBJECT_sex_animal": "FEMALE", "SUBJECT_strain": string("C57BL/6")}
    subject_params.update(subject or {})
    method_params = {"Method": "<Bruker:MSME>", "PVM_SpatDimEnum": "<2D>"}
    method_params.update(method or {})
    scan = root / "5"
    reco = scan / "pdata" / "1"
    reco.mkdir(parents=True)
    (root / "subject").write_text(_jcamp(subject_params))
    (scan / "acqp").write_text(_jcamp({"ACQ_method": string("Bruker:MSME"),
                                       "ACQ_operator": string("Operator One"),
                                       "ACQ_scan_name": string("T2 test (E5)")}))
    (scan / "method").write_text(_jcamp(method_params))
    (reco / "visu_pars").write_text(_jcamp(params))
    (reco / "reco").write_text(_jcamp({"RECO_wordtype": params["VisuCoreWordType"]}))
    stored.astype(stored.dtype.newbyteorder("<")).tofile(reco / "2dseq")
    return reco


def load(reco_path: Path) -> ImageSeries:
    """Load the only reco of a synthetic study."""
    study = open_dataset(reco_path.parents[2])
    return load_series(study.scans[0].recos[0])
