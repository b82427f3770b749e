"""Fault tests use the API helpers (providers made through the real endpoints) and the agent's
fixtures (its home directory; importing it puts the agent's package on the path)."""

from tests.agent.conftest import agent_home  # noqa: F401
from tests.api.conftest import make_provider, provider  # noqa: F401
