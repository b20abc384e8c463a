"""perfusion step: maps from a session's DICOM scans (see xnatpic.analysis.runner).

Run by the image's ENTRYPOINT with the command line of ``commands/perfusion.json``::

    run.py --input /input --output /output [--scan ID] [--threshold F] [options]

Writes OUTPUT/maps/ (NIfTI, DICOM, PNG, report.html, stats.json/csv, provenance.json);
exit 1 with the reason as the last stderr line when the scan cannot be mapped.
"""

from __future__ import annotations

import sys

from xnatpic.analysis.runner import main

if __name__ == "__main__":
    sys.exit(main("perfusion"))
