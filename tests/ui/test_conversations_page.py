"""Conversations in the browser: list, search, live updates, a big conversation, suggest → edit → accept."""

import re
import time
import uuid

import httpx
import sqlalchemy as sa
from playwright.sync_api import expect

from convassist.models import TrainingSample
from tests.ui.conftest import SHOTS, log_in, provider_with_mac


def clipboard(page, expected: str, timeout: float = 5.0) -> str:
    """The clipboard's text once it is `expected` (the page writes it just after showing the card),
    or what it holds when the wait ends."""
    deadline = time.monotonic() + timeout
    while (text := page.evaluate("navigator.clipboard.readText()")) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return text


def paired_device(api: httpx.Client, page) -> dict:
    reg = api.post("/api/devices/register", json={"name": "Mac", "hardwareId": f"HW-{time.time_ns()}"}).json()
    page.goto(page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/devices")
    page.fill("#pairing-code", reg["code"])
    page.click("#pairing-submit")
    expect(page.locator("#devices-notice")).to_be_visible()
    token = api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def sync(api, headers, chat, name, messages):
    response = api.post("/api/sync/messages", headers=headers, json={
        "conversationId": chat, "displayName": name, "participants": [chat], "messages": messages})
    assert response.status_code == 200, response.text


def msg(guid, text, direction="incoming", sent="2026-11-20T09:00:00Z"):
    return {"imessageGuid": guid, "senderId": "+15550001111" if direction == "incoming" else None,
            "direction": direction, "text": text, "sentAt": sent}


def test_suggest_stream_edit_accept(live_app, signed_in, db):
    page, _, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=30)
    headers = paired_device(api, page)
    sync(api, headers, "chat-carla", "Carla", [
        msg("c1", "Hi! Do you have time for a trim this week?", sent="2026-11-20T09:00:00Z"),
        msg("c2", "I do! Thursday or Friday?", "outgoing", sent="2026-11-20T09:05:00Z"),
        msg("c3", "Friday afternoon would be perfect", sent="2026-11-20T09:06:00Z")])
    sync(api, headers, "chat-bo", "Bo", [msg("b1", "Thanks, see you!", "outgoing", sent="2026-11-19T09:00:00Z")])

    page.click("#nav-conversations")
    rows = page.locator(".conversation-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Carla")
    expect(rows.first).to_contain_text("Needs reply")

    # search and the needs-reply filter
    page.fill("#conversation-search", "see you")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Bo")
    # the preview line shows whole (a trimmed line box used to cut its descenders)
    assert rows.first.locator(".conversation-preview").evaluate("e => e.scrollHeight <= e.clientHeight")
    page.fill("#conversation-search", "no such words anywhere")
    expect(rows).to_have_count(0)
    expect(page.get_by_text("No conversation matches this search or filter.")).to_be_visible()
    page.fill("#conversation-search", "")
    expect(rows).to_have_count(2)
    page.screenshot(path=str(SHOTS / "conversation-list.png"))
    page.click("#needs-reply-filter")
    expect(rows).to_have_count(1)
    page.click("#needs-reply-filter")

    # a newly synced conversation appears without a reload, pushed within a second (nothing polls)
    started = time.monotonic()
    sync(api, headers, "chat-dee", "Dee", [msg("d1", "Are you open Sunday?", sent="2026-11-21T09:00:00Z")])
    expect(rows).to_have_count(3, timeout=1500)
    print(f"synced conversation shown after {time.monotonic() - started:.2f}s")
    expect(rows.first).to_contain_text("Dee")

    page.locator(".conversation-row", has_text="Carla").click()
    expect(page).to_have_url(re.compile(r"/conversations/[0-9a-f-]{36}$"))
    expect(page.locator(".bubble-them")).to_have_count(2)
    expect(page.locator(".bubble-me")).to_have_count(1)

    # record every text the streaming area shows, to see the reply arrive token by token
    # (and every state of the Suggest button: its label while it works, and whether it can be pressed)
    page.evaluate("""() => {
        window.__streamed = []; window.__button = [];
        new MutationObserver(() => {
            const el = document.getElementById('streamed-text');
            if (el && el.textContent && window.__streamed.at(-1) !== el.textContent)
                window.__streamed.push(el.textContent);
            const button = document.getElementById('suggest');
            const state = button.textContent + (button.disabled ? ' (disabled)' : '');
            if (window.__button.at(-1) !== state) window.__button.push(state);
        }).observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
    }""")
    page.click("#suggest")
    suggestions = page.locator(".suggestion")
    expect(suggestions.first).to_be_visible(timeout=30000)
    assert 1 <= suggestions.count() <= 3
    streamed = page.evaluate("window.__streamed")
    assert streamed, "no streamed text was shown"
    states = page.evaluate("window.__button")
    assert "Writing… (disabled)" in states and states[-1] == "Suggest replies", states  # no double submit
    texts = suggestions.locator(".suggestion-text").all_text_contents()
    shown = streamed[-1].strip()
    assert any(t.startswith(shown) or shown.startswith(t[:10]) for t in texts)  # the streamed one is among them
    # confidence in words, the number on hover; most confident first, after those stating no made-up number
    badges = suggestions.locator(".confidence")
    assert set(badges.all_text_contents()) <= {"likely", "maybe", "long shot"}
    percents = [int(b.get_attribute("title").removeprefix("Confidence ").removesuffix("%")) for b in badges.all()]
    checked = [card.locator(".suggestion-check").count() > 0 for card in suggestions.all()]
    assert checked == sorted(checked), checked
    for flag in (False, True):
        group = [p for p, c in zip(percents, checked) if c == flag]
        assert group == sorted(group, reverse=True), (percents, checked)

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_app)
    edited = suggestions.count() - 1  # the last card: not the response's own reply when there are several
    card = suggestions.nth(edited)
    card.locator(".edit-suggestion").click()
    page.fill("#edit-draft", "Friday at 3pm works, see you then!")
    page.click("#save-edit")
    # what the person sees: their edit on the card, marked as the one copied, and what happened
    expect(card.locator(".suggestion-text")).to_have_text("Friday at 3pm works, see you then!")
    expect(card.locator(".chosen-badge")).to_have_text("Copied")
    expect(page.locator("#verdict")).to_contain_text("Your edit is saved and copied to your clipboard")
    assert clipboard(page, "Friday at 3pm works, see you then!") == "Friday at 3pm works, see you then!"
    page.screenshot(path=str(SHOTS / "suggestion-edited.png"))
    with db.connect() as conn:
        sample = conn.execute(sa.select(TrainingSample)).one()
    assert sample.source == "edited" and sample.expected_output == "Friday at 3pm works, see you then!"
    assert sample.input_context.endswith("Them: Friday afternoon would be perfect\nMe:")

    # opened again later: the suggestions and what was done with them, on the card that was edited,
    # nothing to press twice
    before = suggestions.locator(".suggestion-text").all_text_contents()
    page.reload()
    expect(page.locator(".suggestion.chosen .suggestion-text")).to_have_text("Friday at 3pm works, see you then!")
    expect(suggestions.nth(edited).locator(".chosen-badge")).to_be_visible()
    assert suggestions.locator(".suggestion-text").all_text_contents() == before
    expect(page.locator("#verdict")).to_contain_text("Your edit is saved")
    expect(page.locator(".accept-suggestion")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "suggestion-after-reload.png"))

    # asked again after a verdict: other replies (not that set back with live buttons); use the first
    expect(page.locator("#suggest")).to_have_text("Suggest other replies")
    page.click("#suggest")
    expect(page.locator(".accept-suggestion").first).to_be_visible(timeout=30000)
    expect(page.locator("#verdict")).to_have_count(0)
    expect(page.locator("#cached-badge")).to_have_count(0)
    assert suggestions.locator(".suggestion-text").all_text_contents() != before
    used = suggestions.first.locator(".suggestion-text").text_content()
    suggestions.first.locator(".accept-suggestion").click()
    expect(page.locator("#verdict")).to_contain_text("Copied to your clipboard: paste it into Messages")
    expect(suggestions.first.locator(".chosen-badge")).to_be_visible()
    expect(page.locator(".chosen-badge")).to_have_count(1)  # only the card that was used
    assert clipboard(page, used) == used


