"""Two app instances behind a reverse proxy (Debian's nginx), one PostgreSQL, one Redis: a signed-in
browser keeps working when the instance serving it is killed, because Reflex keeps UI state in Redis.

(A fault test, kept with the browser tests: Playwright's sync API holds an event loop in the main
thread once the session's browser starts, so browser tests run last.)"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import httpx
import pytest
from playwright.sync_api import expect

from devstack.ports import free_port
from tests.conftest import start_reflex, stop_process_group
from tests.ui.conftest import SHOTS, app_copy, log_in, provider_with_mac

NGINX = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream app {{
    server 127.0.0.1:{first} max_fails=1 fail_timeout=60s;
    server 127.0.0.1:{second} backup;  # takes over when the first is gone
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;  # with the port: redirects must come back here
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_next_upstream error timeout http_502;
      proxy_read_timeout 120s;
    }}
  }}
}}
"""


@pytest.fixture
def two_apps(services_env, worker_process, live_app, tmp_path):
    """Instances `first` and `second` of the app behind nginx on one public address (live_app first:
    its .web is the one these copy)."""
    proxy, first, second = free_port(), free_port(), free_port()
    env = {**services_env, "CONVASSIST_PUBLIC_URL": f"http://127.0.0.1:{proxy}"}
    log = open(tmp_path / "apps.log", "w")
    apps = {}
    nginx = None
    try:
        for name, port in (("first", first), ("second", second)):
            apps[name] = start_reflex(env, port, log, cwd=app_copy(tmp_path / name))
        (tmp_path / "nginx.conf").write_text(NGINX.format(dir=tmp_path, port=proxy, first=first, second=second))
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                                 stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{proxy}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and nginx.poll() is None, (tmp_path / "nginx-error.log").read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{proxy}", apps
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=20)
        for process in apps.values():
            if process.poll() is None:
                stop_process_group(process)
        log.close()


def test_a_session_survives_the_death_of_the_instance_serving_it(two_apps, page, db):
    base, apps = two_apps
    api = httpx.Client(base_url=base, timeout=20)
    email, password, mac = provider_with_mac(api)
    for handle, name, text in (("+15550001001", "Jordan", "Is Friday free?"), ("+15550001002", "Sam", "Thanks!")):
        assert api.post("/api/sync/contacts", headers=mac,
                        json={"contacts": [{"phoneNumber": handle, "displayName": name}]}).status_code == 200
        assert api.post("/api/sync/messages", headers=mac, json={
            "conversationId": f"iMessage;-;{handle}", "participants": [handle], "messages": [
                {"imessageGuid": f"so-{handle}", "senderId": handle, "direction": "incoming", "text": text,
                 "sentAt": "2026-11-20T09:00:00Z"}]}).status_code == 200

    log_in(page, base, email, password)
    page.goto(base + "/conversations")
    page.fill("#conversation-search", "Friday")  # UI state the server keeps for this session (in Redis)
    rows = page.locator(".conversation-row")
    expect(rows).to_have_count(1)

    stop_process_group(apps["first"], signal.SIGKILL)  # the instance serving every request so far
    killed_at = time.monotonic()

    page.click("#needs-reply-filter")  # an event: the socket reconnects through nginx to the other instance
    page.click("#needs-reply-filter")
    expect(rows).to_have_count(1, timeout=30000)  # the search typed before is still applied...
    expect(rows.first).to_contain_text("Is Friday free?")
    expect(page.locator("#conversation-search")).to_have_value("Friday")  # ...and shown
    expect(page.locator("#provider-name")).to_have_text("Ana")
    print(f"session served again by the other instance {time.monotonic() - killed_at:.1f} s after the kill")
    page.screenshot(path=str(SHOTS / "scale-out-after-instance-killed.png"))

    # and the rest of the app works on the survivor. (A page load: the two instances here listen on
    # different ports, and Reflex builds the port into its frontend bundle, so their lazily loaded
    # route code differs. Instances on separate hosts with the same port serve the same build —
    # see docs/deploy.md.)
    page.goto(base + "/devices")
    expect(page).to_have_url(re.compile(r"/devices/?$"))
    expect(page.locator(".device-row")).to_have_count(1)
    expect(page.locator("#provider-name")).to_have_text("Ana")
