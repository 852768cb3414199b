"""The TypeScript SDK is built with the Python owners' facts: its generated module is current,
and the schema hash it sends is the registry document's."""

from __future__ import annotations

from gameplay_analytics.contract.fingerprint import schema_hash
from gameplay_analytics.contract.paths import schemas_dir
from gameplay_analytics.contract.registry import working_schemas
from gameplay_analytics.sdk import tscontract


def test_generated_module_is_current() -> None:
    generated = schemas_dir().parent / "client" / "src" / "contract.gen.ts"
    assert generated.read_text() == tscontract.render(), (
        "client/src/contract.gen.ts is stale: run "
        "`python -m gameplay_analytics.sdk.tscontract > client/src/contract.gen.ts`"
    )


def test_schema_hash_ignores_formatting_and_key_order_but_not_content() -> None:
    document = working_schemas()["1.0.0"]
    reordered = dict(reversed(list(document.items())))
    assert schema_hash(reordered) == schema_hash(document)
    assert schema_hash(document).startswith("sha256:") and len(schema_hash(document)) == 71
    edited = {**document, "description": "edited"}
    assert schema_hash(edited) != schema_hash(document)


def test_both_sdks_send_the_same_schema_hash_in_hello() -> None:
    import json
    import re
    import uuid

    from gameplay_analytics.sdk import AnalyticsClient

    client = AnalyticsClient(player_uuid=uuid.uuid4(), client_guid=uuid.uuid4(), token="t")
    hello = json.loads(client.on_connected())
    generated = (schemas_dir().parent / "client" / "src" / "contract.gen.ts").read_text()
    found = re.search(r'SCHEMA_HASH = "(sha256:[0-9a-f]{64})"', generated)
    assert found is not None
    assert hello["schema_hash"] == found.group(1) == schema_hash(working_schemas()["1.0.0"])


def test_the_registry_knows_each_accepted_documents_hash() -> None:
    from gameplay_analytics.contract.registry import SchemaRegistry

    documents = working_schemas()
    registry = SchemaRegistry(documents)
    assert registry.schema_hash("1.0.0") == schema_hash(documents["1.0.0"])
    assert registry.schema_hash("0.0.1") is None
