"""Devices: list with status and last sync, "Add a Mac" by code, deactivate with confirmation."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import empty_state, page_shell
from convassist.state.devices import DevicesState


def add_mac_card() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Add a Mac", size="4", as_="h2"),
                rx.text("On the Mac, in the ConvAssist folder, run:", size="2", color_scheme="gray"),
                # wrapped between words only (a phone would split "--allow-http" at its dashes)
                rx.code(rx.foreach(DevicesState.install_command_words,
                                   lambda word: rx.fragment(rx.el.span(word, white_space="nowrap"), " ")),
                        id="install-command", size="2"),
                rx.text("Enter the 6-digit code it shows below. The Mac then shows this account's name and email"
                        " and asks to confirm.", size="2", color_scheme="gray"),
                rx.hstack(
                    rx.input(name="code", id="pairing-code", placeholder="123456", max_length=7, size="3",
                             input_mode="numeric", auto_complete="one-time-code", required=True,
                             width="10rem", font_family="monospace", letter_spacing="0.2em"),
                    rx.button(rx.icon("plus", size=16), "Add", type="submit", id="pairing-submit", size="3"),
                    spacing="2", wrap="wrap",
                ),
                rx.cond(DevicesState.error != "",
                        rx.callout(DevicesState.error, icon="triangle-alert", color_scheme="red", id="devices-error")),
                rx.cond(DevicesState.notice != "",
                        rx.callout(DevicesState.notice, icon="check", color_scheme="green", id="devices-notice")),
                spacing="3",
            ),
            on_submit=DevicesState.approve, reset_on_submit=True,
        ),
        width="100%",
    )


def confirm_deactivate(device: dict) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button("Deactivate", variant="soft", color_scheme="red", size="1",
                                          class_name="deactivate")),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Deactivate ", device["name"], "?"),
            rx.alert_dialog.description("This Mac stops syncing at once. Its conversations stay here; "
                                        "pair it again to resume."),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button("Deactivate", color_scheme="red", id="confirm-deactivate",
                                                 on_click=DevicesState.deactivate(device["id"]))),
                spacing="3", justify="end", padding_top="1rem",
            ),
        ),
    )


def device_row(device: dict) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.icon("laptop", size=28, color=rx.cond(device["active"], rx.color("accent", 10), rx.color("gray", 8))),
            rx.vstack(
                rx.hstack(rx.text(device["name"], weight="bold", class_name="device-name"),
                          rx.cond(device["active"],
                                  rx.cond(device["verified"], rx.badge("Active", color_scheme="green"),
                                          rx.badge("Finishing pairing", color_scheme="amber")),
                                  rx.badge("Deactivated", color_scheme="gray")),
                          spacing="2", align="center", wrap="wrap"),
                rx.text("macOS ", device["os_version"], " · ", device["conversations"], " conversations · ",
                        device["messages"], " messages", size="2", color_scheme="gray"),
                rx.text("Last sync: ",
                        rx.cond(device["last_sync_at"] != "",
                                rx.moment(device["last_sync_at"], from_now=True, interval=60000), "never"),
                        size="2", color_scheme="gray", class_name="last-sync"),
                rx.cond(device["problem"] != "",
                        rx.text(device["problem"], size="2", color_scheme="amber", class_name="device-problem")),
                spacing="1", align="start",
            ),
            rx.spacer(),
            rx.cond(device["active"], confirm_deactivate(device)),
            align="center", spacing="4", width="100%", wrap="wrap",
        ),
        width="100%", class_name="device-row",
    )


def devices_page() -> rx.Component:
    return page_shell(
        "Devices",
        add_mac_card(),
        rx.cond(DevicesState.has_devices,
                rx.vstack(rx.foreach(DevicesState.devices, device_row), spacing="3", width="100%",
                          id="device-list"),
                empty_state("laptop", "No devices", "Paired Macs will appear here with their last sync.")),
    )
