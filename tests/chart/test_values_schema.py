"""values.schema.json turns bad values into a clear error at install time, naming the field."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from tests.chart import support

BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown scope", {"rbac": {"scope": "global"}}, "/rbac/scope"),
    ("replicas not a number", {"operator": {"replicas": "two"}}, "/operator/replicas"),
    ("misspelt top-level key", {"operater": {"replicas": 2}}, "operater"),
    ("port out of range", {"metrics": {"service": {"port": 70000}}}, "/metrics/service/port"),
    ("pull policy", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ("empty repository", {"image": {"repository": ""}}, "/image/repository"),
    ("bad digest", {"image": {"digest": "latest"}}, "/image/digest"),
    ("root allowed", {"operator": {"podSecurityContext": {"runAsNonRoot": False}}}, "runAsNonRoot"),
    ("bad resource name", {"defaultPipeline": {"name": "Live_Pipeline"}}, "/defaultPipeline/name"),
    ("spec not a map", {"defaultSamplingPolicy": {"spec": "all"}}, "/defaultSamplingPolicy/spec"),
    ("bad quantity", {"operator": {"resources": {"limits": {"memory": "lots"}}}}, "memory"),
    ("nats toggle", {"nats": {"enabled": "yes"}}, "/nats/enabled"),
    ("policy port", {"networkPolicy": {"nats": {"ports": [0]}}}, "/networkPolicy/nats/ports/0"),
    ("policy cidr", {"networkPolicy": {"apiServer": {"cidrs": ["any"]}}}, "/apiServer/cidrs"),
    ("trino metastore", {"trino": {"catalog": {"metastoreUri": "hive:9083"}}}, "metastoreUri"),
    ("trino property", {"trino": {"catalog": {"extraProperties": {"a=b": "c"}}}}, "a=b"),
    ("env without name", {"operator": {"extraEnv": [{"value": "x"}]}}, "/operator/extraEnv/0"),
]


@pytest.mark.parametrize(
    ("values", "field"), [c[1:] for c in BAD_VALUES], ids=[c[0] for c in BAD_VALUES]
)
def test_bad_values_fail_at_install_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        support.render(values)
    assert field in str(caught.value)


def test_good_values_pass_the_schema(full_values: dict[str, Any]) -> None:
    with helm_python.Chart.load(support.CHART) as chart:
        chart.validate_schema({})
        chart.validate_schema(full_values)
        chart.validate_schema({"nats": {"enabled": True, "config": {"anything": "goes"}}})


def test_schema_is_draft_07() -> None:
    with helm_python.Chart.load(support.CHART) as chart:
        schema = chart.schema
    assert schema is not None
    text = schema if isinstance(schema, str | bytes) else str(schema)
    assert "draft-07" in str(text)
