"""Ultralytics `predictions.json` (`yolo val save_json=True`), in and out.

COCO-style entries `{image_id, file_name?, category_id, bbox [x, y, w, h], score}`, but
`image_id` is the image's file stem (an int when the stem is numeric) and, for custom data,
`category_id` is the 0-based class index. Images are matched by `file_name` (the image's base
name, newer Ultralytics) or else by stem (a numeric image_id is read as a numeric stem, never
as a ground-truth id); a stem shared by several images of the dataset cannot be matched (ERROR).
As for COCO results json, every entry pycocotools would score is kept: a score outside [0, 1],
a width or height <= 0 or an unknown class is an ERROR (a server may reject it) but kept; what
cannot be read is an ERROR and left out. A JSON list whose first entries have `file_name` or a
string `image_id` is recognised as this format (core.formats.detect_predictions_format).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import box_array, float_array, int_array, parse_json, read_source
from core.format_tables import capped, class_index_of, predictions_from_rows, stem_index
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions


def read_ultralytics_json(source, *, dataset: Dataset, name: str | None = None, doc=None) -> Predictions:
    """Parse an Ultralytics predictions.json (path, bytes, file-like; or its parsed `doc`) as `Predictions`.

    Bad entries are ERROR Problems naming the entry index (left out); entries on images the
    dataset lacks are one WARNING. Raises ValidationError when the file is not such a list.
    """
    if doc is None:
        data, name, _ = read_source(source, name)
        doc = parse_json(data, name)
    name = name or "<predictions.json>"
    if not isinstance(doc, list):
        raise ValidationError([Problem(Severity.ERROR, "top level is not a list; Ultralytics' predictions.json "
                                       "is a list of {image_id, category_id, bbox, score}", file=name)],
                              summary=f"{name}: not an Ultralytics predictions.json")
    entries = [e if isinstance(e, dict) else {} for e in doc]
    problems: list[Problem] = []
    bad: list[tuple[str, int | None, str]] = []
    labels, ok_label = int_array([e.get("category_id") for e in entries])
    scores, ok_score = float_array([e.get("score") for e in entries])
    boxes_xywh, ok_box = box_array([e.get("bbox") for e in entries])                      # [N,4]
    class_ids, mapping_note = _category_ids(labels, ok_label, dataset)
    image_index = _match_images(entries, dataset, bad, name)
    identity = np.array_equal(dataset.category_ids, np.arange(len(dataset.categories)))
    not_object = np.array([not isinstance(e, dict) for e in doc], dtype=bool)
    matched = image_index != -2                                          # -2: already reported
    # cannot be read: left out, in this order of reasons
    unreadable = [
        (not_object, lambda i: "is not an object"),
        (~ok_label, lambda i: f"'category_id' is {entries[i].get('category_id')!r}, expected a class index"),
        (~ok_score, lambda i: f"'score' is {entries[i].get('score')!r}, expected a number"),
        (~ok_box, lambda i: f"'bbox' is {entries[i].get('bbox')!r}, expected 4 numbers [x, y, width, height]"),
        ((class_ids < 0) & (not identity), lambda i: f"category_id {int(labels[i])} is no class index of "
         f"{dataset.source} (0..{len(dataset.categories) - 1})"),
    ]
    left_out = np.zeros(len(entries), dtype=bool)
    flagged: dict[int, str] = {}
    for mask, describe in unreadable:
        for i in np.flatnonzero(mask & matched & ~left_out).tolist():
            flagged[i] = f"entry [{i}]: {describe(i)}; left out"
        left_out |= mask & matched
    # scored by pycocotools as they are: kept, and flagged (a server may reject them)
    with np.errstate(invalid="ignore"):
        kept_flags = [
            ((scores < 0) | (scores > 1), lambda i: f"score {scores[i]!r} is outside [0, 1]; kept and ranked by "
             "it, as pycocotools does"),
            ((boxes_xywh[:, 2] <= 0) | (boxes_xywh[:, 3] <= 0), lambda i: f"bbox {boxes_xywh[i].tolist()} has a "
             "width or height <= 0; kept, it overlaps nothing (a false positive, as pycocotools scores it)"),
            (class_ids < 0, lambda i: f"category_id {int(labels[i])} is no class of {dataset.source}; kept, and "
             "ignored by the evaluation as pycocotools ignores classes the ground truth lacks"),
        ]
    for mask, describe in kept_flags:
        for i in np.flatnonzero(mask & matched & ~left_out).tolist():
            flagged.setdefault(i, f"entry [{i}]: {describe(i)}")
    bad += [(name, None, flagged[i]) for i in sorted(flagged)]
    ok = (image_index >= 0) & ~left_out
    class_ids = np.where(class_ids < 0, labels, class_ids)  # only kept with identity ids: the raw class
    capped(problems, Severity.ERROR, bad, "bad entries")
    unknown = int((image_index == -1).sum())
    if unknown:
        first = int(np.flatnonzero(image_index == -1)[0])
        problems.append(Problem(Severity.WARNING, f"{unknown} entr(y/ies) name no image of {dataset.source} by "
                                f"file name or stem (first: entry [{first}], image_id "
                                f"{entries[first].get('image_id')!r}); left out (another split?)", file=name))
    if mapping_note:
        problems.append(Problem(Severity.WARNING, mapping_note, file=name))
    keep = np.flatnonzero(ok)
    xywh = boxes_xywh[keep]
    # x + w as pycocotools computes it (no rounding: its figures on this file are the reference)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    return predictions_from_rows(dataset, image_index[keep], class_ids[keep], scores[keep], boxes, problems, name)


def _category_ids(labels: np.ndarray, ok: np.ndarray, dataset: Dataset) -> tuple[np.ndarray, str | None]:
    """Dataset category id of each entry (-1 if none): class index i -> i-th category in id order.

    With ids 0..n-1 that is the identity. Otherwise, when every category_id is a dataset id (the
    COCO-91 ids Ultralytics writes for COCO itself), they are taken as ids (and a note says so).
    """
    ids = dataset.category_ids
    n = len(ids)
    if np.array_equal(ids, np.arange(n)):
        return np.where(ok & (labels >= 0) & (labels < n), labels, -1), None
    if np.isin(labels[ok], ids).all():
        return np.where(ok & np.isin(labels, ids), labels, -1), ("category_id read as the ground truth's own "
                                                                 "category ids (all of them are ids of it)")
    index = np.where(ok & (labels >= 0) & (labels < n), labels, 0)
    return np.where(ok & (labels >= 0) & (labels < n), ids[index], -1), (
        "category_id read as a 0-based class index: class i is the i-th category of the ground truth in id order")


def _match_images(entries: list[dict], dataset: Dataset, bad: list, name: str) -> np.ndarray:
    """[N] image index of each entry by file_name, else stem; -1 unknown, -2 ambiguous (reported)."""
    by_stem, shared = stem_index(dataset)
    base_names = pd.Series([Path(str(f)).name for f in dataset.images["file_name"]], dtype=object)
    repeated = base_names.duplicated(keep=False).to_numpy()
    by_name = {n: i for i, (n, r) in enumerate(zip(base_names, repeated)) if not r}
    numeric = pd.Series({s: i for s, i in by_stem.items() if s.isdigit()}, dtype=object)
    numbers = pd.Series([int(s) for s in numeric.index], dtype=object)
    twice = numbers.duplicated(keep=False).to_numpy()
    by_number = {int(k): int(numeric.iloc[j]) for j, k in enumerate(numbers) if not twice[j]}
    shared_numbers = {int(k) for k in numbers[twice]}
    shared_numbers |= {int(s) for s in shared if s.isdigit()}
    result = np.full(len(entries), -1, dtype=np.int64)
    resolved: dict = {}  # (file_name, image_id) -> (index, why not); a file repeats it for every box
    for i, entry in enumerate(entries):
        file_name, image_id = entry.get("file_name"), entry.get("image_id")
        key = (file_name if isinstance(file_name, str) else None,
               image_id if isinstance(image_id, (str, int)) else repr(image_id))
        if key not in resolved:
            resolved[key] = _resolve(file_name, image_id, by_name, by_stem, shared, by_number, shared_numbers,
                                     dataset.source)
        index, why = resolved[key]
        result[i] = index
        if why:
            bad.append((name, None, f"entry [{i}]: {why}; left out"))
    return result


def _resolve(file_name, image_id, by_name, by_stem, shared, by_number, shared_numbers, source):
    """(image index, None) for one entry's image; (-1, None) unknown; (-2, why) ambiguous or unusable."""
    if isinstance(file_name, str):
        base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
        if base in by_name:
            return by_name[base], None
        stem = Path(base).stem
    elif isinstance(image_id, str):
        stem = image_id
    elif isinstance(image_id, int) and not isinstance(image_id, bool):  # Ultralytics: int(stem)
        if image_id in shared_numbers:
            return -2, (f"image_id {image_id} is the stem of several images of {source} (images are matched "
                        "by stem)")
        return by_number.get(image_id, -1), None
    else:
        return -2, f"no file_name and 'image_id' is {image_id!r}"
    if stem in shared:
        return -2, f"stem {stem!r} names several images of {source} (images are matched by stem)"
    return by_stem.get(stem, -1), None


def write_ultralytics_json(preds: Predictions, dataset: Dataset, dest) -> list[Problem]:
    """Write preds as Ultralytics predictions.json (stem image_id, base file_name, 0-based category_id)."""
    image_index = preds.image_index_in(dataset)
    cls = class_index_of(dataset, preds.labels)
    keep = (image_index >= 0) & (cls >= 0)
    problems = []
    if (~keep).any():
        problems.append(Problem(Severity.WARNING, f"{int((~keep).sum())} box(es) left out: on images the ground "
                                "truth lacks or with labels that are no category", file=preds.source))
    file_names = dataset.images["file_name"].tolist()
    boxes = preds.boxes_xyxy[keep]
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
    entries = []
    for i, c, box, score in zip(image_index[keep].tolist(), cls[keep].tolist(), xywh, preds.scores[keep].tolist()):
        path = Path(str(file_names[i]))
        stem = path.stem
        entries.append({"image_id": int(stem) if stem.isnumeric() else stem, "file_name": path.name,
                        "category_id": c, "bbox": box, "score": score})
    text = json.dumps(entries)
    if isinstance(dest, (str, Path)):
        Path(dest).write_text(text, encoding="utf-8")
    else:
        dest.write(text)
    return problems
