"""Training samples, LoRA training jobs and the provider's adapter versions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional

import sqlalchemy as sa
from pydantic import Field
from redis.exceptions import RedisError
from sqlmodel import Session

from convassist.db import session_scope

from convassist.models import TrainingJob, TrainingSample, as_utc, utcnow
from convassist.schemas import CamelModel, CleanStr, check_page
from convassist.services import live, queue
from convassist.services.errors import Conflict, DomainError, NotFound, Unavailable
from convassist.settings import get_settings
from ml import garbage
from ml.prompt import last_message
from ml.registry import machine_memory_gb, resolve_model, training_memory_problem
from ml.train import TrainConfig, TrainResult, TrainSample

if TYPE_CHECKING:  # ml.judge loads the engine: only the trainer's process imports it
    from ml.judge import Judgement

MAX_SAMPLES_PAGE = 500
MIN_SAMPLES = 8  # fewer cannot give both a train and a meaningful eval split
MAX_SAMPLES = 10_000  # a provider's samples at most (adding one more by hand is refused)
# a job trains on the provider's newest usable samples, at most this many: the voice as it is now, and a job
# that ends (steps grow with the samples; one trainer serves every provider)
MAX_TRAINED_SAMPLES = 2_000
ACTIVE_STATUSES = ("queued", "training")


class SampleInput(CamelModel):
    input_context: CleanStr = Field(min_length=1, max_length=20_000)
    expected_output: CleanStr = Field(min_length=1, max_length=5_000)


class TrainingParams(CamelModel):
    """A training job's knobs, bounded so no request can ask for hours of CPU or gigabytes of adapter."""

    base_model: str = Field(min_length=1, max_length=200)
    epochs: int = Field(TrainConfig.epochs, ge=1, le=20)
    learning_rate: float = Field(TrainConfig.learning_rate, gt=0, le=1e-1)
    lora_rank: int = Field(TrainConfig.rank, ge=1, le=64)
    eval_fraction: float = Field(TrainConfig.eval_fraction, gt=0, lt=0.5)


# -- samples ---------------------------------------------------------------------------------------
def sample_problem(reply: str) -> str | None:
    """Why a sample's reply would teach the model noise (it is then never trained on), or None."""
    return garbage.problem(reply)


def usable_count(session: Session, provider_id: uuid.UUID) -> int:
    """How many of the provider's samples training would use."""
    replies = session.execute(sa.select(TrainingSample.expected_output)
                              .where(TrainingSample.provider_id == provider_id)).scalars().all()
    return sum(1 for reply in replies if sample_problem(reply) is None)


def history_keys(session: Session, provider_id: uuid.UUID) -> set[tuple[str, str]]:
    """(the client's message, the reply) of the samples already imported from the provider's history
    (history.HistoryPair.key)."""
    rows = session.execute(sa.select(TrainingSample.input_context, TrainingSample.expected_output)
                           .where(TrainingSample.provider_id == provider_id, TrainingSample.source == "history"))
    return {(last_message(prompt), reply) for prompt, reply in rows}


def _usable(samples: list[TrainingSample]) -> list[TrainingSample]:
    return [s for s in samples if sample_problem(s.expected_output) is None]


def list_samples(session: Session, provider_id: uuid.UUID, *, source: str | None = None,
                 min_quality: float | None = None, limit: int = 50, offset: int = 0
                 ) -> tuple[list[TrainingSample], int]:
    check_page(limit, offset, MAX_SAMPLES_PAGE)
    statement = sa.select(TrainingSample).where(TrainingSample.provider_id == provider_id)
    if source:
        statement = statement.where(TrainingSample.source == source)
    if min_quality is not None:
        statement = statement.where(TrainingSample.quality >= min_quality)
    total = session.execute(sa.select(sa.func.count()).select_from(statement.subquery())).scalar_one()
    rows = session.execute(statement.order_by(TrainingSample.created_at.desc(), TrainingSample.id)
                           .limit(limit).offset(offset)).scalars().all()
    return list(rows), total


