"""A synthetic ParaVision 5 study of the custom CEST method ``cESTFISP_SSprep_gate``.

No such study is in the corpus; this writes one with the project's JCAMP-DX writer, with
the parameters such a method keeps its offsets in:

* ``method``: ``CestArray`` (Hz) and ``NumCestExps``, as the University of Arizona
  ``Bruker_reader.m`` reads them;
* ``visu_pars``: ``VisuFGElemComment`` ``VCEST=  -1000.0Hz`` per frame, the text Pagel's
  PV5 CEST methods write into ``ACQ_movie_descr`` (``sprintf("VCEST=%8.1fHz", ...)``);
* ``acqp``: ``ACQ_movie_descr`` with the same text, one per offset.

``where`` selects which of them the study holds, so each source is tested alone. The
images follow an analytic two-pool Z-spectrum (water plus a pool at +4.2 ppm), with a
B0 shift varying along x, so B0 and MTRasym have exact expected values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xnatpic.paravision.jcamp_writer import Strings, Text, Word, write_jcamp

F0_MHZ = 300.3
#: Saturated offsets (ppm) and one far off-resonance M0 reference (first frame).
OFFSETS_PPM = np.concatenate([[-100.0], np.round(np.arange(-8.0, 8.0001, 0.25), 4)])
POOL_PPM = 4.2
WATER = (0.85, 1.2)  # amplitude, half-width (ppm)
POOL = (0.08, 0.6)
METHOD = "cESTFISP_SSprep_gate"
PV5_TITLE = "Parameter List, ParaVision 5.1"


def z_model(offset_ppm: np.ndarray, b0_ppm: np.ndarray) -> np.ndarray:
    """Analytic Z(Δω) of a voxel whose water is at ``b0_ppm``."""
    d = np.asarray(offset_ppm, float) - np.asarray(b0_ppm, float)[..., None]
    water = WATER[0] / (1.0 + (d / WATER[1]) ** 2)
    pool = POOL[0] / (1.0 + ((d - POOL_PPM) / POOL[1]) ** 2)
    return 1.0 - water - pool


def b0_truth(cols: int, rows: int) -> np.ndarray:
    """B0 (ppm) per voxel, shape (cols, rows): -0.3 to +0.3 ppm along x."""
    return np.repeat(np.linspace(-0.3, 0.3, cols)[:, None], rows, axis=1)


@dataclass(frozen=True)
class Pv5CestStudy:
    """What was written: the study folder, scan id, offsets and the truth."""

    path: Path
    scan: str
    offsets_hz: np.ndarray
    repetitions: int
    b0_ppm: np.ndarray  # (cols, rows)
    m0: float


def write_pv5_cest_study(root: Path, *, where: str = "CestArray", scan: str = "5",
                         cols: int = 12, rows: int = 10, repetitions: int = 1,
                         subject_type: str | None = None, noise: float = 0.0,
                         seed: int = 0) -> Pv5CestStudy:
    """Write the study; ``where`` is ``CestArray``, ``VisuFGElemComment`` or
    ``ACQ_movie_descr``."""
    if where not in ("CestArray", "VisuFGElemComment", "ACQ_movie_descr"):
        raise ValueError(where)
    offsets_hz = np.round(OFFSETS_PPM * F0_MHZ, 1)
    n = offsets_hz.size
    frames = n * repetitions
    comments = [f"VCEST={v:8.1f}Hz" for v in offsets_hz]
    root.mkdir(parents=True, exist_ok=True)
    subject: dict = {"SUBJECT_id": "cest-phantom", "SUBJECT_study_name": "pv5 cest"}
    if subject_type:
        subject["SUBJECT_type"] = Word(subject_type)
    write_jcamp(root / "subject", subject, title=PV5_TITLE)
    scan_dir = root / scan
    reco = scan_dir / "pdata" / "1"
    reco.mkdir(parents=True)
    method: dict = {"Method": Word(METHOD), "PVM_EchoTime": 2.5,
                    "PVM_RepetitionTime": 5.0, "PVM_NRepetitions": repetitions,
                    "PVM_FrqWork": np.array([F0_MHZ, 0, 0, 0, 0, 0, 0, 0])}
    if where == "CestArray":
        method.update({"NumCestExps": n, "CestArray": offsets_hz})
    write_jcamp(scan_dir / "method", method, title=PV5_TITLE)
    acqp: dict = {"ACQ_method": Text(METHOD, 40), "BF1": F0_MHZ, "NR": frames}
    if where == "ACQ_movie_descr":
        acqp["ACQ_movie_descr"] = Strings(comments, 20)
    write_jcamp(scan_dir / "acqp", acqp, title=PV5_TITLE)

    b0 = b0_truth(cols, rows)
    z = z_model(OFFSETS_PPM, b0)  # (cols, rows, n)
    m0 = 2000.0
    signal = np.tile(m0 * z, (1, 1, repetitions))  # (cols, rows, frames), offsets fastest
    rng = np.random.default_rng(seed)
    if noise:
        signal = signal + rng.normal(0.0, noise * m0, signal.shape)
    slope = float(np.max(np.abs(signal)) / 30000.0)
    stored = np.round(signal / slope).astype("<i2")
    # 2dseq: frames of rows x cols, x fastest.
    stored.transpose(2, 1, 0).tofile(reco / "2dseq")
    if where == "VisuFGElemComment":
        group = [(n, "FG_MOVIE", "", 0, 1)]
        deps = [("VisuFGElemComment", 0)]
        if repetitions > 1:
            group.append((repetitions, "FG_CYCLE", "", 0, 0))
    else:
        group = [(frames, "FG_CYCLE", "", 0, 0)]
        deps = [("", 0)]
    visu: dict = {
        "VisuVersion": 1,
        "VisuUid": "2.25.44556677",
        "VisuCreationDate": Text("16:53:26 12 Dec 2017", 21),
        "VisuStudyDate": Text("16:20:03 12 Dec 2017", 21),
        "VisuAcqDate": Text("16:40:11 12 Dec 2017", 21),
        "VisuCoreFrameCount": frames,
        "VisuCoreDim": 2,
        "VisuCoreSize": np.array([cols, rows]),
        "VisuCoreDimDesc": np.array(["spatial", "spatial"]),
        "VisuCoreExtent": np.array([cols * 0.3, rows * 0.3]),
        "VisuCoreFrameThickness": np.array([1.0]),
        "VisuCoreUnits": Strings(["mm", "mm"]),
        "VisuCoreOrientation": np.tile([1.0, 0, 0, 0, 1, 0, 0, 0, 1], (frames, 1)),
        "VisuCorePosition": np.tile([-1.8, -1.5, 0.0], (frames, 1)),
        "VisuCoreDataOffs": np.zeros(frames),
        "VisuCoreDataSlope": np.full(frames, slope),
        "VisuCoreFrameType": np.array(["MAGNITUDE_IMAGE"] * frames),
        "VisuCoreWordType": Word("_16BIT_SGN_INT"),
        "VisuCoreByteOrder": Word("littleEndian"),
        "VisuFGOrderDescDim": len(group),
        "VisuFGOrderDesc": group,
        "VisuGroupDepVals": deps,
        "VisuSubjectName": "cest-phantom",
        "VisuSubjectId": "cest-phantom",
        "VisuSubjectPosition": Word("Head_Supine"),
        "VisuStudyUid": "2.25.99887766",
        "VisuStudyId": "pv5 cest",
        "VisuStudyNumber": 1,
        "VisuExperimentNumber": int(scan),
        "VisuProcessingNumber": 1,
        "VisuSeriesNumber": int(scan) * 65536 + 1,
        "VisuAcqSoftwareVersion": "5.1",
        "VisuAcqSequenceName": METHOD,
        "VisuAcqEchoTime": np.array([2.5]),
        "VisuAcqRepetitionTime": np.array([5.0]),
        "VisuAcqImagingFrequency": F0_MHZ,
        "VisuAcqFlipAngle": 10.0,
        "VisuAcqScanTime": 330000.0,
    }
    if where == "VisuFGElemComment":
        visu["VisuFGElemComment"] = Strings(comments, 20)
    write_jcamp(reco / "visu_pars", visu, title=PV5_TITLE)
    return Pv5CestStudy(root, scan, offsets_hz, repetitions, b0, m0)
