"""The dashboard's counts."""

from __future__ import annotations

import reflex as rx

from convassist.db import session_scope
from convassist.services import dashboard
from convassist.state.auth import current_provider_id


class DashboardState(rx.State):
    devices: int = 0
    conversations: int = 0
    messages: int = 0
    samples: int = 0

    @rx.event
    async def load(self):
        """Refresh the counts for the logged-in provider."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        with session_scope() as session:
            counts = dashboard.overview(session, provider_id)
        self.devices, self.conversations = counts.devices, counts.conversations
        self.messages, self.samples = counts.messages, counts.samples
