"""Record mode keeps key-shaped strings out of a cassette's file name and ``name`` (issue 23)."""

from __future__ import annotations

import pytest
from google.genai import errors

from quickstart_helpers.emulator import load_cassette
from tests.test_record import MODEL, client, record, upstream  # noqa: F401 - fixtures

from ._keys import fake_google_key


def test_a_key_in_a_recorded_prompt_stays_out_of_the_name(upstream, record) -> None:  # noqa: F811
    key = fake_google_key("Name_Test-ZZ")
    proxy = record("once")
    with pytest.raises(errors.ClientError):  # the upstream has no answer: its 404 is recorded
        client(proxy).models.generate_content(model=MODEL, contents=f"Is {key} my key?")
    (path,) = proxy.recorder.folder.glob("*.json")
    cassette = load_cassette(path)
    assert cassette.name == path.stem
    assert "_is-redacted-my-key_" in cassette.name
    folded = key.lower().replace("_", "-")
    for text in (path.name.lower(), path.read_text("utf-8").lower()):
        assert folded[4:14] not in text and key[:14].lower() not in text
