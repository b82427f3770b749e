"""The same attacks through the web UI (Reflex events over the websocket, in Debian's chromium): the
limits live in the services, so the browser path is held exactly like the API path.

The page sends a client's events one at a time, in order, so the last submit below is handled after
every guess before it, whatever the timing of the screen updates."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import urlparse

import httpx
import sqlalchemy as sa
from playwright.sync_api import expect

from convassist.models import TrainingJob

from convassist.services import accounts, devices
from tests.security.conftest import SECRETS
from tests.ui.conftest import SHOTS, log_in


def test_pairing_codes_cannot_be_guessed_through_the_devices_page(live_app, signed_in):
    page, _, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=10)
    victim_mac = api.post("/api/devices/register", json={"name": "Victim Mac", "hardwareId": f"HW-{uuid.uuid4()}",
                                                         "platform": "macos", "osVersion": "15.1"}).json()
    code = SECRETS.add(victim_mac["code"], "pairing code")
    page.click("#nav-devices")
    expect(page.locator("#install-command")).to_have_text(f"agent/install.sh {live_app} --allow-http")

    guesses = [c for c in (f"{i:06d}" for i in range(200_000, 200_010)) if c != code]
    for guess in guesses[:devices.APPROVE_FAILURES_PER_ACCOUNT.count]:
        page.fill("#pairing-code", guess)
        page.click("#pairing-submit")
        expect(page.locator("#devices-error")).to_contain_text("No Mac is waiting with this code")
    page.fill("#pairing-code", code)  # the right code, after the budget is spent
    page.click("#pairing-submit")
    expect(page.locator("#devices-error")).to_contain_text("Too many wrong codes. Try again in 10 minutes")
    expect(page.locator("#devices-notice")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "pairing-guesses-refused.png"))
    poll = api.post("/api/devices/verify", json={"deviceId": victim_mac["deviceId"], "code": code})
    assert poll.status_code == 403 and poll.json()["error"] == "authorization_pending"


def test_passwords_cannot_be_guessed_through_the_login_page(live_app, page, db):
    api = httpx.Client(base_url=live_app, timeout=10)
    email, password = f"ana-{uuid.uuid4().hex[:6]}@example.com", SECRETS.add(f"PW-{uuid.uuid4().hex}", "password")
    assert api.post("/api/auth/signup", json={"email": email, "password": password, "name": "Ana"}).status_code == 201
    page.goto(live_app + "/login")
    for i in range(accounts.LOGIN_FAILURES_PER_ACCOUNT.count):
        page.fill("#email", email)
        page.fill("#password", f"guess number {i}")
        page.click("#login-submit")
        expect(page.locator("#auth-error")).to_contain_text("Wrong email or password")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login-submit")
    expect(page.locator("#auth-error")).to_contain_text("Too many failed sign-ins. Try again in 15 minutes")
    expect(page).to_have_url(re.compile(r"/login/?$"))
    page.screenshot(path=str(SHOTS / "login-guesses-refused.png"))


EVENT_FRAME = "42/_event,"  # socket.io: an event message in Reflex's /_event namespace
CONNECT_FRAME = "40/_event,"  # socket.io: the namespace's CONNECT, whose auth carries the page's hydrate event


class ForgedEvents:
    """Routes the page's Reflex socket through the test, as an attacker's own browser could: it can
    send any event to any handler, with any arguments, on the page's live session."""

    def __init__(self, page):
        self.template: dict | None = None
        self.server = None
        page.route_web_socket(re.compile(r".*/_event.*"), self._route)

    def _route(self, ws) -> None:
        self.template = None  # a new page's socket: wait for its own first event
        self.server = ws.connect_to_server()

        def from_page(frame) -> None:
            if isinstance(frame, str) and frame.startswith(EVENT_FRAME):  # the page's own event: its router data
                self.template = json.loads(frame[len(EVENT_FRAME):])[1]
            elif isinstance(frame, str) and frame.startswith(CONNECT_FRAME):  # its hydrate rides the CONNECT
                self.template = json.loads(frame[len(CONNECT_FRAME):]).get("event") or self.template
            self.server.send(frame)

        ws.on_message(from_page)  # what the server sends goes to the page unchanged

    def send(self, page, handler: str, payload: dict, *, address: tuple[str, str] | None = None) -> None:
        """Call handler ("<state full name>.<method>") with payload on the page's session; address
        (old, new) rewrites the page address the event claims to come from."""
        deadline = time.monotonic() + 15
        # the page sends its first events when it mounts; until then the template (and the socket) can
        # still be the previous page's, whose socket is closed: wait for one sent from this page's path
        while (self.template or {}).get("router_data", {}).get("pathname") != urlparse(page.url).path:
            assert time.monotonic() < deadline, "the page sent no event"
            page.wait_for_timeout(50)
        template = self.template
        if address is not None:
            template = json.loads(json.dumps(template).replace(*address))
        event = {**template, "name": handler, "payload": payload}
        self.server.send(EVENT_FRAME + json.dumps(["event", event]))


