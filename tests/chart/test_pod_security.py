"""Every pod the chart renders (and the privacy-request Job template) meets the restricted Pod
Security Standard, checked rule by rule (tests/operator/pss.py), with a read-only root."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import support
from tests.chart.test_privacy_job import JOB
from tests.operator import pss

Render = tuple[list[dict[str, Any]], list[dict[str, Any]], str]


@pytest.mark.parametrize("values_name", ["default", "full"])
def test_every_chart_pod_is_restricted(
    values_name: str, default_render: Render, full_render: Render
) -> None:
    docs, _, _ = full_render if values_name == "full" else default_render
    assert [name for name, _ in pss.pod_templates(docs)] == [
        f"Deployment/{'games-analytics' if values_name == 'full' else 'ga-gameplay-analytics'}"
        "-operator"
    ]
    assert pss.problems(docs) == {}


def test_the_privacy_request_job_is_restricted() -> None:
    docs = support.load_yaml_docs(JOB)
    assert len(list(pss.pod_templates(docs))) == 1
    assert pss.problems(docs) == {}
