"""Record mode, the rest of the wire: JSON-array streams, error events inside a stream,
``countTokens``, model look-ups and Live API close codes; recorded through the proxy,
then replayed offline.

As in test_record.py, the upstream (standing in for the live API) is a second emulator
with its own cassettes, in realtime pacing; everything goes over real sockets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.genai import errors, types

from quickstart_helpers import _scrub
from quickstart_helpers.emulator import (
    CassetteStore,
    CountTokensCassette,
    Emulator,
    GenerateCassette,
    LiveCassette,
    ModelsCassette,
    _secrets,
    parse_cassette,
)
from quickstart_helpers.errors import CassetteError

from . import test_record
from .test_record import (
    DELAYS,
    FAKE_KEY,
    LIVE_MODEL,
    MODEL,
    STORY,
    _chunk,
    _generate,
    assert_follows_pacing,
    client,
    only_cassette,
    raw_events,
    scan_for_key,
    wait_written,
    write_upstream,
)

# The recording and replaying emulators of test_record.py (fixtures), on this module's upstream.
record = test_record.record
replay = test_record.replay

FAILING = "Start, then fail"
FAIL_TURN = {1011: "Fail with an internal error", 1007: "Fail with an invalid argument"}
CLOSE_REASON = {1011: "Internal error occurred.", 1007: "Request contains an invalid argument."}


def write_more(folder: Path) -> None:
    """Add a stream that fails midway (an error event echoing the key) and Live closes."""
    failing = _generate(
        "up_failing",
        FAILING,
        [
            {"delay_ms": 80, "response": _chunk("Half")},
            {
                "delay_ms": 120,
                "error": {
                    "code": 500,
                    "message": f"Internal error for key {FAKE_KEY}.",
                    "status": "INTERNAL",
                },
            },
        ],
    )
    (folder / "up_failing.json").write_text(json.dumps(failing), "utf-8")
    for code, turn in FAIL_TURN.items():
        live = {
            "format": 1,
            "name": f"up_live_close_{code}",
            "kind": "live",
            "model": LIVE_MODEL,
            "setup": {"generationConfig": {"responseModalities": ["AUDIO"]}},
            "turns": [
                {
                    "input": turn,
                    "messages": [
                        {
                            "delay_ms": 30,
                            "audio": {"file": "audio/up.wav", "start": 0, "frames": 480},
                        },
                        {"delay_ms": 60, "close": {"code": code, "reason": CLOSE_REASON[code]}},
                    ],
                }
            ],
        }
        (folder / f"{live['name']}.json").write_text(json.dumps(live), "utf-8")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[Emulator]:
    folder = tmp_path_factory.mktemp("upstream")
    write_upstream(folder)
    write_more(folder)
    emulator = Emulator(store=CassetteStore([folder]), pacing="realtime").start()
    yield emulator
    emulator.stop()


def _http(emulator: Emulator) -> httpx.Client:
    return httpx.Client(verify=emulator.certificate.client_context(), timeout=30)


def array_bytes(emulator: Emulator, prompt: str) -> bytes:
    """POST ``streamGenerateContent`` without ``alt=sse``; return the JSON array's bytes."""
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
    url = f"{emulator.base_url}/v1beta/models/{MODEL}:streamGenerateContent"
    with _http(emulator) as http:
        resp = http.post(url, json=body, headers={"x-goog-api-key": FAKE_KEY})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    return resp.content


# -- 1. the JSON-array form of streamGenerateContent --------------------------------------------


def test_a_json_array_stream_is_recorded_as_chunks_and_replays_in_both_forms(
    upstream, record, replay
):
    sent = array_bytes(upstream, STORY)
    sent_sse = raw_events(upstream, STORY)
    proxy = record("once")
    assert array_bytes(proxy, STORY) == sent  # passed on unchanged
    proxy.stop()

    cassette = only_cassette(proxy.recorder.folder)
    assert isinstance(cassette, GenerateCassette)
    assert [c.response for c in cassette.chunks] == json.loads(sent)
    assert_follows_pacing([c.delay_ms for c in cassette.chunks], DELAYS)

    offline = replay()
    assert array_bytes(offline, STORY) == sent  # byte-equal, chunk bodies and framing
    assert raw_events(offline, STORY) == sent_sse  # the same cassette serves SSE
    assert scan_for_key(proxy.recorder.folder) == []


