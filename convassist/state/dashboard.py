"""The home page: the inbox of conversations owed a reply, the Macs' sync health, the model in use."""

from __future__ import annotations

import asyncio

import reflex as rx

from convassist.db import session_scope
from convassist.services import contacts, dashboard
from convassist.state.auth import current_provider_id
from convassist.state.live import follow_changes


class DashboardState(rx.State):
    waiting: list[dict] = []
    waiting_total: int = 0
    devices: list[dict] = []
    model: str = ""
    voice: str = ""
    conversations: int = 0
    samples: int = 0
    loaded: bool = False
    _watch_id: str = ""

    @rx.event
    async def load(self):
        """Read the inbox for the logged-in provider."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        def read():
            with session_scope() as session:  # counts over every message: off the event loop
                return dashboard.inbox(session, provider_id)

        inbox = await asyncio.to_thread(read)
        self.waiting = [{"id": str(w.conversation_id), "name": w.name, "initials": contacts.initials(w.name),
                         "preview": w.preview or "", "since": w.since.isoformat() if w.since else ""}
                        for w in inbox.waiting]
        self.waiting_total = inbox.waiting_total
        self.devices = [{"id": str(d.id), "name": d.name, "problem": d.problem or "",
                         "last_sync_at": d.last_sync_at.isoformat() if d.last_sync_at else ""}
                        for d in inbox.devices]
        self.model, self.voice = inbox.model, inbox.voice
        self.conversations, self.samples = inbox.counts.conversations, inbox.counts.samples
        self.loaded = True

    @rx.event(background=True)
    async def watch(self):
        """New messages, a Mac's sync or a finished training show without a reload."""
        await follow_changes(self, frozenset({"messages", "devices", "training", "samples"}),
                             lambda _: self.load())
