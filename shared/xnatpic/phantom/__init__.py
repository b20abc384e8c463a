"""A multi-compartment MRI phantom written as a ParaVision 6.0.1 study, with known truth.

The study is the data of ``make demo`` and of the project's accuracy tests. Modules:

* :mod:`~xnatpic.phantom.geometry`: slice packs (orientation, position, voxel centres);
* :mod:`~xnatpic.phantom.compartments`: compartments, their properties, the truth maps;
* :mod:`~xnatpic.phantom.signals`: signal equations and Rician noise;
* :mod:`~xnatpic.phantom.protocols`: the table of scans;
* :mod:`~xnatpic.phantom.sequences`: per-sequence signal and ParaVision parameters;
* :mod:`~xnatpic.phantom.pvparams`: the subject, acqp, method, visu_pars and reco files;
* :mod:`~xnatpic.phantom.storage`: frames to 2dseq bytes with per-frame scaling;
* :mod:`~xnatpic.phantom.truth`: truth.json and the .npy maps;
* :mod:`~xnatpic.phantom.writer`: :func:`write_phantom`, which writes it all.
"""

from __future__ import annotations

from xnatpic.phantom.truth import read_truth, read_truth_map
from xnatpic.phantom.writer import PhantomReport, write_phantom

__all__ = ["PhantomReport", "read_truth", "read_truth_map", "write_phantom"]
