"""``flood``: one client never stalls another (issue 23).

A recorded stream's time to its first chunk (REST SSE, a new Live session's first message,
the web relay's first event) while another client sends a 4 MB generate body of small
parts (Live: one turn of 50,000 parts) or a 60 MB prompt, and while 40 unmatched
2,000-character prompts arrive at once; the baseline is the same stream with no flood.
Emulator, relay and clients are threads of one process, as in a notebook, on 127.0.0.1 over
TLS, fast pacing; each figure is the median of the probes started as the flood runs (3 to
10; the 60 MB prompt: every 50 ms), in each of ``repeats`` rounds. Also the process's RSS
1.5 s after the 4 MB bodies against before them. The scenarios are the behaviour tests'
(``tests/test_emulator_flood.py``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import psutil
from google import genai

from benchmarks.registry import Options, Result, benchmark
from quickstart_helpers.emulator import CassetteStore, Emulator, parse_cassette
from quickstart_helpers.emulator._live_wire import LIVE_ROUTE
from quickstart_helpers.emulator._matching import prompt_text
from quickstart_helpers.web import ChatServer

MODEL = "gemini-3.8-flash"
PROMPT = "Say hi."
LIVE = "live_narration"
Flood = Callable[[Emulator], Awaitable[tuple[list[float], Any]]]


def contents(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "parts": [{"text": text}]}]


def unmatched(i: int) -> str:
    """A 2,000-character prompt no cassette records, in words like the recorded ones'."""
    words = "why does the tide rise twice a day explain how the moon pulls water write a poem"
    return " ".join(words.split()[(i + j * 7) % 17] for j in range(600))[:2000]


def flood_emulator() -> Emulator:
    """A fast emulator with the shipped cassettes and ``PROMPT`` recorded (not started)."""
    store = CassetteStore()
    chunk = {"content": {"role": "model", "parts": [{"text": "Hi."}]}, "finishReason": "STOP"}
    cassette = {"format": 1, "kind": "generate", "name": "flood_probe", "model": MODEL}
    cassette["request"] = {"contents": contents(PROMPT)}
    cassette["chunks"] = [{"delay_ms": 0, "response": {"candidates": [chunk]}}]
    store.add(parse_cassette(cassette))
    return Emulator(store, pacing="fast")


