"""Keeping an open page live: its state's background event follows the provider's changes.

A page's `watch` event (run on load, after the page's own load) calls `follow_changes`, which reloads
the page's data when a change it shows is published (services.live) — from this app process or any
other, from an API call, a worker or the trainer. It ends when the browser tab closes or the page
loads again (a newer watch took over), so nothing polls and nothing keeps running for a closed tab.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from functools import lru_cache

import reflex as rx
from reflex.utils import prerequisites

from convassist.services import live
from convassist.state.auth import current_provider_id


GONE_AFTER = 60.0  # seconds a tab may be disconnected (Wi-Fi blip, sleep, reconnect) before its watch ends


async def follow_changes(state: rx.State, topics: frozenset[str],
                         react: Callable[[frozenset[str]], Awaitable[None]]) -> None:
    """In a background event of `state` (which declares `_watch_id: str`): `await react(changed)`
    inside `async with state` for every change touching `topics`, until the page goes away (its tab
    disconnected for GONE_AFTER, or the page loaded again and a newer watch took over)."""
    async with state:
        watch_id = state._watch_id = uuid.uuid4().hex
        provider_id = await current_provider_id(state)
    token = state.router.session.client_token
    if provider_id is None:
        return
    gone_since = None
    async with aclosing(live.follow(provider_id)) as changes:
        async for changed in changes:
            if _connected(token):
                gone_since = None
            else:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since >= GONE_AFTER:
                    return
                continue
            async with state:
                if state._watch_id != watch_id:
                    return
                if changed & topics:
                    await react(changed)


@lru_cache(maxsize=1)
def _namespace():
    """The running app's socket namespace (looked up once: Reflex's lookup grows sys.path each call)."""
    return prerequisites.get_and_validate_app().app.event_namespace


def _connected(token: str) -> bool:
    """Whether the tab is connected to this app process (its socket lives here)."""
    namespace = _namespace()
    return namespace is None or token in namespace.sid_to_token.values()
