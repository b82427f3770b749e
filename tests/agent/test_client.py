"""The agent's transport, without the ConvAssist server: which addresses it talks to, redirects, certificates,
Retry-After and backoff; the install script's arguments."""

import os
import shutil
import socket
import ssl
import subprocess
from email.utils import formatdate
from pathlib import Path

import pytest

from convassist_agent import cli, state as store
from convassist_agent.client import Client, ServerUnavailable, UnsafeServer, check_server_url, retry_after_seconds
from tests.agent.http_stub import StubServer

AGENT = Path(__file__).resolve().parents[2] / "agent"


@pytest.fixture
def no_network(monkeypatch):
    """Any name lookup or connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network used: {args[:1]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("url", ["http://convassist.example", "http://10.0.0.5:3000", "http://192.168.1.20:3000/",
                                 "http://localhost.evil.example", "http://127.0.0.1@evil.example",
                                 "http://127.0.0.1.nip.io", "ftp://convassist.example", "convassist.example",
                                 "https://"])
def test_refused_addresses(url):
    with pytest.raises(UnsafeServer):
        Client(url)


@pytest.mark.parametrize("url", ["https://convassist.example", "https://10.0.0.5:8443/", "http://127.0.0.1:3000",
                                 "http://127.5.0.1", "http://[::1]:3000", "http://localhost:3000",
                                 "http://LOCALHOST"])
def test_accepted_addresses(url):
    assert Client(url).server == url.rstrip("/")


def test_allow_http_accepts_a_lan_server():
    assert check_server_url("http://convassist.example:3000/", allow_http=True) == "http://convassist.example:3000"
    assert Client("http://192.168.1.20:3000", allow_http=True).server == "http://192.168.1.20:3000"


def test_pair_refuses_plain_http_before_any_connection(agent_home, no_network, capsys):
    assert cli.main(["pair", "http://convassist.example", "--yes"]) == 7
    err = capsys.readouterr().err
    assert "plain http" in err and "--allow-http" in err
    assert not (agent_home / "home").exists()  # nothing stored


def test_pair_with_allow_http_warns_and_goes_ahead(agent_home, monkeypatch, capsys):
    calls = []

    def register(self, *args):
        calls.append(self.server)
        raise ServerUnavailable("stub: no server")

    monkeypatch.setattr(Client, "register", register)
    assert cli.main(["pair", "http://convassist.example", "--allow-http", "--yes"]) == 3
    assert calls == ["http://convassist.example"]
    assert "Warning: http://convassist.example is plain http" in capsys.readouterr().err


def test_allow_http_is_remembered_for_sync(agent_home, no_network, capsys):
    store.save_token("http://convassist.example", "device-token")
    store.AgentState(server="http://convassist.example", allow_http=True).save()
    assert cli._client(store.AgentState.load()).server == "http://convassist.example"
    store.AgentState(server="http://convassist.example", allow_http=False).save()  # paired before the rule
    assert cli.main(["sync"]) == 7
    assert "plain http" in capsys.readouterr().err


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed_and_the_token_stays_home(status):
    with StubServer() as target, \
            StubServer([(status, {"Location": target.url + "/api/sync/messages"}, None)]) as origin:
        delays = []
        client = Client(origin.url, "secret-device-token", sleep=delays.append)
        with pytest.raises(UnsafeServer) as caught:
            client.sync_messages({"messages": []})
    assert f"redirected to {target.url}/api/sync/messages; use that address" in str(caught.value)
    assert target.requests == []  # not followed: the redirect target never saw the request or the token
    assert len(origin.requests) == 1 and delays == []  # not retried
    assert origin.requests[0]["headers"]["Authorization"] == "Bearer secret-device-token"


def test_unverifiable_certificate_is_refused(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with StubServer(tls_context=context) as server:
        delays = []
        with pytest.raises(UnsafeServer, match="could not be verified"):
            Client(server.url, "secret-device-token", sleep=delays.append).sync_messages({"messages": []})
    assert server.requests == [] and delays == []


def test_retry_after_is_honoured():
    busy = (429, {"Retry-After": "7"}, {"error": "too_many_attempts", "message": "later"})
    with StubServer([busy, busy, (200, {}, {"inserted": 1})]) as server:
        delays = []
        client = Client(server.url, "t", backoff=0.01, sleep=delays.append, jitter=lambda: 1.5)
        assert client.sync_messages({"messages": []}) == {"inserted": 1}
    assert delays == [7, 7] and len(server.requests) == 3


def test_retry_after_is_capped_and_read_as_a_date():
    with StubServer([(429, {"Retry-After": "86400"}, None), (200, {}, {})]) as server:
        delays = []
        Client(server.url, sleep=delays.append).sync_contacts([])
    assert delays == [15 * 60]
    assert 55 <= retry_after_seconds(formatdate(1_000_060, usegmt=True), now=1_000_000) <= 60
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_429_is_retried_even_for_a_call_that_is_never_repeated():
    """verify is not repeated after a 5xx (the token may have been issued), but a 429 was not acted on."""
    with StubServer([(429, {"Retry-After": "2"}, None), (200, {}, {"token": "t"})]) as server:
        delays = []
        assert Client(server.url, sleep=delays.append).verify("device", "123456") == {"token": "t"}
    assert delays == [2]
    with StubServer([(503, {}, None), (200, {}, {})]) as server:
        with pytest.raises(ServerUnavailable):
            Client(server.url, sleep=delays.append).verify("device", "123456")
    assert len(server.requests) == 1


def test_backoff_has_jitter():
    factors = iter([0.5, 1.5, 1.0])
    with StubServer([(503, {}, None)] * 3 + [(200, {}, {})]) as server:
        delays = []
        Client(server.url, backoff=1, sleep=delays.append, jitter=lambda: next(factors)).sync_contacts([])
    assert delays == [0.5, 3.0, 4.0]
    default = Client("https://convassist.example").jitter
    samples = [default() for _ in range(200)]
    assert all(0.5 <= s <= 1.5 for s in samples) and len(set(samples)) > 100


def fake_python(bin_dir: Path, record: Path) -> None:
    """A `python3` whose `-m venv DIR` makes a venv with a no-op pip and a convassist-agent that records its args."""
    bin_dir.mkdir()
    script = bin_dir / "python3"
    script.write_text(f"""#!/bin/bash
