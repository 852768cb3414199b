"""The warm store's bucket policy (`gameplay-analytics bucket-policy`): valid IAM JSON by
parliament's checks (actions exist, resources fit them), the grants we mean, and accepted by
an S3 API (moto server) that hands it back unchanged.

What moto does not show: it stores any policy without validating it (even "not json"), and in
server mode it enforces Deny statements while ignoring their Conditions (our TLS-only and
only-the-aggregator-writes denies would refuse every request there) and needs no Allow. So
the grants are checked here on the document; AWS itself is the place to see them enforced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string

from gameplay_analytics.cli import main
from gameplay_analytics.runtime.storage import bucketpolicy

ROOT = Path(__file__).resolve().parents[2]
READER = "arn:aws:iam::123456789012:role/analytics-readers"
WRITER = "arn:aws:iam::123456789012:role/analytics-aggregator"


def _findings(policy: dict[str, Any]) -> list[str]:
    analyzed = analyze_policy_string(json.dumps(policy), ignore_private_auditors=True)
    return [f"{f.issue}: {f.detail}" for f in analyzed.findings]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _statements(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in policy["Statement"]}


@pytest.mark.parametrize("prefix", ["", "prod", "/games/prod/"])
def test_the_policies_are_valid_iam(prefix: str) -> None:
    policy = bucketpolicy.bucket_policy(
        bucket="warm", prefix=prefix, readers=[READER], writers=[WRITER]
    )
    assert _findings(policy) == []
    assert _findings(bucketpolicy.reader_identity_policy(bucket="warm", prefix=prefix)) == []


def test_readers_read_the_aggregator_writes_nobody_else_writes_tls_only() -> None:
    policy = bucketpolicy.bucket_policy(
        bucket="warm", prefix="prod", readers=[READER], writers=[WRITER]
    )
    s = _statements(policy)
    reads = [st for st in policy["Statement"] if st["Principal"] == {"AWS": [READER]}]
    assert {a for st in reads for a in _actions(st)} == {
        "s3:GetObject",
        "s3:ListBucket",
        "s3:GetBucketLocation",
    }
    assert s["AnalyticsReadObjects"]["Resource"] == "arn:aws:s3:::warm/prod/*"
    assert s["AnalyticsListWarmStore"]["Condition"] == {"StringLike": {"s3:prefix": ["prod/*"]}}
    assert s["AggregatorWriteObjects"]["Principal"] == {"AWS": [WRITER]}
    assert {"s3:PutObject", "s3:DeleteObject"} <= set(s["AggregatorWriteObjects"]["Action"])
    deny = s["OnlyTheAggregatorWrites"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [WRITER]}}
    assert s["TLSOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    with pytest.raises(ValueError, match="aggregator role"):
        bucketpolicy.bucket_policy(bucket="warm", readers=[READER], writers=[])


def test_the_command_reads_bucket_and_prefix_from_a_pipeline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pipeline = ROOT / "examples/analyticspipeline-full.yaml"
    args = ["bucket-policy", "--pipeline", str(pipeline), "--reader", READER, "--writer", WRITER]
    assert main(args) == 0
    policy = json.loads(capsys.readouterr().out)
    assert _statements(policy)["AnalyticsReadObjects"]["Resource"].startswith(
        "arn:aws:s3:::gameplay-warehouse/prod/"
    )
    assert main(["bucket-policy", "--bucket", "warm", "--reader", READER]) == 2
    assert "aggregator role" in capsys.readouterr().err
    assert main(["bucket-policy", "--bucket", "warm", "--reader-identity"]) == 0
    assert "Principal" not in capsys.readouterr().out


def test_an_s3_api_accepts_it(s3_endpoint: str, aws_env: None) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="warm-policy")
    policy = bucketpolicy.bucket_policy(
        bucket="warm-policy", prefix="prod", readers=[READER], writers=[WRITER]
    )
    s3.put_bucket_policy(Bucket="warm-policy", Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket="warm-policy")["Policy"]) == policy
