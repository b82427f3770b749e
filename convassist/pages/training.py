"""Training: samples, a start form, live progress and losses, adapter versions."""

from __future__ import annotations

import reflex as rx

from convassist.components.layout import page_shell
from convassist.state.training import TrainingState


def sample_row(sample: dict) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(sample["input"], size="1", color_scheme="gray", white_space="pre-wrap")),
        rx.table.cell(rx.text(sample["output"], size="2")),
        rx.table.cell(rx.badge(sample["source"], variant="soft")),
        rx.table.cell(sample["quality"]),
        rx.table.cell(rx.icon_button(rx.icon("trash-2", size=14), size="1", variant="ghost", color_scheme="red",
                                     aria_label="Delete sample",
                                     on_click=TrainingState.delete_sample(sample["id"]))),
        class_name="sample-row",
    )


def samples_card() -> rx.Component:
    return rx.card(rx.vstack(
        rx.hstack(rx.heading("Samples", size="4"), rx.badge(TrainingState.sample_total, id="sample-total"),
                  rx.spacer(),
                  rx.select(["all", "accepted", "edited", "manual"], value=TrainingState.source_filter,
                            on_change=TrainingState.set_source_filter, size="1"),
                  rx.select(["0", "0.5", "0.8", "1"], value=TrainingState.min_quality,
                            on_change=TrainingState.set_min_quality, size="1"),
                  width="100%", align="center", wrap="wrap"),
        rx.cond(TrainingState.samples.length() > 0,
                rx.box(rx.table.root(
                    rx.table.header(rx.table.row(
                        rx.table.column_header_cell("Context"), rx.table.column_header_cell("Reply"),
                        rx.table.column_header_cell("Source"), rx.table.column_header_cell("Quality"),
                        rx.table.column_header_cell(""))),
                    rx.table.body(rx.foreach(TrainingState.samples, sample_row)), size="1", width="100%"),
                    max_height="24rem", overflow_y="auto", width="100%"),
                rx.text("Accepted and edited suggestions land here; you can also add samples by hand.",
                        size="2", color_scheme="gray")),
        rx.form(rx.vstack(
            rx.text_area(name="input_context", placeholder="Them: When are you open?\nMe:", id="sample-input",
                         width="100%", rows="2"),
            rx.hstack(rx.input(name="expected_output", placeholder="Your reply", id="sample-output", width="100%"),
                      rx.button("Add sample", type="submit", id="add-sample", size="2"), width="100%"),
            width="100%"), on_submit=TrainingState.add_sample, reset_on_submit=True, width="100%"),
        spacing="3", width="100%"), width="100%")


def start_card() -> rx.Component:
    def field(label: str, name: str, value: str) -> rx.Component:
        return rx.vstack(rx.text(label, size="1", color_scheme="gray"),
                         rx.input(name=name, default_value=value, id=f"train-{name}", width="7rem"), spacing="1")

    return rx.card(rx.form(rx.vstack(
        rx.heading("Train your voice", size="4"),
        rx.text("Base model: ", rx.code(TrainingState.base_model), size="2"),
        rx.hstack(field("Epochs", "epochs", "3"), field("Learning rate", "learning_rate", "0.001"),
                  field("LoRA rank", "lora_rank", "8"),
                  rx.button(rx.icon("play", size=16), "Start training", type="submit", id="start-training",
                            disabled=TrainingState.running),
                  align="end", spacing="3", wrap="wrap"),
        spacing="3"), on_submit=TrainingState.start_training), width="100%")


def progress_card() -> rx.Component:
    job = TrainingState.current
    return rx.card(rx.vstack(
        rx.hstack(rx.heading("Latest job", size="4"),
                  rx.badge(job["status"].to(str), id="job-status",
                           color_scheme=rx.match(job["status"].to(str), ("completed", "green"), ("failed", "red"),
                                                 "blue")),
                  rx.spacer(), rx.text(job["progress"].to(str), "%", size="2", id="job-progress-text"),
                  width="100%", align="center"),
        rx.progress(value=job["progress"].to(int), max=100, id="job-progress", width="100%"),
        rx.cond(job["error"].to(str) != "", rx.callout(job["error"].to(str), icon="triangle-alert",
                                                       color_scheme="red", id="job-error")),
        rx.recharts.line_chart(
            rx.recharts.line(data_key="train", stroke=rx.color("accent", 9), dot=False, name="train loss",
                             is_animation_active=False),
            rx.recharts.line(data_key="eval", stroke=rx.color("orange", 9), name="eval loss", connect_nulls=True,
                             is_animation_active=False),
            rx.recharts.x_axis(data_key="step"), rx.recharts.y_axis(), rx.recharts.legend(),
            rx.recharts.cartesian_grid(stroke_dasharray="3 3"),
            data=TrainingState.chart, width="100%", height=240, id="loss-chart"),
        spacing="3", width="100%"), width="100%")


def adapter_row(job: dict) -> rx.Component:
    return rx.hstack(
        rx.text(job["adapter"], weight="bold"),
        rx.cond(job["active"], rx.badge("active", color_scheme="green", class_name="active-adapter")),
        rx.text("agreement ", job["agreement"], size="1", color_scheme="gray"),
        rx.spacer(),
        rx.cond(job["active"], rx.fragment(),
                rx.button("Activate", size="1", class_name="activate-adapter",
                          on_click=TrainingState.activate(job["id"]))),
        width="100%", align="center", class_name="adapter-row",
    )


def adapters_card() -> rx.Component:
    return rx.card(rx.vstack(
        rx.hstack(rx.heading("Adapters", size="4"), rx.spacer(),
                  rx.button("Roll back to base model", size="1", variant="soft", color_scheme="gray",
                            id="rollback", on_click=TrainingState.rollback)),
        rx.foreach(TrainingState.adapters, adapter_row), spacing="2", width="100%"), width="100%")


def training_page() -> rx.Component:
    return page_shell(
        "Training",
        rx.cond(TrainingState.error != "", rx.callout(TrainingState.error, icon="triangle-alert", color_scheme="red",
                                                      id="training-error")),
        rx.cond(TrainingState.notice != "", rx.callout(TrainingState.notice, icon="check", color_scheme="green",
                                                       id="training-notice")),
        start_card(),
        rx.cond(TrainingState.jobs.length() > 0, progress_card()),
        rx.cond(TrainingState.adapters.length() > 0, adapters_card()),
        samples_card(),
        rx.moment(interval=1500, on_change=TrainingState.tick, display="none"),
    )
