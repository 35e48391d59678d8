"""Ultralytics `predictions.json` (`yolo val save_json=True`), in and out.

COCO-style entries `{image_id, file_name?, category_id, bbox [x, y, w, h], score}`, but
`image_id` is the image's file stem (an int when the stem is numeric) and, for custom data,
`category_id` is the 0-based class index. Images are matched by `file_name` (the image's base
name, newer Ultralytics) or else by stem (a numeric image_id is read as a numeric stem, never
as a ground-truth id); a stem shared by several images of the dataset cannot be matched (ERROR).
As for COCO results json, every entry pycocotools would score is kept: a score outside [0, 1],
a width or height <= 0 or an unknown class is an ERROR (a server may reject it) but kept; what
cannot be read is an ERROR and left out. A JSON list whose entries have `file_name` or a string
`image_id` is recognised as this format (see `is_ultralytics_json`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.dataset import box_array, float_array, int_array, parse_json, read_source
from core.format_tables import capped, class_index_of, predictions_from_rows, snap, stem_index
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions


def is_ultralytics_json(doc) -> bool:
    """A list of entries naming images by file_name or by a string stem (a COCO results json uses ids)."""
    if not isinstance(doc, list) or not doc:
        return False
    sample = [e for e in doc[:1000] if isinstance(e, dict)]
    return bool(sample) and any("file_name" in e or isinstance(e.get("image_id"), str) for e in sample)


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
    ok = image_index >= 0
    identity = np.array_equal(dataset.category_ids, np.arange(len(dataset.categories)))
    for i in range(len(entries)):
        if image_index[i] == -2:
            continue  # already reported
        # cannot be read: left out
        reason = ("is not an object" if not isinstance(doc[i], dict) else
                  f"'category_id' is {entries[i].get('category_id')!r}, expected a class index" if not ok_label[i]
                  else f"'score' is {entries[i].get('score')!r}, expected a number" if not ok_score[i]
                  else f"'bbox' is {entries[i].get('bbox')!r}, expected 4 numbers [x, y, width, height]"
                  if not ok_box[i]
                  else f"category_id {int(labels[i])} is no class index of {dataset.source} (0..{len(dataset.categories) - 1})"
                  if class_ids[i] < 0 and not identity else None)
        if reason:
            bad.append((name, None, f"entry [{i}]: {reason}; left out"))
            ok[i] = False
            continue
        # scored by pycocotools as they are: kept, and flagged (a server may reject them)
        reason = (f"score {scores[i]!r} is outside [0, 1]; kept and ranked by it, as pycocotools does"
                  if not 0 <= scores[i] <= 1 else
                  f"bbox {boxes_xywh[i].tolist()} has a width or height <= 0; kept, it overlaps nothing (a false "
                  "positive, as pycocotools scores it)" if boxes_xywh[i, 2] <= 0 or boxes_xywh[i, 3] <= 0 else
                  f"category_id {int(labels[i])} is no class of {dataset.source}; kept, and ignored by the "
                  "evaluation as pycocotools ignores classes the ground truth lacks" if class_ids[i] < 0 else None)
        if reason:
            bad.append((name, None, f"entry [{i}]: {reason}"))
    class_ids = np.where(class_ids < 0, labels, class_ids)  # only kept with identity ids: the raw class
    capped(problems, Severity.ERROR, bad, "bad entries")
    unknown = int((image_index == -1).sum())
    if unknown:
        first = next(i for i in range(len(entries)) if image_index[i] == -1)
        problems.append(Problem(Severity.WARNING, f"{unknown} entr(y/ies) name no image of {dataset.source} by "
                                f"file name or stem (first: entry [{first}], image_id "
                                f"{entries[first].get('image_id')!r}); left out (another split?)", file=name))
    if mapping_note:
        problems.append(Problem(Severity.WARNING, mapping_note, file=name))
    keep = np.flatnonzero(ok)
    xywh = boxes_xywh[keep]
    boxes = np.concatenate([xywh[:, :2], snap(xywh[:, :2] + xywh[:, 2:])], axis=1)
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
    for i, entry in enumerate(entries):
        file_name, image_id = entry.get("file_name"), entry.get("image_id")
        if isinstance(file_name, str) and Path(file_name).name in by_name:
            result[i] = by_name[Path(file_name).name]
            continue
        if isinstance(file_name, str):
            stem = Path(file_name).stem
        elif isinstance(image_id, str):
            stem = image_id
        elif isinstance(image_id, int) and not isinstance(image_id, bool):  # Ultralytics: int(stem)
            if image_id in shared_numbers:
                bad.append((name, None, f"entry [{i}]: image_id {image_id} is the stem of several images of "
                            f"{dataset.source}; left out (images are matched by stem)"))
                result[i] = -2
            else:
                result[i] = by_number.get(image_id, -1)
            continue
        else:
            bad.append((name, None, f"entry [{i}]: no file_name and 'image_id' is {image_id!r}; left out"))
            result[i] = -2
            continue
        if stem in shared:
            bad.append((name, None, f"entry [{i}]: stem {stem!r} names several images of {dataset.source}; "
                        "left out (images are matched by stem)"))
            result[i] = -2
        else:
            result[i] = by_stem.get(stem, -1)
    return result


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
