"""The attack suite's fixtures: accounts and paired Macs whose secrets are distinctive, and the
session-wide log scan that proves none of those secrets was logged by anything."""

from __future__ import annotations

import itertools
import logging
import uuid

import pytest

from tests.api.conftest import Device, Provider
from tests.security.leaks import SECRETS, RecordCollector, log_files, scan
from tests.ui.conftest import signed_in  # noqa: F401  (the browser tests here sign in the same way)

_n = itertools.count()
SUMMARY: dict[str, str] = {}  # lines for the terminal summary, by topic


def secret_text(label: str) -> str:
    """A distinctive message text that the log scan looks for."""
    return SECRETS.add(f"SECRET-MSG-{label}-{uuid.uuid4().hex[:10]}", "message text")


@pytest.fixture(scope="session", autouse=True)
def log_scan(tmp_path_factory):
    """Collect what the app logs during the session; at its end, fail if any registered secret was
    logged (in-process records, or any `*.log` file the fixtures' subprocesses wrote)."""
    collector = RecordCollector()
    root = logging.getLogger()
    level = root.level
    root.addHandler(collector)
    root.setLevel(min(level, logging.INFO))  # what a deployment logs (the worker runs at INFO)
    yield collector
    root.removeHandler(collector)
    root.setLevel(level)
    files = log_files(tmp_path_factory.getbasetemp())
    leaks = scan(collector, files)
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(SECRETS.kinds().items()))
    SUMMARY["log scan"] = (f"{len(collector.records)} log records and {len(files)} log files "
                           f"({', '.join(sorted({p.name for p in files}))}) scanned for {kinds}: "
                           f"{len(leaks)} leaks")
    assert not leaks, "secrets in the logs:\n" + "\n".join(str(leak) for leak in leaks[:20])


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("security suite")
        for topic, line in SUMMARY.items():
            terminalreporter.write_line(f"{topic}: {line}")


def pair(api, provider: Provider, name: str = "Studio Mac") -> Device:
    """Pair a new Mac to provider through the real flow (register → approve → verify); its code and
    token are registered secrets."""
    reg = api.post("/api/devices/register", json={"name": name, "hardwareId": f"HW-{uuid.uuid4()}",
                                                  "platform": "macos", "osVersion": "14.5"})
    assert reg.status_code == 201, reg.text
    code = SECRETS.add(reg.json()["code"], "pairing code")
    approved = provider.post("/api/devices/approve", json={"code": code})
    assert approved.status_code == 200, approved.text
    verified = api.post("/api/devices/verify", json={"deviceId": reg.json()["deviceId"], "code": code})
    assert verified.status_code == 200, verified.text
    return Device(api, reg.json()["deviceId"], SECRETS.add(verified.json()["token"], "token"))


@pytest.fixture
def make_provider(api):
    """make_provider(name) → a signed-up Provider whose password and token are registered secrets."""
    def make(name: str = "Ana") -> Provider:
        email = f"sec{next(_n)}-{uuid.uuid4().hex[:6]}@example.com"
        password = SECRETS.add(f"PW-{uuid.uuid4().hex[:12]}", "password")
        response = api.post("/api/auth/signup", json={"email": email, "password": password, "name": name})
        assert response.status_code == 201, response.text
        body = response.json()
        provider = Provider(api, email, SECRETS.add(body["token"], "token"), body["providerId"])
        provider.password = password
        return provider

    return make
