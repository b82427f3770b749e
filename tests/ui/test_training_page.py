"""The Training page in plain language: how many replies it can learn from, one Start button (the knobs
under Advanced), progress pushed live from the first stage, the banner that matches the job, a
before/after on the provider's own held-out messages, switching the voice on and back off, and what it
learns from (readable contexts, garbage flagged and not used)."""

import time

import httpx
from playwright.sync_api import expect

from tests.fixtures.voice_samples import samples
from tests.ui.conftest import SHOTS

LONG_CONTEXT = ("Them: Hi Ana, quick question before my appointment next week, I have been wondering about "
                "this for a while now and my friend said you might know\nMe: Sure, ask away!\n"
                "Them: Do you do balayage on short hair?\nMe:")


def add(api, token, prompt, reply):
    api.post("/api/training/samples", headers={"Authorization": f"Bearer {token}"},
             json={"inputContext": prompt, "expectedOutput": reply}).raise_for_status()


def test_train_from_the_training_page(live_app, signed_in):
    page, email, password = signed_in
    api = httpx.Client(base_url=live_app, timeout=30)
    token = api.post("/api/auth/login", json={"email": email, "password": password}).json()["token"]
    for prompt, reply in samples()[:6]:
        add(api, token, prompt, reply)
    add(api, token, "Them: Are you open Sunday?\nMe:", "yes yes yes yes yes")  # garbage: never trained on

    page.click("#nav-training")
    expect(page.locator("#page-title")).to_have_text("Training")
    expect(page.get_by_text("Teach ConvAssist your voice")).to_be_visible()
    # plain words, no jargon on the default view; the knobs wait under Advanced
    body = page.locator("body").inner_text()
    for jargon in ("LoRA rank", "eval loss", "agreement", "lora-v", "smollm2"):
        assert jargon not in body, jargon
    expect(page.locator("#train-lora_rank")).to_be_hidden()
    # the minimum is said before Start, and Start waits for it; the garbage sample is flagged, not counted
    expect(page.locator("#usable-total")).to_have_text("6")
    expect(page.locator("#need-more-samples")).to_contain_text("at least 8")
    expect(page.locator("#start-training")).to_be_disabled()
    expect(page.locator(".sample-problem")).to_have_count(1)
    expect(page.locator(".sample-problem")).to_contain_text("Not used: a word repeats")

    # samples arrive live (added elsewhere), and a long context reads as whole lines, its end kept
    add(api, token, LONG_CONTEXT, "Yes! Short hair works great for balayage. Cheers, Ana from Blue Salon!")
    expect(page.locator(".sample-row")).to_have_count(8, timeout=3000)
    context = page.locator(".sample-context").first
    expect(context).to_contain_text("Them: Do you do balayage on short hair?")
    expect(context).to_contain_text("Them: Hi Ana, quick question")  # starts at its beginning, not cut
    page.fill("#sample-input", "Them: Do you have parking?\nMe:")
    page.fill("#sample-output", "Yes, free parking out back. Cheers, Ana from Blue Salon!")
    page.click("#add-sample")
    expect(page.locator("#usable-total")).to_have_text("8")
    expect(page.locator("#need-more-samples")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "training-ready.png"), full_page=True)

    page.get_by_text("Advanced").click()
    page.fill("#train-epochs", "2")
    page.click("#start-training")
    # progress is pushed (no timer on the page) and moves from the first stage
    banners = set()
    expect(page.locator("#job-progress")).to_be_visible(timeout=30000)
    # the job trains, then judges the adapter against the base model: about 2 minutes on a 2-core box,
    # more when the box is busy (a CI run once needed more than the 2 minutes this loop used to allow)
    deadline = time.monotonic() + 360
    while time.monotonic() < deadline:
        text = page.locator("#job-banner").inner_text()
        banners.add(text.split("…")[0] if "…" in text else text[:40])
        if "of your voice is ready" in text or "stopped" in text:
            break
        page.wait_for_timeout(200)
    assert any("Learning from your replies" in b for b in banners), banners
    page.screenshot(path=str(SHOTS / "training-done.png"), full_page=True)
    banner = page.locator("#job-banner")
    expect(banner).to_contain_text("of your voice is ready")
    expect(banner).to_contain_text("base model")  # the verdict, in a sentence
    # before / after on the provider's own held-out messages
    examples = page.locator(".example")
    expect(examples.first).to_be_visible()
    expect(examples.first.locator(".example-voice")).not_to_be_empty()
    expect(examples.first.locator(".example-base")).not_to_be_empty()
    # nothing to roll back while no voice is on
    expect(page.locator("#rollback")).to_have_count(0)

    page.click("#activate-latest")
    expect(page.locator("#training-notice")).to_contain_text("Your voice is on")
    expect(page.locator(".active-adapter")).to_have_count(1)
    expect(banner).to_contain_text("is on")
    page.click("#rollback")
    expect(page.locator(".active-adapter")).to_have_count(0)
    expect(page.locator("#rollback")).to_have_count(0)
    expect(page.locator("#activate-latest")).to_be_visible()


def test_past_replies_can_be_learned_from_on_day_one(live_app, page, db):
    from tests.ui.conftest import log_in, provider_with_mac

    api = httpx.Client(base_url=live_app, timeout=30)
    email, password, mac = provider_with_mac(api)
    exchanges = [("Do you have parking nearby?", "Yes, free parking behind the salon. Cheers, Ana"),
                 ("How much is a trim?", "A trim is $25 and takes half an hour. Cheers, Ana"),
                 ("Are you open on Sunday?", "Sundays we are closed, Monday from nine. Cheers, Ana"),
                 ("Thanks!", "ok")]  # an acknowledgement: left out
    messages = []
    for i, (asked, answered) in enumerate(exchanges):
        messages += [{"imessageGuid": f"h{i}q", "senderId": "+15550004444", "direction": "incoming", "text": asked,
                      "sentAt": f"2026-06-0{i + 1}T09:00:00Z"},
                     {"imessageGuid": f"h{i}a", "direction": "outgoing", "text": answered,
                      "sentAt": f"2026-06-0{i + 1}T09:10:00Z"}]
    api.post("/api/sync/messages", headers=mac, json={"conversationId": "chat-h", "participants": ["+15550004444"],
                                                      "messages": messages}).raise_for_status()
    log_in(page, live_app, email, password)
    page.click("#nav-training")
    card = page.locator("#history-card")
    expect(page.locator("#history-total")).to_have_text("3")
    expect(card.locator(".history-exchange")).to_have_count(3)
    expect(card).to_contain_text("Sundays we are closed")
    expect(card).not_to_contain_text("They wrote: Thanks!")
    page.screenshot(path=str(SHOTS / "training-history-offer.png"), full_page=True)
    page.click("#import-history")
    expect(page.locator("#training-notice")).to_contain_text("Added 3 of your past replies")
    expect(page.locator(".sample-row")).to_have_count(3)
    expect(page.locator(".sample-row").first).to_contain_text("From your past replies")
    expect(page.locator("#history-card")).to_have_count(0)  # nothing new left to offer
    expect(page.locator("#usable-total")).to_have_text("3")