def add_sample(session: Session, provider_id: uuid.UUID, data: SampleInput) -> TrainingSample:
    """A manual sample (quality 1.0)."""
    if not data.input_context.strip() or not data.expected_output.strip():
        raise DomainError("inputContext and expectedOutput must not be empty.", code="empty_sample", status=422)
    held = session.execute(sa.select(sa.func.count()).select_from(TrainingSample)
                           .where(TrainingSample.provider_id == provider_id)).scalar_one()
    if held >= MAX_SAMPLES:
        raise DomainError(f"You have {MAX_SAMPLES:,} samples, the most one account keeps; delete some first.",
                          code="too_many_samples", status=409)
    sample = TrainingSample(provider_id=provider_id, input_context=data.input_context,
                            expected_output=data.expected_output.strip(), source="manual", quality=1.0)
    session.add(sample)
    session.flush()
    live.changed(session, provider_id, "samples")
    return sample


def delete_sample(session: Session, provider_id: uuid.UUID, sample_id: uuid.UUID) -> None:
    sample = session.get(TrainingSample, sample_id)
    if sample is None or sample.provider_id != provider_id:
        raise NotFound("No such sample.")
    session.delete(sample)
    live.changed(session, provider_id, "samples")


def export_jsonl(session: Session, provider_id: uuid.UUID) -> Iterator[str]:
    """The samples as JSON lines: one {"input", "output", "quality"} object per line."""
    rows = session.execute(sa.select(TrainingSample.input_context, TrainingSample.expected_output,
                                     TrainingSample.quality)
                           .where(TrainingSample.provider_id == provider_id)
                           .order_by(TrainingSample.created_at)).all()
    for input_context, output, quality in rows:
        yield json.dumps({"input": input_context, "output": output, "quality": quality}) + "\n"


# -- jobs ------------------------------------------------------------------------------------------
def _in_progress() -> Conflict:
    return Conflict("A training job is already queued or running; wait for it to finish.", code="training_in_progress")


def create_job(session: Session, provider_id: uuid.UUID, params: TrainingParams) -> TrainingJob:
    """Queue a training job (the API enqueues it on the worker after the commit)."""
    served = get_settings().ml_service_model_id
    if params.base_model != served:
        raise DomainError(f"baseModel must be the model the worker serves ({served!r}).", code="invalid_base_model",
                          status=422)
    busy = session.execute(sa.select(TrainingJob.id).where(TrainingJob.provider_id == provider_id,
                                                           TrainingJob.status.in_(ACTIVE_STATUSES))).first()
    if busy:
        raise _in_progress()
    count = usable_count(session, provider_id)
    if count < MIN_SAMPLES:
        raise DomainError(f"Training needs at least {MIN_SAMPLES} usable samples; you have {count}. Use or edit "
                          "more suggestions, or add samples by hand.", code="not_enough_samples", status=422)
    job = TrainingJob(provider_id=provider_id, **params.model_dump(), sample_count=count, status="queued",
                      metrics={"trainLoss": [], "evalLoss": []})
    session.add(job)
    try:
        session.flush()
    except sa.exc.IntegrityError:  # another request queued one meanwhile (ux_training_job_unfinished)
        raise _in_progress() from None
    live.changed(session, provider_id, "training")
    return job


async def start_job(provider_id: uuid.UUID, params: TrainingParams) -> JobPublic:
    """Create a job (see create_job) and queue it on the worker's training queue, where jobs wait
    their turn without holding a slot that replies need; returns its view."""
    def create() -> JobPublic:
        with session_scope() as session:
            return job_view(create_job(session, provider_id, params))

    view = await asyncio.to_thread(create)
    try:
        await queue.enqueue("train_adapter", str(view.job_id), _job_id=f"train:{view.job_id}",
                            _queue_name=get_settings().training_queue)
    except (OSError, RedisError) as exc:  # nothing would run it: say so on the job rather than leave it queued
        await asyncio.to_thread(fail_job, str(view.job_id), "The job queue is not reachable.")
        raise Unavailable("The job queue (Redis) is not reachable.", code="queue_unavailable") from exc
    return view


def get_job(session: Session, provider_id: uuid.UUID, job_id: uuid.UUID) -> TrainingJob:
    job = session.get(TrainingJob, job_id)
    if job is None or job.provider_id != provider_id:
        raise NotFound("No such training job.")
    return job


def list_jobs(session: Session, provider_id: uuid.UUID) -> list[TrainingJob]:
    return list(session.execute(sa.select(TrainingJob).where(TrainingJob.provider_id == provider_id)
                                .order_by(TrainingJob.created_at.desc())).scalars().all())


