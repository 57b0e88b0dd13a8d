"""Draw the storyboard panels and write the cassette of notebook 03.

Run: ``uv run python scripts/make_storyboard_cassette.py``.

The cassette answers :data:`STORYBOARD` (the prompt of
``notebooks/03_text_and_image_streaming.ipynb``) sent to the package's default image
model (``settings.DEFAULT_IMAGE_MODEL``) with ``responseModalities`` ``["TEXT", "IMAGE"]``
and a 4:3 ``imageConfig``. The answer is authored here, not recorded from the live API:
a caption per panel and a panel illustration drawn with Pillow (flat shapes on a
640×480 grid, drawn at twice the size and scaled to the 1024×768 pixels of a 4:3 image,
with a seeded paper grain so the files weigh what a generated picture weighs: a few
hundred KB, not the 10-50 KB of a flat drawing). Panel 2 is a JPEG, the others PNG, so
the stream carries both MIME types; the four together stay under 2 MB. Chunks mix
``text`` and ``inlineData`` parts the way the API streams them: some chunks hold one
part, some a caption and an image together.

The output is deterministic (seeded randomness, fixed metadata): running the script
again rewrites the same file.
"""

from __future__ import annotations

import base64
import io
import math
import random
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _authoring as authoring  # noqa: E402

from quickstart_helpers import settings  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "cassettes" / "images"
NAME = "storyboard_stream"
MODEL = settings.DEFAULT_IMAGE_MODEL
WIDTH, HEIGHT = 640, 480  # the drawing grid
SCALE = 2  # draw at 2x, then scale to SIZE (anti-aliasing)
#: Pixel size of each panel: a 4:3 image as the API returns it.
SIZE = (1024, 768)
#: Grain levels added to every pixel (seeded noise, -1..+1): the texture of a generated
#: picture, which is what makes its PNG weigh hundreds of KB.
GRAIN_LEVELS = 3
MAX_BYTES = 600_000
#: Tokens the API bills per generated image of up to 1024x1024 pixels.
IMAGE_TOKENS = 1290

#: The prompt: our own four-panel storyboard script (notebook 03 sends exactly this).
STORYBOARD = """\
Illustrate this four-panel storyboard. For each panel, first write one short caption \
that starts with "Panel N:", then draw the panel as a simple flat-colour illustration \
in a 4:3 frame.

Title: The lighthouse keeper's cat

1. Dusk on a rocky island. A striped lighthouse stands on the cliff, and a small \
orange cat watches the sea from the lamp-room window.
2. Night and a storm. Rain slants across the frame, big waves break on the rocks, \
and the lighthouse lamp has gone dark.
3. Inside the lamp room, the cat nudges a lit lantern up to the great lens, and a \
beam of yellow light shines out over the waves.
4. Morning. The storm has passed, a little red fishing boat is safe at the jetty, \
and the cat sleeps in the sun on the lighthouse gallery."""

INTRO = "Here is the storyboard for *The lighthouse keeper's cat*, panel by panel.\n\n"
CAPTIONS = [
    "**Panel 1:** Dusk settles over the island while the keeper's cat keeps watch "
    "from the lamp room.\n\n",
    "**Panel 2:** The storm rolls in, the waves climb the rocks, and the great lamp goes dark.\n\n",
    "**Panel 3:** Paw by paw, the cat nudges the lantern to the lens, and light "
    "sweeps across the sea again.\n\n",
    "**Panel 4:** By morning the fishing boat is home, and the hero of the night "
    "sleeps in the sun.\n\n",
]
OUTRO = "The lamp is lit again, and the story ends where it began: on the gallery."

# -- colours -------------------------------------------------------------------------
CAT = (232, 134, 46)
CAT_DARK = (176, 92, 30)
WHITE = (246, 244, 236)
RED = (200, 52, 46)
ROCK = (92, 88, 96)
ROCK_DARK = (62, 58, 68)
GLASS = (255, 214, 102)
DARK_GLASS = (58, 64, 84)

