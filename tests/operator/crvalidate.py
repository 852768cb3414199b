"""Validate a custom resource against its CRD's openAPIV3Schema offline (jsonschema + CEL).

From ../shared/recipes/kubernetes-offline/r3_validate_cr.py: defaults applied as the API
server does, unknown fields rejected (fieldValidation=Strict), CEL rules run with cel-python.
"""

import copy
import json

import celpy
import jsonschema

DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
CEL = celpy.Environment()


def to_jsonschema(s: dict, strict: bool = True) -> dict:
    """Structural schema (OpenAPI 3.0 subset + x-kubernetes-*) -> JSON Schema draft 4."""
    s = dict(s)
    if "properties" in s:
        s["properties"] = {k: to_jsonschema(v, strict) for k, v in s["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(s.get(key), dict):
            s[key] = to_jsonschema(s[key], strict)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [to_jsonschema(x, strict) for x in s[key]]
    if s.get("x-kubernetes-embedded-resource"):  # apiVersion/kind/metadata are implied
        s["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **s.get("properties", {}),
        }
    if s.get("x-kubernetes-int-or-string") and "anyOf" not in s:
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("x-kubernetes-list-type") == "set":
        s["uniqueItems"] = True
    # The API server prunes unknown fields (or rejects them with fieldValidation=Strict).
    if (
        strict
        and s.get("type") == "object"
        and "additionalProperties" not in s
        and not s.get("x-kubernetes-preserve-unknown-fields")
    ):
        s["additionalProperties"] = False
    if s.pop("nullable", False):
        s = {"anyOf": [{"type": "null"}, s]}
    return s


def list_map_keys(validator, keys, instance, schema):  # x-kubernetes-list-type: map -> unique keys
    seen = set()
    for item in instance if isinstance(instance, list) else []:
        key = json.dumps([item.get(k) for k in keys]) if isinstance(item, dict) else None
        if key in seen:
            yield jsonschema.ValidationError(
                f"duplicate entry with {dict(zip(keys, json.loads(key), strict=True))}"
            )
        seen.add(key)


def cel_rules(validator, rules, instance, schema):  # x-kubernetes-validations (CEL)
    for rule in rules:
        if "oldSelf" in rule["rule"]:
            continue  # transition rules only run on updates
        try:
            ok = CEL.program(CEL.compile(rule["rule"])).evaluate(
                {"self": celpy.json_to_cel(instance)}
            )
        except Exception as e:
            ok, rule = False, {**rule, "message": f"{rule['rule']!r} failed to evaluate: {e}"}
        if not ok:
            yield jsonschema.ValidationError(rule.get("message") or f"failed rule: {rule['rule']}")


CRDValidator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {  # OpenAPI 3.0 ~ draft 4
        "x-kubernetes-list-map-keys": list_map_keys,
        "x-kubernetes-validations": cel_rules,
    },
)


def apply_defaults(s: dict, obj):  # the API server fills in `default:` values before validating
    if isinstance(obj, dict):
        for key, sub in s.get("properties", {}).items():
            if key not in obj and "default" in sub:
                obj[key] = copy.deepcopy(sub["default"])
            if key in obj:
                apply_defaults(sub, obj[key])
    elif isinstance(obj, list) and isinstance(s.get("items"), dict):
        for item in obj:
            apply_defaults(s["items"], item)


def validate_cr(crd: dict, cr: dict, strict: bool = True) -> list[str]:
    group, _, version = cr["apiVersion"].rpartition("/")
    if group != crd["spec"]["group"] or cr["kind"] != crd["spec"]["names"]["kind"]:
        return [f"{cr['apiVersion']} {cr['kind']} is not defined by {crd['metadata']['name']}"]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served", True)}
    if version not in served:
        return [f"version {version} is not served (served: {sorted(served)})"]
    raw = served[version]["schema"]["openAPIV3Schema"]
    apply_defaults(raw, cr)
    schema = to_jsonschema(raw, strict)
    schema["properties"] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 253, "pattern": DNS1123_SUBDOMAIN}
            },
        },
        **schema.get("properties", {}),
    }
    validator = CRDValidator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(cr), key=lambda e: list(map(str, e.absolute_path)))
    ]