def _session(emu: Emulator | None = None) -> aiohttp.ClientSession:
    ssl = emu.certificate.client_context() if emu and emu.certificate else None
    connector = aiohttp.TCPConnector(ssl=ssl, limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    return aiohttp.ClientSession(emu and emu.base_url, connector=connector, timeout=timeout)


async def _post(session: aiohttp.ClientSession, data: bytes | str) -> tuple[int, str]:
    url = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    headers = {"x-goog-api-key": "k", "Content-Type": "application/json"}
    async with session.post(url, data=data, headers=headers) as response:
        return response.status, await response.text()


async def _first_line(response: aiohttp.ClientResponse, started: float) -> float:
    async for line in response.content:
        if line.startswith(b"data:"):
            return time.perf_counter() - started
    raise RuntimeError(f"no event from {response.url}")


async def rest_first_chunk(session: aiohttp.ClientSession) -> float:
    """Seconds to the first SSE event of the recorded stream."""
    started = time.perf_counter()
    url = f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    headers = {"x-goog-api-key": "k", "Content-Type": "application/json"}
    data = json.dumps({"contents": contents(PROMPT)})
    async with session.post(url, data=data, headers=headers) as response:
        return await _first_line(response, started)


def _live_cassette(emu: Emulator) -> Any:
    return next(c for c in emu.store.cassettes if c.name == LIVE)


async def _live(session: aiohttp.ClientSession, emu: Emulator) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(LIVE_ROUTE.format(version="v1beta") + "?key=k")
    await ws.send_str(json.dumps({"setup": _live_cassette(emu).setup}))
    if "setupComplete" not in json.loads((await ws.receive()).data):
        raise RuntimeError("no setupComplete")
    return ws


async def live_first_message(session: aiohttp.ClientSession, emu: Emulator) -> float:
    """Seconds from connecting to the first message of a recorded turn."""
    started = time.perf_counter()
    ws = await _live(session, emu)
    await ws.send_str(json.dumps({"realtimeInput": {"text": _live_cassette(emu).turns[0].input}}))
    message = await ws.receive()
    elapsed = time.perf_counter() - started
    await ws.close()
    if message.type != aiohttp.WSMsgType.BINARY:
        raise RuntimeError(f"the recorded turn got {message}")
    return elapsed


async def live_close(session: aiohttp.ClientSession, emu: Emulator, turn: Any) -> Any:
    """Send one turn in a new session; return the message that ends it (a close)."""
    ws = await _live(session, emu)
    await ws.send_str(json.dumps(turn))
    return await ws.receive()


async def _while(
    flood: Awaitable[Any],
    probe: Callable[[], Awaitable[float]],
    after: float = 0.05,
    every: float = 0.0,
    most: int = 10,
) -> tuple[list[float], Any]:
    """Times of probes started ``after`` seconds into ``flood``, then ``every`` seconds until
    it ends (3 to ``most``), and what ``flood`` returns."""
    task = asyncio.ensure_future(flood)
    await asyncio.sleep(after)
    times = [await probe() for _ in range(3)]
    while not task.done() and len(times) < most:
        await asyncio.sleep(every)
        times.append(await probe())
    return times, await task


async def big_body(emu: Emulator) -> tuple[list[float], Any]:
    """A 4 MB body of 246,000 small text parts; its answer."""
    part = {"text": "ab "}
    body = json.dumps({"contents": [{"role": "user", "parts": [part] * (4_194_304 // 17)}]})
    async with _session(emu) as session, _session(emu) as other:
        return await _while(_post(other, body), lambda: rest_first_chunk(session), 0.2)


async def huge_prompt(emu: Emulator) -> tuple[list[float], Any]:
    """A 60 MB prompt (one text part, near the 64 MiB limit), sent from a thread with its own
    loop (writing it over TLS would stall this one); its answer."""
    body = json.dumps({"contents": contents("ab " * (20 << 20))})

    async def send() -> tuple[int, str]:
        async with _session(emu) as other:
            return await _post(other, body)

    async with _session(emu) as session:
        flood = asyncio.to_thread(asyncio.run, send())
        return await _while(flood, lambda: rest_first_chunk(session), 0.3, 0.05, 200)


async def unmatched_prompts(emu: Emulator) -> tuple[list[float], Any]:
    """40 unmatched 2,000-character prompts at once; their answers."""
    bodies = [json.dumps({"contents": contents(unmatched(i))}) for i in range(40)]
    async with _session(emu) as session, _session(emu) as other:
        flood = asyncio.gather(*(_post(other, b) for b in bodies))
        return await _while(flood, lambda: rest_first_chunk(session))


async def big_live_turn(emu: Emulator) -> tuple[list[float], Any]:
    """A Live turn of 50,000 parts in another session; how that session closed."""
    turn = {"role": "user", "parts": [{"text": "ab "}] * 50_000}
    message = {"clientContent": {"turns": [turn], "turnComplete": True}}
    async with _session(emu) as session, _session(emu) as other:
        ws = await _live(other, emu)
        await ws.send_str(json.dumps(message))
        return await _while(ws.receive(), lambda: live_first_message(session, emu))


async def unmatched_live_turns(emu: Emulator) -> tuple[list[float], Any]:
    """40 sessions each sending an unmatched 2,000-character turn; how they closed."""
    turns = [{"realtimeInput": {"text": unmatched(i)}} for i in range(40)]
    async with _session(emu) as session, _session(emu) as other:
        flood = asyncio.gather(*(live_close(other, emu, t) for t in turns))
        return await _while(flood, lambda: live_first_message(session, emu))


async def relay_questions(emu: Emulator, count: int = 40) -> tuple[list[float], Any]:
    """``count`` unrecorded questions to the web relay's ``/chat/stream`` at once, while
    another user asks a recorded one (``web_sse_chat``); the relay runs on ``emu``."""
    recorded = next(c for c in emu.store.cassettes if c.name == "web_sse_chat")
    question = prompt_text(recorded.request["contents"])  # type: ignore[union-attr]
    client = genai.Client(api_key="k", http_options=emu.http_options())
    with ChatServer(client, model=recorded.model) as relay:  # type: ignore[union-attr]

        async def first_event(session: aiohttp.ClientSession, message: str) -> float:
            url, started = relay.url + "chat/stream", time.perf_counter()
            async with session.get(url, params={"message": message}) as response:
                return await _first_line(response, started)

        async with _session() as session:
            flood = asyncio.gather(*(first_event(session, unmatched(i)) for i in range(count)))
            return await _while(flood, lambda: first_event(session, question))


@benchmark("flood", "A recorded stream's first chunk during floods vs with no flood")
def bench_flood(options: Options) -> list[Result]:
    rounds = 1 if options.quick else max(3, options.repeats)
    process, switch_interval = psutil.Process(), sys.getswitchinterval()
    with flood_emulator() as emu:

        async def quiet() -> tuple[float, float]:
            async with _session(emu) as session:
                rest = [await rest_first_chunk(session) for _ in range(20)]
                live = [await live_first_message(session, emu) for _ in range(20)]
            return statistics.median(rest), statistics.median(live)

        rest, live = asyncio.run(quiet())
        relay = statistics.median(asyncio.run(relay_questions(emu, 0))[0])
        rss_before = process.memory_info().rss
        floods: dict[str, tuple[Flood, float]] = {
            "REST, during a 4 MB body of 246,000 parts": (big_body, rest),
            "REST, during a 60 MB prompt": (huge_prompt, rest),
            "REST, 40 unmatched 2,000-character prompts": (unmatched_prompts, rest),
            "Live, during a turn of 50,000 parts": (big_live_turn, live),
            "Live, 40 unmatched 2,000-character turns": (unmatched_live_turns, live),
            "relay, 40 unrecorded questions": (relay_questions, relay),
        }
        results = []
        for name, (flood, quiet_s) in floods.items():
            times = [statistics.median(asyncio.run(flood(emu))[0]) for _ in range(rounds)]
            ms = statistics.median(times) * 1000, quiet_s * 1000
            results.append(Result("flood", f"first chunk, {name}", *ms, "ms", None, False, "quiet"))
            if flood is big_body:  # once the emulator has given the memory back (1 s)
                time.sleep(1.5)
                rss_after = process.memory_info().rss
    sys.setswitchinterval(switch_interval)  # as before the emulator's workers lowered it
    rss = rss_after / 2**20, rss_before / 2**20
    results.append(Result("flood", "RSS after the 4 MB body", *rss, "MiB", 1.5, False, "before"))
    return results
