"""The Training page: start a job, watch progress and the loss chart to completion, activate, roll back."""

import httpx
from playwright.sync_api import expect

from tests.fixtures.voice_samples import samples


def test_train_from_the_training_page(live_app, signed_in):
    page, email, password = signed_in
    api = httpx.Client(base_url=live_app, timeout=30)
    token = api.post("/api/auth/login", json={"email": email, "password": password}).json()["token"]
    for prompt, reply in samples()[:11]:
        api.post("/api/training/samples", headers={"Authorization": f"Bearer {token}"},
                 json={"inputContext": prompt, "expectedOutput": reply}).raise_for_status()

    page.click("#nav-training")
    expect(page.locator("#page-title")).to_have_text("Training")
    expect(page.locator(".sample-row")).to_have_count(11)
    # one more by hand, through the form
    page.fill("#sample-input", "Them: Do you have parking?\nMe:")
    page.fill("#sample-output", "Yes, free parking out back. Cheers, Ana from Blue Salon!")
    page.click("#add-sample")
    expect(page.locator(".sample-row")).to_have_count(12)

    page.fill("#train-epochs", "2")
    page.click("#start-training")
    expect(page.locator("#job-status")).to_have_text("training", timeout=30000)
    # progress moves while it trains, and the chart draws the losses
    expect(page.locator("#job-progress-text")).not_to_have_text("0%", timeout=60000)
    expect(page.locator("#loss-chart .recharts-line")).to_have_count(2)
    expect(page.locator("#job-status")).to_have_text("completed", timeout=180000)
    expect(page.locator("#job-progress-text")).to_have_text("100%")

    page.locator(".activate-adapter").first.click()
    expect(page.locator(".active-adapter")).to_have_count(1)
    page.click("#rollback")
    expect(page.locator(".active-adapter")).to_have_count(0)
