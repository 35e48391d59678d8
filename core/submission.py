"""Read, validate and write submission CSVs (`PredictionString,image_id`, VOC xyxy pixels).

PredictionString holds `label score xmin ymin xmax ymax` per box. Rows are split in python
(one per image, a few thousand); the boxes' numbers are parsed in one pass by pandas' C
parser over all tokens at once and checked as whole arrays. A bad row becomes an ERROR
`Problem` with its physical CSV line (header = line 1) and is left out; the rows around it load.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import outside_image, read_source
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions

PREDICTION_COLUMN = "PredictionString"
IMAGE_COLUMN = "image_id"
TOKENS_PER_BOX = 6  # label score xmin ymin xmax ymax
MAX_EXAMPLES = 3    # offending boxes quoted per problem
MAX_LISTED = 50     # unknown image_ids warned one by one before a "... and N more"
# Whitespace of any kind separates tokens; the fast parser reads one token per line.
_TO_NEWLINE = str.maketrans({" ": "\n", "\t": "\n", "\r": "\n", "\x0b": "\n", "\x0c": "\n"})


@dataclass
class _Rows:
    """The CSV's data rows that name an image, before their boxes are parsed."""

    strings: list[str] = field(default_factory=list)   # PredictionString per row
    image_ids: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)     # physical 1-based line of the row's start


def read_submission(source, *, dataset: Dataset | None = None, name: str | None = None) -> Predictions:
    """Parse a submission CSV (path, bytes or file-like) into `Predictions`.

    Never raises on bad rows: each becomes an ERROR Problem (with its line) and is left out.
    Raises ValidationError only when the file is unusable as a whole (not CSV text, no
    PredictionString/image_id header). With `dataset`, labels must be its category ids and
    image_ids it lacks are WARNINGs.
    """
    data, name, _ = read_source(source, name)
    problems: list[Problem] = []
    text = _decode(data, name)
    rows = _split_rows(text, name, problems)
    values, counts = _parse_numbers(rows.strings)
    row_ok, row_of_box, boxes = _check_boxes(values, counts, rows, dataset, name, problems)

    keep_box = row_ok[row_of_box]                                     # [B] bool
    kept_rows = np.flatnonzero(row_ok)
    new_pos = np.full(len(row_ok), -1, dtype=np.int64)
    new_pos[kept_rows] = np.arange(len(kept_rows))
    image_keys = np.array([rows.image_ids[i] for i in kept_rows], dtype=object)
    lines = np.asarray(rows.lines, dtype=np.int64)[kept_rows]
    boxes = boxes[keep_box]
    if dataset is not None:
        _check_images_against(dataset, image_keys, lines, rows.image_ids, name, problems)
        _warn_outside_images(dataset, image_keys, lines, new_pos[row_of_box[keep_box]], boxes[:, 2:6], name,
                             problems)
    problems.sort(key=lambda p: (p.line if p.line is not None else 0))
    return Predictions(
        image_keys=image_keys,
        image_pos=new_pos[row_of_box[keep_box]],
        labels=boxes[:, 0].astype(np.int64),
        scores=boxes[:, 1].copy(),
        boxes_xyxy=boxes[:, 2:6].copy().reshape(-1, 4),
        lines=lines,
        problems=problems,
        source=name,
    )


def _fatal(name: str, message: str, line: int | None = None) -> ValidationError:
    return ValidationError([Problem(Severity.ERROR, message, file=name, line=line)],
                           summary=f"{name}: not a usable submission CSV")


