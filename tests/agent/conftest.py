"""The agent is its own distribution (agent/); the tests import it from the checkout."""

import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
if str(AGENT) not in sys.path:
    sys.path.insert(0, str(AGENT))
