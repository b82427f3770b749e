"""Training samples, LoRA jobs and adapter versions (provider token)."""

import uuid
from datetime import datetime
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import Field

from convassist.api.deps import CurrentProvider, DbSession
from convassist.db import session_scope
from convassist.schemas import MAX_OFFSET, CamelModel
from convassist.services import history, training

router = APIRouter(prefix="/training", tags=["training"])


class SampleOut(CamelModel):
    id: uuid.UUID
    input_context: str
    expected_output: str
    source: str
    quality: float
    response_id: Optional[uuid.UUID]
    created_at: datetime


class SampleList(CamelModel):
    items: list[SampleOut]
    total: int
    limit: int
    offset: int


class ActivateIn(CamelModel):
    job_id: Optional[uuid.UUID] = Field(None, description="null rolls back to the base model")


def _sample(s) -> SampleOut:
    return SampleOut(id=s.id, input_context=s.input_context, expected_output=s.expected_output, source=s.source,
                     quality=s.quality, response_id=s.response_id, created_at=s.created_at)


@router.get("/samples", response_model=SampleList)
def list_samples(session: DbSession, provider: CurrentProvider,
                 source: Annotated[Optional[Literal["accepted", "edited", "manual", "history"]], Query()] = None,
                 min_quality: Annotated[Optional[float], Query(alias="minQuality", ge=0, le=1)] = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0):
    """The provider's samples, newest first."""
    rows, total = training.list_samples(session, provider.id, source=source, min_quality=min_quality, limit=limit,
                                        offset=offset)
    return SampleList(items=[_sample(s) for s in rows], total=total, limit=limit, offset=offset)


@router.post("/samples", status_code=201, response_model=SampleOut)
def add_sample(body: training.SampleInput, session: DbSession, provider: CurrentProvider):
    """A manual sample (quality 1.0)."""
    return _sample(training.add_sample(session, provider.id, body))


@router.delete("/samples/{sample_id}", status_code=204)
def delete_sample(sample_id: uuid.UUID, session: DbSession, provider: CurrentProvider):
    training.delete_sample(session, provider.id, sample_id)
    return Response(status_code=204)


class HistoryExchange(CamelModel):
    message: str
    reply: str


class HistoryPreview(CamelModel):
    """What importing the provider's past replies would add (the first few of them shown)."""

    exchanges: list[HistoryExchange]
    total: int  # usable past exchanges not imported yet (at most history.MAX_IMPORT)
    skipped: int  # replies left out: acknowledgements, attachments, late or unprompted messages
    quality: float  # the weight each gets (edits weigh 1.0)


class HistoryImported(CamelModel):
    imported: int


@router.get("/history", response_model=HistoryPreview)
def preview_history(session: DbSession, provider: CurrentProvider,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20):
    """A preview of the samples the provider's synced history would give (groups, acknowledgements,
    attachments and late replies left out)."""
    pairs, skipped = history.history_offer(session, provider.id)
    return HistoryPreview(exchanges=[HistoryExchange(message=p.message, reply=p.reply) for p in pairs[:limit]],
                          total=len(pairs), skipped=skipped, quality=history.HISTORY_QUALITY)


@router.post("/history/import", response_model=HistoryImported)
def import_history(session: DbSession, provider: CurrentProvider):
    """Turn the provider's past exchanges into training samples (opt-in; importing again adds only new ones)."""
    return HistoryImported(imported=history.import_history(session, provider.id))


@router.get("/samples/export", response_class=StreamingResponse)
def export_samples(provider: CurrentProvider):
    """Every sample as JSON lines: {"input": ..., "output": ..., "quality": ...}."""
    def lines():
        with session_scope() as session:
            yield from training.export_jsonl(session, provider.id)

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="training-samples.jsonl"'})


@router.post("/jobs", status_code=202, response_model=training.JobPublic)
async def create_job(body: training.TrainingParams, provider: CurrentProvider):
    """Queue a LoRA training job on the worker."""
    return await training.start_job(provider.id, body)


@router.get("/jobs", response_model=list[training.JobPublic])
def list_jobs(session: DbSession, provider: CurrentProvider):
    return [training.job_view(j) for j in training.list_jobs(session, provider.id)]


@router.get("/jobs/{job_id}", response_model=training.JobPublic)
def get_job(job_id: uuid.UUID, session: DbSession, provider: CurrentProvider):
    return training.job_view(training.get_job(session, provider.id, job_id))


@router.post("/adapters/active", response_model=Optional[training.JobPublic])
def activate(body: ActivateIn, session: DbSession, provider: CurrentProvider):
    """Serve a completed job's adapter from the next suggestion on, or roll back with jobId null."""
    job = training.activate(session, provider.id, body.job_id)
    return training.job_view(job) if job else None
