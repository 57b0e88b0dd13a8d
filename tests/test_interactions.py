"""The Interactions API over the emulator: the real SDK (sync and async) over real sockets
against the cassettes in assets/cassettes/interactions/ (authored by scripts/author.py)."""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai

from quickstart_helpers.emulator import (
    CassetteStore,
    Emulator,
    InteractionsCassette,
    parse_cassette,
    shipped_cassette_dir,
)
from quickstart_helpers.emulator._matching import cassette_key
from quickstart_helpers.errors import CassetteError


class _Interactions:
    """``google.genai._interactions`` (its error classes), imported on first use: importing
    it costs 0.4 s of CPU, in every xdist worker that collects this module."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # pytest's collection looks for its own markers
            raise AttributeError(name)
        from google.genai import _interactions

        return getattr(_interactions, name)


_interactions = _Interactions()

FOLDER = shipped_cassette_dir() / "interactions"
STORE = CassetteStore([FOLDER])
CASSETTES: dict[str, InteractionsCassette] = {
    c.name: c for c in STORE.cassettes if isinstance(c, InteractionsCassette)
}


def body(cassette: InteractionsCassette, **extra: Any) -> dict[str, Any]:
    """The keyword arguments of ``interactions.create`` that the cassette answers."""
    return {"model": cassette.model, **copy.deepcopy(cassette.request), **extra}


def recorded(cassette: InteractionsCassette) -> list[dict[str, Any]]:
    return cassette.sent_events()


def dumped(events: list[Any]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in events]


def answer(cassette: InteractionsCassette) -> str:
    """The recorded answer: the text of the last step (a thinking model's first is a thought)."""
    return cassette.interaction["steps"][-1]["content"][0]["text"]


def breaks(cassette: InteractionsCassette) -> bool:
    return any(e.break_ for e in cassette.events)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emu = Emulator(store=STORE, pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture()
def client(emulator: Emulator) -> genai.Client:
    emulator.requests.clear()
    return genai.Client(api_key="test", http_options=emulator.http_options())


def create_ancestors(client: genai.Client, cassette: InteractionsCassette) -> str | None:
    """Create (not streamed) the interactions the cassette continues; return the last id."""
    if cassette.previous is None:
        return None
    parent = CASSETTES[cassette.previous]
    grand = create_ancestors(client, parent)
    extra = {"previous_interaction_id": grand} if grand else {}
    return client.interactions.create(**body(parent, **extra)).id


def test_the_cassettes_are_there() -> None:
    assert {
        "interactions_first_stream",
        "interactions_thoughts",
        "interactions_chat_turn2",
        "interactions_weather_answer",
        "interactions_storyboard",
        "interactions_dropped",
    } <= set(CASSETTES)


@pytest.mark.parametrize("name", sorted(CASSETTES))
def test_sync_sdk_streams_every_cassette(client: genai.Client, name: str) -> None:
    cassette = CASSETTES[name]
    previous = create_ancestors(client, cassette)
    extra = {"previous_interaction_id": previous} if previous else {}
    events: list[Any] = []
    stream = client.interactions.create(**body(cassette, stream=True, **extra))
    if breaks(cassette):
        with pytest.raises(_interactions.APIConnectionError):
            for event in stream:
                events.append(event)
        events += list(
            client.interactions.get(
                cassette.interaction_id, stream=True, last_event_id=events[-1].event_id
            )
        )
    else:
        events = list(stream)
    assert dumped(events) == recorded(cassette)


@pytest.mark.parametrize("name", sorted(CASSETTES))
def test_async_sdk_streams_every_cassette(client: genai.Client, name: str) -> None:
    cassette = CASSETTES[name]
    previous = create_ancestors(client, cassette)
    extra = {"previous_interaction_id": previous} if previous else {}

    async def run() -> list[Any]:
        events: list[Any] = []
        stream = await client.aio.interactions.create(**body(cassette, stream=True, **extra))
        try:
            async for event in stream:
                events.append(event)
        except _interactions.APIConnectionError:
            assert breaks(cassette)
            resumed = await client.aio.interactions.get(
                cassette.interaction_id, stream=True, last_event_id=events[-1].event_id
            )
            events += [event async for event in resumed]
        return events

    assert dumped(asyncio.run(run())) == recorded(cassette)


@pytest.mark.parametrize("name", sorted(CASSETTES))
def test_not_streamed_create_and_get_return_the_recorded_interaction(
    client: genai.Client, name: str
) -> None:
    cassette = CASSETTES[name]
    previous = create_ancestors(client, cassette)
    extra = {"previous_interaction_id": previous} if previous else {}
    created = client.interactions.create(**body(cassette, **extra))
    expected = cassette.interaction
    assert created.id == expected["id"] and created.status == expected["status"]
    got = client.interactions.get(created.id)
    assert got.model_dump(mode="json", exclude_none=True)["steps"] == expected["steps"]


@pytest.mark.parametrize("after", [0, 2, 5, -2])
def test_resume_yields_exactly_the_events_after_last_event_id(
    client: genai.Client, after: int
) -> None:
    cassette = CASSETTES["interactions_first_stream"]
    client.interactions.create(**body(cassette))
    events = recorded(cassette)
    last = events[after]["event_id"]
    resumed = list(
        client.interactions.get(cassette.interaction_id, stream=True, last_event_id=last)
    )
    assert dumped(resumed) == events[events.index(events[after]) + 1 :]
    whole = list(client.interactions.get(cassette.interaction_id, stream=True))
    assert dumped(whole) == events


def test_a_dropped_stream_resumes_without_missing_or_repeated_text(client: genai.Client) -> None:
    cassette = CASSETTES["interactions_dropped"]
    text, last = "", None
    with pytest.raises(_interactions.APIConnectionError):
        for event in client.interactions.create(**body(cassette, stream=True)):
            last = event
            if event.event_type == "step.delta" and event.delta.type == "text":
                text += event.delta.text
    assert last is not None and 0 < len(text) < len(answer(cassette))
    for event in client.interactions.get(
        cassette.interaction_id, stream=True, last_event_id=last.event_id
    ):
        if event.event_type == "step.delta" and event.delta.type == "text":
            text += event.delta.text
    assert text == answer(cassette)


def test_previous_interaction_id_chains_a_conversation(
    client: genai.Client, emulator: Emulator
) -> None:
    first, second = CASSETTES["interactions_chat_turn1"], CASSETTES["interactions_chat_turn2"]
    # The second question alone matches no recording: it continues the first turn.
    with pytest.raises(_interactions.NotFoundError) as info:
        client.interactions.create(**body(second))
    assert "closest cassette is 'interactions_chat_turn2'" in str(info.value)
    assert "continuing 'interactions_chat_turn1'" in str(info.value)
    turn1 = client.interactions.create(**body(first, stream=True))
    turn1_id = next(e.interaction.id for e in turn1 if e.event_type == "interaction.created")
    turn2 = client.interactions.create(**body(second, previous_interaction_id=turn1_id))
    assert turn2.output_text == answer(second)
    assert emulator.requests[-1].body["previous_interaction_id"] == turn1_id
    assert emulator.requests[-1].cassette == "interactions_chat_turn2"


def test_an_unknown_previous_interaction_is_not_found(client: genai.Client) -> None:
    with pytest.raises(_interactions.NotFoundError, match="v1_nope.*was not found"):
        client.interactions.create(
            **body(CASSETTES["interactions_chat_turn2"], previous_interaction_id="v1_nope")
        )


def test_function_call_round_trip(client: genai.Client) -> None:
    call, answer = CASSETTES["interactions_weather_call"], CASSETTES["interactions_weather_answer"]
    arguments, name, call_id, interaction_id, status = "", None, None, None, None
    for event in client.interactions.create(**body(call, stream=True)):
        if event.event_type == "interaction.created":
            interaction_id = event.interaction.id
        elif event.event_type == "step.start" and event.step.type == "function_call":
            name, call_id = event.step.name, event.step.id
        elif event.event_type == "step.delta" and event.delta.type == "arguments_delta":
            arguments += event.delta.arguments
        elif event.event_type == "interaction.completed":
            status = event.interaction.status
    assert status == "requires_action" and name == "get_weather"
    args = json.loads(arguments)
    assert args == call.interaction["steps"][0]["arguments"]
    result = {"temperature": 19, "unit": args["unit"], "condition": "sunny"}
    reply = client.interactions.create(
        model=answer.model,
        input=[{"type": "function_result", "call_id": call_id, "name": name, "result": result}],
        tools=answer.request["tools"],
        previous_interaction_id=interaction_id,
    )
    assert reply.output_text == "It is sunny in Lisbon right now, at 19 °C."


def test_store_false_is_not_kept() -> None:
    cassette = CASSETTES["interactions_event_tour"]
    with Emulator(store=STORE, pacing="fast") as emu:
        client = genai.Client(api_key="test", http_options=emu.http_options())
        created = client.interactions.create(**body(cassette, store=False))
        assert created.id == cassette.interaction_id
        with pytest.raises(_interactions.NotFoundError):
            client.interactions.get(created.id)


def test_delete_forgets_and_cancel_refuses_a_finished_interaction(client: genai.Client) -> None:
    cassette = CASSETTES["interactions_event_tour"]
    created = client.interactions.create(**body(cassette))
    with pytest.raises(
        _interactions.BadRequestError, match="only an interaction still in progress"
    ):
        client.interactions.cancel(created.id)
    client.interactions.delete(created.id)
    with pytest.raises(_interactions.NotFoundError):
        client.interactions.get(created.id)


def _stream_until_dropped(client: genai.Client, cassette: InteractionsCassette) -> list[Any]:
    """Create the cassette's interaction streaming; return the events received before the
    connection dropped, checking the interaction is still in progress."""
    seen: list[Any] = []
    with pytest.raises(_interactions.APIConnectionError):
        for event in client.interactions.create(**body(cassette, stream=True)):
            seen.append(event)
    assert client.interactions.get(cassette.interaction_id).status == "in_progress"
    return seen


def test_cancel_stops_an_interaction_in_progress() -> None:
    cassette = CASSETTES["interactions_dropped"]
    with Emulator(store=STORE, pacing="realtime") as emu:
        client = genai.Client(api_key="test", http_options=emu.http_options())
        seen = _stream_until_dropped(client, cassette)
        cancelled = client.interactions.cancel(cassette.interaction_id)
        assert cancelled.status == "cancelled" and not cancelled.steps
        rest = list(
            client.interactions.get(
                cassette.interaction_id, stream=True, last_event_id=seen[-1].event_id
            )
        )
        assert len(seen) + len(rest) < len(recorded(cassette))
        assert client.interactions.get(cassette.interaction_id).status == "cancelled"


def test_a_resumed_stream_follows_the_interaction_still_being_generated() -> None:
    """Realtime pacing keeps the API's timeline: after the drop the interaction is still in
    progress, and the resumed stream delivers the rest as it is generated, to completion."""
    cassette = CASSETTES["interactions_dropped"]
    with Emulator(store=STORE, pacing="realtime") as emu:
        client = genai.Client(api_key="test", http_options=emu.http_options())
        seen = _stream_until_dropped(client, cassette)
        rest = list(
            client.interactions.get(
                cassette.interaction_id, stream=True, last_event_id=seen[-1].event_id
            )
        )
        assert client.interactions.get(cassette.interaction_id).status == "completed"
    assert dumped(seen + rest) == recorded(cassette)


def test_unmatched_request_gets_the_api_error_with_a_hint(
    client: genai.Client, emulator: Emulator
) -> None:
    model = CASSETTES["interactions_first_stream"].model
    with pytest.raises(_interactions.NotFoundError) as info:
        client.interactions.create(model=model, input="Tell me a joke.", stream=True)
    message = str(info.value)
    assert "never makes an answer up" in message and "QUICKSTART_CASSETTES" in message
    assert emulator.requests[-1].cassette is None


def test_bad_last_event_id_is_refused(client: genai.Client) -> None:
    cassette = CASSETTES["interactions_event_tour"]
    client.interactions.create(**body(cassette))
    with pytest.raises(_interactions.BadRequestError, match="is not an event"):
        list(client.interactions.get(cassette.interaction_id, stream=True, last_event_id="nope"))


def test_sse_framing_on_the_wire(emulator: Emulator) -> None:
    cassette = CASSETTES["interactions_event_tour"]
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    with httpx.Client(verify=ctx) as http:
        response = http.post(
            f"{emulator.base_url}/v1beta/interactions",
            headers={"x-goog-api-key": "test", "Accept": "text/event-stream"},
            json=body(cassette, stream=True),
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == "" and blocks[-2] == "event: done\ndata: [DONE]"
    for block, event in zip(blocks[:-2], recorded(cassette), strict=True):
        event_line, data_line = block.split("\n")
        assert event_line == f"event: {event['event_type']}"
        assert json.loads(data_line.removeprefix("data: ")) == event


def test_missing_key_is_refused(emulator: Emulator) -> None:
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    response = httpx.post(
        f"{emulator.base_url}/v1beta/interactions", json={"model": "x"}, verify=ctx
    )
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


# -- the cassette schema ---------------------------------------------------------------


def raw(name: str) -> dict[str, Any]:
    return json.loads((FOLDER / f"{name}.json").read_text("utf-8"))


def test_a_valid_cassette_parses() -> None:
    assert isinstance(parse_cassette(raw("interactions_event_tour")), InteractionsCassette)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), "extra: Extra inputs are not permitted"),
        (lambda d: d.update(format=2), "format"),
        (
            lambda d: d["events"][3]["event"].update(colour="red"),
            "events[3].event.colour: unknown field",
        ),
        (
            lambda d: d["events"][3]["event"]["delta"].update(type="textual"),
            "unknown variant 'textual'",
        ),
        (
            lambda d: d["events"][3]["event"].update(event_type="content.delta"),
            "unknown variant 'content.delta'",
        ),
        (lambda d: d["events"][2]["event"].pop("event_id"), "every event needs an event_id"),
        (lambda d: d["events"].pop(0), "the first event must be interaction.created"),
        (
            lambda d: d["interaction"].update(object="interaction"),
            "interaction.object: unknown field",
        ),
        (lambda d: d["events"][4].update({"break": True}), "not both"),
    ],
)
def test_bad_cassettes_are_refused_with_the_path(change: Any, message: str) -> None:
    data = raw("interactions_event_tour")
    change(data)
    with pytest.raises(CassetteError) as info:
        parse_cassette(data, "bad.json")
    assert message in str(info.value)


