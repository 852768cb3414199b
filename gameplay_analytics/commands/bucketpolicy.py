"""`gameplay-analytics bucket-policy`: the warm store's S3 bucket policy (read for the analytics
readers, write for the aggregator role only, TLS only), or with `--reader-identity` the
identity policy for an analytics IAM group. Prints JSON for `aws s3api put-bucket-policy`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "bucket-policy",
        help="the warm store's S3 bucket policy: analytics readers read, the aggregator writes",
    )
    cmd.add_argument("--pipeline", help="an AnalyticsPipeline YAML: bucket and prefix from it")
    cmd.add_argument("--bucket", help="the bucket (spec.objectStore.bucket)")
    cmd.add_argument("--prefix", help="key prefix of the warm store (spec.objectStore.prefix)")
    cmd.add_argument(
        "--reader", action="append", default=[], help="principal ARN that reads (repeatable)"
    )
    cmd.add_argument(
        "--writer", action="append", default=[], help="the aggregator role's ARN (repeatable)"
    )
    cmd.add_argument(
        "--reader-identity",
        action="store_true",
        help="print the identity policy for an analytics IAM group instead",
    )
    cmd.set_defaults(run=_bucket_policy)


def _bucket_policy(args: argparse.Namespace) -> int:
    from gameplay_analytics.runtime.storage import bucketpolicy

    bucket, prefix = args.bucket, args.prefix
    if args.pipeline:
        import yaml

        from gameplay_analytics.operator.models import AnalyticsPipelineSpec

        document = yaml.safe_load(Path(args.pipeline).read_text())
        store = AnalyticsPipelineSpec.model_validate(document.get("spec") or {}).object_store
        if store is None:
            print(f"bucket-policy: {args.pipeline} has no spec.objectStore", file=sys.stderr)
            return 2
        bucket = bucket or store.bucket
        prefix = store.prefix if prefix is None else prefix
    if not bucket:
        print("bucket-policy: give --bucket or --pipeline", file=sys.stderr)
        return 2
    try:
        policy = (
            bucketpolicy.reader_identity_policy(bucket=bucket, prefix=prefix or "")
            if args.reader_identity
            else bucketpolicy.bucket_policy(
                bucket=bucket, prefix=prefix or "", readers=args.reader, writers=args.writer
            )
        )
    except ValueError as err:
        print(f"bucket-policy: {err}", file=sys.stderr)
        return 2
    print(json.dumps(policy, indent=2))
    return 0
