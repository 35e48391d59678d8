"""Read, validate and write submission CSVs (`PredictionString,image_id`, VOC xyxy pixels).

PredictionString holds `label score xmin ymin xmax ymax` per box. Rows are split in python
(one per image, a few thousand); the boxes' numbers are parsed in one compiled pass over the
bytes of all rows (core.csv_kernels.parse_numbers, bit-equal to float()) and checked as
whole arrays. `parse_submission` does all that needs no ground truth, so that it can run while
the ground truth loads; `finish(dataset)` adds the checks against it.

Policy: keep every box the competition's scorer (pycocotools on the converted results) keeps.
Each kind of problem is one `Problem` naming its physical CSV lines (header = line 1):
- kept, ERROR (the server may reject the file): score outside [0, 1], xmax <= xmin or
  ymax <= ymin, a label that is no category id (or negative without a ground truth);
- kept, WARNING: an image_id on several rows (every row is scored, as pycocotools does);
- left out, ERROR (cannot be read): a box with a token that is not a finite number or a
  label that is not an integer; every box of a row whose value count is not a multiple
  of 6; a row with the wrong field count, an empty image_id or one with a line break.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import OUTSIDE_TOLERANCE, read_source
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions

PREDICTION_COLUMN = "PredictionString"
IMAGE_COLUMN = "image_id"
TOKENS_PER_BOX = 6  # label score xmin ymin xmax ymax
MAX_EXAMPLES = 3    # offending boxes quoted per problem
MAX_LINES = 20      # lines named per problem before a "... and N more"
MAX_LISTED = 50     # unknown image_ids warned one by one before a "... and N more"


@dataclass
class _Rows:
    """The CSV's data rows that name an image, before their boxes are parsed."""

    strings: list[str] = field(default_factory=list)   # PredictionString per row
    image_ids: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)     # physical 1-based line of the row's start


def read_submission(source, *, dataset: Dataset | None = None, name: str | None = None) -> Predictions:
    """Parse a submission CSV (path, bytes or file-like) into `Predictions`.

    Never raises on bad rows or boxes: each kind of problem is one Problem naming its lines;
    what the scorer would score is kept, what cannot be read is left out (module docstring).
    Raises ValidationError only when the file is unusable as a whole (not CSV text, no
    PredictionString/image_id header). With `dataset`, labels should be its category ids and
    image_ids it lacks are WARNINGs.
    """
    return parse_submission(source, name=name).finish(dataset)


@dataclass
class ParsedSubmission:
    """A submission CSV read as far as it can be without the ground truth (rows, numbers, box
    checks): `finish(dataset)` adds the checks against the dataset. Lets a caller parse the CSV
    while the ground truth loads (the number scan releases the GIL)."""

    name: str
    rows: _Rows
    problems: list[Problem]          # in report order up to the label check, which finish() adds
    later: list[Problem]             # found without the dataset, reported after the label check
    labels_readable: np.ndarray      # [B] bool over every box of whole rows: label and values read
    all_labels: np.ndarray           # [B] float64 label of each such box
    all_row_of_box: np.ndarray       # [B] its row
    image_keys: np.ndarray           # [I] object: distinct image_ids in order of first appearance
    image_pos: np.ndarray            # [N] image of each kept box, boxes grouped by image
    box_lines: np.ndarray            # [N] its CSV line
    boxes: np.ndarray                # [N, 6] label score xmin ymin xmax ymax
    lines: np.ndarray                # [I] line of each image's first row

    def finish(self, dataset: Dataset | None = None) -> Predictions:
        """The `Predictions`, with the checks that need the dataset (labels, image_ids, image sizes)."""
        problems = list(self.problems)
        _check_labels(self.labels_readable, self.all_labels, self.all_row_of_box, self.rows, dataset,
                      self.name, problems)
        problems += self.later
        boxes = self.boxes
        if dataset is not None:
            _check_images_against(dataset, self.image_keys, self.lines, self.rows.image_ids, self.name, problems)
            _warn_outside_images(dataset, self.image_keys, self.box_lines, self.image_pos, boxes[:, 2:6],
                                 self.name, problems)
        problems.sort(key=lambda p: (p.line if p.line is not None else 0))
        from core.kernel_build import kernel

        labels, scores, boxes_xyxy = kernel("box_columns")(boxes)     # (the boxes kept are readable)
        return Predictions(
            image_keys=self.image_keys,
            image_pos=self.image_pos,
            labels=labels,
            scores=scores,
            boxes_xyxy=boxes_xyxy.reshape(-1, 4),
            lines=self.lines,
            problems=problems,
            source=self.name,
        )


