"""Learning from the history a provider already has: their past exchanges — a client's message and the
reply the provider sent after it — as training samples, opt-in, with a preview of what would be used.

What does not teach the voice is left out: group chats (chatter not addressed to the provider),
attachments and empty messages, very short acknowledgements ("ok", "thanks!"), and replies sent long
after the client's message (usually about something else). History samples weigh less than the
provider's own edits (HISTORY_QUALITY), and importing twice adds nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from convassist.db import one_at_a_time
from convassist.models import Conversation, Message, TrainingSample, as_utc
from convassist.services import live
from convassist.services.examples import REPLY_WITHIN, find_examples, is_acknowledgement, shows_examples, with_examples
from ml.prompt import Turn, render

HISTORY_QUALITY = 0.5  # edits weigh 1.0, used suggestions their confidence
CONTEXT_TURNS = 4  # the turns before the reply that go into the sample's prompt
MAX_IMPORT = 2000
SCAN_MESSAGES = 20_000  # the newest messages read for exchanges (a preview must not read years of history)


@dataclass(frozen=True)
class HistoryPair:
    conversation_id: uuid.UUID
    message: str  # the client's message the reply answers
    reply: str
    prompt: str  # the sample's input: the turns before the reply, Them/Me, ending with "Me:"
    context: tuple[Turn, ...] = ()  # those turns

    @property
    def key(self) -> tuple[str, str]:
        """What makes two imports the same: the client's message and the reply (the prompt's examples
        change as the history grows)."""
        return " ".join(self.message.split()), self.reply


def history_pairs(session: Session, provider_id: uuid.UUID, *, limit: int = MAX_IMPORT) -> tuple[list[HistoryPair], int]:
    """The provider's past exchanges that would teach the voice (newest first, at most `limit`), and
    how many of their replies were left out."""
    newest = (sa.select(Message.conversation_id, Message.direction, Message.text, Message.message_type,
                        Message.sent_at, Message.id)
              .join(Conversation, Conversation.id == Message.conversation_id)
              .where(Message.provider_id == provider_id, Conversation.provider_id == provider_id,
                     Conversation.is_group.is_(False), Message.retracted.is_(False))
              .order_by(Message.sent_at.desc()).limit(SCAN_MESSAGES).subquery())
    rows = session.execute(sa.select(newest).order_by(newest.c.conversation_id, newest.c.sent_at,
                                                      newest.c.id)).all()
    pairs: list[HistoryPair] = []
    skipped = 0
    turns: list[tuple] = []
    current = None
    for row in rows:
        if row.conversation_id != current:
            current, turns = row.conversation_id, []
        text = (row.text or "").strip()
        if row.direction == "outgoing" and turns and turns[-1].direction == "incoming":
            asked = turns[-1]
            usable = (text and row.message_type == "text" and asked.message_type == "text"
                      and not is_acknowledgement(text)
                      and as_utc(row.sent_at) - as_utc(asked.sent_at) <= REPLY_WITHIN and (asked.text or "").strip())
            if usable:
                context = [Turn("Me" if t.direction == "outgoing" else "Them", t.text.strip())
                           for t in turns[-CONTEXT_TURNS:] if (t.text or "").strip() and t.message_type == "text"]
                pairs.append(HistoryPair(row.conversation_id, asked.text.strip(), text, render(context),
                                         tuple(context)))
            else:
                skipped += 1
        elif row.direction == "outgoing":
            skipped += 1  # not an answer to a client's message (it started the conversation, or followed up)
        turns.append(row)
    pairs.reverse()  # newest first
    return pairs[:limit], skipped


def history_offer(session: Session, provider_id: uuid.UUID) -> tuple[list[HistoryPair], int]:
    """What importing would add now (pairs not imported yet, newest first) and how many replies were
    left out: the preview both the Training page and the API show."""
    from convassist.services.training import history_keys

    pairs, skipped = history_pairs(session, provider_id)
    have = history_keys(session, provider_id)
    return [p for p in pairs if p.key not in have], skipped


def import_history(session: Session, provider_id: uuid.UUID, *, limit: int = MAX_IMPORT) -> int:
    """Add the history pairs as samples (source "history", quality HISTORY_QUALITY); pairs already
    imported are not added again. Returns how many were added.

    Half of the samples' prompts (a stable choice by the exchange: services/examples.shows_examples, the
    rule of every sample) hold the provider's examples the way a suggestion's prompt does."""
    from convassist.services.training import history_keys
    from convassist.settings import get_settings

    # one import of a provider at a time (another app process, the API and the page at once): the next one
    # waits, then finds these imported
    one_at_a_time(session, f"history-import:{provider_id}")
    pairs, _ = history_pairs(session, provider_id, limit=limit)
    existing = history_keys(session, provider_id)
    shown = get_settings().ml_service_examples
    added = 0
    for pair in pairs:
        if pair.key in existing:
            continue
        examples = find_examples(session, provider_id, pair.conversation_id, pair.message,
                                 shown if shows_examples("\x00".join(pair.key)) else 0)
        session.add(TrainingSample(provider_id=provider_id, input_context=render(with_examples(list(pair.context),
                                                                                              examples)),
                                   expected_output=pair.reply, source="history", quality=HISTORY_QUALITY))
        existing.add(pair.key)
        added += 1
    session.flush()
    if added:
        live.changed(session, provider_id, "samples")
    return added
