"""Load and validate a COCO ground-truth json into a `Dataset` of columnar tables.

Every check runs on whole columns; python touches single entries only to name the
offenders once a column is known to be bad. Errors raise `ValidationError` with all problems
found; warnings (boxes reaching outside their image) stay in `Dataset.problems`.
"""
from __future__ import annotations

import gc
import json
import math
import reprlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from core.problems import Problem, Severity, ValidationError
from core.tables import ANNOTATION_COLUMNS, CATEGORY_COLUMNS, IMAGE_COLUMNS, Dataset

try:  # 2-3x faster than the standard library on large files; optional
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


# orjson before 3.9.15 has no nesting limit: a deeply nested file overflows the C stack and
# kills the process (CVE-2024-27454); such files go to the standard parser, which raises
# RecursionError instead.
_ORJSON_LIMITS_DEPTH = orjson is not None and _version(getattr(orjson, "__version__", "0")) >= (3, 9, 15)
_ORJSON_SAFE_DEPTH = 256
_NOT_MARKS = bytes(b for b in range(256) if b not in b'[]{}"')
_DEPTH_STEP = np.zeros(256, np.int32)
_DEPTH_STEP[list(b"[{")], _DEPTH_STEP[list(b"]}")] = 1, -1


def _max_depth(data: bytes) -> int:
    """Deepest [ / { nesting of json bytes, brackets inside strings not counted."""
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")   # escaped backslashes, then escaped quotes
    marks = np.frombuffer(plain.translate(None, _NOT_MARKS), np.uint8)       # [M] only [ ] { } "
    in_string = np.bitwise_xor.accumulate(marks == ord('"'))                  # [M]
    steps = _DEPTH_STEP[marks]
    steps[in_string] = 0
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


REQUIRED_KEYS = ("images", "annotations", "categories")
MAX_LISTED = 50          # problems of one kind listed one by one before a "... and N more"
MAX_NAMED = 20           # entries named in a one-per-kind warning before a "... and N more"
OUTSIDE_TOLERANCE = 1e-3  # pixels; float noise in x + w is not "outside the image"


