"""Contacts from the macOS AddressBook databases (every source under AddressBook/Sources, read-only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Dict, List

DEFAULT_ROOT = Path("~/Library/Application Support/AddressBook").expanduser()


def addressbook_files(root: Path = DEFAULT_ROOT) -> List[Path]:
    root = Path(root).expanduser()
    found = sorted(root.glob("Sources/*/AddressBook-v22.abcddb"))
    if (root / "AddressBook-v22.abcddb").exists():
        found.append(root / "AddressBook-v22.abcddb")
    return found


def _name(first, last, org) -> str:
    name = " ".join(part for part in (first, last) if part)
    return name or org or ""


def read_contacts(root: Path = DEFAULT_ROOT) -> List[Dict]:
    """One entry per phone number and per email, in the server's format."""
    contacts: List[Dict] = []
    seen = set()
    for path in addressbook_files(root):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {pk: _name(first, last, org) for pk, first, last, org in conn.execute(
                "SELECT Z_PK, ZFIRSTNAME, ZLASTNAME, ZORGANIZATION FROM ZABCDRECORD")}
            for owner, number in conn.execute("SELECT ZOWNER, ZFULLNUMBER FROM ZABCDPHONENUMBER"):
                if names.get(owner) and number and ("p", number) not in seen:
                    seen.add(("p", number))
                    contacts.append({"phoneNumber": number, "displayName": names[owner]})
            for owner, address in conn.execute("SELECT ZOWNER, ZADDRESS FROM ZABCDEMAILADDRESS"):
                if names.get(owner) and address and ("e", address.lower()) not in seen:
                    seen.add(("e", address.lower()))
                    contacts.append({"email": address, "displayName": names[owner]})
        finally:
            conn.close()
    return contacts
