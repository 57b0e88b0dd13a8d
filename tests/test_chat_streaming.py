"""Integration tests: quickstart_helpers.chat driving real SDK chat sessions.

The SDK talks HTTPS + SSE to an emulator started here over the test-only cassettes in
tests/cassettes/chat/ (authored by scripts/author.py from scripts/recordings/chat.toml).
"""

from __future__ import annotations

import asyncio

import pytest
from google import genai
from google.genai import errors

from quickstart_helpers.chat import Conversation, StateLog, astream_reply, stream_reply
from quickstart_helpers.emulator import Emulator

from .conftest import CHAT_MODEL

KEEPER = "You are a lighthouse keeper of few words. Answer in one sentence."
Q1, A1 = "What does a lighthouse do?", "It warns ships away from the rocks at night."
Q2, A2 = "How far away can ships see it?", "About twenty nautical miles on a clear night."


@pytest.fixture
def client(chat_emu: Emulator) -> genai.Client:
    return genai.Client(api_key="test", http_options=chat_emu.http_options())


def texts(contents: list[dict]) -> list[tuple[str, str]]:
    return [(c["role"], "".join(p["text"] for p in c["parts"])) for c in contents]


def run(chat, conversation: Conversation, text: str, **kwargs) -> list:
    return list(stream_reply(chat, conversation, text, **kwargs))