def read_source(source, name: str | None) -> tuple[bytes, str, Path | None]:
    """(content bytes, display name, path or None) of a path, bytes or file-like source."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "<upload>", None
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            return path.read_bytes(), name or path.name, path
        except OSError as exc:
            raise ValidationError(
                [Problem(Severity.ERROR, f"cannot read the file: {exc.strerror or exc}; check the path",
                         file=name or str(path))], summary=f"cannot read {path}") from None
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return bytes(data), name or getattr(source, "name", None) or "<upload>", None
    raise TypeError(f"source must be a path, bytes or a file-like object, not {type(source).__name__}")


@contextmanager
def no_gc():
    """Pause the cyclic GC: parsing builds millions of small objects and none are garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_json(data: bytes, name: str):
    """Parse json bytes; a ValidationError says where the json breaks (line, column) or that it
    is nested too deeply to be read."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if orjson is not None and (_ORJSON_LIMITS_DEPTH or _max_depth(data) <= _ORJSON_SAFE_DEPTH):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard parser below gives the line and column (or accepts NaN, checked later)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError([Problem(
            Severity.ERROR, f"not a UTF-8 text file (byte {exc.start}); give a JSON file",
            file=name)]) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise _too_deep(name) from None
    except json.JSONDecodeError as exc:
        if "predictionstring" in text.lstrip().partition("\n")[0].lower():
            raise ValidationError([Problem(
                Severity.ERROR, "this is a submission CSV (PredictionString,image_id), not a JSON file; "
                "give a COCO json here (ground truth and predictions swapped?)", file=name, line=1)]) from None
        raise ValidationError([Problem(
            Severity.ERROR,
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}; "
            "fix the file (a truncated download or a hand edit?)",
            file=name, line=exc.lineno)]) from None


def _too_deep(name: str) -> ValidationError:
    return ValidationError([Problem(
        Severity.ERROR, "JSON nested too deeply to be read (hundreds of levels of [ or {); not a usable COCO "
        "file: a COCO json nests a few levels only", file=name)], summary=f"{name}: not a usable JSON file")


def load_coco(source, *, name: str | None = None, root: str | Path | None = None) -> Dataset:
    """Read a COCO ground truth (path, bytes or file-like) into a validated `Dataset`.

    Raises ValidationError listing every error; warnings are kept in `dataset.problems`.
    """
    data, name, path = read_source(source, name)
    with no_gc():
        doc = parse_json(data, name)
        del data
        try:
            dataset = _build_dataset(doc, name)
        except RecursionError:  # a deeply nested value inside an entry (quoting it recurses)
            raise _too_deep(name) from None
    if root is None and path is not None:
        root = path.parent
    dataset.root = Path(root) if root is not None else None
    return dataset


def _build_dataset(doc, name: str) -> Dataset:
    checker = _Checker(name)
    if not isinstance(doc, dict):
        checker.error(f"top level is a JSON {type(doc).__name__}, expected an object with keys "
                      f"{', '.join(REQUIRED_KEYS)} (a list is a COCO results file, i.e. predictions)")
        checker.raise_if_errors()
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        checker.error(f"missing top-level key(s) {', '.join(map(repr, missing))}; "
                      f"a COCO ground truth needs {', '.join(REQUIRED_KEYS)}")
    for key in REQUIRED_KEYS:
        if key in doc and not isinstance(doc[key], list):
            checker.error(f"'{key}' is a {type(doc[key]).__name__}, expected a list")
    checker.raise_if_errors()

    images = _image_table(doc["images"], checker)
    categories = _category_table(doc["categories"], checker)
    annotations = _annotation_table(doc["annotations"], images, categories, checker)
    checker.raise_if_errors()
    return Dataset(images=images, annotations=annotations, categories=categories,
                   problems=checker.problems, source=name)


class _Checker:
    """Collects problems for one file; lists offenders one by one up to MAX_LISTED per kind."""

    def __init__(self, name: str):
        self.name = name
        self.problems: list[Problem] = []

    def error(self, message: str, image_id=None) -> None:
        self.problems.append(Problem(Severity.ERROR, message, file=self.name, image_id=image_id))

    def each(self, positions, describe, severity=Severity.ERROR, image_ids=None, what="entries") -> None:
        """One problem per offending position (describe(pos) -> message), capped at MAX_LISTED."""
        positions = list(positions)
        for pos in positions[:MAX_LISTED]:
            image_id = None if image_ids is None else _plain(image_ids[pos])
            self.problems.append(Problem(severity, describe(pos), file=self.name, image_id=image_id))
        if len(positions) > MAX_LISTED:
            first = describe(positions[0])
            self.problems.append(Problem(
                severity, f"... and {len(positions) - MAX_LISTED} more {what} like: {first}", file=self.name))

    def one(self, positions, describe, what: str, consequence: str) -> None:
        """One WARNING naming every offending position (describe(pos) -> 'annotations[i] ...'), capped."""
        positions = list(positions)
        if not positions:
            return
        named = "; ".join(describe(pos) for pos in positions[:MAX_NAMED])
        more = f" ... and {len(positions) - MAX_NAMED} more" if len(positions) > MAX_NAMED else ""
        self.problems.append(Problem(Severity.WARNING, f"{len(positions)} {what}: {named}{more}; {consequence}",
                                     file=self.name))

    def raise_if_errors(self) -> None:
        if any(p.is_error for p in self.problems):
            n = sum(p.is_error for p in self.problems)
            raise ValidationError(self.problems, summary=f"{self.name}: {n} error(s); not a usable COCO ground truth")


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 80, 80, 8, 8, 3


def quote_value(value) -> str:
    """A JSON value for a message: its repr, abbreviated when long or nested."""
    return _REPR.repr(value)


def _plain(value):
    """A numpy scalar as a plain python value (for messages and Problem.image_id)."""
    return value.item() if hasattr(value, "item") else value


def _entries(items: list, section: str, checker: _Checker) -> list[dict]:
    """The dict entries of a section; non-dict entries are errors."""
    if set(map(type, items)) <= {dict}:
        return items
    bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
    checker.each(bad, lambda i: f"{section}[{i}] is a {type(items[i]).__name__}, expected an object")
    return items if not bad else [item if isinstance(item, dict) else {} for item in items]


def _column(entries: list[dict], key: str) -> list:
    return [e.get(key) for e in entries]


def _is_number(v) -> bool:
    """A finite JSON number (bools are not numbers; ints must fit in int64)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return -2**63 <= v < 2**63
    return isinstance(v, float) and math.isfinite(v)


def _try_array(values: list) -> np.ndarray:
    try:
        return np.asarray(values)
    except (ValueError, OverflowError):  # ragged or huge
        return np.asarray([None], dtype=object)


def _is_integral(v) -> bool:
    """A JSON integer, or a float with a whole value (pycocotools matches id 1.0 as 1), in int64 range."""
    if type(v) is float and not v.is_integer():
        return False
    return type(v) in (int, float) and -2**63 <= v < 2**63


