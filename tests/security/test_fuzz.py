"""Every /api operation fuzzed from its OpenAPI schema (schemathesis), with and without tokens.

Per operation, on a clean database: schema-conforming (positive) and schema-violating (negative)
cases, each sent without a token, with a provider's token and with a paired Mac's token. An
identity that the operation refuses (401 on a probe) gets a few cases, one it accepts gets many.
Hypothesis runs derandomized, so every run sends the same cases.

Checked on every response: no status ≥ 500 (but the documented 503 of the routes that need the
reply worker, which is not running here); every error is JSON {"error": <code>, "message": ...};
no traceback; no generated input of ≥ 8 characters comes back, except the few fields an operation
legitimately echoes on success (ECHOED_ON_SUCCESS).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from convassist.api.app import API_PREFIX, create_api_app
from tests.security.conftest import SUMMARY, pair

BASE_URL = "http://testserver" + API_PREFIX
ACCEPTED_EXAMPLES = 30  # per generation mode, for an identity the operation accepts
REFUSED_EXAMPLES = 4  # per generation mode, for an identity it answers 401
MIN_ECHO_LENGTH = 8

# The worker is not running during the fuzz: these answers are the documented "come back later".
WORKER_DOWN_CODES = {"worker_unavailable", "model_unavailable", "worker_timeout"}
# Fields an operation returns on success because they are the caller's own data. Keep this short.
ECHOED_ON_SUCCESS = {
    ("POST", "/api/auth/signup"): {"email", "name"},
    ("POST", "/api/auth/login"): {"email"},
    ("POST", "/api/training/samples"): {"inputContext", "expectedOutput"},
    ("POST", "/api/training/jobs"): {"baseModel"},
    ("GET", "/api/ml/jobs/{job_id}"): {"job_id"},
}
# their 503 is the health report itself ({"status": ...}), by design
HEALTH = {("GET", "/api/health"), ("GET", "/api/health/details")}


SPEC = create_api_app().openapi()
SPEC_TEXT = json.dumps(SPEC, ensure_ascii=False)  # documented literals (enum values) may be named in errors
OPERATIONS = [(method.upper(), API_PREFIX + path) for path, ops in SPEC["paths"].items() for method in ops]


@dataclass
class OperationStats:
    cases: int = 0
    server_errors: int = 0  # 5xx that are not the documented "worker not running" 503 or a health report
    documented_503: int = 0
    unsendable: int = 0
    by_identity: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


STATS: dict[str, OperationStats] = {}


@pytest.fixture(scope="module", autouse=True)
def fuzz_summary():
    yield
    cases = sum(s.cases for s in STATS.values())
    errors = sum(s.server_errors for s in STATS.values())
    documented = sum(s.documented_503 for s in STATS.values())
    SUMMARY["fuzz"] = (f"{len(STATS)}/{len(OPERATIONS)} operations, {cases} cases, {errors} unexpected responses "
                       f"≥ 500 ({documented} documented 503s: no worker runs here, health reports), "
                       f"{sum(len(s.failures) for s in STATS.values())} failed checks")


def _inputs(case) -> list[tuple[str, str]]:
    """(field name, value) of every generated string of MIN_ECHO_LENGTH or more."""
    found: list[tuple[str, str]] = []

    def walk(name: str, value) -> None:
        if isinstance(value, str) and len(value) >= MIN_ECHO_LENGTH:
            found.append((name, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(str(key), item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(name, item)

    for part in (case.path_parameters, case.query):
        walk("", part or {})
    body = case.body
    if isinstance(body, (dict, list, str)):
        walk("body", body)
    return found


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _describe(case, kwargs: dict, identity: str) -> str:
    body = kwargs.get("json", kwargs.get("data"))
    shown = json.dumps(body, default=repr)[:300] if body is not None else "-"
    return (f"{case.method} {kwargs['url']} identity={identity} params={kwargs.get('params')!r} "
            f"body={shown}")


def _problems(key: tuple[str, str], case, response) -> list[str]:
    """What is wrong with one response (empty when it passes)."""
    problems = []
    text = response.text
    try:
        body = response.json()
    except ValueError:
        body = None
    status = response.status_code
    if status >= 500:
        unavailable = status == 503 and isinstance(body, dict) and body.get("error") in WORKER_DOWN_CODES
        health = key in HEALTH and status == 503 and isinstance(body, dict) and "status" in body
        if not (unavailable or health):
            problems.append(f"status {status}")
    if status >= 400 and not (key in HEALTH and status == 503):
        if not (isinstance(body, dict) and set(body) == {"error", "message"}
                and isinstance(body["error"], str) and isinstance(body["message"], str)):
            problems.append("error body is not {error, message}")
    if "Traceback" in text or 'File "' in text:
        problems.append("traceback in the body")
    exempt = ECHOED_ON_SUCCESS.get(key, set()) if status < 300 else set()
    leaves = _strings(body)
    for name, value in _inputs(case):
        if name in exempt or value in SPEC_TEXT:
            continue
        if isinstance(body, dict) and value in (body.get("error"), body.get("message")):
            continue  # the server's own fixed code or sentence, which the fuzzer harvested as an input

        if value in text or any(value in leaf for leaf in leaves):
            problems.append(f"input {name or 'parameter'}={value[:40]!r} echoed")
    return problems


def _send(api, case, token: str | None):
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = {"headers": headers, "params": kwargs.get("params") or None}
    if "json" in kwargs:
        request["json"] = kwargs["json"]
    elif isinstance(kwargs.get("data"), (bytes, str)):
        request["content"] = kwargs["data"]
    elif kwargs.get("data") is not None:
        request["data"] = kwargs["data"]
    return kwargs, api.request(case.method, kwargs["url"], **request)


def _probe(api, method: str, path: str, has_body: bool, token: str | None) -> int:
    """The status of one plain request as this identity: 401 means the operation refuses it."""
    url = BASE_URL + path[len(API_PREFIX):]
    for name in [part[1:-1] for part in url.split("/") if part.startswith("{")]:
        url = url.replace("{" + name + "}", str(uuid.uuid4()))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.request(method, url, headers=headers, json={} if has_body else None).status_code


@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(method, path, api, make_provider, settings_env):
    settings_env(ML_SERVICE_QUEUE=f"convassist:fuzz-without-worker:{uuid.uuid4().hex}")
    raw = api.get("/api/openapi.json").json()
    operation = schemathesis.openapi.from_dict(raw)[path[len(API_PREFIX):]][method]
    provider = make_provider("Fuzz")
    device = pair(api, provider)
    stats = STATS.setdefault(f"{method} {path}", OperationStats())
    key = (method, path)
    has_body = operation.body is not None and len(operation.body) > 0

    for identity, token in (("anonymous", None), ("provider", provider.token), ("device", device.token)):
        refused = _probe(api, method, path, has_body, token) == 401
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            examples = REFUSED_EXAMPLES if refused else ACCEPTED_EXAMPLES

            @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                try:
                    kwargs, response = _send(api, case, token)
                except (UnicodeEncodeError, ValueError, TypeError):  # the client cannot even send it
                    stats.unsendable += 1
                    return
                stats.cases += 1
                stats.by_identity[identity] = stats.by_identity.get(identity, 0) + 1
                problems = _problems(key, case, response)
                if response.status_code >= 500:
                    if any(p.startswith("status") for p in problems):
                        stats.server_errors += 1
                    else:
                        stats.documented_503 += 1
                if problems and len(stats.failures) < 20:
                    stats.failures.append(f"{'; '.join(problems)}\n    {_describe(case, kwargs, identity)}\n"
                                          f"    → {response.status_code} {response.text[:300]}")

            try:
                run()
            except Unsatisfiable:  # fewer distinct cases exist than asked for (an operation without inputs)
                pass

    print(f"{method} {path}: {stats.cases} cases {stats.by_identity}, {stats.server_errors} ≥ 500")
    assert stats.cases > 0
    assert not stats.failures, f"{len(stats.failures)} failed checks:\n" + "\n".join(stats.failures)


def test_every_served_operation_is_fuzzed(api):
    """The parametrization above covers exactly what the running API serves."""
    paths = api.get("/api/openapi.json").json()["paths"]
    served = {(m.upper(), API_PREFIX + p) for p, ops in paths.items() for m in ops}
    assert served == set(OPERATIONS)
