"""Suggested fixes for a failed step, from a rule table keyed on error types and messages.

Rules are tried in order; every rule that matches contributes its suggestions (most specific
first), and the first match's docs page is the one the error overlay links to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    types: tuple[str, ...]  # error types this rule matches ("*" for any)
    message: re.Pattern[str] | None  # and, when set, a pattern the message must match
    title: str
    suggestions: tuple[str, ...]
    docs: str  # an anchor of the error help page (templates/workflows/help.html, mirrored in docs/ui.md)

    def matches(self, error_type: str, message: str) -> bool:
        if "*" not in self.types and error_type not in self.types:
            return False
        return self.message is None or bool(self.message.search(message))


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.I)


RULES: tuple[Rule, ...] = (
    Rule(
        ("HTTP4xx",),
        _re(r"\b401\b|\b403\b"),
        "The remote API refused the credentials",
        (
            "Check the Authorization header or API key in the node's params; it may have expired or lack a scope.",
            "Store credentials in a connector instead of pasting them into params.",
        ),
        "http-errors",
    ),
    Rule(
        ("HTTP4xx",),
        _re(r"\b404\b"),
        "The remote resource was not found",
        (
            "Check the URL: a {{ template }} or $.path in it may have rendered an empty or wrong value (see the "
            "step input).",
        ),
        "http-errors",
    ),
    Rule(
        ("HTTP4xx",),
        _re(r"\b429\b"),
        "The remote API is rate limiting",
        (
            "Add a retry policy with exponential backoff (interval 1 s, multiplier 2) to the node.",
            "Lower the concurrency of the loop that calls it.",
        ),
        "http-errors",
    ),
    Rule(
        ("HTTP4xx",),
        None,
        "The remote API rejected the request",
        (
            "Compare the request the step sent (its input below) with what the API expects: method, body fields, "
            "content type.",
            'A 4xx is not retried by default: fix the params, then use "Retry with changes".',
        ),
        "http-errors",
    ),
    Rule(
        ("HTTP5xx",),
        None,
        "The remote service failed",
        (
            "Server errors are usually transient: add a retry policy (max_attempts 3-5, exponential backoff).",
            "If it keeps failing, check the remote service's status before retrying the run.",
        ),
        "http-errors",
    ),
    Rule(
        ("StepTimeout", "Timeout"),
        None,
        "The step ran out of time",
        (
            "Raise the node's timeout (seconds) if the work is legitimately slow.",
            "For HTTP calls, set the request's own timeout below the node's, and add a retry policy.",
        ),
        "timeouts",
    ),
    Rule(
        ("ReferenceError",),
        None,
        "A JSONPath or template found nothing",
        (
            "The path names data that did not exist when the step ran: check its spelling against the state in "
            "the replay viewer.",
            "Paths start at $.input, $.vars, $.steps.<node id>.output, $.item or $.error.",
            "Give a default in templates ({{ $.vars.x | default }}) when the value may be missing.",
        ),
        "references",
    ),
    Rule(
        ("InputError", "SchemaError", "ValidationError", "ParamsError"),
        None,
        "The data does not fit the schema",
        (
            "Compare the run input with the workflow's input schema; the message names the field.",
            'Use "Retry with changes" to correct the input and re-run from the failed step.',
        ),
        "schema-errors",
    ),
    Rule(
        ("ConnectionError",),
        None,
        "The remote host could not be reached",
        (
            "Check the host name and port in the URL; DNS may not resolve it from the workers.",
            "Add a retry policy: connection errors are retried when one is set.",
        ),
        "connection-errors",
    ),
    Rule(
        ("DestinationNotAllowed", "InvalidURL"),
        None,
        "The destination is blocked",
        (
            "Workflow steps may only call public addresses; an operator can allow an internal host in "
            "WB_HTTP_ALLOWED_HOSTS.",
        ),
        "destinations",
    ),
    Rule(
        ("WorkerLost",),
        None,
        "The worker running the step died",
        (
            "The engine re-dispatches lost steps; a run failing this way lost its worker repeatedly.",
            "Check the workers' memory and logs; long steps should stay under the broker's visibility timeout.",
        ),
        "workers",
    ),
    Rule(
        ("LoopLimitExceeded",),
        None,
        "The loop hit its iteration cap",
        (
            "Check the loop's condition: it may never become false (while) or true (until).",
            "Raise max_iterations if the loop legitimately needs more rounds, or make it long_running.",
        ),
        "loops",
    ),
    Rule(
        ("*",),
        _re(r"json ?path|\$\.|not found in"),
        "A data reference went wrong",
        ("Check every $.path the node uses against the state shown in the replay viewer.",),
        "references",
    ),
)

GENERIC = Rule(
    ("*",),
    None,
    "The step failed",
    (
        'Open the step\'s input and logs below, fix the cause, then use "Retry with changes".',
        "Add an on_error handler to the node to compensate instead of failing the run.",
    ),
    "errors",
)


@dataclass(frozen=True)
class Suggestion:
    title: str
    suggestions: list[str]
    docs: str


def suggest(error: dict | None) -> Suggestion:
    """Suggestions for an error dict ({type, message}); always returns at least the generic advice."""
    error = error or {}
    error_type = str(error.get("type") or "")
    message = str(error.get("message") or "")
    matched = [rule for rule in RULES if rule.matches(error_type, message)]
    if not matched:
        matched = [GENERIC]
    seen: list[str] = []
    for rule in matched:
        for text in rule.suggestions:
            if text not in seen:
                seen.append(text)
    return Suggestion(title=matched[0].title, suggestions=seen, docs=matched[0].docs)
