"""The API's JSON parser: size, depth and text limits at parsing, each a 400 naming the place.

DRF's own parser lets `json` recurse until it raises RecursionError (a 500), accepts 1e400,
"\u0000" and lone surrogates that PostgreSQL then refuses (another 500), and reads a body of
any size. This one answers 400 {"detail", "code", "field"} for each instead. The form parsers
(the browsable API) get the same text checks: a serializer's JSONField parses a form value
with json.loads, which would recurse just the same.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser as DRFFormParser
from rest_framework.parsers import JSONParser as DRFJSONParser
from rest_framework.parsers import MultiPartParser as DRFMultiPartParser

from apps.workflows import jsontext
from apps.workflows.definition import storable


class JSONInputParseError(ParseError):
    """A 400 whose body also names the field at fault."""

    def __init__(self, message: str, field: str = ""):
        detail = {"detail": f"JSON parse error - {field + ': ' if field else ''}{message}", "code": "parse_error"}
        if field:
            detail["field"] = field
        super().__init__(detail)


class JSONParser(DRFJSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = int(getattr(settings, "WB_JSON_MAX_BYTES", 10 * 1024 * 1024))
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise JSONInputParseError(f"the body is larger than the limit of {limit:,} bytes (WB_JSON_MAX_BYTES)")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise JSONInputParseError(f"the body is not {encoding} text: {exc}") from None
        try:
            return jsontext.loads(text)
        except jsontext.JSONInputError as exc:
            raise JSONInputParseError(exc.message, exc.field) from None
        except ValueError as exc:
            raise JSONInputParseError(str(exc)) from None


def _check_form(data) -> None:
    """NUL and lone surrogates in any form value, and JSON text nested too deeply for a
    JSONField to parse, are a 400 naming the field."""
    limit = jsontext.parse_depth_limit()
    for key, values in data.lists():
        for value in values:
            if not isinstance(value, str):
                continue  # an uploaded file: read by whoever wants it
            problem = storable.problem(value)
            if problem is None and value.count("[") + value.count("{") > limit:
                path = jsontext.deep_path(value, limit)
                if path is not None:
                    problem = (path, f"nests deeper than {limit} levels of objects and lists")
            if problem:
                inner, message = problem
                raise JSONInputParseError(
                    message, key + inner if inner.startswith("[") or not inner else f"{key}.{inner}"
                )


class FormParser(DRFFormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _check_form(data)
        return data


class MultiPartParser(DRFMultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _check_form(parsed.data)
        return parsed
