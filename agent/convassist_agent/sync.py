"""One sync pass: new, edited and unsent messages since the checkpoint, in batches the server accepts.

The checkpoint advances only after the server confirmed a whole window of messages. A pass cut short
(server down, Mac asleep) resends at most that window, which the server's idempotency absorbs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional

from convassist_agent.chatdb import MAX_ID, MAX_NAME, MAX_PARTICIPANTS, ChatDB, ChatMessage, clipped
from convassist_agent.client import PAIRING_ENDED, ApiError, Client
from convassist_agent.state import AgentState

log = logging.getLogger(__name__)

MAX_MESSAGES = 500  # the server takes up to 1,000
MAX_BYTES = 4 * 1024 * 1024  # the server takes up to 5 MB


def batches_for(window: List[ChatMessage]) -> List[dict]:
    """Group a window by chat (in first-seen order), split to the server's limits."""
    by_chat: "OrderedDict[str, List[ChatMessage]]" = OrderedDict()
    for message in window:
        by_chat.setdefault(message.chat_guid, []).append(message)
    batches = []
    for chat_guid, messages in by_chat.items():
        first = messages[0]
        current, size = [], 0
        for message in messages:
            body = message.to_api()
            length = len(json.dumps(body))
            if current and (len(current) >= MAX_MESSAGES or size + length > MAX_BYTES):
                batches.append(_batch(first, current))
                current, size = [], 0
            current.append(body)
            size += length
        if current:
            batches.append(_batch(first, current))
    return batches


def _batch(first: ChatMessage, messages: List[dict]) -> dict:
    participants = [clipped(p, MAX_ID) for p in first.participants[:MAX_PARTICIPANTS]]
    return {"conversationId": first.chat_guid, "displayName": clipped(first.chat_name, MAX_NAME),
            "isGroup": first.is_group, "participants": participants, "messages": messages}


def sync_messages(db: ChatDB, client: Client, state: AgentState,
                  progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, int]:
    """Send everything new since the checkpoint; returns the server's summed counts."""
    pending = list(db.messages(after_rowid=state.last_rowid, changed_after=state.last_change))
    totals = {"received": 0, "inserted": 0, "updated": 0, "duplicates": 0, "batches": 0}
    for start in range(0, len(pending), MAX_MESSAGES):
        window = pending[start:start + MAX_MESSAGES]
        for batch in batches_for(window):
            counts = client.sync_messages(batch)
            for key in ("received", "inserted", "updated", "duplicates"):
                totals[key] += counts.get(key, 0)
            totals["batches"] += 1
        # the whole window is confirmed: move the checkpoint past it
        state.last_rowid = max([state.last_rowid] + [m.rowid for m in window])
        state.last_change = max([state.last_change] + [m.changed_at for m in window])
        state.last_sync_at = datetime.now(timezone.utc).isoformat()
        state.save()
        if progress:
            progress(min(start + MAX_MESSAGES, len(pending)), len(pending))
    if not pending:  # nothing new: the server still hears from this Mac (else a quiet Mac looks stopped)
        try:
            client.checked_in()
        except ApiError as exc:
            if exc.code in PAIRING_ENDED:
                raise
            log.warning("check-in refused error=%s", exc.code)  # an older server: the next sync says it all
        state.last_sync_at = datetime.now(timezone.utc).isoformat()
        state.save()
    totals["unreadable_bodies"] = db.unreadable_bodies  # sent without text; counted, never a crash
    log.info("sync pass messages=%d batches=%d inserted=%d updated=%d duplicates=%d unreadable_bodies=%d",
             len(pending), totals["batches"], totals["inserted"], totals["updated"], totals["duplicates"],
             totals["unreadable_bodies"])
    return totals


def sync_contacts(contacts: List[dict], client: Client, state: AgentState) -> Optional[dict]:
    """Send the address book when it changed since the last confirmed upload."""
    digest = hashlib.sha256(json.dumps(contacts, sort_keys=True).encode()).hexdigest()
    if not contacts or digest == state.contacts_hash:
        return None
    counts = {"received": 0, "inserted": 0, "updated": 0, "unchanged": 0}
    for start in range(0, len(contacts), 1000):
        result = client.sync_contacts(contacts[start:start + 1000])
        for key in counts:
            counts[key] += result.get(key, 0)
    state.contacts_hash = digest
    state.save()
    log.info("contacts sent=%d inserted=%d updated=%d", len(contacts), counts["inserted"], counts["updated"])
    return counts