Box = tuple[float, float, float, float]


def _s(*values: float) -> list[float]:
    """Scale 1x coordinates to the 2x drawing canvas."""
    return [v * SCALE for v in values]


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE))
    return image, ImageDraw.Draw(image)


def _gradient(
    draw: ImageDraw.ImageDraw,
    top: tuple[int, int, int],
    bottom: tuple[int, int, int],
    y0: float,
    y1: float,
    *,
    bands: int = 24,
) -> None:
    """Fill rows y0..y1 (1x units) with a vertical gradient in flat bands."""
    for i in range(bands):
        t = i / (bands - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        ya = y0 + (y1 - y0) * i / bands
        yb = y0 + (y1 - y0) * (i + 1) / bands
        draw.rectangle(_s(0, ya, WIDTH, yb + 1), fill=colour)


def _waves(
    draw: ImageDraw.ImageDraw,
    y: float,
    colour: tuple[int, int, int],
    *,
    amplitude: float,
    length: float,
    phase: float = 0.0,
    bottom: float = HEIGHT,
) -> None:
    """Fill the sea below a sine-shaped surface line at height y."""
    points = [
        (x, y + amplitude * math.sin(2 * math.pi * x / length + phase))
        for x in range(0, WIDTH + 8, 8)
    ]
    polygon = points + [(WIDTH, bottom), (0, bottom)]
    draw.polygon([tuple(_s(px, py)) for px, py in polygon], fill=colour)


def _lighthouse(
    draw: ImageDraw.ImageDraw, x: float, base: float, height: float, *, lamp: tuple[int, int, int]
) -> Box:
    """Draw a red and white striped lighthouse; return the lamp-room window box."""
    half_base, half_top = height * 0.14, height * 0.095
    top = base - height
    stripes = 5
    for i in range(stripes):
        ya, yb = base - height * i / stripes, base - height * (i + 1) / stripes
        wa = half_base + (half_top - half_base) * i / stripes
        wb = half_base + (half_top - half_base) * (i + 1) / stripes
        draw.polygon(
            [tuple(_s(*p)) for p in [(x - wa, ya), (x + wa, ya), (x + wb, yb), (x - wb, yb)]],
            fill=RED if i % 2 == 0 else WHITE,
        )
    # door
    door_w = height * 0.05
    draw.rounded_rectangle(
        _s(x - door_w, base - height * 0.12, x + door_w, base),
        radius=door_w * SCALE,
        fill=ROCK_DARK,
    )
    # gallery (balcony)
    gallery_y = top
    draw.rectangle(
        _s(x - half_top * 1.5, gallery_y - 6, x + half_top * 1.5, gallery_y), fill=ROCK_DARK
    )
    # lamp room
    room_h = height * 0.16
    window = (x - half_top * 0.8, gallery_y - 6 - room_h, x + half_top * 0.8, gallery_y - 6)
    draw.rectangle(_s(*window), fill=lamp)
    for bar in (0.33, 0.66):
        bx = window[0] + (window[2] - window[0]) * bar
        draw.line(_s(bx, window[1], bx, window[3]), fill=ROCK_DARK, width=2 * SCALE)
    # roof and vent
    roof_base = window[1]
    draw.polygon(
        [
            tuple(_s(x - half_top * 1.2, roof_base)),
            tuple(_s(x + half_top * 1.2, roof_base)),
            tuple(_s(x, roof_base - room_h * 0.8)),
        ],
        fill=RED,
    )
    draw.ellipse(
        _s(x - 4, roof_base - room_h * 0.8 - 6, x + 4, roof_base - room_h * 0.8 + 2), fill=ROCK_DARK
    )
    return window


def _cat_sitting(draw: ImageDraw.ImageDraw, x: float, y: float, size: float) -> None:
    """Draw a sitting cat seen from behind, its feet at (x, y), ``size`` tall."""
    body = (x - size * 0.32, y - size * 0.62, x + size * 0.32, y)
    draw.ellipse(_s(*body), fill=CAT)
    head_r = size * 0.22
    hx, hy = x, y - size * 0.68
    draw.ellipse(_s(hx - head_r, hy - head_r, hx + head_r, hy + head_r), fill=CAT)
    for side in (-1, 1):
        ear = [
            (hx + side * head_r * 0.25, hy - head_r * 0.8),
            (hx + side * head_r * 0.95, hy - head_r * 0.55),
            (hx + side * head_r * 0.8, hy - head_r * 1.55),
        ]
        draw.polygon([tuple(_s(*p)) for p in ear], fill=CAT)
    # tail curling round the feet
    draw.arc(
        _s(x - size * 0.05, y - size * 0.3, x + size * 0.6, y + size * 0.06),
        start=90,
        end=300,
        fill=CAT_DARK,
        width=max(2, int(size * 0.09)) * SCALE,
    )
    # stripes on the back
    for i in range(3):
        sy = y - size * (0.5 - i * 0.13)
        draw.line(
            _s(x - size * 0.12, sy, x + size * 0.12, sy),
            fill=CAT_DARK,
            width=max(1, int(size * 0.04)) * SCALE,
        )


def _cat_sleeping(draw: ImageDraw.ImageDraw, x: float, y: float, size: float) -> None:
    """Draw a cat curled up asleep, centred on x, lying on the line y."""
    draw.ellipse(_s(x - size * 0.6, y - size * 0.5, x + size * 0.6, y), fill=CAT)
    head_r = size * 0.24
    hx, hy = x + size * 0.45, y - size * 0.28
    draw.ellipse(_s(hx - head_r, hy - head_r, hx + head_r, hy + head_r), fill=CAT)
    for dx in (-0.5, 0.45):
        ear = [
            (hx + dx * head_r - head_r * 0.35, hy - head_r * 0.6),
            (hx + dx * head_r + head_r * 0.35, hy - head_r * 0.6),
            (hx + dx * head_r, hy - head_r * 1.45),
        ]
        draw.polygon([tuple(_s(*p)) for p in ear], fill=CAT)
    # closed eyes
    for dx in (-0.4, 0.35):
        ex = hx + dx * head_r
        draw.arc(
            _s(ex - 4, hy - 3, ex + 4, hy + 4), start=20, end=160, fill=(70, 40, 20), width=SCALE
        )
    draw.arc(
        _s(x - size * 0.7, y - size * 0.35, x + size * 0.3, y + size * 0.1),
        start=120,
        end=250,
        fill=CAT_DARK,
        width=max(2, int(size * 0.12)) * SCALE,
    )


def _finish(image: Image.Image) -> Image.Image:
    """Scale the 2x drawing to :data:`SIZE` and add a seeded grain (deterministic)."""
    image = image.resize(SIZE, Image.Resampling.LANCZOS)
    rng = random.Random(f"grain:{image.tobytes()[:4096].hex()}")
    noise = Image.frombytes("L", SIZE, rng.randbytes(SIZE[0] * SIZE[1]))
    noise = noise.point(lambda v: v * GRAIN_LEVELS // 256)
    grain = Image.merge("RGB", [noise] * 3)
    return ImageChops.add(image, grain, scale=1, offset=-(GRAIN_LEVELS // 2))


def panel_dusk() -> Image.Image:
    """Panel 1: dusk, the lighthouse on its cliff, the cat in the lamp-room window."""
    image, draw = _canvas()
    _gradient(draw, (64, 52, 120), (246, 150, 84), 0, 300)
    draw.ellipse(_s(120, 262, 196, 338), fill=(255, 204, 112))  # setting sun
    _gradient(draw, (38, 58, 110), (20, 32, 70), 300, HEIGHT, bands=8)
    draw.rectangle(_s(118, 300, 198, 306), fill=(240, 160, 90))  # sun's reflection
    draw.rectangle(_s(132, 314, 184, 318), fill=(220, 140, 90))
    # cliff
    cliff = [
        (330, HEIGHT),
        (360, 330),
        (420, 300),
        (560, 292),
        (620, 320),
        (WIDTH, 340),
        (WIDTH, HEIGHT),
    ]
    draw.polygon([tuple(_s(*p)) for p in cliff], fill=ROCK)
    draw.polygon(
        [tuple(_s(*p)) for p in [(360, 330), (420, 300), (440, 360), (380, 420)]], fill=ROCK_DARK
    )
    window = _lighthouse(draw, 500, 300, 190, lamp=GLASS)
    # the cat's silhouette in the window
    wx = (window[0] + window[2]) / 2
    _cat_sitting(draw, wx + 6, window[3], (window[3] - window[1]) * 0.75)
    # birds
    for bx, by in ((250, 120), (280, 100), (300, 135)):
        draw.arc(
            _s(bx - 10, by - 6, bx, by + 4), start=200, end=340, fill=(60, 40, 80), width=2 * SCALE
        )
        draw.arc(
            _s(bx, by - 6, bx + 10, by + 4), start=200, end=340, fill=(60, 40, 80), width=2 * SCALE
        )
    _waves(draw, 380, (30, 48, 96), amplitude=4, length=90, bottom=HEIGHT)
    return _finish(image)


def panel_storm() -> Image.Image:
    """Panel 2: night storm, slanting rain, breaking waves, the lamp dark."""
    rng = random.Random(2)
    image, draw = _canvas()
    _gradient(draw, (14, 18, 34), (52, 60, 84), 0, 320)
    for cx, cy, r in ((80, 60, 90), (220, 40, 110), (380, 70, 100), (540, 50, 120), (300, 110, 80)):
        draw.ellipse(_s(cx - r, cy - r * 0.5, cx + r, cy + r * 0.5), fill=(70, 74, 92))
    # lightning
    bolt = [(150, 70), (128, 150), (148, 150), (118, 240), (170, 134), (148, 134), (172, 70)]
    draw.polygon([tuple(_s(*p)) for p in bolt], fill=(250, 240, 170))
    cliff = [(360, HEIGHT), (390, 340), (450, 312), (580, 306), (WIDTH, 330), (WIDTH, HEIGHT)]
    draw.polygon([tuple(_s(*p)) for p in cliff], fill=ROCK_DARK)
    _lighthouse(draw, 510, 312, 200, lamp=DARK_GLASS)
    # sea and breaking waves
    _waves(draw, 330, (22, 40, 70), amplitude=16, length=140)
    _waves(draw, 372, (30, 56, 92), amplitude=22, length=170, phase=1.2)
    for wx, wy in ((90, 340), (250, 352), (400, 360)):
        crest = [
            (wx - 60, wy + 20),
            (wx - 10, wy - 30),
            (wx + 30, wy - 36),
            (wx + 14, wy - 20),
            (wx + 50, wy + 16),
        ]
        draw.polygon([tuple(_s(*p)) for p in crest], fill=(214, 226, 236))
    # rain
    for _ in range(170):
        x, y = rng.uniform(-60, WIDTH), rng.uniform(0, HEIGHT)
        length = rng.uniform(14, 30)
        draw.line(_s(x, y, x + length * 0.45, y + length), fill=(150, 170, 200), width=SCALE)
    return _finish(image)


def panel_lamp_room() -> Image.Image:
    """Panel 3: inside the lamp room, the cat nudges a lantern to the lens; a beam."""
    image, draw = _canvas()
    draw.rectangle(_s(0, 0, WIDTH, HEIGHT), fill=(44, 50, 78))  # wall
    # window onto the night sea, with the beam
    win = (250, 40, 610, 300)
    draw.rectangle(_s(*win), fill=(22, 30, 58))
    _gradient_box(draw, (22, 30, 58), (40, 66, 104), win)
    draw.polygon(
        [tuple(_s(*p)) for p in [(250, 230), (610, 150), (610, 300), (250, 300)]], fill=(30, 54, 92)
    )
    draw.polygon([tuple(_s(*p)) for p in [(300, 150), (610, 60), (610, 250)]], fill=(250, 220, 120))
    for bx in (370, 490):
        draw.rectangle(_s(bx - 4, win[1], bx + 4, win[3]), fill=(30, 34, 52))
    draw.rectangle(_s(*win), outline=(30, 34, 52), width=8 * SCALE)
    # floor
    draw.rectangle(_s(0, 380, WIDTH, HEIGHT), fill=(98, 70, 52))
    for fx in range(0, WIDTH, 80):
        draw.line(_s(fx, 380, fx - 30, HEIGHT), fill=(80, 56, 42), width=2 * SCALE)
    # the great lens: a glowing stack of rings on a pedestal
    draw.rectangle(_s(270, 330, 350, 390), fill=(70, 72, 90))
    glow = Image.new("RGB", image.size, (0, 0, 0))
    ImageDraw.Draw(glow).ellipse(_s(200, 110, 420, 330), fill=(120, 100, 30))
    image = Image.composite(
        Image.new("RGB", image.size, (255, 226, 130)),
        image,
        glow.convert("L").filter(ImageFilter.GaussianBlur(28 * SCALE)).point(lambda v: min(150, v)),
    )
    draw = ImageDraw.Draw(image)
    for i in range(6):
        top = 140 + i * 32
        width = 70 - abs(i - 2.5) * 9
        draw.rounded_rectangle(
            _s(310 - width, top, 310 + width, top + 28), radius=12 * SCALE, fill=(150, 200, 210)
        )
        draw.rounded_rectangle(
            _s(310 - width + 8, top + 6, 310 + width - 8, top + 12),
            radius=4 * SCALE,
            fill=(220, 245, 245),
        )
    # lantern
    lx, ly = 176, 392
    draw.ellipse(_s(lx - 42, ly - 92, lx + 42, ly - 8), fill=(250, 220, 120))
    draw.rectangle(
        _s(lx - 22, ly - 70, lx + 22, ly),
        fill=(255, 236, 160),
        outline=(60, 50, 40),
        width=3 * SCALE,
    )
    draw.polygon(
        [tuple(_s(*p)) for p in [(lx - 26, ly - 70), (lx + 26, ly - 70), (lx, ly - 92)]],
        fill=(60, 50, 40),
    )
    draw.arc(
        _s(lx - 10, ly - 108, lx + 10, ly - 88),
        start=180,
        end=360,
        fill=(60, 50, 40),
        width=3 * SCALE,
    )
    draw.ellipse(_s(lx - 7, ly - 50, lx + 7, ly - 26), fill=(255, 150, 40))
    # the cat, side on, pushing the lantern with a front paw
    cx, cy = 80, 392
    draw.ellipse(_s(cx - 52, cy - 60, cx + 40, cy - 8), fill=CAT)  # body
    draw.ellipse(_s(cx + 20, cy - 88, cx + 70, cy - 40), fill=CAT)  # head
    for ex in (30, 50):
        draw.polygon(
            [
                tuple(_s(*p))
                for p in [(cx + ex, cy - 80), (cx + ex + 14, cy - 80), (cx + ex + 8, cy - 102)]
            ],
            fill=CAT,
        )
    draw.ellipse(_s(cx + 54, cy - 70, cx + 60, cy - 63), fill=(40, 30, 20))  # eye
    draw.line(_s(cx + 30, cy - 24, cx + 80, cy - 30), fill=CAT, width=12 * SCALE)  # front leg
    draw.ellipse(_s(cx + 74, cy - 38, cx + 94, cy - 22), fill=CAT)  # paw on the lantern
    for lx2 in (cx - 40, cx - 10, cx + 20):
        draw.line(_s(lx2, cy - 20, lx2, cy), fill=CAT, width=10 * SCALE)
    draw.arc(
        _s(cx - 110, cy - 120, cx - 30, cy - 20), start=60, end=200, fill=CAT_DARK, width=10 * SCALE
    )
    for sx in (-30, -12, 6):
        draw.line(_s(cx + sx, cy - 58, cx + sx + 6, cy - 40), fill=CAT_DARK, width=3 * SCALE)
    return _finish(image)


def _gradient_box(
    draw: ImageDraw.ImageDraw, top: tuple[int, int, int], bottom: tuple[int, int, int], box: Box
) -> None:
    x0, y0, x1, y1 = box
    bands = 12
    for i in range(bands):
        t = i / (bands - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.rectangle(
            _s(x0, y0 + (y1 - y0) * i / bands, x1, y0 + (y1 - y0) * (i + 1) / bands + 1),
            fill=colour,
        )


def panel_morning() -> Image.Image:
    """Panel 4: morning calm, the red boat at the jetty, the cat asleep on the gallery."""
    image, draw = _canvas()
    _gradient(draw, (120, 180, 232), (214, 236, 246), 0, 310)
    draw.ellipse(_s(470, 40, 550, 120), fill=(255, 226, 120))
    for cx, cy in ((150, 80), (330, 60)):
        for dx, r in ((-30, 22), (0, 30), (30, 22)):
            draw.ellipse(
                _s(cx + dx - r, cy - r * 0.7, cx + dx + r, cy + r * 0.7), fill=(250, 252, 255)
            )
    _gradient(draw, (70, 140, 190), (40, 100, 150), 310, HEIGHT, bands=8)
    for y in (340, 372, 410, 450):
        for x in range(40 + (y % 3) * 30, WIDTH, 150):
            draw.arc(
                _s(x, y - 5, x + 30, y + 5),
                start=200,
                end=340,
                fill=(150, 200, 230),
                width=2 * SCALE,
            )
    # island and lighthouse on the left
    island = [(0, 330), (40, 290), (130, 276), (230, 300), (260, 330), (260, 360), (0, 360)]
    draw.polygon([tuple(_s(*p)) for p in island], fill=(110, 130, 90))
    draw.polygon([tuple(_s(*p)) for p in [(0, 330), (260, 330), (260, 360), (0, 360)]], fill=ROCK)
    window = _lighthouse(draw, 120, 290, 200, lamp=GLASS)
    # the cat asleep on the gallery, in front of the lamp
    _cat_sleeping(draw, 146, window[3], 30)
    # jetty
    draw.rectangle(_s(250, 336, 470, 346), fill=(130, 92, 60))
    for px in range(262, 470, 40):
        draw.rectangle(_s(px, 346, px + 6, 392), fill=(100, 70, 46))
    # red fishing boat with a mast and a furled sail
    hull = [(380, 360), (560, 360), (535, 398), (400, 398)]
    draw.polygon([tuple(_s(*p)) for p in hull], fill=RED)
    draw.rectangle(_s(392, 366, 548, 372), fill=WHITE)
    draw.rectangle(_s(440, 330, 500, 360), fill=WHITE)  # wheelhouse
    draw.rectangle(_s(450, 338, 466, 350), fill=(120, 180, 220))
    draw.line(_s(520, 360, 520, 250), fill=(90, 64, 44), width=4 * SCALE)
    draw.polygon([tuple(_s(*p)) for p in [(522, 258), (522, 346), (580, 346)]], fill=WHITE)
    draw.line(_s(470, 346, 400, 350), fill=(70, 50, 36), width=2 * SCALE)  # mooring line
    # reflection of the hull
    draw.polygon(
        [tuple(_s(*p)) for p in [(400, 402), (535, 402), (520, 414), (414, 414)]],
        fill=(120, 80, 110),
    )
    return _finish(image)


#: The panels: (drawing function, MIME type). At least one JPEG, the rest PNG.
PANELS: list[tuple[Callable[[], Image.Image], str]] = [
    (panel_dusk, "image/png"),
    (panel_storm, "image/jpeg"),
    (panel_lamp_room, "image/png"),
    (panel_morning, "image/png"),
]


def encode(image: Image.Image, mime_type: str) -> bytes:
    """Encode a panel as full-colour PNG or JPEG, checking the :data:`MAX_BYTES` limit.

    Raises:
        ValueError: The encoded panel is :data:`MAX_BYTES` or larger, or the MIME type
            is not image/png or image/jpeg.
    """
    buffer = io.BytesIO()
    if mime_type == "image/png":
        image.save(buffer, "PNG", compress_level=6)  # zlib default; level 9 took 8x longer
    elif mime_type == "image/jpeg":
        image.save(buffer, "JPEG", quality=95, optimize=True, progressive=False)
    else:
        raise ValueError(f"Panels are PNG or JPEG, not {mime_type!r}.")
    data = buffer.getvalue()
    if len(data) >= MAX_BYTES:
        raise ValueError(f"A {mime_type} panel is {len(data)} bytes; keep each under {MAX_BYTES}.")
    return data


def build_cassette() -> dict:
    """Return the cassette: the storyboard request and its interleaved chunks."""
    images = [
        {"inlineData": {"mimeType": mime, "data": base64.b64encode(encode(draw(), mime)).decode()}}
        for draw, mime in PANELS
    ]
    text = [{"text": t} for t in [INTRO, *CAPTIONS, OUTRO]]
    # (delay_ms, parts) per chunk, in order. The first waits while the model thinks;
    # chunks with an image wait longer, as image generation does, but shortened so a
    # realtime replay takes about 12 s.
    # Chunk 3 (from 0) carries a caption then its image, chunk 5 an image then the next
    # caption: reading only parts[0] of each chunk loses the panel 2 image.
    layout: list[tuple[int, list[dict]]] = [
        (2150, [text[0]]),
        (600, [text[1]]),
        (2600, [images[0]]),
        (2300, [text[2], images[1]]),
        (400, [text[3]]),
        (2400, [images[2], text[4]]),
        (2500, [images[3]]),
        (300, [text[5]]),
    ]
    text_tokens = sum(authoring.estimate_tokens(t["text"]) for t in text)
    image_tokens = IMAGE_TOKENS * len(images)
    chunks = authoring.stream_chunks(
        [parts for _, parts in layout],
        [delay_ms for delay_ms, _ in layout],
        name=NAME,
        model=MODEL,
        prompt_tokens=authoring.estimate_tokens(STORYBOARD),
        answer_tokens=text_tokens + image_tokens,
        answer_details={"TEXT": text_tokens, "IMAGE": image_tokens},
        thoughts=authoring.thinking_tokens(layout[0][0]),
    )
    return authoring.generate_cassette(
        NAME,
        "03_text_and_image_streaming: a four-panel storyboard streamed as captions "
        "and images (PNG and JPEG) interleaved. Authored by "
        "scripts/make_storyboard_cassette.py, which draws the panels with Pillow.",
        MODEL,
        {
            "contents": [authoring.text_content("user", STORYBOARD)],
            "generationConfig": {
                "responseModalities": ["TEXT", "IMAGE"],
                "imageConfig": {"aspectRatio": "4:3"},
            },
        },
        chunks,
    )


def main() -> None:
    """Write ``assets/cassettes/images/storyboard_stream.json`` and report panel sizes."""
    cassette = build_cassette()
    (path,) = authoring.write_cassettes(OUT, [cassette], indent=1)
    for chunk in cassette["chunks"]:
        for part in chunk["response"]["candidates"][0]["content"]["parts"]:
            if "inlineData" in part:
                size = len(base64.b64decode(part["inlineData"]["data"]))
                print(f"  {part['inlineData']['mimeType']:<10} {size:>6} bytes")
    print(f"Wrote {path.relative_to(OUT.parent.parent.parent)}")


if __name__ == "__main__":
    main()
