"""Reflex configuration, derived from convassist.settings (the one home of every setting)."""

import sys

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from convassist.settings import SettingsError, get_settings

try:
    _settings = get_settings()
except SettingsError as exc:  # fail at start, naming the variable, without a traceback
    print(f"convassist: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

config = rx.Config(
    app_name="convassist",
    db_url=_settings.resolved_database_url,
    redis_url=_settings.redis_url,
    telemetry_enabled=False,
    cors_allowed_origins=_settings.allowed_origins,  # not Reflex's default "*"
    # the page's events see the client's address by the rule the API uses (ratelimit.forwarded_client)
    trusted_proxy_hops=_settings.convassist_trusted_proxy_hops,
    show_built_with_reflex=False,
    disable_plugins=[SitemapPlugin],
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="indigo", gray_color="slate",
                                                          radius="medium"))],
)