def parse_submission(source, *, name: str | None = None) -> ParsedSubmission:
    """Read a submission CSV (path, bytes or file-like) as far as no ground truth is needed;
    `.finish(dataset)` gives what read_submission gives. Raises as read_submission raises."""
    data, name, _ = read_source(source, name)
    problems: list[Problem] = []
    rows = _plain_rows(data)
    if rows is None:                      # anything unusual: the general reader finds and names it
        rows = _split_rows(_decode(data, name), name, problems)
    values, counts = _parse_numbers(rows.strings)
    keep_box, row_of_box, boxes = _check_boxes(values, counts, rows, name, problems)

    # One image per distinct image_id, in order of first appearance; a repeated image_id's
    # boxes join its first row's image, as the scorer pools all boxes of an image.
    row_image, image_keys = pd.factorize(pd.Series(rows.image_ids, dtype=object), sort=False)
    image_keys = np.asarray(image_keys, dtype=object)
    row_lines = np.asarray(rows.lines, dtype=np.int64)
    first_row = np.flatnonzero(~pd.Series(rows.image_ids, dtype=object).duplicated().to_numpy())
    later: list[Problem] = []
    _warn_repeated_images(rows, row_image, first_row, name, later)
    all_labels, all_row_of_box = boxes[:, 0], row_of_box
    if not keep_box.all():                                                    # usually every box is kept
        row_of_box, boxes = row_of_box[keep_box], boxes[keep_box]
    image_pos = row_image.astype(np.int64)[row_of_box]                        # [N]
    box_lines = row_lines[row_of_box]                                         # [N]
    if len(first_row) < len(row_image):                                       # regroup by image
        order = np.argsort(image_pos, kind="stable")
        image_pos, box_lines, boxes = image_pos[order], box_lines[order], boxes[order]
    return ParsedSubmission(name=name, rows=rows, problems=problems, later=later, labels_readable=keep_box,
                            all_labels=all_labels, all_row_of_box=all_row_of_box, image_keys=image_keys,
                            image_pos=image_pos, box_lines=box_lines, boxes=boxes, lines=row_lines[first_row])


def _lines_text(lines) -> str:
    """'line 3' / 'lines 3, 7, 9 ... and 4 more': the distinct lines, in the order given."""
    lines = list(dict.fromkeys(int(v) for v in lines))
    shown = ", ".join(map(str, lines[:MAX_LINES]))
    more = f" ... and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _kind_problem(severity: Severity, message: str, lines: list[int], image_ids: list[str], name: str) -> Problem:
    """One Problem for every offender of a kind: at its first line, with the image_id when one row offends."""
    distinct = set(image_ids)
    return Problem(severity, message, file=name, line=int(min(lines)),
                   image_id=image_ids[0] if len(distinct) == 1 else None)


def _warn_repeated_images(rows: "_Rows", row_image: np.ndarray, first_row: np.ndarray, name: str,
                          problems: list[Problem]) -> None:
    """One WARNING for all image_ids on more than one row, naming their lines."""
    repeated = np.flatnonzero(np.bincount(row_image, minlength=len(first_row)) > 1) if len(row_image) else []
    if not len(repeated):
        return
    lines_of = {int(i): [] for i in repeated}
    for r, i in enumerate(row_image.tolist()):
        if i in lines_of:
            lines_of[i].append(rows.lines[r])
    listed = [f"{rows.image_ids[first_row[i]]!r} on {_lines_text(lines_of[i])}" for i in lines_of]
    more = f" ... and {len(listed) - MAX_LINES} more" if len(listed) > MAX_LINES else ""
    all_lines = [line for i in lines_of for line in lines_of[i]]
    problems.append(_kind_problem(
        Severity.WARNING, f"{len(listed)} image_id(s) on more than one row: image_id {'; '.join(listed[:MAX_LINES])}"
        f"{more}; every row is scored, as pycocotools does (the boxes of all rows of an image are pooled)",
        all_lines, [rows.image_ids[first_row[i]] for i in lines_of], name))


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
        raise _fatal(name, "this is JSON, not a submission CSV; load it with core.prediction_files.load_predictions "
                           "(COCO results json) or give the CSV")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


