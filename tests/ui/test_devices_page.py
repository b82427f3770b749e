"""Pairing a Mac through the Devices page, live last-sync, and deactivation with confirmation."""

import re

import httpx
from playwright.sync_api import expect


def test_pair_a_device_through_the_devices_page(live_app, signed_in):
    page, _, _ = signed_in
    api = httpx.Client(base_url=live_app, timeout=10)
    reg = api.post("/api/devices/register", json={"name": "Front Desk Mac", "hardwareId": "HW-UI-1",
                                                  "platform": "macos", "osVersion": "15.1"}).json()

    page.click("#nav-devices")
    expect(page).to_have_url(re.compile(r"/devices$"))
    # the exact command for the Mac, with this server's address filled in
    expect(page.locator("#install-command")).to_have_text(f"agent/install.sh {live_app} --allow-http")

    # a wrong code says so
    wrong = "000000" if reg["code"] != "000000" else "111111"
    page.fill("#pairing-code", wrong)
    page.click("#pairing-submit")
    expect(page.locator("#devices-error")).to_contain_text("No Mac is waiting with this code")

    page.fill("#pairing-code", reg["code"])
    page.click("#pairing-submit")
    expect(page.locator("#devices-notice")).to_contain_text("Front Desk Mac is paired")
    row = page.locator(".device-row").filter(has_text="Front Desk Mac")
    expect(row).to_contain_text("Finishing pairing")
    expect(row.locator(".last-sync")).to_contain_text("never")

    # the agent's poll now succeeds; its first sync shows up without a reload
    token = api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]}).json()["token"]
    synced = api.post("/api/sync/messages", headers={"Authorization": f"Bearer {token}"}, json={
        "conversationId": "iMessage;-;+15550001111", "participants": ["+15550001111"], "messages": [
            {"imessageGuid": "ui-g1", "senderId": "+15550001111", "direction": "incoming",
             "text": "Can I book Friday?", "sentAt": "2026-11-20T09:00:00Z"}]})
    assert synced.status_code == 200
    expect(row).to_contain_text("Active", timeout=12000)
    expect(row).to_contain_text("1 messages")
    expect(row.locator(".last-sync")).not_to_contain_text("never")

    # deactivate, confirming in the dialog; the token is refused from then on
    row.locator(".deactivate").click()
    page.click("#confirm-deactivate")
    expect(row).to_contain_text("Deactivated")
    refused = api.post("/api/sync/messages", headers={"Authorization": f"Bearer {token}"},
                       json={"conversationId": "c", "messages": []})
    assert refused.status_code == 401 and refused.json()["error"] == "device_revoked"
