"""The parameter files of a phantom scan: subject, acqp, method, visu_pars and reco.

Parameter names, types and layout follow real ParaVision 6.0.1 files (the pv6-dicomifier
and pv6-acidocest studies of the project's corpus). Only the parameters a converter or a
fitting step may use are written, plus enough context to look like a real study.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from xnatpic import __version__
from xnatpic.paravision.jcamp_writer import Strings, Text, Word
from xnatpic.phantom.geometry import SlicePack
from xnatpic.phantom.protocols import FREQUENCY_MHZ, Protocol
from xnatpic.phantom.sequences import Encoding, interlaced_order
from xnatpic.phantom.storage import Stored

__all__ = [
    "PV_VERSION",
    "StudyContext",
    "acqp_params",
    "frame_layout",
    "method_params",
    "reco_params",
    "subject_params",
    "visu_params",
]

PV_VERSION = "6.0.1"
_OWNER = "xnatpic"
_INSTITUTION = "xnatpic phantom lab"
_STATION = "Biospec (synthetic)"
_TZ = timezone(timedelta(hours=1))


@dataclass(frozen=True)
class StudyContext:
    """Identity and dates of the study, all derived from the seed (deterministic).

    Parameters
    ----------
    seed : int
        Noise seed; also makes the UIDs.
    snr : float
        Signal-to-noise ratio (in the UIDs too: different noise, different study).
    """

    seed: int
    snr: float

    @property
    def start(self) -> datetime:
        """Study date."""
        return datetime(2024, 1, 15, 9, 30, 0, tzinfo=_TZ)

    def uid(self, *parts: object) -> str:
        """A deterministic DICOM UID under the 2.25 (UUID-derived) root."""
        fields = ["xnatpic-phantom", str(self.seed), repr(float(self.snr)), *map(str, parts)]
        text = "/".join(fields)
        return "2.25." + str(int(hashlib.sha256(text.encode()).hexdigest()[:32], 16))

    def scan_time(self, scan: int) -> datetime:
        """Acquisition time of a scan (7 minutes apart)."""
        return self.start + timedelta(minutes=7 * scan)


def _pv_date(when: datetime) -> Text:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + f",{when.microsecond // 1000:03d}"
    return Text(stamp + when.strftime("%z"), None)


def _abs_time(when: datetime) -> tuple[int, int, int]:
    offset = when.utcoffset() or timedelta()
    return (int(when.timestamp()), when.microsecond // 1000, int(offset.total_seconds() // 60))


def subject_params(ctx: StudyContext) -> dict[str, Any]:
    """The study's ``subject`` file."""
    start = ctx.start
    return {
        "SUBJECT_version_nr": 1,
        "SUBJECT_id": Text("xnatpic^phantom", 60),
        "SUBJECT_instance_uid": ctx.uid("subject"),
        "SUBJECT_instance_creation_date": _abs_time(start),
        "SUBJECT_name_string": Text("xnatpic-phantom", 64),
        "SUBJECT_name": ("xnatpic-phantom", ""),
        "SUBJECT_dbirth": Text(start.strftime("%d %b %Y"), 12),
        "SUBJECT_type": Word("OtherAnimal"),
        "SUBJECT_sex": Text("unknown", 8),
        "SUBJECT_sex_animal": Word("UNKNOWN"),
        "SUBJECT_remarks": Text(
            f"multi-compartment phantom, snr {ctx.snr:g}, seed {ctx.seed}", 2048
        ),
        "SUBJECT_study_name": Text("xnatpic^phantom", 64),
        "SUBJECT_study_nr": 1,
        "SUBJECT_study_instance_uid": ctx.uid("study"),
        "SUBJECT_weight": 0.1,
        "SUBJECT_referral": Text(_OWNER, 64),
        "SUBJECT_purpose": Text("quantitative MRI accuracy", 2048),
        "SUBJECT_pos_valid": Word("Yes"),
        "SUBJECT_entry": Word("SUBJ_ENTRY_HeadFirst"),
        "SUBJECT_position": Word("SUBJ_POS_Prone"),
        "SUBJECT_date": _pv_date(start),
        "SUBJECT_abs_date": _abs_time(start),
        "SUBJECT_comment": Text(f"written by xnatpic {__version__}", 2048),
    }


def frame_layout(proto: Protocol, geom: SlicePack, enc: Encoding) -> tuple[list, list]:
    """``VisuFGOrderDesc`` (fastest group first) and ``VisuGroupDepVals``."""
    slice_group = (geom.n_slices, "FG_SLICE", "", ("VisuCoreOrientation", "VisuCorePosition"))
    groups = [slice_group]
    if proto.group is not None:
        other = (enc.n, proto.group.fg_id, proto.group.comment, proto.group.dependents)
        groups = [other, slice_group] if proto.group.fastest else [slice_group, other]
    order, deps, start = [], [], 0
    for n, fg_id, comment, names in groups:
        order.append((n, fg_id, comment, start, len(names)))
        deps.extend((name, 0) for name in names)
        start += len(names)
    return order, deps


