"""Login and sign-up pages."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import brand
from convassist.state.auth import AuthState


def _field(label: str, name: str, kind: str = "text", **props) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium", as_="label", html_for=name),
                     rx.input(name=name, id=name, type=kind, required=True, size="3", width="100%", **props),
                     spacing="1", width="100%")


def _card(title: str, form: rx.Component, footer: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                brand(), rx.heading(title, size="6", id="page-title"),
                rx.cond(AuthState.error != "",
                        rx.callout(AuthState.error, icon="triangle-alert", color_scheme="red", id="auth-error",
                                   width="100%")),
                form, footer, spacing="4", width="100%",
            ),
            size="4", width="100%", max_width="26rem",
        ),
        min_height="100vh", padding="1rem",
    )


def login_page() -> rx.Component:
    form = rx.form(
        rx.vstack(_field("Email", "email", "email", auto_complete="email"),
                  _field("Password", "password", "password", auto_complete="current-password"),
                  rx.button("Log in", type="submit", id="login-submit", size="3", width="100%"),
                  spacing="3", width="100%"),
        on_submit=AuthState.login, reset_on_submit=False, width="100%",
    )
    footer = rx.text("New here? ", rx.link("Create an account", href="/signup", id="to-signup"), size="2")
    return _card("Log in", form, footer)


def signup_page() -> rx.Component:
    form = rx.form(
        rx.vstack(_field("Name", "name", auto_complete="name"),
                  _field("Email", "email", "email", auto_complete="email"),
                  _field("Password", "password", "password", auto_complete="new-password", min_length=8),
                  rx.button("Create account", type="submit", id="signup-submit", size="3", width="100%"),
                  spacing="3", width="100%"),
        on_submit=AuthState.signup, reset_on_submit=False, width="100%",
    )
    footer = rx.text("Have an account? ", rx.link("Log in", href="/login", id="to-login"), size="2")
    return _card("Create your account", form, footer)
