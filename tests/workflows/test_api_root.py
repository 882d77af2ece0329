"""GET /api/v1/ is where an integration starts: it links every collection, the docs and the schema."""


def test_the_api_root_links_every_collection(api):
    response = api.get("/api/v1/")
    assert response.status_code == 200
    links = response.json()
    for name in ("workflows", "executions", "templates", "work-items", "api-keys", "credentials", "notifications", "metrics-summary", "docs"):
        assert name in links, name
    assert links["executions"].rstrip("/").endswith("/api/v1/executions")
    assert api.get(links["executions"]).status_code == 200


def test_the_api_root_needs_a_login(anon_api):
    assert anon_api.get("/api/v1/").status_code in (401, 403)
