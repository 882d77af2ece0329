"""/metrics shows the answering process's connection pool and the server's connections against its limit."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families


@pytest.mark.django_db
def test_metrics_show_the_pool_and_the_servers_connections(client: Client, settings):
    settings.WB_METRICS_TOKEN = "s3cret-token"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").content.decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(body) for s in f.samples}
    pool_max = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]
    assert samples[("wb_db_pool_max", ())] == pool_max
    in_use = samples[("wb_db_pool_connections", (("state", "in_use"),))]
    assert 1 <= in_use <= pool_max  # this request's own connection at least
    assert samples[("wb_db_pool_waiting", ())] >= 0
    assert samples[("wb_db_pool_timeouts_total", ())] >= 0
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        limit = int(cursor.fetchone()[0])
    assert samples[("wb_db_server_max_connections", ())] == limit
    assert 1 <= samples[("wb_db_server_connections", ())] <= limit
