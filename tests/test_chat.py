"""Unit tests of the conversation state model in quickstart_helpers.chat."""

from __future__ import annotations

import json
import os
import time

import pytest
from google.genai import types

from quickstart_helpers.chat import (
    Conversation,
    ConversationNotFoundError,
    IllegalTransitionError,
    Message,
    Usage,
)

from ._keys import fake_google_key

STATES = ["created", "streaming", "completed", "failed"]

# The state machine, written out by hand so the tests do not trust chat.TRANSITIONS.
LEGAL = {
    ("created", "streaming"),
    ("created", "completed"),
    ("created", "failed"),
    ("streaming", "completed"),
    ("streaming", "failed"),
}

ACTIONS = {
    "streaming": lambda m: m.start(),
    "completed": lambda m: m.complete(finish_reason="STOP"),
    "failed": lambda m: m.fail("network down"),
}


def message_in(state: str) -> Message:
    """Return a model message brought to ``state`` by legal moves."""
    m = Message(role="model")
    if state in ("streaming", "completed", "failed"):
        m.start().append("Hel")
    if state == "completed":
        m.complete()
    if state == "failed":
        m.fail("boom")
    assert m.status == state
    return m


@pytest.mark.parametrize("target", ["streaming", "completed", "failed"])
@pytest.mark.parametrize("source", STATES)
def test_every_transition_is_allowed_or_refused(source: str, target: str) -> None:
    m = message_in(source)
    before = m.model_copy(deep=True)
    if (source, target) in LEGAL:
        ACTIONS[target](m)
        assert m.status == target
        assert m.updated_at >= before.updated_at
    else:
        with pytest.raises(IllegalTransitionError, match=f"is {source}; it cannot become {target}"):
            ACTIONS[target](m)
        assert m == before, "a refused move must not change the message"


@pytest.mark.parametrize("source", STATES)
def test_no_state_leads_back_to_created(source: str) -> None:
    assert not message_in(source).can_move_to("created")


@pytest.mark.parametrize("state", STATES)
def test_append_only_while_streaming(state: str) -> None:
    m = message_in(state)
    if state == "streaming":
        m.append("lo")
        assert m.text == "Hello"
        assert m.chunk_count == 2
    else:
        text = m.text
        with pytest.raises(IllegalTransitionError, match="only be appended while it is streaming"):
            m.append("lo")
        assert m.text == text


def test_append_refuses_non_text() -> None:
    m = Message(role="model").start()
    with pytest.raises(TypeError, match="can only concatenate str"):
        m.append(b"bytes")  # type: ignore[arg-type]
    assert (m.text, m.chunk_count) == ("", 0)


def test_timestamps_follow_the_states() -> None:
    m = Message(role="model")
    assert m.started_at is None and m.finished_at is None
    m.start()
    assert m.started_at is not None and m.finished_at is None
    m.append("Hi")
    m.complete(finish_reason="STOP", usage=Usage(prompt_token_count=3))
    assert m.finished_at is not None
    assert m.created_at <= m.started_at <= m.finished_at <= m.updated_at
    assert m.finish_reason == "STOP"
    assert m.usage == Usage(prompt_token_count=3)
    assert m.is_final


def test_failed_stream_keeps_partial_text_and_error() -> None:
    m = Message(role="model").start().append("The first half")
    m.fail(ConnectionError("peer closed connection"))
    assert m.status == "failed"
    assert m.text == "The first half"
    assert m.error == "ConnectionError: peer closed connection"


def test_conversation_ids_and_roles() -> None:
    conv = Conversation()
    user = conv.add_user_message("Hi")
    reply = conv.start_model_message()
    assert (user.id, user.role, user.status) == ("msg-1", "user", "completed")
    assert (reply.id, reply.role, reply.status) == ("msg-2", "model", "created")
    assert conv.in_progress is reply


def test_conversation_refuses_out_of_order_messages() -> None:
    conv = Conversation()
    with pytest.raises(ValueError, match="add_user_message"):
        conv.start_model_message()
    conv.add_user_message("Hi")
    reply = conv.start_model_message().start()
    with pytest.raises(ValueError, match="msg-2 is still streaming"):
        conv.add_user_message("Another")
    with pytest.raises(ValueError, match="still streaming"):
        conv.start_model_message()
    reply.append("Hello").complete()
    with pytest.raises(ValueError, match="add_user_message"):
        conv.start_model_message()
    for blank in ("", "   "):
        with pytest.raises(ValueError, match="needs some text"):
            conv.add_user_message(blank)
    assert [m.id for m in conv.messages] == ["msg-1", "msg-2"]


def build_conversation() -> Conversation:
    conv = Conversation(model="gemini-3.8-flash", system_instruction="You are Tide.")
    conv.add_user_message("What is a tide?")
    conv.start_model_message().start().append("A tide is ").append("the sea rising.").complete(
        finish_reason="STOP", usage=Usage(prompt_token_count=9, candidates_token_count=6)
    )
    conv.add_user_message("And a rip current?")
    conv.start_model_message().start().append("A rip curr").fail("ReadError: connection lost")
    conv.add_user_message("Why is the sea salty?")
    conv.start_model_message().start().append("Rivers carry ").append("salt.").complete(
        finish_reason="STOP"
    )
    return conv


