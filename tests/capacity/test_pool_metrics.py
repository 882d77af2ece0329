"""/metrics shows the answering process's connection pool and the server's connections against its limit."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client


@pytest.mark.django_db
def test_metrics_show_the_pool_and_the_servers_connections(client: Client, settings):
    settings.WB_METRICS_TOKEN = "s3cret-token"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").content.decode()
    pool_max = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert f"wb_db_pool_max {pool_max}\n" in body
    in_use = int(re.search(r'^wb_db_pool_connections\{state="in_use"\} (\d+)$', body, re.M).group(1))
    assert 1 <= in_use <= pool_max  # this request's own connection at least
    assert re.search(r"^wb_db_pool_waiting \d+$", body, re.M)
    assert re.search(r"^wb_db_pool_timeouts_total \d+$", body, re.M)
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        limit = int(cursor.fetchone()[0])
    assert f"wb_db_server_max_connections {limit}\n" in body
    used = int(re.search(r"^wb_db_server_connections (\d+)$", body, re.M).group(1))
    assert 1 <= used <= limit