def test_five_thousand_messages_open_fast_and_page_back(live_app, signed_in):
    page, _, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=60)
    headers = paired_device(api, page)
    for b in range(5):
        sync(api, headers, "chat-big", "Big Talker", [
            msg(f"big-{b}-{i}", f"message {b * 1000 + i}", "incoming" if i % 2 else "outgoing",
                sent=f"2026-10-{1 + (b * 1000 + i) // 1440:02d}T{((b * 1000 + i) % 1440) // 60:02d}:"
                     f"{(b * 1000 + i) % 60:02d}:00Z") for i in range(1000)])
    page.goto(live_app + "/conversations")
    link = page.locator(".conversation-row", has_text="Big Talker")
    started = time.monotonic()
    link.click()
    newest = page.locator("#messages .bubble-them, #messages .bubble-me").last
    expect(newest).to_contain_text("message 4999")
    opened = time.monotonic() - started
    expect(newest).to_be_in_viewport()  # it opens at the newest message, not the oldest of the page
    page.screenshot(path=str(SHOTS / "conversation-opened-at-newest.png"))
    print(f"5,000-message conversation opened in {opened:.2f}s")
    assert opened < 3, f"opening took {opened:.2f}s"
    bubbles = page.locator("#messages .bubble-them, #messages .bubble-me")
    expect(bubbles).to_have_count(50)
    page.click("#load-older")
    expect(bubbles).to_have_count(100)
    expect(bubbles.first).to_contain_text("message 4900")


