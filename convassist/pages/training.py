"""Training, in the provider's words: teach ConvAssist your voice, watch it learn, see before/after on
your own replies, switch the voice on (or back off), and what it learns from."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import page_shell
from convassist.state.training import SOURCE_FILTERS, TrainingState
from ml.train import TrainConfig


def banner(icon, color, *text, **props) -> rx.Component:
    """A callout whose text is made of several parts (literal and live)."""
    return rx.callout.root(rx.callout.icon(rx.icon(icon, size=16)), rx.callout.text(*text), color_scheme=color,
                           width="100%", **props)


def teach_card() -> rx.Component:
    def knob(label: str, name: str, value: str, hint: str) -> rx.Component:
        return rx.vstack(rx.text(label, size="1", weight="medium", as_="label", html_for=f"train-{name}"),
                         rx.input(name=name, default_value=value, id=f"train-{name}", width="7rem"),
                         rx.text(hint, size="1", color_scheme="gray"), spacing="1")

    enough = TrainingState.usable_total >= TrainingState.min_samples
    return rx.card(rx.form(rx.vstack(
        rx.heading("Teach ConvAssist your voice", size="5", as_="h2"),
        rx.text("ConvAssist learns how you write from the replies you used or edited, and the examples you "
                "add. It has ", rx.text.strong(TrainingState.usable_total, id="usable-total"),
                " of your replies to learn from.", size="2"),
        rx.cond(~enough,
                banner("info", "blue", "It needs at least ", TrainingState.min_samples, " replies to start: use or "
                       "edit suggestions in your conversations, or add examples below.", id="need-more-samples")),
        rx.hstack(
            rx.button(rx.icon("play", size=16), "Start learning", type="submit", id="start-training", size="3",
                      disabled=TrainingState.running | ~enough),
            rx.text("Takes a few minutes; you can keep working.", size="1", color_scheme="gray"),
            align="center", spacing="3", wrap="wrap"),
        rx.accordion.root(rx.accordion.item(
            header="Advanced", value="advanced",
            content=rx.hstack(
                knob("Passes over your replies (at least)", "epochs", str(TrainConfig.epochs), "epochs"),
                knob("Learning speed", "learning_rate", str(TrainConfig.learning_rate), "learning rate"),
                knob("Capacity", "lora_rank", str(TrainConfig.rank), "LoRA rank"),
                spacing="4", wrap="wrap", padding_top="0.5rem")),
            collapsible=True, type="single", variant="ghost", width="100%", id="advanced"),
        spacing="3", width="100%"), on_submit=TrainingState.start_training), width="100%")


def history_card() -> rx.Component:
    def exchange(item: dict) -> rx.Component:
        return rx.box(rx.text("They wrote: ", rx.text.em(item["message"]), size="1", color_scheme="gray"),
                      rx.text(item["reply"], size="2"), padding_y="0.4rem", class_name="history-exchange",
                      border_bottom=f"1px solid {rx.color('gray', 4)}", width="100%")

    return rx.card(rx.vstack(
        rx.heading("Learn from your past replies", size="4", as_="h2"),
        rx.text("Your Mac already synced how you answer clients. ConvAssist can learn from ",
                rx.text.strong(TrainingState.history_total, id="history-total"),
                " of those exchanges (one-to-one chats; short acknowledgements, attachments and late replies left "
                "out: ", TrainingState.history_skipped, "). They count half as much as replies you edit. A few of "
                "them:", size="2"),
        rx.foreach(TrainingState.history_preview, exchange),
        rx.button(rx.icon("history", size=16), "Learn from these ", TrainingState.history_total, " replies",
                  id="import-history", variant="soft", on_click=TrainingState.import_history),
        spacing="2", width="100%"), width="100%", id="history-card")


def example_row(example: dict) -> rx.Component:
    return rx.box(
        rx.text("They wrote: ", rx.text.em(example["message"]), size="2"),
        rx.grid(
            rx.vstack(rx.text("Base model", size="1", color_scheme="gray"),
                      rx.text(example["base"], size="2", class_name="example-base"), spacing="1"),
            rx.vstack(rx.text("Your voice", size="1", color_scheme="gray"),
                      rx.text(example["voice"], size="2", weight="medium", class_name="example-voice"), spacing="1"),
            rx.vstack(rx.text("What you wrote", size="1", color_scheme="gray"),
                      rx.text(example["truth"], size="2", class_name="example-truth"), spacing="1"),
            columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%", padding_top="0.4rem"),
        padding="0.75rem", border_radius="var(--radius-3)", background=rx.color("gray", 2), width="100%",
        class_name="example",
    )


def job_card() -> rx.Component:
    job = TrainingState.current
    status = job["status"].to(str)
    return rx.card(rx.vstack(
        rx.match(
            status,
            ("failed", banner("triangle-alert", "red", "Learning stopped: ", job["error"].to(str),
                              ". Your suggestions are unchanged.", id="job-banner")),
            ("completed", rx.cond(
                job["verdict"].to(str) == "worse",
                banner("triangle-alert", "amber", "Version ", job["version"].to(str), " of your voice is ready. ",
                       job["verdict_words"].to(str), id="job-banner"),
                banner("circle-check", "green",
                       rx.cond(job["active"].to(bool), "Your voice (version " + job["version"].to(str) + ") is on. ",
                               "Version " + job["version"].to(str) + " of your voice is ready. "),
                       job["verdict_words"].to(str), id="job-banner"))),
            banner("loader", "blue", job["stage_words"].to(str), id="job-banner"),
        ),
        rx.cond((status == "queued") | (status == "training"),
                rx.hstack(rx.progress(value=job["progress"].to(int), max=100, id="job-progress", flex="1"),
                          rx.text(job["progress"].to(str), "%", size="2", id="job-progress-text"),
                          align="center", spacing="3", width="100%")),
        rx.cond(job["examples"].to(list).length() > 0,
                rx.vstack(rx.heading("Before and after, on your own messages", size="3", as_="h2"),
                          rx.foreach(job["examples"].to(list[dict]), example_row),
                          spacing="2", width="100%", id="examples")),
        rx.cond((status == "completed") & ~job["active"].to(bool),
                rx.button(rx.icon("power", size=16), "Use this voice", id="activate-latest",
                          color_scheme=rx.cond(job["verdict"].to(str) == "worse", "gray", "green"),
                          on_click=TrainingState.activate(job["id"].to(str)))),
        rx.accordion.root(rx.accordion.item(
            header="Details for the curious", value="details",
            content=rx.recharts.line_chart(
                rx.recharts.line(data_key="train", stroke=rx.color("accent", 9), dot=False, name="training loss",
                                 is_animation_active=False),
                rx.recharts.line(data_key="eval", stroke=rx.color("orange", 9), name="held-out loss",
                                 connect_nulls=True, is_animation_active=False),
                rx.recharts.x_axis(data_key="step"), rx.recharts.y_axis(), rx.recharts.legend(),
                rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
                data=TrainingState.chart, width="100%", height=220, id="loss-chart")),
            collapsible=True, type="single", variant="ghost", width="100%"),
        spacing="3", width="100%"), width="100%", id="job-card")


def version_row(job: dict) -> rx.Component:
    return rx.hstack(
        rx.vstack(rx.text("Version ", job["version"], weight="bold"),
                  rx.text("learned ", job["when"], " from ", job["samples"], " replies", size="1",
                          color_scheme="gray"), spacing="0"),
        rx.cond(job["active"], rx.badge("In use", color_scheme="green", class_name="active-adapter")),
        rx.spacer(),
        rx.cond(job["active"], rx.fragment(),
                rx.button("Use this version", size="1", variant="soft", class_name="activate-adapter",
                          on_click=TrainingState.activate(job["id"]))),
        width="100%", align="center", class_name="adapter-row",
    )


def versions_card() -> rx.Component:
    return rx.card(rx.vstack(
        rx.hstack(rx.heading("Your voice versions", size="4", as_="h2"), rx.spacer(),
                  rx.cond(TrainingState.any_active,
                          rx.button("Go back to the base model", size="1", variant="soft", color_scheme="gray",
                                    id="rollback", on_click=TrainingState.rollback)),
                  width="100%", align="center", wrap="wrap"),
        rx.foreach(TrainingState.adapters, version_row), spacing="2", width="100%"), width="100%")


def sample_row(sample: dict) -> rx.Component:
    return rx.box(
        rx.text(sample["context"], size="1", color_scheme="gray", white_space="pre-wrap", class_name="sample-context"),
        rx.hstack(rx.text(sample["output"], size="2", flex="1", class_name="sample-output"),
                  rx.icon_button(rx.icon("trash-2", size=14), size="1", variant="ghost", color_scheme="red",
                                 aria_label="Delete this example", on_click=TrainingState.delete_sample(sample["id"])),
                  align="start", width="100%"),
        rx.hstack(rx.badge(sample["source"], variant="soft"),
                  rx.cond(sample["problem"] != "",
                          rx.badge(rx.icon("triangle-alert", size=12), "Not used: ", sample["problem"],
                                   color_scheme="amber", class_name="sample-problem")),
                  spacing="2", wrap="wrap"),
        padding_y="0.6rem", border_bottom=f"1px solid {rx.color('gray', 4)}", width="100%", class_name="sample-row",
    )


def samples_card() -> rx.Component:
    return rx.card(rx.vstack(
        rx.hstack(rx.heading("What it learns from", size="4", as_="h2"), rx.badge(TrainingState.sample_total, id="sample-total"),
                  rx.spacer(),
                  rx.hstack(rx.text("Show", size="2", as_="label"),
                            rx.select(list(SOURCE_FILTERS), value=TrainingState.source_filter,
                                      on_change=TrainingState.set_source_filter, size="1", id="source-filter"),
                            align="center", spacing="2"),
                  width="100%", align="center", wrap="wrap"),
        rx.cond(TrainingState.samples.length() > 0,
                rx.box(rx.foreach(TrainingState.samples, sample_row), max_height="28rem", overflow_y="auto",
                       width="100%", id="samples"),
                rx.text("Replies you use or edit land here; you can also add examples by hand.",
                        size="2", color_scheme="gray")),
        rx.form(rx.vstack(
            rx.text("Add an example", size="2", weight="medium"),
            rx.text_area(name="input_context", placeholder="Them: When are you open?\nMe:", id="sample-input",
                         width="100%", rows="2"),
            rx.hstack(rx.input(name="expected_output", placeholder="Your reply", id="sample-output", width="100%"),
                      rx.button("Add", type="submit", id="add-sample", size="2"), width="100%"),
            width="100%", spacing="2"), on_submit=TrainingState.add_sample, reset_on_submit=True, width="100%"),
        spacing="3", width="100%"), width="100%")


def training_page() -> rx.Component:
    return page_shell(
        "Training",
        rx.cond(TrainingState.error != "", rx.callout(TrainingState.error, icon="triangle-alert", color_scheme="red",
                                                      id="training-error")),
        rx.cond(TrainingState.notice != "", rx.callout(TrainingState.notice, icon="check", color_scheme="green",
                                                       id="training-notice")),
        teach_card(),
        rx.cond(TrainingState.history_total > 0, history_card()),
        rx.cond(TrainingState.jobs.length() > 0, job_card()),
        rx.cond(TrainingState.adapters.length() > 0, versions_card()),
        samples_card(),
    )