def test_second_turn_sends_the_first_turn_as_history(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    chat = conversation.open_chat(client)
    first = run(chat, conversation, Q1)
    run(chat, conversation, Q2)

    assert [r.cassette for r in chat_emu.requests] == [
        "test_chat_keeper_turn1",
        "test_chat_keeper_turn2",
    ]
    sent = chat_emu.requests[1].body
    assert sent["systemInstruction"]["parts"] == [{"text": KEEPER}]
    # The SDK keeps the streamed answer as one model Content per chunk.
    model_contents = [c for c in sent["contents"] if c["role"] == "model"]
    assert len(model_contents) == len(first) == 3
    assert texts(sent["contents"])[0] == ("user", Q1)
    assert "".join(t for role, t in texts(sent["contents"]) if role == "model") == A1
    assert texts(sent["contents"])[-1] == ("user", Q2)

    assert [(m.role, m.status, m.text) for m in conversation.messages] == [
        ("user", "completed", Q1),
        ("model", "completed", A1),
        ("user", "completed", Q2),
        ("model", "completed", A2),
    ]
    reply = conversation.messages[1]
    assert reply.chunk_count == 3
    assert reply.finish_reason == "STOP"
    assert reply.usage is not None and reply.usage.candidates_token_count == 12
    assert reply.usage.total_token_count == (
        reply.usage.prompt_token_count + reply.usage.candidates_token_count
    )


def test_every_state_change_reaches_the_callback(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    seen: list[tuple[str, str, str]] = []
    run(
        conversation.open_chat(client),
        conversation,
        Q1,
        on_change=lambda m: seen.append((m.id, m.status, m.text)),
    )
    assert seen == [
        ("msg-1", "completed", Q1),
        ("msg-2", "created", ""),
        ("msg-2", "streaming", "It warns sh"),
        ("msg-2", "streaming", "It warns ships away from the rocks at ni"),
        ("msg-2", "streaming", A1),
        ("msg-2", "completed", A1),
    ]


def test_each_chunk_is_yielded_after_the_state_is_updated(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    lengths = []
    for chunk in stream_reply(conversation.open_chat(client), conversation, Q1):
        reply = conversation.messages[-1]
        assert reply.status == "streaming"
        assert reply.text.endswith(chunk.text)
        lengths.append(len(reply.text))
    assert lengths == sorted(lengths) and len(lengths) == 3


def test_broken_stream_leaves_a_failed_message_with_the_partial_text(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    chat = conversation.open_chat(client)
    log = StateLog()
    received = []
    with pytest.raises(Exception) as info:
        for chunk in stream_reply(chat, conversation, "Tell me about fog signals.", on_change=log):
            received.append(chunk.text)
    reply = conversation.messages[-1]
    assert received == ["When fog hi", "des the light, a horn sou"]
    assert reply.status == "failed"
    assert reply.text == "When fog hides the light, a horn sou"
    assert reply.error.startswith(type(info.value).__name__)
    assert log.lines[-1].startswith("msg-2 model failed (2 chunks, 36 chars)")
    # The broken turn is in neither history, so the chat carries on cleanly.
    assert conversation.to_history() == []
    assert chat.get_history(curated=True) == []
    run(chat, conversation, Q1)
    assert chat_emu.requests[-1].cassette == "test_chat_keeper_turn1"
    assert conversation.messages[-1].status == "completed"


def test_stream_without_finish_reason_ends_failed(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    chunks = run(conversation.open_chat(client), conversation, "Say something short.")
    reply = conversation.messages[-1]
    assert len(chunks) == 2
    assert (reply.status, reply.text) == ("failed", "Calm seas tonight.")
    assert "without a finish reason" in reply.error


def test_reloaded_conversation_continues_with_its_history(client, chat_emu, tmp_path) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    run(conversation.open_chat(client), conversation, Q1)
    conversation.save(tmp_path, "keeper")

    restored = Conversation.load(tmp_path, "keeper")
    chat = restored.open_chat(client)
    run(chat, restored, Q2)
    # The same cassette answers: the emulator treats a chunked answer like the joined one.
    assert chat_emu.requests[-1].cassette == "test_chat_keeper_turn2"
    assert texts(chat_emu.requests[-1].body["contents"]) == [
        ("user", Q1),
        ("model", A1),
        ("user", Q2),
    ]
    assert [m.text for m in restored.messages] == [Q1, A1, Q2, A2]


def test_rejected_key_fails_the_message_before_any_chunk(chat_emu) -> None:
    bad = genai.Client(api_key="invalid", http_options=chat_emu.http_options())
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    seen = []
    with pytest.raises(errors.ClientError) as info:
        run(
            conversation.open_chat(bad), conversation, Q1, on_change=lambda m: seen.append(m.status)
        )
    assert info.value.code == 400
    reply = conversation.messages[-1]
    assert (reply.status, reply.text, reply.started_at) == ("failed", "", None)
    assert reply.error.startswith("ClientError 400 INVALID_ARGUMENT: API key not valid")
    assert "invalid" not in reply.error.replace("not valid", "")
    assert seen == ["completed", "created", "failed"]


def test_stopping_early_fails_the_message(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    stream = stream_reply(conversation.open_chat(client), conversation, Q1)
    next(stream)
    stream.close()
    reply = conversation.messages[-1]
    assert (reply.status, reply.text) == ("failed", "It warns sh")
    assert "stopped reading" in reply.error


def test_async_chat_two_turns_with_a_callback(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)
    seen: list[str] = []

    def on_change(message) -> None:
        seen.append(f"{message.id} {message.status}")

    async def main() -> None:
        chat = conversation.open_chat(client.aio)
        for question in (Q1, Q2):
            async for _ in astream_reply(chat, conversation, question, on_change=on_change):
                pass

    asyncio.run(main())
    assert [r.cassette for r in chat_emu.requests] == [
        "test_chat_keeper_turn1",
        "test_chat_keeper_turn2",
    ]
    assert [m.text for m in conversation.messages] == [Q1, A1, Q2, A2]
    assert seen[:3] == ["msg-1 completed", "msg-2 created", "msg-2 streaming"]
    assert seen[-1] == "msg-4 completed"


def test_async_broken_stream_keeps_the_partial_text(client, chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)

    async def main() -> None:
        chat = conversation.open_chat(client.aio)
        async for _ in astream_reply(chat, conversation, "Tell me about fog signals."):
            pass

    with pytest.raises(Exception):  # noqa: B017 - the network error type is the transport's
        asyncio.run(main())
    reply = conversation.messages[-1]
    assert (reply.status, reply.text) == ("failed", "When fog hides the light, a horn sou")


class Boom(Exception):
    pass


@pytest.mark.parametrize("failing_call", range(6))
def test_a_failing_callback_at_any_step_leaves_no_message_in_progress(
    client, chat_emu, failing_call: int
) -> None:
    conversation = Conversation(system_instruction=KEEPER)
    calls = []

    def on_change(message) -> None:
        calls.append(message.status)
        if len(calls) == failing_call + 1:
            raise Boom(f"callback failed at call {failing_call}")

    with pytest.raises(Boom):
        run(conversation.open_chat(client), conversation, Q1, on_change=on_change)
    assert conversation.in_progress is None
    assert conversation.messages[-1].status in ("completed", "failed")
    if failing_call < 5:  # before the final update, the message ends failed
        assert conversation.messages[-1].status == "failed"
        assert "callback failed" in conversation.messages[-1].error


@pytest.mark.parametrize("failing_call", range(6))
def test_async_failing_callback_at_any_step_leaves_no_message_in_progress(
    client, chat_emu, failing_call: int
) -> None:
    conversation = Conversation(system_instruction=KEEPER)
    calls = []

    def on_change(message) -> None:
        calls.append(message.status)
        if len(calls) == failing_call + 1:
            raise Boom(f"callback failed at call {failing_call}")

    async def main() -> None:
        chat = conversation.open_chat(client.aio)
        async for _ in astream_reply(chat, conversation, Q1, on_change=on_change):
            pass

    with pytest.raises(Boom):
        asyncio.run(main())
    assert conversation.in_progress is None
    assert conversation.messages[-1].status in ("completed", "failed")
