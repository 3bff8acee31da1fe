"""Runs one integration test file under pytest for meson.

    /usr/bin/python3 run_pytest.py TEST_FILE [pytest args...]

CK_PYTEST_MARK (e.g. 'not slow', set by tests/run.sh for the sanitizer
build) selects tests by marker. A file whose tests are all deselected is
reported to meson as skipped (77) rather than pytest's "no tests" (5).
"""

import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
args = [sys.executable, "-m", "pytest", "-v", "-c",
        os.path.join(here, "pytest.ini"), "--rootdir", here]
mark = os.environ.get("CK_PYTEST_MARK", "").strip()
if mark:
    args += ["-m", mark]
args += sys.argv[1:]
rc = subprocess.call(args, cwd=here, stdin=subprocess.DEVNULL)
sys.exit(77 if rc == 5 else rc)
