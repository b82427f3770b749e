"""The Training page: samples, starting a job, live progress and losses, adapter versions."""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx

from convassist.db import session_scope
from convassist.schemas import form_fields, parse
from convassist.services import history, training
from convassist.services.errors import DomainError, NotFound
from convassist.settings import get_settings
from convassist.state.auth import current_provider_id
from convassist.state.live import follow_changes


SOURCE_WORDS = {"accepted": "You used it", "edited": "You edited it", "manual": "Added by hand",
                "history": "From your past replies"}
SOURCE_FILTERS = {"All": None, "Used": "accepted", "Edited": "edited", "Added by hand": "manual",
                  "Past replies": "history"}
STAGE_WORDS = {"queued": "Waiting for the trainer to start…", "loading": "Getting ready: loading the model…",
               "learning": "Learning from your replies…", "judging": "Comparing with the base model on replies "
                                                                       "held back to test it…", "done": ""}


def _context(text: str, lines: int = 3) -> str:
    """The end of a sample's conversation, in whole lines (the reply answers the last ones)."""
    kept = [line for line in text.splitlines() if line.strip() and line.strip() != "Me:"][-lines:]
    return "\n".join(line if len(line) <= 300 else line[:299] + "…" for line in kept)


class TrainingState(rx.State):
    samples: list[dict] = []
    sample_total: int = 0
    usable_total: int = 0
    source_filter: str = "All"
    jobs: list[dict] = []
    error: str = ""
    notice: str = ""
    history_preview: list[dict] = []  # a few of the past exchanges importing would add
    history_total: int = 0
    history_skipped: int = 0
    _watch_id: str = ""

    @rx.var
    def min_samples(self) -> int:
        return training.MIN_SAMPLES

    @rx.var
    def current(self) -> dict:
        """The newest job: its progress, verdict and examples are shown."""
        return self.jobs[0] if self.jobs else {}

    @rx.var
    def running(self) -> bool:
        return bool(self.jobs) and self.jobs[0]["status"] in ("queued", "training")

    @rx.var
    def any_active(self) -> bool:
        return any(j["active"] for j in self.jobs)

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

    @rx.event(background=True)
    async def watch(self):
        """A job's progress, its end, and new samples show as they happen."""
        await follow_changes(self, frozenset({"training", "samples"}), lambda _: self.refresh())

    @rx.event
    async def refresh(self):
        """Reload samples and jobs."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        source = SOURCE_FILTERS.get(self.source_filter)

        def read():
            with session_scope() as session:  # every sample is checked: off the event loop
                rows, total = training.list_samples(session, provider_id, source=source, limit=200)
                return (rows, total, training.usable_count(session, provider_id),
                        [training.job_view(j) for j in training.list_jobs(session, provider_id)])

        rows, self.sample_total, self.usable_total, jobs = await asyncio.to_thread(read)
        self.samples = [{"id": str(s.id), "context": _context(s.input_context), "output": s.expected_output,
                         "source": SOURCE_WORDS.get(s.source, s.source), "weight": f"{s.quality:.2f}",
                         "problem": training.sample_problem(s.expected_output) or ""} for s in rows]
        self.jobs = [_job_dict(j) for j in jobs]

    @rx.event
    async def load_history(self):
        """What the provider's synced history would add (read on opening the page and after an import)."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        def read():
            with session_scope() as session:
                return history.history_offer(session, provider_id)

        fresh, self.history_skipped = await asyncio.to_thread(read)  # a scan: off the event loop
        self.history_total = len(fresh)
        self.history_preview = [{"message": p.message, "reply": p.reply} for p in fresh[:5]]

    @rx.event
    async def import_history(self):
        """Learn from the past replies shown (opt-in)."""
        provider_id = await current_provider_id(self)
        if provider_id is None:
            return
        def run() -> int:
            with session_scope() as session:
                return history.import_history(session, provider_id)

        added = await asyncio.to_thread(run)  # a search per exchange: seconds, off the event loop
        self.notice = f"Added {added} of your past replies to what ConvAssist learns from."
        await self.load_history()
        await self.refresh()

    @rx.event
    async def set_source_filter(self, value: str):
        self.source_filter = value if value in SOURCE_FILTERS else "All"
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
            knobs = {name: form[name] for name in ("epochs", "learning_rate", "lora_rank") if form.get(name)}
            # an empty knob is the default (training.TrainingParams, ml.train.TrainConfig)
            params = parse(training.TrainingParams, {"base_model": get_settings().ml_service_model_id, **knobs})
            await training.start_job(provider_id, params)
        except DomainError as exc:
            self.error = exc.message
            return
        # the job card says what happens next ("Waiting for the trainer to start…")
        await self.refresh()

    @rx.event
    async def activate(self, job_id: str):
        """Serve this adapter from the next suggestion on."""
        if await self._run(lambda s, p: training.activate(s, p, _uuid(job_id))):
            self.notice = "Your voice is on: new suggestions use it."

    @rx.event
    async def rollback(self):
        """Back to the base model."""
        if await self._run(lambda s, p: training.activate(s, p, None)):
            self.notice = "Back to the base model: new suggestions no longer use a trained voice."


