"""tests/faults: the fault harness (run.py, campaign.py) and its tests. The harness builds
on the system tests' test bed (tests/system/testbed.py, harness.py)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "system"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
