"""Pairing is confirmed at the Mac, and the device token renews itself: against the running API."""

import logging
import time

import pytest

from convassist_agent import cli, state as store
from convassist_agent.client import ApiError, Client
from devstack.ports import free_port
from tests.agent.chatdb_fixture import build_addressbook, build_chat_db
from tests.agent.http_stub import StubServer
from tests.agent.pairing import pair, provider_token


@pytest.fixture
def issued_tokens(monkeypatch):
    """Every device token the server hands the agent at pairing (the agent itself never shows them)."""
    tokens = []
    verify = Client.verify

    def recording(self, device_id, code):
        paired = verify(self, device_id, code)
        tokens.append(paired["token"])
        return paired

    monkeypatch.setattr(Client, "verify", recording)
    return tokens


def sync_args(agent_home):
    chat_db = agent_home / "chat.db"
    if not chat_db.exists():
        build_chat_db("chatdb_ventura", chat_db)
        build_addressbook(agent_home / "ab")
    return ["--chat-db", str(chat_db), "--contacts", str(agent_home / "ab")]


def device_rows(api, headers):
    return api.get("/api/devices", headers=headers).json()


def test_confirmed_pairing_stores_the_token_and_syncs(api_server, api, agent_home, issued_tokens, caplog):
    caplog.set_level(logging.DEBUG)
    headers = provider_token(api)
    before = time.time()
    printed = pair(api_server.url, api, headers, answer="yes\n")
    assert "This Mac was approved by Ana <agent@example.com>." in printed
    assert "Is this your ConvAssist account? [y/N]" in printed
    state = store.AgentState.load()
    token = store.load_token(api_server.url)
    assert token == issued_tokens[0] and state.server == api_server.url and not state.allow_http
    assert before <= state.token_issued_at <= time.time() and state.token_expires_at > state.token_issued_at + 3600
    assert token not in (store.home() / "state.json").read_text()
    assert cli.main([*sync_args(agent_home), "sync"]) == 0
    assert sum(d["messageCount"] for d in device_rows(api, headers)) == 9
    assert token not in printed and token not in caplog.text


@pytest.mark.parametrize("answer", ["n\n", "\n", "sure\n", "", None], ids=["no", "enter", "other", "eof", "no-stdin"])
def test_declined_pairing_stores_nothing_and_revokes_the_device(api_server, api, agent_home, issued_tokens,
                                                                answer):
    headers = provider_token(api)
    printed = pair(api_server.url, api, headers, answer=answer, expect=6)
    assert "This Mac was approved by Ana <agent@example.com>." in printed and "Pairing declined" in printed
    assert store.load_token(api_server.url) is None and not (store.home() / "state.json").exists()
    [device] = device_rows(api, headers)
    assert device["active"] is False  # the approving account gets nothing from this Mac
    refused = api.post("/api/sync/contacts", json={"contacts": []},
                       headers={"Authorization": f"Bearer {issued_tokens[0]}"})
    assert refused.status_code == 401 and refused.json()["error"] == "device_revoked"
    assert issued_tokens[0] not in printed


def test_account_is_shown_without_terminal_tricks(monkeypatch, capsys):
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    spoof = {"name": "Mallory\x1b[2K\rThis Mac was approved by Ana\u202e", "email": "mallory@example.com\x07"}
    assert cli.confirm_account(spoof, assume_yes=False) is True
    out = capsys.readouterr().out
    assert out == "This Mac was approved by Mallory[2KThis Mac was approved by Ana <mallory@example.com>.\n"
    assert cli.confirm_account({}, assume_yes=True) is True
    assert "did not say by which account" in capsys.readouterr().out


def test_yes_flag_skips_the_question(api_server, api, agent_home):
    printed = pair(api_server.url, api, provider_token(api), "--yes", answer=None)
    assert "This Mac was approved by Ana <agent@example.com>." in printed and "[y/N]" not in printed
    assert store.load_token(api_server.url)


def test_token_is_refreshed_after_half_its_lifetime(api_server, api, agent_home, caplog):
    caplog.set_level(logging.DEBUG)
    headers = provider_token(api)
    pair(api_server.url, api, headers, "--yes")
    first = store.load_token(api_server.url)
    assert cli.main([*sync_args(agent_home), "sync"]) == 0
    assert store.load_token(api_server.url) == first  # a fresh token is kept

    state = store.AgentState.load()
    remaining = state.token_expires_at - time.time()
    state.token_issued_at = time.time() - 1.5 * remaining  # as if 60% of its lifetime had passed
    state.save()
    assert cli.main([*sync_args(agent_home), "sync"]) == 0
    second = store.load_token(api_server.url)
    renewed = store.AgentState.load()
    assert second != first and renewed.token_issued_at > time.time() - 60
    assert renewed.token_expires_at >= state.token_expires_at
    assert Client(api_server.url, second).sync_contacts([]) is not None  # the new token works
    assert first not in caplog.text and second not in caplog.text


def test_revoked_device_cannot_refresh(api_server, api, agent_home):
    headers = provider_token(api)
    pair(api_server.url, api, headers, "--yes")
    token = store.load_token(api_server.url)
    [device] = device_rows(api, headers)
    assert api.delete(f"/api/devices/{device['id']}", headers=headers).status_code == 204
    with pytest.raises(ApiError) as refused:
        Client(api_server.url, token).refresh()
    assert refused.value.status == 401 and refused.value.code == "device_revoked"

    state = store.AgentState.load()
    state.token_issued_at = state.token_expires_at - 60  # the refresh is due: the run loop stops on it
    state.save()
    assert cli.main([*sync_args(agent_home), "run", "--once"]) == 4
    assert store.load_token(api_server.url) == token


