"""`convassist-agent pair|sync|run|status|unpair|install|uninstall`.

Exit codes: 1 not paired or pairing failed, 2 no Full Disk Access, 3 server unavailable, 4 the server
refused, 5 a file is missing, 6 pairing declined at this Mac, 7 an address the agent will not use,
8 the Messages database stayed locked.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import socket
import sqlite3
import sys
import time
import unicodedata
import uuid
from datetime import datetime
from pathlib import Path
from typing import Optional

from convassist_agent import addressbook, launchd, state as store
from convassist_agent.chatdb import ChatDB, FullDiskAccessError
from convassist_agent.client import (PAIRING_ENDED, ApiError, Client, ServerUnavailable, UnsafeServer,
                                     crosses_network_in_clear)
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


def _unix(value) -> float:
    """The server's ISO 8601 time (e.g. `expiresAt`) as Unix seconds; 0 when absent or unreadable."""
    try:  # Python 3.9's fromisoformat does not take a trailing Z
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _shown(text, limit: int = 200) -> str:
    """Text from the server as plain characters: no terminal escapes or direction overrides that could
    paint a different account name over the real one."""
    return "".join(ch for ch in str(text or "") if unicodedata.category(ch)[0] != "C")[:limit]


def confirm_account(account: Optional[dict], assume_yes: bool) -> bool:
    """Show who approved this Mac and ask the person at it; only y/yes (or --yes) goes on."""
    name, email = _shown((account or {}).get("name")), _shown((account or {}).get("email"))
    if email:
        print(f"This Mac was approved by {name or '(no name)'} <{email}>.")
    else:
        print("This Mac was approved, but the server did not say by which account.")
    if assume_yes:
        return True
    try:
        answer = input("Is this your ConvAssist account? [y/N] ")
    except (EOFError, OSError, RuntimeError):  # no terminal to ask: never assume yes
        print()
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_pair(args) -> int:
    client = Client(args.server_url, allow_http=args.allow_http)  # refuses plain http before any connection
    if crosses_network_in_clear(client.server):
        print(f"Warning: {client.server} is plain http; anyone on this network can read what the agent sends. "
              "Use it only on a network you trust.", file=sys.stderr)
    reg = client.register(args.name or socket.gethostname(), args.hardware_id or hardware_id(), os_version())
    # shown to the person at this Mac (the terminal, never a log file): they type it into the web app
    print(f"Pairing code: {reg['code']}")
    print(f"Enter it in ConvAssist: {client.server}/devices → Add a Mac (valid 10 minutes).")
    while True:
        time.sleep(args.poll)  # nobody enters a code faster than this: no request wasted on it
        try:
            paired = client.verify(reg["deviceId"], reg["code"])
            break
        except ApiError as exc:
            if exc.code == "authorization_pending":
                continue
            print(f"Pairing failed: {exc.message}", file=sys.stderr)
            return 1
    issued_at = time.time()
    if not confirm_account(paired.get("account"), args.yes):
        return _decline(client, paired["token"])
    where = store.save_token(client.server, paired["token"])
    state = store.AgentState(server=client.server, device_id=reg["deviceId"], allow_http=args.allow_http,
                             token_issued_at=issued_at, token_expires_at=_unix(paired.get("expiresAt")))
    state.save()
    print(f"Paired. Token stored in {where}. Run `convassist-agent sync` or `convassist-agent install`.")
    return 0


def _decline(client: Client, token: str) -> int:
    """The person at the Mac did not recognise the approving account: revoke the device, keep nothing."""
    try:
        client.decline(token)
        told = "The server has deactivated this pairing."
    except ApiError as exc:
        told = ("The server has deactivated this pairing." if exc.code == "device_revoked" else
                f"The server refused to deactivate it ({exc.code}); the token was discarded all the same.")
    except ServerUnavailable:
        told = "The server could not be told; the token was discarded all the same."
    print(f"Pairing declined: nothing was stored and nothing was sent. {told}\n"
          "If someone else entered your code, pair again and enter the new code yourself.", file=sys.stderr)
    return 6


