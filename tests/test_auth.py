"""Tests of the bad-key flow (quickstart_helpers.auth) against a real emulator."""

from __future__ import annotations

import getpass

import pytest
from google import genai
from google.genai import errors

from quickstart_helpers import auth
from quickstart_helpers.auth import (
    REJECTED_MESSAGE,
    InvalidApiKeyError,
    ask_for_key,
    find_invalid_key_error,
    retry_on_invalid_key,
)
from quickstart_helpers.chat import Conversation, stream_reply
from quickstart_helpers.display import StreamInterrupted, stream_markdown
from quickstart_helpers.emulator import Emulator

from .conftest import CHAT_MODEL

KEEPER = "You are a lighthouse keeper of few words. Answer in one sentence."
Q1, A1 = "What does a lighthouse do?", "It warns ships away from the rocks at night."
SECRET = "AIza-very-secret-test-key"


class Keyboard:
    """Scripted answers to a hidden-input prompt; records the prompts shown."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def __call__(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return self.answers.pop(0)


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    """No key anywhere: no variables and no .env above the working directory."""
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def client_for(chat_emu: Emulator, key: str) -> genai.Client:
    return genai.Client(api_key=key, http_options=chat_emu.http_options())


def ask_keeper(client: genai.Client) -> str:
    chunks = client.models.generate_content_stream(
        model="gemini-3.8-flash",
        contents=Q1,
        config={"system_instruction": KEEPER},
    )
    return "".join(chunk.text for chunk in chunks)


# -- asking ------------------------------------------------------------------------------
def test_ask_for_key_strips_and_treats_blank_as_none() -> None:
    keyboard = Keyboard(f"  {SECRET}\n", "   ")
    assert ask_for_key(keyboard) == SECRET
    assert ask_for_key(keyboard) is None
    assert keyboard.prompts == [auth.KEY_PROMPT, auth.KEY_PROMPT]
    assert "hidden" in auth.KEY_PROMPT


def test_ask_for_key_uses_getpass_by_default(monkeypatch) -> None:
    keyboard = Keyboard(SECRET)
    monkeypatch.setattr(getpass, "getpass", keyboard)
    assert ask_for_key(prompt="Key: ") == SECRET
    assert keyboard.prompts == ["Key: "]


# -- retrying -----------------------------------------------------------------------------
def test_rejected_key_is_explained_and_asked_again(chat_emu, capsys) -> None:
    keyboard = Keyboard("invalid", SECRET)
    said: list[str] = []
    made: list[str] = []

    def make(_old: genai.Client, key: str) -> genai.Client:
        made.append(key)
        return client_for(chat_emu, key)

    answer = retry_on_invalid_key(
        ask_keeper, client_for(chat_emu, "invalid"), ask=keyboard, say=said.append, make=make
    )
    assert answer == A1
    assert said == [REJECTED_MESSAGE, REJECTED_MESSAGE]
    assert "is your API key valid?" in REJECTED_MESSAGE
    assert made == ["invalid", SECRET]
    assert [r.cassette for r in chat_emu.requests] == ["test_chat_keeper_turn1"]
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert SECRET not in " ".join(said)


def test_gives_up_after_the_attempts(chat_emu) -> None:
    keyboard = Keyboard("invalid", "invalid")
    with pytest.raises(InvalidApiKeyError, match=r"refused 3 times\. Is your API key valid\?") as e:
        retry_on_invalid_key(
            ask_keeper,
            client_for(chat_emu, "invalid"),
            ask=keyboard,
            say=lambda _: None,
            make=lambda _old, key: client_for(chat_emu, key),
        )
    assert isinstance(e.value.__cause__, errors.ClientError)
    assert e.value.__cause__.code == 400
    assert len(keyboard.prompts) == 2


def test_empty_answer_gives_up(chat_emu) -> None:
    with pytest.raises(InvalidApiKeyError, match="No new key was entered"):
        retry_on_invalid_key(
            ask_keeper, client_for(chat_emu, "invalid"), ask=Keyboard(""), say=print
        )


def test_a_session_without_input_gives_up(chat_emu) -> None:
    from IPython.core.error import StdinNotImplementedError

    def headless(prompt: str) -> str:  # what getpass does in a kernel run by nbclient
        raise StdinNotImplementedError(
            "getpass was called, but this frontend does not support input requests."
        )

    with pytest.raises(InvalidApiKeyError, match="cannot ask"):
        retry_on_invalid_key(ask_keeper, client_for(chat_emu, "invalid"), ask=headless, say=print)


def test_other_errors_pass_through(chat_emu) -> None:
    keyboard = Keyboard(SECRET)

    def unknown_prompt(client: genai.Client) -> str:
        return client.models.generate_content(model="gemini-3.8-flash", contents="Unrecorded").text

    with pytest.raises(errors.ClientError) as info:
        retry_on_invalid_key(unknown_prompt, client_for(chat_emu, "good"), ask=keyboard)
    assert info.value.code == 404
    assert keyboard.prompts == []


def test_a_key_refused_before_the_first_chunk_reaches_the_display_as_is(chat_emu, capsys) -> None:
    keyboard = Keyboard(SECRET)

    def show(client: genai.Client) -> str:
        return stream_markdown(
            client.models.generate_content_stream(
                model="gemini-3.8-flash", contents=Q1, config={"system_instruction": KEEPER}
            )
        )

    # Refused before any chunk: the SDK's own error, not a broken stream.
    with pytest.raises(errors.ClientError) as info:
        show(client_for(chat_emu, "invalid"))
    assert find_invalid_key_error(info.value) is info.value
    wrapped = StreamInterrupted("partial", info.value)
    wrapped.__cause__ = info.value
    assert find_invalid_key_error(wrapped) is info.value
    assert find_invalid_key_error(ValueError("nothing to see")) is None

    text = retry_on_invalid_key(
        show,
        client_for(chat_emu, "invalid"),
        ask=keyboard,
        say=print,
        make=lambda _old, key: client_for(chat_emu, key),
    )
    assert text == A1
    assert REJECTED_MESSAGE in capsys.readouterr().out


def test_chat_retry_keeps_the_refused_turn_out_of_the_history(chat_emu) -> None:
    conversation = Conversation(model=CHAT_MODEL, system_instruction=KEEPER)

    def send(client: genai.Client) -> list:
        return list(stream_reply(conversation.open_chat(client), conversation, Q1))

    retry_on_invalid_key(
        send,
        client_for(chat_emu, "invalid"),
        ask=Keyboard(SECRET),
        say=lambda _: None,
        make=lambda _old, key: client_for(chat_emu, key),
    )
    assert [(m.role, m.status) for m in conversation.messages] == [
        ("user", "completed"),
        ("model", "failed"),
        ("user", "completed"),
        ("model", "completed"),
    ]
    assert [c.parts[0].text for c in conversation.to_history()] == [Q1, A1]
    assert SECRET not in conversation.model_dump_json()


def test_the_default_new_client_goes_where_the_environment_points(
    chat_emu, monkeypatch, capsys
) -> None:
    """Without ``make``, the new client is ``genai.Client(api_key=key)``: after the set-up
    line, that is the emulator offline (its base URL and CA from the environment)."""
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", chat_emu.base_url)
    monkeypatch.setenv("SSL_CERT_FILE", str(chat_emu.certificate.cert_file))
    made: list[genai.Client] = []

    def send(client: genai.Client) -> str:
        made.append(client)
        return ask_keeper(client)

    assert retry_on_invalid_key(send, genai.Client(api_key="invalid"), ask=Keyboard(SECRET)) == A1
    assert made[-1]._api_client.api_key == SECRET and len(made) == 2
    assert SECRET not in capsys.readouterr().out