class JobMetrics(CamelModel):
    """The losses per epoch, and whatever else the trainer reported (steps per epoch, export divergence…)."""

    model_config = CamelModel.model_config | {"extra": "allow"}

    train_loss: list[float]
    eval_loss: list[float]

    def extra(self, name: str, default: Any = None) -> Any:
        return (self.model_extra or {}).get(name, default)


class ExampleView(CamelModel):
    """A held-out message of the provider: what they wrote, and what each model suggested."""

    message: str
    truth: str
    base: str
    voice: str


class JudgementView(CamelModel):
    """How the new adapter compares with the base model on the provider's held-out replies."""

    base_chrf: float
    voice_chrf: float
    judged: int
    verdict: Literal["better", "same", "worse"]
    examples: list[ExampleView]
    # numbers its suggestions stated that neither the conversation nor the provider's replies gave
    base_invented: int = 0
    voice_invented: int = 0
    sign_off: Optional[str] = None  # the provider's sign-off; None when their replies share none
    base_styled: int = 0  # judged replies ending with it
    voice_styled: int = 0

    @classmethod
    def of(cls, judgement: Judgement) -> "JudgementView":
        return cls(base_chrf=judgement.base_chrf, voice_chrf=judgement.voice_chrf, judged=judgement.judged,
                   verdict=judgement.verdict, examples=[ExampleView(**vars(e)) for e in judgement.examples],
                   base_invented=judgement.base_invented, voice_invented=judgement.voice_invented,
                   sign_off=judgement.sign_off, base_styled=judgement.base_styled,
                   voice_styled=judgement.voice_styled)


JUDGE_MARGIN = 1.0  # chrF points: a smaller difference is "about the same" (ml.judge.MARGIN)
STAGES = ("queued", "loading", "learning", "judging", "done")


class JobPublic(CamelModel):
    """A training job as its provider sees it (API and UI)."""

    job_id: uuid.UUID
    status: str
    progress: float
    base_model: str
    epochs: int
    learning_rate: float
    lora_rank: int
    eval_fraction: float
    sample_count: int
    output_path: Optional[str]
    adapter_version: Optional[str]
    active: bool
    error: Optional[str]
    created_at: datetime
    started_at: Optional[datetime]
    completed_at: Optional[datetime]
    metrics: JobMetrics
    stage: str  # queued | loading | learning | judging | done (see STAGES)
    judgement: Optional[JudgementView]


def job_view(job: TrainingJob) -> JobPublic:
    return JobPublic(
        job_id=job.id, status=job.status, progress=round(job.progress, 1), base_model=job.base_model,
        epochs=job.epochs, learning_rate=job.learning_rate, lora_rank=job.lora_rank,
        eval_fraction=job.eval_fraction, sample_count=job.sample_count, output_path=job.output_path,
        adapter_version=adapter_label(job), active=job.is_active, error=job.error,
        created_at=as_utc(job.created_at), started_at=as_utc(job.started_at), completed_at=as_utc(job.completed_at),
        metrics=JobMetrics.model_validate({"trainLoss": job.metrics.get("trainLoss", []),
                                           "evalLoss": job.metrics.get("evalLoss", []),
                                           **{k: v for k, v in job.metrics.items()
                                              if k not in ("trainLoss", "evalLoss", "judgement")}}),
        stage=job.metrics.get("stage") or ("queued" if job.status == "queued" else "done"),
        judgement=JudgementView.model_validate(job.metrics["judgement"]) if job.metrics.get("judgement") else None)


# -- the trainer's side (ml/train.py runs these in its own process) ---------------------------------
@dataclass(frozen=True)
class TrainingSpec:
    gguf_path: Path
    samples: list[TrainSample]
    config: TrainConfig
    adapter_path: Path