def test_a_suggestion_stating_a_number_nobody_gave_says_what_to_check_and_goes_last(live_app, signed_in, db):
    """The model made up a time and a price: that card comes after the one stating only what is known,
    and says which numbers to check, as they are written."""
    import uuid

    from convassist.models import GeneratedResponse, Message

    page, email, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=30)
    headers = paired_device(api, page)
    sync(api, headers, "chat-fay", "Fay", [msg("f1", "Can I come in on Friday for a trim?", sent="2026-11-20T09:00:00Z")])
    with db.begin() as conn:
        provider_id, message_id = conn.execute(sa.select(Message.provider_id, Message.id)
                                               .where(Message.imessage_guid == "f1")).one()
        made_up = {"text": "Sure, Friday at 10pm, it's $95 now", "confidence": 0.8,
                   "unsupported_numbers": ["10pm", "$95"]}
        known = {"text": "Friday works, see you then!", "confidence": 0.3, "unsupported_numbers": []}
        conn.execute(sa.insert(GeneratedResponse).values(
            id=uuid.uuid4(), provider_id=provider_id, message_id=message_id, prompt="p", params={},
            status="completed", response=made_up["text"], confidence=0.8, suggestions=[made_up, known],
            created_at=sa.func.now(), completed_at=sa.func.now()))
    page.click("#nav-conversations")
    page.locator(".conversation-row", has_text="Fay").click()
    cards = page.locator(".suggestion")
    expect(cards).to_have_count(2)
    expect(cards.first.locator(".suggestion-text")).to_have_text("Friday works, see you then!")
    expect(cards.first.locator(".suggestion-check")).to_have_count(0)
    expect(cards.nth(1).locator(".suggestion-check")).to_have_text(
        "Check 10pm, $95: not in this conversation or your past replies.")
    page.screenshot(path=str(SHOTS / "suggestion-check-numbers.png"))
    # using the second card uses that suggestion (its place in the response), not the first one shown
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_app)
    cards.nth(1).locator(".accept-suggestion").click()
    assert clipboard(page, made_up["text"]) == made_up["text"]


def test_a_conversation_marked_handled_leaves_needs_reply_until_the_client_writes_again(live_app, signed_in):
    page, _, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=30)
    headers = paired_device(api, page)
    sync(api, headers, "chat-eve", "Eve", [msg("e1", "Thanks so much for today!", sent="2026-11-20T09:00:00Z")])
    page.click("#nav-conversations")
    row = page.locator(".conversation-row", has_text="Eve")
    expect(row).to_contain_text("Needs reply")
    row.click()
    page.click("#mark-handled")
    expect(page.locator("#mark-handled")).to_have_count(0)
    # it says what it did
    expect(page.locator("#conversation-notice")).to_contain_text("Marked as handled")
    expect(page.locator("#conversation-notice")).to_contain_text("until Eve writes again")
    page.screenshot(path=str(SHOTS / "conversation-marked-handled.png"))

    page.click("#nav-conversations")
    expect(row).to_be_visible()
    expect(row).not_to_contain_text("Needs reply")
    page.click("#needs-reply-filter")
    expect(page.locator(".conversation-row")).to_have_count(0)
    page.click("#needs-reply-filter")

    # the client writes again while the conversation is open: the message appears in it and it needs
    # a reply again, pushed without a reload
    row.click()
    expect(page.locator(".bubble-them")).to_have_count(1)
    sync(api, headers, "chat-eve", "Eve", [msg("e2", "Oh, and can I book again next week?",
                                                sent="2026-11-21T09:00:00Z")])
    expect(page.locator(".bubble-them")).to_have_count(2, timeout=1500)
    expect(page.locator(".bubble-them").last).to_contain_text("book again next week")
    expect(page.locator("#mark-handled")).to_be_visible()
    page.click("#nav-conversations")
    expect(row).to_contain_text("Needs reply")


