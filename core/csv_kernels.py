"""Compiled (numba) scan of a submission CSV's PredictionStrings: every token as a float64.

core.submission cuts the file into rows and hands the bytes here; a token the fast path cannot
parse exactly is flagged and parsed by float() there. Built ahead of time into one extension
with core.matching_kernels by core.kernel_build (numba's JIT serves where there is no build);
`cache=True` keeps the JIT's machine code in __pycache__.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _is_space(byte):
    """ASCII whitespace as str.split() sees it (space, \\t \\n \\v \\f \\r and \\x1c-\\x1f)."""
    return byte == 32 or 9 <= byte <= 13 or 28 <= byte <= 31


_POWERS_OF_TEN = np.array([10.0 ** k for k in range(23)])  # each exact in float64


@njit(cache=True)
def _token(text, i, n):
    """The token starting at text[i] (not a space, i < n) -> (value, end): its value as float()
    parses it where Clinger's fast path makes that exact (at most 18 digits, an integer up to
    2**53 times or over a power of ten up to 1e22: one IEEE rounding), else NaN, which the caller
    hands to float(); end: the first space or n after it. One pass over the token's bytes."""
    k = i
    negative = False
    if text[k] == 43 or text[k] == 45:                      # + -
        negative = text[k] == 45
        k += 1
    mantissa = 0
    digits = 0
    while k < n:
        d = text[k] - 48                                    # (int64: numba widens the byte)
        if d < 0 or d > 9:
            break
        mantissa = mantissa * 10 + d
        digits += 1
        k += 1
    exponent = 0
    if k < n and text[k] == 46:                             # .
        k += 1
        while k < n:
            d = text[k] - 48
            if d < 0 or d > 9:
                break
            mantissa = mantissa * 10 + d
            digits += 1
            exponent -= 1
            k += 1
    exact = 0 < digits <= 18
    if exact and k < n and (text[k] == 101 or text[k] == 69):  # e E
        k += 1
        sign = 1
        if k < n and (text[k] == 43 or text[k] == 45):
            sign = -1 if text[k] == 45 else 1
            k += 1
        first = k
        written = 0
        while k < n and k - first < 5:
            d = text[k] - 48
            if d < 0 or d > 9:
                break
            written = written * 10 + d
            k += 1
        exact = 0 < k - first <= 4                          # 1e, 1e+ and 1e00001 go to float()
        exponent += sign * written
    if k < n and not _is_space(text[k]):                    # more follows: not a plain decimal
        exact = False
        while k < n and not _is_space(text[k]):
            k += 1
    if not exact:
        return np.nan, k
    if mantissa == 0:
        return (-0.0 if negative else 0.0), k
    if mantissa > 2 ** 53 or exponent > 22 or exponent < -22:
        return np.nan, k
    value = mantissa * _POWERS_OF_TEN[exponent] if exponent >= 0 else mantissa / _POWERS_OF_TEN[-exponent]
    return (-value if negative else value), k


@njit(cache=True, nogil=True)  # core.submission parses runs of rows on threads
def parse_numbers(text, row_start, row_end):
    """Every whitespace-separated token of the rows text[row_start[r]:row_end[r]] as float64.

    text [B] uint8 (ASCII); row_start, row_end [R]. Returns values [T] (NaN where a token is
    not a plain decimal), counts [R] (tokens per row), slow [T]: tokens to parse with float()
    (not a decimal, or beyond the exact fast path). Bit-equal to float() elsewhere.
    """
    counts = count_tokens(text, row_start, row_end)   # a cheap first pass sizes the output exactly
    values = np.empty(counts.sum())
    slow = np.empty(values.shape[0], np.bool_)
    parse_into(text, row_start, row_end, values, slow)
    return values, counts, slow


@njit(cache=True, nogil=True)
def count_tokens(text, row_start, row_end):
    """[R] int64: how many whitespace-separated tokens each row of parse_numbers has."""
    n_rows = row_end.shape[0]
    counts = np.zeros(n_rows, np.int64)
    for r in range(n_rows):
        inside = False
        found = 0
        for i in range(row_start[r], row_end[r]):
            space = _is_space(text[i])
            found += (not space) and (not inside)
            inside = not space
        counts[r] = found
    return counts


@njit(cache=True, nogil=True)
def parse_into(text, row_start, row_end, values, slow):
    """parse_numbers' values and slow written into values [T] and slow [T] (T: the rows' token
    count), so that runs of rows parsed on threads fill one output, with no join of parts."""
    t = 0
    for r in range(row_end.shape[0]):
        i, n = row_start[r], row_end[r]
        while True:
            while i < n and _is_space(text[i]):
                i += 1
            if i == n:
                break
            value, i = _token(text, i, n)
            values[t] = value
            slow[t] = np.isnan(value)
            t += 1


# box_flags' bits: what core.submission reports about a box
NOT_FINITE, LABEL_NOT_INTEGER, SCORE_OUTSIDE, EMPTY_BOX = 1, 2, 4, 8


@njit(cache=True, nogil=True)
def box_flags(boxes):
    """[B] uint8 of the bits above for boxes [B, 6] (label score xmin ymin xmax ymax): a value
    that is not finite; else a label that is not an integer below 2**62 in magnitude; else (a
    readable box) a score outside [0, 1], xmax <= xmin or ymax <= ymin. 0: nothing to report."""
    n = boxes.shape[0]
    flags = np.zeros(n, np.uint8)
    for b in range(n):
        finite = True
        for k in range(6):
            finite = finite and np.isfinite(boxes[b, k])
        if not finite:
            flags[b] = NOT_FINITE
            continue
        label = boxes[b, 0]
        if label != np.round(label) or abs(label) >= 2.0 ** 62:
            flags[b] = LABEL_NOT_INTEGER
            continue
        score = boxes[b, 1]
        f = 0
        if score < 0 or score > 1:
            f |= SCORE_OUTSIDE
        if boxes[b, 4] <= boxes[b, 2] or boxes[b, 5] <= boxes[b, 3]:
            f |= EMPTY_BOX
        flags[b] = f
    return flags


@njit(cache=True, nogil=True)
def outside_images(boxes_xyxy, image, known, width, height, tolerance):
    """[B] bool: box b ([B, 4] xyxy) reaches outside its image image[b] ([0, width] x [0, height]
    of known, width, height [I]) by more than `tolerance`, as core.dataset.outside_image decides
    it; no box is outside an image that is not known."""
    n = boxes_xyxy.shape[0]
    outside = np.zeros(n, np.bool_)
    for b in range(n):
        i = image[b]
        if known[i]:
            outside[b] = (boxes_xyxy[b, 0] < -tolerance or boxes_xyxy[b, 1] < -tolerance
                          or boxes_xyxy[b, 2] > width[i] + tolerance or boxes_xyxy[b, 3] > height[i] + tolerance)
    return outside


@njit(cache=True, nogil=True)
def box_columns(boxes):
    """(labels [B] int64, scores [B], boxes_xyxy [B, 4]) of readable boxes [B, 6] in one pass over
    them (three numpy column copies read the whole [B, 6] three times)."""
    n = boxes.shape[0]
    labels, scores, xyxy = np.empty(n, np.int64), np.empty(n), np.empty((n, 4))
    for b in range(n):
        labels[b] = np.int64(boxes[b, 0])
        scores[b] = boxes[b, 1]
        for k in range(4):
            xyxy[b, k] = boxes[b, 2 + k]
    return labels, scores, xyxy
