"""`convassist-agent pair|sync|run|status|unpair|install|uninstall`."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

from convassist_agent import addressbook, launchd, state as store
from convassist_agent.chatdb import ChatDB, FullDiskAccessError
from convassist_agent.client import ApiError, Client, ServerUnavailable
from convassist_agent.sync import sync_contacts, sync_messages

log = logging.getLogger("convassist_agent")
DEFAULT_CHAT_DB = Path("~/Library/Messages/chat.db")
FULL_DISK_ACCESS = (
    "ConvAssist cannot read your Messages. Give the program that runs it Full Disk Access:\n"
    "  System Settings → Privacy & Security → Full Disk Access → add Terminal (or the Python that runs the\n"
    "  agent), switch it on, then run this command again.")


def hardware_id() -> str:
    """A stable id for this Mac (its IOPlatformUUID), falling back to the host's MAC-derived node id."""
    if sys.platform == "darwin":
        import subprocess

        out = subprocess.run(["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"], capture_output=True, text=True)
        for line in out.stdout.splitlines():
            if "IOPlatformUUID" in line:
                return line.split('"')[-2]
    return f"node-{uuid.getnode():012x}"


def os_version() -> str:
    return platform.mac_ver()[0] or platform.release()


def cmd_pair(args) -> int:
    client = Client(args.server_url)
    reg = client.register(args.name or socket.gethostname(), args.hardware_id or hardware_id(), os_version())
    # shown to the person at this Mac (the terminal, never a log file): they type it into the web app
    print(f"Pairing code: {reg['code']}")
    print(f"Enter it in ConvAssist: {args.server_url.rstrip('/')}/devices → Add a Mac (valid 10 minutes).")
    while True:
        try:
            token = client.verify(reg["deviceId"], reg["code"])
            break
        except ApiError as exc:
            if exc.code == "authorization_pending":
                time.sleep(args.poll)
                continue
            print(f"Pairing failed: {exc.message}", file=sys.stderr)
            return 1
    where = store.save_token(args.server_url, token["token"])
    state = store.AgentState(server=args.server_url, device_id=reg["deviceId"])
    state.save()
    print(f"Paired. Token stored in {where}. Run `convassist-agent sync` or `convassist-agent install`.")
    return 0


def _client(state: store.AgentState) -> Optional[Client]:
    token = store.load_token(state.server) if state.server else None
    if not token:
        print("Not paired: run `convassist-agent pair SERVER_URL` first.", file=sys.stderr)
        return None
    return Client(state.server, token)


def sync_pass(state: store.AgentState, client: Client, chat_db: Path, contacts_root: Path, quiet: bool) -> int:
    try:
        db = ChatDB(chat_db)
    except FullDiskAccessError:
        print(FULL_DISK_ACCESS, file=sys.stderr)
        return 2
    try:
        sync_contacts(addressbook.read_contacts(contacts_root), client, state)
        progress = None if quiet else (lambda done, total: print(f"  {done}/{total} messages", flush=True))
        totals = sync_messages(db, client, state, progress)
    finally:
        db.close()
    if not quiet:
        print(f"Synced: {totals['inserted']} new, {totals['updated']} updated, {totals['duplicates']} already there.")
    return 0


def cmd_sync(args) -> int:
    state = store.AgentState.load()
    client = _client(state)
    if client is None:
        return 1
    return sync_pass(state, client, args.chat_db, args.contacts, quiet=False)


def cmd_run(args) -> int:
    state = store.AgentState.load()
    client = _client(state)
    if client is None:
        return 1
    log.info("agent running interval=%ds", args.interval)
    while True:
        try:
            code = sync_pass(state, client, args.chat_db, args.contacts, quiet=True)
            if code == 2:
                return code
        except ServerUnavailable:
            log.warning("server unavailable; next try in %ds", args.interval)
        except ApiError as exc:
            log.error("server refused the sync error=%s", exc.code)
            if exc.code in ("device_revoked", "invalid_token", "token_expired"):
                return 4
        if args.once:
            return 0
        time.sleep(args.interval)


def cmd_status(args) -> int:
    state = store.AgentState.load()
    paired = bool(state.server and store.load_token(state.server))
    print(f"Server:      {state.server or '-'}")
    print(f"Paired:      {'yes' if paired else 'no'} (device {state.device_id or '-'})")
    print(f"Last sync:   {state.last_sync_at or 'never'}")
    print(f"Checkpoint:  message {state.last_rowid}")
    print(f"LaunchAgent: {'installed' if launchd.plist_path().exists() else 'not installed'}")
    return 0


def cmd_unpair(args) -> int:
    state = store.AgentState.load()
    if state.server:
        store.delete_token(state.server)
    (store.home() / "state.json").unlink(missing_ok=True)
    print("Unpaired: token and checkpoint removed.")
    return 0


def cmd_install(args) -> int:
    path = launchd.install(store.home() / "logs", args.interval)
    print(f"Installed {path}: the agent starts at login and syncs every {args.interval // 60} minutes.")
    return 0


def cmd_uninstall(args) -> int:
    print("Removed the LaunchAgent." if launchd.uninstall() else "No LaunchAgent was installed.")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convassist-agent", description=__doc__)
    p.add_argument("--chat-db", type=Path, default=Path(os.environ.get("CONVASSIST_CHAT_DB", DEFAULT_CHAT_DB)).expanduser())
    p.add_argument("--contacts", type=Path, default=addressbook.DEFAULT_ROOT)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    pair = sub.add_parser("pair", help="pair this Mac with a ConvAssist server")
    pair.add_argument("server_url")
    pair.add_argument("--name")
    pair.add_argument("--hardware-id")
    pair.add_argument("--poll", type=float, default=3.0)
    pair.set_defaults(func=cmd_pair)
    sub.add_parser("sync", help="one sync pass").set_defaults(func=cmd_sync)
    run = sub.add_parser("run", help="sync in a loop")
    run.add_argument("--interval", type=int, default=300)
    run.add_argument("--once", action="store_true")
    run.set_defaults(func=cmd_run)
    sub.add_parser("status").set_defaults(func=cmd_status)
    sub.add_parser("unpair").set_defaults(func=cmd_unpair)
    install = sub.add_parser("install", help="start at login (LaunchAgent)")
    install.add_argument("--interval", type=int, default=300)
    install.set_defaults(func=cmd_install)
    sub.add_parser("uninstall").set_defaults(func=cmd_uninstall)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except ServerUnavailable as exc:
        print(f"Server unavailable: {exc}. Nothing was lost; the next sync resumes from the last confirmed "
              "batch.", file=sys.stderr)
        return 3
    except ApiError as exc:  # the server's messages never carry message text, codes or tokens
        print(f"The server refused: {exc.message} ({exc.code})", file=sys.stderr)
        return 4
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 5
    except KeyboardInterrupt:
        return 130
