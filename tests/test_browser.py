"""End-to-end tests of the chat page in headless Chromium (Debian's ``chromium`` package)
driven by Playwright, against a real server and the emulator in realtime pacing."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from google import genai
from playwright.sync_api import Browser, Page, sync_playwright

from quickstart_helpers.emulator import CassetteStore, Emulator
from quickstart_helpers.web import ChatServer

CHROMIUM = os.environ.get("QUICKSTART_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

STORE = CassetteStore()
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
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}; the browser tests need it. Install "
            "Debian's package: apt-get update && apt-get install -y chromium "
            "(.ci/run does this), or set QUICKSTART_CHROMIUM to another Chromium binary.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
    # Record every text the model bubbles take, with the time, as the DOM changes.
    page.add_init_script(
        """
        window.bubbleStates = [];
        new MutationObserver(() => {
          const bubbles = document.querySelectorAll(".bubble.model");
          if (!bubbles.length) return;
          const text = bubbles[bubbles.length - 1].textContent;
          const states = window.bubbleStates;
          if (!states.length || states[states.length - 1].text !== text) {
            states.push({ text, at: performance.now() });
          }
        }).observe(document, { subtree: true, childList: true, characterData: true });
        """
    )
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
    assert note.startswith("The answer stopped after 2 chunks; the text so far is kept.")
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
    assert page.locator(".bubble.model").get_attribute("data-state") == "failed"
    assert server.stats.started == started


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