def int_array(values: list) -> tuple[np.ndarray, np.ndarray]:
    """JSON values -> ([N] int64, [N] bool ok); entries that are not whole numbers get -1 and ok False."""
    arr = _try_array(values)
    if arr.ndim == 1 and arr.dtype.kind in "iu" and len(arr) == len(values):
        return arr.astype(np.int64), np.ones(len(values), dtype=bool)
    ok = np.fromiter((_is_integral(v) for v in values), dtype=bool, count=len(values))
    return np.array([int(v) if good else -1 for v, good in zip(values, ok)], dtype=np.int64), ok


def float_array(values: list) -> tuple[np.ndarray, np.ndarray]:
    """JSON values -> ([N] float64, [N] bool ok); missing, non-numeric or non-finite -> NaN, ok False."""
    arr = _try_array(values)
    if arr.ndim == 1 and arr.dtype.kind in "iuf" and len(arr) == len(values) and np.isfinite(arr).all():
        return arr.astype(np.float64), np.ones(len(values), dtype=bool)
    ok = np.fromiter((_is_number(v) for v in values), dtype=bool, count=len(values))
    return np.array([v if good else np.nan for v, good in zip(values, ok)], dtype=np.float64), ok


def box_array(values: list) -> tuple[np.ndarray, np.ndarray]:
    """JSON bboxes -> ([N, 4] float64, [N] bool ok); anything but 4 finite numbers -> NaN row, ok False."""
    if len(values) == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=bool)
    arr = _try_array(values)
    if arr.dtype.kind in "iuf" and arr.shape == (len(values), 4) and np.isfinite(arr).all():
        return arr.astype(np.float64), np.ones(len(values), dtype=bool)
    ok = np.fromiter((isinstance(b, list) and len(b) == 4 and all(_is_number(v) for v in b) for b in values),
                     dtype=bool, count=len(values))
    boxes = np.array([b if good else [np.nan] * 4 for b, good in zip(values, ok)], dtype=np.float64)
    return boxes.reshape(-1, 4), ok


def _int_column(values: list, label, section: str, key: str, checker: _Checker,
                image_ids=None) -> np.ndarray:
    """[N] int64 of JSON integers; entries that are missing or not integers are errors."""
    arr, ok = int_array(values)
    checker.each(np.flatnonzero(~ok), lambda i: f"{label(i)}: '{key}' is {quote_value(values[i])}, expected an integer"
                 + (" (missing)" if values[i] is None else ""), image_ids=image_ids, what=section)
    return arr


def _float_column(values: list, label, section: str, key: str, checker: _Checker,
                  image_ids=None) -> np.ndarray:
    """[N] float64 of JSON numbers; missing, non-numeric or non-finite entries are errors."""
    arr, ok = float_array(values)
    checker.each(np.flatnonzero(~ok), lambda i: f"{label(i)}: '{key}' is {quote_value(values[i])}, expected a number",
                 image_ids=image_ids, what=section)
    return arr


def _duplicates(ids: np.ndarray, label, section: str, checker: _Checker, key: str = "id") -> None:
    dup = np.flatnonzero(pd.Index(ids).duplicated(keep="first"))
    checker.each(dup, lambda i: f"{label(i)}: duplicate {key} {_plain(ids[i])!r} "
                 f"(first used by {section}[{int(np.flatnonzero(ids == ids[i])[0])}]); {key}s must be unique",
                 what=section)


def _image_table(items: list, checker: _Checker) -> pd.DataFrame:
    entries = _entries(items, "images", checker)
    ids = _int_column(_column(entries, "id"), lambda i: f"images[{i}]", "images", "id", checker)

    def label(i):
        return f"images[{i}] (id {_plain(ids[i])})"

    file_names = _column(entries, "file_name")
    bad_names = [i for i, f in enumerate(file_names) if not isinstance(f, str) or not f]
    checker.each(bad_names, lambda i: f"{label(i)}: 'file_name' is {quote_value(file_names[i])}, expected a "
                 "non-empty string",
                 image_ids=ids, what="images")
    sizes = {}
    for key in ("width", "height"):
        raw = _column(entries, key)
        sizes[key] = values = _float_column(raw, label, "images", key, checker, image_ids=ids)
        bad = np.flatnonzero(values <= 0)
        checker.each(bad, lambda i, key=key, raw=raw: f"{label(i)}: {key} {quote_value(raw[i])} is not positive; "
                     "give the image size in pixels", image_ids=ids, what="images")
    _duplicates(ids, label, "images", checker)
    if not bad_names:
        _duplicates(np.asarray(file_names, dtype=object), label, "images", checker, key="file_name")
    return pd.DataFrame({
        "id": ids, "file_name": pd.Series(file_names, dtype=object),
        "width": _as_int_if_whole(sizes["width"]), "height": _as_int_if_whole(sizes["height"]),
    }, columns=IMAGE_COLUMNS)


