"""End-to-end tests of the chat page in headless Chromium driven by Playwright, against a
real server and the emulator in realtime pacing.

The browser is found by ``tests/_browser.py`` (``QUICKSTART_CHROMIUM``, the system's
Chromium or Chrome, then Playwright's own Chromium, installed when missing); without one
these tests are skipped with a line saying how to enable them, and fail under ``CI=true``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from google import genai

from quickstart_helpers.emulator import Emulator
from quickstart_helpers.web import SAMPLE_QUESTION, UNRECORDED_MESSAGE, ChatServer

from ._browser import RECORD_BUBBLE_STATES
from ._store import STORE

if TYPE_CHECKING:  # Playwright is imported by the fixtures that start a browser
    from playwright.sync_api import Browser, Page

#: The model the web cassettes were recorded with (the server asks it, not the default).
WEB_MODEL = next(c.model for c in STORE.cassettes if c.name == "web_sse_chat")


def cassette(name: str) -> tuple[str, list[str]]:
    """Return a cassette's prompt and the text of each of its chunks."""
    (found,) = [c for c in STORE.cassettes if c.name == name]
    prompt = found.request["contents"][-1]["parts"][0]["text"]
    chunks = [
        "".join(p.get("text", "") for p in c.response["candidates"][0]["content"]["parts"])
        for c in found.chunks
        if c.response is not None
    ]
    return prompt, chunks


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    # Realtime pacing: the recorded delays (a few hundred ms) let the page show each chunk.
    emu = Emulator(pacing="realtime").start()
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def server(emulator: Emulator) -> Iterator[ChatServer]:
    client = genai.Client(api_key="test", http_options=emulator.http_options())
    with ChatServer(client, model=WEB_MODEL) as srv:
        yield srv


@pytest.fixture()
def page(browser: Browser, server: ChatServer) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script(RECORD_BUBBLE_STATES)
    page.goto(server.url)
    yield page
    context.close()


def ask(page: Page, question: str) -> None:
    page.fill("#message", question)
    page.click("#send")


def test_bubble_grows_chunk_by_chunk(page: Page) -> None:
    prompt, chunks = cassette("web_sse_chat")
    full = "".join(chunks)
    assert any("\n" in c for c in chunks)
    ask(page, prompt)
    page.wait_for_selector(".bubble.model[data-state=completed]", timeout=20_000)

    bubble = page.locator(".bubble.model")
    assert bubble.evaluate("b => b.textContent") == full
    assert page.locator(".bubble.user").inner_text() == prompt
    assert bubble.get_attribute("data-chunks") == str(len(chunks))
    assert page.inner_text("#status") == f"Done: {len(chunks)} chunks."

    states = page.evaluate("window.bubbleStates")
    texts = [s["text"] for s in states if s["text"]]
    intermediate = texts[:-1]
    assert texts[-1] == full
    assert len(intermediate) >= 3, texts
    # Each state extends the one before: the bubble grew, it was not redrawn.
    for before, after in zip(texts, texts[1:], strict=False):
        assert after.startswith(before) and len(after) > len(before)
    # The states were seen over time, as the chunks arrived, not all at once at the end.
    seen = [s["at"] for s in states if s["text"]]
    assert seen[-1] - seen[0] > 500


def test_tricky_chunks_reach_the_bubble_intact(page: Page) -> None:
    prompt, chunks = cassette("web_sse_framing")
    ask(page, prompt)
    page.wait_for_selector(".bubble.model[data-state=completed]", timeout=20_000)
    expected = "".join(chunks).replace("\r\n", "\n").replace("\r", "\n")
    assert "[DONE]" in expected and "\u2028" in expected
    assert page.locator(".bubble.model").evaluate("b => b.textContent") == expected
    assert page.locator(".bubble.model").get_attribute("data-chunks") == str(len(chunks))


def test_model_error_keeps_the_partial_answer(page: Page) -> None:
    prompt, chunks = cassette("web_sse_broken")
    ask(page, prompt)
    page.wait_for_selector(".bubble.model[data-state=failed]", timeout=20_000)
    assert page.locator(".bubble.model").evaluate("b => b.textContent") == "".join(chunks)
    note = page.inner_text(".note")
    assert note.startswith(
        f"The answer stopped after {len(chunks)} chunks; the text so far is kept."
    )
    # The page closed its EventSource: the question is not asked again.
    time.sleep(4)  # longer than EventSource's default reconnection delay (3 s)
    assert page.locator(".bubble.model").evaluate("b => b.textContent") == "".join(chunks)
    assert page.locator(".note").count() == 1


