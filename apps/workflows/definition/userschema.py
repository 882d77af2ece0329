"""Validating data against JSON Schemas that users wrote (a workflow's input schema, its
signals' schemas), with every regular expression on RE2.

jsonschema runs `pattern`, `patternProperties` and the part of `additionalProperties` that
skips pattern-matched keys through Python's backtracking `re`: a schema with
`"pattern": "(a+)+$"` and an input of 30 characters would hold a web process (run starts,
webhooks, events) for minutes. Here those keywords use the same RE2 engine as `matches`, and
`schema_problems` lets the validator refuse, on save, patterns RE2 cannot compile.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, UnknownType, ValidationError

from .expressions import PatternError, compile_pattern


def _search(pattern: str, text: str) -> bool:
    regex = compile_pattern(pattern)
    try:
        return regex.search(text) is not None
    except UnicodeError:  # lone surrogates cannot be encoded for RE2
        return regex.search(text.encode("utf-8", "replace").decode("utf-8")) is not None


def _pattern(validator, pattern, instance, schema) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator, additional, instance, schema) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = sorted(
        (key for key in instance if key not in properties and not any(_search(p, key) for p in patterns)), key=str
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if patterns:
            yield ValidationError(
                f"{', '.join(map(repr, extras))} {'does' if len(extras) == 1 else 'do'} not match any of the "
                f"regexes: {', '.join(map(repr, sorted(patterns)))}"
            )
        else:
            yield ValidationError(
                f"Additional properties are not allowed ({', '.join(map(repr, extras))} "
                f"{'was' if len(extras) == 1 else 'were'} unexpected)"
            )


UserSchemaValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


class SchemaUnusable(ValueError):
    """The schema cannot be applied: a pattern RE2 cannot compile, a `$ref` loop that never
    reaches the data, or a `$ref` to somewhere else (nothing is fetched)."""


def errors(schema: dict, data: Any) -> list[ValidationError]:
    """jsonschema's errors of `data` against the user-written `schema`, regexes on RE2, ordered
    by path; SchemaUnusable (not RecursionError or a resolver's error) when it cannot be applied."""
    from referencing.exceptions import Unresolvable  # jsonschema's own dependency

    try:
        return sorted(UserSchemaValidator(schema).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    except PatternError as exc:
        raise SchemaUnusable(
            f"the schema has a pattern that cannot be used: {str(exc).removeprefix('matches: ')}"
        ) from None
    except RecursionError:
        raise SchemaUnusable("the schema refers to itself ($ref) in a loop that never reaches the data") from None
    except Unresolvable as exc:
        raise SchemaUnusable(
            f"the schema has a $ref that cannot be resolved ({exc}); only references inside the schema work"
        ) from None
    except (SchemaError, UnknownType) as exc:  # callers check the schema first; this is the backstop
        raise SchemaUnusable(f"the schema is not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None


def schema_problems(schema: Any) -> list[tuple[str, str, str]]:
    """(path inside the schema, message, problem code) for every regex RE2 cannot compile (`pattern` values and
    `patternProperties` keys), for `unevaluatedProperties` next to `patternProperties` (its
    pattern matching is jsonschema's own, on backtracking `re`, so it is not offered), for a
    `$ref` outside the schema, and for a `$ref` loop that never reaches the data."""
    found: list[tuple[str, str, str]] = []
    uses_unevaluated = False
    with_patterns: list[str] = []
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "pattern" and isinstance(value, str):
                try:
                    compile_pattern(value)
                except PatternError as exc:
                    found.append((here, str(exc).removeprefix("matches: "), "regex"))
            elif key == "patternProperties" and isinstance(value, dict):
                with_patterns.append(here)
                for pattern in value:
                    try:
                        compile_pattern(pattern)
                    except PatternError as exc:
                        found.append((f"{here}.{pattern}", str(exc).removeprefix("matches: "), "regex"))
            elif key == "unevaluatedProperties":
                uses_unevaluated = True
            elif key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                found.append(
                    (here, f"{value!r}: only references inside the schema (#/…) work; nothing is fetched", "schema")
                )
            stack.append((value, here))
    if uses_unevaluated and with_patterns:
        found.append(
            (
                with_patterns[0],
                "patternProperties cannot be combined with unevaluatedProperties in a workflow's schema",
                "regex",
            )
        )
    if not found and isinstance(schema, dict):
        try:  # a $ref loop that consumes no data loops on any input, and a remote $ref never resolves
            errors(schema, {})
        except SchemaUnusable as exc:
            found.append(("$ref", str(exc).removeprefix("the schema "), "schema"))
    return sorted(found)