def _client(state: store.AgentState) -> Optional[Client]:
    token = store.token_of(state)
    if not token:
        print("Not paired: run `convassist-agent pair SERVER_URL` first.", file=sys.stderr)
        return None
    return Client(state.server, token, allow_http=state.allow_http)


def refresh_token(state: store.AgentState, client: Client, now: Optional[float] = None) -> bool:
    """Swap the device token for a new one once less than half its lifetime is left; True if swapped.

    A server that cannot be reached leaves the current token in use; a revoked device (or a token the
    server no longer accepts) raises ApiError, which stops the run loop."""
    now = time.time() if now is None else now
    issued, expires = state.token_issued_at, state.token_expires_at
    if issued and expires and expires - now >= (expires - issued) / 2:
        return False
    try:
        fresh = client.refresh()
    except ServerUnavailable:
        log.warning("token refresh postponed: server unavailable")
        return False
    except ApiError as exc:
        if exc.code in PAIRING_ENDED:
            raise
        log.warning("token refresh refused error=%s; syncing with the current token", exc.code)
        return False
    store.save_token(state.server, fresh["token"])
    client.token = fresh["token"]
    state.token_issued_at, state.token_expires_at = now, _unix(fresh.get("expiresAt"))
    state.save()
    log.info("device token refreshed")
    return True


def sync_pass(state: store.AgentState, client: Client, chat_db: Path, contacts_root: Path, quiet: bool) -> int:
    try:
        db = ChatDB(chat_db)
    except FullDiskAccessError:
        if not quiet:
            print(FULL_DISK_ACCESS, file=sys.stderr)
        return 2
    try:
        refresh_token(state, client)
        try:  # contacts are optional: an address book that cannot be read never stops the messages
            contacts = addressbook.read_contacts(contacts_root)
        except (sqlite3.Error, OSError) as exc:
            log.warning("contacts skipped this pass: %s", type(exc).__name__)
        else:
            try:
                sync_contacts(contacts, client, state)
            except ApiError as exc:  # nor can a card the server refuses: it is sent again next pass
                if exc.code in PAIRING_ENDED:
                    raise
                log.warning("contacts refused this pass error=%s", exc.code)
        progress = None if quiet else (lambda done, total: print(f"  {done}/{total} messages", flush=True))
        totals = sync_messages(db, client, state, progress)
    finally:
        db.close()
    if not quiet:
        print(f"Synced: {totals['inserted']} new, {totals['updated']} updated, {totals['duplicates']} already there.")
        if totals["unreadable_bodies"]:
            print(f"{totals['unreadable_bodies']} message(s) had a body that could not be read; sent without text.")
    return 0


def cmd_sync(args) -> int:
    state = store.AgentState.load()
    client = _client(state)
    if client is None:
        return 1
    return sync_pass(state, client, args.chat_db, args.contacts, quiet=False)


# what stops the run loop until someone at the Mac acts (exit codes of `run --once`)
NEEDS_A_PERSON = {1: "not paired: run `convassist-agent pair SERVER_URL`",
                  2: "no Full Disk Access",
                  4: "this Mac's pairing ended (removed on the Devices page, or expired): run `convassist-agent pair`",
                  7: "the server was refused (its certificate, or a redirect): `convassist-agent sync` says why"}


def cmd_run(args) -> int:
    """The LaunchAgent's loop: a pass every interval. What needs a person (pairing again, Full Disk Access) is
    logged once and the loop waits, trying again every interval, rather than exit: launchd would start it
    again every 10 seconds, for good; a new pairing or the access granted is picked up by the next pass."""
    log.info("agent running interval=%ds", args.interval)
    told = 0
    while True:
        code = _run_pass(args)
        if code in NEEDS_A_PERSON and code != told:
            log.error("waiting: %s; trying again every %ds", NEEDS_A_PERSON[code], args.interval)
            if code == 2:
                print(FULL_DISK_ACCESS, file=sys.stderr)
        told = code
        if args.once:
            return code
        time.sleep(args.interval)


