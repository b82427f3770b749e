"""Settings: defaults, parsing, and failing at start with the variable named."""

from datetime import timedelta

import pydantic
import pytest

from convassist.settings import Settings, SettingsError, load_settings, parse_duration


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith(("CONVASSIST_", "DATABASE_", "JWT_", "ML_SERVICE_", "REDIS_", "ALLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CONVASSIST_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return monkeypatch


def test_defaults_match_the_seed(clean_env):
    s = load_settings()
    assert s.ml_service_model_id == "smollm2-135m-instruct"
    assert s.ml_service_gpu_layers == -1
    assert s.ml_service_context_size == 4096
    assert s.ml_service_redis_enabled is True
    assert s.ml_service_redis_cache_ttl == 3600
    assert s.jwt_expires_in == timedelta(days=7)
    assert s.allow_signup is None and s.signup_open is True  # open in dev, closed in prod
    assert s.resolved_database_url.startswith("sqlite:///")


def test_dev_generates_and_keeps_a_jwt_secret(clean_env, tmp_path):
    first = load_settings().resolved_jwt_secret
    assert len(first) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0
    assert load_settings().resolved_jwt_secret == first


def test_prod_requires_jwt_secret(clean_env):
    clean_env.setenv("CONVASSIST_ENV", "prod")
    with pytest.raises(SettingsError, match="JWT_SECRET"):
        load_settings()


@pytest.mark.parametrize("name,value", [
    ("ML_SERVICE_CONTEXT_SIZE", "lots"),
    ("ML_SERVICE_REDIS_CACHE_TTL", "-5"),
    ("JWT_EXPIRES_IN", "soon"),
    ("REDIS_URL", "http://localhost"),
    ("DATABASE_URL", "mysql://x"),
    ("ML_SERVICE_REDIS_ENABLED", "perhaps"),
])
def test_invalid_values_name_the_variable(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_unknown_variable_with_our_prefix_fails(clean_env):
    clean_env.setenv("ML_SERVICE_MODLE_ID", "phi-2")
    with pytest.raises(SettingsError, match="ML_SERVICE_MODLE_ID"):
        load_settings()


def test_database_url_from_parts_and_scheme_normalised(clean_env):
    clean_env.setenv("DATABASE_POSTGRES_USER", "u")
    clean_env.setenv("DATABASE_POSTGRES_PASSWORD", "p")
    clean_env.setenv("DATABASE_POSTGRES_NAME", "db")
    assert load_settings().resolved_database_url == "postgresql+psycopg://u:p@127.0.0.1:5432/db"
    clean_env.setenv("DATABASE_URL", "postgresql://a@h/x")
    assert load_settings().resolved_database_url == "postgresql+psycopg://a@h/x"


def test_durations():
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("3600") == timedelta(hours=1)
    with pytest.raises(ValueError):
        parse_duration("0s")


def test_settings_class_forbids_unknown_fields():
    with pytest.raises(pydantic.ValidationError, match="not_a_setting"):
        Settings(not_a_setting=1)