def test_over_long_message_shows_the_servers_reason(page: Page, server: ChatServer) -> None:
    started = server.stats.started
    ask(page, "x" * 4001)
    page.wait_for_selector(".note", timeout=20_000)
    assert page.inner_text(".note") == (
        "The message has 4001 characters; the limit is 4000. Shorten it and send it again."
    )
    assert page.locator(".bubble.model").count() == 0  # no empty answer bubble
    assert page.inner_text("#status") == "The question was not sent."
    assert server.stats.started == started


def test_an_unrecorded_question_shows_one_short_message(page: Page, server: ChatServer) -> None:
    """Offline, a question no cassette answers: the relay's short reason in one note,
    in place of an empty answer bubble, and the page is ready for the next question."""
    failed = server.stats.failed
    ask(page, "Why is the sea salty?")
    page.wait_for_selector(".note", timeout=20_000)
    page.wait_for_function("() => !document.getElementById('send').disabled")
    assert page.locator(".note").count() == 1
    assert page.inner_text(".note") == UNRECORDED_MESSAGE
    assert page.locator(".bubble.model").count() == 0
    assert page.inner_text(".bubble.user") == "Why is the sea salty?"
    assert page.inner_text("#status") == "No answer."
    # A short note: at most three lines at the page's width, not a wall of red.
    lines = page.evaluate(
        """() => {
          const range = document.createRange();
          range.selectNodeContents(document.querySelector(".note"));
          return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        }"""
    )
    assert lines <= 3
    assert server.stats.failed == failed + 1
    # The sample question it names is answered.
    ask(page, SAMPLE_QUESTION)
    page.wait_for_selector(".bubble.model[data-state=completed]", timeout=20_000)
    assert page.locator(".note").count() == 1


def test_closing_the_page_cancels_the_model_stream(page: Page, server: ChatServer) -> None:
    prompt, chunks = cassette("web_sse_slow")
    cancelled = server.stats.cancelled
    ask(page, prompt)
    page.wait_for_function(
        "t => document.querySelector('.bubble.model')?.textContent === t", arg=chunks[0]
    )
    assert server.stats.active == 1
    page.close()
    deadline = time.monotonic() + 5
    while server.stats.cancelled == cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stats.cancelled == cancelled + 1
    assert server.stats.active == 0


def test_another_sites_page_cannot_make_the_chat_call_the_model(
    browser: Browser, server: ChatServer
) -> None:
    """A page of another origin fires what a browser lets any page send without asking:
    an <img> GET, a no-cors text/plain POST and a form-like POST, plus a JSON POST (which
    needs a CORS preflight). None reaches the model."""
    from aiohttp import web

    from quickstart_helpers._background import BackgroundServer

    target = server.url
    attack = f"""<!doctype html><html><body>
      <img id="img" src="{target}chat/stream?message=spend+the+key">
      <script>
        window.results = Promise.allSettled([
          fetch("{target}chat", {{method: "POST", mode: "no-cors",
            headers: {{"Content-Type": "text/plain"}}, body: '{{"message": "spend"}}'}}),
          fetch("{target}chat", {{method: "POST", mode: "no-cors",
            headers: {{"Content-Type": "application/x-www-form-urlencoded"}},
            body: "message=spend"}}),
          fetch("{target}chat", {{method: "POST",
            headers: {{"Content-Type": "application/json"}}, body: '{{"message": "spend"}}'}})
            .then((r) => r.status),
          new Promise((done) => {{
            const img = document.getElementById("img");
            if (img.complete) done("img"); else img.onerror = img.onload = () => done("img");
          }}),
        ]).then((all) => all.map((r) => r.status));
      </script></body></html>"""

    def make_app() -> web.Application:
        app = web.Application()

        async def page_handler(request: web.Request) -> web.Response:
            return web.Response(text=attack, content_type="text/html")

        app.router.add_get("/", page_handler)
        return app

    other = BackgroundServer(make_app, name="another site", access_log=None).start()
    before = server.stats.started
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{other.port}/")
        statuses = page.evaluate("window.results")
    finally:
        context.close()
        other.stop()
    # The opaque no-cors requests "succeed" from the page's view, but the server
    # refused them; the JSON POST is stopped by its preflight (a TypeError).
    assert statuses == ["fulfilled", "fulfilled", "rejected", "fulfilled"]
    time.sleep(0.5)  # let any request that did get through start its turn
    assert server.stats.started == before