def test_people_are_shown_by_their_names_numbers_readable_avatars_with_initials(live_app, signed_in):
    page, _, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=30)
    headers = paired_device(api, page)
    assert api.post("/api/sync/contacts", headers=headers, json={"contacts": [
        {"phoneNumber": "+15551230003", "displayName": "Jordan Lee"}]}).status_code == 200
    sync(api, headers, "+15551230003", "Jordan", [msg("j1", "See you at 4?", sent="2026-11-20T09:00:00Z")])
    group = api.post("/api/sync/messages", headers=headers, json={
        "conversationId": "chat-group", "displayName": "Book club", "isGroup": True,
        "participants": ["+15551230003", "+15551230004"], "messages": [
            {"imessageGuid": "g1", "senderId": "+15551230004", "direction": "incoming", "text": "Who brings snacks?",
             "sentAt": "2026-11-21T09:00:00Z"},
            {"imessageGuid": "g2", "senderId": "+15551230003", "direction": "incoming", "text": "Me!",
             "sentAt": "2026-11-21T09:01:00Z"}]})
    assert group.status_code == 200, group.text
    page.click("#nav-conversations")
    jordan = page.locator(".conversation-row", has_text="See you at 4?")
    expect(jordan).to_contain_text("Jordan Lee")  # not the chat's "Jordan"
    expect(jordan.locator(".avatar")).to_contain_text("JL")
    page.screenshot(path=str(SHOTS / "conversation-list-people.png"))

    page.locator(".conversation-row", has_text="Book club").click()
    bubbles = page.locator(".bubble-them")
    expect(bubbles.first).to_contain_text("+1 555-123-0004")  # an unknown sender, readable
    expect(bubbles.last).to_contain_text("Jordan Lee")
    page.screenshot(path=str(SHOTS / "group-senders.png"))


def test_days_are_separated_in_the_persons_own_time_zone(live_app, browser, db):
    """Messages of 23:30 and 00:30 UTC on the same evening in New York sit under one day there."""
    from datetime import datetime, timedelta, timezone

    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    try:
        api = httpx.Client(base_url=live_app, timeout=30)
        email, password, mac = provider_with_mac(api)
        now = datetime.now(timezone.utc).replace(microsecond=0)
        sync(api, mac, "chat-tz", "Kim", [
            msg("t1", "Booked for Friday", sent="2026-11-20T23:30:00Z"),  # 18:30 in New York, Nov 20
            msg("t2", "Great, thanks", "outgoing", sent="2026-11-21T00:30:00Z"),  # 19:30 in New York, Nov 20
            msg("t3", "Running late!", sent=(now - timedelta(minutes=1)).isoformat().replace("+00:00", "Z"))])
        log_in(page, live_app, email, password)
        page.goto(live_app + "/conversations")
        page.locator(".conversation-row").first.click()
        separators = page.locator(".day-separator")
        expect(separators).to_have_count(2)
        expect(separators.first).to_have_text("Fri, Nov 20, 2026")
        expect(separators.last).to_have_text("Today")
        page.screenshot(path=str(SHOTS / "day-separators.png"))
    finally:
        context.close()


