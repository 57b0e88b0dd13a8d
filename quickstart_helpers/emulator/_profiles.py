"""What the live API does differently by model, as data: every rule with its source.

The emulator never accepts what the live API refuses for a model. Where the API's behaviour
depends on the model (Live 3.1's client-content rule, Gemini 3's thought signatures), the rule
is an entry here, not a branch in a handler: a handler asks ``profile_for(model).has(RULE)``
and a new model is a new :class:`Profile`. ``docs/emulator-rules.md`` lists every rule with its
source (``tests/test_profiles.py`` checks that it does). Where sources disagree, the newest
official page wins and the rule's ``note`` says so. Nothing here was checked against the live
API from this project (no key, no network): each rule is as its source documents it."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

__all__ = ["INTERACTIONS_RULES", "PROFILES", "RULES", "Profile", "Rule", "profile_for"]


@dataclass(frozen=True)
class Rule:
    """One documented behaviour of the live API: ``id``, a stable name (e.g.
    ``"live.client_content_only_as_history"``); ``says``, what the API does, in one sentence;
    ``source``, where it is documented (a page and section, or a public issue); ``note``,
    where sources disagree, which one this follows and why (optional)."""

    id: str
    says: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class Profile:
    """The rules that hold for a family of models: ``family``, its name (e.g. ``"Gemini 3"``);
    ``models``, ``fnmatch`` patterns of bare model names (no ``models/`` prefix); ``rules``,
    the ids of the :data:`RULES` that hold for these models."""

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
_STREAMING_INTERACTIONS = (
    "Gemini API docs, Streaming interactions "
    "(ai.google.dev/gemini-api/docs/interactions/streaming), the REST example"
)
_B1 = (
    "a real stream of gemini-2.5-flash, 2026-06-05: Arize-ai/openinference, cassette "
    "test_interactions_with_thinking_stream.yaml (commit 046714fd), kept in "
    "tests/wire/interactions/"
)
_SIGNATURES = (
    "Gemini API docs, Thought signatures (ai.google.dev/gemini-api/docs/thought-signatures), on "
)
_CAPTURES = "real gemini-2.0/2.5-flash bodies quoted in public code"

#: Every rule, by id. Each family of rules is added by the change that enforces it.
RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in [
        # -- Live API, Gemini 3.1 Flash Live ------------------------------------------
        Rule(
            "live.client_content_only_as_history",
            "clientContent only seeds the initial history, and only when the setup has "
            "historyConfig.initialHistoryInClientContent: true; it is processed without a "
            "model call. Any other clientContent (without that config, or once the "
            'conversation started) closes the session with 1007 "Request contains an '
            'invalid argument."; text during the conversation goes through realtimeInput.text.',
            _LIVE_GUIDE + '"Model comparison"; the SDK\'s docstring of types.HistoryConfig; '
            "google/adk-python #5018, livekit/agents #5251 and #5985 (the 1007 close).",
            "The guide gives no close code or reason; both are those the public reports show. "
            "One secondary source says later docs relaxed the rule; the guide, the newest "
            "official page, keeps it, so the emulator follows the guide.",
        ),
        Rule(
            "live.media_chunks_refused",
            "realtimeInput.mediaChunks is refused: the session is closed with 1007 "
            '"realtime_input.media_chunks is deprecated. Use audio, video, or text instead."',
            "kizuna-ai-lab/sokuji #150 (the reason), aicc2025/sip-to-ai #5 (the 1007 close).",
        ),
        Rule(
            "live.null_resumption_handle_refused",
            "A setup whose sessionResumption has an explicit null handle is refused with 1008; "
            "sessionResumption: {} (no handle) starts a new resumable session.",
            "livekit/agents #5102 and PR #7254 (1008); SessionResumptionConfig.handle in the "
            'SDK references: "If not present, a new session will be started."',
            "The report was on gemini-2.5-flash-native-audio-latest through the Python SDK, which "
            "sends {} for handle=None; the references say {} starts a new session, so only an "
            "explicit null is refused. The close reason is the emulator's (none was reported).",
        ),
        Rule(
            "live.several_parts_per_event",
            "One serverContent can carry several things at once: audio inlineData parts and "
            "an outputTranscription; some messages carry only usageMetadata (no serverContent); "
            "generationComplete comes before turnComplete; Live usage has thoughtsTokenCount.",
            _LIVE_GUIDE
            + '"Receiving response"; Live API reference, BidiGenerateContentServerMessage '
            "(usageMetadata beside serverContent) and UsageMetadata (thoughtsTokenCount).",
            "A property of recordings, not a check: the shipped Live cassettes carry these shapes.",
        ),
        Rule(
            "live.activity_signals_need_manual",
            "activityStart/activityEnd only with realtimeInputConfig.automaticActivityDetection"
            ".disabled; with automatic detection a turn ends at end of speech or audioStreamEnd.",
            "Live API reference (ai.google.dev/api/live), BidiGenerateContentRealtimeInput; the "
            "SDK's docstrings of types.ActivityStart, ActivityEnd.",
            "No close code or reason documented: 1007 and the reason are ours (unchecked live).",
        ),
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
        Rule(
            "interactions.event_framing",
            "Each event is an `event: <event_type>` line, a `data: <compact JSON>` line (the "
            "JSON repeats `event_type`) and a blank line, LF line ends; Content-Type "
            "`text/event-stream`.",
            f"{_STREAMING_INTERACTIONS}; {_B1}.",
            "generateContent streams use CRLF; Interactions streams keep LF (the capture).",
        ),
        Rule(
            "interactions.done_event",
            "The stream ends with `event: done` and `data: [DONE]` (the SDK stops at the "
            "`[DONE]` sentinel).",
            f"{_STREAMING_INTERACTIONS}; {_B1}.",
        ),
        Rule(
            "interactions.usage_metadata",
            "`metadata.usage` (running totals, every usage key, zeros included) rides on "
            "`interaction.created`, on the last thought summary delta and on the last "
            "`step.delta` of each step.",
            f"{_B1}.",
            "The SDK's models (google-genai 3.6.1) have no `metadata` on "
            "`interaction.created` and name step.delta's `metadata.total_usage`; they keep "
            "`usage` as an extra field, so the SDK parses the capture's shape, which we send.",
        ),
        Rule(
            "interactions.completed_resource",
            "`interaction.completed` carries the interaction with `usage`, `created`, "
            "`updated` and `service_tier`, without its steps.",
            f"{_STREAMING_INTERACTIONS}; {_B1}.",
        ),
        Rule(
            "interactions.empty_signature_delta",
            "In a thought step with summaries, each `thought_summary` delta is followed by an "
            "empty `thought_signature` delta; the step's last delta carries the signature.",
            f"{_B1}.",
            "The docs example (no summaries asked) shows one signature delta, its value cut.",
        ),
        # -- OpenAI compatibility (every model; docs/emulator-rules.md has the detail) ------
        Rule(
            "openai.chat_completions",
            "`POST .../openai/chat/completions` (key: `Authorization: Bearer`) answers a "
            "`chat.completion`, or `chat.completion.chunk` SSE events ending `data: [DONE]`.",
            f"ai.google.dev/gemini-api/docs/openai (OpenAI compatibility); {_CAPTURES}.",
        ),
        Rule(
            "openai.usage_on_last_chunk",
            "`stream_options.include_usage` puts `usage` on the last chunk (`finish_reason`).",
            f"{_CAPTURES}; envoyproxy/ai-gateway #1503.",
        ),
        Rule(
            "openai.error_list",
            'An error is the API\'s error JSON in a list: `[{"error": {...}}]`.',
            "discuss.ai.google.dev/t/59916; llamastack/llama-stack; public SDK error reports.",
        ),
    ]
}

#: The Interactions API's framing and the OpenAI compatibility endpoint's: they hold for every
#: model, so every profile has them and their routes apply them without asking (tested).
INTERACTIONS_RULES = frozenset(r for r in RULES if r.startswith("interactions."))
_EVERY_MODEL = INTERACTIONS_RULES | {r for r in RULES if r.startswith("openai.")}

#: The families, most specific first; :func:`profile_for` takes the first that matches.
PROFILES: tuple[Profile, ...] = (
    Profile(
        "Gemini 3.1 Flash Live",
        ("gemini-3.1-flash-live*",),
        _EVERY_MODEL
        | {
            "live.client_content_only_as_history",
            "live.media_chunks_refused",
            "live.null_resumption_handle_refused",
            "live.several_parts_per_event",
            "live.activity_signals_need_manual",
        },
    ),
    Profile(
        "Gemini 3",
        ("gemini-3*",),
        _EVERY_MODEL
        | {
            "generate.thought_signature_on_final_chunk",
            "generate.function_call_signature",
            "generate.function_call_signature_required",
        },
    ),
    Profile("Other models", ("*",), _EVERY_MODEL),
)


def profile_for(model: str) -> Profile:
    """Return the profile of ``model`` (``models/`` prefix allowed); every model has one."""
    bare = model.removeprefix("models/")
    return next(p for p in PROFILES if any(fnmatch.fnmatch(bare, m) for m in p.models))