def test_the_stream_reader_splits_objects_across_any_pieces():
    from quickstart_helpers.emulator._record import _Reader

    objects = [{"a": "é,][ data:"}, {"b": [1, {"c": "}"}]}, {"d": "x\n,\r\n"}]
    array = ("[" + "\n,\r\n".join(json.dumps(o, indent=2) for o in objects) + "\n]").encode()
    events = "".join(f"data: {json.dumps(o)}\r\n\r\n" for o in objects).encode()
    for data in (array, events):  # a streamed JSON array, and SSE as the API frames it
        for size in (1, 2, 3, 7, len(data)):
            reader = _Reader()
            found = []
            for i in range(0, len(data), size):
                found.extend(chunk.payload() for chunk in reader.feed(data[i : i + size]))
            assert found == objects, size


# -- 3. error events inside a stream ---------------------------------------------------------


def test_an_error_event_inside_a_stream_is_recorded_as_a_chunk_and_replays(
    upstream, record, replay
):
    sent_sse = raw_events(upstream, FAILING)
    assert json.loads(sent_sse[-1])["error"]["code"] == 500
    proxy = record("new_episodes")
    assert raw_events(proxy, FAILING) == sent_sse
    with pytest.raises(errors.APIError) as live:
        list(client(proxy).models.generate_content_stream(model=MODEL, contents=FAILING))
    assert live.value.code == 500
    proxy.stop()

    cassette = only_cassette(proxy.recorder.folder)
    assert cassette.chunks[0].response is not None
    error = cassette.chunks[1].error
    assert error == {
        "code": 500,
        "message": f"Internal error for key {_scrub.REDACTED}.",
        "status": "INTERNAL",
    }
    assert_follows_pacing([c.delay_ms for c in cassette.chunks], [80, 120])
    assert scan_for_key(proxy.recorder.folder) == []

    offline = replay()
    replayed = raw_events(offline, FAILING)
    assert replayed[0] == sent_sse[0]
    assert json.loads(replayed[1]) == {"error": error}
    seen = []
    with pytest.raises(errors.APIError) as info:
        for chunk in client(offline, key="other").models.generate_content_stream(
            model=MODEL, contents=FAILING
        ):
            seen.append(chunk.text)
    assert seen == ["Half"]
    assert info.value.code == 500 and info.value.status == "INTERNAL"
    # The non-streaming call gets the error as its answer.
    with pytest.raises(errors.ServerError) as whole:
        client(offline, key="other").models.generate_content(model=MODEL, contents=FAILING)
    assert whole.value.code == 500


def test_an_error_event_in_a_json_array_stream_is_recorded_too(upstream, record, replay):
    sent = array_bytes(upstream, FAILING)
    proxy = record("once")
    assert array_bytes(proxy, FAILING) == sent
    proxy.stop()
    cassette = only_cassette(proxy.recorder.folder)
    assert [c.error is not None for c in cassette.chunks] == [False, True]
    assert array_bytes(replay(), FAILING) == sent.replace(
        FAKE_KEY.encode(), _scrub.REDACTED.encode()
    )


# -- 2. countTokens and model look-ups ---------------------------------------------------------


def test_count_tokens_is_recorded_and_replayed_offline(upstream, record, replay):
    direct = client(upstream).models.count_tokens(model=MODEL, contents=STORY)
    assert direct.total_tokens == 5  # the upstream's recorded promptTokenCount
    proxy = record("once")
    assert client(proxy).models.count_tokens(model=MODEL, contents=STORY).total_tokens == 5
    proxy.stop()
    cassette = only_cassette(proxy.recorder.folder)
    assert isinstance(cassette, CountTokensCassette)
    assert cassette.response == {"totalTokens": 5}
    assert cassette.request["contents"][0]["parts"][0]["text"] == STORY

    offline = replay()  # only the count_tokens cassette: no generate cassette to count from
    counted = client(offline, key="other").models.count_tokens(model=MODEL, contents=STORY)
    assert counted.total_tokens == 5
    with pytest.raises(errors.ClientError) as info:
        client(offline, key="other").models.count_tokens(model=MODEL, contents="Unrecorded")
    assert info.value.code == 404
    assert "quickstart record NOTEBOOK --cassettes DIR" in info.value.message
    assert scan_for_key(proxy.recorder.folder) == []


def test_an_unrecorded_count_in_mode_none_names_the_record_command(upstream, record):
    proxy = record("none")
    upstream.requests.clear()
    with pytest.raises(errors.ClientError) as info:
        client(proxy).models.count_tokens(model=MODEL, contents=STORY)
    assert info.value.code == 404
    assert "--gemini-record-mode=once" in info.value.message
    assert "Record mode 'none' only replays" in info.value.message
    assert upstream.requests == []


def _get(emulator: Emulator, path: str) -> httpx.Response:
    with _http(emulator) as http:
        return http.get(emulator.base_url + path, headers={"x-goog-api-key": FAKE_KEY})


