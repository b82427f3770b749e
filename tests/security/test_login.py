"""Guessing passwords: per-account and per-address failure budgets (the right password waits too,
until the window ends), argon2 hashing capped so a burst of logins cannot exhaust the machine, and
sign-up that is safe to leave open or closed."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import redis

from convassist.services import accounts
from tests.security.conftest import SECRETS

ROOT = Path(__file__).resolve().parents[2]


def login(api, email: str, password: str):
    return api.post("/api/auth/login", json={"email": email, "password": password})


def test_ten_wrong_passwords_then_the_owner_waits_for_the_window(api, make_provider, redis_server):
    ana = make_provider("Ana")
    for i in range(accounts.LOGIN_FAILURES_PER_ACCOUNT.count):
        wrong = login(api, ana.email, SECRETS.add(f"guess-{i}-{uuid.uuid4().hex[:6]}", "password"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
    blocked = login(api, ana.email, ana.password)  # the right password, too late
    assert blocked.status_code == 429 and blocked.json()["error"] == "too_many_attempts"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 15 * 60
    assert "minutes" in blocked.json()["message"]
    # the same account spelled differently is the same account
    assert login(api, f"  {ana.email.upper()} ", ana.password).status_code == 429

    # the window ends by itself (its TTL), and then the owner gets in
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter("convassist:limit:login-fail:account:*"))
    assert len(keys) == 1 and 0 < client.ttl(keys[0]) <= 15 * 60
    assert ana.email.encode() not in keys[0]  # Redis holds a hash of the address, not the address
    client.expire(keys[0], 1)
    time.sleep(1.5)
    assert login(api, ana.email, ana.password).status_code == 200


def test_a_successful_login_does_not_use_the_budget(api, make_provider):
    ana = make_provider("Ana")
    for _ in range(3 * accounts.LOGIN_FAILURES_PER_ACCOUNT.count):
        assert login(api, ana.email, ana.password).status_code == 200


def test_one_address_trying_many_accounts_is_stopped(api, make_provider):
    victims = [make_provider(f"Victim {i}") for i in range(4)]
    tried = 0
    while tried < accounts.LOGIN_FAILURES_PER_ADDRESS.count:  # spread so no account hits its own limit
        victim = victims[tried % len(victims)]
        assert login(api, victim.email, f"guess-{tried}").status_code == 401
        tried += 1
    assert login(api, "unknown@example.com", "guess").status_code == 429
    assert login(api, victims[0].email, victims[0].password).status_code == 429
    # another address is not blocked by this one
    from fastapi.testclient import TestClient

    from convassist.api import create_api

    with TestClient(create_api(), client=("198.51.100.20", 40000)) as elsewhere:
        assert login(elsewhere, victims[0].email, victims[0].password).status_code == 200


def test_changing_the_password_is_guarded_by_the_same_budget(api, make_provider):
    ana = make_provider("Ana")
    for i in range(accounts.LOGIN_FAILURES_PER_ACCOUNT.count):
        wrong = ana.post("/api/auth/password", json={"currentPassword": f"guess-{i}", "newPassword": "new password!"})
        assert wrong.status_code == 401
    blocked = ana.post("/api/auth/password", json={"currentPassword": ana.password, "newPassword": "new password!"})
    assert blocked.status_code == 429
    assert login(api, ana.email, ana.password).status_code == 429  # the account's budget is one budget


def test_password_change_and_log_out_everywhere_revoke_every_earlier_token(api, make_provider):
    ana = make_provider("Ana")
    laptop = login(api, ana.email, ana.password).json()["token"]
    changed = ana.post("/api/auth/password", json={"currentPassword": ana.password, "newPassword": "brand new pw"})
    assert changed.status_code == 200
    fresh = SECRETS.add(changed.json()["token"], "token")
    for old in (ana.token, laptop):
        refused = api.get("/api/auth/me", headers={"Authorization": f"Bearer {old}"})
        assert refused.status_code == 401 and refused.json()["error"] == "token_revoked"
    assert login(api, ana.email, ana.password).status_code == 401
    assert api.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200

    assert api.post("/api/auth/logout-all", headers={"Authorization": f"Bearer {fresh}"}).status_code == 204
    assert api.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh}"}).json()["error"] == "token_revoked"


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def test_fifty_parallel_logins_are_served_within_bounded_memory(api_server, api, make_provider):
    """Each argon2 hash takes 64 MiB: unbounded, 50 parallel logins in the server's 40 threads would
    need ~2.5 GiB. Capped at one per core, the server's peak grows by a few hashes' worth.

    10 accounts log in 5 times each from 10 loopback addresses: a try in flight uses its account's
    and its address's budget, so 50 at once for one account would rightly be refused."""
    people = [make_provider(f"Person {i}") for i in range(10)]
    pid = api_server.process.pid
    clients = [httpx.Client(base_url=api_server.url, timeout=60,
                            transport=httpx.HTTPTransport(local_address=f"127.0.0.{i + 2}")) for i in range(10)]
    try:
        assert login(clients[0], people[0].email, people[0].password).status_code == 200  # warm: first hash
        _reset_peak(pid)
        before = _peak_rss_mib(pid)
        started = time.monotonic()
        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(lambda n: login(clients[n % 10], people[n % 10].email,
                                                     people[n % 10].password).status_code, range(50)))
        elapsed = time.monotonic() - started
    finally:
        for client in clients:
            client.close()
    growth = _peak_rss_mib(pid) - before
    print(f"50 parallel logins: {elapsed:.1f} s, peak RSS +{growth:.0f} MiB, statuses {sorted(set(statuses))}")
    assert statuses.count(200) == 50, statuses
    assert growth < 64 * 8, f"peak RSS grew {growth:.0f} MiB"


