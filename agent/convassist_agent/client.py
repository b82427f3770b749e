"""The server's API, over the standard library's HTTP (the agent stays light)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Callable, Optional

log = logging.getLogger(__name__)


class ApiError(Exception):
    """The server answered with an error: `code` is its stable error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class ServerUnavailable(Exception):
    """No answer (down, unreachable, timed out) or a 5xx/429 after every retry."""


class Client:
    def __init__(self, server: str, token: Optional[str] = None, *, timeout: float = 30, retries: int = 5,
                 backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep):
        self.server = server.rstrip("/")
        self.token, self.timeout, self.retries, self.backoff, self.sleep = token, timeout, retries, backoff, sleep

    def _request(self, method: str, path: str, body: Optional[dict] = None, *, retry: bool = True) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            request = urllib.request.Request(self.server + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as exc:
                try:
                    payload = json.loads(exc.read() or b"{}")
                except ValueError:
                    payload = {}
                if exc.code < 500 and exc.code != 429:
                    raise ApiError(exc.code, payload.get("error", "http_error"), payload.get("message", "")) from None
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                problem = type(exc).__name__
            if attempt + 1 < attempts:
                delay = min(self.backoff * 2 ** attempt, 60)
                log.warning("server unavailable (%s); retry %d/%d in %.0fs", problem, attempt + 1,
                            attempts - 1, delay)
                self.sleep(delay)
        raise ServerUnavailable(f"{self.server} did not answer ({problem})")

    def register(self, name: str, hardware_id: str, os_version: str) -> dict:
        return self._request("POST", "/api/devices/register",
                             {"name": name, "hardwareId": hardware_id, "platform": "macos", "osVersion": os_version})

    def verify(self, device_id: str, code: str) -> dict:
        return self._request("POST", "/api/devices/verify", {"deviceId": device_id, "code": code}, retry=False)

    def sync_messages(self, batch: dict) -> dict:
        return self._request("POST", "/api/sync/messages", batch)

    def sync_contacts(self, contacts: list) -> dict:
        return self._request("POST", "/api/sync/contacts", {"contacts": contacts})
