"""The error overlay's rule table."""

from __future__ import annotations

import pytest

from apps.workflows.suggestions import suggest


@pytest.mark.parametrize(
    ("error", "title"),
    [
        ({"type": "StepTimeout", "message": "the step did not finish within its timeout (5 s)"}, "The step ran out of time"),
        ({"type": "HTTP4xx", "message": "GET https://x/y answered 404"}, "The remote resource was not found"),
        ({"type": "HTTP4xx", "message": "GET https://x/y answered 401"}, "The remote API refused the credentials"),
        ({"type": "HTTP4xx", "message": "GET https://x/y answered 422"}, "The remote API rejected the request"),
        ({"type": "HTTP5xx", "message": "GET https://x/y answered 503"}, "The remote service failed"),
        ({"type": "ReferenceError", "message": "params: $.vars.missing"}, "A JSONPath or template found nothing"),
        ({"type": "InputError", "message": "input.name: 'name' is a required property"}, "The data does not fit the schema"),
        ({"type": "ConnectionError", "message": "cannot resolve nowhere.invalid"}, "The remote host could not be reached"),
        ({"type": "DestinationNotAllowed", "message": "127.0.0.1 is private"}, "The destination is blocked"),
        ({"type": "WorkerLost", "message": "the worker died"}, "The worker running the step died"),
        ({"type": "LoopLimitExceeded", "message": "the loop reached max_iterations (10)"}, "The loop hit its iteration cap"),
        ({"type": "Weird", "message": "JSONPath $.x matched nothing"}, "A data reference went wrong"),
        ({"type": "Weird", "message": "something else"}, "The step failed"),
        (None, "The step failed"),
    ],
)
def test_it_suggests_fixes_by_type_and_message(error, title):
    suggestion = suggest(error)
    assert suggestion.title == title
    assert suggestion.suggestions and suggestion.docs


def test_more_specific_rules_come_first_and_advice_is_not_repeated():
    suggestion = suggest({"type": "HTTP4xx", "message": "answered 429"})
    assert suggestion.title == "The remote API is rate limiting"
    assert any("retry policy" in s for s in suggestion.suggestions)
    assert len(suggestion.suggestions) == len(set(suggestion.suggestions))