def test_signup_closed_in_prod_unless_allowed(api, settings_env):
    settings_env(CONVASSIST_ENV="prod", JWT_SECRET="x" * 40)
    closed = api.post("/api/auth/signup", json={"email": "a@example.com", "password": "correct horse", "name": "A"})
    assert closed.status_code == 403 and closed.json()["error"] == "signup_disabled"
    settings_env(ALLOW_SIGNUP="true")
    assert api.post("/api/auth/signup", json={"email": "a@example.com", "password": "correct horse",
                                              "name": "A"}).status_code == 201


def test_signups_per_address_are_limited(api):
    answers = [api.post("/api/auth/signup", json={"email": f"s{i}@example.com", "password": "correct horse",
                                                  "name": "S"}).status_code
               for i in range(accounts.SIGNUPS_PER_ADDRESS.count + 1)]
    assert answers[:-1] == [201] * accounts.SIGNUPS_PER_ADDRESS.count and answers[-1] == 429


def test_create_account_cli_works_while_signup_is_closed(api, services_env, settings_env):
    env = {**services_env, "ALLOW_SIGNUP": "false"}
    password = SECRETS.add(f"CLI-{uuid.uuid4().hex[:12]}", "password")
    created = subprocess.run([sys.executable, "-m", "convassist", "create-account", "--email", "Owner@Example.com",
                              "--name", "Owner", "--password-stdin"], input=password + "\n", env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    assert "owner@example.com" in created.stdout and password not in created.stdout + created.stderr
    settings_env(ALLOW_SIGNUP="false")
    assert login(api, "owner@example.com", password).status_code == 200
    again = subprocess.run([sys.executable, "-m", "convassist", "create-account", "--email", "owner@example.com",
                            "--name", "Owner", "--password-stdin"], input="another password\n", env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "email_taken" in again.stderr


def test_addresses_of_one_ipv6_network_share_one_budget(api, redis_server):
    """Whoever holds a /64 holds 2^64 IPv6 addresses: counted one by one, each would bring its own budget of
    guesses. A per-address limit counts the /64 (an IPv4 address, and one written IPv4-mapped, as itself)."""
    from convassist.services import ratelimit

    same = ratelimit.network_of("2001:db8:0:7::1"), ratelimit.network_of("2001:db8:0:7:ffff::9")
    assert same == ("2001:db8:0:7::/64",) * 2
    assert ratelimit.network_of("2001:db8:0:8::1") != ratelimit.network_of("2001:db8:0:7::1")
    assert ratelimit.network_of("::ffff:203.0.113.7") == ratelimit.network_of("203.0.113.7") == "203.0.113.7"
    assert ratelimit.network_of("unknown") == "unknown"

    # through the service, as the login route and page call it: 30 wrong guesses from 30 addresses of one
    # /64 (at 4 accounts, so no account's own budget runs out first), then that network waits
    from convassist.db import session_scope

    network = f"2001:db8:{uuid.uuid4().int % 65536:x}:1"
    for i in range(accounts.LOGIN_FAILURES_PER_ADDRESS.count):
        with session_scope() as session:
            try:
                guess = accounts.LoginInput(email=f"nobody{i % 4}@example.com", password=f"guess-{i}-wrong")
                accounts.login(session, guess, client=f"{network}::{i + 1:x}")
            except accounts.Unauthorized:
                pass
    refused = None
    with session_scope() as session:
        try:
            accounts.login(session, accounts.LoginInput(email="someone@example.com", password="another-guess"),
                           client=f"{network}:abcd::1")
        except Exception as exc:  # noqa: BLE001 - the type is the assertion
            refused = exc
    assert isinstance(refused, ratelimit.TooManyAttempts)
    with session_scope() as session:  # another /64 still has its own budget
        try:
            accounts.login(session, accounts.LoginInput(email="someone@example.com", password="another-guess"),
                           client="2001:db8:ffff:2::1")
        except accounts.Unauthorized:
            pass


def test_behind_a_trusted_proxy_clients_count_by_the_address_it_forwards(api, settings_env):
    """Behind a proxy every connection comes from the proxy: with CONVASSIST_TRUSTED_PROXY_HOPS=1 the
    per-address limits count the address it forwards (one client's limit is not everyone's); without it the
    header is ignored, so a client cannot write itself a new address on every request."""
    from convassist.api.routes.health import PUBLIC_CHECKS_PER_ADDRESS

    def checks(forwarded: str, n: int) -> list[int]:
        return [api.get("/api/health", headers={"X-Forwarded-For": forwarded}).status_code for _ in range(n)]

    allowed = PUBLIC_CHECKS_PER_ADDRESS.count
    settings_env(CONVASSIST_TRUSTED_PROXY_HOPS="1")
    first = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    assert 429 not in checks(f"10.9.9.9, {first}", allowed) and checks(first, 1) == [429]
    assert checks(f"203.0.113.{uuid.uuid4().int % 250 + 1}", 1) != [429]  # another client: its own budget

    settings_env(CONVASSIST_TRUSTED_PROXY_HOPS="0")  # no proxy trusted: the header is only text
    spoofed = [api.get("/api/health", headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code
               for i in range(allowed + 1)]
    assert spoofed[-1] == 429
