"""Conversations: the list (search, needs-reply filter, live) and one conversation with suggestions."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import empty_state, page_shell, route_param
from convassist.state.conversations import ConversationsState, ConversationState


def conversation_row(item: dict) -> rx.Component:
    return rx.link(
        rx.card(
            rx.hstack(
                rx.avatar(fallback=item["initials"].to(str), size="3", radius="full", class_name="avatar"),
                rx.vstack(
                    rx.hstack(rx.text(item["name"], weight="bold", trim="both"),
                              rx.cond(item["is_group"], rx.badge("Group", variant="soft")),
                              rx.cond(item["needs_reply"], rx.badge("Needs reply", color_scheme="orange")),
                              spacing="2", align="center", wrap="wrap"),
                    # no trim: trimming the line box cut the descenders of a one-line, overflow-hidden text
                    rx.text(item["preview"], size="2", color_scheme="gray", class_name="conversation-preview",
                            overflow="hidden", text_overflow="ellipsis", white_space="nowrap", max_width="100%",
                            line_height="1.5"),
                    spacing="1", align="start", min_width="0", flex="1",
                ),
                rx.cond(item["last_at"] != "",
                        rx.text(rx.moment(item["last_at"], from_now=True), size="1", color_scheme="gray")),
                align="center", spacing="3", width="100%",
            ),
            width="100%",
        ),
        href="/conversations/" + item["id"].to(str), underline="none", width="100%",
        class_name="conversation-row",
    )


def conversations_page() -> rx.Component:
    return page_shell(
        "Conversations",
        rx.hstack(
            rx.input(rx.input.slot(rx.icon("search", size=16)), placeholder="Search names and messages",
                     id="conversation-search", value=ConversationsState.query,
                     on_change=ConversationsState.set_query.debounce(300), width="100%", max_width="28rem"),
            rx.hstack(rx.switch(id="needs-reply-filter", checked=ConversationsState.needs_reply_only,
                                on_change=ConversationsState.set_needs_reply_only),
                      rx.text("Needs reply", size="2"), align="center", spacing="2"),
            spacing="4", align="center", wrap="wrap", width="100%",
        ),
        rx.cond(ConversationsState.items.length() > 0,
                rx.vstack(rx.foreach(ConversationsState.items, conversation_row), spacing="2", width="100%",
                          id="conversation-list"),
                rx.cond((ConversationsState.query != "") | ConversationsState.needs_reply_only,
                        empty_state("search-x", "Nothing matches",
                                    "No conversation matches this search or filter."),
                        empty_state("messages-square", "No conversations",
                                    "Conversations appear after your Mac's first sync."))),
    )


# a day's first message gets a separator: "Today", "Yesterday", a weekday this week, else the date
DAY_LABELS = {"sameDay": "[Today]", "lastDay": "[Yesterday]", "lastWeek": "dddd", "nextDay": "ddd, MMM D, YYYY",
              "nextWeek": "ddd, MMM D, YYYY", "sameElse": "ddd, MMM D, YYYY"}


def day_separator(m: dict) -> rx.Component:
    return rx.hstack(rx.separator(size="4", flex="1"),
                     rx.text(rx.moment(m["sent_at"], calendar=DAY_LABELS), size="1", color_scheme="gray",
                             weight="medium", white_space="nowrap"),
                     rx.separator(size="4", flex="1"),
                     align="center", spacing="3", width="100%", class_name="day-separator")


def bubble(m: dict) -> rx.Component:
    return rx.fragment(rx.cond(m["show_day"], day_separator(m)), _bubble(m))


def _bubble(m: dict) -> rx.Component:
    mine = m["direction"] == "outgoing"
    return rx.hstack(
        rx.vstack(
            rx.cond(ConversationState.conversation["is_group"] & ~mine,
                    rx.text(m["sender"], size="1", weight="medium", color_scheme="gray")),
            rx.box(
                rx.text(m["text"], size="2", white_space="pre-wrap", font_style=rx.cond(m["retracted"], "italic", "normal")),
                background=rx.cond(mine, rx.color("accent", 9), rx.color("gray", 4)),
                color=rx.cond(mine, "white", rx.color("gray", 12)),
                padding_x="0.8rem", padding_y="0.5rem", border_radius="1rem", max_width="32rem",
            ),
            rx.hstack(rx.text(rx.moment(m["sent_at"], format="MMM D, HH:mm"), size="1", color_scheme="gray"),
                      rx.cond(m["reactions"] != "", rx.badge(m["reactions"], variant="soft", size="1")),
                      spacing="2"),
            spacing="1", align=rx.cond(mine, "end", "start"),
        ),
        justify=rx.cond(mine, "end", "start"), width="100%", class_name=rx.cond(mine, "bubble-me", "bubble-them"),
    )


def suggestion_card(s: dict, index: int) -> rx.Component:
    editing = ConversationState.editing == index
    return rx.card(
        rx.cond(
            editing,
            rx.vstack(
                rx.text_area(value=ConversationState.draft, on_change=ConversationState.set_draft,
                             id="edit-draft", width="100%"),
                rx.hstack(rx.button("Save", id="save-edit", on_click=ConversationState.save_edit, size="1"),
                          rx.button("Cancel", variant="soft", color_scheme="gray", size="1",
                                    on_click=ConversationState.start_edit(-1)), spacing="2"),
                width="100%",
            ),
            rx.hstack(
                rx.vstack(
                    rx.text(s["text"], size="2", class_name="suggestion-text"),
                    rx.cond(s["check"] != "",
                            rx.hstack(rx.icon("triangle-alert", size=12, color=rx.color("amber", 11), flex_shrink="0"),
                                      rx.text(s["check"], size="1", color_scheme="amber", class_name="suggestion-check"),
                                      spacing="1", align="center")),
                    spacing="1", flex="1"),
                rx.cond(ConversationState.chosen == index,
                        rx.badge(rx.icon("check", size=12), "Copied", color_scheme="green", class_name="chosen-badge")),
                rx.badge(s["confidence"], variant="soft", title=s["percent"], class_name="confidence"),
                rx.cond(ConversationState.verdict == "",
                        rx.hstack(
                            rx.button("Use", size="1", class_name="accept-suggestion",
                                      on_click=ConversationState.accept(index)),
                            rx.button("Edit", size="1", variant="soft", class_name="edit-suggestion",
                                      on_click=ConversationState.start_edit(index)),
                            spacing="2")),
                align="center", spacing="3", width="100%", wrap="wrap",
            ),
        ),
        width="100%", class_name=rx.cond(ConversationState.chosen == index, "suggestion chosen", "suggestion"),
        border=rx.cond(ConversationState.chosen == index, f"2px solid {rx.color('green', 8)}", "none"),
    )


def suggestions_panel() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Suggested replies", size="3", as_="h2"),
                rx.cond(ConversationState.cached, rx.badge("Instant", color_scheme="gray", id="cached-badge",
                                                          title="Ready from before: no waiting")),
                rx.spacer(),
                rx.button(rx.cond(ConversationState.streaming, rx.spinner(size="2"), rx.icon("sparkles", size=16)),
                          rx.cond(ConversationState.streaming, "Writing…",
                                  rx.cond(ConversationState.verdict != "", "Suggest other replies",
                                          "Suggest replies")), id="suggest",
                          on_click=ConversationState.suggest,
                          disabled=ConversationState.streaming | (ConversationState.target_id == "")),
                width="100%", align="center",
            ),
            rx.cond(ConversationState.streaming,
                    rx.text(ConversationState.streamed, id="streamed-text", size="2", color_scheme="gray")),
            rx.foreach(ConversationState.suggestions, suggestion_card),
            rx.cond(ConversationState.suggest_error != "",
                    rx.callout(ConversationState.suggest_error, icon="triangle-alert", color_scheme="red",
                               id="suggest-error")),
            rx.cond((ConversationState.suggestions.length() > 0) & (ConversationState.verdict == ""),
                    rx.form(rx.hstack(rx.input(name="reason", placeholder="Why not? (optional)", size="1",
                                               id="reject-reason"),
                                      rx.button("Reject", type="submit", id="reject", size="1", variant="soft",
                                                color_scheme="red"), spacing="2"),
                            on_submit=ConversationState.reject, reset_on_submit=True)),
            rx.cond(ConversationState.verdict != "",
                    rx.callout(ConversationState.verdict_message, icon="check", color_scheme="green", id="verdict")),
            spacing="3", width="100%",
        ),
        width="100%", id="suggestions-panel",
    )


def conversation_page() -> rx.Component:
    # until load has read the conversation of this address, the state still holds the one open before (a
    # click from it, or from the inbox): show neither its name nor its messages and cards, which a person
    # could take for this conversation's and use
    current = ConversationState.shown_id == route_param("conversation_id")
    return page_shell(
        rx.cond(~current | (ConversationState.error != ""), "Conversation",
                ConversationState.conversation["name"].to(str)),
        rx.cond(~current,
                rx.hstack(rx.spinner(size="3"), rx.text("Opening the conversation…", color_scheme="gray"),
                          id="conversation-opening", align="center", spacing="3", padding_y="2rem"),
                conversation_body()),
    )


def conversation_body() -> rx.Component:
    return rx.fragment(
        rx.hstack(
            rx.link(rx.hstack(rx.icon("arrow-left", size=16), "All conversations", align="center", spacing="1"),
                    href="/conversations", size="2"),
            rx.spacer(),
            rx.cond(ConversationState.conversation["needs_reply"].to(bool),
                    rx.hstack(rx.badge("Needs reply", color_scheme="orange"),
                              rx.button(rx.icon("check", size=14), "Mark as handled", id="mark-handled", size="1",
                                        variant="soft", on_click=ConversationState.mark_handled,
                                        title="Answered elsewhere, or no answer needed"),
                              spacing="2", align="center")),
            width="100%", align="center", wrap="wrap",
        ),
        rx.cond(ConversationState.notice != "",
                rx.callout(ConversationState.notice, icon="check", color_scheme="green", id="conversation-notice")),
        rx.cond(
            ConversationState.error != "",
            rx.callout(ConversationState.error, icon="triangle-alert", color_scheme="red"),
            rx.vstack(
                rx.cond(ConversationState.next_before != "",
                        rx.button("Load older messages", id="load-older", variant="soft", size="1",
                                  on_click=ConversationState.load_older)),
                rx.vstack(rx.foreach(ConversationState.messages, bubble), spacing="3", width="100%",
                          id="messages"),
                suggestions_panel(),
                spacing="4", width="100%",
            ),
        ),
    )
