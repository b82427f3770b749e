"""Browser helpers."""

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT

# what the person saw, for a human to look at after a run (CONVASSIST_SCREENSHOTS to keep them elsewhere)
SHOTS = Path(os.environ.get("CONVASSIST_SCREENSHOTS", Path(tempfile.gettempdir()) / "convassist-screenshots"))
SHOTS.mkdir(parents=True, exist_ok=True)

# what a page shows after its load event (the provider's name, a list) comes over the socket once the page
# has connected: on a busy 2-core machine that once took longer than Playwright's 5 s default for
# expectations (the sidebar's name after a reload, in CI). They wait as long as the page's actions (15 s,
# tests/conftest.py); an expectation that must hold sooner says so with its own timeout.
expect.set_options(timeout=15_000)


def log_in(page, base: str, email: str, password: str) -> None:
    """Log in through the login page and land on the Inbox."""
    page.goto(base + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-submit")
    expect(page.locator("#page-title")).to_have_text("Inbox")


@pytest.fixture
def signed_in(live_app, page, db):
    """A page logged in as a fresh provider; returns (page, email, password)."""
    email, password = f"ui-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    page.goto(live_app + "/signup")
    page.fill("#name", "Ana Stylist")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#signup-submit")
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#page-title")).to_have_text("Inbox")
    return page, email, password


def app_copy(where: Path) -> Path:
    """A directory to run the app from with its own .web (Reflex rebuilds .web at start: building
    into the checkout's would pull the files from under the session's running app)."""
    where.mkdir()
    shutil.copytree(ROOT / ".web", where / ".web", symlinks=True)
    shutil.copytree(ROOT / "reflex.lock", where / "reflex.lock")
    shutil.copy(ROOT / "rxconfig.py", where / "rxconfig.py")
    for package in ("convassist", "ml"):  # the code itself is only read
        (where / package).symlink_to(ROOT / package)
    return where


def provider_with_mac(api) -> tuple[str, str, dict]:
    """A provider signed up through the API (api: an httpx client on the app) with a paired Mac;
    returns (email, password, the Mac's auth headers)."""
    email, password = f"ui-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery"
    token = api.post("/api/auth/signup", json={"email": email, "password": password, "name": "Ana"}).json()["token"]
    reg = api.post("/api/devices/register", json={"name": "Mac", "hardwareId": f"HW-{uuid.uuid4()}"}).json()
    approved = api.post("/api/devices/approve", json={"code": reg["code"]}, headers={"Authorization": f"Bearer {token}"})
    assert approved.status_code == 200, approved.text  # the error code says why (a flake once failed here)
    mac = api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]}).json()["token"]
    return email, password, {"Authorization": f"Bearer {mac}"}
