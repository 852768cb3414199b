"""Consent from `hello`: opt-out drops everything, social consent gates social events."""

from __future__ import annotations

import pytest

from gameplay_analytics.contract.taxonomy import EVENTS, Category, EventSpec, Priority
from gameplay_analytics.privacy import Consent, allows

SOCIAL = [spec for spec in EVENTS.values() if spec.category is Category.SOCIAL]
OTHERS = [spec for spec in EVENTS.values() if spec.category is not Category.SOCIAL]


@pytest.mark.parametrize(
    ("hello", "expected"),
    [
        (None, Consent(analytics=True, social=True)),
        ({}, Consent(analytics=True, social=True)),
        ({"analytics": True, "social": False}, Consent(analytics=True, social=False)),
        ({"analytics": False}, Consent(analytics=False, social=True)),
        ({"social": True, "marketing": False}, Consent(analytics=True, social=True)),
        # Present but not a JSON boolean: fail closed, never track on a malformed opt-out.
        ({"analytics": "false"}, Consent(analytics=False, social=True)),
        ({"analytics": "true"}, Consent(analytics=False, social=True)),
        ({"analytics": 1, "social": None}, Consent(analytics=False, social=False)),
        ([True, True], Consent(analytics=False, social=False)),
        ("yes", Consent(analytics=False, social=False)),
    ],
)
def test_consent_from_hello(hello: object, expected: Consent) -> None:
    assert Consent.from_hello(hello) == expected


@pytest.mark.parametrize("analytics", [True, False])
@pytest.mark.parametrize("social", [True, False])
def test_consent_matrix_over_the_whole_taxonomy(analytics: bool, social: bool) -> None:
    consent = Consent(analytics=analytics, social=social)
    for spec in SOCIAL:
        assert allows(consent, spec) == (analytics and social), spec.name
    for spec in OTHERS:
        assert allows(consent, spec) == analytics, spec.name


def test_an_unknown_consent_gate_fails_closed() -> None:
    spec = EventSpec("ad_click", Category.SOCIAL, Priority.SOCIAL, "social", consent="marketing")
    assert not allows(Consent(), spec)
    assert not Consent().flag("marketing")
    assert Consent().flag("social")
