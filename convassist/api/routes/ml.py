"""Raw-prompt completions for direct use (snake_case fields, as their first clients expect)."""

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from convassist.api.deps import CurrentProvider, DbSession
from convassist.services import responses

router = APIRouter(prefix="/ml", tags=["ml"])


class MLGenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=50_000)
    max_tokens: int = Field(64, ge=1, le=512)
    temperature: float = Field(0.0, ge=0.0, le=2.0)


@router.post("/generate", response_model=responses.MLAnswer)
async def generate(body: MLGenerateRequest, provider: CurrentProvider, session: DbSession):
    """Complete a raw prompt and wait for the result."""
    return await responses.generate_from_prompt(provider.id, body.prompt, max_tokens=body.max_tokens,
                                                temperature=body.temperature, session=session)


@router.post("/generate/async", response_model=responses.MLJobCreated, status_code=202)
async def generate_async(body: MLGenerateRequest, provider: CurrentProvider, session: DbSession):
    """Queue a completion; poll GET /api/ml/jobs/{job_id}."""
    return await responses.generate_from_prompt(provider.id, body.prompt, max_tokens=body.max_tokens,
                                                temperature=body.temperature, background=True, session=session)


@router.get("/jobs/{job_id}", response_model=responses.MLJobStatus)
async def job(job_id: str, provider: CurrentProvider):
    """A queued completion's status and, once complete, its result."""
    return await responses.ml_job(provider.id, job_id)