def _decode(data: bytes, name: str) -> str:
    """The file as text (UTF-8, BOM dropped, newlines normalised); rejects what is not CSV."""
    if b"\x00" in data[:4096]:
        raise _fatal(name, "binary file, neither a submission CSV nor a COCO results json; "
                            "give the CSV (PredictionString,image_id) or the results json")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fatal(name, f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
    stripped = text.lstrip()
    if not stripped:
        raise _fatal(name, "empty file; a submission needs the header PredictionString,image_id and one row per image")
    if stripped[0] in "[{":
        raise _fatal(name, "this is JSON, not a submission CSV; load it with core.predictions.load_predictions "
                           "(COCO results json) or give the CSV")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _records(text: str):
    """(first line, last line, fields) per non-blank record; csv module only when quotes can span lines."""
    if '"' not in text:
        for number, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                yield number, number, line.split(",")
        return
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))  # one image may have many boxes
    reader = csv.reader(io.StringIO(text))
    next_line = 1
    for fields in reader:
        start, next_line = next_line, reader.line_num + 1
        if any(f.strip() for f in fields):
            yield start, reader.line_num, fields


def _split_rows(text: str, name: str, problems: list[Problem]) -> _Rows:
    """Find the columns from the header and collect each row's PredictionString and image_id."""
    records = _records(text)
    try:
        header_line, _, header = next(records)
    except StopIteration:
        raise _fatal(name, "no header row; the first line must be PredictionString,image_id") from None
    except csv.Error as exc:
        raise _fatal(name, f"not a readable CSV: {exc}") from None
    names = [h.strip() for h in header]
    lowered = [h.lower() for h in names]
    missing = [c for c in (PREDICTION_COLUMN, IMAGE_COLUMN) if c.lower() not in lowered]
    if missing:
        raise _fatal(name, f"header {','.join(names)[:120]!r} lacks the column(s) {', '.join(missing)}; "
                           f"the first line must name {PREDICTION_COLUMN} and {IMAGE_COLUMN} (either order)",
                     line=header_line)
    pred_col, image_col = lowered.index(PREDICTION_COLUMN.lower()), lowered.index(IMAGE_COLUMN.lower())
    n_fields = len(header)
    rows = _Rows()
    first_line_of: dict[str, int] = {}
    try:
        for line, last_line, fields in records:
            spans = f" (this record runs over lines {line}-{last_line}: an unclosed quote?)" if last_line > line else ""
            if len(fields) != n_fields:
                problems.append(Problem(
                    Severity.ERROR, f"row has {len(fields)} fields, the header has {n_fields}{spans}; "
                    "a stray or missing comma? (quote fields that contain commas)",
                    file=name, line=line, image_id=_guess_image_id(fields, image_col, n_fields)))
                continue
            image_id = fields[image_col].strip()
            if not image_id:
                problems.append(Problem(Severity.ERROR, f"image_id is empty{spans}; every row must name its image "
                                        "(e.g. test/0000.jpg)", file=name, line=line))
                continue
            if image_id in first_line_of:
                problems.append(Problem(
                    Severity.ERROR, f"image_id listed twice (first on line {first_line_of[image_id]}); "
                    "put all boxes of an image in one row; this row is left out", file=name, line=line,
                    image_id=image_id))
                continue
            if spans and "\n" in image_id:
                problems.append(Problem(Severity.ERROR, f"image_id contains a line break{spans}",
                                        file=name, line=line, image_id=image_id))
                continue
            first_line_of[image_id] = line
            string = fields[pred_col]
            rows.strings.append("" if len(string) < 8 and string.strip().lower() == "nan" else string)
            rows.image_ids.append(image_id)
            rows.lines.append(line)
    except csv.Error as exc:
        problems.append(Problem(Severity.ERROR, f"CSV syntax error: {exc}; the rest of the file is not read",
                                file=name))
    return rows


def _guess_image_id(fields: list[str], image_col: int, n_fields: int) -> str | None:
    """The image_id of a row with the wrong field count, when it can still be told (for messages)."""
    if image_col == n_fields - 1 and fields and fields[-1].strip():
        return fields[-1].strip()
    if image_col == 0 and fields and fields[0].strip():
        return fields[0].strip()
    return None


