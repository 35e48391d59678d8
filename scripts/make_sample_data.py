"""Build DetLens's embedded sample dataset `sample_data/` (deterministic: same bytes every run).

Synthetic 1024x1024 "trash" scenes of the competition's 10 classes, each class drawn with its
own shape and colour, on varied floor/table backgrounds, with the competition's skewed class
mix; `train.json` in the competition's COCO format, a few unannotated test scenes with
`test.json`, and submission CSVs from two simulated models (`core.simulate`).

    python scripts/make_sample_data.py            # (re)write sample_data/
    python scripts/make_sample_data.py --check    # regenerate into a temp dir, compare bytes
"""
from __future__ import annotations

import argparse
import filecmp
import io
import json
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(REPO))

IMAGE_SIZE = 1024
N_TRAIN = 100
N_TEST = 5
SEED = 20240611
JPEG_QUALITY = 85
CLASS_NAMES = [
    "General trash", "Paper", "Paper pack", "Metal", "Glass",
    "Plastic", "Styrofoam", "Plastic bag", "Battery", "Clothing",
]
# Box counts per class in the competition's train.json: the sample keeps this skew.
COMPETITION_COUNTS = np.array([3966, 6352, 897, 936, 982, 2943, 1263, 5178, 159, 468])
MIN_PER_CLASS = 6  # so that even Battery has enough boxes for a per-class AP
# Median sqrt(area) in pixels of each class's objects (log-normal around it).
MEDIAN_SIZE = np.array([210, 200, 170, 130, 170, 170, 190, 250, 55, 290])
SIZE_SIGMA = 0.6
TINY_SHARE = 0.07  # share of objects drawn tiny (the real data has ~5% under 43 px)
ALPHA_VISIBLE = 24  # object-layer alpha from which a pixel counts as part of the object
SIM_SEEDS = {"strong": 1, "weak": 2, "test": 3}


@dataclass
class SceneObject:
    category_id: int
    box_xyxy: tuple[int, int, int, int]  # tight pixel extent, x2/y2 exclusive


# ---------------------------------------------------------------------------- colour helpers

def _jitter(rng: np.random.Generator, rgb, amount: int = 18) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _shade(rgb, factor: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in rgb)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """[size, size] float noise in [-1, 1], smooth at `cells` cells per side (compresses well)."""
    small = rng.uniform(0, 255, (cells, cells)).astype(np.uint8)
    big = Image.fromarray(small).resize((size, size), Image.BICUBIC)
    return np.asarray(big, dtype=np.float32) / 127.5 - 1.0


def _apply_mask(layer: Image.Image, mask: Image.Image) -> Image.Image:
    """Restrict an RGBA layer's alpha to a mask ("L")."""
    layer.putalpha(ImageChops.multiply(layer.getchannel("A"), mask))
    return layer


# ---------------------------------------------------------------------------- backgrounds

