"""transform's params: `source` is required (its mapping paths are read relative to it), and named when missing."""

from apps.workflows.definition.validator import validate


def _transform(params):
    return {"format_version": 1, "nodes": [{"id": "pick", "type": "activity", "activity": "transform", "params": params}]}


def test_a_transform_without_source_is_refused_naming_the_field():
    problems = validate(_transform({"mapping": {"id": "$.order.id"}}))
    assert problems, "a transform without source must not validate"
    assert [str(p) for p in problems] == ["node 'pick', field 'params.source': this field is required"]


def test_a_transform_with_a_relative_mapping_validates():
    assert validate(_transform({"source": "$.vars", "mapping": {"id": "$.order.id", "region": {"path": "$.order.region", "default": "EU"}}})) == []