def test_a_model_look_up_is_recorded_and_replayed_offline(upstream, record, replay):
    path = f"/v1beta/models/{MODEL}"
    direct = _get(upstream, path)
    assert direct.status_code == 200
    proxy = record("once")
    assert _get(proxy, path).content == direct.content
    model = client(proxy).models.get(model=MODEL)
    assert model.display_name == direct.json()["displayName"]
    proxy.stop()
    cassette = only_cassette(proxy.recorder.folder)
    assert isinstance(cassette, ModelsCassette)
    assert cassette.models == [direct.json()]

    offline = replay()
    assert _get(offline, path).json() == direct.json()
    assert client(offline, key="other").models.get(model=MODEL).name == f"models/{MODEL}"
    assert [m["name"] for m in _get(offline, "/v1beta/models").json()["models"]] == [
        f"models/{MODEL}"
    ]
    unknown = _get(offline, "/v1beta/models/gemini-unrecorded")
    assert unknown.status_code == 404
    assert "quickstart record NOTEBOOK --cassettes DIR" in unknown.json()["error"]["message"]


def test_the_model_list_is_recorded_and_replayed_offline(upstream, record, replay):
    direct = _get(upstream, "/v1beta/models").json()["models"]
    assert {m["name"] for m in direct} == {f"models/{MODEL}", f"models/{LIVE_MODEL}"}
    proxy = record("once")
    names = [m.name for m in client(proxy).models.list()]
    assert names == [m["name"] for m in direct]
    proxy.stop()
    offline = replay()
    assert _get(offline, "/v1beta/models").json()["models"] == direct
    assert _get(offline, f"/v1/models/{LIVE_MODEL}").json() == next(
        m for m in direct if m["name"] == f"models/{LIVE_MODEL}"
    )


def test_a_model_look_up_in_mode_none_is_not_forwarded(upstream, record):
    proxy = record("none")
    upstream.requests.clear()
    answer = _get(proxy, f"/v1beta/models/{MODEL}")
    assert answer.status_code == 404
    assert "Record mode 'none' only replays" in answer.json()["error"]["message"]
    assert upstream.requests == []
    assert not list(proxy.recorder.folder.glob("*.json"))


# -- 3. Live API close codes -----------------------------------------------------------------


async def _failing_turn(
    emulator: Emulator, text: str, key: str = FAKE_KEY
) -> tuple[int, Exception]:
    """Send one Live API turn the upstream ends with a close; return (audio messages, error)."""
    config = types.LiveConnectConfig(response_modalities=["AUDIO"])
    audio = 0
    async with client(emulator, key).aio.live.connect(model=LIVE_MODEL, config=config) as session:
        await session.send_realtime_input(text=text)  # Live 3.1: text as realtime input
        with pytest.raises(errors.APIError) as info:
            async for message in session.receive():
                audio += bool(message.data)
    return audio, info.value


@pytest.mark.parametrize("code", [1011, 1007])
def test_a_live_session_closed_by_the_upstream_is_recorded_and_replayed_as_a_close(
    upstream, record, replay, code
):
    audio, direct = asyncio.run(_failing_turn(upstream, FAIL_TURN[code]))
    assert (audio, direct.code) == (1, code)
    proxy = record("once")
    audio, through = asyncio.run(_failing_turn(proxy, FAIL_TURN[code]))
    assert (audio, through.code, through.message) == (1, code, direct.message)
    wait_written(proxy)
    cassette = only_cassette(proxy.recorder.folder)
    assert isinstance(cassette, LiveCassette)
    last = cassette.turns[-1].messages[-1]
    assert last.close is not None
    assert (last.close.code, last.close.reason) == (code, CLOSE_REASON[code])
    assert last.delay_ms >= 40  # the upstream's 60 ms after the audio, with slack

    audio, offline = asyncio.run(_failing_turn(replay(), FAIL_TURN[code], key="other"))
    assert (audio, offline.code, offline.message) == (1, code, direct.message)


# -- the new cassette forms are strictly validated -------------------------------------------


def _count(**extra: object) -> dict:
    return {
        "format": 1,
        "name": "c",
        "kind": "count_tokens",
        "model": MODEL,
        "request": {"contents": [{"parts": [{"text": "Hi"}]}]},
        **extra,
    }


