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


def _form(submit: rx.Component, on_submit, *fields: rx.Component) -> rx.Component:
    """A credentials form that only the app submits. Until the page is hydrated its button is disabled
    (which also stops Enter from submitting), and a native submit would POST, never GET: the browser
    must not put an email and password into a URL (history, server logs)."""
    return rx.form(
        rx.vstack(*fields, submit, spacing="3", width="100%"),
        on_submit=on_submit, reset_on_submit=False, width="100%", method="post",
    )


def _submit(label: str, id_: str) -> rx.Component:
    return rx.button(label, type="submit", id=id_, size="3", width="100%", disabled=~rx.State.is_hydrated)


def login_page() -> rx.Component:
    form = _form(_submit("Log in", "login-submit"), AuthState.login,
                 _field("Email", "email", "email", auto_complete="email"),
                 _field("Password", "password", "password", auto_complete="current-password"))
    footer = rx.text("New here? ", rx.link("Create an account", href="/signup", id="to-signup"), size="2")
    return _card("Log in", form, footer)


def signup_page() -> rx.Component:
    form = _form(_submit("Create account", "signup-submit"), AuthState.signup,
                 _field("Name", "name", auto_complete="name"),
                 _field("Email", "email", "email", auto_complete="email"),
                 _field("Password", "password", "password", auto_complete="new-password", min_length=8))
    footer = rx.text("Have an account? ", rx.link("Log in", href="/login", id="to-login"), size="2")
    return _card("Create your account", form, footer)
