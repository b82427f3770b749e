"""Provider sign-up, login and identity."""

from fastapi import APIRouter

from convassist.api.deps import CurrentProvider, DbSession
from convassist.api.schemas import LoginRequest, ProviderOut, SignupRequest, TokenResponse
from convassist.services import accounts

router = APIRouter(prefix="/auth", tags=["auth"])


def _token_response(login: accounts.LoginSession) -> TokenResponse:
    return TokenResponse(token=login.token, expires_at=login.expires_at, provider_id=str(login.provider_id),
                         name=login.name, email=login.email)


@router.post("/signup", status_code=201, response_model=TokenResponse)
def signup(body: SignupRequest, session: DbSession) -> TokenResponse:
    """Create a provider account and log it in."""
    provider = accounts.signup(session, email=body.email, password=body.password, name=body.name)
    return _token_response(accounts.open_session(provider))


@router.post("/login", response_model=TokenResponse)
def login(body: LoginRequest, session: DbSession) -> TokenResponse:
    """Exchange email and password for a provider bearer token."""
    return _token_response(accounts.login(session, email=body.email, password=body.password))


@router.get("/me", response_model=ProviderOut)
def me(provider: CurrentProvider) -> ProviderOut:
    """The provider the token belongs to."""
    return ProviderOut(id=str(provider.id), email=provider.email, name=provider.name,
                       created_at=provider.created_at)
