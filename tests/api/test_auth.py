"""Provider sign-up and login through the API, on real PostgreSQL."""

import sqlalchemy as sa

from convassist.models import Provider


def signup(api, email="ana@example.com", password="correct horse", name="Ana"):
    return api.post("/api/auth/signup", json={"email": email, "password": password, "name": name})


def test_signup_then_login_returns_a_working_token(api):
    created = signup(api)
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"token", "expiresAt", "providerId", "name", "email"}

    login = api.post("/api/auth/login", json={"email": "ANA@example.com ", "password": "correct horse"})
    assert login.status_code == 200
    token = login.json()["token"]
    me = api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == "ana@example.com"
    assert me.json()["name"] == "Ana"


def test_password_is_stored_hashed_with_argon2(api, db):
    signup(api)
    with db.connect() as conn:
        stored = conn.execute(sa.select(Provider.password_hash)).scalar_one()
    assert stored.startswith("$argon2") and "correct horse" not in stored


def test_wrong_password_and_unknown_email_look_the_same(api):
    signup(api)
    wrong = api.post("/api/auth/login", json={"email": "ana@example.com", "password": "nope nope"})
    unknown = api.post("/api/auth/login", json={"email": "bob@example.com", "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "invalid_credentials", "message": "Wrong email or password."}


def test_duplicate_email_is_a_conflict_and_keeps_the_first_account(api):
    signup(api)
    again = signup(api, email="Ana@Example.com", password="another password")
    assert again.status_code == 409 and again.json()["error"] == "email_taken"
    assert api.post("/api/auth/login", json={"email": "ana@example.com", "password": "correct horse"}).status_code == 200


def test_signup_validation_errors(api):
    weak = signup(api, password="short")
    assert weak.status_code == 422 and weak.json()["error"] == "weak_password"
    bad_email = signup(api, email="not-an-email")
    assert bad_email.status_code == 422 and bad_email.json()["error"] == "invalid_email"


def test_signup_closed(api, settings_env):
    settings_env(ALLOW_SIGNUP="false")
    closed = signup(api)
    assert closed.status_code == 403 and closed.json()["error"] == "signup_disabled"


def test_protected_route_needs_a_valid_provider_token(api):
    assert api.get("/api/auth/me").json()["error"] == "missing_token"
    bad = api.get("/api/auth/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    assert bad.headers["www-authenticate"] == "Bearer"


def test_token_for_another_audience_is_refused(api):
    import uuid

    from convassist.services.tokens import DEVICE_AUDIENCE, issue_token

    provider_id = signup(api).json()["providerId"]
    device_token, _ = issue_token(uuid.UUID(provider_id), DEVICE_AUDIENCE)
    refused = api.get("/api/auth/me", headers={"Authorization": f"Bearer {device_token}"})
    assert refused.status_code == 401


def test_expired_token(api, settings_env):
    import time

    settings_env(JWT_EXPIRES_IN="1s")
    token = signup(api).json()["token"]
    time.sleep(1.2)
    expired = api.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and expired.json()["error"] == "token_expired"