def _parse_numbers(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All tokens of all rows as one float64 array ([T], NaN where not a number) and [R] token counts."""
    # One token per line, so pandas' C parser reads every number of the file in one call and a
    # row's token count is its newline count (+1) when tokens are single-space separated.
    one_per_line = [s.strip().translate(_TO_NEWLINE) for s in strings]
    counts = np.fromiter((s.count("\n") + 1 if s else 0 for s in one_per_line), dtype=np.int64,
                         count=len(strings))
    if not counts.any():
        return np.zeros(0), counts
    try:
        values = pd.read_csv(
            io.BytesIO("\n".join(s for s in one_per_line if s).encode()), header=None, names=["v"],
            dtype=np.float64, engine="c", sep="\t", quoting=csv.QUOTE_NONE, skip_blank_lines=True,
            na_filter=False,
        )["v"].to_numpy()
    except (ValueError, pd.errors.ParserError):
        values = None  # a token is not a number: find it row by row below
    if values is not None and len(values) != counts.sum():  # runs of spaces: count tokens properly
        counts = np.fromiter((len(s.split()) for s in strings), dtype=np.int64, count=len(strings))
    if values is not None and len(values) == counts.sum():
        return values, counts
    parsed = [_parse_row(s) for s in strings]
    counts = np.fromiter((len(v) for v in parsed), dtype=np.int64, count=len(parsed))
    return np.concatenate(parsed), counts


def _parse_row(string: str) -> np.ndarray:
    """[n] float64 of one row's tokens; NaN for tokens that are not numbers."""
    tokens = string.split()
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        return np.array([_to_float(t) for t in tokens], dtype=np.float64)


def _to_float(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return np.nan


def _check_boxes(values: np.ndarray, counts: np.ndarray, rows: _Rows, dataset: Dataset | None,
                 name: str, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check every box at once. Returns row_ok [R] bool, row_of_box [B], boxes [B, 6].

    Rows whose tokens cannot be cut into boxes contribute no boxes; every failing row gets one
    Problem per kind of failure, quoting its first offending boxes.
    """
    n_rows = len(counts)
    row_ok = np.ones(n_rows, dtype=bool)
    row_of_token = np.repeat(np.arange(n_rows), counts)                       # [T]

    # Token count not a multiple of 6: the row cannot be cut into boxes.
    ragged = counts % TOKENS_PER_BOX != 0
    for r in np.flatnonzero(ragged):
        _row_problem(problems, rows, r, name,
                     f"PredictionString has {counts[r]} values, not a multiple of 6 "
                     "(label score xmin ymin xmax ymax per box); a value is missing or extra")
    row_ok &= ~ragged

    # Non-numeric tokens (NaN/inf included).
    not_number = ~np.isfinite(values)
    bad_token_rows = np.unique(row_of_token[not_number])
    for r in bad_token_rows:
        tokens = rows.strings[r].split()
        bad = [t for t, v in zip(tokens, _parse_row(rows.strings[r])) if not np.isfinite(v)]
        _row_problem(problems, rows, r, name,
                     f"{len(bad)} value(s) are not numbers: {', '.join(map(repr, bad[:MAX_EXAMPLES]))}"
                     f"{' ...' if len(bad) > MAX_EXAMPLES else ''}; every value must be a number")
    row_ok[bad_token_rows] = False

    # Cut the rows that have whole boxes into [B, 6].
    whole = ~ragged
    token_keep = whole[row_of_token]
    boxes = values[token_keep].reshape(-1, TOKENS_PER_BOX)                      # [B,6]
    boxes_per_row = np.where(whole, counts // TOKENS_PER_BOX, 0)              # [R]
    row_of_box = np.repeat(np.arange(n_rows), boxes_per_row)                   # [B]
    first_box = np.cumsum(boxes_per_row) - boxes_per_row                       # [R]
    box_index = np.arange(len(row_of_box)) - first_box[row_of_box]             # [B] box number in its row

    finite = np.isfinite(boxes).all(axis=1)
    labels, scores = boxes[:, 0], boxes[:, 1]
    with np.errstate(invalid="ignore"):
        integral = finite & (labels == np.round(labels)) & (np.abs(labels) < 2**62)
        checks = [
            (finite & ~integral,
             "label(s) are not integers", "the first value of each box is the class id",
             lambda b: repr(float(labels[b]))),
            (finite & ((scores < 0) | (scores > 1)),
             "score(s) outside [0, 1]", "scores must be probabilities",
             lambda b: repr(float(scores[b]))),
            (finite & ((boxes[:, 4] <= boxes[:, 2]) | (boxes[:, 5] <= boxes[:, 3])),
             "box(es) with xmax <= xmin or ymax <= ymin",
             "boxes are xmin ymin xmax ymax (VOC, not COCO x y w h)",
             lambda b: "[" + " ".join(f"{v:g}" for v in boxes[b, 2:]) + "]"),
        ]
        if dataset is not None:
            known = dataset.category_ids
            shown = ", ".join(map(str, known[:20].tolist())) + (" ..." if len(known) > 20 else "")
            checks.append((integral & ~np.isin(labels, known),
                           "label(s) are not category ids of the ground truth",
                           f"valid ids: {shown}",
                           lambda b: f"{int(labels[b])}"))
        elif len(labels):
            checks.append((integral & (labels < 0), "negative label(s)", "labels are category ids",
                           lambda b: f"{int(labels[b])}"))
    for bad_box, what, hint, show in checks:
        bad_idx = np.flatnonzero(bad_box)
        if not len(bad_idx):
            continue
        bad_rows, first = np.unique(row_of_box[bad_idx], return_index=True)
        n_per_row = np.bincount(row_of_box[bad_idx], minlength=n_rows)
        ends = np.append(first[1:], len(bad_idx))
        for r, start, end in zip(bad_rows, first, ends):
            quoted = bad_idx[start:min(end, start + MAX_EXAMPLES)]
            examples = ", ".join(f"box {box_index[b] + 1}: {show(b)}" for b in quoted)
            more = " ..." if end - start > MAX_EXAMPLES else ""
            _row_problem(problems, rows, r, name, f"{n_per_row[r]} {what} ({examples}{more}); {hint}")
        row_ok[bad_rows] = False
    return row_ok, row_of_box, boxes


def _row_problem(problems: list[Problem], rows: _Rows, r: int, name: str, message: str) -> None:
    problems.append(Problem(Severity.ERROR, message + "; this row is left out",
                            file=name, line=rows.lines[r], image_id=rows.image_ids[r]))


def _check_images_against(dataset: Dataset, image_keys: np.ndarray, lines: np.ndarray, row_image_ids: list[str],
                          name: str, problems: list[Problem]) -> None:
    """WARNING per loaded image_id the dataset lacks; one WARNING for dataset images with no row at all."""
    index = dataset.image_index_of_file(image_keys)
    unknown = np.flatnonzero(index < 0)
    hints = _same_base_name(dataset, image_keys[unknown])
    for r, hint in zip(unknown[:MAX_LISTED], hints):
        problems.append(Problem(
            Severity.WARNING, f"image_id is not an image of {dataset.source}{hint} (a test image? a wrong path "
            "prefix?); it is left out of the evaluation", file=name, line=int(lines[r]), image_id=image_keys[r]))
    if len(unknown) > MAX_LISTED:
        problems.append(Problem(
            Severity.WARNING, f"... and {len(unknown) - MAX_LISTED} more image_ids that are not images of "
            f"{dataset.source}", file=name, line=int(lines[unknown[MAX_LISTED]])))
    listed = np.zeros(len(dataset.images), dtype=bool)
    row_index = dataset.image_index_of_file(row_image_ids)   # rows left out for errors still count as listed
    listed[row_index[row_index >= 0]] = True
    if len(row_image_ids) and not listed.all():
        absent = dataset.images["file_name"].to_numpy()[~listed]
        problems.append(Problem(
            Severity.WARNING, f"{len(absent)} of {len(listed)} images of {dataset.source} have no row "
            f"(e.g. {', '.join(map(str, absent[:3]))}); they count as images with no predictions",
            file=name))


def _warn_outside_images(dataset: Dataset, image_keys: np.ndarray, lines: np.ndarray, image_pos: np.ndarray,
                         boxes: np.ndarray, name: str, problems: list[Problem]) -> None:
    """One WARNING for all boxes reaching outside their image: kept as they are, as COCO evaluates them."""
    index = dataset.image_index_of_file(image_keys)[image_pos]               # [B] dataset row or -1
    known = index >= 0
    width = dataset.images["width"].to_numpy(dtype=np.float64)[index]
    height = dataset.images["height"].to_numpy(dtype=np.float64)[index]
    outside = known & outside_image(boxes, width, height)
    if not outside.any():
        return
    first = int(np.flatnonzero(outside)[0])
    row = int(image_pos[first])
    problems.append(Problem(
        Severity.WARNING, f"{int(outside.sum())} box(es) in {len(np.unique(image_pos[outside]))} row(s) reach "
        f"outside their image (first: line {int(lines[row])}, [{' '.join(f'{v:g}' for v in boxes[first])}] in a "
        f"{width[first]:g}x{height[first]:g} image); they are kept as they are, as COCO evaluates them",
        file=name))


def _same_base_name(dataset: Dataset, keys: np.ndarray) -> list[str]:
    """For each unknown key, ' (the dataset has NAME)' when one dataset image has its base name."""
    def base(name: str) -> str:
        return name.replace("\\", "/").rsplit("/", 1)[-1]

    file_names = dataset.images["file_name"].tolist()
    by_base = pd.Series(file_names, index=[base(f) for f in file_names])
    by_base = by_base[~by_base.index.duplicated(keep=False)]
    return [f" (the dataset has {by_base[base(k)]!r})" if base(k) in by_base.index else "" for k in keys]


# ---------------------------------------------------------------- writing


def format_numbers(values: np.ndarray) -> list[str]:
    """Shortest round-trip text of each float; whole numbers without '.0' (605.0 -> '605')."""
    values = np.asarray(values, dtype=np.float64).ravel()
    text = list(map(repr, values.tolist()))
    whole = np.flatnonzero((values == np.round(values)) & (np.abs(values) < 2**53))
    for i, v in zip(whole.tolist(), values[whole].astype(np.int64).tolist()):
        text[i] = str(v)
    return text


def format_prediction_strings(preds: Predictions) -> list[str]:
    """One PredictionString per entry of preds.image_keys ('' when the image has no boxes)."""
    order = np.argsort(preds.image_pos, kind="stable")                       # boxes grouped by image
    boxes = preds.boxes_xyxy[order].reshape(-1, 4)
    columns = [list(map(str, preds.labels[order].tolist())), format_numbers(preds.scores[order])]
    columns += [format_numbers(boxes[:, k]) for k in range(4)]
    per_box = list(map(" ".join, zip(*columns)))                             # [N] "label score x1 y1 x2 y2"
    starts = np.searchsorted(preds.image_pos[order], np.arange(len(preds.image_keys) + 1)).tolist()
    return [" ".join(per_box[starts[i]:starts[i + 1]]) for i in range(len(preds.image_keys))]


def write_submission(preds: Predictions, dest) -> None:
    """Write preds as a submission CSV (PredictionString,image_id; VOC xyxy) to a path or text buffer.

    Every image in preds.image_keys gets a row, with an empty PredictionString when it has no boxes.
    """
    strings = format_prediction_strings(preds)
    if isinstance(dest, (str, Path)):
        with open(dest, "w", newline="", encoding="utf-8") as handle:
            _write_rows(handle, strings, preds.image_keys)
    else:
        _write_rows(dest, strings, preds.image_keys)


def _write_rows(handle, strings: list[str], image_keys: np.ndarray) -> None:
    keys = list(map(str, image_keys))
    if any(c in key for key in keys for c in ',"\n\r'):   # only then does a field need CSV quoting
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([PREDICTION_COLUMN, IMAGE_COLUMN])
        writer.writerows(zip(strings, keys))
        return
    handle.write(f"{PREDICTION_COLUMN},{IMAGE_COLUMN}\n")
    handle.write("".join(f"{s},{k}\n" for s, k in zip(strings, keys)))
