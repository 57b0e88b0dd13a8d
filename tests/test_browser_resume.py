"""The chat page resumes a dropped answer: headless Chromium driven by Playwright, a real
relay asking the Interactions API, the emulator in realtime pacing, and a TCP proxy
between the browser and the relay that cuts the answer's connection.

The browser is found by ``tests/_browser.py`` (the ``browser`` fixture of
``tests/conftest.py``). The proxy is another address for the page, so the relay is
told to accept it (``allowed_hosts``/``allowed_origins``), as behind a reverse proxy."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from google import genai

from quickstart_helpers.emulator import Emulator, InteractionsCassette
from quickstart_helpers.web import SAMPLE_QUESTION, ChatServer

from ._browser import RECORD_BUBBLE_STATES
from ._store import STORE

if TYPE_CHECKING:  # Playwright is imported by the fixtures that start a browser
    from playwright.sync_api import Browser

WEB = next(c for c in STORE.cassettes if c.name == "interactions_web_chat")
assert isinstance(WEB, InteractionsCassette)
ANSWER = WEB.interaction["steps"][-1]["content"][0]["text"]


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 to ``upstream_port`` that aborts the first
    ``/chat/stream`` connection once ``cut_after`` SSE ids have passed (a network drop).

    ``upstream_port`` may be set after the proxy started (before the first connection).

    Attributes:
        stream_requests: The request heads of every ``/chat/stream`` request, in order.
    """

    def __init__(self, cut_after: int, upstream_port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.stream_requests: list[str] = []
        self.cuts = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DroppingProxy:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        state = {"stream": False, "ids": 0}

        async def client_to_upstream() -> None:
            while data := await reader.read(65536):
                if b"GET /chat/stream" in data:
                    state["stream"] = True
                    self.stream_requests.append(data.decode("latin-1"))
                up_writer.write(data)
                await up_writer.drain()

        async def upstream_to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
                if state["stream"] and self.cuts == 0:
                    state["ids"] += data.count(b"id: ")
                    if state["ids"] >= self.cut_after:
                        self.cuts += 1
                        writer.transport.abort()
                        up_writer.transport.abort()
                        return

        tasks = [
            asyncio.ensure_future(client_to_upstream()),
            asyncio.ensure_future(upstream_to_client()),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.transport.abort()


def test_a_dropped_answer_resumes_in_the_bubble_without_gaps_or_repeats(browser: Browser) -> None:
    with (
        Emulator(store=STORE, pacing="realtime") as emulator,
        DroppingProxy(cut_after=5) as proxy,  # "started" and four text events
        ChatServer(
            genai.Client(api_key="test", http_options=emulator.http_options()),
            model=WEB.model,
            api="interactions",
            allowed_hosts=(f"127.0.0.1:{proxy.port}",),
            allowed_origins=(f"http://127.0.0.1:{proxy.port}",),
        ) as server,
    ):
        proxy.upstream_port = server.port
        context = browser.new_context()
        page = context.new_page()
        page.add_init_script(RECORD_BUBBLE_STATES)
        page.goto(f"http://127.0.0.1:{proxy.port}/")
        page.fill("#message", SAMPLE_QUESTION)
        page.click("#send")
        page.wait_for_selector(".bubble.model[data-state=completed]", timeout=30_000)
        bubble = page.locator(".bubble.model")
        assert bubble.evaluate("b => b.textContent") == ANSWER
        assert bubble.get_attribute("data-reconnects") == "1"
        states = [s["text"] for s in page.evaluate("window.bubbleStates") if s["text"]]
        context.close()

    assert proxy.cuts == 1
    first, second = proxy.stream_requests
    assert "last-event-id" not in first.lower()
    resumed_from = next(
        line.split(":", 1)[1].strip()
        for line in second.split("\r\n")
        if line.lower().startswith("last-event-id:")
    )
    assert resumed_from.startswith(WEB.interaction_id + "/")
    # The text only grew, and it was cut mid-answer: the drop happened while streaming.
    for before, after in zip(states, states[1:], strict=False):
        assert after.startswith(before) and len(after) > len(before)
    assert any(0 < len(s) < len(ANSWER) for s in states)
    # The question was asked once; the rest came from resuming the stored interaction.
    methods = [r.method for r in emulator.requests]
    assert methods == ["interactions.create", "interactions.get"]
    assert emulator.requests[1].body["last_event_id"] == resumed_from.partition("/")[2]