class _Spans:
    """PredictionStrings as byte spans of the file, decoded only when one is asked for (a
    competition file's are 200 MB at 10x; the parser reads the bytes)."""

    def __init__(self, data: bytes, starts: list[int], ends: list[int]):
        self.data = data
        self.starts = np.asarray(starts, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, r: int) -> str:
        return self.data[self.starts[r]:self.ends[r]].decode("ascii")


def _plain_rows(data: bytes) -> _Rows | None:
    """The rows of a plain file without decoding it: ASCII, no quotes, the two columns, every
    non-blank row with one comma and an image_id. None for anything else (the general reader
    then reads it and names what is wrong)."""
    if not data.isascii() or b'"' in data or b"\x00" in data[:4096] or (
            b"\r" in data and data.count(b"\r") != data.count(b"\r\n")):     # (counting takes ~15 ms)
        return None
    n = len(data)
    end = data.find(b"\n")
    end = n if end < 0 else end
    names = [h.strip().lower() for h in data[:end].decode("ascii").split(",")]
    if sorted(names) != sorted([PREDICTION_COLUMN.lower(), IMAGE_COLUMN.lower()]):
        return None
    prediction_first = names[0] == PREDICTION_COLUMN.lower()
    starts, ends, image_ids, lines = [], [], [], []
    pos, line = end + 1, 1
    find, count = data.find, data.count
    while pos < n:
        end = find(b"\n", pos)
        end = n if end < 0 else end
        line += 1
        comma = find(b",", pos, end)
        if comma < 0 or count(b",", comma + 1, end):
            if comma < 0 and not data[pos:end].strip():
                pos = end + 1                 # a blank line
                continue
            return None
        if prediction_first:
            start, stop, image_id = pos, comma, data[comma + 1:end].strip()
        else:
            start, stop, image_id = comma + 1, end, data[pos:comma].strip()
        if not image_id:
            return None
        if stop - start < 8 and data[start:stop].strip().lower() == b"nan":
            stop = start
        starts.append(start)
        ends.append(stop)
        image_ids.append(image_id.decode("ascii"))
        lines.append(line)
        pos = end + 1
    return _Rows(strings=_Spans(data, starts, ends), image_ids=image_ids, lines=lines)


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
    unreadable: dict[str, list[tuple[int, str | None, str]]] = {"fields": [], "empty": [], "break": []}
    try:
        for line, last_line, fields in records:
            where = f"line {line}" + (f" (a record running over lines {line}-{last_line}: an unclosed quote?)"
                                      if last_line > line else "")
            if len(fields) != n_fields:
                unreadable["fields"].append((line, _guess_image_id(fields, image_col, n_fields),
                                             f"{where}: {len(fields)} fields"))
                continue
            image_id = fields[image_col].strip()
            if not image_id:
                unreadable["empty"].append((line, None, where))
                continue
            if last_line > line and "\n" in image_id:
                unreadable["break"].append((line, image_id, where))
                continue
            string = fields[pred_col]
            rows.strings.append("" if len(string) < 8 and string.strip().lower() == "nan" else string)
            rows.image_ids.append(image_id)
            rows.lines.append(line)
    except csv.Error as exc:
        problems.append(Problem(Severity.ERROR, f"CSV syntax error: {exc}; the rest of the file is not read",
                                file=name))
    for kind, what in (("fields", f"row(s) whose field count is not the header's {n_fields} (a stray or "
                                  "missing comma? quote fields that contain commas)"),
                       ("empty", "row(s) with an empty image_id (every row must name its image, e.g. "
                                 "test/0000.jpg)"),
                       ("break", "row(s) whose image_id contains a line break")):
        found = unreadable[kind]
        if found:
            details = "; ".join(d for _, _, d in found[:MAX_EXAMPLES]) + (" ..." if len(found) > MAX_EXAMPLES else "")
            problems.append(_kind_problem(
                Severity.ERROR, f"{len(found)} {what} on {_lines_text(l for l, _, _ in found)} ({details}); "
                "these rows cannot be read and are left out", [l for l, _, _ in found],
                [i for _, i, _ in found], name))
    return rows


def _guess_image_id(fields: list[str], image_col: int, n_fields: int) -> str | None:
    """The image_id of a row with the wrong field count, when it can still be told (for messages)."""
    if image_col == n_fields - 1 and fields and fields[-1].strip():
        return fields[-1].strip()
    if image_col == 0 and fields and fields[0].strip():
        return fields[0].strip()
    return None


