"""http.request against real HTTP servers on 127.0.0.1: auth kinds, bodies, retries,
timeouts, the circuit breaker, response mapping, size limit and the address guard."""

from __future__ import annotations

import base64
import time

import pytest
from django.test import override_settings

from apps.connectors import services
from apps.connectors.activities.http import http_request
from apps.connectors.circuit import breaker_for
from apps.connectors.outbound import check_destination
from apps.executions.activities import ActivityError

pytestmark = pytest.mark.django_db
LOCAL = override_settings(WB_HTTP_ALLOWED_HOSTS=["127.0.0.1"])


def ok(body=None):
    return lambda r: (200, {}, body if body is not None else {"ok": True})


#
# Auth from stored credentials
#


@LOCAL
def test_bearer_credential_is_sent_as_authorization_header(server, alice, run_context):
    services.create_credential(owner=alice, name="api", kind="bearer", secret="tok-bearer-123456", allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    server.routes["/me"] = ok({"login": "alice"})
    out = http_request({"url": server.url("/me"), "auth": {"credential": "api"}}, run_context())
    assert out["status"] == 200 and out["body"] == {"login": "alice"}
    assert server.received[-1].headers["authorization"] == "Bearer tok-bearer-123456"


@LOCAL
def test_api_key_header_credential_uses_its_header(server, alice, run_context):
    services.create_credential(owner=alice, name="k", kind="api_key_header", field_name="X-Api-Key", secret="key-in-header-42", allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    server.routes["/x"] = ok()
    http_request({"url": server.url("/x"), "auth": {"credential": "k"}}, run_context())
    assert server.received[-1].headers["x-api-key"] == "key-in-header-42"


@LOCAL
def test_api_key_query_credential_goes_in_the_query_and_not_in_logs(server, alice, run_context):
    services.create_credential(owner=alice, name="q", kind="api_key_query", field_name="api_key", secret="key-in-query-77", allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    server.routes["/search"] = ok()
    ctx = run_context()
    http_request({"url": server.url("/search"), "query": {"q": "cats", "tag": ["a", "b"]}, "auth": {"credential": "q"}}, ctx)
    path = server.received[-1].path
    assert "q=cats" in path and "tag=a&tag=b" in path and "api_key=key-in-query-77" in path
    assert "key-in-query-77" not in repr(ctx.logs)


@LOCAL
def test_basic_credential_sends_username_and_password(server, alice, run_context):
    services.create_credential(owner=alice, name="b", kind="basic", username="ada", secret="pa55-word-basic", allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    server.routes["/b"] = ok()
    http_request({"url": server.url("/b"), "auth": {"credential": "b"}}, run_context())
    expected = "Basic " + base64.b64encode(b"ada:pa55-word-basic").decode()
    assert server.received[-1].headers["authorization"] == expected


@LOCAL
def test_someone_elses_credential_is_not_found(server, charlie, run_context):
    services.create_credential(owner=charlie, name="theirs", kind="bearer", secret="charlies-secret-1")
    server.routes["/x"] = ok()
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/x"), "auth": {"credential": "theirs"}}, run_context())
    assert exc.value.type == "CredentialNotFound" and not exc.value.retryable
    assert server.received == []


#
# Methods and bodies
#


@LOCAL
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_every_method_is_sent(server, run_context, method):
    server.routes[f"{method} /m"] = ok({"method": method})
    out = http_request({"url": server.url("/m"), "method": method}, run_context())
    assert out["status"] == 200 and server.received[-1].method == method


@LOCAL
def test_json_form_and_raw_bodies(server, run_context):
    server.routes["POST /echo"] = lambda r: (200, {}, {"type": r.headers.get("content-type"), "body": r.body.decode()})
    ctx = run_context()
    out = http_request({"url": server.url("/echo"), "method": "POST", "json": {"a": [1, 2]}}, ctx)
    assert out["body"] == {"type": "application/json", "body": '{"a":[1,2]}'}
    out = http_request({"url": server.url("/echo"), "method": "POST", "form": {"name": "Ada Lovelace", "n": 3}}, ctx)
    assert out["body"] == {"type": "application/x-www-form-urlencoded", "body": "name=Ada+Lovelace&n=3"}
    out = http_request({"url": server.url("/echo"), "method": "POST", "body": "<x/>", "content_type": "application/xml"}, ctx)
    assert out["body"] == {"type": "application/xml", "body": "<x/>"}
    with pytest.raises(ActivityError, match="one body"):
        http_request({"url": server.url("/echo"), "method": "POST", "json": {}, "body": "x"}, ctx)


@LOCAL
def test_custom_headers_and_text_responses(server, run_context):
    server.routes["/t"] = lambda r: (200, {"Content-Type": "text/plain", "X-Reply": "yes"}, f"got {r.headers.get('x-trace')}")
    out = http_request({"url": server.url("/t"), "headers": {"X-Trace": "abc"}}, run_context())
    assert out["body"] == "got abc" and out["headers"]["x-reply"] == "yes"


@LOCAL
def test_an_error_status_fails_the_step_unless_told_otherwise(server, run_context):
    server.routes["/missing"] = lambda r: (404, {}, {"error": "no such thing"})
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/missing")}, run_context())
    assert exc.value.type == "HTTP4xx" and not exc.value.retryable and exc.value.details["status"] == 404
    out = http_request({"url": server.url("/missing"), "fail_on_status": False}, run_context())
    assert out["status"] == 404 and out["body"] == {"error": "no such thing"}


#
# Retries, timeouts, the circuit breaker
#


@LOCAL
def test_it_retries_on_503_then_succeeds(server, run_context):
    answers = iter([(503, {}, {"busy": True}), (503, {"Retry-After": "0"}, "busy"), (200, {}, {"done": True})])
    server.routes["/flaky"] = lambda r: next(answers)
    ctx = run_context()
    out = http_request({"url": server.url("/flaky"), "retry": {"max_attempts": 3, "on_status": [503], "backoff": 0.01}}, ctx)
    assert out["body"] == {"done": True}
    assert server.hits("/flaky") == 3
    assert sum("-> 503" in line["message"] for line in ctx.logs) == 2


@LOCAL
def test_retries_give_up_with_a_retryable_error(server, run_context):
    server.routes["/down"] = lambda r: (503, {}, "down")
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/down"), "retry": {"max_attempts": 2, "backoff": 0}, "circuit_breaker": False}, run_context())
    assert exc.value.type == "HTTP5xx" and exc.value.retryable
    assert server.hits("/down") == 2


@LOCAL
def test_connection_errors_are_retried_and_reported(local_server, run_context):
    gone = local_server()
    url = gone.url("/x")
    gone.httpd.shutdown()
    gone.httpd.server_close()
    with pytest.raises(ActivityError) as exc:
        http_request({"url": url, "retry": {"max_attempts": 2, "backoff": 0}, "circuit_breaker": False}, run_context())
    assert exc.value.type == "ConnectionError" and exc.value.retryable


@LOCAL
def test_a_slow_server_times_out(server, run_context):
    def slow(r):
        time.sleep(1.5)
        return 200, {}, {"late": True}

    server.routes["/slow"] = slow
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/slow"), "timeout": 0.2, "circuit_breaker": False}, run_context())
    assert exc.value.type == "Timeout" and exc.value.retryable


@LOCAL
def test_the_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial(server, run_context):
    healthy = {"now": False}
    server.routes["/svc"] = lambda r: (200, {}, {"ok": True}) if healthy["now"] else (500, {}, "boom")
    params = {"url": server.url("/svc"), "circuit_breaker": {"failure_threshold": 2, "reset_after": 0.5}}
    breaker = breaker_for("127.0.0.1", server.port)
    for _ in range(2):
        with pytest.raises(ActivityError) as exc:
            http_request(params, run_context())
        assert exc.value.type == "HTTP5xx"
    assert breaker.state() == "open"
    # Open: the request fails at once, without reaching the server.
    with pytest.raises(ActivityError) as exc:
        http_request(params, run_context())
    assert exc.value.type == "CircuitOpen" and exc.value.retryable
    assert server.hits("/svc") == 2
    # After reset_after, one trial passes; its success closes the circuit.
    healthy["now"] = True
    deadline = time.monotonic() + 5
    while breaker.state() == "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert breaker.state() == "half_open"
    assert http_request(params, run_context())["status"] == 200
    assert breaker.state() == "closed"
    assert http_request(params, run_context())["status"] == 200


@LOCAL
def test_a_failed_trial_opens_the_circuit_again(server, run_context):
    server.routes["/svc"] = lambda r: (502, {}, "bad gateway")
    params = {"url": server.url("/svc"), "circuit_breaker": {"failure_threshold": 1, "reset_after": 0.3}}
    breaker = breaker_for("127.0.0.1", server.port)
    with pytest.raises(ActivityError):
        http_request(params, run_context())
    deadline = time.monotonic() + 5
    while breaker.state() == "open" and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(ActivityError) as exc:
        http_request(params, run_context())
    assert exc.value.type == "HTTP5xx"
    assert breaker.state() == "open"


#
# Mapping and limits
#


@LOCAL
def test_response_values_are_mapped_with_defaults_and_functions(server, run_context):
    server.routes["/user"] = lambda r: (200, {"X-Rate-Remaining": "41"}, {"user": {"login": "ada", "repos": [{"stars": 3}, {"stars": 9}]}})
    params = {
        "url": server.url("/user"),
        "map": {
            "login": "@.body.user.login",
            "missing": {"path": "@.body.user.email", "default": "n/a"},
            "stars": {"fn": "sum", "args": ["@.body.user.repos[*].stars"]},
            "remaining": {"fn": "to_number", "args": ["@.headers.x-rate-remaining"]},
            "status": "@.status",
        },
    }
    out = http_request(params, run_context())
    assert out["mapped"] == {"login": "ada", "missing": "n/a", "stars": 12, "remaining": 41, "status": 200}
    only = http_request({**params, "result": "mapped"}, run_context())
    assert only == out["mapped"]


@LOCAL
def test_a_mapping_without_default_that_matches_nothing_fails_clearly(server, run_context):
    server.routes["/user"] = ok({"user": {}})
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/user"), "map": {"login": "@.body.user.login"}}, run_context())
    assert exc.value.type == "MappingError" and "login" in exc.value.message


@LOCAL
@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"name": "a\\u0000b"}', "body.name: contains a NUL character"),
        (b"text with a \x00 in it", "contains a NUL character"),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "nests deeper than"),
    ],
)
def test_a_response_that_cannot_be_stored_fails_the_step_clearly(server, run_context, body, words):
    server.routes["/odd"] = lambda r: (200, {"content-type": "application/json"}, body)
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/odd")}, run_context())
    assert exc.value.type == "InvalidResponse" and words in exc.value.message and not exc.value.retryable


