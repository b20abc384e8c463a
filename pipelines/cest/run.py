"""cest step: maps from a session's DICOM scans (see xnatpic.analysis.runner).

Run by the image's ENTRYPOINT with the command line of ``commands/cest.json``::

    run.py --input /input --output /output [--scan ID] [--threshold F] [options]

Writes OUTPUT/maps/ (NIfTI, DICOM, PNG, report.html, stats.json/csv, provenance.json);
exit 1 with the reason as the last stderr line when the scan cannot be mapped.
"""

from __future__ import annotations

import sys

from xnatpic.lean_start import freeze_imports, lean_step_start

# before numpy and pydicom load: one BLAS thread, pydicom without its download packages
FRESH = lean_step_start()

from xnatpic.analysis.runner import main  # noqa: E402

if __name__ == "__main__":
    if FRESH:
        freeze_imports()  # the imports are never freed: out of the collector's passes
    sys.exit(main("cest"))
