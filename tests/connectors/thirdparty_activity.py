"""A stand-in for a third-party package's activity module: importing it registers
`acme.greet` through the integrations framework (the worker imports it through
WB_ACTIVITY_MODULES; a package would name it in a `workflow_builder.activities` entry point)."""

from apps.executions.activities import ActivityError
from apps.workflows.definition.registry import register_activity


@register_activity(
    "acme.greet",
    params_schema={
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1}, "shout": {"type": "boolean"}},
        "required": ["name"],
        "additionalProperties": False,
    },
    description="Greet someone (a third-party activity used by the tests).",
    local=True,
)
def greet(params, ctx):
    if params["name"] == "nobody":
        raise ActivityError("NoOne", "there is no one to greet", retryable=False)
    text = f"Hello, {params['name']}!"
    ctx.log(f"greeting {params['name']}")
    return {"greeting": text.upper() if params.get("shout") else text}
