"""The Conversations list and one conversation with its reply suggestions."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import reflex as rx

from convassist.db import session_scope
from convassist.schemas import form_fields, parse
from convassist.services import contacts, conversations, responses
from convassist.services.errors import DomainError
from convassist.state.auth import current_provider_id
from convassist.state.live import follow_changes
from convassist.worker.contracts import Suggestion

PAGE = 50
log = logging.getLogger(__name__)


def _message_dict(m: conversations.MessageView) -> dict:
    return {"id": str(m.id), "direction": m.direction, "sender": m.sender_name or m.sender_id or "",
            "text": m.text or ("Message unsent" if m.retracted else f"[{m.message_type}]"),
            "retracted": m.retracted, "sent_at": m.sent_at.isoformat(),
            "reactions": " ".join(sorted({r["type"] for r in m.reactions}))}


def _with_days(messages: list[dict], timezone: str) -> list[dict]:
    """Mark the first message of each day (in the person's time zone; UTC until the browser said)
    so that the page puts a day separator above it."""
    try:
        zone = ZoneInfo(timezone) if timezone else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    marked, previous = [], None
    for m in messages:
        day = datetime.fromisoformat(m["sent_at"]).astimezone(zone).date()
        marked.append({**m, "show_day": day != previous})
        previous = day
    return marked


class ConversationsState(rx.State):
    items: list[dict] = []
    total: int = 0
    query: str = ""
    needs_reply_only: bool = False
    _watch_id: str = ""
    _suggesting: str = ""  # the suggest run that may write to the page (load ends it: another conversation)

    @rx.event(background=True)
    async def watch(self):
        """Newly synced messages (and conversations handled elsewhere) appear without a reload."""
        await follow_changes(self, frozenset({"messages"}), lambda _: self.refresh())

    @rx.event
    async def refresh(self):
        """Reload the list."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        query, needs_reply = self.query or None, True if self.needs_reply_only else None

        def read():
            with session_scope() as session:  # a search reads every message: off the event loop
                return conversations.list_conversations(session, provider_id, query=query, needs_reply=needs_reply,
                                                        limit=100)

        page, self.total = await asyncio.to_thread(read)
        self.items = [{"id": str(c.id), "name": c.display_name, "initials": contacts.initials(c.display_name),
                       "is_group": c.is_group,
                       "last_at": c.last_message_at.isoformat() if c.last_message_at else "",
                       "preview": c.last_message_preview or "", "needs_reply": c.needs_reply,
                       "count": c.message_count} for c in page]

    @rx.event
    async def set_query(self, value: str):
        self.query = str(value)[:conversations.MAX_QUERY_LENGTH]
        await self.refresh()

    @rx.event
    async def set_needs_reply_only(self, value: bool):
        self.needs_reply_only = value
        await self.refresh()


class ConversationState(rx.State):
    conversation: dict = {}
    messages: list[dict] = []  # oldest first, for display
    next_before: str = ""
    error: str = ""
    # suggestions
    target_id: str = ""
    response_id: str = ""
    streaming: bool = False
    streamed: str = ""
    suggestions: list[dict] = []
    cached: bool = False
    suggest_error: str = ""
    verdict: str = ""
    chosen: int = -1  # the card that was used or edited
    editing: int = -1
    draft: str = ""
    timezone: str = ""  # the browser's (IANA name), for day separators
    notice: str = ""
    _watch_id: str = ""
    _suggesting: str = ""  # the suggest run that may write to the page (load ends it: another conversation)
    # the id of the conversation whose messages and suggestions the state holds (set by load; a watch
    # reloads this one); the page shows them only while it equals the address's id
    shown_id: str = ""

    @rx.var
    def verdict_message(self) -> str:
        """What the person's action did, in their words."""
        return {"accepted": "Copied to your clipboard: paste it into Messages. Replies you use teach "
                            "ConvAssist your voice.",
                "edited": "Your edit is saved and copied to your clipboard: paste it into Messages. Edited "
                          "replies teach ConvAssist your voice.",
                "rejected": "Got it: these suggestions won't be used for training."}.get(self.verdict, "")

    @rx.event(background=True)
    async def watch(self):
        """Messages synced while the conversation is open appear in it."""
        await follow_changes(self, frozenset({"messages", "suggestions"}), lambda _: self.catch_up())

    def _conversation_id(self) -> uuid.UUID:
        """The conversation on the page: the one load read (a background watch sees the router of when it
        started, which may be a page the tab has left)."""
        return uuid.UUID(self.shown_id)

    def _clear_suggestions(self) -> None:
        self.suggestions, self.streamed, self.verdict, self.response_id = [], "", "", ""
        self.chosen, self.suggest_error, self.editing = -1, "", -1

    async def _read(self) -> responses.ResponsePublic | None | bool:
        """Read the newest page and the latest suggestions for the message to answer into the state;
        False if there is no such conversation (for this provider)."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return False
        try:
            with session_scope() as session:
                page = conversations.get_conversation(session, provider_id, self._conversation_id(), limit=PAGE)
                incoming = [m for m in page.messages if m.direction == "incoming" and not m.retracted]
                target = incoming[0] if incoming else (page.messages[0] if page.messages else None)
                latest = responses.latest_for_message(session, provider_id, target.id) if target else None
        except (DomainError, ValueError):
            self.conversation, self.messages = {}, []
            self.error = "This conversation does not exist."
            return False
        c = page.conversation
        self.conversation = {"name": c.display_name, "is_group": c.is_group, "count": c.message_count,
                             "needs_reply": c.needs_reply}
        self.messages = _with_days([_message_dict(m) for m in reversed(page.messages)], self.timezone)
        self.next_before = page.next_before or ""
        self.target_id = str(target.id) if target else ""
        return latest

    @rx.event
    async def load(self):
        """Open the conversation at its newest page."""
        self.error, self.notice = "", ""
        # the route is /conversations/[conversation_id]; the page compares this with the address's own
        self.shown_id = str(self.router.page.params.get("conversation_id", ""))
        self._clear_suggestions()
        # a suggest still running for the conversation open before writes nothing here (its reply is stored,
        # and shown there); this page's Suggest is free
        self.streaming, self._suggesting = False, ""
        latest = await self._read()
        if latest is False:
            return
        if latest is not None:
            self._show(latest)
        # from the inbox's "Suggest" (?suggest=1): suggestions start at once, unless some are shown
        wanted = self.router.url.query_parameters.get("suggest") == "1" and latest is None and self.target_id
        # open at the newest message: the last bubbles and the suggestions under them in view (once
        # the page has drawn them: a scroll sent with the state update would run before)
        scroll = rx.call_script("setTimeout(() => document.getElementById('suggestions-panel')"
                                "?.scrollIntoView({block: 'end'}), 100)")
        then = [scroll, ConversationState.suggest] if wanted else [scroll]
        if self.timezone:
            return then
        return [rx.call_script("Intl.DateTimeFormat().resolvedOptions().timeZone",
                               callback=ConversationState.set_timezone), *then]

    async def catch_up(self) -> None:
        """New messages or suggestions arrived: show them; a newer message to answer replaces the
        suggestions shown, and suggestions computed ahead appear where none were shown."""
        if not self.conversation:
            return
        before = self.target_id
        latest = await self._read()
        if latest is False or self.streaming:
            return
        if self.target_id != before:
            self._clear_suggestions()
        if latest is not None and not self.suggestions:
            self._show(latest)

    @rx.event
    def set_timezone(self, timezone: str):
        """The browser's time zone: days are the person's days."""
        if isinstance(timezone, str) and len(timezone) < 64:
            self.timezone = timezone
            self.messages = _with_days(self.messages, timezone)

    def _show(self, view: responses.ResponsePublic) -> None:
        """A stored response as cards, with its verdict (the card used or edited is marked)."""
        self.response_id, self.cached = str(view.response_id), view.cached
        self.suggestions = _cards(view.suggestions)
        self.streamed = view.response or ""
        self.verdict = view.status if view.status in ("accepted", "edited", "rejected") else ""
        self.chosen = -1
        if view.status in ("accepted", "edited"):
            at = view.chosen_suggestion or 0
            self.chosen = next((i for i, card in enumerate(self.suggestions) if card["at"] == at), 0)
        if view.status == "edited" and self.suggestions:  # the card shows what was sent
            self.suggestions = [{**card, "text": view.edited_response, "check": ""} if i == self.chosen else card
                                for i, card in enumerate(self.suggestions)]

    @rx.event
    async def mark_handled(self):
        """No reply owed here until a newer message arrives (answered elsewhere, or none needed)."""
        provider_id = await current_provider_id(self)
        if provider_id is None or not self.conversation:
            return
        with session_scope() as session:
            conversations.mark_handled(session, provider_id, self._conversation_id())
        self.conversation = {**self.conversation, "needs_reply": False}
        self.notice = (f"Marked as handled: off your Needs reply list until {self.conversation['name']} "
                       "writes again.")

    @rx.event
    async def load_older(self):
        """Prepend the previous page of history."""
        provider_id = await current_provider_id(self)
        if provider_id is None or not self.next_before:
            return
        with session_scope() as session:
            page = conversations.get_conversation(session, provider_id, self._conversation_id(),
                                                  before=self.next_before, limit=PAGE)
        self.messages = _with_days([_message_dict(m) for m in reversed(page.messages)] + self.messages,
                                   self.timezone)
        self.next_before = page.next_before or ""

    @rx.event(background=True)
    async def suggest(self):
        """Ask for up to 3 suggestions; the first streams in token by token. What it writes goes to the page
        only while the page still shows the message it answers (the person may open another conversation
        meanwhile: the cards would be the other client's, ready to paste)."""
        async with self:
            if self.streaming or not self.target_id:
                return
            self.streaming, self.streamed, self.suggestions, self.suggest_error, self.verdict = True, "", [], "", ""
            self.chosen = -1
            self.editing = -1
            target = self.target_id
            run = self._suggesting = uuid.uuid4().hex
            provider_id = await current_provider_id(self)
        if provider_id is None:
            async with self:
                self._finish(run)
            return
        try:
            view = await responses.generate_for_message(provider_id, uuid.UUID(target), count=3, background=True)
            if view.status == "generating":
                async for text in responses.stream_text(view.stream_key):
                    async with self:
                        if self._suggesting != run:  # another conversation opened: nothing more to show here
                            return
                        if self.target_id == target:
                            self.streamed = text
                view = await _wait_done(provider_id, view.response_id)
        except DomainError as exc:
            async with self:
                if self._finish(run):
                    self.suggest_error = exc.message
            return
        except Exception as exc:  # never leave the button spinning
            log.error("suggest failed type=%s", type(exc).__name__)
            async with self:
                if self._finish(run):
                    self.suggest_error = "Something went wrong; try again."
            return
        async with self:
            if not self._finish(run) or self.target_id != target:
                return
            if view.status == "completed":
                self._show(view)
            else:
                self.response_id, self.cached = str(view.response_id), view.cached
                self.suggest_error = view.error or "No suggestion this time; try again."

    def _finish(self, run: str) -> bool:
        """End suggest run `run`: False if the page has moved on (it writes nothing more), else the button is
        free again and True."""
        if self._suggesting != run:
            return False
        self.streaming, self._suggesting = False, ""
        return True

    @rx.event
    async def accept(self, index: int):
        """Use suggestion `index` as it is (another than the first counts as an edit to it): recorded,
        marked, and copied to the clipboard to paste into Messages."""
        if not isinstance(index, int) or not 0 <= index < len(self.suggestions):
            return
        card = self.suggestions[index]
        if await self._act("accept", at=card["at"]):
            self.chosen = index
            return rx.set_clipboard(card["text"])

    @rx.event
    def start_edit(self, index: int):
        if isinstance(index, int) and 0 <= index < len(self.suggestions):
            self.editing, self.draft = index, self.suggestions[index]["text"]

    @rx.event
    def set_draft(self, value: str):
        self.draft = value if isinstance(value, str) else ""

    @rx.event
    async def save_edit(self):
        """Keep the edited text: the card shows it, it is copied to the clipboard, and it becomes a
        training sample of the provider's voice."""
        index, text = self.editing, self.draft
        if not 0 <= index < len(self.suggestions) or not await self._act("edit", edited=text,
                                                                         at=self.suggestions[index]["at"]):
            return
        self.suggestions = [{**s, "text": text} if i == index else s for i, s in enumerate(self.suggestions)]
        self.chosen = index
        return rx.set_clipboard(text)

    @rx.event
    async def reject(self, form: dict):
        """Reject the suggestions with an optional reason."""
        await self._act("reject", reason=form_fields(form).get("reason", ""))

    async def _act(self, action: str, *, edited: str | None = None, reason: str | None = None,
                   at: int | None = None) -> bool:
        """Record the verdict on suggestion `at`; whether it was stored (else suggest_error says why)."""
        provider_id = await current_provider_id(self)
        if provider_id is None or not self.response_id:
            return False
        try:
            verdict = parse(responses.Verdict, {"action": action, "edited_response": edited, "reason": reason,
                                                "suggestion_index": at})
            view = await responses.record_action(provider_id, uuid.UUID(self.response_id), verdict)
        except DomainError as exc:
            self.suggest_error = exc.message
            return False
        self.verdict, self.editing = view.status, -1
        return True


def confidence_word(confidence: float) -> str:
    """The model's confidence in words (the number shows on hover)."""
    return "likely" if confidence >= 0.4 else "maybe" if confidence >= 0.15 else "long shot"


def _check(numbers: list[str]) -> str:
    """What a card says about numbers the model may have made up ("" when there are none)."""
    if not numbers:
        return ""
    listed = ", ".join(numbers)
    return f"Check {listed}: not in this conversation or your past replies."


def _cards(suggestions: list[Suggestion]) -> list[dict]:
    """Suggestions as cards in responses.ranked's order; `at` is the suggestion's place in the response
    (what a verdict names)."""
    return [{"text": s.text, "confidence": confidence_word(s.confidence),
             "percent": f"Confidence {round(s.confidence * 100)}%", "at": i, "check": _check(s.unsupported_numbers)}
            for i, s in responses.ranked(suggestions)]


async def _wait_done(provider_id: uuid.UUID, response_id: uuid.UUID) -> responses.ResponsePublic:
    """The response once the worker's result is stored (the stream ends a moment before)."""
    for _ in range(int(responses.GENERATION_TIMEOUT / 0.05)):
        view = await responses.get_response(provider_id, response_id)
        if view.status != "generating":
            return view
        await asyncio.sleep(0.05)
    return view