def begin_training(job_id: str) -> TrainingSpec | None:
    """Mark a queued job as training and gather what the trainer needs; None if it is not queued."""
    settings = get_settings()
    with session_scope() as session:
        job = session.execute(sa.select(TrainingJob).where(TrainingJob.id == uuid.UUID(job_id))
                              .with_for_update()).scalar_one_or_none()
        if job is None or job.status != "queued":
            return None
        job.status, job.started_at, job.progress = "training", utcnow(), 1.0
        job.metrics = {**job.metrics, "stage": "loading"}
        live.changed(session, job.provider_id, "training")
        newest = _usable(session.execute(sa.select(TrainingSample)
                                         .where(TrainingSample.provider_id == job.provider_id)
                                         .order_by(TrainingSample.created_at.desc())).scalars().all())
        samples = newest[:MAX_TRAINED_SAMPLES][::-1]  # oldest first, as they were written
        if len(samples) < MIN_SAMPLES:  # deleted since the job was queued
            job.status, job.completed_at = "failed", utcnow()
            job.error = f"Training needs at least {MIN_SAMPLES} usable samples; {len(samples)} are left."
            return None
        resolved = resolve_model(settings.ml_service_model_id, settings.ml_service_model_path,
                                 settings.convassist_data_dir / "models")
        if not resolved.found:
            job.status, job.error = "failed", "the base model file is missing"
            return None
        too_big = training_memory_problem(settings.ml_service_model_id, machine_memory_gb())
        if too_big:  # refused before loading anything, with the numbers
            job.status, job.error, job.completed_at = "failed", too_big, utcnow()
            return None
        job.sample_count = len(samples)
        return TrainingSpec(
            gguf_path=resolved.path,
            samples=[TrainSample(s.input_context, s.expected_output, s.quality) for s in samples],
            config=TrainConfig(epochs=job.epochs, learning_rate=job.learning_rate, rank=job.lora_rank,
                               eval_fraction=job.eval_fraction, threads=settings.ml_service_train_threads),
            adapter_path=settings.convassist_data_dir / "adapters" / str(job.provider_id) / f"{job.id}.gguf")


def report_progress(job_id: str, progress: float, result: TrainResult, *, stage: str = "learning") -> None:
    """After every step: the stage, the progress and the losses so far."""
    _report(job_id, progress, {"trainLoss": result.train_loss, "evalLoss": result.eval_loss,
                               "stepsPerEpoch": result.steps_per_epoch, "stage": stage})


def report_stage(job_id: str, stage: str, progress: float) -> None:
    """A stage without steps (loading the model, judging the adapter), keeping the losses so far."""
    _report(job_id, progress, {"stage": stage})


def _report(job_id: str, progress: float, metrics: dict[str, Any]) -> None:
    """Progress and metrics of a running job (the trainer is its only writer while it runs)."""
    with session_scope() as session:
        job = session.execute(sa.select(TrainingJob).where(TrainingJob.id == uuid.UUID(job_id),
                                                           TrainingJob.status == "training")
                              .with_for_update()).scalar_one_or_none()
        if job is None:  # failed meanwhile: keep that verdict
            return
        job.progress, job.metrics = min(99.0, progress), {**job.metrics, **metrics}
        live.changed(session, job.provider_id, "training")


def complete_job(job_id: str, result: TrainResult, judgement: Judgement | None = None) -> None:
    with session_scope() as session:
        job = session.execute(sa.select(TrainingJob).where(TrainingJob.id == uuid.UUID(job_id))
                              .with_for_update()).scalar_one()
        if job.status != "training":  # failed meanwhile (its worker was restarted): keep that verdict
            return
        version = session.execute(sa.select(sa.func.coalesce(sa.func.max(TrainingJob.adapter_version), 0))
                                  .where(TrainingJob.provider_id == job.provider_id)).scalar_one() + 1
        job.status, job.progress, job.completed_at, job.adapter_version = "completed", 100.0, utcnow(), version
        live.changed(session, job.provider_id, "training")
        job.output_path = str(get_settings().convassist_data_dir / "adapters" / str(job.provider_id) / f"{job.id}.gguf")
        job.metrics = {"trainLoss": result.train_loss, "evalLoss": result.eval_loss, "steps": result.steps,
                       "epochsRun": result.epochs_run, "bestEpoch": result.best_epoch,
                       "secondsPerStep": result.seconds_per_step, "exportDivergence": result.export_divergence,
                       "trainSamples": result.train_samples, "evalSamples": result.eval_samples,
                       "refit": result.refit,  # the served adapter then learned the eval samples too
                       "stepsPerEpoch": result.steps_per_epoch, "stage": "done"}
        if judgement is not None:
            view = JudgementView.of(judgement)
            job.metrics["judgement"] = view.model_dump(by_alias=True)
            if get_settings().ml_service_training_auto_activate and _beats_the_serving_one(session, job, view):
                session.flush()
                activate(session, job.provider_id, job.id)


