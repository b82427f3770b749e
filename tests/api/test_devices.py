"""Pairing: register → approve (provider) → verify (device), with every error of the flow."""

import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from convassist.models import Device


def register(api, hardware_id="HW-1", name="Studio Mac"):
    response = api.post("/api/devices/register", json={"name": name, "hardwareId": hardware_id,
                                                      "platform": "macos", "osVersion": "14.5"})
    assert response.status_code == 201, response.text
    return response.json()


def verify(api, reg, code=None):
    return api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": code or reg["code"]})


def test_whole_pairing_flow(api, provider, db):
    reg = register(api)
    assert set(reg) == {"deviceId", "code", "expiresAt"}
    assert len(reg["code"]) == 6 and reg["code"].isdigit()

    pending = verify(api, reg)
    assert pending.status_code == 403 and pending.json()["error"] == "authorization_pending"

    approved = provider.post("/api/devices/approve", json={"code": reg["code"]})
    assert approved.status_code == 200, approved.text
    assert approved.json()["name"] == "Studio Mac" and approved.json()["verified"] is False

    token = verify(api, reg)
    assert token.status_code == 200
    assert set(token.json()) == {"token", "expiresAt", "account"}
    assert token.json()["account"] == {"name": "Ana", "email": provider.email}

    # a Mac's token outlives a holiday (a provider's lasts JWT_EXPIRES_IN, 7 days)
    lifetime = datetime.fromisoformat(token.json()["expiresAt"].replace("Z", "+00:00")) - datetime.now(timezone.utc)
    assert timedelta(days=89) < lifetime <= timedelta(days=90)

    # usable once
    assert verify(api, reg).json()["error"] == "invalid_code"

    listed = provider.get("/api/devices").json()
    assert len(listed) == 1
    device = listed[0]
    assert device["verified"] is True and device["active"] is True and device["osVersion"] == "14.5"
    assert device["lastSyncAt"] is None and device["conversationCount"] == 0 and device["messageCount"] == 0

    # the code is stored only as a hash
    with db.connect() as conn:
        hashes = conn.execute(sa.select(Device.pairing_code_hash)).scalars().all()
    assert reg["code"] not in str(hashes)


def test_registering_again_while_pending_reissues_a_code_for_the_same_device(api, db):
    first = register(api, "HW-same")
    second = register(api, "HW-same")
    assert first["deviceId"] == second["deviceId"]
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Device)).scalar_one() == 1
    # the old code is gone
    if first["code"] != second["code"]:
        assert verify(api, second, code=first["code"]).json()["error"] == "invalid_code"


def test_wrong_code_then_locked_after_five(api, provider):
    reg = register(api)
    wrong = "000000" if reg["code"] != "000000" else "111111"
    for attempt in range(1, 5):
        response = verify(api, reg, code=wrong)
        assert response.status_code == 400 and response.json()["error"] == "invalid_code"
    fifth = verify(api, reg, code=wrong)
    assert fifth.json()["error"] == "code_locked"
    # even the right code is dead now, and the provider cannot approve it
    assert verify(api, reg).json()["error"] == "code_locked"
    assert provider.post("/api/devices/approve", json={"code": reg["code"]}).json()["error"] == "code_locked"


def test_expired_code(api, provider, db):
    reg = register(api)
    with db.begin() as conn:
        conn.execute(sa.update(Device).values(pairing_expires_at=sa.func.now() - timedelta(seconds=1)))
    assert verify(api, reg).json() == {"error": "expired_code",
                                       "message": "The code has expired; pair again for a new one."}
    response = provider.post("/api/devices/approve", json={"code": reg["code"]})
    assert response.status_code == 400 and response.json()["error"] == "expired_code"


def test_approve_with_unknown_or_malformed_code(provider):
    assert provider.post("/api/devices/approve", json={"code": "12345"}).json()["error"] == "invalid_code"
    unknown = provider.post("/api/devices/approve", json={"code": "999999"})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_code"


def test_approve_needs_a_provider_token(api):
    reg = register(api)
    assert api.post("/api/devices/approve", json={"code": reg["code"]}).status_code == 401


def test_verify_unknown_device(api):
    response = api.post("/api/devices/verify", json={"deviceId": str(uuid.uuid4()), "code": "123456"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_code"


def test_another_provider_cannot_take_an_approved_device(api, make_provider):
    ana, bo = make_provider("Ana"), make_provider("Bo")
    reg = register(api)
    assert ana.post("/api/devices/approve", json={"code": reg["code"]}).status_code == 200
    stolen = bo.post("/api/devices/approve", json={"code": reg["code"]})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_code"
    assert bo.get("/api/devices").json() == []


def test_deactivated_device_token_is_refused_from_the_next_request(api, provider):
    device = provider.pair_device()
    from tests.api.conftest import batch, message

    assert device.sync(batch(messages=[message("g1")])).status_code == 200
    assert provider.delete(f"/api/devices/{device.id}").status_code == 204
    refused = device.sync(batch(messages=[message("g2")]))
    assert refused.status_code == 401 and refused.json()["error"] == "device_revoked"
    listed = provider.get("/api/devices").json()
    assert listed[0]["active"] is False


def test_deactivate_is_scoped_to_the_owner(make_provider):
    ana, bo = make_provider("Ana"), make_provider("Bo")
    device = ana.pair_device()
    assert bo.delete(f"/api/devices/{device.id}").status_code == 404
    assert ana.get("/api/devices").json()[0]["active"] is True


def test_repairing_the_same_mac_keeps_its_conversations(api, provider):
    from tests.api.conftest import batch, message

    first = provider.pair_device(hardware_id="HW-repair")
    assert first.sync(batch(messages=[message("g1")])).status_code == 200
    second = provider.pair_device(hardware_id="HW-repair")
    devices = provider.get("/api/devices").json()
    assert len(devices) == 1 and devices[0]["id"] == second.id
    assert devices[0]["conversationCount"] == 1 and devices[0]["messageCount"] == 1


def test_registration_is_rate_limited_per_address(api):
    codes = [api.post("/api/devices/register", json={"name": "m", "hardwareId": f"HW-{i}"}).status_code
             for i in range(25)]
    assert codes[:20] == [201] * 20
    assert codes[-1] == 429


def test_device_token_is_not_a_provider_token(api, provider):
    device = provider.pair_device()
    assert api.get("/api/devices", headers=device.headers).status_code == 401
    assert api.post("/api/sync/messages", headers=provider.headers, json={
        "conversationId": "c", "messages": []}).status_code == 401
