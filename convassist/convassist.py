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
app = rx.App(api_transformer=create_api(), backend_exception_handler=backend_exception_handler)

app.add_page(login_page, route="/login", title="Log in · ConvAssist", on_load=AuthState.skip_if_logged_in)
app.add_page(signup_page, route="/signup", title="Sign up · ConvAssist", on_load=AuthState.skip_if_logged_in)
app.add_page(dashboard_page, route="/", title="ConvAssist",
             on_load=[AuthState.require_login, DashboardState.load])
app.add_page(devices_page, route="/devices", title="Devices · ConvAssist",
             on_load=[AuthState.require_login, DevicesState.refresh])
app.add_page(conversations_page, route="/conversations", title="Conversations · ConvAssist",
             on_load=[AuthState.require_login, ConversationsState.refresh])
app.add_page(conversation_page, route="/conversations/[conversation_id]", title="Conversation · ConvAssist",
             on_load=[AuthState.require_login, ConversationState.load])
app.add_page(training_page, route="/training", title="Training · ConvAssist",
             on_load=[AuthState.require_login, TrainingState.refresh])
