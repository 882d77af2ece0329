"""schemathesis over the whole generated schema, in-process against the WSGI app: no input, valid
or not, may get a 5xx. Signed in as alice, who owns the permission matrix's world (a workflow, a
waiting run, a work item, a template, a credential, triggers...), so requests reach real objects.

Each operation is its own test; each example runs in a savepoint that is rolled back, so every
example sees the same world (a DELETE does not leave the next example with a 404). Half the
examples use the world's ids in the path, the other half schemathesis' own.

WB_SCHEMATHESIS_EXAMPLES sets the examples per operation (default 8, as in `make test`); the full
run documented in docs/security.md ("Proof") uses more.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from schemathesis import GenerationMode

from tests.security.test_permission_matrix import OWNER, _api_path, world  # noqa: F401 (world is a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.xdist_group("schemathesis")]

EXAMPLES = int(os.environ.get("WB_SCHEMATHESIS_EXAMPLES", "8"))
# Where to write the tally of answers (operation, status, count) when set: the figures in docs/security.md.
REPORT = os.environ.get("WB_SCHEMATHESIS_REPORT", "")
TALLY: Counter[tuple[str, int]] = Counter()


def _schema_dict() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


SCHEMA = schemathesis.openapi.from_dict(_schema_dict())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def app(world):  # noqa: F811
    """The project's WSGI handler, called in this thread: it shares the test's connection and
    transaction. Django's own test client does the same: a request must not close the connection
    (close_old_connections would, seeing a transaction open)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    SCHEMA.app = WSGIHandler()
    yield SCHEMA.app
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
    if REPORT:
        statuses = Counter()
        for (_label, status), count in TALLY.items():
            statuses[status] += count
        with open(REPORT, "w") as out:
            json.dump({
                "examples_per_operation": EXAMPLES, "operations": len({label for label, _status in TALLY}),
                "requests": sum(TALLY.values()), "statuses": dict(sorted(statuses.items())),
                "by_operation": {f"{label} {status}": count for (label, status), count in sorted(TALLY.items())},
            }, out, indent=1)


@pytest.fixture(scope="module")
def token(world):  # noqa: F811
    from apps.accounts.services import issue_token

    _row, key = issue_token(world.users[OWNER])
    return key


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_input_gets_a_server_error(app, token, world, operation):  # noqa: F811
    real_path = _api_path(operation.path, world.ids)
    counter = itertools.count()
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[p for p in hypothesis_settings.default.phases if p.name != "shrink"],
    )
    @given(case=strategy)
    def check(case):
        if case.path_parameters and next(counter) % 2 == 0:
            # The world's objects, so the request gets past the lookup to the body.
            for name in case.path_parameters:
                case.path_parameters[name] = _value_in(real_path, operation.path, name)
        # alice's token, whatever security scheme the case picked (a made-up key or session would
        # only test the authentication classes, the same 401 over and over).
        case.headers = {name: value for name, value in (case.headers or {}).items() if name.lower() not in ("authorization", "x-api-key")}
        case.headers["Authorization"] = f"Token {token}"
        case.cookies = {}
        with transaction.atomic():
            response = case.call(app=app)
            transaction.set_rollback(True)
        TALLY[(operation.label, response.status_code)] += 1
        assert response.status_code < 500, f"{response.status_code} for\n{case.as_curl_command()}\n{response.text[:500]}"

    check()


def _value_in(real_path: str, template: str, name: str) -> str:
    """The value the world put for {name} in the template (by aligning the two paths)."""
    for part, real in zip(template.split("/"), real_path.split("/")):
        if part == "{" + name + "}":
            return real
    raise KeyError(name)
