"""Home: who is owed a reply (longest waiting first, one click to suggestions), the Macs, the model."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import empty_state, page_shell
from convassist.state.dashboard import DashboardState


def waiting_row(item: dict) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.avatar(fallback=item["initials"].to(str), size="3", radius="full"),
            rx.link(
                rx.vstack(
                    rx.hstack(rx.text(item["name"], weight="bold"),
                              rx.cond(item["since"] != "",
                                      rx.text("waiting ", rx.moment(item["since"], from_now=True, interval=60000),
                                              size="1", color_scheme="orange", white_space="nowrap")),
                              align="baseline", spacing="2", wrap="wrap"),
                    rx.text(item["preview"], size="2", color_scheme="gray", overflow="hidden",
                            text_overflow="ellipsis", white_space="nowrap", max_width="100%", line_height="1.5"),
                    spacing="1", align="start", min_width="0"),
                href="/conversations/" + item["id"].to(str), underline="none", color="inherit", min_width="0",
                flex="1"),
            rx.link(rx.button(rx.icon("sparkles", size=14), "Suggest", size="2", class_name="inbox-suggest"),
                    href="/conversations/" + item["id"].to(str) + "?suggest=1"),
            align="center", spacing="3", width="100%",
        ),
        width="100%", class_name="inbox-row",
    )


def inbox_card() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.heading("Waiting for your reply", size="5", as_="h2"),
                  rx.badge(DashboardState.waiting_total, color_scheme="orange", id="waiting-total"),
                  align="center", spacing="2"),
        rx.cond(
            DashboardState.waiting.length() > 0,
            rx.vstack(rx.foreach(DashboardState.waiting, waiting_row), spacing="2", width="100%", id="inbox"),
            rx.cond(DashboardState.conversations > 0,
                    empty_state("circle-check", "You're all caught up", "No one is waiting for a reply."),
                    empty_state("messages-square", "No conversations yet",
                                "They appear after your Mac's first sync."))),
        rx.cond(DashboardState.waiting_total > DashboardState.waiting.length(),
                rx.link("See all conversations that need a reply", href="/conversations", size="2")),
        spacing="3", width="100%",
    )


def device_line(device: dict) -> rx.Component:
    return rx.hstack(
        rx.icon(rx.cond(device["problem"] != "", "triangle-alert", "circle-check"), size=18,
                color=rx.cond(device["problem"] != "", rx.color("amber", 10), rx.color("green", 10))),
        rx.vstack(
            rx.text(device["name"], weight="medium"),
            rx.cond(device["problem"] != "",
                    rx.text(device["problem"], size="2", color_scheme="amber", class_name="device-problem"),
                    rx.text("Synced ", rx.moment(device["last_sync_at"], from_now=True, interval=60000), size="2",
                            color_scheme="gray")),
            spacing="0", align="start"),
        align="start", spacing="2", width="100%", class_name="device-health",
    )


def status_card() -> rx.Component:
    return rx.card(rx.vstack(
        rx.heading("Your Macs", size="3", as_="h2"),
        rx.cond(DashboardState.devices.length() > 0,
                rx.vstack(rx.foreach(DashboardState.devices, device_line), spacing="2", width="100%"),
                rx.text("No Mac yet. ", rx.link("Add your Mac", href="/devices"),
                        " to bring in your conversations.", size="2")),
        rx.separator(size="4"),
        rx.heading("Suggestions", size="3", as_="h2"),
        rx.text(DashboardState.model, size="2", id="model-words"),
        rx.text(DashboardState.voice, size="2", color_scheme="gray", id="voice-words"),
        spacing="3", width="100%"), width="100%")


def dashboard_page() -> rx.Component:
    return page_shell(
        "Inbox",
        rx.cond(DashboardState.loaded,
                rx.grid(inbox_card(), status_card(), columns=rx.breakpoints(initial="1", md="3fr 2fr"),
                        spacing="5", width="100%", align="start")),
    )