def _parse_numbers(strings) -> tuple[np.ndarray, np.ndarray]:
    """All tokens of all rows as one float64 array ([T], NaN where not a number) and [R] token counts.

    strings: the rows' PredictionStrings, a list or the file's `_Spans`."""
    from core.kernel_build import kernel  # compiled: loaded when a CSV is read, not on import

    if isinstance(strings, _Spans):
        data, row_start, row_end = strings.data, strings.starts, strings.ends
    else:
        joined = " ".join(strings)
        data = joined.encode()
        if len(data) != len(joined):      # non-ASCII: str.split() knows more whitespace
            parsed = [_parse_row(s) for s in strings]
            counts = np.fromiter((len(v) for v in parsed), dtype=np.int64, count=len(parsed))
            return (np.concatenate(parsed) if parsed else np.zeros(0)), counts
        del joined
        row_end = np.cumsum(np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)) + 1) - 1
        row_start = row_end - np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    # compiled passes over the bytes: decimals parsed exactly as float() parses them
    values, counts, slow = _parse_in_parts(kernel("parse_into"), np.frombuffer(data, np.uint8),
                                           row_start, row_end)
    if slow.any():                        # 17-digit reprs, inf, nan, words: float() decides
        token = np.flatnonzero(slow)
        row_start = np.cumsum(counts) - counts
        row = np.searchsorted(row_start, token, side="right") - 1
        split = {r: strings[r].split() for r in np.unique(row).tolist()}
        texts = [split[r][k] for r, k in zip(row.tolist(), (token - row_start[row]).tolist())]
        try:
            values[token] = np.array(texts, dtype=np.float64)
        except ValueError:
            values[token] = [_to_float(t) for t in texts]
    return values, counts


_BYTES_PER_PART = 8_000_000  # below this a thread costs about what it saves


