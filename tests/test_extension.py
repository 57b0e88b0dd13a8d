"""``%load_ext quickstart_helpers`` and ``quickstart_helpers.setup()``: the one set-up line.

Each case runs in a fresh interpreter (the switch changes the process's environment and
starts the shared emulator), from an empty folder with no key anywhere unless it adds one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from ._keys import fake_google_key

KEY = fake_google_key("SyEXTENSION-test-")
OFFLINE_LINE = (
    "Mode: offline. No API key found, so a local emulator replays recorded responses; "
    "set GEMINI_API_KEY to go live."
)
#: A prompt the shipped cassettes answer.
PROMPT = "In three short sentences, explain why bread dough has to rise before it is baked."


def run(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter in ``tmp_path``, with no key but those in ``env``."""
    names = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "SSL_CERT_FILE")
    clean = {k: v for k, v in os.environ.items() if k not in names and k != "QUICKSTART_MODE"}
    clean.update(QUICKSTART_PACING="fast", **env)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_with_a_key_it_is_live_starts_no_emulator_and_never_prints_the_key(tmp_path):
    result = run(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.instance().run_line_magic("load_ext", "quickstart_helpers")
        print("emulator imported:", "quickstart_helpers.emulator" in sys.modules)
        """,
        tmp_path,
        GEMINI_API_KEY=KEY,
    )
    lines = result.stdout.splitlines()
    assert lines == [
        "Mode: live. Requests go to the Gemini API with your key.",
        "emulator imported: False",
    ]
    assert KEY not in result.stdout + result.stderr


def test_a_key_in_dotenv_is_put_where_the_sdk_reads_it(tmp_path):
    (tmp_path / ".env").write_text(f"GEMINI_API_KEY={KEY}\n")
    result = run(
        """
        import os
        import quickstart_helpers
        from google import genai

        assert quickstart_helpers.setup() == "live"
        assert genai.Client()._api_client.api_key == os.environ["GEMINI_API_KEY"]
        assert "GOOGLE_GEMINI_BASE_URL" not in os.environ and "SSL_CERT_FILE" not in os.environ
        """,
        tmp_path,
    )
    assert result.stdout.count("Mode: live") == 1
    assert KEY not in result.stdout + result.stderr


def test_a_colab_secret_is_used_first(tmp_path):
    result = run(
        f"""
        import os, sys, types
        secrets = {{"GEMINI_API_KEY": "{KEY}"}}
        colab = types.ModuleType("google.colab")
        colab.userdata = types.SimpleNamespace(get=secrets.__getitem__)
        sys.modules["google.colab"] = colab
        import quickstart_helpers

        assert quickstart_helpers.setup() == "live"
        assert os.environ["GEMINI_API_KEY"] == secrets["GEMINI_API_KEY"]
        """,
        tmp_path,
        GOOGLE_API_KEY="",
    )
    assert result.stdout.splitlines() == [
        "Mode: live. Requests go to the Gemini API with your key."
    ]
    assert KEY not in result.stdout + result.stderr


def test_without_a_key_every_api_reaches_the_emulator_through_the_sdks_variables(tmp_path):
    result = run(
        f"""
        import asyncio
        from google import genai
        from google.genai import types
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.instance().run_line_magic("load_ext", "quickstart_helpers")
        client = genai.Client()
        text = "".join(c.text or "" for c in client.models.generate_content_stream(
            model="gemini-3.8-flash", contents={PROMPT!r}))
        print("sse", len(text) > 100)

        async def live():
            config = types.LiveConnectConfig(response_modalities=["AUDIO"])
            async with client.aio.live.connect(
                model="gemini-3.1-flash-live-preview", config=config
            ) as session:
                return session is not None

        print("live", asyncio.run(live()))
        try:
            client.interactions.create(model="gemini-3.8-flash", input="unrecorded", stream=True)
        except Exception as err:  # the emulator's 404: it was reached and verified
            print("interactions", getattr(err, "status_code", None))

        async def interactions():
            try:
                await client.aio.interactions.create(model="gemini-3.8-flash", input="unrecorded")
            except Exception as err:
                return getattr(err, "status_code", None)

        print("aio interactions", asyncio.run(interactions()))
        """,
        tmp_path,
    )
    assert result.stdout.splitlines() == [
        OFFLINE_LINE,
        "sse True",
        "live True",
        "interactions 404",
        "aio interactions 404",
    ]


def test_other_https_still_verifies_certificates_after_it(tmp_path):
    """Stands in for ``%pip``: a server whose certificate comes from another authority is
    still refused, while the same server is accepted once its authority is trusted."""
    result = run(
        """
        import ssl, threading, urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import trustme
        import quickstart_helpers

        quickstart_helpers.setup()
        other_ca = trustme.CA()
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        other_ca.issue_cert("127.0.0.1").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"https://127.0.0.1:{server.server_port}/"
        try:
            urllib.request.urlopen(url, timeout=10)
        except urllib.error.URLError as err:
            print("refused:", isinstance(err.reason, ssl.SSLCertVerificationError))
        trusting = ssl.create_default_context()
        other_ca.configure_trust(trusting)
        try:
            urllib.request.urlopen(url, timeout=10, context=trusting)
        except urllib.error.HTTPError as err:  # TLS passed; the bare handler answers 501
            print("trusted:", err.code)
        server.shutdown()
        """,
        tmp_path,
    )
    assert result.stdout.splitlines() == [OFFLINE_LINE, "refused: True", "trusted: 501"]


def test_an_api_error_in_a_cell_shows_the_message_once_with_one_line_of_advice(tmp_path):
    result = run(
        """
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "quickstart_helpers")
        outcome = shell.run_cell(
            "from google import genai\\n"
            "client = genai.Client(api_key='invalid')\\n"
            "client.models.generate_content("
            "model='gemini-3.8-flash', contents='Hi')"
        )
        print("failed:", type(outcome.error_in_exec).__name__)
        """,
        tmp_path,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == OFFLINE_LINE and lines[-1] == "failed: ClientError"
    shown = "\n".join(lines[1:-1])
    assert shown.count("API key not valid") == 1, shown
    assert shown.splitlines() == [
        "ClientError: 400 INVALID_ARGUMENT: API key not valid. Please pass a valid API key.",
        "Is your API key valid? Set GEMINI_API_KEY (environment, .env or Colab secret) to a key "
        "from https://aistudio.google.com/apikey.",
    ]


def test_quickstart_mode_offline_ignores_a_key(tmp_path):
    result = run(
        """
        import os
        import quickstart_helpers

        assert quickstart_helpers.setup() == "offline"
        assert os.environ["GEMINI_API_KEY"] == "offline-emulator"
        """,
        tmp_path,
        GEMINI_API_KEY=KEY,
        QUICKSTART_MODE="offline",
    )
    assert result.stdout.splitlines() == [OFFLINE_LINE]


def test_record_mode_records_what_no_cassette_answers(tmp_path):
    from quickstart_helpers.emulator import Emulator

    cassettes = tmp_path / "mine"
    with Emulator(pacing="fast") as upstream:  # stands in for the live API
        result = run(
            f"""
            import quickstart_helpers
            from google import genai

            assert quickstart_helpers.setup() == "record"
            client = genai.Client()
            chunks = client.models.generate_content_stream(
                model="gemini-3.8-flash", contents={PROMPT!r})
            print(len("".join(c.text or "" for c in chunks)) > 100)
            """,
            tmp_path,
            GEMINI_API_KEY=KEY,
            QUICKSTART_MODE="record",
            QUICKSTART_RECORD_MODE="once",
            QUICKSTART_CASSETTES=str(cassettes),
            QUICKSTART_UPSTREAM=upstream.base_url,
            QUICKSTART_UPSTREAM_CA=str(upstream.certificate.cert_file),
        )
    assert result.stdout.splitlines() == [
        f"Mode: record (once). What {cassettes} does not answer is recorded there.",
        "True",
    ]
    recorded = list(cassettes.rglob("*.json"))
    assert len(recorded) == 1 and KEY not in recorded[0].read_text()


def test_a_key_in_google_api_key_stays_the_only_key_the_sdk_sees(tmp_path):
    result = run(
        """
        import os
        import quickstart_helpers
        from google import genai

        assert quickstart_helpers.setup() == "live"
        assert "GEMINI_API_KEY" not in os.environ  # no "both keys are set" warning
        assert genai.Client()._api_client.api_key == os.environ["GOOGLE_API_KEY"]
        """,
        tmp_path,
        GOOGLE_API_KEY=KEY,
    )
    assert KEY not in result.stdout + result.stderr
