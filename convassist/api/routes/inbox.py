"""The provider's inbox (provider token): the same read as the web UI's home page."""

from fastapi import APIRouter

from convassist.api.deps import CurrentProvider, DbSession
from convassist.services import dashboard

router = APIRouter(prefix="/inbox", tags=["inbox"])


@router.get("", response_model=dashboard.Inbox)
def get_inbox(session: DbSession, provider: CurrentProvider) -> dashboard.Inbox:
    """Who is owed a reply (longest waiting first), each Mac's sync health, and what writes the
    suggestions."""
    return dashboard.inbox(session, provider.id)
