"""Provider sign-up, login, identity, password change and logging out everywhere."""

from fastapi import APIRouter, Response

from convassist.api.deps import ClientAddress, CurrentProvider, DbSession
from convassist.api.schemas import ProviderOut, TokenResponse
from convassist.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(login: accounts.LoginSession) -> TokenResponse:
    return TokenResponse(token=login.token, expires_at=login.expires_at, provider_id=str(login.provider_id),
                         name=login.name, email=login.email)


@router.post("/signup", status_code=201, response_model=TokenResponse)
def signup(body: accounts.SignupInput, session: DbSession, client: ClientAddress) -> TokenResponse:
    """Create a provider account and log it in (only while sign-up is open)."""
    provider = accounts.signup(session, body, client=client)
    return _token_response(accounts.open_session(provider))


@router.post("/login", response_model=TokenResponse)
def login(body: accounts.LoginInput, session: DbSession, client: ClientAddress) -> TokenResponse:
    """Exchange email and password for a provider bearer token (429 with Retry-After after too many
    failures for the account or the address)."""
    return _token_response(accounts.login(session, body, client=client))


@router.get("/me", response_model=ProviderOut)
def me(provider: CurrentProvider) -> ProviderOut:
    """The provider the token belongs to."""
    return ProviderOut(id=str(provider.id), email=provider.email, name=provider.name,
                       created_at=provider.created_at)


@router.post("/password", response_model=TokenResponse)
def change_password(body: accounts.PasswordChange, session: DbSession, provider: CurrentProvider,
                    client: ClientAddress) -> TokenResponse:
    """Set a new password; every other session ends, and the answer carries a fresh token."""
    return _token_response(accounts.change_password(session, provider, body, client=client))


@router.post("/logout-all", status_code=204)
def log_out_everywhere(session: DbSession, provider: CurrentProvider) -> Response:
    """End every session of this account, this one included."""
    accounts.log_out_everywhere(session, provider)
    return Response(status_code=204)
