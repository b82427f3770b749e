"""Pairing the agent with the running API, as a person at the Mac and a provider in the web app would."""

from __future__ import annotations

import io
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from typing import Optional

from convassist_agent import cli


def provider_token(api, email: str = "agent@example.com", name: str = "Ana") -> dict:
    body = api.post("/api/auth/signup", json={"email": email, "password": "correct horse", "name": name}).json()
    return {"Authorization": f"Bearer {body['token']}"}


def pair(server_url: str, api, headers: dict, *flags: str, answer: Optional[str] = "y\n", expect: int = 0) -> str:
    """`convassist-agent pair` in a thread; the provider approves the code it prints and the person at the
    Mac types `answer` to the confirmation (None: no stdin at all). Returns what the agent printed."""
    out, err, result = io.StringIO(), io.StringIO(), {}

    def run():
        with redirect_stdout(out), redirect_stderr(err):
            result["code"] = cli.main(["pair", server_url, "--name", "Studio Mac", "--hardware-id", "HW-E2E",
                                       "--poll", "0.2", *flags])

    stdin = sys.stdin
    sys.stdin = io.StringIO(answer) if answer is not None else None
    try:
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 20
        while "Pairing code:" not in out.getvalue():
            assert time.monotonic() < deadline and thread.is_alive(), out.getvalue() + err.getvalue()
            time.sleep(0.05)
        code = out.getvalue().split("Pairing code:")[1].split()[0]
        assert api.post("/api/devices/approve", json={"code": code}, headers=headers).status_code == 200
        thread.join(timeout=20)
    finally:
        sys.stdin = stdin
    printed = out.getvalue() + err.getvalue()
    assert result["code"] == expect, printed
    return printed
