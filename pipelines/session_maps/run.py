"""session-maps step: every map the session's scans support, in one run (see
xnatpic.analysis.session_maps).

Run by the image's ENTRYPOINT with the command line of ``commands/session-maps.json``::

    run.py --input /input --output /output [--steps t2map,...] [--threshold F]

Writes OUTPUT/<step>/maps/<run-key>/ for each map step that applies (stored as the
step's own resource) and OUTPUT/session/ (session-maps.json, scan-index.json, the
session index).
"""

from __future__ import annotations

import sys

from xnatpic.lean_start import freeze_imports, lean_step_start

# before numpy and pydicom load: one BLAS thread, pydicom without its download packages
FRESH = lean_step_start()

from xnatpic.analysis.session_maps import main  # noqa: E402

if __name__ == "__main__":
    if FRESH:
        freeze_imports()  # the imports are never freed: out of the collector's passes
    sys.exit(main())
