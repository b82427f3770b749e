"""Fault tests use the API helpers (providers and Macs made through the real endpoints)."""

from tests.api.conftest import make_provider, provider  # noqa: F401
