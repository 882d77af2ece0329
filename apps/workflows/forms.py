"""Forms of the builder: workflow settings, one form per node type (activity params built from the
activity's params schema), edges, the JSON view and the run dialog (built from the input schema).

Node forms turn their fields back into a node dict (`to_node`) and know which form field a
validator Problem's field path belongs to (`field_for`), so errors show next to their field.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms

from apps.workflows import jsontext
from apps.workflows.definition import schema as definition_schema
from apps.workflows.definition.graph import iter_nodes
from apps.workflows.definition.registry import all_activities, get_activity

ID_RE = re.compile(definition_schema.ID_PATTERN)
OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "exists", "matches"]


def choice_field(form: forms.BaseForm, name: str) -> forms.ChoiceField:
    """The form's ChoiceField `name` (Form.fields is typed as holding plain Fields)."""
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField), name
    return field


def _json_or_text(text: str, *, require_json: bool = False) -> Any:
    """Parse form text: JSON when it looks like JSON (or must be), otherwise the text itself.

    Raises ValidationError for malformed JSON.
    """
    text = (text or "").strip()
    if not text:
        return None
    if (
        require_json
        or text[0] in '{["'
        or text in ("true", "false", "null")
        or re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", text)
    ):
        try:
            return jsontext.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
    return text


def _dump(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2 if isinstance(value, (dict, list)) else None)


class JSONTextField(forms.CharField):
    """A textarea holding JSON; cleans to the parsed value (None when empty)."""

    widget = forms.Textarea

    def __init__(self, *args: Any, expect: type | tuple[type, ...] | None = None, **kwargs: Any):
        self.expect = expect
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("rows", 6)
        self.widget.attrs.setdefault("class", "code")
        self.widget.attrs.setdefault("spellcheck", "false")

    def prepare_value(self, value: Any) -> Any:
        return value if isinstance(value, str) else _dump(value)

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if not text:
            return None
        try:
            parsed = jsontext.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if self.expect is not None and not isinstance(parsed, self.expect):
            names = (
                self.expect.__name__ if isinstance(self.expect, type) else " or ".join(t.__name__ for t in self.expect)
            )
            raise forms.ValidationError(f"must be a JSON {'object' if names == 'dict' else names}")
        return parsed


#
# Workflow
#


class WorkflowForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. billing, nightly")

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags") or ""
        tags = []
        for tag in raw.split(","):
            tag = tag.strip().lower()
            if tag and tag not in tags:
                if len(tag) > 50:
                    raise forms.ValidationError("a tag is at most 50 characters")
                tags.append(tag)
        return tags


class DefinitionSettingsForm(forms.Form):
    input_schema = JSONTextField(
        expect=dict, help_text="JSON Schema the run input must satisfy; its properties become the run form."
    )
    variables = JSONTextField(expect=dict, help_text="Initial variables ($.vars).")
    output = JSONTextField(
        help_text="What the run returns: a JSONPath string or an object of them (empty: all variables)."
    )

    signals = JSONTextField(expect=list, help_text='Declared signals, e.g. [{"name": "approved", "schema": {…}}].')

    FIELDS = ("input_schema", "variables", "output", "signals")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["input_schema"].widget.attrs["rows"] = 8
        self.fields["variables"].widget.attrs["rows"] = 3
        self.fields["output"].widget.attrs["rows"] = 2
        self.fields["signals"].widget.attrs["rows"] = 2


class DefinitionJSONForm(forms.Form):
    definition = JSONTextField(expect=dict, required=True, label="Definition (JSON)")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["definition"].widget.attrs["rows"] = 28


#
# Nodes
#


