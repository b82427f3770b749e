"""The dashboard: counts and where to go next."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import empty_state, page_shell
from convassist.state.dashboard import DashboardState


def _stat(label: str, value, icon: str, href: str) -> rx.Component:
    return rx.link(
        rx.card(rx.hstack(rx.icon(icon, size=24, color=rx.color("accent", 10)),
                          rx.vstack(rx.text(label, size="2", color_scheme="gray"),
                                    rx.heading(value, size="6", id=f"stat-{label.lower()}"), spacing="0"),
                          align="center", spacing="3"), width="100%"),
        href=href, underline="none", width="100%",
    )


def dashboard_page() -> rx.Component:
    return page_shell(
        "Dashboard",
        rx.grid(
            _stat("Devices", DashboardState.devices, "laptop", "/devices"),
            _stat("Conversations", DashboardState.conversations, "messages-square", "/conversations"),
            _stat("Messages", DashboardState.messages, "message-square-text", "/conversations"),
            _stat("Samples", DashboardState.samples, "graduation-cap", "/training"),
            columns=rx.breakpoints(initial="1", sm="2", lg="4"), spacing="4", width="100%",
        ),
        rx.cond(DashboardState.devices == 0,
                empty_state("laptop", "No Mac paired yet",
                            "Install the ConvAssist agent on your Mac and add it on the Devices page.")),
    )

