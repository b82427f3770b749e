"""Forged, stolen and stale tokens against a provider route and a device route: each is refused with
401 and a stable code, and the tokens that should work do."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from convassist.services.tokens import DEVICE_AUDIENCE, PROVIDER_AUDIENCE
from convassist.settings import get_settings
from tests.security.conftest import pair

PROVIDER_ROUTE = ("GET", "/api/auth/me", None)
DEVICE_ROUTE = ("POST", "/api/sync/contacts", {"contacts": []})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(sub, aud: str, **extra) -> dict:
    now = datetime.now(timezone.utc)
    return {"sub": str(sub), "aud": aud, "ver": 0, "iat": now, "exp": now + timedelta(hours=1), **extra}


def _signed(claims: dict, secret: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret or get_settings().resolved_jwt_secret, algorithm=algorithm)


def _tampered(token: str, **changes) -> str:
    """The token with its payload changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([header, _b64({**claims, **changes}), signature])


@pytest.fixture
def world(api, make_provider):
    """Two providers, Ana with a paired Mac; every kind of token an attacker might hold."""
    ana, bo = make_provider("Ana"), make_provider("Bo")
    mac = pair(api, ana)
    secret = get_settings().resolved_jwt_secret
    ana_id, mac_id = uuid.UUID(ana.id), uuid.UUID(mac.id)
    return {
        "ana": ana, "bo": bo, "mac": mac,
        "forged": {
            "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(
                {**_claims(ana_id, PROVIDER_AUDIENCE), "iat": 0, "exp": 2**31}) + ".",
            "other secret": _signed(_claims(ana_id, PROVIDER_AUDIENCE), secret="not-the-server-secret-" + "x" * 20),
            "HS512 with the secret": _signed(_claims(ana_id, PROVIDER_AUDIENCE), secret=secret, algorithm="HS512"),
            "no audience": _signed({k: v for k, v in _claims(ana_id, PROVIDER_AUDIENCE).items() if k != "aud"}),
            "other audience": _signed(_claims(ana_id, "convassist:admin")),
            "subject not a uuid": _signed(_claims("ana", PROVIDER_AUDIENCE)),
            "version not a number": _signed(_claims(ana_id, PROVIDER_AUDIENCE, ver="0")),
            "tampered subject": _tampered(ana.token, sub=bo.id),
            "garbage": "abc.def.ghi",
            "device claims for the provider": _signed(_claims(mac_id, PROVIDER_AUDIENCE)),
        },
        "expired": _signed(_claims(ana_id, PROVIDER_AUDIENCE, exp=datetime.now(timezone.utc) - timedelta(seconds=5))),
    }


def call(api, route, token):
    method, path, body = route
    return api.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})


def refused(response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == code, response.text
    assert response.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("route", [PROVIDER_ROUTE, DEVICE_ROUTE], ids=["provider route", "device route"])
def test_forged_tokens_are_refused(api, world, route):
    for name, token in world["forged"].items():
        answer = call(api, route, token)
        assert answer.status_code == 401, f"{name}: {answer.status_code} {answer.text}"
        assert answer.json()["error"] == "invalid_token", f"{name}: {answer.text}"


def test_expired_token_says_so(api, world):
    refused(call(api, PROVIDER_ROUTE, world["expired"]), "token_expired")


def test_each_token_works_only_for_its_own_audience(api, world):
    ana, mac = world["ana"], world["mac"]
    assert call(api, PROVIDER_ROUTE, ana.token).status_code == 200
    assert call(api, DEVICE_ROUTE, mac.token).status_code == 200
    refused(call(api, PROVIDER_ROUTE, mac.token), "invalid_token")
    refused(call(api, DEVICE_ROUTE, ana.token), "invalid_token")


def test_a_missing_or_malformed_header(api):
    for headers in ({}, {"Authorization": "Basic YW5hOnB3"}, {"Authorization": "Bearer"}, {"Authorization": ""}):
        answer = api.get("/api/auth/me", headers=headers)
        assert answer.status_code == 401 and answer.json()["error"] in ("missing_token", "invalid_token"), headers


def test_revoked_sessions_and_devices(api, world):
    ana, mac = world["ana"], world["mac"]
    assert ana.post("/api/auth/logout-all").status_code == 204
    refused(call(api, PROVIDER_ROUTE, ana.token), "token_revoked")
    # an old token re-signed cannot skip the version either: the version is in the signed claims
    refused(call(api, PROVIDER_ROUTE, _tampered(ana.token, ver=1)), "invalid_token")

    fresh = api.post("/api/auth/login", json={"email": ana.email, "password": ana.password}).json()["token"]
    [device] = api.get("/api/devices", headers={"Authorization": f"Bearer {fresh}"}).json()
    assert api.delete(f"/api/devices/{device['id']}", headers={"Authorization": f"Bearer {fresh}"}).status_code == 204
    refused(call(api, DEVICE_ROUTE, mac.token), "device_revoked")
    refused(api.post("/api/devices/refresh", headers=mac.headers), "device_revoked")


def test_a_disabled_account_is_refused_with_a_still_valid_token(api, world, db):
    import sqlalchemy as sa

    ana = world["ana"]
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE provider SET is_active = false WHERE id = :id"), {"id": ana.id})
    refused(call(api, PROVIDER_ROUTE, ana.token), "invalid_token")
    refused(call(api, DEVICE_ROUTE, world["mac"].token), "device_revoked")


def test_a_refreshed_device_token_is_a_new_token_with_a_later_expiry(api, world):
    mac = world["mac"]
    time.sleep(1.1)  # iat/exp are in whole seconds
    fresh = api.post("/api/devices/refresh", headers=mac.headers)
    assert fresh.status_code == 200
    new = fresh.json()["token"]
    assert new != mac.token
    old_exp = jwt.decode(mac.token, options={"verify_signature": False})["exp"]
    new_claims = jwt.decode(new, options={"verify_signature": False})
    assert new_claims["exp"] > old_exp and new_claims["aud"] == DEVICE_AUDIENCE
    assert call(api, DEVICE_ROUTE, new).status_code == 200
