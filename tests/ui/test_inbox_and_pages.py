"""The home page as an inbox, pages pushed live instead of polled, and every page at laptop and phone
sizes in light and dark: labelled navigation, titles, icons, no sideways scroll, screenshots."""

import re
import time
from urllib.parse import quote
from datetime import datetime, timedelta, timezone

import httpx
import sqlalchemy as sa
from playwright.sync_api import expect

from convassist.models import Device
from tests.fixtures.voice_samples import samples
from tests.ui.conftest import SHOTS, log_in, provider_with_mac


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def sync(api, mac, chat, name, *messages):
    response = api.post("/api/sync/messages", headers=mac, json={
        "conversationId": chat, "displayName": name, "participants": [chat], "messages": list(messages)})
    assert response.status_code == 200, response.text


def incoming(guid, text, when):
    return {"imessageGuid": guid, "senderId": "+15550009999", "direction": "incoming", "text": text,
            "sentAt": iso(when)}


def test_the_inbox_lists_who_waits_longest_first_with_one_click_suggestions(live_app, page, db):
    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, mac = provider_with_mac(api)
    now = datetime.now(timezone.utc)
    sync(api, mac, "chat-new", "Newest Nell", incoming("n1", "Can I come at 5 today?", now - timedelta(minutes=5)))
    sync(api, mac, "chat-old", "Oldest Olga", incoming("o1", "Do you have parking?", now - timedelta(hours=3)))
    sync(api, mac, "chat-done", "Done Dana", incoming("d1", "Thanks!", now - timedelta(hours=5)),
         {"imessageGuid": "d2", "direction": "outgoing", "text": "Anytime!", "sentAt": iso(now - timedelta(hours=4))})
    log_in(page, live_app, email, password)

    rows = page.locator(".inbox-row")
    expect(rows).to_have_count(2)  # Dana was answered
    expect(rows.first).to_contain_text("Oldest Olga")  # waiting longest first
    expect(rows.last).to_contain_text("Newest Nell")
    expect(page.locator("#waiting-total")).to_have_text("2")
    expect(page.locator(".device-health")).to_contain_text("Synced")
    expect(page.locator("#model-words")).to_contain_text("the small built-in model")
    expect(page.locator("#voice-words")).to_contain_text("Not tuned to your voice yet")
    page.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)

    # a new client message lands in the open inbox, pushed
    started = time.monotonic()
    sync(api, mac, "chat-pat", "Pat", incoming("p1", "Are you open Sunday?", now - timedelta(minutes=1)))
    expect(rows).to_have_count(3, timeout=1500)
    print(f"inbox updated {time.monotonic() - started:.2f}s after the sync")

    # a fresh client message had its suggestions computed ahead: opening the conversation shows them
    # without pressing anything (pushed in, if the worker is still writing them)
    rows.filter(has_text="Newest Nell").locator("a").first.click()
    expect(page.locator("#page-title")).to_have_text("Newest Nell")
    expect(page.locator(".suggestion").first).to_be_visible(timeout=30000)
    page.screenshot(path=str(SHOTS / "suggestions-ready-on-open.png"))
    page.click("#nav-inbox")
    expect(page.locator("#page-title")).to_have_text("Inbox")

    # one click: the conversation opens and its suggestions come without another click; until the server
    # has read it, the page shows neither Nell's name nor her cards (what the state held before)
    olga = rows.filter(has_text="Oldest Olga")
    href = olga.locator("a:has(.inbox-suggest)").get_attribute("href")
    assert re.fullmatch(r"/conversations/[0-9a-f-]{36}\?suggest=1", href), href
    olga.locator(".inbox-suggest").click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator("#page-title")).not_to_have_text("Newest Nell", timeout=500)
    expect(page.locator("#page-title")).to_have_text("Oldest Olga")
    expect(page.locator(".suggestion").first).to_be_visible(timeout=30000)
    # the navigation marks where the person is (a conversation is under Conversations)
    expect(page.locator("#nav-conversations")).to_have_attribute("aria-current", "page")

    # the Mac goes quiet for 20 minutes, then is deactivated: the inbox says so, in words
    with db.begin() as conn:
        conn.execute(sa.update(Device).where(Device.name == "Mac", Device.active.is_(True))
                     .values(last_sync_at=now - timedelta(minutes=20)))
    page.click("#nav-inbox")
    expect(page.locator(".device-problem")).to_contain_text("No sync for 20 minutes")
    page.click("#nav-devices")
    page.locator(".deactivate").first.click()
    page.click("#confirm-deactivate")
    page.click("#nav-inbox")
    expect(page.locator(".device-problem")).to_contain_text("Deactivated")