def graph_choices(definition: dict) -> list[tuple[str, str]]:
    """Where a node can be added: the top level, loop bodies, existing and new parallel branches."""
    choices = [("", "Top level")]
    for node, _parent, _where in iter_nodes(definition.get("nodes", [])):
        node_id = str(node.get("id", ""))
        if node.get("type") == "loop":
            choices.append((f"{node_id}.body", f"Body of loop {node_id}"))
        if node.get("type") == "parallel":
            for i, _branch in enumerate(node.get("branches", []) or []):
                choices.append((f"{node_id}.branches[{i}]", f"Branch {i + 1} of {node_id}"))
            choices.append((f"{node_id}.branches[new]", f"New branch of {node_id}"))
    return choices


class AddNodeForm(forms.Form):
    type = forms.ChoiceField(choices=[])
    id = forms.RegexField(
        regex=ID_RE,
        max_length=64,
        label="Node id",
        error_messages={"invalid": "letters, digits, _ and -, starting with a letter"},
    )
    activity = forms.ChoiceField(required=False, choices=[], help_text="For activity nodes.")
    graph = forms.ChoiceField(required=False, choices=[], label="Add to")
    after = forms.ChoiceField(
        required=False, choices=[], label="Connect after", help_text="Adds an edge from that node."
    )

    def __init__(self, *args: Any, definition: dict, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.definition = definition
        choice_field(self, "type").choices = [(t, t) for t in definition_schema.NODE_TYPES]
        choice_field(self, "activity").choices = [("", "—")] + [(a.name, a.name) for a in all_activities()]
        choice_field(self, "graph").choices = graph_choices(definition)
        ids = [str(n.get("id")) for n, _p, _w in iter_nodes(definition.get("nodes", []))]
        choice_field(self, "after").choices = [("", "(last node of that graph)"), ("-", "(not connected)")] + [
            (i, i) for i in ids
        ]
        self.existing_ids = set(ids)

    def clean_id(self) -> str:
        node_id = self.cleaned_data["id"]
        if node_id in self.existing_ids:
            raise forms.ValidationError(f"a node with id '{node_id}' already exists")
        return node_id

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        if data.get("type") == "activity" and not data.get("activity"):
            self.add_error("activity", "choose the activity this node runs")
        return data


class NodeForm(forms.Form):
    """Fields common to every node type; subclasses add their own and extend `to_node`."""

    id = forms.RegexField(
        regex=ID_RE,
        max_length=64,
        label="Node id",
        error_messages={"invalid": "letters, digits, _ and -, starting with a letter"},
    )
    name = forms.CharField(required=False, max_length=200)
    description = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    output = forms.CharField(
        required=False, label="Output variable", help_text="Variable that receives the node's output."
    )
    timeout = forms.CharField(required=False, label="Timeout (seconds)")
    on_error = forms.ChoiceField(required=False, label="On error, run", choices=[])
    retry_max_attempts = forms.CharField(required=False, label="Retry: attempts in all")
    retry_backoff = forms.ChoiceField(
        required=False, label="Retry: backoff", choices=[("", "—"), ("fixed", "fixed"), ("exponential", "exponential")]
    )
    retry_interval = forms.CharField(required=False, label="Retry: first interval (s)")

    node_type = ""
    # Problem field path (first segment) -> form field.
    FIELD_MAP: dict[str, str] = {"retry": "retry_max_attempts"}
    OWN_KEYS: tuple[str, ...] = ()

    def __init__(self, *args: Any, node: dict, siblings: list[str], **kwargs: Any):
        self.node = node
        initial = {
            "id": node.get("id", ""),
            "name": node.get("name", ""),
            "description": node.get("description", ""),
            "output": node.get("output", ""),
            "timeout": _dump(node.get("timeout")),
            "on_error": node.get("on_error", ""),
        }
        retry = given if isinstance(given := node.get("retry"), dict) else {}
        initial.update(
            retry_max_attempts=_dump(retry.get("max_attempts")),
            retry_backoff=retry.get("backoff", ""),
            retry_interval=_dump(retry.get("interval")),
        )
        initial.update(self.initial_for(node))
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        choice_field(self, "on_error").choices = [("", "—")] + [(s, s) for s in siblings if s != node.get("id")]
        self.siblings = siblings

    def initial_for(self, node: dict) -> dict:
        return {}

    # -- cleaning helpers --

    def _number(self, name: str, *, integer: bool = False) -> Any:
        text = (self.cleaned_data.get(name) or "").strip()
        if not text:
            return None
        try:
            return int(text) if integer else (int(text) if re.fullmatch(r"-?\d+", text) else float(text))
        except ValueError:
            self.add_error(name, "enter a whole number" if integer else "enter a number")
            return None

    def to_node(self) -> dict:
        """The node this form describes (call after is_valid()); unknown keys of the old node are kept."""
        data = self.cleaned_data
        node: dict[str, Any] = {k: v for k, v in self.node.items() if k not in self.managed_keys()}
        node["id"] = data["id"]
        node["type"] = self.node_type
        for key in ("name", "description", "output", "on_error"):
            if data.get(key):
                node[key] = data[key]
        timeout = self._number("timeout")
        if timeout is not None:
            node["timeout"] = timeout
        retry = dict(self.node.get("retry") or {}) if isinstance(self.node.get("retry"), dict) else {}
        for key, field, integer in (
            ("max_attempts", "retry_max_attempts", True),
            ("interval", "retry_interval", False),
        ):
            value = self._number(field, integer=integer)
            if value is None:
                retry.pop(key, None)
            else:
                retry[key] = value
        if data.get("retry_backoff"):
            retry["backoff"] = data["retry_backoff"]
        else:
            retry.pop("backoff", None)
        if retry:
            node["retry"] = retry
        node.update(self.own_values())
        return node

    def managed_keys(self) -> set[str]:
        return {"id", "type", "name", "description", "output", "timeout", "on_error", "retry", *self.OWN_KEYS}

    def own_values(self) -> dict:
        return {}

    def field_for(self, problem_field: str | None) -> str | None:
        """The form field showing a validator problem about `problem_field` (None: the whole form)."""
        if not problem_field:
            return None
        if problem_field in self.fields:
            return problem_field
        head = re.split(r"[.\[]", problem_field, maxsplit=1)[0]
        if problem_field.startswith("retry."):
            sub = problem_field.split(".")[1]
            return {"max_attempts": "retry_max_attempts", "interval": "retry_interval", "backoff": "retry_backoff"}.get(
                sub, "retry_max_attempts"
            )
        mapped = self.FIELD_MAP.get(head, head)
        return mapped if mapped in self.fields else None


class ActivityNodeForm(NodeForm):
    node_type = "activity"
    OWN_KEYS = ("activity", "params")
    activity = forms.ChoiceField(choices=[])

    def __init__(self, *args: Any, node: dict, siblings: list[str], **kwargs: Any):
        self.spec = get_activity(str(node.get("activity", "")))
        super().__init__(*args, node=node, siblings=siblings, **kwargs)
        activities = [(a.name, a.name) for a in all_activities()]
        if self.spec is None and node.get("activity"):
            activities.insert(0, (node["activity"], f"{node['activity']} (unknown)"))
        choice_field(self, "activity").choices = activities
        params = given if isinstance(given := node.get("params"), dict) else {}
        self.param_fields: list[str] = []
        properties = (self.spec.params_schema.get("properties") or {}) if self.spec else {}
        required = set(self.spec.params_schema.get("required") or []) if self.spec else set()
        for name, prop in properties.items():
            field_name = f"param__{name}"
            self.fields[field_name] = self._param_field(name, prop or {}, name in required)
            self.initial.setdefault(field_name, self._param_initial(prop or {}, params.get(name)))
            self.param_fields.append(field_name)
        extra = {k: v for k, v in params.items() if k not in properties}
        if not properties or extra:
            self.fields["params_json"] = JSONTextField(
                expect=dict, label="Other params (JSON)" if properties else "Params (JSON)"
            )
            self.initial.setdefault("params_json", _dump(extra) if extra else "")
            self.param_fields.append("params_json")

    @staticmethod
    def _param_field(name: str, prop: dict, required: bool) -> forms.Field:
        label = name.replace("_", " ").capitalize() + (" *" if required else "")
        help_text = prop.get("description", "")
        kind = prop.get("type")
        if "enum" in prop:
            return forms.ChoiceField(
                required=False,
                label=label,
                help_text=help_text,
                choices=[("", "—")] + [(json.dumps(v) if not isinstance(v, str) else v, str(v)) for v in prop["enum"]],
            )
        if kind == "boolean":
            return forms.ChoiceField(
                required=False,
                label=label,
                help_text=help_text,
                choices=[("", "—"), ("true", "true"), ("false", "false")],
            )
        if kind in ("object", "array"):
            field = JSONTextField(label=label, help_text=help_text or "JSON")
            field.widget.attrs["rows"] = 4
            return field
        if kind is None:
            return forms.CharField(
                required=False,
                label=label,
                help_text=help_text or "Text, a $.path, or JSON",
                widget=forms.Textarea(attrs={"rows": 2}),
            )
        return forms.CharField(required=False, label=label, help_text=help_text)

    @staticmethod
    def _param_initial(prop: dict, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return _dump(value)

    def initial_for(self, node: dict) -> dict:
        return {"activity": node.get("activity", "")}

    def own_values(self) -> dict:
        params: dict[str, Any] = {}
        properties = (self.spec.params_schema.get("properties") or {}) if self.spec else {}
        for name, prop in properties.items():
            field_name = f"param__{name}"
            raw = self.cleaned_data.get(field_name)
            prop = prop or {}
            if isinstance(self.fields[field_name], JSONTextField):
                value = raw
            elif prop.get("type") is None:
                try:
                    value = _json_or_text(raw or "")
                except forms.ValidationError as exc:
                    self.add_error(field_name, exc)
                    continue
            else:
                text = (raw or "").strip()
                if not text:
                    continue
                kind = prop.get("type")
                if "enum" in prop:
                    value = text if any(text == v for v in prop["enum"] if isinstance(v, str)) else json.loads(text)
                elif kind == "boolean":
                    value = text == "true"
                elif kind in ("number", "integer") and not text.startswith("$"):
                    try:
                        value = int(text) if kind == "integer" or re.fullmatch(r"-?\d+", text) else float(text)
                    except ValueError:
                        self.add_error(field_name, "enter a whole number" if kind == "integer" else "enter a number")
                        continue
                else:
                    value = text
            if value is not None:
                params[name] = value
        extra = self.cleaned_data.get("params_json")
        if isinstance(extra, dict):
            params.update(extra)
        return {"activity": self.cleaned_data["activity"], "params": params}

    def field_for(self, problem_field: str | None) -> str | None:
        if problem_field and problem_field.startswith("params"):
            rest = problem_field[len("params") :].lstrip(".")
            name = re.split(r"[.\[]", rest, maxsplit=1)[0] if rest else ""
            if f"param__{name}" in self.fields:
                return f"param__{name}"
            return (
                "params_json" if "params_json" in self.fields else (self.param_fields[0] if self.param_fields else None)
            )
        return super().field_for(problem_field)


class ConditionNodeForm(NodeForm):
    """Cases as rows (var, op, value, next node); a compound case (all/any/not) is edited as JSON."""

    node_type = "condition"
    OWN_KEYS = ("cases", "default")
    default = forms.ChoiceField(required=False, label="Default (no case holds)", choices=[])

    def __init__(self, *args: Any, node: dict, siblings: list[str], **kwargs: Any):
        super().__init__(*args, node=node, siblings=siblings, **kwargs)
        targets = [("", "—")] + [(s, s) for s in siblings if s != node.get("id")]
        choice_field(self, "default").choices = targets
        cases = [c for c in (node.get("cases") or []) if isinstance(c, dict)]
        self.case_rows: list[dict] = []
        count = len(cases) + (
            1 if not self.is_bound else int(self.data.get(self.add_prefix("case_count")) or len(cases) + 1)
        )
        self.fields["case_count"] = forms.IntegerField(widget=forms.HiddenInput, initial=count, required=False)
        for i in range(count):
            case = cases[i] if i < len(cases) else {}
            when = case.get("when", {})
            simple = not when or (isinstance(when, dict) and "var" in when)
            row: dict[str, Any] = {"index": i, "simple": simple}
            if simple:
                self.fields[f"case_{i}_var"] = forms.CharField(required=False, label=f"Case {i + 1}: variable")
                self.fields[f"case_{i}_op"] = forms.ChoiceField(
                    required=False, label=f"Case {i + 1}: operator", choices=[("", "—")] + [(o, o) for o in OPS]
                )
                self.fields[f"case_{i}_value"] = forms.CharField(required=False, label=f"Case {i + 1}: value")
                self.initial.setdefault(f"case_{i}_var", when.get("var", "") if when else "")
                self.initial.setdefault(f"case_{i}_op", when.get("op", "") if when else "")
                self.initial.setdefault(f"case_{i}_value", _dump(when.get("value")) if when else "")
                row["fields"] = [f"case_{i}_var", f"case_{i}_op", f"case_{i}_value"]
            else:
                self.fields[f"case_{i}_when"] = JSONTextField(expect=dict, label=f"Case {i + 1}: condition (JSON)")
                self.initial.setdefault(f"case_{i}_when", _dump(when))
                row["fields"] = [f"case_{i}_when"]
            self.fields[f"case_{i}_to"] = forms.ChoiceField(
                required=False, label=f"Case {i + 1}: go to", choices=targets
            )
            self.fields[f"case_{i}_label"] = forms.CharField(required=False, label=f"Case {i + 1}: label")
            self.initial.setdefault(f"case_{i}_to", case.get("to", ""))
            self.initial.setdefault(f"case_{i}_label", case.get("label", ""))
            row["fields"] += [f"case_{i}_to", f"case_{i}_label"]
            self.case_rows.append(row)

    def initial_for(self, node: dict) -> dict:
        return {"default": node.get("default", "")}

    def own_values(self) -> dict:
        cases = []
        for row in self.case_rows:
            i = row["index"]
            if row["simple"]:
                var = (self.cleaned_data.get(f"case_{i}_var") or "").strip()
                op = self.cleaned_data.get(f"case_{i}_op") or ""
                if not var and not op:
                    continue  # an empty row: no case
                when: dict[str, Any] = {"var": var, "op": op or "eq"}
                try:
                    value = _json_or_text(self.cleaned_data.get(f"case_{i}_value") or "")
                except forms.ValidationError as exc:
                    self.add_error(f"case_{i}_value", exc)
                    continue
                if value is not None:
                    when["value"] = value
            else:
                when = self.cleaned_data.get(f"case_{i}_when") or {}
            case = {"when": when, "to": self.cleaned_data.get(f"case_{i}_to") or ""}
            if self.cleaned_data.get(f"case_{i}_label"):
                case["label"] = self.cleaned_data[f"case_{i}_label"]
            cases.append(case)
        out: dict[str, Any] = {"cases": cases}
        if self.cleaned_data.get("default"):
            out["default"] = self.cleaned_data["default"]
        return out

    def field_for(self, problem_field: str | None) -> str | None:
        m = re.match(r"cases\[(\d+)\](?:\.(\w+))?", problem_field or "")
        if m:
            i, sub = int(m.group(1)), m.group(2) or "when"
            # Cases are renumbered when empty rows are dropped; rows map 1:1 for filled ones.
            if sub == "to":
                return f"case_{i}_to" if f"case_{i}_to" in self.fields else None
            for name in (f"case_{i}_var", f"case_{i}_when"):
                if name in self.fields:
                    return name
        if problem_field == "cases":
            return "case_0_var" if "case_0_var" in self.fields else None
        return super().field_for(problem_field)


class ParallelNodeForm(NodeForm):
    node_type = "parallel"
    OWN_KEYS = ("join",)
    join = forms.ChoiceField(
        choices=[("all", "all branches"), ("any", "any branch"), ("count", "N branches")], required=False
    )
    join_count = forms.IntegerField(required=False, min_value=1, label="N (for “N branches”)")
    FIELD_MAP = {**NodeForm.FIELD_MAP, "join": "join", "branches": "join"}

    def initial_for(self, node: dict) -> dict:
        join = node.get("join", "all")
        if isinstance(join, dict):
            return {"join": "count", "join_count": join.get("count")}
        return {"join": join}

    def own_values(self) -> dict:
        join = self.cleaned_data.get("join") or "all"
        if join == "count":
            if not self.cleaned_data.get("join_count"):
                self.add_error("join_count", "say how many branches must succeed")
                return {}
            return {"join": {"count": self.cleaned_data["join_count"]}}
        return {"join": join}

    def field_for(self, problem_field: str | None) -> str | None:
        if problem_field == "join.count":
            return "join_count"
        return super().field_for(problem_field)


class LoopNodeForm(NodeForm):
    node_type = "loop"
    OWN_KEYS = (
        "mode",
        "items",
        "concurrency",
        "complete_when",
        "aggregate",
        "condition",
        "max_iterations",
        "long_running",
        "continue_every",
    )
    mode = forms.ChoiceField(
        choices=[
            ("for_each", "for each item"),
            ("while", "while a condition holds"),
            ("until", "until a condition holds"),
        ]
    )
    items = forms.CharField(required=False, help_text="for each: a $.path to a list, or a JSON list.")
    concurrency = forms.IntegerField(
        required=False, min_value=1, max_value=1000, help_text="Iterations in flight at once (default 1)."
    )
    complete_when = forms.ChoiceField(
        required=False, choices=[("", "all (default)"), ("first", "first"), ("count", "N iterations")]
    )
    complete_count = forms.IntegerField(required=False, min_value=1, label="N (for “N iterations”)")
    aggregate = forms.ChoiceField(required=False, choices=[("", "list (default)"), ("count", "count"), ("sum", "sum")])
    condition = JSONTextField(
        expect=dict, help_text='while/until: e.g. {"var": "status", "op": "neq", "value": "ready"}'
    )
    max_iterations = forms.IntegerField(required=False, min_value=1)
    long_running = forms.BooleanField(required=False, label="Long running (continue as new)")
    continue_every = forms.IntegerField(required=False, min_value=1)

    def initial_for(self, node: dict) -> dict:
        complete = node.get("complete_when", "")
        return {
            "mode": node.get("mode", "for_each"),
            "items": _dump(node.get("items")),
            "concurrency": node.get("concurrency"),
            "complete_when": "count" if isinstance(complete, dict) else (complete if complete != "all" else ""),
            "complete_count": complete.get("count") if isinstance(complete, dict) else None,
            "aggregate": node.get("aggregate", ""),
            "condition": node.get("condition"),
            "max_iterations": node.get("max_iterations"),
            "long_running": bool(node.get("long_running")),
            "continue_every": node.get("continue_every"),
        }

    def own_values(self) -> dict:
        d = self.cleaned_data
        out: dict[str, Any] = {"mode": d["mode"]}
        if "body" in self.node:
            out["body"] = self.node["body"]
        try:
            items = _json_or_text(d.get("items") or "")
        except forms.ValidationError as exc:
            self.add_error("items", exc)
            items = None
        if items is not None:
            out["items"] = items
        for key in ("concurrency", "max_iterations", "continue_every"):
            if d.get(key):
                out[key] = d[key]
        if d.get("complete_when") == "count":
            out["complete_when"] = {"count": d.get("complete_count") or 1}
        elif d.get("complete_when"):
            out["complete_when"] = d["complete_when"]
        if d.get("aggregate"):
            out["aggregate"] = d["aggregate"]
        if d.get("condition"):
            out["condition"] = d["condition"]
        if d.get("long_running"):
            out["long_running"] = True
        return out

    def managed_keys(self) -> set[str]:
        return super().managed_keys() | {"body"}

    def field_for(self, problem_field: str | None) -> str | None:
        if problem_field and problem_field.startswith("complete_when"):
            return "complete_count" if problem_field.endswith("count") else "complete_when"
        return super().field_for(problem_field)


class TimerNodeForm(NodeForm):
    node_type = "timer"
    OWN_KEYS = ("duration", "until")
    duration = forms.CharField(required=False, help_text="Seconds to wait, or a $.path to them.")
    until = forms.CharField(required=False, help_text="An ISO 8601 time, or a $.path to one.")

    def initial_for(self, node: dict) -> dict:
        return {"duration": _dump(node.get("duration")), "until": node.get("until", "")}

    def own_values(self) -> dict:
        out: dict[str, Any] = {}
        duration = (self.cleaned_data.get("duration") or "").strip()
        if duration:
            if duration.startswith("$"):
                out["duration"] = duration
            else:
                try:
                    out["duration"] = float(duration) if "." in duration else int(duration)
                except ValueError:
                    self.add_error("duration", "enter a number of seconds or a $.path")
        if self.cleaned_data.get("until"):
            out["until"] = self.cleaned_data["until"].strip()
        return out


class GenericNodeForm(NodeForm):
    """Node types added later without a form of their own: their own fields as JSON."""

    extra = JSONTextField(expect=dict, label="Type-specific fields (JSON)")

    def __init__(self, *args: Any, node: dict, siblings: list[str], **kwargs: Any):
        self.node_type = str(node.get("type", ""))
        super().__init__(*args, node=node, siblings=siblings, **kwargs)
        common = NodeForm.managed_keys(self)
        self.initial.setdefault("extra", _dump({k: v for k, v in node.items() if k not in common}))

    def managed_keys(self) -> set[str]:
        return set(self.node)  # everything is rewritten from the form

    def own_values(self) -> dict:
        return dict(self.cleaned_data.get("extra") or {})

    def field_for(self, problem_field: str | None) -> str | None:
        return super().field_for(problem_field) or ("extra" if problem_field else None)


NODE_FORMS: dict[str, type[NodeForm]] = {
    "activity": ActivityNodeForm,
    "condition": ConditionNodeForm,
    "parallel": ParallelNodeForm,
    "loop": LoopNodeForm,
    "timer": TimerNodeForm,
}


def node_form_for(node: dict, siblings: list[str], data: Any = None) -> NodeForm:
    form_class = NODE_FORMS.get(str(node.get("type")), GenericNodeForm)
    if (
        form_class is ActivityNodeForm
        and data is not None
        and data.get("activity")
        and data.get("activity") != node.get("activity")
    ):
        # The activity changed: build the params fields of the new one (values start empty).
        node = {**node, "activity": data.get("activity"), "params": {}}
    return form_class(data, node=node, siblings=siblings)


class EdgeForm(forms.Form):
    graph = forms.ChoiceField(required=False, choices=[], label="Graph")
    source = forms.ChoiceField(choices=[], label="From")
    target = forms.ChoiceField(choices=[], label="To")
    label = forms.CharField(required=False, max_length=200)

    def __init__(self, *args: Any, graphs: list[tuple[str, str]], node_ids: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        choice_field(self, "graph").choices = graphs
        choice_field(self, "source").choices = [(i, i) for i in node_ids]
        choice_field(self, "target").choices = [(i, i) for i in node_ids]


#
# Run dialog
#


class NumberField(forms.FloatField):
    """A JSON Schema number: 5000 stays 5000 (a float only when it has a fraction), so templates
    such as "Approve order {{ $.input.total }}" read as typed."""

    # The stubs leave FloatField.to_python typed as IntegerField's (int | None); Django's returns a float.
    def to_python(self, value: Any) -> int | float | None:  # type: ignore[override]
        number = super().to_python(value)
        if isinstance(number, float) and number.is_integer() and abs(number) < 2**53:
            return int(number)
        return number


class RunForm(forms.Form):
    """A form built from the workflow's input schema; anything it cannot express is a JSON field."""

    def __init__(self, *args: Any, input_schema: dict | None, initial_input: dict | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.input_schema = input_schema if isinstance(input_schema, dict) else {}
        initial_input = initial_input or {}
        properties = (
            self.input_schema.get("properties") if self.input_schema.get("type", "object") == "object" else None
        )
        required = set(self.input_schema.get("required") or [])
        self.property_names: list[str] = []
        self.raw = not isinstance(properties, dict) or not properties
        if not isinstance(properties, dict) or not properties:
            self.fields["input_json"] = JSONTextField(
                expect=dict, label="Input (JSON)", initial=_dump(initial_input or {})
            )
            return
        for name, prop in properties.items():
            prop = prop if isinstance(prop, dict) else {}
            label = prop.get("title") or name.replace("_", " ").capitalize()
            help_text = prop.get("description", "")
            kind = prop.get("type")
            default = initial_input.get(name, prop.get("default"))
            req = name in required
            field: forms.Field
            if "enum" in prop:
                field = forms.ChoiceField(
                    required=req, choices=([] if req else [("", "—")]) + [(json.dumps(v), str(v)) for v in prop["enum"]]
                )
                default = json.dumps(default) if default is not None else None
            elif kind == "boolean":
                field = forms.BooleanField(required=False)
            elif kind == "integer":
                field = forms.IntegerField(required=req, min_value=prop.get("minimum"), max_value=prop.get("maximum"))
            elif kind == "number":
                field = NumberField(required=req, min_value=prop.get("minimum"), max_value=prop.get("maximum"))
            elif kind == "string":
                fmt = prop.get("format")
                widget = forms.Textarea(attrs={"rows": 3}) if (prop.get("maxLength") or 0) > 200 else None
                field = forms.CharField(
                    required=req, max_length=prop.get("maxLength"), min_length=prop.get("minLength"), widget=widget
                )
                if fmt == "email":
                    field = forms.EmailField(required=req)
            else:
                field = JSONTextField(required=req, label=label)
                default = _dump(default) if default is not None else None
                field.widget.attrs["rows"] = 3
            field.label = label + (" *" if req else "")
            field.help_text = help_text
            if default is not None:
                field.initial = default
            self.fields[f"in__{name}"] = field
            self.property_names.append(name)

    def input_data(self) -> dict:
        """The run input (call after is_valid())."""
        if self.raw:
            return self.cleaned_data.get("input_json") or {}
        properties = self.input_schema.get("properties") or {}
        out: dict[str, Any] = {}
        for name in self.property_names:
            value = self.cleaned_data.get(f"in__{name}")
            prop = properties.get(name) or {}
            if "enum" in prop:
                if value in (None, ""):
                    continue
                value = json.loads(value)
            elif prop.get("type") == "boolean":
                value = bool(value)
            elif value in (None, ""):
                continue
            out[name] = value
        return out

    def field_for(self, problem_field: str) -> str | None:
        """'input.customer.name' -> 'in__customer'; None when no field shows it."""
        if self.raw:
            return "input_json"
        path = problem_field.split(".", 1)[1] if "." in problem_field else ""
        name = path.split(".", 1)[0]
        return f"in__{name}" if f"in__{name}" in self.fields else None


class RetryWithChangesForm(forms.Form):
    input = JSONTextField(expect=dict, required=True, label="Run input (JSON)")
    params = JSONTextField(expect=dict, label="Params of the failed node (JSON)")

    def __init__(self, *args: Any, node_is_activity: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not node_is_activity:
            del self.fields["params"]
