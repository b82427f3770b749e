"""The browser walk of a new provider: sign up, dashboard, navigation, reload, log out, log in."""

import re
import uuid

from playwright.sync_api import expect

from tests.ui.conftest import SHOTS, log_in


def log_out(page, *, everywhere: bool = False) -> None:
    """The account menu's "Log out" (this browser) or "Log out everywhere"."""
    page.locator("#logout").first.click()
    page.click("#logout-everywhere" if everywhere else "#logout-here")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_signup_login_logout_and_guarded_pages(live_app, page, db):
    email = f"provider-{uuid.uuid4().hex[:8]}@example.com"

    # no session: any page sends you to login
    page.goto(live_app + "/devices")
    expect(page).to_have_url(re.compile(r"[^/]/login\?next=%2Fdevices$"))
    expect(page.locator("#page-title")).to_have_text("Log in")

    page.click("#to-signup")
    expect(page).to_have_url(re.compile(r"/signup$"))
    page.fill("#name", "Ana Stylist")
    page.fill("#email", email)
    page.fill("#password", "correct horse battery")
    page.click("#signup-submit")

    # the empty dashboard, with one navigation to every area
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#page-title")).to_have_text("Inbox")
    expect(page.locator("#provider-name")).to_have_text("Ana Stylist")
    expect(page.get_by_text("No Mac yet.")).to_be_visible()
    expect(page.get_by_text("No conversations yet")).to_be_visible()
    for area in ("inbox", "devices", "conversations", "training"):
        expect(page.locator(f"#nav-{area}")).to_be_visible()

    page.click("#nav-devices")
    expect(page).to_have_url(re.compile(r"/devices$"))
    expect(page.locator("#page-title")).to_have_text("Devices")

    # the session survives a reload
    page.reload()
    expect(page.locator("#page-title")).to_have_text("Devices")
    expect(page.locator("#provider-name")).to_have_text("Ana Stylist")

    log_out(page)
    page.goto(live_app + "/training")
    # the login page (one slash, no "/login/") remembers the page asked for …
    expect(page).to_have_url(re.compile(r"[^/]/login\?next=%2Ftraining$"))

    # a wrong password says so; the right one logs in
    page.fill("#email", email)
    page.fill("#password", "wrong password")
    page.click("#login-submit")
    expect(page.locator("#auth-error")).to_contain_text("Wrong email or password")
    page.fill("#password", "correct horse battery")
    page.click("#login-submit")
    # … and goes there after logging in
    expect(page.locator("#page-title")).to_have_text("Training")
    expect(page).to_have_url(re.compile(r"/training$"))


def test_log_out_everywhere_ends_the_other_browsers_session(live_app, browser, signed_in):
    page, email, password = signed_in
    other = browser.new_context()
    laptop = other.new_page()
    laptop.set_default_timeout(15000)
    try:
        log_in(laptop, live_app, email, password)

        log_out(page, everywhere=True)

        # the other browser still holds its token, but the server no longer accepts it
        laptop.goto(live_app + "/devices")
        expect(laptop).to_have_url(re.compile(r"/login\?next=%2Fdevices$"))
        expect(laptop.locator("#page-title")).to_have_text("Log in")
        laptop.screenshot(path=str(SHOTS / "logged-out-everywhere.png"))
    finally:
        other.close()


def test_phone_sized_window_shows_the_top_bar(live_app, browser, db):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(live_app + "/signup")
        page.fill("#name", "Bo")
        page.fill("#email", f"bo-{uuid.uuid4().hex[:8]}@example.com")
        page.fill("#password", "correct horse battery")
        page.click("#signup-submit")
        expect(page.locator("#page-title")).to_have_text("Inbox")
        # labelled navigation, the current page marked
        for name in ("Inbox", "Conversations", "Devices", "Training"):
            expect(page.locator(f"#tab-{name.lower()}")).to_have_text(name)
        expect(page.locator("#tab-inbox")).to_have_attribute("aria-current", "page")
        expect(page.locator("#tab-training")).to_have_attribute("aria-current", "false")
        page.click("#tab-training")
        expect(page.locator("#tab-training")).to_have_attribute("aria-current", "page")
        # nothing wider than the screen
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
    finally:
        context.close()


def test_health_through_the_running_app(live_app):
    import httpx

    body = httpx.get(live_app + "/api/health", timeout=10).json()
    assert body["status"] == "ok", body
    assert httpx.get(live_app + "/api/docs", timeout=10).status_code == 200


def test_logging_out_leaves_nothing_of_the_account_in_the_tab(live_app, page, db):
    """After "Log out", whoever uses the tab next (a reload of the login page, another account logging in)
    receives nothing the account's pages had read: the page state used to keep the inbox's message previews,
    and every page load sent it to the browser again."""
    import httpx

    from tests.ui.conftest import provider_with_mac

    secret = f"Secret parking code {uuid.uuid4().hex[:8]}"
    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, mac = provider_with_mac(api)
    synced = api.post("/api/sync/messages", headers=mac, json={
        "conversationId": "chat-1", "displayName": "Olga", "participants": ["+15550001111"], "messages": [
            {"imessageGuid": "o1", "senderId": "+15550001111", "direction": "incoming", "text": secret,
             "sentAt": "2026-11-30T10:00:00Z"}]})
    assert synced.status_code == 200, synced.text
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))

    log_in(page, live_app, email, password)
    expect(page.locator(".inbox-row")).to_contain_text(secret)
    page.click("#nav-conversations")
    expect(page.locator("#page-title")).to_have_text("Conversations")
    expect(page.get_by_text("Olga")).to_be_visible()
    assert any(secret in frame for frame in frames)  # what the check below looks for does travel this way

    log_out(page)
    frames.clear()
    page.reload()
    expect(page.locator("#page-title")).to_have_text("Log in")
    page.wait_for_timeout(1000)  # the page's state has arrived (and any late frame with it)
    assert frames and not any(secret in frame for frame in frames)

    page.click("#to-signup")
    page.fill("#name", "Next Person")
    page.fill("#email", f"next-{uuid.uuid4().hex[:8]}@example.com")
    page.fill("#password", "correct horse battery")
    page.click("#signup-submit")
    expect(page.locator("#page-title")).to_have_text("Inbox")
    page.click("#nav-conversations")
    expect(page.locator("#page-title")).to_have_text("Conversations")
    page.wait_for_timeout(1000)
    expect(page.get_by_text(secret)).to_have_count(0)
    assert not any(secret in frame for frame in frames)
    page.screenshot(path=str(SHOTS / "next-person-after-log-out.png"), full_page=True)


def test_logging_out_resets_every_page_state():
    """Logging out resets every page state of the app (auth.page_states: this app's states as Reflex lists them),
    one added later too."""
    import importlib
    import inspect
    import pkgutil

    import reflex as rx

    import convassist.state
    from convassist.state.auth import AuthState, page_states

    defined = set()
    for module in pkgutil.iter_modules(convassist.state.__path__):
        loaded = importlib.import_module(f"convassist.state.{module.name}")
        defined |= {cls for _, cls in inspect.getmembers(loaded, inspect.isclass)
                    if issubclass(cls, rx.State) and cls.__module__ == loaded.__name__}
    assert defined - {AuthState} == set(page_states()) and len(defined) == 6