@LOCAL
def test_responses_over_the_size_limit_are_refused(server, run_context):
    server.routes["/big"] = lambda r: (200, {}, b"x" * 5000)
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/big"), "max_response_bytes": 1000}, run_context())
    assert exc.value.type == "ResponseTooLarge"
    assert http_request({"url": server.url("/big"), "max_response_bytes": 10000}, run_context())["status"] == 200


#
# The destination guard
#


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8000/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[2002:7f00:1::]/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_private_and_metadata_addresses_are_refused(url):
    with pytest.raises(ActivityError) as exc:
        check_destination(url)
    assert exc.value.type == "DestinationNotAllowed" and not exc.value.retryable


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "http://user:pw@example.com/", "http:///nohost"])
def test_bad_urls_are_refused(url):
    with pytest.raises(ActivityError) as exc:
        check_destination(url)
    assert exc.value.type == "InvalidURL"


def test_loopback_is_refused_by_default_even_when_a_server_listens(server, run_context):
    server.routes["/"] = ok()
    with pytest.raises(ActivityError) as exc:
        http_request({"url": server.url("/")}, run_context())
    assert exc.value.type == "DestinationNotAllowed"
    assert server.received == []


def test_an_allowed_host_or_range_is_accepted(server, run_context):
    server.routes["/"] = ok()
    with override_settings(WB_HTTP_ALLOWED_HOSTS=["127.0.0.0/8"]):
        assert http_request({"url": server.url("/")}, run_context())["status"] == 200
    with override_settings(WB_HTTP_ALLOWED_HOSTS=["localhost"]):
        assert http_request({"url": f"http://localhost:{server.port}/"}, run_context())["status"] == 200
    with override_settings(WB_HTTP_ALLOWED_HOSTS=["10.0.0.0/8"]):
        with pytest.raises(ActivityError):
            http_request({"url": server.url("/")}, run_context())