def test_two_cassettes_for_one_request_are_refused() -> None:
    store = CassetteStore([])
    store.add(parse_cassette(raw("interactions_event_tour")))
    twin = raw("interactions_event_tour")
    twin["name"] = "twin"
    with pytest.raises(CassetteError, match="answer the same request"):
        store.add(parse_cassette(twin))


def test_a_later_folder_overrides_an_interactions_cassette(tmp_path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    data = raw("interactions_event_tour")
    data["name"] = "my_event_tour"
    (own / "my_event_tour.json").write_text(json.dumps(data), "utf-8")
    store = CassetteStore([FOLDER, own])
    cassette = store.find_interaction(data["model"], data["request"], None)
    assert cassette is not None and cassette.name == "my_event_tour"
    assert [(old.name, new.name) for old, new in store.overridden] == [
        ("interactions_event_tour", "my_event_tour")
    ]
    assert store.find_key(cassette_key(cassette)) is cassette


def test_a_store_checks_interactions_cassettes_with_the_sdk_when_first_asked(tmp_path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    data = raw("interactions_event_tour")
    data["events"][3]["event"]["colour"] = "red"  # a field the SDK's models do not know
    (own / "interactions_event_tour.json").write_text(json.dumps(data), "utf-8")
    text = shipped_cassette_dir() / "text"
    store = CassetteStore([text, own])  # loads: the SDK's check comes at first use
    assert "interactions_event_tour" in [c.name for c in store.cassettes]
    for ask in (
        store.check_interactions,
        lambda: store.find_interaction(data["model"], data["request"], None),
        store.check_interactions,  # still refused: it was not checked
    ):
        with pytest.raises(CassetteError) as info:
            ask()
        message = str(info.value)
        assert "interactions_event_tour.json is not a valid cassette (the SDK's models" in message
        assert "events[3].event.colour: unknown field" in message
    with Emulator(store=store, pacing="fast") as emulator, _http(emulator) as http:
        answer = http.post(f"{emulator.base_url}/v1beta/interactions", json=body_of(data))
        text_answer = http.post(
            f"{emulator.base_url}/v1beta/models/{store.cassettes[0].model}:generateContent",
            json=store.cassettes[0].request,  # type: ignore[union-attr]
        )
    assert answer.status_code == 500
    assert "events[3].event.colour: unknown field" in answer.json()["error"]["message"]
    assert text_answer.status_code == 200


def body_of(data: dict[str, Any]) -> dict[str, Any]:
    return {"model": data["model"], **data["request"]}


def test_an_emulator_that_serves_no_interaction_leaves_the_sdks_interactions_unimported() -> None:
    # In a fresh interpreter: this module imported them already.
    code = (
        "import sys\n"
        "from google import genai\n"
        "from quickstart_helpers.emulator import Emulator\n"
        "with Emulator(pacing='fast') as emulator:\n"
        "    client = genai.Client(api_key='test', http_options=emulator.http_options())\n"
        "    print(len(list(client.models.list())))\n"
        "print(sorted(m for m in sys.modules if m.startswith('google.genai.interactions')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stdout + done.stderr


# -- the middleware every emulator route goes through ----------------------------------


def _http(emulator: Emulator) -> httpx.Client:
    ctx = emulator.certificate.client_context()  # type: ignore[union-attr]
    return httpx.Client(verify=ctx, headers={"x-goog-api-key": "test"}, timeout=30)


def test_interactions_routes_answer_errors_as_the_apis_json(emulator: Emulator) -> None:
    with _http(emulator) as http:
        wrong_method = http.put(f"{emulator.base_url}/v1beta/interactions/some-id")
        unknown = http.get(f"{emulator.base_url}/v1beta/interactions/some-id/steps")
        not_json = http.post(
            f"{emulator.base_url}/v1beta/interactions",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert wrong_method.status_code == 405
    assert "PUT" in wrong_method.json()["error"]["message"]
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    assert not_json.status_code == 400
    assert not_json.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "Invalid JSON payload received" in not_json.json()["error"]["message"]


def test_interactions_routes_merge_slashes_and_answer_local_pages_with_cors(
    emulator: Emulator,
) -> None:
    cassette = CASSETTES["interactions_event_tour"]
    origin = "http://localhost:5173"
    with _http(emulator) as http:
        created = http.post(
            f"{emulator.base_url}//v1beta//interactions",
            json=body(cassette),
            headers={"Origin": origin},
        )
        preflight = http.options(
            f"{emulator.base_url}/v1beta/interactions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-goog-api-key,content-type",
            },
        )
        foreign = http.post(
            f"{emulator.base_url}/v1beta/interactions",
            json=body(cassette),
            headers={"Origin": "https://evil.example"},
        )
    assert created.status_code == 200
    assert created.json()["id"] == cassette.interaction_id
    assert created.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert foreign.status_code == 403
    assert foreign.json()["error"]["status"] == "PERMISSION_DENIED"


def test_the_closest_hint_compares_a_bounded_prefix_of_a_long_input(
    client: genai.Client, emulator: Emulator
) -> None:
    cassette = CASSETTES["interactions_first_stream"]
    long_input = cassette.request["input"] + " more" * 250_000  # about 1.2 MB
    with pytest.raises(_interactions.NotFoundError) as info:
        client.interactions.create(model=cassette.model, input=long_input)
    assert f"closest cassette is {cassette.name!r}" in str(info.value)
    last = emulator.requests[-1]
    assert last.method == "interactions.create" and last.size > 1024 * 1024 and last.truncated
