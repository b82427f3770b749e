"""One error shape for every failure, OpenAPI under /api."""


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert body["error"] == code
    assert "Traceback" not in body["message"]
    return body


def test_validation_error_has_our_shape_and_names_the_field(api):
    body = assert_error(api.post("/api/auth/signup", json={"email": "a@b.co"}), 422, "validation_error")
    assert "password" in body["message"] and "name" in body["message"]


def test_validation_error_never_echoes_the_input(api):
    body = assert_error(api.post("/api/auth/login", json={"email": "a@b.co", "password": 12345678}), 422,
                        "validation_error")
    assert "12345678" not in body["message"]


def test_malformed_json(api):
    assert_error(api.post("/api/auth/login", content=b"{not json", headers={"content-type": "application/json"}),
                 422, "validation_error")


def test_unknown_fields_are_refused(api):
    body = assert_error(api.post("/api/auth/login", json={"email": "a@b.co", "password": "x" * 8, "admin": True}),
                        422, "validation_error")
    assert "admin" in body["message"]


def test_unknown_api_path_and_wrong_method(api):
    assert_error(api.get("/api/nope"), 404, "not_found")
    assert_error(api.get("/api/auth/login"), 405, "method_not_allowed")


def test_openapi_and_docs_live_under_api(api):
    spec = api.get("/api/openapi.json")
    assert spec.status_code == 200
    assert spec.json()["servers"] == [{"url": "/api"}]
    paths = spec.json()["paths"]
    assert "/auth/login" in paths and "/health" in paths
    assert api.get("/api/docs").status_code == 200
    assert api.get("/openapi.json").status_code != 200
    # camelCase on the wire
    schema = spec.json()["components"]["schemas"]["TokenResponse"]["properties"]
    assert "expiresAt" in schema and "expires_at" not in schema