def _bg_gradient(rng, n):
    a = np.array(_jitter(rng, _pick(rng, [(190, 180, 160), (120, 130, 140), (200, 200, 195),
                                           (150, 120, 90), (90, 100, 90)]), 25), np.float32)
    b = _shade(a, rng.uniform(0.6, 0.9))
    t = np.linspace(0, 1, n, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(0.5 + 0.5 * (np.cos(angle) * (t[None, :] - 0.5) + np.sin(angle) * (t[:, None] - 0.5)) * 2, 0, 1)
    img = a * (1 - ramp[..., None]) + np.array(b, np.float32) * ramp[..., None]
    return img + 10 * _smooth_noise(rng, n, 24)[..., None]


def _bg_wood(rng, n):
    base = np.array(_jitter(rng, _pick(rng, [(150, 105, 65), (175, 135, 90), (110, 75, 45)]), 15), np.float32)
    plank = int(rng.integers(110, 220))
    rows = np.arange(n)[:, None] // plank
    tone = (1 + 0.12 * np.sin(rows * 2.7 + rng.uniform(0, 6)))
    grain = 0.06 * np.sin(np.arange(n)[None, :] / rng.uniform(15, 40) + 3 * _smooth_noise(rng, n, 12))
    img = base * (tone + grain)[..., None]
    img[(np.arange(n) % plank) < 3] *= 0.6  # gaps between planks
    if rng.random() < 0.5:
        img = img.transpose(1, 0, 2)
    return img


def _bg_tiles(rng, n):
    base = np.array(_jitter(rng, _pick(rng, [(215, 210, 200), (180, 185, 190), (225, 220, 205)]), 12), np.float32)
    tile = int(rng.integers(90, 200))
    grid = ((np.arange(n) % tile) < 4)
    img = np.broadcast_to(base, (n, n, 3)).copy()
    img *= (1 + 0.04 * _smooth_noise(rng, n, 16))[..., None]
    img[grid, :] = base * 0.7
    img[:, grid] = base * 0.7
    return img


def _bg_concrete(rng, n):
    base = np.array(_jitter(rng, (140, 140, 135), 20), np.float32)
    noise = 0.6 * _smooth_noise(rng, n, 48) + 0.4 * _smooth_noise(rng, n, 10)
    return base * (1 + 0.12 * noise)[..., None]


def _bg_carpet(rng, n):
    base = np.array(_jitter(rng, _pick(rng, [(70, 90, 130), (120, 60, 60), (80, 110, 80), (100, 95, 90)]), 15), np.float32)
    noise = np.stack([_smooth_noise(rng, n, 64) for _ in range(3)], -1)
    return base * (1 + 0.15 * noise)


BACKGROUNDS = [_bg_gradient, _bg_wood, _bg_tiles, _bg_concrete, _bg_carpet]


def make_background(rng: np.random.Generator, n: int = IMAGE_SIZE) -> Image.Image:
    img = _pick(rng, BACKGROUNDS)(rng, n)
    # Soft vignette: a photo's uneven lighting.
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n - 0.5
    img = img * (1 - 0.35 * (xx ** 2 + yy ** 2))[..., None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------- objects
# Each draws one object filling a (w, h) RGBA canvas, upright; placement rotates it.

def _blob_polygon(rng, w, h, n_vertices, roughness, cx=0.5, cy=0.5, rx=0.5, ry=0.5):
    angles = np.sort(rng.uniform(0, 2 * np.pi, n_vertices))
    radius = 1 - roughness * rng.random(n_vertices)
    xs = (cx + rx * radius * np.cos(angles)) * (w - 1)
    ys = (cy + ry * radius * np.sin(angles)) * (h - 1)
    return list(zip(xs.tolist(), ys.tolist()))


def draw_general_trash(rng, w, h):
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    base = _jitter(rng, _pick(rng, [(120, 85, 50), (95, 80, 55), (130, 100, 70), (85, 70, 60)]))
    outline = max(1, min(w, h) // 40)
    d.polygon(_blob_polygon(rng, w, h, int(rng.integers(8, 14)), 0.4), fill=base + (255,),
              outline=_shade(base, 0.5) + (255,), width=outline)
    mask = layer.getchannel("A")
    spots = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ds = ImageDraw.Draw(spots)
    for _ in range(int(rng.integers(4, 9))):  # mixed-material patches
        colour = _jitter(rng, _pick(rng, [(180, 60, 50), (210, 190, 80), (160, 160, 160), (60, 90, 60), (230, 220, 200)]), 30)
        x, y = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        r = rng.uniform(0.05, 0.16) * min(w, h)
        ds.ellipse([x - r, y - r * rng.uniform(0.5, 1), x + r, y + r], fill=colour + (220,))
    layer.alpha_composite(_apply_mask(spots, mask))
    return layer


def draw_paper(rng, w, h):
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    paper = _jitter(rng, _pick(rng, [(246, 244, 236), (240, 232, 205), (250, 250, 250)]), 6)
    k = 0.04
    corners = [(rng.uniform(0, k) * w, rng.uniform(0, k) * h), ((1 - rng.uniform(0, k)) * w - 1, rng.uniform(0, k) * h),
               ((1 - rng.uniform(0, k)) * w - 1, (1 - rng.uniform(0, k)) * h - 1), (rng.uniform(0, k) * w, (1 - rng.uniform(0, k)) * h - 1)]
    d.polygon(corners, fill=paper + (255,), outline=_shade(paper, 0.8) + (255,))
    line_w = max(1, h // 110)
    step = max(3 * line_w, h / 16)
    y = 0.12 * h
    while y < 0.88 * h:  # printed text lines
        x_end = w * (0.15 + rng.uniform(0.45, 0.72))
        d.line([(0.14 * w, y), (x_end, y)], fill=_jitter(rng, (95, 95, 105), 20) + (255,), width=line_w)
        y += step
    if rng.random() < 0.5:  # a fold crease
        d.line([(0, rng.uniform(0.3, 0.7) * h), (w - 1, rng.uniform(0.3, 0.7) * h)], fill=_shade(paper, 0.85) + (255,), width=max(1, line_w))
    return _apply_mask(layer, _polygon_mask(w, h, corners))  # the crease stops at the sheet's edge


def _polygon_mask(w, h, points):
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).polygon(points, fill=255)
    return mask


def draw_paper_pack(rng, w, h):
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    print_colour = _jitter(rng, _pick(rng, [(200, 45, 45), (40, 90, 185), (235, 190, 35), (55, 150, 70), (230, 120, 30)]), 15)
    gable = 0.2 * h
    seal = 0.06 * h
    fold_x = rng.uniform(0.6, 0.7) * w
    d.rectangle([0.12 * w, 0, 0.88 * w, seal], fill=(235, 235, 230, 255))  # top seal strip
    d.polygon([(0, gable), (0.12 * w, seal), (0.88 * w, seal), (w - 1, gable)], fill=_shade(print_colour, 1.2) + (255,))
    d.rectangle([0, gable, fold_x, h - 1], fill=print_colour + (255,))
    d.rectangle([fold_x, gable, w - 1, h - 1], fill=_shade(print_colour, 0.7) + (255,))  # side face
    d.line([(fold_x, seal), (fold_x, h - 1)], fill=_shade(print_colour, 0.45) + (255,), width=max(1, w // 50))
    d.rectangle([0.1 * w, 0.42 * h, fold_x - 0.08 * w, 0.78 * h], fill=(245, 245, 240, 255))  # white panel
    r = 0.14 * w
    cx, cy = 0.1 * w + (fold_x - 0.18 * w) / 2, 0.6 * h
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_shade(print_colour, 0.8) + (255,))
    return layer


def _metal_profile(w):
    x = np.linspace(-1, 1, w, dtype=np.float32)
    return 0.55 + 0.35 * np.sqrt(np.clip(1 - x ** 2, 0, 1)) + 0.35 * np.exp(-((x + 0.35) / 0.12) ** 2)


def draw_metal(rng, w, h):
    tint = np.array(_jitter(rng, _pick(rng, [(175, 178, 185), (190, 185, 170), (160, 165, 175)]), 10), np.float32)
    e = max(2.0, 0.28 * w)  # ellipse height of the can's ends
    shade = _metal_profile(w)[None, :, None] * tint[None, None, :]
    rgb = np.broadcast_to(shade, (h, w, 3))
    layer = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
    mask = Image.new("L", (w, h), 0)
    dm = ImageDraw.Draw(mask)
    dm.rectangle([0, e / 2, w - 1, h - 1 - e / 2], fill=255)
    dm.ellipse([0, h - 1 - e, w - 1, h - 1], fill=255)
    dm.ellipse([0, 0, w - 1, e], fill=255)
    d = ImageDraw.Draw(layer)
    d.ellipse([0, 0, w - 1, e], fill=_shade(tint, 1.15) + (255,), outline=_shade(tint, 0.6) + (255,), width=max(1, w // 40))
    d.ellipse([0.2 * w, 0.2 * e, 0.8 * w, 0.8 * e], outline=_shade(tint, 0.7) + (255,), width=max(1, w // 40))
    d.rectangle([0.45 * w, 0.3 * e, 0.62 * w, 0.55 * e], fill=_shade(tint, 0.8) + (255,))  # pull tab
    d.line([(0, 0.22 * h), (w - 1, 0.22 * h)], fill=_shade(tint, 0.75) + (255,), width=max(1, h // 60))
    return _apply_mask(layer, mask)


def _bottle_half_width(t, neck_end, shoulder_end, neck_w, lip_w):
    """Half-width (fraction of canvas width) of a bottle at height fraction t (0 = top)."""
    s = np.clip((t - neck_end) / (shoulder_end - neck_end), 0, 1)
    s = s * s * (3 - 2 * s)
    hw = np.where(t < 0.04, lip_w, neck_w) * (1 - s) + 0.5 * s
    bottom = np.clip((t - 0.96) / 0.04, 0, 1)
    return hw * (1 - 0.25 * bottom ** 2)


def _bottle_mask(w, h, neck_end, shoulder_end, neck_w, lip_w):
    t = np.linspace(0, 1, 64)
    hw = _bottle_half_width(t, neck_end, shoulder_end, neck_w, lip_w) * (w - 1)
    ys = t * (h - 1)
    right = list(zip((w - 1) / 2 + hw, ys))
    left = list(zip(((w - 1) / 2 - hw)[::-1], ys[::-1]))
    return _polygon_mask(w, h, [(float(x), float(y)) for x, y in right + left])


def draw_glass(rng, w, h):
    colour = _jitter(rng, _pick(rng, [(40, 125, 60), (115, 65, 25), (40, 95, 165), (120, 170, 120)]), 12)
    mask = _bottle_mask(w, h, 0.3, 0.45, 0.16, 0.2)
    layer = Image.new("RGBA", (w, h), colour + (190,))
    d = ImageDraw.Draw(layer)
    d.rectangle([0.28 * w, 0.46 * h, 0.36 * w, 0.92 * h], fill=_shade(colour, 1.9) + (200,))  # glint
    d.rectangle([0, 0, w - 1, 0.04 * h], fill=_shade(colour, 0.6) + (230,))  # lip ring
    return _apply_mask(layer, mask)


def draw_plastic(rng, w, h):
    clear = _jitter(rng, (195, 225, 240), 10)
    mask = _bottle_mask(w, h, 0.14, 0.3, 0.2, 0.2)
    layer = Image.new("RGBA", (w, h), clear + (125,))
    d = ImageDraw.Draw(layer)
    for t in np.arange(0.34, 0.98, 0.07):  # moulded ribs
        d.line([(0, t * h), (w - 1, t * h)], fill=(250, 252, 255, 170), width=max(1, h // 90))
    label = _jitter(rng, _pick(rng, [(220, 40, 40), (30, 120, 220), (250, 200, 40), (40, 170, 90)]), 15)
    d.rectangle([0, 0.48 * h, w - 1, 0.66 * h], fill=label + (235,))
    layer = _apply_mask(layer, mask)
    cap = _jitter(rng, _pick(rng, [(210, 30, 30), (30, 80, 200), (245, 245, 245), (30, 150, 60)]), 10)
    ImageDraw.Draw(layer).rectangle([0.3 * w, 0, 0.7 * w, 0.08 * h], fill=cap + (255,))
    return layer


def draw_styrofoam(rng, w, h):
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    white = _jitter(rng, (238, 238, 232), 6)
    depth = 0.16 * min(w, h)
    d.polygon([(0, depth), (depth, 0), (w - 1, 0), (w - 1 - depth, depth)], fill=_shade(white, 1.06) + (255,))
    d.polygon([(w - 1 - depth, depth), (w - 1, 0), (w - 1, h - 1 - depth), (w - 1 - depth, h - 1)], fill=_shade(white, 0.8) + (255,))
    d.rectangle([0, depth, w - 1 - depth, h - 1], fill=white + (255,))
    r = max(1.0, min(w, h) / 28)
    step = 4.2 * r
    dimple = _shade(white, 0.86) + (255,)
    for y in np.arange(depth + step / 2, h - step / 3, step):  # bead-board dimples
        for x in np.arange(step / 2, w - depth - step / 3, step):
            d.ellipse([x - r, y - r, x + r, y + r], fill=dimple)
    return layer


def draw_plastic_bag(rng, w, h):
    colour, alpha = _pick(rng, [((236, 236, 236), 200), ((35, 35, 40), 215), ((70, 110, 205), 175), ((235, 225, 150), 185)])
    colour = _jitter(rng, colour, 10)
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    handle_w = max(2, min(w, h) // 18)
    for cx in (0.35, 0.65):  # two handle loops
        d.ellipse([(cx - 0.1) * w, 0, (cx + 0.1) * w, 0.42 * h], outline=colour + (alpha,), width=handle_w)
    d.polygon(_blob_polygon(rng, w, h, 22, 0.22, cy=0.6, ry=0.4), fill=colour + (alpha,))
    creases = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    dc = ImageDraw.Draw(creases)
    for _ in range(int(rng.integers(4, 8))):  # crumple creases: short zigzags
        start = rng.uniform(0.3, 0.7, 2) * [w, h]
        steps = rng.normal(0, 0.08, (4, 2)) * [w, h]
        points = [tuple(p) for p in (start + np.cumsum(steps, axis=0)).tolist()]
        tone = _shade(colour, 1.3) if rng.random() < 0.5 else _shade(colour, 0.7)
        dc.line([tuple(start.tolist())] + points, fill=tone + (110,), width=max(1, min(w, h) // 60), joint="curve")
    layer.alpha_composite(_apply_mask(creases, layer.getchannel("A").point(lambda a: 255 if a > 0 else 0)))
    return layer


def draw_battery(rng, w, h):
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    body = _jitter(rng, _pick(rng, [(28, 28, 30), (25, 35, 80), (30, 60, 35)]), 8)
    band = _jitter(rng, _pick(rng, [(205, 140, 40), (190, 110, 50), (220, 180, 60)]), 10)
    nub = 0.07 * h
    d.rectangle([0.33 * w, 0, 0.67 * w, nub], fill=(200, 200, 205, 255))  # + terminal
    d.rounded_rectangle([0, nub, w - 1, h - 1], radius=max(1, w // 6), fill=body + (255,))
    d.rectangle([0, nub + 0.02 * h, w - 1, 0.32 * h], fill=band + (255,))
    d.rectangle([0.2 * w, nub, 0.3 * w, h - 1], fill=_shade(body, 2.2) + (255,))  # highlight
    arm, thick = 0.16 * w, max(1, w // 12)
    cx, cy = 0.6 * w, 0.2 * h
    d.line([(cx - arm, cy), (cx + arm, cy)], fill=(250, 250, 250, 255), width=thick)
    d.line([(cx, cy - arm), (cx, cy + arm)], fill=(250, 250, 250, 255), width=thick)
    return layer


SHIRT = [(0.32, 0.0), (0.42, 0.07), (0.58, 0.07), (0.68, 0.0), (1.0, 0.17), (0.88, 0.4), (0.77, 0.33),
         (0.78, 1.0), (0.22, 1.0), (0.23, 0.33), (0.12, 0.4), (0.0, 0.17)]


def draw_clothing(rng, w, h):
    a = np.array(_jitter(rng, _pick(rng, [(180, 40, 60), (40, 60, 140), (60, 120, 70), (200, 150, 60), (120, 60, 140)]), 20), np.float32)
    b = np.array(_jitter(rng, _pick(rng, [(235, 230, 220), (30, 30, 40), (220, 200, 90)]), 15), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(4.0, min(w, h) / rng.uniform(5, 9))
    kind = int(rng.integers(3))
    if kind == 0:  # stripes
        t = (np.sin(yy / period * np.pi) > 0).astype(np.float32)
    elif kind == 1:  # plaid
        t = 0.5 * (np.sin(yy / period * np.pi) > 0.3) + 0.5 * (np.sin(xx / period * np.pi) > 0.3)
    else:  # polka dots
        t = ((np.mod(xx, 2 * period) - period) ** 2 + (np.mod(yy, 2 * period) - period) ** 2 < (0.45 * period) ** 2).astype(np.float32)
    weave = 0.06 * np.sin(xx * 1.7) * np.sin(yy * 1.7)  # fabric texture
    rgb = (a * (1 - t[..., None]) + b * t[..., None]) * (1 + weave[..., None])
    layer = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").convert("RGBA")
    points = [(float(np.clip(x + rng.uniform(-0.03, 0.03), 0, 1)) * (w - 1), float(np.clip(y + rng.uniform(-0.02, 0.02), 0, 1)) * (h - 1)) for x, y in SHIRT]
    return _apply_mask(layer, _polygon_mask(w, h, points))


# (draw function, width/height aspect range) per class id
DRAWERS = [
    (draw_general_trash, (0.7, 1.4)), (draw_paper, (0.68, 0.8)), (draw_paper_pack, (0.5, 0.62)),
    (draw_metal, (0.5, 0.62)), (draw_glass, (0.3, 0.38)), (draw_plastic, (0.32, 0.4)),
    (draw_styrofoam, (0.8, 1.5)), (draw_plastic_bag, (0.8, 1.15)), (draw_battery, (0.28, 0.36)),
    (draw_clothing, (0.95, 1.1)),
]


def draw_object(rng: np.random.Generator, category_id: int, size: float) -> Image.Image:
    """One object of the class, about `size` px sqrt-area, randomly rotated, on an RGBA canvas."""
    draw, (lo, hi) = DRAWERS[category_id]
    aspect = rng.uniform(lo, hi)
    w = max(6, int(round(size * math.sqrt(aspect))))
    h = max(6, int(round(size / math.sqrt(aspect))))
    layer = draw(rng, w, h)
    layer = layer.filter(ImageFilter.GaussianBlur(0.6)) if size > 40 else layer
    return layer.rotate(rng.uniform(0, 360), resample=Image.BICUBIC, expand=True)


# ---------------------------------------------------------------------------- scenes

def plan_classes(rng: np.random.Generator, n_objects: int) -> np.ndarray:
    """Class of each object: the competition's proportions, each class at least MIN_PER_CLASS."""
    share = COMPETITION_COUNTS / COMPETITION_COUNTS.sum()
    counts = np.maximum(MIN_PER_CLASS, np.round(share * n_objects)).astype(int)
    while counts.sum() > n_objects:  # take the floor's extra boxes back from the biggest classes
        counts[np.argmax(counts)] -= 1
    while counts.sum() < n_objects:
        counts[np.argmax(share * n_objects - counts)] += 1
    return rng.permutation(np.repeat(np.arange(len(counts)), counts))


def plan_scenes(seed: int, n_images: int) -> list[np.ndarray]:
    """Class ids of the objects of every scene (1 to 12 objects, fewer more often)."""
    rng = np.random.default_rng(seed)
    k = np.arange(1, 13)
    p = 1.0 / k ** 0.4
    per_image = rng.choice(k, size=n_images, p=p / p.sum())
    classes = plan_classes(rng, int(per_image.sum()))
    return np.split(classes, np.cumsum(per_image)[:-1])


def _too_hidden(box, boxes) -> bool:
    """True when the new box would hide most of a placed box, or be mostly hidden itself."""
    x1, y1, x2, y2 = box
    area = (x2 - x1) * (y2 - y1)
    for bx1, by1, bx2, by2 in boxes:
        inter = max(0, min(x2, bx2) - max(x1, bx1)) * max(0, min(y2, by2) - max(y1, by1))
        if inter > 0.45 * (bx2 - bx1) * (by2 - by1) or inter > 0.6 * area:
            return True
    return False


def visible_box(alpha: np.ndarray, x: int, y: int, n: int = IMAGE_SIZE) -> tuple[int, int, int, int] | None:
    """Tight box (x1, y1, x2, y2; x2/y2 exclusive) of a layer's visible pixels pasted at (x, y) on an
    n x n image; None when none of them lands inside the image."""
    visible = alpha[max(0, -y):n - y, max(0, -x):n - x] >= ALPHA_VISIBLE
    rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
    if len(rows) == 0:
        return None
    return (max(0, x) + int(cols[0]), max(0, y) + int(rows[0]),
            max(0, x) + int(cols[-1]) + 1, max(0, y) + int(rows[-1]) + 1)


def make_scene(seed: int, index: int, classes: np.ndarray, *, background: Image.Image | None = None,
               shadows: bool = True) -> tuple[Image.Image, list[SceneObject]]:
    """Render one scene; its objects' boxes are the tight extents of their visible pixels.

    background/shadows: only for tests (a plain canvas shows exactly where the objects are).
    """
    rng = np.random.default_rng([seed, index])
    n = IMAGE_SIZE
    scene = make_background(rng).convert("RGBA")
    if background is not None:
        scene = background.convert("RGBA")
    placed: list[SceneObject] = []
    # Big objects first so small ones land on top and stay visible.
    sizes = np.clip(MEDIAN_SIZE[classes] * np.exp(SIZE_SIGMA * rng.standard_normal(len(classes))), 12, 720)
    tiny = rng.random(len(classes)) < TINY_SHARE  # COCO "small" boxes (area < 32^2)
    sizes[tiny] = rng.uniform(12, 26, tiny.sum())
    for category_id, size in sorted(zip(classes.tolist(), sizes.tolist()), key=lambda cs: -cs[1]):
        layer = draw_object(rng, category_id, size)
        alpha = np.asarray(layer.getchannel("A"))
        lh, lw = alpha.shape
        total_visible = (alpha >= ALPHA_VISIBLE).sum()
        for attempt in range(40):
            # Objects may stick out of the frame a little, like in real photos.
            x = int(rng.integers(-lw // 6, n - lw + lw // 6 + 1)) if lw < n else (n - lw) // 2
            y = int(rng.integers(-lh // 6, n - lh + lh // 6 + 1)) if lh < n else (n - lh) // 2
            box = visible_box(alpha, x, y, n)
            if box is None:
                continue
            inside = (alpha[max(0, -y):n - y, max(0, -x):n - x] >= ALPHA_VISIBLE).sum()
            last_try = attempt == 39
            if not last_try and (_too_hidden(box, [o.box_xyxy for o in placed]) or inside < 0.75 * total_visible):
                continue
            if shadows:
                shadow = Image.new("RGBA", layer.size, (0, 0, 0, 0))
                shadow.putalpha(layer.getchannel("A").point(lambda a: a * 90 // 255).filter(ImageFilter.GaussianBlur(4)))
                offset = max(2, int(size / 40))
                scene.alpha_composite(shadow, dest=(max(0, x + offset), max(0, y + offset)),
                                      source=(max(0, -x - offset), max(0, -y - offset)))
            scene.alpha_composite(layer, dest=(max(0, x), max(0, y)), source=(max(0, -x), max(0, -y)))
            placed.append(SceneObject(category_id, box))
            break
    return scene.convert("RGB"), placed


def jpeg_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


# ---------------------------------------------------------------------------- COCO json

def coco_info() -> dict:
    return {"year": 2024, "version": "1.0", "description": "DetLens synthetic recycling-trash sample",
            "contributor": "DetLens scripts/make_sample_data.py", "url": None, "date_created": "2024-06-11 00:00:00"}


def coco_categories() -> list[dict]:
    return [{"id": i, "name": name, "supercategory": name} for i, name in enumerate(CLASS_NAMES)]


def coco_image(image_id: int, file_name: str) -> dict:
    return {"width": IMAGE_SIZE, "height": IMAGE_SIZE, "file_name": file_name, "license": 0,
            "flickr_url": None, "coco_url": None, "date_captured": "2024-06-11 12:00:00", "id": image_id}


def coco_annotation(ann_id: int, image_id: int, obj: SceneObject) -> dict:
    x1, y1, x2, y2 = obj.box_xyxy
    w, h = x2 - x1, y2 - y1
    return {"image_id": image_id, "category_id": obj.category_id, "area": round(float(w * h), 2),
            "bbox": [round(float(x1), 1), round(float(y1), 1), round(float(w), 1), round(float(h), 1)],
            "iscrowd": 0, "id": ann_id}


def coco_document(file_names: list[str], objects: list[list[SceneObject]] | None) -> dict:
    """The competition's layout: train.json with annotations; test.json with an empty list."""
    annotations = []
    for image_id, scene_objects in enumerate(objects or []):
        for obj in scene_objects:
            annotations.append(coco_annotation(len(annotations), image_id, obj))
    return {"info": coco_info(), "licenses": [{"id": 0, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
            "images": [coco_image(i, f) for i, f in enumerate(file_names)],
            "categories": coco_categories(), "annotations": annotations}


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------- predictions

def write_predictions(dataset_json: Path, out: Path, profile, seed: int) -> None:
    """Simulate a model on the dataset and write its submission CSV."""
    from core.dataset import load_coco
    from core.simulate import simulate_predictions
    from core.submission import write_submission

    preds = simulate_predictions(load_coco(dataset_json), profile, seed=seed)
    write_submission(preds, out)


# ---------------------------------------------------------------------------- main

def generate(out_dir: Path) -> None:
    from core.simulate import STRONG, WEAK

    (out_dir / "train").mkdir(parents=True, exist_ok=True)
    (out_dir / "test").mkdir(parents=True, exist_ok=True)
    scene_objects = {}
    for split, seed, n_images in (("train", SEED, N_TRAIN), ("test", SEED + 1, N_TEST)):
        names, objects = [], []
        for index, classes in enumerate(plan_scenes(seed, n_images)):
            image, placed = make_scene(seed, index, classes)
            names.append(f"{split}/{index:04d}.jpg")
            objects.append(placed)
            (out_dir / names[-1]).write_bytes(jpeg_bytes(image))
        scene_objects[split] = (names, objects)
    write_json(out_dir / "train.json", coco_document(*scene_objects["train"]))
    write_json(out_dir / "test.json", coco_document(scene_objects["test"][0], None))  # like the real one
    write_predictions(out_dir / "train.json", out_dir / "predictions_strong.csv", STRONG, SIM_SEEDS["strong"])
    write_predictions(out_dir / "train.json", out_dir / "predictions_weak.csv", WEAK, SIM_SEEDS["weak"])
    with tempfile.TemporaryDirectory() as tmp:
        # The test-set model is simulated on the test scenes' truth, which is not shipped.
        hidden_truth = Path(tmp) / "test_truth.json"
        write_json(hidden_truth, coco_document(*scene_objects["test"]))
        write_predictions(hidden_truth, out_dir / "predictions_test.csv", STRONG, SIM_SEEDS["test"])


def generated_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix in {".jpg", ".json", ".csv"}
                  and not p.name.startswith("demo_model") and p.name != "predictions_trained_fcos.csv")


def check(out_dir: Path) -> int:
    """Regenerate into a temp dir and compare every generated file byte for byte."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh, shipped = generated_files(Path(tmp)), generated_files(out_dir)
        bad = sorted(set(fresh) ^ set(shipped))
        bad += [f for f in fresh if f in shipped and not filecmp.cmp(Path(tmp) / f, out_dir / f, shallow=False)]
    for f in bad:
        print(f"differs: {f}")
    print("sample_data is up to date" if not bad else f"{len(bad)} file(s) differ")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "sample_data", help="output folder (default: sample_data/)")
    parser.add_argument("--check", action="store_true", help="regenerate into a temp dir and compare with --out")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out)
    generate(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