def _beats_the_serving_one(session: Session, job: TrainingJob, new: JudgementView) -> bool:
    """Whether a new adapter may replace what serves without asking: it must beat the base model, and
    the active adapter (if any) by the same margin on its own judgement; never when it is worse, and
    never over an active adapter that was not judged (nothing to compare with), and never when it
    invents more numbers than the base model (a provider sends a suggestion only if it is right)."""
    if new.verdict != "better" or new.voice_invented > new.base_invented:
        return False
    serving = session.execute(sa.select(TrainingJob).where(TrainingJob.provider_id == job.provider_id,
                                                           TrainingJob.is_active.is_(True))).scalar_one_or_none()
    if serving is None:
        return True
    judged = (serving.metrics or {}).get("judgement")
    return bool(judged) and new.voice_chrf > float(judged.get("voiceChrf", 0)) + JUDGE_MARGIN


def fail_job(job_id: str, reason: str) -> None:
    """Mark a queued or running job failed (a finished job stays as it is)."""
    with session_scope() as session:
        provider_id = session.execute(sa.update(TrainingJob).where(TrainingJob.id == uuid.UUID(job_id),
                                                                   TrainingJob.status.in_(ACTIVE_STATUSES))
                                      .values(status="failed", error=reason[:2000], completed_at=utcnow())
                                      .returning(TrainingJob.provider_id)).scalar()
        if provider_id is not None:
            live.changed(session, provider_id, "training")


@dataclass(frozen=True)
class UnfinishedJob:
    id: str
    status: str  # queued | training
    created_at: datetime


# why a job nothing runs any more is failed (worker.main's sweep finds them)
LOST = {"training": "The worker stopped during training; start the job again.",
        "queued": "The job was lost from the queue (Redis lost its data); start it again."}


def unfinished_jobs() -> list[UnfinishedJob]:
    """Every queued or running job, of every provider (at most one each)."""
    with session_scope() as session:
        rows = session.execute(sa.select(TrainingJob.id, TrainingJob.status, TrainingJob.created_at)
                               .where(TrainingJob.status.in_(ACTIVE_STATUSES))).all()
    return [UnfinishedJob(str(r.id), r.status, as_utc(r.created_at)) for r in rows]


def fail_lost_jobs(lost: list[UnfinishedJob]) -> int:
    """Fail jobs found lost, each only if still in the status it was found in (a queued job that has just
    started training is not lost); returns how many were failed."""
    failed = 0
    for job in lost:
        with session_scope() as session:
            provider_id = session.execute(
                sa.update(TrainingJob).where(TrainingJob.id == uuid.UUID(job.id), TrainingJob.status == job.status)
                .values(status="failed", error=LOST[job.status], completed_at=utcnow())
                .returning(TrainingJob.provider_id)).scalar()
            if provider_id is not None:
                live.changed(session, provider_id, "training")
                failed += 1
    return failed


# -- adapters --------------------------------------------------------------------------------------
def adapter_label(job: TrainingJob) -> str | None:
    return f"lora-v{job.adapter_version}" if job.adapter_version else None


@dataclass(frozen=True)
class ActiveAdapter:
    id: str  # unique across providers: goes into the cache key
    label: str  # what modelVersion shows
    path: str


def active_adapter(session: Session, provider_id: uuid.UUID) -> ActiveAdapter | None:
    """The adapter the provider's replies use (None: the base model). Three columns, not the whole
    job: this is on every suggestion's path."""
    job = session.execute(sa.select(TrainingJob.id, TrainingJob.adapter_version, TrainingJob.output_path).where(
        TrainingJob.provider_id == provider_id, TrainingJob.is_active.is_(True))).one_or_none()
    if job is None or not job.output_path:
        return None
    return ActiveAdapter(str(job.id), adapter_label(job), job.output_path)


def activate(session: Session, provider_id: uuid.UUID, job_id: uuid.UUID | None) -> TrainingJob | None:
    """Serve the adapter of a completed job from now on; None rolls back to the base model."""
    target = None
    if job_id is not None:
        target = get_job(session, provider_id, job_id)
        if target.status != "completed" or not target.output_path:
            raise Conflict("Only a completed job's adapter can be activated.", code="adapter_not_ready")
    session.execute(sa.update(TrainingJob).where(TrainingJob.provider_id == provider_id)
                    .values(is_active=False))
    if target is not None:
        target.is_active = True
        session.add(target)
    session.flush()
    live.changed(session, provider_id, "training")
    return target
