"""Login, sign-up, logout and the session guard every protected page runs on load."""

from __future__ import annotations

import asyncio

import uuid
from urllib.parse import quote, urlsplit

import reflex as rx

from convassist.db import session_scope
from convassist.schemas import parse
from convassist.services import accounts
from convassist.services.errors import DomainError


class AuthState(rx.State):
    """The provider's bearer token lives in the browser's local storage (kept across reloads)."""

    token: str = rx.LocalStorage("", name="convassist_token", sync=True)
    provider_name: str = ""
    provider_email: str = ""
    error: str = ""

    @rx.var
    def logged_in(self) -> bool:
        return bool(self.provider_name)

    def _check(self) -> bool:
        if not self.token:
            return False
        try:
            with session_scope() as session:
                provider = accounts.provider_from_token(session, self.token)
                self.provider_name, self.provider_email = provider.name, provider.email
            return True
        except DomainError:
            return False

    @rx.event
    def require_login(self):
        """Send visitors without a valid session to the login page."""
        if not self._check():
            self.token, self.provider_name, self.provider_email = "", "", ""
            url = self.router.url
            asked = (url.path.rstrip("/") or "/") + (f"?{url.query}" if url.query else "")
            return rx.redirect("/login" if asked in ("", "/") else "/login?next=" + quote(asked, safe=""))

    @rx.event
    def skip_if_logged_in(self):
        """The login and sign-up pages forward an already logged-in provider to the dashboard."""
        if self._check():
            return rx.redirect(safe_next(self.router.url.query_parameters.get("next")))

    @rx.event
    async def login(self, form: dict):
        """Log in with the form's email and password (argon2, and maybe a wait for a hashing slot: off the
        event loop, which every session of this app process shares)."""
        client = client_address(self)

        def run() -> accounts.LoginSession:
            credentials = parse(accounts.LoginInput, form)
            with session_scope() as session:
                return accounts.login(session, credentials, client=client)

        try:
            result = await asyncio.to_thread(run)
        except DomainError as exc:
            self.error = exc.message
            return
        self._open(result)
        return rx.redirect(safe_next(self.router.url.query_parameters.get("next")))

    @rx.event
    async def signup(self, form: dict):
        """Create an account and log in (argon2: off the event loop, like login)."""
        client = client_address(self)

        def run() -> accounts.LoginSession:
            data = parse(accounts.SignupInput, form)
            with session_scope() as session:
                return accounts.open_session(accounts.signup(session, data, client=client))

        try:
            result = await asyncio.to_thread(run)
        except DomainError as exc:
            self.error = exc.message
            return
        self._open(result)
        return rx.redirect("/")

    def _open(self, result: accounts.LoginSession) -> None:
        self.token, self.provider_name, self.provider_email = result.token, result.name, result.email
        self.error = ""

    @rx.event
    def logout(self):
        """Forget the session and go back to the login page."""
        self.token, self.provider_name, self.provider_email, self.error = "", "", "", ""
        return rx.redirect("/login")

    @rx.event
    def log_out_everywhere(self):
        """End every session of this account (other browsers, API tokens), then this one."""
        if self.token:
            try:
                with session_scope() as session:
                    accounts.log_out_everywhere(session, accounts.provider_from_token(session, self.token))
            except DomainError:
                pass  # already ended: logging out is all that is left
        self.token, self.provider_name, self.provider_email, self.error = "", "", "", ""
        return rx.redirect("/login")

    @rx.event
    def clear_error(self):
        self.error = ""


def safe_next(value: object) -> str:
    """Where to go after logging in: a path on this site from `?next=`, else the inbox. Anything that
    could leave the site (another host, a scheme, `//host`, a backslash) goes to the inbox."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2000:
        return "/"
    if value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith("/login"):
        return "/"
    return value


async def current_provider_id(state: rx.State) -> uuid.UUID | None:
    """The logged-in provider's id for any state's event handler (None without a valid session)."""
    auth = await state.get_state(AuthState)
    if not auth.token:
        return None
    try:
        with session_scope() as session:
            return accounts.provider_from_token(session, auth.token).id
    except DomainError:
        return None


def client_address(state: rx.State) -> str:
    """The browser's address as the server saw it (limits are counted per address)."""
    return state.router.session.client_ip or "unknown"
