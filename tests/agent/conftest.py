"""The agent is its own distribution (agent/); the tests import it from the checkout."""

import sys
from pathlib import Path

import pytest

AGENT = Path(__file__).resolve().parents[2] / "agent"
if str(AGENT) not in sys.path:
    sys.path.insert(0, str(AGENT))


@pytest.fixture
def agent_home(tmp_path, monkeypatch):
    """The agent's state in tmp_path/home; no keyring, so the token goes to a private file there."""
    monkeypatch.setenv("CONVASSIST_AGENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    return tmp_path