def test_an_open_page_is_pushed_through_another_app_instance_and_never_polls(live_app, page, db, api_server):
    """The sync goes to a second app process (as behind a load balancer); the page open on the first
    updates within a second. While nothing changes, the page sends no events at all."""
    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, mac = provider_with_mac(api)
    log_in(page, live_app, email, password)
    page.click("#nav-conversations")
    expect(page.locator("#page-title")).to_have_text("Conversations")
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(str(payload))))
    page.reload()  # the socket opens again, now observed
    expect(page.locator("#page-title")).to_have_text("Conversations")
    page.wait_for_timeout(1000)
    frames.clear()
    page.wait_for_timeout(12000)
    events = [f for f in frames if "event" in f or "convassist" in f.lower()]
    assert events == [], events[:3]  # no timer: nothing goes to the server while nothing changes
    page.fill("#conversation-search", "hello")  # … while an action does (the observer sees events)
    page.wait_for_timeout(1000)
    assert any("set_query" in f for f in frames), frames[:5]
    page.fill("#conversation-search", "")

    other_api = httpx.Client(base_url=api_server.url, timeout=30)
    started = time.monotonic()
    sync(other_api, mac, "chat-far", "Far Away", incoming("f1", "Hello from the other app", datetime.now(timezone.utc)))
    expect(page.locator(".conversation-row")).to_have_count(1, timeout=1500)
    print(f"pushed through another app process in {time.monotonic() - started:.2f}s")


def test_every_page_at_laptop_and_phone_size_in_light_and_dark(live_app, browser, db):
    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, mac = provider_with_mac(api)
    token = api.post("/api/auth/login", json={"email": email, "password": password}).json()["token"]
    now = datetime.now(timezone.utc)
    sync(api, mac, "+15551230077", "Riley", incoming("r1", "Hi! Could I move my appointment to Friday afternoon?",
                                                     now - timedelta(hours=2)))
    for prompt, reply in samples()[:9]:
        api.post("/api/training/samples", headers={"Authorization": f"Bearer {token}"},
                 json={"inputContext": prompt, "expectedOutput": reply}).raise_for_status()
    conversation = api.get("/api/conversations", headers={"Authorization": f"Bearer {token}"}).json()["items"][0]

    # icons and the web manifest are served and linked
    manifest = api.get("/manifest.webmanifest")
    assert manifest.status_code == 200 and manifest.json()["name"] == "ConvAssist"
    for icon in ("/icon.svg", "/icon-192.png", "/icon-512.png", "/favicon.png"):
        assert api.get(icon).status_code == 200, icon

    pages = {"inbox": ("/", "Inbox"), "conversations": ("/conversations", "Conversations"),
             "conversation": (f"/conversations/{conversation['id']}", "Riley"),
             "devices": ("/devices", "Devices"), "training": ("/training", "Training")}
    paints = {}
    for width, height in ((1280, 800), (390, 844)):
        for scheme in ("light", "dark"):
            context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
            page = context.new_page()
            page.set_default_timeout(15000)
            try:
                log_in(page, live_app, email, password)
                expect(page.locator("link[rel=manifest]")).to_have_count(1)
                expect(page.locator("link[rel=icon]").first).to_have_attribute("href", "/icon.svg")
                expect(page.get_by_role("button", name="Switch between light and dark theme").first).to_be_attached()
                for name, (path, title) in pages.items():
                    started = time.monotonic()
                    page.goto(live_app + path)
                    expect(page.locator("#page-title")).to_have_text(title)
                    paints.setdefault(name, []).append(time.monotonic() - started)
                    assert page.title().endswith("ConvAssist"), page.title()
                    page.screenshot(path=str(SHOTS / f"page-{name}-{width}-{scheme}.png"), full_page=True)
                    # nothing wider than the window (the training samples included)
                    assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
            finally:
                context.close()
    print("first useful paint (s): " + ", ".join(f"{k} {min(v):.2f}–{max(v):.2f}" for k, v in paints.items()))


def test_login_returns_only_to_a_page_of_this_site(live_app, page, db):
    """`?next=` leads back to the page asked for; anything pointing away goes to the inbox instead."""
    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, _ = provider_with_mac(api)
    for hostile in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
                    "%2F%2Fevil.example", "/login?next=//evil.example"):
        page.goto(live_app + "/login?next=" + quote(hostile, safe=""))
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("#login-submit")
        expect(page.locator("#page-title")).to_have_text("Inbox")
        assert page.url.startswith(live_app), (hostile, page.url)
        page.locator("#logout").first.click()
        page.click("#logout-here")
        expect(page).to_have_url(re.compile(r"/login$"))