def test_history_keeps_only_whole_turns() -> None:
    history = build_conversation().to_history()
    assert [(c.role, c.parts[0].text) for c in history] == [
        ("user", "What is a tide?"),
        ("model", "A tide is the sea rising."),
        ("user", "Why is the sea salty?"),
        ("model", "Rivers carry salt."),
    ]
    assert all(isinstance(c, types.Content) for c in history)


def test_history_leaves_out_an_unanswered_turn() -> None:
    conv = Conversation()
    conv.add_user_message("Hello?")
    assert conv.to_history() == []
    conv.start_model_message()
    assert conv.to_history() == []


def test_save_load_round_trip(tmp_path) -> None:
    conv = build_conversation()
    path = conv.save(tmp_path / "store", "tide-chat")
    assert path == tmp_path / "store" / "tide-chat.json"
    saved = json.loads(path.read_text("utf-8"))
    assert saved["format"] == 1
    assert saved["messages"][3]["status"] == "failed"
    assert saved["messages"][3]["text"] == "A rip curr"

    loaded = Conversation.load(tmp_path / "store", "tide-chat")
    assert loaded == conv
    assert loaded.to_history() == conv.to_history()
    assert Conversation.keys(tmp_path / "store") == ["tide-chat"]
    assert not list((tmp_path / "store").glob(".*.tmp")), "no temporary file is left behind"


def test_loaded_conversation_continues_with_fresh_ids(tmp_path) -> None:
    build_conversation().save(tmp_path, "c")
    loaded = Conversation.load(tmp_path, "c")
    assert loaded.add_user_message("One more").id == "msg-7"


def test_load_fails_a_message_saved_mid_stream(tmp_path) -> None:
    conv = Conversation()
    conv.add_user_message("Hi")
    conv.start_model_message().start().append("Hel")
    conv.save(tmp_path, "mid")
    loaded = Conversation.load(tmp_path, "mid")
    reply = loaded.messages[-1]
    assert (reply.status, reply.text) == ("failed", "Hel")
    assert "saved while this message was streaming" in reply.error
    assert loaded.in_progress is None


def test_load_unknown_key_names_the_saved_ones(tmp_path) -> None:
    Conversation().save(tmp_path, "alpha")
    with pytest.raises(ConversationNotFoundError, match=r"'beta'.*Saved keys: 'alpha'"):
        Conversation.load(tmp_path, "beta")


@pytest.mark.parametrize(
    "key", ["", "../escape", "a/b", ".hidden", "x" * 129, "with space", "key\n", "key\r\n"]
)
def test_bad_storage_keys_are_refused(tmp_path, key: str) -> None:
    with pytest.raises(ValueError, match="Storage key"):
        Conversation().save(tmp_path, key)
    assert list(tmp_path.iterdir()) == []


def test_load_reports_deeply_nested_json(tmp_path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ValueError, match="(?s)not a saved conversation.*recursion limit"):
        Conversation.load(tmp_path, "deep")


def test_save_removes_orphan_temp_files_of_a_crash(tmp_path) -> None:
    orphan = tmp_path / ".chat.json.0123abcd.tmp"  # what a crash mid-save leaves
    orphan.write_text("{half a fi", encoding="utf-8")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    recent = tmp_path / ".chat.json.4567ef.tmp"  # maybe another process saving now
    recent.write_text("{", encoding="utf-8")
    other = tmp_path / ".other.json.89ab.tmp"  # another key's: not this save's business
    other.write_text("{", encoding="utf-8")
    os.utime(other, (time.time() - 3600, time.time() - 3600))
    Conversation().save(tmp_path, "chat")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".chat.json.4567ef.tmp", ".other.json.89ab.tmp", "chat.json"]
    )


def test_save_is_fsynced_before_the_rename(tmp_path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    Conversation().save(tmp_path, "synced")
    assert events[:2] == ["fsync", "replace"]
    assert [p.name for p in tmp_path.iterdir()] == ["synced.json"]


def test_a_failed_message_never_keeps_an_api_key() -> None:
    key = fake_google_key("SyC-")
    message = Message(role="model").fail(RuntimeError(f"upstream echoed {key}"))
    assert key not in message.error and "[redacted]" in message.error


def test_load_reports_a_corrupt_file(tmp_path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="is not a saved conversation"):
        Conversation.load(tmp_path, "broken")


def test_load_refuses_a_newer_format(tmp_path) -> None:
    path = Conversation().save(tmp_path, "future")
    data = json.loads(path.read_text("utf-8"))
    data["format"] = 99
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="format 99"):
        Conversation.load(tmp_path, "future")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "  leading   and\n\ttrailing  ",
        "word " * 100,
        " " * 500 + "late start after a lot of whitespace",
        "x" * 39,
        "x" * 40,
        "x" * 41,
        "a" * 200 + " " * 300 + "b",
        "\n" * 223 + "z",
    ],
)
def test_summary_text_is_the_collapsed_text_cut_at_width(text):
    m = Message(role="model", text=text)
    collapsed = " ".join(text.split())
    expected = collapsed if len(collapsed) <= 40 else collapsed[:39] + "…"
    assert m.summary(40).endswith(f" {expected!r}")