def _spack(geom: SlicePack) -> dict[str, Any]:
    read_off, phase_off, slice_off = geom.in_plane_offsets()
    n = geom.n_slices
    return {
        "PVM_SpatDimEnum": Text("2D", None),
        "PVM_Matrix": np.array(geom.size),
        "PVM_EncMatrix": np.array(geom.size),
        "PVM_Fov": np.array(geom.extent),
        "PVM_FovCm": np.array(geom.extent) / 10.0,
        "PVM_SpatResol": geom.voxel_size,
        "PVM_SliceThick": geom.thickness,
        "PVM_ObjOrderScheme": Word("Interlaced"),
        "PVM_ObjOrderList": interlaced_order(n),
        "PVM_NSPacks": 1,
        "PVM_SPackArrNSlices": np.array([n]),
        "PVM_MajSliceOri": Word("No"),
        "PVM_SPackArrSliceOrient": np.array([geom.slice_orient]),
        "PVM_SPackArrReadOrient": np.array([geom.read_orient]),
        "PVM_SPackArrReadOffset": np.array([read_off]),
        "PVM_SPackArrPhase1Offset": np.array([phase_off]),
        "PVM_SPackArrPhase2Offset": np.array([0.0]),
        "PVM_SPackArrSliceOffset": np.array([slice_off]),
        "PVM_SPackArrSliceGapMode": np.array(["non_contiguous"]),
        "PVM_SPackArrSliceGap": np.array([geom.distance - geom.thickness]),
        "PVM_SPackArrSliceDistance": np.array([geom.distance]),
        "PVM_SPackArrGradOrient": geom.orientation.reshape(1, 3, 3),
        "PVM_EffSliceOffset": geom.slice_offsets + slice_off,
        "PVM_EffReadOffset": np.full(n, read_off),
        "PVM_EffPhase1Offset": np.full(n, phase_off),
    }


def _scan_time_ms(proto: Protocol, geom: SlicePack, enc: Encoding) -> float:
    """Nominal duration: echo trains per image times the TRs each frame-group element needs."""
    trains = geom.size[1] / proto.rare_factor * proto.averages
    tr = np.asarray(enc.acqp["ACQ_repetition_time"], dtype=float)
    if proto.group is None or proto.group.fastest:  # echoes share one TR
        total = tr.max()
    elif tr.size == enc.n:  # one TR per element (variable TR, inversion recovery)
        total = tr.sum()
    else:
        total = tr[0] * enc.n
    return round(float(total * trains), 3)