def test_a_redirect_to_a_private_address_is_refused(server, run_context):
    server.routes["/go"] = lambda r: (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, "")
    # 127.0.0.1 is allowed by name only for the first hop's host; the redirect target is checked again.
    with override_settings(WB_HTTP_ALLOWED_HOSTS=["127.0.0.1"]):
        with pytest.raises(ActivityError) as exc:
            http_request({"url": server.url("/go")}, run_context())
    assert exc.value.type == "DestinationNotAllowed"


@LOCAL
def test_redirects_are_followed_and_drop_credentials_across_origins(local_server, alice, run_context):
    first, second = local_server(), local_server()
    services.create_credential(owner=alice, name="api", kind="bearer", secret="tok-not-for-others", allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    first.routes["/start"] = lambda r: (302, {"Location": first.url("/same")}, "")
    first.routes["/same"] = lambda r: (307, {"Location": second.url("/final")}, "")
    second.routes["POST /final"] = lambda r: (200, {}, {"auth": r.headers.get("authorization"), "body": r.body.decode()})
    first.routes["POST /start"] = first.routes["/start"]
    out = http_request({"url": first.url("/same"), "method": "POST", "json": {"a": 1}, "auth": {"credential": "api"}}, run_context())
    # 307 keeps the method and body; the other origin does not get the token.
    assert out["body"] == {"auth": None, "body": '{"a":1}'}
    assert first.received[-1].headers["authorization"] == "Bearer tok-not-for-others"
    assert out["redirects"]


@LOCAL
def test_an_api_key_header_is_not_forwarded_to_another_origin(local_server, alice, run_context):
    first, second = local_server(), local_server()
    services.create_credential(owner=alice, name="k", kind="api_key_header", field_name="X-Api-Key", secret="key-stays-home-1", allowed_hosts=["127.0.0.1"], workflows=[run_context.workflow])
    first.routes["/go"] = lambda r: (302, {"Location": second.url("/there")}, "")
    second.routes["/there"] = lambda r: (200, {}, {"key": r.headers.get("x-api-key")})
    assert http_request({"url": first.url("/go"), "auth": {"credential": "k"}}, run_context())["body"] == {"key": None}