def _as_int_if_whole(values: np.ndarray) -> np.ndarray:
    whole = np.isfinite(values).all() and (values == np.round(values)).all()
    return values.astype(np.int64) if whole else values


def _category_table(items: list, checker: _Checker) -> pd.DataFrame:
    entries = _entries(items, "categories", checker)
    ids = _int_column(_column(entries, "id"), lambda i: f"categories[{i}]", "categories", "id", checker)
    names = _column(entries, "name")
    bad = [i for i, n in enumerate(names) if not isinstance(n, str) or not n]
    checker.each(bad, lambda i: f"categories[{i}] (id {_plain(ids[i])}): 'name' is {quote_value(names[i])}, "
                 "expected a non-empty string", what="categories")
    _duplicates(ids, lambda i: f"categories[{i}]", "categories", checker)
    table = pd.DataFrame({"id": ids, "name": pd.Series(names, dtype=object)}, columns=CATEGORY_COLUMNS)
    return table.sort_values("id", kind="stable").reset_index(drop=True)


def _bbox_array(bboxes: list, label, checker: _Checker, image_ids) -> np.ndarray:
    """[N, 4] float64 COCO xywh; entries that are not 4 finite numbers are errors."""
    arr, ok = box_array(bboxes)
    checker.each(np.flatnonzero(~ok), lambda i: f"{label(i)}: 'bbox' is {quote_value(bboxes[i])}, expected 4 numbers "
                 "[x, y, width, height]", image_ids=image_ids, what="annotations")
    return arr


def _annotation_table(items: list, images: pd.DataFrame, categories: pd.DataFrame,
                      checker: _Checker) -> pd.DataFrame:
    entries = _entries(items, "annotations", checker)
    ids = _int_column(_column(entries, "id"), lambda i: f"annotations[{i}]", "annotations", "id", checker)

    def label(i):
        return f"annotations[{i}] (id {_plain(ids[i])})"

    image_ids = _int_column(_column(entries, "image_id"), label, "annotations", "image_id", checker)
    category_ids = _int_column(_column(entries, "category_id"), label, "annotations", "category_id", checker,
                               image_ids=image_ids)
    xywh = _bbox_array(_column(entries, "bbox"), label, checker, image_ids)       # [A,4]

    image_index = _first_index_of(images["id"].to_numpy(), image_ids)
    unknown = np.flatnonzero(image_index < 0)
    checker.each(unknown, lambda i: f"{label(i)}: image_id {_plain(image_ids[i])} is not the id of any image",
                 image_ids=image_ids, what="annotations")
    unknown_cat = np.flatnonzero(~np.isin(category_ids, categories["id"].to_numpy()))
    known = sorted(categories["id"].tolist())
    checker.each(unknown_cat, lambda i: f"{label(i)}: category_id {_plain(category_ids[i])} is not in "
                 f"'categories' (ids {known[:20]}{'...' if len(known) > 20 else ''})",
                 image_ids=image_ids, what="annotations")
    with np.errstate(invalid="ignore"):
        flat = np.flatnonzero((xywh[:, 2] <= 0) | (xywh[:, 3] <= 0))
    checker.one(flat, lambda i: f"{label(i)} bbox {xywh[i].tolist()}", "annotation(s) with a width or height <= 0",
                "kept and scored as pycocotools scores them: no prediction can overlap them, so each counts as "
                "a missed object (none when its area is negative: that is outside every area range)")

    area = _area(_column(entries, "area"), xywh, label, checker, image_ids)
    iscrowd = _iscrowd(_column(entries, "iscrowd"), label, checker, image_ids)
    image_order = image_index                                                    # where pycocotools lists it
    if not any(p.is_error for p in checker.problems):
        _warn_outside(xywh, image_index, images, label, checker, image_ids)
        # pycocotools scores annotations looked up by id: with a repeated id, the last annotation
        # having it takes the place of every earlier one. DetLens scores the same boxes.
        source = _last_with_same_id(ids)                                         # [A]
        repeated = np.flatnonzero(pd.Index(ids).duplicated(keep=False))
        checker.one(repeated, label, "annotations sharing an id with "
                    "another", "pycocotools looks annotations up by id, so the last annotation with an id is "
                    "scored in the place of each earlier one (counted as many times as its id is used, the "
                    "earlier ones never); DetLens scores them the same way. Give every annotation its own id "
                    "to have each one scored")
        image_ids, category_ids, xywh = image_ids[source], category_ids[source], xywh[source]
        area, iscrowd, image_index = area[source], iscrowd[source], image_index[source]
    xyxy = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])
    table = pd.DataFrame({
        "id": ids, "image_index": image_index, "image_id": image_ids, "category_id": category_ids,
        "x": xywh[:, 0], "y": xywh[:, 1], "w": xywh[:, 2], "h": xywh[:, 3],
        "x1": xyxy[:, 0], "y1": xyxy[:, 1], "x2": xyxy[:, 2], "y2": xyxy[:, 3],
        "area": area, "iscrowd": iscrowd,
    }, columns=ANNOTATION_COLUMNS)
    if (image_order != image_index).any():
        # pycocotools lists an image's annotations image by image in ascending image id, each
        # under the image it was written for: a copy taken from another image sits there.
        id_rank = np.argsort(np.argsort(images["id"].to_numpy(), kind="stable"), kind="stable")
        order = np.argsort(id_rank[image_order], kind="stable")
        table = table.iloc[order].reset_index(drop=True)
    return table


