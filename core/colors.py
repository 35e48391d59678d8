"""Class colours: one distinct colour per class (readable with 40+ classes); outcome colours are
in core.outcomes.

Class colours are assigned by the class's position in the sorted category list, not by its
id, so COCO's gapped ids (1..90) get the same well-spread palette as 0..N-1.
"""
from __future__ import annotations

import colorsys

# 20 hand-picked, mutually distinct colours readable on photos (Kelly/Glasbey-like order:
# the first ten differ the most, so a 10-class dataset never gets two similar hues).
_BASE_PALETTE = [
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
    "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3",
    "#808000", "#ffd8b1", "#000075", "#a9a9a9",
]


def _golden_ratio_color(i: int) -> str:
    """A colour for palette slot i >= len(_BASE_PALETTE): hues spread by the golden angle."""
    hue = (0.1 + i * 0.618033988749895) % 1.0
    lightness = (0.45, 0.6, 0.35)[i % 3]  # vary lightness too so neighbours in hue still differ
    r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.85)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def palette(n: int) -> list[str]:
    """n distinct hex colours; the first 20 are hand-picked, the rest golden-angle hues."""
    return [_BASE_PALETTE[i] if i < len(_BASE_PALETTE) else _golden_ratio_color(i) for i in range(n)]


def class_colors(category_ids) -> dict[int, str]:
    """category id -> hex colour, by position in the sorted ids."""
    ids = sorted(int(c) for c in category_ids)
    return dict(zip(ids, palette(len(ids))))


def text_color_on(hex_color: str) -> str:
    """Black or white, whichever reads better on hex_color (WCAG relative luminance)."""
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "#000000" if luminance > 0.179 else "#ffffff"

