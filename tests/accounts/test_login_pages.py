"""Browser login and logout, the base layout and the home page."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_anonymous_users_are_redirected_from_home_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_the_login_page_renders_a_form_with_csrf(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert "csrfmiddlewaretoken" in html
    assert "/static/css/app.css" in html


def test_logging_in_lands_on_home_which_links_admin_and_api_docs(client, admin_user):
    response = client.post(
        "/accounts/login/", {"username": "root", "password": "root-password-1", "next": "/"}, follow=True
    )
    assert response.redirect_chain == [("/", 302)]
    html = response.content.decode()
    assert 'href="/admin/"' in html
    assert 'href="/api/docs/"' in html
    assert "root" in html


def test_a_wrong_password_shows_an_error_and_stays_logged_out(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    assert client.get("/").status_code == 302


def test_a_non_staff_user_sees_no_admin_link(client, alice):
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert 'href="/admin/"' not in html
    assert 'action="/accounts/logout/"' in html


def test_the_page_loads_htmx_and_sends_csrf_with_htmx_requests(client, alice):
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert "django_htmx/htmx-2.min.js" in html
    assert "hx-headers='{\"X-CSRFToken\": \"" in html


def test_logout_needs_post_and_ends_the_session(client, alice):
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


def test_static_css_is_served_for_the_site_and_the_admin(client):
    for path in ("/static/css/app.css", "/static/admin/css/base.css", "/static/django_htmx/htmx-2.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        b"".join(response.streaming_content if response.streaming else [response.content])


def test_the_api_docs_page_loads_everything_from_our_own_origin(client):
    """The CSP allows neither a CDN nor inline scripts and styles: the page must need neither."""
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "cdn." not in html and "https://" not in html
    assert "<style" not in html
    assert html.count("<script") == html.count("<script src=")  # no inline script
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert client.get("/api/docs/?script=").status_code == 200
    assert client.get("/api/schema/").status_code == 200


def test_the_api_docs_group_operations_by_resource(client):
    import yaml

    schema = yaml.safe_load(client.get("/api/schema/").content)
    tags = {tag for path in schema["paths"].values() for op in path.values() if isinstance(op, dict) for tag in op.get("tags", [])}
    assert {"workflows", "executions", "work-items", "templates"} <= tags and "v1" not in tags