def test_reflex_handlers_given_another_providers_ids_reach_nothing(live_app, page, db):
    from convassist.state.conversations import ConversationState
    from convassist.state.devices import DevicesState
    from convassist.state.training import TrainingState

    forged = ForgedEvents(page)
    api = httpx.Client(base_url=live_app, timeout=20)

    def account(name: str) -> tuple[dict, str, str]:
        email, password = f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com", f"PW-{uuid.uuid4().hex}"
        SECRETS.add(password, "password")
        body = api.post("/api/auth/signup", json={"email": email, "password": password, "name": name}).json()
        return {"Authorization": f"Bearer {SECRETS.add(body['token'], 'token')}"}, email, password

    # the victim, through the API: a paired Mac with a conversation, a sample, a finished training job
    ana, _, _ = account("Ana")
    reg = api.post("/api/devices/register", json={"name": "Ana's Mac", "hardwareId": f"HW-{uuid.uuid4()}",
                                                  "platform": "macos"}).json()
    assert api.post("/api/devices/approve", json={"code": reg["code"]}, headers=ana).status_code == 200
    mac = api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]}).json()["token"]
    secret = SECRETS.add(f"SECRET-MSG-forged-{uuid.uuid4().hex[:8]}", "message text")
    assert api.post("/api/sync/messages", headers={"Authorization": f"Bearer {mac}"}, json={
        "conversationId": "iMessage;-;+15550002222", "participants": ["+15550002222"], "messages": [
            {"imessageGuid": "fg-1", "senderId": "+15550002222", "direction": "incoming", "text": secret,
             "sentAt": "2026-11-20T09:00:00Z"}]}).status_code == 200
    sample = api.post("/api/training/samples", headers=ana, json={"inputContext": "Them: hi\nMe:",
                                                                  "expectedOutput": "Hello!"}).json()["id"]
    [conversation] = api.get("/api/conversations", headers=ana).json()["items"]
    job = uuid.uuid4()
    with db.begin() as conn:  # a finished job whose adapter could be activated
        conn.execute(sa.insert(TrainingJob).values(
            id=job, provider_id=uuid.UUID(api.get("/api/auth/me", headers=ana).json()["id"]),
            base_model="smollm2-135m-instruct", status="completed", progress=100.0, epochs=1, learning_rate=1e-3,
            lora_rank=8, eval_fraction=0.2, sample_count=8, metrics={}, is_active=False,
            output_path="/nonexistent/adapter.gguf"))

    # the attacker, in the browser
    mallory, email, password = account("Mallory")
    log_in(page, live_app, email, password)

    page.goto(live_app + "/devices")
    expect(page.locator("#page-title")).to_have_text("Devices")
    devices_state = DevicesState.get_full_name()
    for hostile in (reg["deviceId"], {"$ne": None}, None, "x" * 100_000):
        forged.send(page, f"{devices_state}.deactivate", {"device_id": hostile})
        expect(page.locator("#devices-error")).to_contain_text("No such device")
    forged.send(page, f"{devices_state}.approve", {"form": ["not", "a", "form"]})
    expect(page.locator("#devices-error")).to_contain_text("6-digit code")

    page.goto(live_app + "/training")
    expect(page.locator("#page-title")).to_have_text("Training")
    training_state = TrainingState.get_full_name()
    for handler, payload, says in (
            (".delete_sample", {"sample_id": sample}, "No such sample"),
            (".activate", {"job_id": str(job)}, "No such training job"),
            (".activate", {"job_id": {"id": str(job)}}, "No such item"),
            (".add_sample", {"form": "junk"}, "input_context"),
            (".delete_sample", {"sample_id": ["a"] * 1000}, "No such item"),
            # input limits hold on the UI path too: no hour-long job from a hand-made event
            (".start_training", {"form": {"epochs": "500", "lora_rank": "100000"}}, "epochs")):
        forged.send(page, training_state + handler, payload)
        expect(page.locator("#training-error")).to_contain_text(says)

    # the victim's conversation by its address: not found, and nothing of it on the page
    page.goto(f"{live_app}/conversations/{conversation['id']}")
    expect(page.get_by_text("This conversation does not exist")).to_be_visible()
    assert secret not in page.content()
    page.screenshot(path=str(SHOTS / "forged-events-refused.png"))
    conversation_state = ConversationState.get_full_name()

    # from a conversation of her own, claiming to be on the victim's: the handler acts on the
    # conversation the page loaded (kept server-side), never on an address the event claims
    mallory_reg = api.post("/api/devices/register", json={"name": "M's Mac", "hardwareId": f"HW-{uuid.uuid4()}",
                                                          "platform": "macos"}).json()
    assert api.post("/api/devices/approve", json={"code": mallory_reg["code"]}, headers=mallory).status_code == 200
    mallory_mac = api.post("/api/devices/verify", json={"deviceId": mallory_reg["deviceId"],
                                                        "code": mallory_reg["code"]}).json()["token"]
    assert api.post("/api/sync/messages", headers={"Authorization": f"Bearer {mallory_mac}"}, json={
        "conversationId": "iMessage;-;+15550003333", "participants": ["+15550003333"], "messages": [
            {"imessageGuid": "fm-1", "senderId": "+15550003333", "direction": "incoming", "text": "hello",
             "sentAt": "2026-11-20T09:00:00Z"}]}).status_code == 200
    [own] = api.get("/api/conversations", headers=mallory).json()["items"]
    page.goto(f"{live_app}/conversations/{own['id']}")
    expect(page.locator("#mark-handled")).to_be_visible()
    forged.send(page, f"{conversation_state}.mark_handled", {}, address=(own["id"], conversation["id"]))
    expect(page.get_by_text("Marked as handled: off your Needs reply list until +1 555-000-3333")).to_be_visible()
    assert "555-000-2222" not in page.content() and secret not in page.content()
    for hostile in ("../../../etc/passwd", ["Europe/Paris"], {"$ne": None}, "x" * 100_000):
        forged.send(page, f"{conversation_state}.set_timezone", {"timezone": hostile})
    expect(page.locator(".day-separator")).to_have_count(1)  # the page still works, days in UTC

    # and Ana's data is as it was
    assert api.get("/api/conversations?needsReply=true", headers=ana).json()["total"] == 1
    assert [d["active"] for d in api.get("/api/devices", headers=ana).json()] == [True]
    assert api.get("/api/training/samples", headers=ana).json()["total"] == 1
    assert api.get(f"/api/training/jobs/{job}", headers=ana).json()["active"] is False


def test_a_password_typed_before_the_page_is_ready_never_lands_in_a_url(live_app, browser):
    """The login and sign-up pages arrive as HTML before the app takes over the form. A person quick on
    Enter (or a slow phone) used to submit it natively: a GET to /login/?email=…&password=… — the
    password in the address bar, the browser's history and the server's access log. Here the page is
    held at that moment for good (no JavaScript)."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        for path, button in (("/login", "#login-submit"), ("/signup", "#signup-submit")):
            page.goto(live_app + path)
            if path == "/signup":
                page.fill("#name", "Quick Typer")
            page.fill("#email", "quick@example.com")
            page.fill("#password", "PW-typed-too-early")
            expect(page.locator(button)).to_be_disabled()
            page.press("#password", "Enter")
            page.wait_for_timeout(500)
            assert "PW-typed-too-early" not in page.url and "password" not in page.url, page.url
    finally:
        context.close()
