"""The warm store's S3 bucket policy: read for the analytics readers, write for the aggregator
role alone, TLS only. Pure: returns IAM policy documents (`gameplay-analytics bucket-policy`).

A bucket policy names principals (roles, users, accounts), never IAM groups: AWS refuses a
group ARN there. An analytics *group* gets `reader_identity_policy` attached to it instead,
and the bucket policy then names the account (or a role the group assumes) as reader.

The writer is whoever runs the aggregators (the pods' `analytics-object-store` credentials or
their IRSA role) and the privacy-request Job (erasure rewrites and deletes Parquet files);
the retention sweep deletes whole days, hence `s3:DeleteObject`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "LIST_ACTION",
    "LOCATE_ACTION",
    "READ_ACTIONS",
    "WRITE_ACTIONS",
    "bucket_policy",
    "reader_identity_policy",
]

POLICY_VERSION = "2012-10-17"
# Object-level reads; then listing (limited to the prefix by a condition) and locating the
# bucket (s3:prefix does not apply to it, so it needs a statement of its own).
READ_ACTIONS = ("s3:GetObject",)
LIST_ACTION = "s3:ListBucket"
LOCATE_ACTION = "s3:GetBucketLocation"
# The aggregator's Parquet export (multipart for big files), retention and erasure.
WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
WRITE_BUCKET_ACTIONS = ("s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
# What "write" means for the deny-everyone-else statement.
MUTATING_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")


def _arns(bucket: str, prefix: str) -> tuple[str, str]:
    """(the bucket's ARN, the ARN pattern of the warm store's objects)."""
    keys = f"{prefix.strip('/')}/*" if prefix.strip("/") else "*"
    return f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{keys}"


def _read_statements(bucket: str, prefix: str, principal: dict[str, Any]) -> list[dict[str, Any]]:
    """Get the objects, list the prefix (a condition on the request: ListBucket is a bucket
    action), locate the bucket."""
    bucket_arn, objects = _arns(bucket, prefix)
    listing: dict[str, Any] = {
        "Sid": "AnalyticsListWarmStore",
        "Effect": "Allow",
        **principal,
        "Action": LIST_ACTION,
        "Resource": bucket_arn,
    }
    if prefix.strip("/"):
        listing["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix.strip('/')}/*"]}}
    return [
        {
            "Sid": "AnalyticsReadObjects",
            "Effect": "Allow",
            **principal,
            "Action": list(READ_ACTIONS),
            "Resource": objects,
        },
        listing,
        {
            "Sid": "AnalyticsLocateBucket",
            "Effect": "Allow",
            **principal,
            "Action": LOCATE_ACTION,
            "Resource": bucket_arn,
        },
    ]


def bucket_policy(
    *,
    bucket: str,
    prefix: str = "",
    readers: Sequence[str],
    writers: Sequence[str],
) -> dict[str, Any]:
    """The bucket policy: `readers` (principal ARNs) may list and get the warm store's
    objects; `writers` (the aggregator role) may also put and delete them; nobody else may
    put or delete under the prefix (an explicit deny, which beats any identity policy in the
    account), and nothing is served over plain HTTP."""
    if not writers:
        raise ValueError("name the aggregator role (at least one writer)")
    bucket_arn, objects = _arns(bucket, prefix)
    statements: list[dict[str, Any]] = []
    if readers:
        statements += _read_statements(bucket, prefix, {"Principal": {"AWS": sorted(readers)}})
    statements += [
        {
            "Sid": "AggregatorWriteObjects",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(writers)},
            "Action": list(WRITE_ACTIONS),
            "Resource": objects,
        },
        {
            "Sid": "AggregatorListWarmStore",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(writers)},
            "Action": list(WRITE_BUCKET_ACTIONS),
            "Resource": bucket_arn,
        },
        {
            "Sid": "OnlyTheAggregatorWrites",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(MUTATING_ACTIONS),
            "Resource": objects,
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": sorted(writers)}},
        },
        {
            "Sid": "TLSOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def reader_identity_policy(*, bucket: str, prefix: str = "") -> dict[str, Any]:
    """The identity policy to attach to an analytics IAM group (groups cannot be bucket-policy
    principals): list and read the warm store, nothing else."""
    return {"Version": POLICY_VERSION, "Statement": _read_statements(bucket, prefix, {})}
