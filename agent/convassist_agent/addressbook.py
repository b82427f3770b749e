"""Contacts from the macOS AddressBook databases (every source under AddressBook/Sources, read-only).

Contacts are optional: columns are detected (some schemas lack ZORGANIZATION, or a name column), and a
source that cannot be read is skipped with a warning, never stopping the message sync.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Dict, List, Set

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("~/Library/Application Support/AddressBook").expanduser()
# the server's limits (convassist/services/contacts.py): longer values are cut, never refused pass after pass
MAX_PHONE = 50
MAX_EMAIL = 320
MAX_NAME = 300


def addressbook_files(root: Path = DEFAULT_ROOT) -> List[Path]:
    root = Path(root).expanduser()
    found = sorted(root.glob("Sources/*/AddressBook-v22.abcddb"))
    if (root / "AddressBook-v22.abcddb").exists():
        found.append(root / "AddressBook-v22.abcddb")
    return found


def _name(first, last, org) -> str:
    name = " ".join(part.strip() for part in (first, last) if part and part.strip())
    return (name or (org or "").strip())[:MAX_NAME]


def _columns(conn: sqlite3.Connection, table: str) -> Set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _select(conn: sqlite3.Connection, table: str, columns: List[str]) -> str:
    """SELECT of columns from table, NULL for the ones this schema lacks."""
    present = _columns(conn, table)
    return f"SELECT {', '.join(c if c in present else 'NULL' for c in columns)} FROM {table}"


def read_contacts(root: Path = DEFAULT_ROOT) -> List[Dict]:
    """One entry per phone number and per email, in the server's format, cut to the server's limits; a
    phone field without a digit ("N/A", "ask at the desk") is no number and is left out."""
    contacts: List[Dict] = []
    seen = set()
    for path in addressbook_files(root):
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error as exc:
            log.warning("address book source skipped: %s", type(exc).__name__)
            continue
        try:
            names = {pk: _name(first, last, org) for pk, first, last, org in conn.execute(
                _select(conn, "ZABCDRECORD", ["Z_PK", "ZFIRSTNAME", "ZLASTNAME", "ZORGANIZATION"]))}
            for owner, number in conn.execute(_select(conn, "ZABCDPHONENUMBER", ["ZOWNER", "ZFULLNUMBER"])):
                number = (number or "").strip()[:MAX_PHONE]
                if names.get(owner) and any(ch.isdigit() for ch in number) and ("p", number) not in seen:
                    seen.add(("p", number))
                    contacts.append({"phoneNumber": number, "displayName": names[owner]})
            for owner, address in conn.execute(_select(conn, "ZABCDEMAILADDRESS", ["ZOWNER", "ZADDRESS"])):
                address = (address or "").strip()[:MAX_EMAIL]
                if names.get(owner) and address and ("e", address.lower()) not in seen:
                    seen.add(("e", address.lower()))
                    contacts.append({"email": address, "displayName": names[owner]})
        except sqlite3.Error as exc:  # a table missing, a locked or damaged file: that source is skipped
            log.warning("address book source skipped: %s", type(exc).__name__)
        finally:
            conn.close()
    return contacts
