"""The Reflex app: pages and the API transformer — nothing else."""

import reflex as rx

from convassist.api import create_api
from convassist.pages.auth import login_page, signup_page
from convassist.pages.dashboard import conversations_page, dashboard_page, training_page
from convassist.pages.devices import devices_page
from convassist.state.auth import AuthState
from convassist.state.dashboard import DashboardState
from convassist.state.devices import DevicesState

# the Radix theme is configured in rxconfig.py (RadixThemesPlugin)
app = rx.App(api_transformer=create_api())

app.add_page(login_page, route="/login", title="Log in · ConvAssist", on_load=AuthState.skip_if_logged_in)
app.add_page(signup_page, route="/signup", title="Sign up · ConvAssist", on_load=AuthState.skip_if_logged_in)
app.add_page(dashboard_page, route="/", title="ConvAssist",
             on_load=[AuthState.require_login, DashboardState.load])
app.add_page(devices_page, route="/devices", title="Devices · ConvAssist",
             on_load=[AuthState.require_login, DevicesState.refresh])
for page, route, title in ((conversations_page, "/conversations", "Conversations"),
                           (training_page, "/training", "Training")):
    app.add_page(page, route=route, title=f"{title} · ConvAssist", on_load=AuthState.require_login)
