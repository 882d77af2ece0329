"""The client address comes from X-Forwarded-For only through trusted proxies, and then from
the right-most untrusted hop: a client cannot pick the address that throttles, the lockout,
the audit log and the metrics allow-list see."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from apps.accounts.models import AuditLog
from apps.accounts.services import client_ip

PROXY = "10.0.0.5"


def _request(remote: str, xff: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.WB_TRUSTED_PROXIES = []
    assert client_ip(_request("198.51.100.1", "1.2.3.4")) == "198.51.100.1"


def test_through_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client(settings):
    settings.WB_TRUSTED_PROXIES = [PROXY, "10.1.0.0/16"]
    # The client wrote "1.2.3.4" itself; the proxy appended what it saw (198.51.100.1).
    assert client_ip(_request(PROXY, "1.2.3.4, 198.51.100.1")) == "198.51.100.1"
    # Two trusted proxies in a row are skipped.
    assert client_ip(_request(PROXY, "1.2.3.4, 198.51.100.1, 10.1.2.3")) == "198.51.100.1"
    assert client_ip(_request(PROXY, "garbage, 198.51.100.1")) == "198.51.100.1"
    assert client_ip(_request(PROXY)) == PROXY


def test_an_untrusted_peer_cannot_forward_for_anyone(settings):
    settings.WB_TRUSTED_PROXIES = [PROXY]
    assert client_ip(_request("198.51.100.9", "10.0.0.5, 1.2.3.4")) == "198.51.100.9"


@pytest.mark.django_db
def test_the_audit_log_records_the_real_client(client, alice, settings):
    settings.WB_TRUSTED_PROXIES = [PROXY]
    client.post("/accounts/login/", {"username": "alice", "password": "nope"}, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1")
    assert AuditLog.objects.get(action="login_failed").ip_address == "198.51.100.1"


@pytest.mark.django_db
def test_the_metrics_allow_list_sees_the_real_client(client, settings):
    settings.WB_TRUSTED_PROXIES = [PROXY]
    settings.WB_METRICS_ALLOWED_IPS = ["192.0.2.0/24"]
    settings.WB_METRICS_TOKEN = ""
    spoofed = client.get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.0.2.10, 198.51.100.1")
    assert spoofed.status_code == 403
    real = client.get("/metrics", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.10")
    assert real.status_code == 200


@pytest.mark.django_db
def test_throttles_key_on_the_real_client(anon_api, settings):
    from apps.accounts.throttling import AnonRateThrottle

    settings.WB_TRUSTED_PROXIES = [PROXY]
    throttle = AnonRateThrottle()
    spoof_a = _request(PROXY, "1.1.1.1, 198.51.100.1")
    spoof_b = _request(PROXY, "2.2.2.2, 198.51.100.1")
    assert throttle.get_ident(spoof_a) == throttle.get_ident(spoof_b) == "198.51.100.1"
