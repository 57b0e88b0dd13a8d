"""The images family: notebook 03's storyboard (``recordings/images.toml``), its panels
drawn with Pillow from ``recordings/storyboard_panels.json``."""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path
from typing import Any

import _authoring as a
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from quickstart_helpers import settings

PANELS = Path(__file__).resolve().parent / "recordings" / "storyboard_panels.json"


def _tuples(value: Any) -> Any:
    """JSON lists as the tuples Pillow takes for points and colours."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def draw_panel(ops: list[list[Any]], size: tuple[int, int], grain: int) -> Image.Image:
    """Draw one panel's shapes on a 1280x960 canvas, scale it to ``size``, add the grain."""
    image = Image.new("RGB", (1280, 960))
    draw = ImageDraw.Draw(image)
    for method, args, kwargs in ops:
        args, kwargs = _tuples(args), {k: _tuples(v) for k, v in kwargs.items()}
        if method == "glow":  # a light: a blurred ellipse of ``colour``, capped at ``cap``
            glow = Image.new("RGB", image.size, (0, 0, 0))
            ImageDraw.Draw(glow).ellipse(*args, fill=kwargs["fill"])
            mask = glow.convert("L").filter(ImageFilter.GaussianBlur(kwargs["blur"]))
            mask = mask.point(lambda v, cap=kwargs["cap"]: min(cap, v))
            image = Image.composite(Image.new("RGB", image.size, kwargs["colour"]), image, mask)
            draw = ImageDraw.Draw(image)
        else:
            getattr(draw, method)(*args, **kwargs)
    image = image.resize(size, Image.Resampling.LANCZOS)
    rng = random.Random(f"grain:{image.tobytes()[:4096].hex()}")  # seeded: deterministic
    noise = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    noise = noise.point(lambda v: v * grain // 256)
    return ImageChops.add(image, Image.merge("RGB", [noise] * 3), scale=1, offset=-(grain // 2))


def encode(image: Image.Image, mime_type: str, max_bytes: int) -> bytes:
    """A panel as full-colour PNG or JPEG.

    Raises:
        ValueError: It is ``max_bytes`` or larger, or not image/png or image/jpeg.
    """
    buffer = io.BytesIO()
    if mime_type == "image/png":
        image.save(buffer, "PNG", compress_level=6)  # zlib default; level 9 took 8x longer
    elif mime_type == "image/jpeg":
        image.save(buffer, "JPEG", quality=95, optimize=True, progressive=False)
    else:
        raise ValueError(f"Panels are PNG or JPEG, not {mime_type!r}.")
    if len(data := buffer.getvalue()) >= max_bytes:
        raise ValueError(f"A {mime_type} panel is {len(data)} bytes; keep each under {max_bytes}.")
    return data


def outputs(spec: dict[str, Any]) -> list[a.Output]:
    """The storyboard cassette (one space of indent, as shipped)."""
    images = []
    for panel in json.loads(PANELS.read_text("utf-8"))["panels"]:
        image = draw_panel(panel["ops"], tuple(spec["size"]), spec["grain"])
        data = encode(image, panel["mime_type"], spec["max_bytes"])
        images.append(
            {
                "inlineData": {
                    "mimeType": panel["mime_type"],
                    "data": base64.b64encode(data).decode(),
                }
            }
        )
    parts = {"text": [{"text": t} for t in spec["texts"]], "image": images}
    layout = [
        [parts[kind][int(n)] for kind, n in (ref.split(":") for ref in refs)]
        for _, refs in spec["layout"]
    ]
    text_tokens = sum(a.estimate_tokens(t) for t in spec["texts"])
    image_tokens = spec["image_tokens"] * len(images)
    model = getattr(settings, spec["model"])
    first_ms = spec["layout"][0][0]
    chunks = a.stream_chunks(
        layout,
        [delay for delay, _ in spec["layout"]],
        name=spec["name"],
        model=model,
        prompt_tokens=a.estimate_tokens(spec["prompt"]),
        answer_tokens=text_tokens + image_tokens,
        answer_details={"TEXT": text_tokens, "IMAGE": image_tokens},
        thoughts=a.thinking_tokens(first_ms),
    )
    request = {
        "contents": [a.text_content("user", spec["prompt"])],
        "generationConfig": spec["config"],
    }
    cassette = a.generate_cassette(spec["name"], spec["description"], model, request, chunks)
    return [a.cassette_file(spec["folder"], cassette, indent=1)]
