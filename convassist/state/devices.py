"""The Devices page: the provider's Macs, adding one by its code, deactivating one."""

from __future__ import annotations

import uuid

import reflex as rx

from convassist.db import session_scope
from convassist.schemas import form_fields, parse
from convassist.services import devices
from convassist.services.errors import DomainError
from convassist.settings import get_settings
from convassist.state.auth import client_address, current_provider_id
from convassist.state.live import follow_changes


class DevicesState(rx.State):
    devices: list[dict] = []
    error: str = ""
    notice: str = ""
    _watch_id: str = ""

    @rx.var
    def install_command(self) -> str:
        """What to run on the Mac: the agent's installer with the address providers sign in at."""
        return devices.install_command(get_settings().public_url)

    @rx.var
    def install_command_words(self) -> list[str]:
        return self.install_command.split(" ")

    @rx.var
    def has_devices(self) -> bool:
        return len(self.devices) > 0

    @rx.event(background=True)
    async def watch(self):
        """A Mac that pairs, syncs or is deactivated (here or elsewhere) shows without a reload."""
        await follow_changes(self, frozenset({"devices", "messages"}), lambda _: self.refresh())

    @rx.event
    async def refresh(self):
        """Reload the device list."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        with session_scope() as session:
            rows = devices.list_devices(session, provider_id)
        self.devices = [{
            "id": str(d.id), "name": d.name, "platform": d.platform, "os_version": d.os_version or "",
            "verified": d.verified, "active": d.active,
            "last_sync_at": d.last_sync_at.isoformat() if d.last_sync_at else "",
            "conversations": d.conversation_count, "messages": d.message_count, "problem": d.problem or "",
        } for d in rows]

    @rx.event
    async def approve(self, form: dict):
        """Add a Mac by the 6-digit code its agent shows."""
        self.error, self.notice = "", ""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return rx.redirect("/login")
        try:
            data = parse(devices.ApproveInput, {"code": form_fields(form).get("code", "")})
            with session_scope() as session:
                device = devices.approve(session, provider_id=provider_id, data=data, client=client_address(self))
                name = device.name
        except DomainError as exc:
            self.error = exc.message
            return
        self.notice = f"{name} is paired. Its agent finishes pairing by itself within a few seconds."
        await self.refresh()

    @rx.event
    async def deactivate(self, device_id: str):
        """Revoke a device's access (after the confirmation dialog)."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return rx.redirect("/login")
        try:
            with session_scope() as session:
                devices.deactivate(session, provider_id=provider_id, device_id=uuid.UUID(str(device_id)))
        except ValueError:
            self.error = "No such device."
            return
        except DomainError as exc:
            self.error = exc.message
            return
        await self.refresh()
