"""What the live API does differently by model, as data: every rule with its source.

The emulator never accepts what the live API refuses for a model. Where the API's behaviour
depends on the model (Live 3.1's client-content rule, Gemini 3's thought signatures), the rule
is an entry here, not a branch in a handler: a handler asks ``profile_for(model).has(RULE)``
and a new model is a new :class:`Profile`. ``docs/emulator-rules.md`` lists every rule with its
source (``tests/test_profiles.py`` checks that it does). Where sources disagree, the newest
official page wins and the rule's ``note`` says so. Nothing here was checked against the live
API from this project (no key, no network): each rule is as its source documents it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["PROFILES", "RULES", "Profile", "Rule", "profile_for"]


@dataclass(frozen=True)
class Rule:
    """One documented behaviour of the live API.

    Attributes:
        id: A stable name, e.g. ``"live.client_content_only_as_history"``.
        says: What the API does, in one sentence.
        source: Where it is documented: a page and section, or a public issue.
        note: Where sources disagree, which one this follows and why (optional).
    """

    id: str
    says: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class Profile:
    """The rules that hold for a family of models.

    Attributes:
        family: A name for the family, e.g. ``"Gemini 3.1 Flash Live"``.
        models: ``fnmatch`` patterns of bare model names (no ``models/`` prefix).
        rules: The ids of the :data:`RULES` that hold for these models.
    """

    family: str
    models: tuple[str, ...]
    rules: frozenset[str]

    def has(self, rule_id: str) -> bool:
        """Return whether the rule ``rule_id`` (a key of :data:`RULES`) holds here."""
        return rule_id in self.rules


_LIVE_GUIDE = (
    "Gemini API docs, Live API capabilities guide "
    "(ai.google.dev/gemini-api/docs/live-guide), section "
)

_SIGNATURES = (
    "Gemini API docs, Thought signatures (ai.google.dev/gemini-api/docs/thought-signatures), on "
)

#: Every rule, by id. Each family of rules is added by the change that enforces it.
RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in [
        # -- Live API, Gemini 3.1 Flash Live ------------------------------------------
        # -- generateContent, Gemini 3 ------------------------------------------------
        Rule(
            "generate.thought_signature_on_final_chunk",
            "A thinking stream ends with a chunk holding an empty text part that carries "
            "thoughtSignature, with the finishReason.",
            _SIGNATURES + "streaming; a real gemini-3.5-flash capture "
            "(tests/wire/generate/thinking_stream.sse).",
        ),
        Rule(
            "generate.function_call_signature",
            "A functionCall part the model returns carries thoughtSignature (of parallel "
            "calls, only the first).",
            _SIGNATURES + "function calling; a real capture "
            "(tests/wire/generate/function_call.json).",
        ),
        Rule(
            "generate.function_call_signature_required",
            "A request whose current turn (from the last user text on) holds a model "
            "functionCall part, the first of its content, without its thoughtSignature is "
            "refused: 400 INVALID_ARGUMENT 'Function call is missing a thought_signature in "
            "functionCall parts. ...', naming the call and the content's position.",
            _SIGNATURES + "validation (a signature missing in the current turn: 400); "
            "the message as quoted in csells/dartantic #86 and manthanabc/paws #103.",
            "Any non-empty signature passes: the emulator cannot check the API's encrypted "
            "ones, and the page's dummy value (skip_thought_signature_validator) must pass.",
        ),
        # -- Interactions API -----------------------------------------------------------
    ]
}

#: The families, most specific first; :func:`profile_for` takes the first that matches.
PROFILES: tuple[Profile, ...] = (
    Profile("Gemini 3.1 Flash Live", ("gemini-3.1-flash-live*",), frozenset()),
    Profile(
        "Gemini 3",
        ("gemini-3*",),
        frozenset(
            {
                "generate.thought_signature_on_final_chunk",
                "generate.function_call_signature",
                "generate.function_call_signature_required",
            }
        ),
    ),
    Profile("Other models", ("*",), frozenset()),
)


def profile_for(model: str) -> Profile:
    """Return the profile of ``model`` (``models/`` prefix allowed); every model has one."""
    bare = model.removeprefix("models/")
    return next(p for p in PROFILES if any(fnmatch.fnmatch(bare, m) for m in p.models))
