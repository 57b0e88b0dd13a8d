"""The real SDK streams the storyboard (text and images interleaved) from the emulator."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import json
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from quickstart_helpers.emulator import Emulator
from quickstart_helpers.emulator._protocol import IMAGE_OUTPUT_MODELS
from quickstart_helpers.parts import IMAGE_EXTENSIONS, stream_parts

ROOT = Path(__file__).resolve().parent.parent
CASSETTE = ROOT / "assets" / "cassettes" / "images" / "storyboard_stream.json"
NOTEBOOK = ROOT / "notebooks" / "03_text_and_image_streaming.ipynb"
MODEL = "gemini-3.1-flash-lite-image"
CONFIG = types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])


def _source() -> dict:
    """The storyboard's source, ``scripts/recordings/images.toml`` (read by scripts/author.py)."""
    spec = importlib.util.spec_from_file_location("author", ROOT / "scripts" / "author.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source("images")


SOURCE = _source()
PROMPT = SOURCE["prompt"]


def recorded_parts() -> list[dict]:
    """Every part of every chunk of the cassette, in order, straight from the JSON."""
    cassette = json.loads(CASSETTE.read_text("utf-8"))
    return [
        part
        for chunk in cassette["chunks"]
        for part in chunk["response"]["candidates"][0]["content"]["parts"]
    ]


def recorded_images() -> list[tuple[str, bytes]]:
    return [
        (p["inlineData"]["mimeType"], base64.b64decode(p["inlineData"]["data"]))
        for p in recorded_parts()
        if "inlineData" in p
    ]


@pytest.fixture(scope="module")
def emulator():
    emu = Emulator(pacing="fast").start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator) -> genai.Client:
    return genai.Client(api_key="test", http_options=emulator.http_options())


def test_sdk_receives_every_part_in_order(client) -> None:
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=CONFIG)
    by_chunk = [chunk.candidates[0].content.parts for chunk in stream]
    received = [p for parts in by_chunk for p in parts]
    expected = recorded_parts()
    assert [p.text for p in received] == [p.get("text") for p in expected]
    images = [(p.inline_data.mime_type, p.inline_data.data) for p in received if p.inline_data]
    assert images == recorded_images()
    # Some chunks carry a caption and an image together, in both orders.
    kinds = [["text" if p.text is not None else "image" for p in parts] for parts in by_chunk]
    assert ["text", "image"] in kinds
    assert ["image", "text"] in kinds


def test_saved_images_reopen_with_the_recorded_size(client, tmp_path) -> None:
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=CONFIG)
    summary = stream_parts(stream, folder=tmp_path, stem="storyboard", show=False)
    images = recorded_images()
    assert [p.name for p in summary.files] == [
        f"storyboard_{i}.{IMAGE_EXTENSIONS[mime]}" for i, (mime, _) in enumerate(images, 1)
    ]
    for path, (mime, data) in zip(summary.files, images, strict=True):
        assert path.read_bytes() == data
        with Image.open(path) as saved, Image.open(io.BytesIO(data)) as recorded:
            assert saved.format == {"image/png": "PNG", "image/jpeg": "JPEG"}[mime]
            assert saved.size == recorded.size
            saved.load()  # decodes fully: the file is a complete image


def test_summary_counts_what_the_cassette_holds(client, tmp_path) -> None:
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=CONFIG)
    summary = stream_parts(stream, folder=tmp_path, show=False)
    parts = recorded_parts()
    images = recorded_images()
    texts = [p["text"] for p in parts if "text" in p]
    cassette = json.loads(CASSETTE.read_text("utf-8"))
    assert summary.chunks == len(cassette["chunks"])
    assert summary.text_parts == len(texts)
    assert summary.text == "".join(texts)
    assert summary.image_parts == len(images)
    assert summary.image_bytes == sum(len(d) for _, d in images)
    mimes: dict[str, int] = {}
    for mime, _ in images:
        mimes[mime] = mimes.get(mime, 0) + 1
    assert summary.mime_types == mimes
    assert summary.finish_reason == "STOP"