def _parse_in_parts(parse, text: np.ndarray, row_start: np.ndarray, row_end: np.ndarray) -> tuple:
    """(values, counts, slow) as core.csv_kernels.parse_numbers gives them, over runs of rows of
    about equal bytes, one per core, on threads (the compiled passes release the GIL): each
    run's tokens counted, then parse(text, row_start, row_end, values, slow) (parse_into) fills
    the run's slices of the one output: no join of the runs' outputs (~0.5 GB at 10x scale)."""
    import os

    from core.kernel_build import kernel

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    n_parts = min(cores, max(1, len(text) // _BYTES_PER_PART))
    cuts = np.searchsorted(row_end, np.linspace(0, len(text), n_parts + 1)[1:-1]).tolist()
    bounds = [(a, b) for a, b in zip([0, *cuts], [*cuts, len(row_end)]) if b > a]
    count = kernel("count_tokens")

    def run(job, parts):
        if len(parts) < 2:
            return [job(part) for part in parts]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(parts)) as pool:
            return list(pool.map(job, parts))

    counts = run(lambda ab: count(text, row_start[ab[0]:ab[1]], row_end[ab[0]:ab[1]]), bounds)
    counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    values, slow = np.empty(int(ends[-1]) if len(ends) else 0), np.empty(int(ends[-1]) if len(ends) else 0, bool)

    def fill(ab: tuple) -> None:
        a, b = ab
        first, last = (int(ends[a - 1]) if a else 0), int(ends[b - 1])
        parse(text, row_start[a:b], row_end[a:b], values[first:last], slow[first:last])

    run(fill, bounds)
    return values, counts, slow


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


# core.csv_kernels.box_flags' bits (importing that module would load numba, which the
# ahead-of-time kernels spare a command-line run)
_NOT_FINITE, _LABEL_NOT_INTEGER, _SCORE_OUTSIDE, _EMPTY_BOX = 1, 2, 4, 8


def _check_boxes(values: np.ndarray, counts: np.ndarray, rows: _Rows,
                 name: str, problems: list[Problem]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check every box at once, as far as no dataset is needed (labels: _check_labels).
    Returns keep_box [B] bool, row_of_box [B], boxes [B, 6].

    A row whose tokens cannot be cut into boxes contributes no boxes; a box that cannot be
    read is left out; every other box is kept, flagged when the server may reject it. One
    Problem per kind of failure, naming the lines and quoting the first offending boxes.
    """
    n_rows = len(counts)
    row_lines = np.asarray(rows.lines, dtype=np.int64)

    # Token count not a multiple of 6: where one value is missing the boxes after it cannot be
    # told apart, so the whole row is left out.
    ragged = np.flatnonzero(counts % TOKENS_PER_BOX != 0)
    if len(ragged):
        details = ", ".join(f"line {row_lines[r]}: {counts[r]} values" for r in ragged[:MAX_EXAMPLES])
        problems.append(_kind_problem(
            Severity.ERROR, f"{len(ragged)} row(s) whose PredictionString has a value count that is not a "
            f"multiple of 6 (label score xmin ymin xmax ymax per box) on {_lines_text(row_lines[ragged])} "
            f"({details}{' ...' if len(ragged) > MAX_EXAMPLES else ''}); a value is missing or extra, so "
            "these rows cannot be cut into boxes: all their boxes are left out",
            row_lines[ragged].tolist(), [rows.image_ids[r] for r in ragged], name))

    # Cut the rows that have whole boxes into [B, 6].
    whole = counts % TOKENS_PER_BOX == 0
    if len(ragged):
        row_of_token = np.repeat(np.arange(n_rows), counts)                   # [T]
        values = values[whole[row_of_token]]
    boxes = values.reshape(-1, TOKENS_PER_BOX)                                 # [B,6]
    boxes_per_row = np.where(whole, counts // TOKENS_PER_BOX, 0)              # [R]
    row_of_box = np.repeat(np.arange(n_rows, dtype=np.int32 if n_rows < 2**31 else np.int64),
                           boxes_per_row)                                      # [B]
    first_box = np.cumsum(boxes_per_row) - boxes_per_row                       # [R]

    def box_index(b: int) -> int:
        """Box b's number in its row (0-based), for messages."""
        return int(b - first_box[row_of_box[b]])

    from core.kernel_build import kernel

    flags = kernel("box_flags")(boxes)                                         # [B] one pass, compiled
    keep_box = (flags & (_NOT_FINITE | _LABEL_NOT_INTEGER)) == 0             # [B] what can be read
    labels, scores = boxes[:, 0], boxes[:, 1]

    def token_text(b: int) -> str:
        tokens = rows.strings[row_of_box[b]].split()[box_index(b) * TOKENS_PER_BOX:][:TOKENS_PER_BOX]
        return ", ".join(repr(t) for t, v in zip(tokens, boxes[b]) if not np.isfinite(v))

    def box_text(b: int) -> str:
        return "[" + " ".join(f"{v:g}" for v in boxes[b, 2:]) + "]"

    cannot_read = "these boxes cannot be read and are left out (the rest of their rows is kept)"
    # (bad [B] bool, what, hint + consequence, quote) per kind, in this order
    checks = [] if not flags.any() else [
        (flags == _NOT_FINITE, "box(es) with values that are not finite numbers",
         "every value must be a number; " + cannot_read, token_text),
        (flags == _LABEL_NOT_INTEGER, "label(s) that are not integers", "the first value of each "
         "box is the class id; such a label is no category of the ground truth, so the scorer ignores the box "
         "too; " + cannot_read, lambda b: repr(float(labels[b]))),
        (keep_box & (flags & _SCORE_OUTSIDE > 0), "score(s) outside [0, 1]",
         "scores should be probabilities; kept and ranked by their score, as pycocotools does",
         lambda b: repr(float(scores[b]))),
        (keep_box & (flags & _EMPTY_BOX > 0), "box(es) with xmax <= xmin or ymax <= ymin",
         "boxes are xmin ymin xmax ymax (VOC, not COCO x y w h); kept and scored as pycocotools scores "
         "them: they overlap nothing, so each is a false positive (ignored when its area w*h is negative)",
         box_text),
    ]
    _report_boxes(checks, row_of_box, box_index, rows, name, problems)
    return keep_box, row_of_box, boxes


def _check_labels(readable: np.ndarray, labels: np.ndarray, row_of_box: np.ndarray, rows: _Rows,
                  dataset: Dataset | None, name: str, problems: list[Problem]) -> None:
    """The label check of the boxes that could be read (readable [B]; labels, row_of_box [B]):
    category ids of the dataset, or with none, not negative."""
    first_box = np.searchsorted(row_of_box, np.arange(len(rows.lines)))       # [R] rows' first boxes

    def box_index(b: int) -> int:
        return int(b - first_box[row_of_box[b]])

    with np.errstate(invalid="ignore"):
        if dataset is not None:
            known = dataset.category_ids
            shown = ", ".join(map(str, known[:20].tolist())) + (" ..." if len(known) > 20 else "")
            checks = [(readable & ~_known_labels(labels, readable, known), "label(s) that are not category "
                       "ids of the ground truth", f"valid ids: {shown}; kept, and ignored by the evaluation as "
                       "pycocotools ignores classes the ground truth lacks", lambda b: f"{int(labels[b])}")]
        elif len(labels):
            checks = [(readable & (labels < 0), "negative label(s)", "labels are category ids; kept, and "
                       "ignored by an evaluation (no ground truth has them)", lambda b: f"{int(labels[b])}")]
        else:
            checks = []
    _report_boxes(checks, row_of_box, box_index, rows, name, problems)


def _known_labels(labels: np.ndarray, readable: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """[B] bool: readable[b] and labels[b] (float, a whole number where readable) is one of the
    integer ids. A lookup table where the ids are small (usual), else np.isin."""
    ids = np.asarray(ids)
    if not len(ids) or ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= 1 << 20:
        return readable & np.isin(labels, ids)
    with np.errstate(invalid="ignore"):
        as_int = labels.astype(np.int64)                 # exact where readable; not looked at elsewhere
    table = np.zeros(int(ids.max()) + 2, bool)           # [-1 + 1]: every id outside the table
    table[ids] = True
    return readable & table[np.where((as_int >= 0) & (as_int <= ids.max()), as_int, len(table) - 1)]


def _report_boxes(checks: list, row_of_box: np.ndarray, box_index, rows: _Rows, name: str,
                  problems: list[Problem]) -> None:
    """One ERROR per (bad [B] bool, what, consequence, quote(b)) of `checks` that has offenders:
    their count, lines and the first MAX_EXAMPLES boxes quoted."""
    row_lines = np.asarray(rows.lines, dtype=np.int64)
    for bad_box, what, consequence, show in checks:
        bad_idx = np.flatnonzero(bad_box)
        if not len(bad_idx):
            continue
        bad_lines = row_lines[row_of_box[bad_idx]]
        examples = ", ".join(f"line {bad_lines[k]} box {box_index(b) + 1}: {show(b)}"
                             for k, b in enumerate(bad_idx[:MAX_EXAMPLES]))
        more = " ..." if len(bad_idx) > MAX_EXAMPLES else ""
        problems.append(_kind_problem(
            Severity.ERROR, f"{len(bad_idx)} {what} on {_lines_text(bad_lines)} ({examples}{more}); {consequence}",
            bad_lines.tolist(), [rows.image_ids[r] for r in row_of_box[bad_idx]], name))


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


def _warn_outside_images(dataset: Dataset, image_keys: np.ndarray, box_lines: np.ndarray, image_pos: np.ndarray,
                         boxes: np.ndarray, name: str, problems: list[Problem]) -> None:
    """One WARNING for all boxes reaching outside their image: kept as they are, as COCO evaluates them.

    box_lines, image_pos: [B] each box's CSV line and image; boxes: [B, 4] xyxy.
    """
    from core.kernel_build import kernel

    key_index = dataset.image_index_of_file(image_keys)                     # [I] dataset row or -1
    if not len(image_pos) or not (key_index >= 0).any():
        return
    row = np.maximum(key_index, 0)                                          # (unknown: not read)
    key_width = dataset.images["width"].to_numpy(dtype=np.float64)[row]
    key_height = dataset.images["height"].to_numpy(dtype=np.float64)[row]
    # one compiled pass of core.dataset.outside_image's rule (a dozen numpy passes: ~0.3 s at 10x)
    outside = kernel("outside_images")(boxes, image_pos, key_index >= 0, key_width, key_height,
                                       OUTSIDE_TOLERANCE)
    if not outside.any():
        return
    first = int(np.flatnonzero(outside)[0])
    width, height = key_width[image_pos[first]], key_height[image_pos[first]]
    problems.append(Problem(
        Severity.WARNING, f"{int(outside.sum())} box(es) on "
        f"{np.count_nonzero(np.bincount(image_pos[outside], minlength=len(image_keys)))} image(s) reach "
        f"outside their image (first: line {int(box_lines[first])}, [{' '.join(f'{v:g}' for v in boxes[first])}] "
        f"in a {width:g}x{height:g} image); they are kept as they are, as COCO evaluates them",
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
