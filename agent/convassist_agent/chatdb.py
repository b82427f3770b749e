"""Reading Messages' chat.db: read-only (WAL included), columns detected per macOS version.

Gotchas handled: dates in seconds (before macOS 10.13) or nanoseconds since 2001-01-01; `text` NULL on
recent macOS (the text is in `attributedBody`, a typedstream); tapbacks as messages with
associated_message_type 2000-2007 / 3000-3007; edits (date_edited) and unsends (date_retracted); group
chats; a message in several chats; attachments.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, List, Optional

log = logging.getLogger(__name__)

APPLE_EPOCH = 978307200  # 2001-01-01 in Unix time
TAPBACK_TYPES = set(range(2000, 2008)) | set(range(3000, 3008))
ATTACHMENT_TEXT = "[Attachment]"
OBJECT_REPLACEMENT = "\ufffc"


class FullDiskAccessError(RuntimeError):
    """chat.db exists but macOS does not let this program read it."""


def apple_time(value) -> Optional[datetime]:
    """chat.db time → UTC datetime; 0/NULL → None. Nanoseconds since macOS 10.13, seconds before."""
    if not value:
        return None
    seconds = value / 1e9 if abs(value) > 1e11 else float(value)
    return datetime.fromtimestamp(seconds + APPLE_EPOCH, tz=timezone.utc)


_STRING_VALUE = b"\x84\x01+"  # typedstream: the type "+" (a C string), the NSString's value


def _fast_text(blob: bytes) -> Optional[str]:
    """The NSString value read by its encoded length: the archive's first "+" value, which must be
    followed by the end-of-object tag. None when the blob is not shaped that way."""
    if not blob.startswith(b"\x04\x0bstreamtyped"):
        return None
    at = blob.find(_STRING_VALUE)
    if at < 0:
        return None
    at += len(_STRING_VALUE)
    if at >= len(blob):  # cut off right after the marker
        return None
    tag = blob[at]
    if tag < 0x80:
        length, at = tag, at + 1
    elif tag == 0x81:
        length, at = int.from_bytes(blob[at + 1:at + 3], "little"), at + 3
    elif tag == 0x82:
        length, at = int.from_bytes(blob[at + 1:at + 5], "little"), at + 5
    else:
        return None
    if blob[at + length:at + length + 1] != b"\x86":
        return None
    try:
        return blob[at:at + length].decode("utf-8")
    except UnicodeDecodeError:
        return None


class UnreadableBody(ValueError):
    """An attributedBody that is not a typedstream we can read (corrupt, truncated)."""


def decode_attributed_body(blob: Optional[bytes]) -> Optional[str]:
    """The plain text of an NSAttributedString typedstream.

    The common shape is read directly by the string's encoded length (≈100x faster than a full
    unarchive, and exact, unlike splitting on b"NSString"); anything else goes through pytypedstream.
    """
    if not blob:
        return None
    blob = bytes(blob)
    fast = _fast_text(blob)
    if fast is not None:
        return fast
    try:
        import typedstream

        archived = typedstream.unarchive_from_data(blob)
    except Exception:  # a malformed or truncated blob: the message keeps no text rather than breaking the sync
        raise UnreadableBody() from None
    for item in getattr(archived, "contents", []):
        value = getattr(getattr(item, "value", None), "value", None)
        if isinstance(value, str):
            return value
    return None


# the server's limits (convassist/services/sync.py): longer values are cut, never refused batch after batch
MAX_TEXT = 100_000  # characters of a message's text
MAX_ID = 320  # a sender's or participant's address
MAX_NAME = 300  # a chat's name
MAX_PARTICIPANTS = 500


def clipped(value: Optional[str], limit: int) -> Optional[str]:
    return value[:limit] if value else value


@dataclass
class ChatMessage:
    rowid: int
    guid: str
    chat_guid: str
    chat_name: Optional[str]
    is_group: bool
    participants: List[str]
    sender: Optional[str]
    is_from_me: bool
    text: Optional[str]
    message_type: str
    sent_at: datetime
    edited_at: Optional[datetime] = None
    retracted: bool = False
    associated_guid: Optional[str] = None
    associated_type: Optional[int] = None
    changed_at: int = 0  # the latest raw edit/unsend time, for the look-back checkpoint

    def to_api(self) -> dict:
        """The server's sync format (no text goes anywhere else), cut to the server's limits: a batch it
        refuses would be sent again on every pass and hold back every message after it."""
        body = {"imessageGuid": self.guid, "senderId": None if self.is_from_me else clipped(self.sender, MAX_ID),
                "direction": "outgoing" if self.is_from_me else "incoming", "messageType": self.message_type,
                "text": clipped(self.text, MAX_TEXT), "sentAt": self.sent_at.isoformat(),
                "retracted": self.retracted}
        if self.edited_at:
            body["editedAt"] = self.edited_at.isoformat()
        if self.associated_type in TAPBACK_TYPES and self.associated_guid:
            body["associatedMessageGuid"] = self.associated_guid
            body["associatedMessageType"] = self.associated_type
        return body


class ChatDB:
    """A read-only view of chat.db."""

    def __init__(self, path: Path):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise FileNotFoundError(f"no Messages database at {self.path}")
        try:
            # mode=ro reads the WAL too (copying only chat.db would miss recent messages)
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
            self.conn.row_factory = sqlite3.Row
            # text that is not valid UTF-8 (chat.db holds some: half an emoji) is read with U+FFFD in place of
            # the bad bytes; strict decoding fails the whole query, on every pass, and the sync never moves on
            self.conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
            self.columns = {row[1] for row in self.conn.execute("PRAGMA table_info(message)")}
        except sqlite3.OperationalError as exc:
            if "unable to open" in str(exc) or "authorization denied" in str(exc) or "not authorized" in str(exc):
                raise FullDiskAccessError(str(exc)) from None
            raise
        self.chat_columns = {row[1] for row in self.conn.execute("PRAGMA table_info(chat)")}
        self.unreadable_bodies = 0  # attributedBody blobs that could not be decoded (corrupt, truncated)

    def close(self) -> None:
        self.conn.close()

    def _col(self, name: str, default: str = "NULL") -> str:
        return f"m.{name}" if name in self.columns else f"{default} AS {name}"

    def max_rowid(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(ROWID), 0) FROM message").fetchone()[0]

    def _participants(self) -> dict:
        rows = self.conn.execute("SELECT chj.chat_id, h.id FROM chat_handle_join chj "
                                 "JOIN handle h ON h.ROWID = chj.handle_id ORDER BY chj.chat_id, h.ROWID")
        out: dict = {}
        for chat_id, handle in rows:
            out.setdefault(chat_id, []).append(handle)
        return out

    def messages(self, *, after_rowid: int = 0, changed_after: int = 0, limit: Optional[int] = None
                 ) -> Iterator[ChatMessage]:
        """Messages with ROWID > after_rowid, plus older ones edited or unsent after `changed_after`
        (a raw chat.db time), in ROWID order. A message in several chats is read once, in its first."""
        edited = "date_edited" in self.columns
        retracted = "date_retracted" in self.columns
        changes = [f"COALESCE(m.{c}, 0)" for c in ("date_edited", "date_retracted") if c in self.columns]
        where = "m.ROWID > ?"
        params: list = [after_rowid]
        # the look-back: edits and unsends of messages already sent (after a first sync with no edit in it,
        # changed_after is 0: every row edited since is found, and none was before)
        if changes:
            where = f"(m.ROWID > ? OR MAX({', '.join(changes + ['0'])}) > ?)"
            params.append(changed_after)
        sql = f"""
            SELECT m.ROWID AS rowid, m.guid, m.text, m.is_from_me, m.date, h.id AS sender,
                   {self._col('attributedBody')}, {self._col('cache_has_attachments', '0')},
                   {self._col('associated_message_guid')}, {self._col('associated_message_type', '0')},
                   {self._col('date_edited', '0')}, {self._col('date_retracted', '0')}
            FROM message m LEFT JOIN handle h ON h.ROWID = m.handle_id
            WHERE {where}
            ORDER BY m.ROWID
            {'LIMIT ' + str(int(limit)) if limit else ''}
        """
        rows = self.conn.execute(sql, params).fetchall()
        if not rows:
            return
        chat_of = self._first_chats([r["rowid"] for r in rows])
        chats = self._chats()
        participants = self._participants()
        for row in rows:
            chat = chats.get(chat_of.get(row["rowid"]))
            if chat is None:  # a message in no chat (being deleted): nothing to attach it to
                continue
            yield self._message(row, chat, participants, edited, retracted)

    def _first_chats(self, rowids: List[int]) -> dict:
        """message ROWID → its first chat (messages ↔ chats is many-to-many: each is sent once)."""
        if len(rowids) <= 500:
            marks = ",".join("?" * len(rowids))
            query = (f"SELECT message_id, MIN(chat_id) FROM chat_message_join WHERE message_id IN ({marks}) "
                     "GROUP BY message_id")
            return dict(self.conn.execute(query, rowids).fetchall())
        # one pass over the join table (real chat.db indexes message_id; fixtures need not)
        return dict(self.conn.execute("SELECT message_id, MIN(chat_id) FROM chat_message_join "
                                      "WHERE message_id >= ? GROUP BY message_id", (min(rowids),)).fetchall())

    def _chats(self) -> dict:
        name = "display_name" if "display_name" in self.chat_columns else "NULL AS display_name"
        style = "style" if "style" in self.chat_columns else "0 AS style"
        return {row["ROWID"]: row for row in self.conn.execute(
            f"SELECT ROWID, guid, chat_identifier, {name}, {style} FROM chat")}

    def _message(self, row, chat, participants: dict, edited: bool, retracted: bool) -> ChatMessage:
        text = row["text"]
        if not text:
            try:
                text = decode_attributed_body(row["attributedBody"])
            except UnreadableBody:  # sent without text (the server still gets the message), and counted
                self.unreadable_bodies += 1
                text = None
        message_type = "text"
        if row["cache_has_attachments"] and (not text or not text.replace(OBJECT_REPLACEMENT, "").strip()):
            message_type, text = "attachment", ATTACHMENT_TEXT
        elif text:
            text = text.replace(OBJECT_REPLACEMENT, "").strip() or None
        is_retracted = bool(retracted and row["date_retracted"])
        if is_retracted:
            text = None
        chat_guid = chat["guid"]
        is_group = ";+;" in chat_guid or chat["style"] == 43
        return ChatMessage(
            rowid=row["rowid"], guid=row["guid"], chat_guid=chat_guid,
            chat_name=chat["display_name"] or None, is_group=is_group,
            participants=participants.get(chat["ROWID"], [chat["chat_identifier"]] if chat["chat_identifier"] else []),
            sender=row["sender"], is_from_me=bool(row["is_from_me"]), text=text, message_type=message_type,
            sent_at=apple_time(row["date"]) or datetime.fromtimestamp(APPLE_EPOCH, tz=timezone.utc),
            edited_at=apple_time(row["date_edited"]) if edited else None, retracted=is_retracted,
            associated_guid=row["associated_message_guid"], associated_type=row["associated_message_type"] or None,
            changed_at=max(row["date_edited"] or 0, row["date_retracted"] or 0))
