"""Operator commands: `python -m convassist create-account --email E --name N`, `backup DIR`,
`restore DIR` (see convassist/services/backup.py).

Sign-up is closed in production (`ALLOW_SIGNUP` unset with `CONVASSIST_ENV=prod`): the operator
creates the first account (and any later one) here, on the server, with the server's settings. The
password is asked for twice at the terminal, or read from stdin with `--password-stdin` (scripts);
it is never taken from the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from convassist.db import session_scope
from convassist.schemas import parse
from convassist.services import accounts
from convassist.services.errors import DomainError


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise SystemExit("The passwords differ; nothing was created.")
    return first


def create_account(args: argparse.Namespace) -> int:
    try:
        data = parse(accounts.SignupInput,
                     {"email": args.email, "name": args.name, "password": _password(args.password_stdin)})
        with session_scope() as session:
            provider = accounts.create_account(session, data)
            print(f"Created account {provider.email} (id {provider.id}). Sign in at the web app.")
    except DomainError as exc:
        print(f"Not created: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return 0


def backup_or_restore(args: argparse.Namespace) -> int:
    from convassist.services import backup

    try:
        summary = getattr(backup, args.command)(Path(args.directory))
    except backup.BackupError as exc:
        print(f"{args.command.capitalize()} failed: {exc}", file=sys.stderr)
        return 1
    if args.command == "backup":
        print(f"Backed up the database ({summary.database_bytes:,} bytes) and {summary.adapter_files} adapter "
              f"file(s) into {summary.directory}.")
    else:
        print(f"Restored the database and {summary.adapter_files} adapter file(s) from {summary.directory}.")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m convassist", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-account", help="create a provider account (works while sign-up is closed)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    create.set_defaults(func=create_account)
    for name, what in (("backup", "dump the database and the adapters into a new directory"),
                       ("restore", "restore a backup (stop the app and workers first)")):
        command = sub.add_parser(name, help=what)
        command.add_argument("directory")
        command.set_defaults(func=backup_or_restore)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