def method_params(proto: Protocol, geom: SlicePack, enc: Encoding) -> dict[str, Any]:
    """The scan's ``method`` file."""
    scan_ms = _scan_time_ms(proto, geom, enc)
    seconds = int(scan_ms // 1000)
    params: dict[str, Any] = {
        "Method": Text(proto.method, None),
        "PVM_NAverages": proto.averages,
        "PVM_NRepetitions": enc.n if proto.repetitions else 1,
        "PVM_ScanTimeStr": Text(f"0h{seconds // 60}m{seconds % 60}s{int(scan_ms % 1000)}ms", 16),
        "PVM_ScanTime": scan_ms,
        "PVM_Nucleus1Enum": Text("1H", None),
        "PVM_Nucleus1": Text("1H", 8),
        "PVM_FrqRef": np.array([FREQUENCY_MHZ] + [0.0] * 7),
        "PVM_FrqWorkOffset": np.zeros(8),
        "PVM_FrqWork": np.array([FREQUENCY_MHZ] + [0.0] * 7),
        "PVM_FrqRefPpm": np.array([4.7] + [0.0] * 7),
        "PVM_FrqWorkPpm": np.array([4.7] + [0.0] * 7),
        "PVM_DigSw": 50000.0,
        "PVM_EffSWh": 50000.0,
    }
    params.update(enc.method)
    params.update(_spack(geom))
    return params


def acqp_params(
    proto: Protocol, geom: SlicePack, enc: Encoding, ctx: StudyContext
) -> dict[str, Any]:
    """The scan's ``acqp`` file."""
    when = ctx.scan_time(proto.scan)
    per_rep = 1 if proto.repetitions else enc.n
    read_off, phase_off, slice_off = geom.in_plane_offsets()
    n = geom.n_slices
    params: dict[str, Any] = {
        "PULPROG": Text(proto.pulprog, 32),
        "ACQ_experiment_mode": Word("SingleExperiment"),
        "ACQ_dim": 2,
        "ACQ_dim_desc": np.array(["Spatial", "Spatial"]),
        "ACQ_size": np.array([2 * geom.size[0], geom.size[1]]),
        "NI": n * per_rep,
        "NA": proto.averages,
        "NAE": 1,
        "NR": enc.n if proto.repetitions else 1,
        "DS": 0,
        "SW_h": 50000.0,
        "BF1": FREQUENCY_MHZ,
        "SFO1": FREQUENCY_MHZ,
        "O1": 0.0,
        "NUC1": Text("1H", 8),
        "NUCLEUS": Text("1H", 8),
        "ACQ_protocol_name": Text(proto.name, 64),
        "ACQ_scan_name": Text(f"{proto.name} (E{proto.scan})", 64),
        "ACQ_method": Text(proto.method, 40),
        "ACQ_completed": Word("Yes"),
        "ACQ_word_size": Word("_32_BIT"),
        "ACQ_n_movie_frames": 1,
        "ACQ_fov": np.array(geom.extent) / 10.0,
        "ACQ_slice_angle": np.zeros(1),
        "ACQ_slice_orient": Word("Arbitrary_Oblique"),
        "ACQ_patient_pos": Word("Head_Prone"),
        "ACQ_read_offset": np.full(n, read_off),
        "ACQ_phase1_offset": np.full(n, phase_off),
        "ACQ_phase2_offset": np.zeros(n),
        "ACQ_slice_sepn": np.array([geom.distance]),
        "ACQ_slice_sepn_mode": Word("Equidistant"),
        "ACQ_slice_thick": geom.thickness,
        "ACQ_slice_offset": geom.slice_offsets + slice_off,
        "ACQ_flip_angle": proto.flip,
        "ACQ_time": _pv_date(when),
        "ACQ_abs_time": _abs_time(when),
        "ACQ_operator": Text(_OWNER, 16),
        "ACQ_institution": Text(_INSTITUTION, 48),
        "ACQ_station": Text(_STATION, 64),
        "ACQ_sw_version": Text(f"PV {PV_VERSION}", 65),
        "BYTORDA": Word("little"),
        "ACQ_scaling_read": 1.0,
        "ACQ_scaling_phase": 1.0,
        "ACQ_scaling_slice": 1.0,
        "ACQ_grad_matrix": np.repeat(geom.orientation[None], n, axis=0),
        "NSLICES": n,
        "ACQ_rare_factor": proto.rare_factor,
        "ACQ_inversion_time": np.zeros(1),
    }
    params.update(enc.acqp)
    return params


def visu_params(
    proto: Protocol, geom: SlicePack, enc: Encoding, ctx: StudyContext, stored: Stored,
    word_type: str,
) -> dict[str, Any]:  # fmt: skip
    """The reco's ``visu_pars`` file (also copied to the scan folder, as ParaVision does)."""
    when = ctx.scan_time(proto.scan)
    order, deps = frame_layout(proto, geom, enc)
    n = geom.n_slices
    frames = stored.data.shape[0]
    params: dict[str, Any] = {
        "VisuVersion": 3,
        "VisuUid": ctx.uid("series", proto.scan, 1),
        "VisuCreator": Text("ParaVision"),
        "VisuCreatorVersion": Text(PV_VERSION),
        "VisuCreationDate": _pv_date(when + timedelta(minutes=5)),
        "VisuInstanceModality": Text("MR"),
        "VisuCoreFrameCount": frames,
        "VisuCoreDim": 2,
        "VisuCoreSize": np.array(geom.size),
        "VisuCoreDimDesc": np.array(["spatial", "spatial"]),
        "VisuCoreExtent": np.array(geom.extent, dtype=float),
        "VisuCoreFrameThickness": np.array([geom.thickness]),
        "VisuCoreUnits": Strings(["mm", "mm"]),
        "VisuCoreOrientation": np.repeat(geom.orientation.reshape(1, 9), n, axis=0),
        "VisuCorePosition": geom.positions(),
        "VisuCoreDataMin": stored.minimum,
        "VisuCoreDataMax": stored.maximum,
        "VisuCoreDataOffs": stored.offset,
        "VisuCoreDataSlope": stored.slope,
        "VisuCoreFrameType": np.array(["MAGNITUDE_IMAGE"]),
    }
    if "VisuFGElemComment" in enc.visu:
        params["VisuFGElemComment"] = enc.visu["VisuFGElemComment"]
    params.update({
        "VisuCoreSlicePacksDef": (0, 1),
        "VisuCoreSlicePacksSlices": [(0, n)],
        "VisuCoreSlicePacksSliceDist": np.array([geom.distance]),
        "VisuCoreWordType": Word(word_type),
        "VisuCoreByteOrder": Word("littleEndian"),
        "VisuFGOrderDescDim": len(order),
        "VisuFGOrderDesc": order,
        "VisuGroupDepVals": deps,
        "VisuSubjectName": Text("xnatpic-phantom"),
        "VisuSubjectId": Text("xnatpic^phantom"),
        "VisuSubjectUid": ctx.uid("subject"),
        "VisuSubjectInstanceCreationDate": _abs_time(ctx.start),
        "VisuSubjectBirthDate": Text(ctx.start.strftime("%Y%m%d"), 9),
        "VisuSubjectSex": Word("UNKNOWN"),
        "VisuSubjectComment": Text("multi-compartment phantom", 2048),
        "VisuSubjectType": Word("OtherAnimal"),
        "VisuStudyUid": ctx.uid("study"),
        "VisuStudyDate": _pv_date(ctx.start),
        "VisuStudyId": Text("xnatpic^phantom"),
        "VisuStudyNumber": 1,
        "VisuSubjectWeight": 0.1,
        "VisuStudyReferringPhysician": Text(_OWNER),
        "VisuStudyDescription": Text("xnatpic synthetic phantom", 2048),
        "VisuExperimentNumber": proto.scan,
        "VisuProcessingNumber": 1,
        "VisuSeriesNumber": proto.scan * 10000 + 1,
        "VisuSeriesDate": _pv_date(when + timedelta(minutes=5)),
        "VisuSubjectPosition": Word("Head_Prone"),
        "VisuSeriesTypeId": Text("ACQ_BRUKER_PVM"),
        "VisuManufacturer": Text("Bruker BioSpin MRI GmbH"),
        "VisuAcqSoftwareVersion": Text(PV_VERSION),
        "VisuInstitution": Text(_INSTITUTION),
        "VisuStation": Text(_STATION),
        "VisuAcqDate": _pv_date(when),
        "VisuAcqEchoTrainLength": proto.rare_factor,
        "VisuAcqSequenceName": Text(proto.method, 40),
        "VisuAcqNumberOfAverages": proto.averages,
        "VisuAcqImagingFrequency": FREQUENCY_MHZ,
        "VisuAcqImagedNucleus": Text("1H", 8),
    })  # fmt: skip
    for name in ("VisuAcqRepetitionTime", "VisuAcqInversionTime"):
        if name in enc.visu:
            params[name] = enc.visu[name]
    params.update({
        "VisuAcqPhaseEncSteps": geom.size[1],
        "VisuAcqPixelBandwidth": 50000.0 / geom.size[0],
        "VisuAcqFlipAngle": proto.flip,
        "VisuAcqSize": np.array(geom.size),
        "VisuAcqImageSizeAccellerated": Word("No"),
        "VisuAcqGradEncoding": np.array(["read_enc", "phase_enc"]),
        "VisuAcqEchoTime": enc.visu["VisuAcqEchoTime"],
        "VisuAcquisitionProtocol": Text(proto.name),
        "VisuAcqScanTime": _scan_time_ms(proto, geom, enc),
    })  # fmt: skip
    if "VisuAcqDiffusionBMatrix" in enc.visu:
        params["VisuAcqDiffusionBMatrix"] = enc.visu["VisuAcqDiffusionBMatrix"]
    return params


def reco_params(
    proto: Protocol, geom: SlicePack, enc: Encoding, ctx: StudyContext, stored: Stored,
    word_type: str,
) -> dict[str, Any]:  # fmt: skip
    """The reco's ``reco`` file."""
    when = ctx.scan_time(proto.scan) + timedelta(minutes=5)
    frames = stored.data.shape[0]
    per_rep = frames // (enc.n if proto.repetitions else 1)
    return {
        "RECO_mode": Word("USER_MODE"),
        "RecoDim": 2,
        "RecoObjectsPerRepetition": per_rep,
        "RecoNumRepetitions": enc.n if proto.repetitions else 1,
        "RECO_inp_size": np.array(geom.size),
        "RECO_ft_size": np.array(geom.size),
        "RECO_fov": np.array(geom.extent) / 10.0,
        "RECO_size": np.array(geom.size),
        "RECO_transposition": np.zeros(frames, dtype=int),
        "RECO_image_type": Word("MAGNITUDE_IMAGE"),
        "RECO_wordtype": Word(word_type),
        "RECO_map_mode": Word("ABSOLUTE_MAPPING"),
        "RECO_map_range": np.array([-2147483647, 2147483647]),
        "RECO_minima": stored.minimum,
        "RECO_maxima": stored.maximum,
        "RECO_map_offset": stored.offset,
        "RECO_map_slope": 1.0 / stored.slope,
        "RECO_byte_order": Word("littleEndian"),
        "RECO_time": _pv_date(when),
        "RECO_abs_time": _abs_time(when),
        "RECO_base_image_uid": ctx.uid("series", proto.scan, 1),
    }
