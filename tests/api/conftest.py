"""API helpers: providers and paired devices made through the real endpoints."""

import itertools
import uuid

import pytest

_n = itertools.count()


class Provider:
    def __init__(self, api, email: str, token: str, provider_id: str):
        self.api, self.email, self.token, self.id = api, email, token, provider_id

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path, **kw):
        return self.api.get(path, headers=self.headers, **kw)

    def post(self, path, **kw):
        return self.api.post(path, headers=self.headers, **kw)

    def delete(self, path, **kw):
        return self.api.delete(path, headers=self.headers, **kw)

    def pair_device(self, name="Studio Mac", hardware_id=None) -> "Device":
        reg = self.api.post("/api/devices/register", json={
            "name": name, "hardwareId": hardware_id or f"HW-{uuid.uuid4()}", "platform": "macos",
            "osVersion": "14.5"}).json()
        assert self.post("/api/devices/approve", json={"code": reg["code"]}).status_code == 200
        verified = self.api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]})
        assert verified.status_code == 200, verified.text
        return Device(self.api, reg["deviceId"], verified.json()["token"])


class Device:
    def __init__(self, api, device_id: str, token: str):
        self.api, self.id, self.token = api, device_id, token

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def sync(self, batch: dict):
        return self.api.post("/api/sync/messages", json=batch, headers=self.headers)

    def sync_contacts(self, contacts: list[dict]):
        return self.api.post("/api/sync/contacts", json={"contacts": contacts}, headers=self.headers)


@pytest.fixture
def make_provider(api):
    def make(name="Ana") -> Provider:
        email = f"p{next(_n)}-{uuid.uuid4().hex[:6]}@example.com"
        body = api.post("/api/auth/signup", json={"email": email, "password": "correct horse", "name": name}).json()
        return Provider(api, email, body["token"], body["providerId"])

    return make


@pytest.fixture
def provider(make_provider) -> Provider:
    return make_provider()


def message(guid: str, text: str | None = "hello", *, direction="incoming", sender="+15551234567",
            sent="2026-11-01T10:00:00Z", **extra) -> dict:
    return {"imessageGuid": guid, "senderId": sender if direction == "incoming" else None,
            "direction": direction, "messageType": "text", "text": text, "sentAt": sent, **extra}


def batch(chat="iMessage;-;+15551234567", messages=(), **extra) -> dict:
    return {"conversationId": chat, "displayName": None, "isGroup": False,
            "participants": ["+15551234567"], "messages": list(messages), **extra}
