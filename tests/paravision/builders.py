"""Tiny synthetic ParaVision trees written into tmp_path for reader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

VISU_TEMPLATE = """##TITLE=Parameter List, ParaVision 6.0.1
##JCAMPDX=4.24
##DATATYPE=Parameter Values
##ORIGIN=Bruker BioSpin MRI GmbH
$$ synthetic test data
##$VisuUid=( 65 )
<2.25.1234>
##$VisuCoreFrameCount={frames}
##$VisuCoreDim=2
##$VisuCoreSize=( 2 )
{cols} {rows}
##$VisuCoreDimDesc=( 2 )
spatial spatial
##$VisuCoreExtent=( 2 )
{ext_x} {ext_y}
##$VisuCoreFrameThickness=( 1 )
1.5
##$VisuCoreOrientation=( {nslices}, 9 )
{orientation}
##$VisuCorePosition=( {nslices}, 3 )
{position}
##$VisuCoreDataOffs=( {frames} )
{offsets}
##$VisuCoreDataSlope=( {frames} )
{slopes}
##$VisuCoreWordType={word_type}
##$VisuCoreByteOrder={byte_order}
##$VisuFGOrderDescDim=2
##$VisuFGOrderDesc=( 2 )
({necho}, <FG_ECHO>, <>, 0, 1) ({nslices}, <FG_SLICE>, <>, 1, 2)
##$VisuGroupDepVals=( 3 )
(<VisuAcqEchoTime>, 0) (<VisuCoreOrientation>, 0) (<VisuCorePosition>, 0)
##$VisuAcqEchoTime=( {necho} )
{echo_times}
##$VisuAcqRepetitionTime=( 1 )
1500
##$VisuSubjectId=( 65 )
<mouse-1>
##$VisuStudyId=( 65 )
<study-1>
##END=
"""

DTYPES = {"_16BIT_SGN_INT": "i2", "_32BIT_SGN_INT": "i4", "_8BIT_UNSGN_INT": "u1",
          "_32BIT_FLOAT": "f4"}


def write_reco(scan_dir: Path, *, rows: int = 6, cols: int = 4, necho: int = 3,
               nslices: int = 2, word_type: str = "_16BIT_SGN_INT",
               byte_order: str = "littleEndian", slopes: list[float] | None = None,
               seed: int = 0) -> np.ndarray:
    """Write scan_dir/{acqp,method,pdata/1/{visu_pars,2dseq}}; return the stored array.

    The stored array has shape (frames, rows, cols), frames ordered echo fastest.
    """
    frames = necho * nslices
    rng = np.random.default_rng(seed)
    code = DTYPES[word_type]
    if code == "f4":
        stored = rng.normal(0, 100, (frames, rows, cols)).astype("f4")
    elif code == "u1":
        stored = rng.integers(0, 255, (frames, rows, cols)).astype("u1")
    else:
        stored = rng.integers(-3000, 3000, (frames, rows, cols)).astype(code)
    slopes = slopes or [0.5 + 0.25 * f for f in range(frames)]
    orientation = " ".join(["1 0 0 0 1 0 0 0 1"] * nslices)
    position = " ".join(f"-10 -12 {z * 2.0}" for z in range(nslices))
    text = VISU_TEMPLATE.format(
        frames=frames, cols=cols, rows=rows, ext_x=cols * 0.25, ext_y=rows * 0.5,
        nslices=nslices, orientation=orientation, position=position,
        offsets=" ".join(str(float(f)) for f in range(frames)),
        slopes=" ".join(map(str, slopes)), word_type=word_type, byte_order=byte_order,
        necho=necho, echo_times=" ".join(str(10.0 * (e + 1)) for e in range(necho)),
    )
    reco = scan_dir / "pdata" / "1"
    reco.mkdir(parents=True)
    (reco / "visu_pars").write_text(text)
    order = "<" if byte_order == "littleEndian" else ">"
    stored.astype(stored.dtype.newbyteorder(order)).tofile(reco / "2dseq")
    (scan_dir / "acqp").write_text("##TITLE=acqp\n##$ACQ_method=( 20 )\n<Bruker:MSME>\n##END=\n")
    (scan_dir / "method").write_text("##TITLE=method\n##$Method=<Bruker:MSME>\n##END=\n")
    return stored


def write_study(root: Path, scans: dict[str, dict] | None = None) -> Path:
    """A study folder with a subject file and the given scans (id → write_reco kwargs)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "subject").write_text(
        "##TITLE=subject\n##$SUBJECT_id=<mouse-1>\n##$SUBJECT_study_name=<study-1>\n##END=\n"
    )
    for scan_id, kwargs in (scans or {"1": {}}).items():
        write_reco(root / scan_id, **kwargs)
    return root