def test_the_new_cassette_forms_are_strictly_validated():
    assert parse_cassette(_count(response={"totalTokens": 3})).response == {"totalTokens": 3}
    with pytest.raises(CassetteError, match=r"response\.totalTokenz: Extra inputs"):
        parse_cassette(_count(response={"totalTokens": 3, "totalTokenz": 3}))
    with pytest.raises(CassetteError, match='"response" or an "error"'):
        parse_cassette(_count())
    models = {"format": 1, "name": "m", "kind": "models", "models": [{"displayName": "x"}]}
    with pytest.raises(CassetteError, match=r"models\[0\]\.name: Field required"):
        parse_cassette(models)
    bad_error = _generate("g", "Hi", [{"delay_ms": 1, "error": {"code": 500}}])
    with pytest.raises(CassetteError, match=r"error\.message: Field required"):
        parse_cassette(bad_error)
    two = _generate("g", "Hi", [{"delay_ms": 1, "error": {"code": 500, "message": "x"}}])
    two["chunks"][0]["response"] = _chunk("x")
    with pytest.raises(CassetteError, match="exactly one of"):
        parse_cassette(two)
    close = {"delay_ms": 0, "close": {"code": 1011, "reason": "x"}}
    end = {"delay_ms": 0, "message": {"serverContent": {"turnComplete": True}}}
    live = {
        "format": 1,
        "name": "l",
        "kind": "live",
        "model": LIVE_MODEL,
        "turns": [{"input": "a", "messages": [close, end]}],
    }
    with pytest.raises(CassetteError, match="only be the last message of the last turn"):
        parse_cassette(live)
    live["turns"][0]["messages"] = [end, {**close, "message": {"goAway": {}}}]
    with pytest.raises(CassetteError, match='a "close" message has no "message"'):
        parse_cassette(live)


# -- 5. one scrubber ---------------------------------------------------------------------------


def test_record_mode_and_the_web_chat_share_one_scrubber(monkeypatch):
    assert _secrets.scrub_text is _scrub.scrub
    assert _secrets.scrub_value is _scrub.scrub_value
    assert _secrets.REDACTED == _scrub.REDACTED
    monkeypatch.setenv("GEMINI_API_KEY", "env-key-0123456789")
    value = {
        "a": ["url?key=abcdefgh12345&x=1", "auth_tokens/tok.en-1"],
        "env-key-0123456789": "AIza" + "b" * 35,
        "n": 3,
    }
    red = _scrub.REDACTED
    assert _secrets.scrub_value(value, ["unused-secret"]) == {
        "a": [f"url?key={red}&x=1", f"auth_tokens/{red}"],
        red: red,
        "n": 3,
    }
    # A short value that is not a secret is left alone, in both callers.
    assert _secrets.request_secrets({"x-goog-api-key": "short"}, {}) == set()
    assert _scrub.scrub("a short key", ["short"]) == "a short key"


# -- the drift check knows the new forms ---------------------------------------------------------


def test_verify_cassettes_checks_counts_model_look_ups_and_stream_errors(
    upstream, record, tmp_path
):
    from quickstart_helpers.emulator import verify_cassettes

    proxy = record("new_episodes")
    sdk = client(proxy)
    sdk.models.get(model=MODEL)  # first: a cassette for the model puts it in the catalog
    sdk.models.count_tokens(model=MODEL, contents=STORY)
    with pytest.raises(errors.APIError):
        list(sdk.models.generate_content_stream(model=MODEL, contents=FAILING))
    proxy.stop()
    stored = proxy.recorder.folder
    assert len(list(stored.glob("*.json"))) == 3

    def verify(against: Emulator) -> list[list[str]]:
        drifts = verify_cassettes(
            [stored],
            api_key=FAKE_KEY,
            upstream=against.base_url,
            upstream_ca=against.certificate.cert_file,
        )
        assert [d.problem for d in drifts] == [None] * 3
        return sorted(d.differences for d in drifts)

    assert verify(upstream) == [[], [], []]

    # Another upstream: the count carries a new field, the stream fails with another status.
    changed = tmp_path / "changed-upstream"
    write_upstream(changed)
    write_more(changed)
    story = json.loads((changed / "up_story.json").read_text())
    story["chunks"][-1]["response"]["usageMetadata"]["cachedContentTokenCount"] = 2
    (changed / "up_story.json").write_text(json.dumps(story))
    failing = json.loads((changed / "up_failing.json").read_text())
    failing["chunks"][-1]["error"].update(code=503, status="UNAVAILABLE")
    (changed / "up_failing.json").write_text(json.dumps(failing))
    with Emulator(store=CassetteStore([changed]), pacing="fast") as other:
        assert verify(other) == [
            [],
            ["error: + stream 503 UNAVAILABLE, - stream 500 INTERNAL"],
            ["fields: + cachedContentTokenCount"],
        ]