def _last_with_same_id(ids: np.ndarray) -> np.ndarray:
    """[A] for each row, the last row having its id (itself when the id is unique)."""
    unique, inverse = np.unique(ids, return_inverse=True)
    last = np.full(len(unique), -1, np.int64)
    np.maximum.at(last, inverse.reshape(-1), np.arange(len(ids)))
    return last[inverse.reshape(-1)]


def _first_index_of(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """[N] position of each value's first occurrence in keys (duplicates allowed), -1 where absent."""
    unique, first = np.unique(keys, return_index=True)
    pos = np.clip(np.searchsorted(unique, values), 0, max(len(unique) - 1, 0))
    found = (unique[pos] == values) if len(unique) else np.zeros(len(values), dtype=bool)
    return np.where(found, first[pos] if len(unique) else -1, -1).astype(np.int64)


def _area(values: list, xywh: np.ndarray, label, checker: _Checker, image_ids) -> np.ndarray:
    """The json's own `area` (COCO: the mask area) where given, else w * h."""
    arr, ok = float_array(values)
    if ok.all():
        return arr
    bad = [i for i in np.flatnonzero(~ok) if values[i] is not None]
    checker.each(bad, lambda i: f"{label(i)}: 'area' is {quote_value(values[i])}, expected a number (or leave it out)",
                 image_ids=image_ids, what="annotations")
    return np.where(ok, arr, xywh[:, 2] * xywh[:, 3])


def _iscrowd(values: list, label, checker: _Checker, image_ids) -> np.ndarray:
    """[A] int64 crowd flags (0 when absent); anything but 0/1 (or false/true) is an error."""
    arr = _try_array(values)
    if arr.ndim == 1 and len(arr) == len(values) and arr.dtype.kind in "iub" and np.isin(arr, (0, 1)).all():
        return arr.astype(np.int64)
    bad = [i for i, v in enumerate(values) if v not in (None, 0, 1) or isinstance(v, float)]
    checker.each(bad, lambda i: f"{label(i)}: 'iscrowd' is {quote_value(values[i])}, expected 0 or 1",
                 image_ids=image_ids, what="annotations")
    return np.array([int(v) if v in (0, 1) else 0 for v in values], dtype=np.int64)


def outside_image(boxes_xyxy: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """[N] bool: boxes ([N, 4] xyxy) reaching outside their own image (width, height: [N])."""
    return ((boxes_xyxy[:, 0] < -OUTSIDE_TOLERANCE) | (boxes_xyxy[:, 1] < -OUTSIDE_TOLERANCE)
            | (boxes_xyxy[:, 2] > width + OUTSIDE_TOLERANCE) | (boxes_xyxy[:, 3] > height + OUTSIDE_TOLERANCE))


def _warn_outside(xywh, image_index, images, label, checker: _Checker, image_ids) -> None:
    width = images["width"].to_numpy(np.float64)[image_index]
    height = images["height"].to_numpy(np.float64)[image_index]
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    outside = np.flatnonzero(outside_image(xyxy, width, height))
    checker.each(outside, lambda i: f"{label(i)}: bbox {xywh[i].tolist()} reaches outside its "
                 f"{_plain(images['width'].iat[image_index[i]])}x{_plain(images['height'].iat[image_index[i]])} "
                 "image; it is kept as it is", severity=Severity.WARNING, image_ids=image_ids, what="annotations")
