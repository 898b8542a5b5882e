"""Set-up for the SIESTA engine tests (no Django): make the agent package importable.

Expected values come from ``siesta_manifest.py`` (the corpus MANIFEST), data from
``tests/agent/data/siesta-samples``.
"""

from __future__ import annotations

import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[3] / "agent"
if str(AGENT) not in sys.path:  # also works without PYTHONPATH=agent
    sys.path.insert(0, str(AGENT))
