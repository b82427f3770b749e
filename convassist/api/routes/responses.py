"""Reply suggestions for a message, and the provider's verdict on them (provider token)."""

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from convassist.api.deps import CurrentProvider, DbSession
from convassist.schemas import CamelModel
from convassist.services import responses
from ml.prompt import DEFAULT_MAX_HISTORY

router = APIRouter(prefix="/responses", tags=["responses"])


class GenerateContext(CamelModel):
    max_history: int = Field(DEFAULT_MAX_HISTORY, ge=1, le=responses.MAX_HISTORY_LIMIT)


class GenerateRequest(CamelModel):
    message_id: uuid.UUID
    context: GenerateContext = Field(default_factory=GenerateContext)
    count: int = Field(1, ge=1, le=3)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    async_: bool = Field(False, alias="async")


@router.post("/generate", response_model=responses.ResponsePublic,
             responses={202: {"model": responses.ResponsePublic}})
async def generate(body: GenerateRequest, provider: CurrentProvider, session: DbSession):
    """Suggest replies to a message: 200 with the result, or 202 at once with `async: true`."""
    view = await responses.generate_for_message(provider.id, body.message_id,
                                                max_history=body.context.max_history, count=body.count,
                                                temperature=body.temperature, background=body.async_,
                                                session=session)
    return JSONResponse(view.model_dump(mode="json", by_alias=True),
                        status_code=202 if view.status == "generating" else 200)


@router.get("/{response_id}", response_model=responses.ResponsePublic)
async def get_response(response_id: uuid.UUID, provider: CurrentProvider):
    """A response with its current status."""
    return await responses.get_response(provider.id, response_id)


@router.post("/{response_id}/action", response_model=responses.ResponsePublic)
async def act(response_id: uuid.UUID, body: responses.Verdict, provider: CurrentProvider):
    """accept, edit (with editedResponse) or reject (with an optional reason)."""
    return await responses.record_action(provider.id, response_id, body)
