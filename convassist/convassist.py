"""The Reflex app: pages and the API transformer — nothing else."""

import reflex as rx

from convassist.api import create_api
from convassist.pages.auth import login_page, signup_page
from convassist.pages.conversations import conversation_page, conversations_page
from convassist.pages.dashboard import dashboard_page
from convassist.pages.training import training_page
from convassist.pages.devices import devices_page
from convassist.state.auth import AuthState
from convassist.state.conversations import ConversationsState, ConversationState
from convassist.state.dashboard import DashboardState
from convassist.state.errors import backend_exception_handler
from convassist.state.devices import DevicesState
from convassist.state.training import TrainingState

# the Radix theme is configured in rxconfig.py (RadixThemesPlugin)
# icons and the web manifest are served from assets/
HEAD = [rx.el.link(rel="icon", href="/icon.svg", type="image/svg+xml"),
        rx.el.link(rel="icon", href="/favicon.png", type="image/png", sizes="32x32"),
        rx.el.link(rel="apple-touch-icon", href="/icon-192.png"),
        rx.el.link(rel="manifest", href="/manifest.webmanifest"),
        rx.el.meta(name="theme-color", content="#3e63dd")]
app = rx.App(api_transformer=create_api(), backend_exception_handler=backend_exception_handler,
             head_components=HEAD)

app.add_page(login_page, route="/login", title="Log in · ConvAssist", on_load=AuthState.skip_if_logged_in)
app.add_page(signup_page, route="/signup", title="Sign up · ConvAssist", on_load=AuthState.skip_if_logged_in)
app.add_page(dashboard_page, route="/", title="Inbox · ConvAssist",
             on_load=[AuthState.require_login, DashboardState.load, DashboardState.watch])
app.add_page(devices_page, route="/devices", title="Devices · ConvAssist",
             on_load=[AuthState.require_login, DevicesState.refresh, DevicesState.watch])
app.add_page(conversations_page, route="/conversations", title="Conversations · ConvAssist",
             on_load=[AuthState.require_login, ConversationsState.refresh, ConversationsState.watch])
app.add_page(conversation_page, route="/conversations/[conversation_id]", title="Conversation · ConvAssist",
             on_load=[AuthState.require_login, ConversationState.load, ConversationState.watch])
app.add_page(training_page, route="/training", title="Training · ConvAssist",
             on_load=[AuthState.require_login, TrainingState.refresh, TrainingState.load_history,
                      TrainingState.watch])
