"""The chart's Trino catalog ConfigMap (trino.catalog values): off by default, and when on,
the very text `insights/trino.py` generates for the same metastore and S3 settings."""

from __future__ import annotations

from typing import Any

import pytest

from gameplay_analytics.insights import trino
from tests.chart import support


def _catalog(values: dict[str, Any]) -> dict[str, Any] | None:
    docs, _, _ = support.render(values)
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(
        "-trino-catalog")]  # fmt: skip
    assert len(maps) <= 1
    return maps[0] if maps else None


Render = tuple[list[dict[str, Any]], list[dict[str, Any]], str]


def test_off_by_default(default_render: Render) -> None:
    docs, _, _ = default_render
    assert not [d for d in docs if d["metadata"]["name"].endswith("-trino-catalog")]


@pytest.mark.parametrize(
    "catalog",
    [
        {},
        {"metastoreUri": "thrift://metastore.data.svc:9083", "s3Endpoint": "", "s3Region": "eu"},
        {"s3Endpoint": "https://minio.data.svc:9000"},
    ],
)
def test_the_configmap_is_the_generated_catalog(catalog: dict[str, Any]) -> None:
    found = _catalog({"trino": {"catalog": {"enabled": True, **catalog}}})
    assert found is not None
    assert found["metadata"]["name"] == f"{support.RELEASE}-gameplay-analytics-trino-catalog"
    assert found["metadata"]["namespace"] == support.NAMESPACE
    kwargs = {
        "metastore": catalog.get("metastoreUri", "thrift://hive-metastore:9083"),
        "s3_endpoint": catalog.get("s3Endpoint", "http://minio:9000"),
        "s3_region": catalog.get("s3Region", "us-east-1"),
    }
    assert found["data"] == {"hive.properties": trino.catalog_properties(**kwargs)}
    assert support.k8s_errors([found], support.min_kube_version()) == []


def test_extra_properties_follow(full_values: dict[str, Any]) -> None:
    found = _catalog(full_values)
    assert found is not None
    text = found["data"]["hive.properties"]
    c = full_values["trino"]["catalog"]
    base = trino.catalog_properties(
        c["metastoreUri"], s3_endpoint=c["s3Endpoint"], s3_region=c["s3Region"]
    )
    assert text == base + "hive.max-partitions-per-scan=200000\n"
