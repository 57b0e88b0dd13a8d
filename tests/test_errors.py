"""Reading the API's errors (``_api_errors``) and the package's one exception tree."""

from __future__ import annotations

import json
import logging

from google.genai import errors

from quickstart_cli import _runner
from quickstart_cli._runner import describe_handled_error
from quickstart_helpers import errors as our_errors
from quickstart_helpers._api_errors import (
    HANDLED_LOGGER,
    explain_api_error,
    is_invalid_api_key,
    is_unrecorded_request,
    record_handled_error,
)
from quickstart_helpers.emulator._protocol import INVALID_KEY_ERROR
from quickstart_helpers.settings import ERROR_LOG_ENV

from ._keys import fake_google_key


def _client_error(code, status, message, details=None):
    body = {"error": {"code": code, "status": status, "message": message}}
    if details:
        body["error"]["details"] = details
    return errors.ClientError(code, body)


def test_invalid_key_is_recognised_and_explained():
    err = errors.ClientError(400, INVALID_KEY_ERROR)
    assert is_invalid_api_key(err)
    text = explain_api_error(err)
    assert "Is your API key valid?" in text
    assert "GEMINI_API_KEY" in text and "aistudio.google.com/apikey" in text


def test_other_400_errors_are_not_key_errors():
    err = _client_error(400, "INVALID_ARGUMENT", "Model does not support image")
    assert not is_invalid_api_key(err)
    assert explain_api_error(err) == (
        "The Gemini API answered 400 INVALID_ARGUMENT: Model does not support image. "
        "Check the request."
    )


def test_not_found_and_rate_limit_give_advice():
    assert explain_api_error(_client_error(404, "NOT_FOUND", "No match.")).endswith(
        "Check the model name."
    )
    unrecorded = _client_error(404, "NOT_FOUND", "No recorded response (cassette) matches x.")
    assert "record this prompt" in explain_api_error(unrecorded)
    assert "wait a moment" in explain_api_error(
        _client_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.")
    )


def test_unrecorded_requests_are_the_emulators_no_cassette_404s():
    assert is_unrecorded_request(
        _client_error(404, "NOT_FOUND", "No recorded response (cassette) matches this request.")
    )
    # The Interactions API's errors carry the status and the JSON body their own way.
    interactions_error = type("NotFoundError", (Exception,), {})()
    interactions_error.status_code = 404
    interactions_error.body = {
        "error": {"code": 404, "message": "No recorded interaction (cassette) matches it."}
    }
    assert is_unrecorded_request(interactions_error)
    # Other 404s (an unknown model), other codes and other exceptions are not.
    assert not is_unrecorded_request(_client_error(404, "NOT_FOUND", "models/x is not found."))
    assert not is_unrecorded_request(
        _client_error(400, "INVALID_ARGUMENT", "No recorded response (cassette) matches.")
    )
    assert not is_unrecorded_request(ConnectionError("No recorded response (cassette)"))


def test_server_errors_suggest_retrying():
    err = errors.ServerError(503, {"error": {"code": 503, "status": "UNAVAILABLE", "message": "x"}})
    assert explain_api_error(err).endswith("Try again in a moment.")


def test_other_exceptions_are_named():
    assert (
        explain_api_error(ConnectionError("reset")) == "The request failed: ConnectionError: reset"
    )


def test_explained_errors_are_recorded_for_the_runner_without_their_message(tmp_path, monkeypatch):
    log = tmp_path / "errors.jsonl"
    leaky = _client_error(403, "PERMISSION_DENIED", f"Key {fake_google_key('SyFAKE-key-')} denied")
    explain_api_error(leaky)  # no runner: nothing is written anywhere
    assert not log.exists()

    monkeypatch.setenv(ERROR_LOG_ENV, str(log))
    logger = logging.getLogger(HANDLED_LOGGER)
    before = list(logger.handlers)
    _runner.log_handled_errors()  # what the runner runs in each kernel
    try:
        explain_api_error(leaky)
        explain_api_error(errors.ClientError(400, INVALID_KEY_ERROR))
        record_handled_error(ConnectionResetError("peer reset"))
    finally:
        logger.handlers[:] = before
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records == [
        {"type": "ClientError", "code": 403, "status": "PERMISSION_DENIED", "reasons": []},
        {
            "type": "ClientError",
            "code": 400,
            "status": "INVALID_ARGUMENT",
            "reasons": ["API_KEY_INVALID"],
        },
        {"type": "ConnectionResetError"},
    ]
    assert "AIza" not in log.read_text()
    assert [describe_handled_error(r) for r in records] == [
        "ClientError 403 PERMISSION_DENIED",
        "ClientError 400 INVALID_ARGUMENT (API_KEY_INVALID)",
        "ConnectionResetError",
    ]


def test_an_error_body_the_sdk_left_unparsed_is_read_from_its_json() -> None:
    # The API labels an error before the first chunk of a stream text/event-stream; the
    # SDK's aiohttp transport then gives the whole body as the message.
    body = {
        "error": {
            "code": 404,
            "message": "No recorded response (cassette) matches x.",
            "status": "NOT_FOUND",
        }
    }
    err = errors.ClientError(404, {"message": json.dumps(body, indent=2), "status": "Not Found"})
    assert is_unrecorded_request(err)
    assert explain_api_error(err).startswith(
        "The Gemini API answered 404 NOT_FOUND: No recorded response (cassette) matches x."
    )


def test_every_exception_of_the_package_is_one_tree_a_learner_can_catch():
    values = vars(our_errors).values()
    classes = [c for c in values if isinstance(c, type) and issubclass(c, BaseException)]
    assert all(issubclass(c, our_errors.QuickstartError) for c in classes)
    assert len(classes) >= 10
    try:
        raise our_errors.CassetteError("bad cassette")
    except our_errors.QuickstartError as err:  # and still the ValueError it was
        assert isinstance(err, ValueError)