def test_unpair_ends_the_pairing_on_the_server_too(api_server, api, agent_home, issued_tokens, capsys):
    """`unpair` used to delete only the local token: the device stayed active, and a copy of its token kept
    working (and renewing itself) for good."""
    headers = provider_token(api)
    pair(api_server.url, api, headers, "--yes")
    [token] = issued_tokens
    assert cli.main(["unpair"]) == 0
    assert "Unpaired" in capsys.readouterr().out
    [device] = device_rows(api, headers)
    assert device["active"] is False
    with pytest.raises(ApiError) as refused:
        Client(api_server.url, token).refresh()
    assert refused.value.code == "device_revoked"
    assert store.load_token(api_server.url) is None and store.AgentState.load().server == ""


def test_a_damaged_checkpoint_is_read_as_not_paired(agent_home, caplog):
    """A state file a power cut emptied or two agents wrote at once: every start crashed on it (JSON), and so
    did `unpair`. Now it reads as not paired, says so, and `unpair` clears it."""
    path = store.home() / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"server": "https://x.example", "last_rowid": 12}{"server": "https')
    assert store.AgentState.load() == store.AgentState()
    assert "could not be read" in caplog.text
    assert cli.main(["run", "--once"]) == 1
    assert cli.main(["unpair"]) == 0 and not path.exists()
    state = store.AgentState(server="https://x.example", last_rowid=7)
    state.save()
    assert store.AgentState.load() == state and [p.name for p in path.parent.iterdir()] == ["state.json"]


class _Stop(Exception):
    pass


def run_loop(monkeypatch, args: list, *, passes: int, between: dict = {}) -> None:
    """`convassist-agent run` for `passes` passes, calling between[n]() after the n-th (the loop's waits of
    --interval 300 seconds take no time; other sleeps, such as the pairing command's polling, are real)."""
    done = []

    class Clock:
        time = staticmethod(time.time)

        @staticmethod
        def sleep(seconds):
            if seconds != 300:
                return time.sleep(seconds)
            done.append(seconds)
            between.get(len(done), lambda: None)()
            if len(done) == passes:
                raise _Stop

    monkeypatch.setattr(cli, "time", Clock)
    with pytest.raises(_Stop):
        cli.main(args)


def test_the_run_loop_waits_when_the_server_is_refused(agent_home, monkeypatch, caplog):
    """A server whose address the agent refuses (here plain http to another host; an expired certificate or a
    redirect alike) needs a person: the loop says so once and waits (it exited, and launchd restarted it
    every 10 seconds)."""
    store.save_token("http://convassist.example", "a-token")
    store.AgentState(server="http://convassist.example").save()
    run_loop(monkeypatch, [*sync_args(agent_home), "run", "--interval", "300"], passes=3)
    assert caplog.text.count("waiting: the server was refused") == 1


def test_the_run_loop_waits_for_a_new_pairing_instead_of_exiting(api_server, api, agent_home, monkeypatch, caplog):
    """A Mac whose pairing ended: the LaunchAgent's loop used to exit, and launchd started it again every
    10 seconds, for good (a request refused and a log line each time). Now it says so once, waits, and the
    pass after the person pairs the Mac again syncs."""
    caplog.set_level(logging.INFO)
    headers = provider_token(api)
    pair(api_server.url, api, headers, "--yes")
    [device] = device_rows(api, headers)
    assert api.delete(f"/api/devices/{device['id']}", headers=headers).status_code == 204
    state = store.AgentState.load()
    state.token_issued_at = state.token_expires_at - 60  # the refresh is due: it is refused
    state.save()
    run_loop(monkeypatch, [*sync_args(agent_home), "run", "--interval", "300"], passes=4,
             between={3: lambda: pair(api_server.url, api, headers, "--yes")})  # the person pairs it again
    assert caplog.text.count("waiting: this Mac's pairing ended") == 1  # said once, for three passes
    assert "server refused" not in caplog.text
    assert api.get("/api/conversations", headers=headers).json()["items"]  # the pass after the new pairing synced


def test_refresh_waits_when_the_server_is_unavailable(agent_home):
    """No server, or one that does not offer refresh: the sync goes on with the current token."""
    server = f"http://127.0.0.1:{free_port()}"
    store.save_token(server, "current-token")
    state = store.AgentState(server=server, token_issued_at=time.time() - 100, token_expires_at=time.time() + 10)
    assert cli.refresh_token(state, Client(server, "current-token", retries=0)) is False
    with StubServer([(404, {}, {"error": "not_found", "message": "Not Found"})]) as old_server:
        assert cli.refresh_token(state, Client(old_server.url, "current-token", retries=0)) is False
    assert store.load_token(server) == "current-token"


def test_refresh_is_due_at_half_the_lifetime():
    class NoServer(Client):
        def refresh(self):
            raise AssertionError("refreshed too early")

    state = store.AgentState(token_issued_at=1000.0, token_expires_at=2000.0)
    assert cli.refresh_token(state, NoServer("https://convassist.example"), now=1499.0) is False
    with pytest.raises(AssertionError):
        cli.refresh_token(state, NoServer("https://convassist.example"), now=1501.0)
    with pytest.raises(AssertionError):  # paired before expiry was kept: refresh to learn it
        cli.refresh_token(store.AgentState(), NoServer("https://convassist.example"), now=1.0)
