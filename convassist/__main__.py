"""Operator commands: `python -m convassist create-account --email E --name N`.

Sign-up is closed in production (`ALLOW_SIGNUP` unset with `CONVASSIST_ENV=prod`): the operator
creates the first account (and any later one) here, on the server, with the server's settings. The
password is asked for twice at the terminal, or read from stdin with `--password-stdin` (scripts);
it is never taken from the command line, where other users of the machine could read it.
"""

from __future__ import annotations

import argparse
import getpass
import sys

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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m convassist", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-account", help="create a provider account (works while sign-up is closed)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    create.set_defaults(func=create_account)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