venv="$3"; mkdir -p "$venv/bin"
printf '#!/bin/bash\\nexit 0\\n' > "$venv/bin/pip"
printf '#!/bin/bash\\necho "$*" >> {record}\\n' > "$venv/bin/convassist-agent"
chmod +x "$venv/bin/pip" "$venv/bin/convassist-agent"
""")
    script.chmod(0o755)


@pytest.mark.parametrize("args, server, flags", [(["https://convassist.example"], "https://convassist.example", ""),
                                                 (["--allow-http", "http://10.0.0.5:3000", "--yes"],
                                                  "http://10.0.0.5:3000", " --allow-http --yes")])
def test_install_script_passes_the_address_and_flags(tmp_path, args, server, flags):
    record = tmp_path / "calls"
    fake_python(tmp_path / "bin", record)
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(AGENT / "install.sh"), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"Pairing this Mac with the ConvAssist server at {server}" in done.stdout
    assert record.read_text().splitlines() == [f"pair {server}{flags}", "sync", "install"]


def test_install_script_usage(tmp_path):
    for args in ([], ["--bogus", "https://x"], ["https://a", "https://b"]):
        done = subprocess.run(["bash", str(AGENT / "install.sh"), *args], capture_output=True, text=True)
        assert done.returncode == 2 and "usage: install.sh https://YOUR-SERVER [--allow-http] [--yes]" in done.stderr
