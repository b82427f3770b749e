"""Login, sign-up, logout and the session guard every protected page runs on load."""

from __future__ import annotations

import asyncio

import uuid
from dataclasses import dataclass
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

    async def _check(self) -> bool:
        """Whether the tab's token is a valid session (read off the event loop); sets the provider's name."""
        provider = await _provider(self.token)
        if provider is None:
            return False
        self.provider_name, self.provider_email = provider.name, provider.email
        return True

    async def _forget(self) -> None:
        """The tab forgets the session and everything its pages read (message previews, conversations,
        suggestions, samples, devices): kept, they would go to whoever uses the tab next, with the state
        sent on every page load."""
        for page in page_states():
            (await self.get_state(page)).reset()
        self.token, self.provider_name, self.provider_email, self.error = "", "", "", ""

    @rx.event
    async def require_login(self):
        """Send visitors without a valid session to the login page."""
        if not await self._check():
            await self._forget()
            url = self.router.url
            asked = (url.path.rstrip("/") or "/") + (f"?{url.query}" if url.query else "")
            return rx.redirect("/login" if asked in ("", "/") else "/login?next=" + quote(asked, safe=""))

    @rx.event
    async def skip_if_logged_in(self):
        """The login and sign-up pages forward an already logged-in provider to the dashboard; a session that
        ended elsewhere (logged out everywhere, password changed) is forgotten here too."""
        if await self._check():
            return rx.redirect(safe_next(self.router.url.query_parameters.get("next")))
        if self.token:
            await self._forget()

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
    async def logout(self):
        """Forget the session and go back to the login page."""
        await self._forget()
        return rx.redirect("/login")

    @rx.event
    async def log_out_everywhere(self):
        """End every session of this account (other browsers, API tokens), then this one."""
        token = self.token

        def end_all() -> None:
            with session_scope() as session:
                accounts.log_out_everywhere(session, accounts.provider_from_token(session, token))

        if token:
            try:
                await asyncio.to_thread(end_all)
            except DomainError:
                pass  # already ended: logging out is all that is left
        await self._forget()
        return rx.redirect("/login")

    @rx.event
    def clear_error(self):
        self.error = ""


def page_states() -> list[type[rx.State]]:
    """Every page's state (this app's states but this one, as Reflex knows them once the app is loaded): what
    logging out resets."""
    return [state for state in rx.State.get_substates()
            if state.__module__.startswith("convassist.") and state is not AuthState]


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


@dataclass(frozen=True)
class _Session:
    id: uuid.UUID
    name: str
    email: str


async def _provider(token: str) -> _Session | None:
    """Who a token is a valid session of (None otherwise), read off the event loop: a database slow to
    answer must not freeze every tab of this app process."""
    if not token:
        return None

    def read() -> _Session:
        with session_scope() as session:
            provider = accounts.provider_from_token(session, token)
            return _Session(provider.id, provider.name, provider.email)

    try:
        return await asyncio.to_thread(read)
    except DomainError:
        return None


async def current_provider_id(state: rx.State) -> uuid.UUID | None:
    """The logged-in provider's id for any state's event handler (None without a valid session)."""
    provider = await _provider((await state.get_state(AuthState)).token)
    return provider.id if provider is not None else None


def client_address(state: rx.State) -> str:
    """The browser's address as the server saw it (limits are counted per address)."""
    return state.router.session.client_ip or "unknown"
