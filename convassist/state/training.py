"""The Training page: samples, starting a job, live progress and losses, adapter versions."""

from __future__ import annotations

import uuid

import reflex as rx

from convassist.db import session_scope
from convassist.schemas import form_fields, parse
from convassist.services import training
from convassist.services.errors import DomainError, NotFound
from convassist.settings import get_settings
from convassist.state.auth import current_provider_id


class TrainingState(rx.State):
    samples: list[dict] = []
    sample_total: int = 0
    source_filter: str = "all"
    min_quality: str = "0"
    jobs: list[dict] = []
    error: str = ""
    notice: str = ""

    @rx.var
    def base_model(self) -> str:
        return get_settings().ml_service_model_id

    @rx.var
    def current(self) -> dict:
        """The newest job: its progress bar and loss chart are shown."""
        return self.jobs[0] if self.jobs else {}

    @rx.var
    def running(self) -> bool:
        return bool(self.jobs) and self.jobs[0]["status"] in ("queued", "training")

    @rx.var
    def chart(self) -> list[dict]:
        """Train loss per step and eval loss at each epoch boundary (step 0: before training)."""
        if not self.jobs:
            return []
        job = self.jobs[0]
        train, evals, per_epoch = job["train_loss"], job["eval_loss"], max(1, job["steps_per_epoch"])
        points = {0: {"step": 0}}
        for i, loss in enumerate(train, 1):
            points.setdefault(i, {"step": i})["train"] = loss
        for epoch, loss in enumerate(evals):
            points.setdefault(epoch * per_epoch, {"step": epoch * per_epoch})["eval"] = loss
        return [points[k] for k in sorted(points)]

    @rx.var
    def adapters(self) -> list[dict]:
        return [j for j in self.jobs if j["adapter"]]

    @rx.event
    async def refresh(self):
        """Reload samples and jobs (on a timer while a job runs)."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        with session_scope() as session:
            rows, self.sample_total = training.list_samples(
                session, provider_id, source=None if self.source_filter == "all" else self.source_filter,
                min_quality=float(self.min_quality or 0), limit=200)
            jobs = [training.job_view(j) for j in training.list_jobs(session, provider_id)]
        self.samples = [{"id": str(s.id), "input": s.input_context[-160:], "output": s.expected_output,
                         "source": s.source, "quality": f"{s.quality:.2f}"} for s in rows]
        self.jobs = [{"id": str(j.job_id), "status": j.status, "progress": j.progress,
                      "adapter": j.adapter_version or "", "active": j.active, "error": j.error or "",
                      "epochs": j.epochs, "samples": j.sample_count,
                      "steps_per_epoch": j.metrics.extra("stepsPerEpoch", 0),
                      "train_loss": j.metrics.train_loss, "eval_loss": j.metrics.eval_loss,
                      "agreement": str(j.metrics.extra("agreement", ""))} for j in jobs]

    @rx.event
    async def tick(self):
        """Timer: refresh only while a job is queued or training."""
        if self.running:
            await self.refresh()

    @rx.event
    async def set_source_filter(self, value: str):
        self.source_filter = value if value in ("all", "accepted", "edited", "manual") else "all"
        await self.refresh()

    @rx.event
    async def set_min_quality(self, value: str):
        self.min_quality = value if value in ("0", "0.5", "0.8", "1") else "0"
        await self.refresh()

    async def _run(self, work) -> bool:
        self.error, self.notice = "", ""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return False
        try:
            with session_scope() as session:
                work(session, provider_id)
        except DomainError as exc:
            self.error = exc.message
            return False
        await self.refresh()
        return True

    @rx.event
    async def add_sample(self, form: dict):
        """A sample written by hand."""
        form = form_fields(form)
        try:
            data = parse(training.SampleInput, {"input_context": form.get("input_context", ""),
                                                "expected_output": form.get("expected_output", "")})
        except DomainError as exc:
            self.error = exc.message
            return
        if await self._run(lambda s, p: training.add_sample(s, p, data)):
            self.notice = "Sample added."

    @rx.event
    async def delete_sample(self, sample_id: str):
        await self._run(lambda s, p: training.delete_sample(s, p, _uuid(sample_id)))

    @rx.event
    async def start_training(self, form: dict):
        """Queue a LoRA training job with the form's settings."""
        self.error, self.notice = "", ""
        form = form_fields(form)
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        try:
            params = parse(training.TrainingParams, {
                "base_model": self.base_model, "epochs": form.get("epochs") or 3,
                "learning_rate": form.get("learning_rate") or 1e-3, "lora_rank": form.get("lora_rank") or 8,
                "eval_fraction": 0.2})
            await training.start_job(provider_id, params)
        except DomainError as exc:
            self.error = exc.message
            return
        self.notice = "Training queued."
        await self.refresh()

    @rx.event
    async def activate(self, job_id: str):
        """Serve this adapter from the next suggestion on."""
        if await self._run(lambda s, p: training.activate(s, p, _uuid(job_id))):
            self.notice = "Adapter activated: new suggestions use it."

    @rx.event
    async def rollback(self):
        """Back to the base model."""
        if await self._run(lambda s, p: training.activate(s, p, None)):
            self.notice = "Rolled back to the base model."


def _uuid(value: object) -> uuid.UUID:
    """An id from the browser; a malformed one is simply not found."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No such item.") from None