def test_async_client_streams_the_same_parts(emulator, tmp_path) -> None:
    async def run():
        client = genai.Client(api_key="test", http_options=emulator.http_options())
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents=PROMPT, config=CONFIG
        )
        return [chunk async for chunk in stream]

    summary = stream_parts(asyncio.run(run()), folder=tmp_path, show=False)
    assert [p.read_bytes() for p in summary.files] == [d for _, d in recorded_images()]


@pytest.mark.parametrize("model", ["gemini-3.8-flash", "gemini-2.5-pro"])
@pytest.mark.parametrize("modalities", [["TEXT", "IMAGE"], ["IMAGE"]])
def test_model_without_image_output_gets_the_api_error(client, model, modalities) -> None:
    config = types.GenerateContentConfig(response_modalities=modalities)
    with pytest.raises(errors.ClientError) as caught:
        for _ in client.models.generate_content_stream(model=model, contents=PROMPT, config=config):
            pass
    err = caught.value
    assert (err.code, err.status) == (400, "INVALID_ARGUMENT")
    assert err.message == "Model does not support the requested response modalities: image"


def test_non_streaming_call_gets_the_same_error(client) -> None:
    with pytest.raises(errors.ClientError, match="response modalities: image"):
        client.models.generate_content(model="gemini-3.8-flash", contents=PROMPT, config=CONFIG)


def test_check_request_only_refuses_image_output_from_text_models() -> None:
    from quickstart_helpers.emulator._http import check_request

    image_body = {"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}
    text_body = {"generationConfig": {"responseModalities": ["TEXT"]}}
    assert check_request("gemini-3.8-flash", image_body) is not None
    assert (
        check_request("gemini-3.8-flash", {"generationConfig": {"responseModalities": ["image"]}})
        is not None
    )
    assert check_request("gemini-3.8-flash", text_body) is None
    assert check_request("gemini-3.8-flash", {}) is None
    for model in IMAGE_OUTPUT_MODELS:
        assert check_request(model, image_body) is None
    assert MODEL in IMAGE_OUTPUT_MODELS


def test_request_without_image_modality_does_not_match_the_cassette(client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    assert caught.value.code == 404
    assert "storyboard_stream" in caught.value.message


# -- the cassette's images -----------------------------------------------------------------
def test_cassette_images_are_real_illustrations_of_a_realistic_size() -> None:
    images = recorded_images()
    mimes = [mime for mime, _ in images]
    assert "image/jpeg" in mimes
    assert set(mimes) == {"image/png", "image/jpeg"}
    assert sum(len(data) for _, data in images) < 2_000_000  # the repository stays small
    for mime, data in images:
        assert 100_000 < len(data) < SOURCE["max_bytes"]  # what a generated 4:3 picture weighs
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (1024, 768)  # the API's 4:3 size
            assert image.format == {"image/png": "PNG", "image/jpeg": "JPEG"}[mime]
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
            # A drawing, not a blank square: many colours, none covering most of it.
            assert len(colours) > 20
            assert max(count for count, _ in colours) < 0.6 * image.width * image.height


def test_notebook_prompt_is_the_cassette_prompt() -> None:
    notebook = json.loads(NOTEBOOK.read_text("utf-8"))
    namespace: dict = {}
    source = next(
        "".join(c["source"]) for c in notebook["cells"] if "STORYBOARD = " in "".join(c["source"])
    )
    exec(source, namespace)  # noqa: S102 - our own notebook cell, defines STORYBOARD
    assert namespace["STORYBOARD"] == PROMPT


def test_notebook_stores_only_small_previews() -> None:
    notebook = json.loads(NOTEBOOK.read_text("utf-8"))
    previews = [
        base64.b64decode(output["data"][mime])
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        for mime in ("image/png", "image/jpeg")
        if mime in output.get("data", {})
    ]
    assert len(previews) == len(recorded_images())
    for preview in previews:
        assert len(preview) < 20_000
        with Image.open(io.BytesIO(preview)) as image:
            assert max(image.size) <= 320