def _job_dict(j: training.JobPublic) -> dict:
    judgement = j.judgement
    return {"id": str(j.job_id), "status": j.status, "progress": round(j.progress), "stage": j.stage,
            "stage_words": STAGE_WORDS.get(j.stage, ""), "version": (j.adapter_version or "").removeprefix("lora-v"),
            "adapter": j.adapter_version or "", "active": j.active, "error": j.error or "",
            "samples": j.sample_count,
            "when": j.completed_at.strftime("%b %-d, %H:%M") if j.completed_at else "",
            "steps_per_epoch": j.metrics.extra("stepsPerEpoch", 0),
            "train_loss": j.metrics.train_loss, "eval_loss": j.metrics.eval_loss,
            "verdict": judgement.verdict if judgement else "",
            "verdict_words": _verdict_words(judgement, bool(j.metrics.extra("refit", False))),
            "examples": [vars(e) for e in judgement.examples] if judgement else []}


def _verdict_words(judgement: training.JudgementView | None, refit: bool = False) -> str:
    """The adapter against the base model, in a sentence (the score in brackets for the curious); refit:
    the held-back replies were learned after the test (ml.train)."""
    if judgement is None:
        return ""
    score = f"(closeness to your real replies: {judgement.voice_chrf:.0f} vs {judgement.base_chrf:.0f} out of 100, " \
            f"on {judgement.judged} replies held back to test it{', then learned too' if refit else ''})"
    words = {"better": f"Sounds more like you than the base model {score}.",
             "same": f"About as close to you as the base model {score}: more replies will help.",
             "worse": f"Further from you than the base model {score}: better not to switch it on."}[judgement.verdict]
    return (words + _style_words(judgement.sign_off, judgement.voice_styled, judgement.base_styled, judgement.judged)
            + _invented_words(judgement.voice_invented, judgement.base_invented))


def _style_words(mark: str | None, voice: int, base: int, judged: int) -> str:
    """How many replies end with the provider's sign-off, in a sentence; nothing when they have none."""
    if not mark or not judged:
        return ""
    return f" Your sign-off “{mark}” ends {voice} of its {judged} replies (the base model's: {base})."


def _invented_words(voice: int, base: int) -> str:
    """Numbers (times, prices) the replies made up, in a sentence; nothing when neither made any up."""
    def numbers(n: int) -> str:
        return f"{n} number{'' if n == 1 else 's'}"

    if voice:
        return (f" Its replies made up {numbers(voice)} (times, prices) that neither you nor your client had "
                f"written (the base model: {base}): check numbers before you send a suggestion.")
    if base:
        return f" It made up no times or prices; the base model made up {numbers(base)}."
    return ""


def _uuid(value: object) -> uuid.UUID:
    """An id from the browser; a malformed one is simply not found."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("No such item.") from None
