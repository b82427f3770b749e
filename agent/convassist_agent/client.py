"""The server's API, over the standard library's HTTP (the agent stays light).

The token only ever goes to the address the agent was paired with: https (certificates verified) unless
the server is this machine or the person pairing chose `--allow-http`, and redirects are never followed.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import random
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Optional

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 15 * 60  # a server asking for longer is retried after 15 minutes anyway


class ApiError(Exception):
    """The server answered with an error: `code` is its stable error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


# the error codes that mean this Mac's pairing is over (removed on the Devices page, or its token expired)
PAIRING_ENDED = ("device_revoked", "invalid_token", "token_expired")


class ServerUnavailable(Exception):
    """No answer (down, unreachable, timed out) or a 5xx/429 after every retry."""


class UnsafeServer(Exception):
    """The agent will not send its token there: plain http, a redirect, a certificate it cannot verify."""


def is_loopback(host: str) -> bool:
    """This machine: localhost, 127.0.0.0/8 or ::1 (by name or address, never by a DNS answer)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def crosses_network_in_clear(server: str) -> bool:
    """Plain http to a server that is not this machine."""
    parts = urllib.parse.urlsplit(server.strip())
    return parts.scheme == "http" and not is_loopback(parts.hostname or "")


def check_server_url(server: str, allow_http: bool = False) -> str:
    """The server's base URL, refused unless https, loopback, or http explicitly allowed."""
    parts = urllib.parse.urlsplit(server.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeServer(f"{server!r} is not a server address: use https://YOUR-SERVER")
    if crosses_network_in_clear(server) and not allow_http:
        raise UnsafeServer(
            f"{server} is plain http: your messages and the device token would cross the network unencrypted. "
            "Use the server's https:// address, or add --allow-http for a server on a network you trust.")
    return server.strip().rstrip("/")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx comes back as an HTTPError: the request (and its Authorization header) goes nowhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener() -> urllib.request.OpenerDirector:
    # certificates are checked against the system's CAs (SSL_CERT_FILE adds a private CA)
    return urllib.request.build_opener(_RefuseRedirects(),
                                       urllib.request.HTTPSHandler(context=ssl.create_default_context()))


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """A Retry-After header (seconds or an HTTP date) in seconds from now; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Client:
    def __init__(self, server: str, token: Optional[str] = None, *, allow_http: bool = False, timeout: float = 30,
                 retries: int = 5, backoff: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.5)):
        self.server = check_server_url(server, allow_http)
        self.token, self.timeout, self.retries, self.backoff = token, timeout, retries, backoff
        self.sleep, self.jitter = sleep, jitter
        self._open = _opener().open

    def _request(self, method: str, path: str, body: Optional[dict] = None, *, retry: bool = True,
                 token: Optional[str] = None) -> dict:
        """One API call. retry=False: only a 429 is retried (the server did not act on the request)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.server + path, data=data, headers=headers, method=method)
            wait = None
            try:
                with self._open(request, timeout=self.timeout) as response:
                    raw = response.read()
                    return json.loads(raw) if raw else {}
            except urllib.error.HTTPError as exc:
                if 300 <= exc.code < 400:
                    where = exc.headers.get("Location") or "another address"
                    raise UnsafeServer(f"the server redirected to {where}; use that address "
                                       "(pair again with it) — the agent never follows a redirect") from None
                try:
                    payload = json.loads(exc.read() or b"{}")
                except ValueError:
                    payload = {}
                if exc.code < 500 and exc.code != 429:
                    raise ApiError(exc.code, payload.get("error", "http_error"), payload.get("message", "")) from None
                problem, wait = f"HTTP {exc.code}", retry_after_seconds(exc.headers.get("Retry-After"))
                if not retry and exc.code != 429:
                    break
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLCertVerificationError):
                    raise UnsafeServer(f"the certificate of {self.server} could not be verified "
                                       f"({exc.reason.verify_message})") from None
                problem = type(exc.reason).__name__ if isinstance(exc.reason, Exception) else "URLError"
                if not retry:
                    break
            except OSError as exc:
                problem = type(exc).__name__
                if not retry:
                    break
            if attempt < self.retries:
                delay = min(self.backoff * 2 ** attempt, 60) * self.jitter()
                if wait is not None:
                    delay = max(delay, min(wait, MAX_RETRY_AFTER))
                log.warning("server unavailable (%s); retry %d/%d in %.0fs", problem, attempt + 1, self.retries,
                            delay)
                self.sleep(delay)
        raise ServerUnavailable(f"{self.server} did not answer ({problem})")

    def register(self, name: str, hardware_id: str, os_version: str) -> dict:
        return self._request("POST", "/api/devices/register",
                             {"name": name, "hardwareId": hardware_id, "platform": "macos", "osVersion": os_version})

    def verify(self, device_id: str, code: str) -> dict:
        """The device token once approved: {token, expiresAt, account: {name, email}}."""
        return self._request("POST", "/api/devices/verify", {"deviceId": device_id, "code": code}, retry=False)

    def decline(self, token: str) -> None:
        """End this Mac's pairing (a pairing the person did not recognise, or `unpair`): the server deactivates
        the device."""
        self._request("POST", "/api/devices/decline", token=token)

    def refresh(self) -> dict:
        """A new device token for this device: {token, expiresAt}."""
        return self._request("POST", "/api/devices/refresh")

    def sync_messages(self, batch: dict) -> dict:
        return self._request("POST", "/api/sync/messages", batch)

    def checked_in(self) -> None:
        """Tell the server this Mac synced and had nothing new (its last sync time, which the provider sees)."""
        self._request("POST", "/api/sync/ping")

    def sync_contacts(self, contacts: list) -> dict:
        return self._request("POST", "/api/sync/contacts", {"contacts": contacts})
