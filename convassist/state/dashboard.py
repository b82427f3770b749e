"""The dashboard's counts."""

from __future__ import annotations

import reflex as rx

from convassist.db import session_scope
from convassist.services import accounts, dashboard
from convassist.services.errors import DomainError
from convassist.state.auth import AuthState


class DashboardState(rx.State):
    devices: int = 0
    conversations: int = 0
    messages: int = 0
    samples: int = 0

    @rx.event
    async def load(self):
        """Refresh the counts for the logged-in provider."""
        auth = await self.get_state(AuthState)
        try:
            with session_scope() as session:
                provider = accounts.provider_from_token(session, auth.token)
                counts = dashboard.overview(session, provider.id)
        except DomainError:
            return
        self.devices, self.conversations = counts["devices"], counts["conversations"]
        self.messages, self.samples = counts["messages"], counts["samples"]
