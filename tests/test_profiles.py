"""The model behaviour profiles (quickstart_helpers/emulator/_profiles.py) as data.

Every rule has a source and is listed in docs/emulator-rules.md; every rule a profile names
exists; each model the project names gets the profile its family documents.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quickstart_helpers import settings
from quickstart_helpers.emulator import CassetteStore
from quickstart_helpers.emulator._profiles import PROFILES, RULES, profile_for

DOCS = (Path(__file__).parent.parent / "docs" / "emulator-rules.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_rule_has_a_source_and_is_listed_in_the_docs(rule_id: str) -> None:
    rule = RULES[rule_id]
    assert rule.id == rule_id
    assert rule.says.strip() and rule.source.strip()
    assert re.search(rf"`{re.escape(rule_id)}`", DOCS), f"docs/emulator-rules.md lacks {rule_id}"


def test_every_rule_a_profile_names_exists_and_every_rule_is_used() -> None:
    named = set().union(*(p.rules for p in PROFILES))
    assert named <= set(RULES), named - set(RULES)
    assert set(RULES) <= named, f"rules no profile holds: {set(RULES) - named}"


def test_the_last_profile_matches_every_model() -> None:
    assert profile_for("some-model-nobody-made") is PROFILES[-1]


@pytest.mark.parametrize(
    ("model", "family"),
    [
        (settings.DEFAULT_LIVE_MODEL, "Gemini 3.1 Flash Live"),
        (f"models/{settings.DEFAULT_LIVE_MODEL}", "Gemini 3.1 Flash Live"),
        (settings.DEFAULT_TEXT_MODEL, "Gemini 3"),
        (settings.DEFAULT_IMAGE_MODEL, "Gemini 3"),
        ("gemini-2.5-flash", "Other models"),
    ],
)
def test_each_model_gets_its_family(model: str, family: str) -> None:
    assert profile_for(model).family == family


def test_every_shipped_recording_model_has_a_documented_family() -> None:
    """A recording for a model no profile names on purpose would get only the generic rules."""
    models = {c.model.removeprefix("models/") for c in CassetteStore().cassettes if c.model}
    assert models, "no shipped recordings found"
    for model in models:
        assert profile_for(model) is not PROFILES[-1], model


def test_the_live_rules_hold_on_the_live_model_only() -> None:
    live = profile_for(settings.DEFAULT_LIVE_MODEL)
    assert live.has("live.client_content_only_as_history")
    assert not profile_for("gemini-2.5-flash-native-audio-latest").has(
        "live.client_content_only_as_history"
    )
    assert profile_for(settings.DEFAULT_TEXT_MODEL).has("generate.function_call_signature_required")
