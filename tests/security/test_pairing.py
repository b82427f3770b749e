"""Guessing a pairing code from the approving side: every budget (account, address, everyone) holds,
the right code is refused once a budget is spent, and concurrent guesses cannot outrun the count.

The Reflex path (the Devices page) is attacked in test_browser_paths.py; both reach the same service.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from fastapi.testclient import TestClient

from convassist.api import create_api
from convassist.services import devices
from tests.api.conftest import Provider
from tests.security.conftest import SECRETS


def register(api) -> dict:
    reg = api.post("/api/devices/register", json={"name": "Victim Mac", "hardwareId": f"HW-{uuid.uuid4()}",
                                                  "platform": "macos", "osVersion": "15.1"})
    assert reg.status_code == 201, reg.text
    SECRETS.add(reg.json()["code"], "pairing code")
    return reg.json()


def wrong_codes(right: str, n: int) -> list[str]:
    """n distinct 6-digit codes, none of them the victim's."""
    codes = [f"{i:06d}" for i in range(100_000, 100_000 + n + 1)]
    return [c for c in codes if c != right][:n]


def approve(who: Provider, code: str):
    return who.post("/api/devices/approve", json={"code": code})


def still_unpaired(api, reg: dict) -> None:
    """The Mac's own poll still waits: nobody has claimed it."""
    poll = api.post("/api/devices/verify", json={"deviceId": reg["deviceId"], "code": reg["code"]})
    assert poll.status_code == 403 and poll.json()["error"] == "authorization_pending", poll.text


def assert_blocked(response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "too_many_attempts"
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 600
    return wait


def test_one_account_gets_five_wrong_codes_then_even_the_right_one_is_refused(api, make_provider):
    victim_mac = register(api)
    attacker, bystander = make_provider("Mallory"), make_provider("Ana")
    for code in wrong_codes(victim_mac["code"], devices.APPROVE_FAILURES_PER_ACCOUNT.count):
        answer = approve(attacker, code)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_code"
    assert_blocked(approve(attacker, victim_mac["code"]))  # a lucky guess now pairs nothing
    still_unpaired(api, victim_mac)
    # malformed input is not a guess and not counted; another account is not blocked by this one
    assert approve(bystander, "12ab").json()["error"] == "invalid_code"
    assert approve(bystander, victim_mac["code"]).status_code == 200


def test_many_accounts_from_one_address_share_its_budget(api, make_provider):
    victim_mac = register(api)
    codes = iter(wrong_codes(victim_mac["code"], 50))
    accounts = [make_provider(f"Sock {i}") for i in range(3)]
    spent = 0
    for account in accounts:  # 4 + 4 + 2 wrong codes: the address's 10
        for _ in range(min(4, devices.APPROVE_FAILURES_PER_ADDRESS.count - spent)):
            assert approve(account, next(codes)).json()["error"] == "invalid_code"
            spent += 1
    assert spent == devices.APPROVE_FAILURES_PER_ADDRESS.count
    assert_blocked(approve(accounts[2], victim_mac["code"]))
    assert_blocked(approve(make_provider("Fresh sock"), victim_mac["code"]))
    still_unpaired(api, victim_mac)


def test_the_global_budget_bounds_every_account_and_address_together(api, make_provider, db):
    victim_mac = register(api)
    codes = iter(wrong_codes(victim_mac["code"], 100))
    app = create_api()
    per_address = 3
    addresses = devices.APPROVE_FAILURES_GLOBAL.count // per_address
    for n in range(addresses):  # 10 addresses, one account each, 3 wrong codes each: under their budgets
        with TestClient(app, client=(f"203.0.113.{n + 1}", 40000)) as elsewhere:
            provider = make_provider(f"Bot {n}")
            for _ in range(per_address):
                answer = elsewhere.post("/api/devices/approve", json={"code": next(codes)}, headers=provider.headers)
                assert answer.json()["error"] == "invalid_code", answer.text
    # ...and together they spent the global budget: a new account on a new address is refused too
    with TestClient(app, client=("198.51.100.7", 40000)) as fresh_address:
        provider = make_provider("Fresh")
        blocked = fresh_address.post("/api/devices/approve", json={"code": victim_mac["code"]},
                                     headers=provider.headers)
    assert_blocked(blocked)
    still_unpaired(api, victim_mac)


def test_concurrent_guesses_cannot_outrun_the_budget(api_server, api, make_provider):
    """50 wrong codes at once from one account: exactly 5 are tried, 45 refused (each try is counted
    before it is made, not after)."""
    victim_mac = register(api)
    attacker = make_provider("Mallory")
    with httpx.Client(base_url=api_server.url, headers=attacker.headers, timeout=30) as client:
        def guess(code: str) -> str:
            return client.post("/api/devices/approve", json={"code": code}).json()["error"]

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(guess, wrong_codes(victim_mac["code"], 50)))
    assert answers.count("invalid_code") == devices.APPROVE_FAILURES_PER_ACCOUNT.count
    assert answers.count("too_many_attempts") == 50 - devices.APPROVE_FAILURES_PER_ACCOUNT.count
    still_unpaired(api, victim_mac)


def test_the_budget_ends_with_its_window(api, make_provider, redis_server):
    import redis

    victim_mac = register(api)
    owner = make_provider("Ana")
    for code in wrong_codes(victim_mac["code"], devices.APPROVE_FAILURES_PER_ACCOUNT.count):
        approve(owner, code)
    assert_blocked(approve(owner, victim_mac["code"]))
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter("convassist:limit:approve-fail:*"))
    assert keys and all(0 < client.ttl(k) <= 600 for k in keys)  # every counter ends by itself
    for key in keys:  # as if the 10 minutes had passed
        client.delete(key)
    assert approve(owner, victim_mac["code"]).status_code == 200


def test_limits_need_redis_and_fail_closed(api, make_provider, settings_env):
    """Without Redis nobody can count guesses: approving answers 503, never an uncounted try."""
    from devstack.ports import free_port

    victim_mac = register(api)
    attacker = make_provider("Mallory")
    settings_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    refused = approve(attacker, victim_mac["code"])
    assert refused.status_code == 503 and refused.json()["error"] == "limits_unavailable"


def test_the_mac_side_locks_the_code_after_five_wrong_tries(api):
    victim_mac = register(api)
    for code in wrong_codes(victim_mac["code"], devices.MAX_WRONG_TRIES):
        api.post("/api/devices/verify", json={"deviceId": victim_mac["deviceId"], "code": code})
    locked = api.post("/api/devices/verify", json={"deviceId": victim_mac["deviceId"], "code": victim_mac["code"]})
    assert locked.status_code == 400 and locked.json()["error"] == "code_locked"