def _run_pass(args) -> int:
    """One pass of the run loop with the state and token as they are now; 0, or a NEEDS_A_PERSON code."""
    state = store.AgentState.load()
    token = store.token_of(state)
    if not token:
        return 1
    try:
        return sync_pass(state, Client(state.server, token, allow_http=state.allow_http), args.chat_db,
                         args.contacts, quiet=True)
    except ServerUnavailable:
        log.warning("server unavailable; next try in %ds", args.interval)
    except UnsafeServer:
        return 7
    except sqlite3.DatabaseError as exc:  # chat.db locked by Messages past the busy timeout, or damaged
        log.warning("Messages database unreadable (%s); next try in %ds", type(exc).__name__, args.interval)
    except ApiError as exc:
        if exc.code in PAIRING_ENDED:
            return 4
        log.error("server refused the sync error=%s", exc.code)
    return 0


def cmd_status(args) -> int:
    state = store.AgentState.load()
    paired = bool(store.token_of(state))
    print(f"Server:      {state.server or '-'}")
    print(f"Paired:      {'yes' if paired else 'no'} (device {state.device_id or '-'})")
    print(f"Last sync:   {state.last_sync_at or 'never'}")
    if state.token_expires_at:
        expires = datetime.fromtimestamp(state.token_expires_at).astimezone().isoformat(timespec="minutes")
        print(f"Token until: {expires} (renewed while the agent syncs)")
    print(f"Checkpoint:  message {state.last_rowid}")
    print(f"LaunchAgent: {'installed' if launchd.plist_path().exists() else 'not installed'}")
    return 0


def cmd_unpair(args) -> int:
    """Forget the pairing here and end it on the server (the device is deactivated: a copy of its token
    left anywhere stops working); a server that cannot be reached is told to the person."""
    state = store.AgentState.load()
    token = store.token_of(state)
    ended = True
    if token:
        try:
            Client(state.server, token, allow_http=state.allow_http, retries=0).decline(token)
        except (ServerUnavailable, UnsafeServer):
            ended = False
        except ApiError:
            pass  # already ended (revoked, expired): nothing left to end
    if state.server:
        store.delete_token(state.server)
    (store.home() / "state.json").unlink(missing_ok=True)
    print("Unpaired: token and checkpoint removed." + ("" if ended else
          " The server could not be reached: deactivate this Mac on the Devices page."))
    return 0


def cmd_install(args) -> int:
    path = launchd.install(store.home() / "logs", args.interval)
    print(f"Installed {path}: the agent starts at login and syncs every {args.interval // 60} minutes.")
    return 0


def cmd_uninstall(args) -> int:
    print("Removed the LaunchAgent." if launchd.uninstall() else "No LaunchAgent was installed.")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convassist-agent", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chat-db", type=Path, default=Path(os.environ.get("CONVASSIST_CHAT_DB", DEFAULT_CHAT_DB)).expanduser())
    p.add_argument("--contacts", type=Path, default=addressbook.DEFAULT_ROOT)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    pair = sub.add_parser("pair", help="pair this Mac with a ConvAssist server")
    pair.add_argument("server_url")
    pair.add_argument("--name")
    pair.add_argument("--hardware-id")
    pair.add_argument("--poll", type=float, default=3.0)
    pair.add_argument("--allow-http", action="store_true",
                      help="allow plain http to a server that is not this Mac (a network you trust); remembered")
    pair.add_argument("--yes", action="store_true",
                      help="do not ask to confirm the approving account (scripted installs)")
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
    except UnsafeServer as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 7
    except sqlite3.OperationalError as exc:  # e.g. "database is locked" while Messages writes
        print(f"The Messages database is busy ({exc}); try again in a moment.", file=sys.stderr)
        return 8
    except FileNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 5
    except KeyboardInterrupt:
        return 130