def test_a_conversation_opened_from_another_never_shows_the_one_open_before(live_app, page):
    """Opening a conversation reads it on the server; until that answer arrives (seconds on a busy box) the
    browser still holds the conversation open before. The page must show that it is opening, not the other
    conversation's name, messages and cards under the new address, where a person could use them. The
    server's answers are held back here (Playwright routes the page's socket) to make that window visible."""
    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, headers = provider_with_mac(api)
    sync(api, headers, "chat-ada", "Ada", [msg("a1", "Is the salon open on Monday?", sent="2026-11-20T09:00:00Z")])
    sync(api, headers, "chat-ben", "Ben", [msg("b1", "Can I bring my son along?", sent="2026-11-21T09:00:00Z")])

    held: list[tuple] = []  # (the page's side of the socket, a message the server sent) while holding
    holding = False

    def through(ws):
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(lambda message: held.append((ws, message)) if holding else ws.send(message))

    page.route_web_socket(re.compile(r"/_event"), through)
    log_in(page, live_app, email, password)
    page.click("#nav-conversations")
    page.locator(".conversation-row", has_text="Ada").click()
    expect(page.locator("#page-title")).to_have_text("Ada")
    expect(page.locator(".bubble-them")).to_contain_text("open on Monday")
    page.click("#nav-conversations")
    ben = page.locator(".conversation-row", has_text="Ben")
    href = ben.get_attribute("href")

    holding = True
    ben.click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))
    expect(page.locator("#conversation-opening")).to_be_visible()
    expect(page.locator("#conversation-opening")).to_contain_text("Opening the conversation")
    expect(page.locator("#page-title")).to_have_text("Conversation")  # not Ada
    expect(page.locator(".bubble-them")).to_have_count(0)
    expect(page.locator("#suggestions-panel")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "conversation-opening.png"))
    assert held, "the server's answer to opening Ben was not held: the window was not shown"

    holding = False
    for ws, message in held:
        ws.send(message)
    expect(page.locator("#page-title")).to_have_text("Ben")
    expect(page.locator(".bubble-them")).to_have_count(1)
    expect(page.locator(".bubble-them")).to_contain_text("bring my son")
    expect(page.locator("#conversation-opening")).to_have_count(0)

    # an address of no conversation of this provider's says so (and does not spin forever)
    for wrong in (str(uuid.uuid4()), "not-a-conversation"):
        page.goto(f"{live_app}/conversations/{wrong}")
        expect(page.get_by_text("This conversation does not exist.")).to_be_visible()
        expect(page.locator("#page-title")).to_have_text("Conversation")
        expect(page.locator("#conversation-opening")).to_have_count(0)


def test_suggestions_still_being_written_for_one_conversation_never_land_in_the_next(live_app, page, db):
    """Suggest on Ada, then open Ben before the reply is written: Ben's page shows none of Ada's cards (there
    they would be one click from being pasted to the wrong client) and its Suggest button is free at once;
    Ada's suggestions are stored and shown when she is opened again."""
    from convassist.models import GeneratedResponse, Message

    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, headers = provider_with_mac(api)
    sync(api, headers, "chat-ada", "Ada", [msg("a1", "Could you fit in a colour and a trim on Saturday morning?",
                                                 sent="2026-11-21T09:00:00Z")])
    sync(api, headers, "chat-ben", "Ben", [msg("b1", "Can I bring my son along?", sent="2026-11-20T09:00:00Z")])
    log_in(page, live_app, email, password)
    page.click("#nav-conversations")
    page.locator(".conversation-row", has_text="Ada").click()
    expect(page.locator("#page-title")).to_have_text("Ada")
    page.click("#suggest")
    expect(page.locator(".suggestion").first).to_be_visible(timeout=30000)
    page.click("#reject")  # asked again after a verdict: other replies, a generation of their own (never cached)
    expect(page.locator("#verdict")).to_be_visible()
    page.click("#suggest")
    expect(page.locator("#suggest")).to_have_text("Writing…")

    page.click("#nav-conversations")
    page.locator(".conversation-row", has_text="Ben").click()
    expect(page.locator("#page-title")).to_have_text("Ben")
    expect(page.locator("#suggest")).to_have_text(re.compile("^Suggest replies$"), timeout=3000)
    expect(page.locator("#suggest")).to_be_enabled()

    with db.connect() as conn:  # Ada's second set, once the worker has written it
        ada = sa.select(Message.conversation_id).where(Message.text.like("Could you fit%")).scalar_subquery()
        query = (sa.select(GeneratedResponse.status, GeneratedResponse.suggestions)
                 .join(Message, Message.id == GeneratedResponse.message_id)
                 .where(Message.conversation_id == ada).order_by(GeneratedResponse.created_at))
        deadline = time.monotonic() + 60
        while (rows := conn.execute(query).all()) and (len(rows) < 2 or rows[-1].status == "generating"):
            assert time.monotonic() < deadline, rows
            time.sleep(0.3)
            conn.rollback()
    adas = {s["text"] for s in rows[-1].suggestions or []}
    assert rows[-1].status == "completed" and adas
    time.sleep(1)  # what a late write of Ada's run would have put on this page
    shown = set(page.locator(".suggestion-text").all_text_contents())
    page.screenshot(path=str(SHOTS / "suggest-then-open-another.png"))
    assert not shown & adas, shown
    expect(page.locator(".bubble-them")).to_contain_text("bring my son")
    expect(page.locator("#suggest")).to_be_enabled()

    page.click("#nav-conversations")
    page.locator(".conversation-row", has_text="Ada").click()
    expect(page.locator("#page-title")).to_have_text("Ada")
    expect(page.locator(".suggestion").first).to_be_visible()
    assert set(page.locator(".suggestion-text").all_text_contents()) <= adas | {""}
