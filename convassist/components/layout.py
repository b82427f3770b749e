"""The shell every signed-in page shares: one navigation (sidebar on a laptop, top bar on a phone)."""

from __future__ import annotations

import reflex as rx
from reflex.vars.base import VarData

from convassist.state.auth import AuthState

NAV = [("Inbox", "/", "inbox"), ("Conversations", "/conversations", "messages-square"),
       ("Devices", "/devices", "laptop"), ("Training", "/training", "graduation-cap")]


def _current(href: str):
    """Whether the page shown is `href` or under it (a conversation is under Conversations)."""
    path = rx.State.router.page.path
    if href == "/":  # Reflex names the root route "/index"
        return (path == "/") | (path == "/index")
    return (path == href) | path.startswith(href + "/")


def route_param(name: str) -> rx.Var[str]:
    """A parameter of the address the browser shows now. The state's copy (`State.router`) changes only once
    the server has handled the new page's first event, so a page compares what its state holds with this."""
    return rx.Var(_js_expr=f'(routeParams["{name}"] ?? "")', _var_type=str,
                  _var_data=VarData(imports={"react-router": ["useParams"]},
                                    hooks={"const routeParams = useParams();": None}))


def nav_link(label: str, href: str, icon: str) -> rx.Component:
    active = _current(href)
    return rx.link(
        rx.hstack(rx.icon(icon, size=18), rx.text(label, size="3"), align="center", spacing="3"),
        href=href, id=f"nav-{label.lower()}", underline="none", aria_current=rx.cond(active, "page", "false"),
        color=rx.cond(active, rx.color("accent", 11), rx.color("gray", 12)),
        background=rx.cond(active, rx.color("accent", 3), "transparent"),
        padding_x="0.75rem", padding_y="0.5rem", border_radius="var(--radius-3)", width="100%",
        _hover={"background": rx.color("accent", 4)},
    )


def brand() -> rx.Component:
    return rx.hstack(rx.icon("message-circle-reply", size=22, color=rx.color("accent", 10)),
                     rx.heading("ConvAssist", size="5", as_="h2"), align="center", spacing="2")


def account_menu(logout_id: str) -> rx.Component:
    return rx.hstack(
        rx.color_mode.button(size="2", variant="ghost", aria_label="Switch between light and dark theme",
                             title="Light or dark theme"),
        rx.menu.root(
            rx.menu.trigger(rx.button(rx.icon("log-out", size=16), "Log out", id=logout_id, variant="soft",
                                      color_scheme="gray", size="2")),
            rx.menu.content(
                rx.menu.item("Log out", id=f"{logout_id}-here", on_click=AuthState.logout),
                rx.menu.item("Log out everywhere", id=f"{logout_id}-everywhere", color_scheme="red",
                             on_click=AuthState.log_out_everywhere),
            ),
        ),
        align="center", spacing="2",
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        brand(),
        rx.vstack(*[nav_link(*item) for item in NAV], spacing="1", width="100%", padding_top="1rem"),
        rx.spacer(),
        rx.text(AuthState.provider_name, size="2", weight="medium", id="provider-name"),
        rx.text(AuthState.provider_email, size="1", color_scheme="gray"),
        account_menu("logout"),
        width="15rem", height="100vh", padding="1.25rem", position="sticky", top="0", align_self="flex-start",
        border_right=f"1px solid {rx.color('gray', 5)}", background=rx.color("gray", 2),
    )


def tab_link(label: str, href: str, icon: str) -> rx.Component:
    """A phone's navigation: icon over its name, the current page marked."""
    active = _current(href)
    return rx.link(
        rx.vstack(rx.icon(icon, size=20), rx.text(label, size="1", weight=rx.cond(active, "bold", "regular")),
                  align="center", spacing="1"),
        href=href, id=f"tab-{label.lower()}", underline="none", flex="1", padding_y="0.35rem",
        border_radius="var(--radius-3)", aria_current=rx.cond(active, "page", "false"),
        color=rx.cond(active, rx.color("accent", 11), rx.color("gray", 11)),
        background=rx.cond(active, rx.color("accent", 3), "transparent"),
    )


def topbar() -> rx.Component:
    return rx.vstack(
        rx.hstack(brand(), rx.spacer(), account_menu("logout-mobile"), width="100%", align="center"),
        rx.hstack(*[tab_link(*item) for item in NAV], justify="between", width="100%", spacing="1"),
        width="100%", padding="0.75rem", border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 2), spacing="2",
    )


def page_shell(title, *children: rx.Component) -> rx.Component:
    """A signed-in page: navigation plus a titled content column."""
    content = rx.vstack(rx.heading(title, size="7", id="page-title"), *children,
                        spacing="5", width="100%", max_width="64rem", padding=["1rem", "1rem", "2rem"])
    # the content renders once; only the navigation changes with the window size
    return rx.flex(
        rx.desktop_only(sidebar()),
        rx.box(rx.mobile_and_tablet(topbar()), content, width="100%", min_width="0"),
        min_height="100vh", width="100%",
    )


def empty_state(icon: str, title: str, text: str) -> rx.Component:
    return rx.card(
        rx.vstack(rx.icon(icon, size=32, color=rx.color("gray", 9)), rx.heading(title, size="4", as_="h2"),
                  rx.text(text, color_scheme="gray", align="center"), align="center", spacing="2",
                  padding="2rem"),
        width="100%",
    )
