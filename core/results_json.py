"""Read COCO results json (MMDetection, Detectron2, pycocotools `loadRes` input) as `Predictions`.

Accepts a list of `{image_id, category_id, bbox [x, y, w, h], score}` or a dict holding that
list under "annotations". `image_id` is the ground truth's numeric image id, so the dataset is
needed to name images by file_name, the key every DetLens table uses. Boxes go from COCO xywh
to xyxy here, once. Every entry pycocotools' loadRes would score is kept; one Problem per kind
names the entries (their index in the list):
- kept, ERROR (the server may reject the file): score outside [0, 1], width or height <= 0,
  a category_id the ground truth lacks (ignored by the evaluation, as pycocotools does);
- left out, ERROR (cannot be read): not an object, image_id / category_id not an integer,
  score not a finite number, bbox not 4 finite numbers;
- left out, WARNING: an image_id the ground truth lacks (pycocotools' loadRes refuses such a file).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.boxes import xywh_to_xyxy
from core.dataset import (box_array, float_array, int_array, no_gc, outside_image, parse_json, quote_value,
                          read_source)
from core.problems import Problem, Severity, ValidationError
from core.tables import Dataset, Predictions

MAX_LISTED = 50  # entries named per problem (unknown images: warned one by one) before a "... and N more"
MAX_EXAMPLES = 3  # offending entries quoted per problem


def read_results_json(source, *, dataset: Dataset | None, name: str | None = None) -> Predictions:
    """Parse a COCO results json (path, bytes or file-like) into `Predictions` keyed by file_name.

    Raises ValidationError when the file is not a results json at all (nested too deeply
    included) or no dataset is given; otherwise never raises (module docstring for what is
    kept and what is left out).
    """
    data, name, _ = read_source(source, name)
    try:
        return _read(data, dataset, name)
    except RecursionError:
        raise ValidationError([Problem(
            Severity.ERROR, "JSON nested too deeply to be read (hundreds of levels); a COCO results json is a "
            "flat list of {image_id, category_id, bbox, score}", file=name)],
            summary=f"{name}: not a usable COCO results json") from None


def _read(data: bytes, dataset: Dataset | None, name: str) -> Predictions:
    with no_gc():
        doc = parse_json(data, name)
        del data
        entries = _entries(doc, name)
        if dataset is None:
            raise ValidationError([Problem(
                Severity.ERROR, "a COCO results json names images by the ground truth's numeric ids; "
                "give the ground truth json (e.g. --gt train.json) to read it", file=name)],
                summary=f"{name}: needs the ground truth")
        columns = {key: [e.get(key) if isinstance(e, dict) else None for e in entries]
                   for key in ("image_id", "category_id", "bbox", "score")}
    return _to_predictions(columns, entries, dataset, name)


def _entries(doc, name: str) -> list:
    if isinstance(doc, dict) and isinstance(doc.get("annotations"), list):
        return doc["annotations"]
    if isinstance(doc, list):
        return doc
    what = f"an object with keys {sorted(doc)[:8]}" if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
    raise ValidationError([Problem(
        Severity.ERROR, f"top level is {what}; a COCO results json is a list of "
        "{image_id, category_id, bbox, score} (or an object holding it under 'annotations')", file=name)],
        summary=f"{name}: not a COCO results json")


def _to_predictions(columns: dict, entries: list, dataset: Dataset, name: str) -> Predictions:
    n = len(entries)
    problems: list[Problem] = []
    image_ids, ok_image = int_array(columns["image_id"])
    labels, ok_label = int_array(columns["category_id"])
    scores, ok_score = float_array(columns["score"])
    boxes_xywh, ok_box = box_array(columns["bbox"])                                 # [N,4]
    ok = np.ones(n, dtype=bool)

    def report(bad: np.ndarray, describe, consequence: str, leave_out: bool) -> None:
        """One ERROR for every entry of a kind (entries named up to MAX_LISTED); leave them out or keep them."""
        bad = np.flatnonzero(bad & ok)
        if not len(bad):
            return
        examples = "; ".join(f"entry [{i}]: {describe(i)}" for i in bad[:MAX_EXAMPLES])
        named = ""
        if len(bad) > MAX_EXAMPLES:
            named = " ... (entries " + ", ".join(f"[{i}]" for i in bad[:MAX_LISTED]) + (
                f" ... and {len(bad) - MAX_LISTED} more)" if len(bad) > MAX_LISTED else ")")
        ids = {int(image_ids[i]) if ok_image[i] else None for i in bad}
        problems.append(Problem(
            Severity.ERROR, f"{f'{len(bad)} entries: ' if len(bad) > 1 else ''}{examples}{named}; {consequence}",
            file=name, image_id=ids.pop() if len(ids) == 1 else None))
        if leave_out:
            ok[bad] = False

    cannot_read = "these entries cannot be read and are left out"
    report(np.array([not isinstance(e, dict) for e in entries], dtype=bool),
           lambda i: f"is a {type(entries[i]).__name__}, expected an object", cannot_read, True)
    for key, good in (("image_id", ok_image), ("category_id", ok_label)):
        report(~good, lambda i, key=key: f"'{key}' is {quote_value(columns[key][i])}, expected an integer",
               cannot_read, True)
    report(~ok_score, lambda i: f"'score' is {quote_value(columns['score'][i])}, expected a number", cannot_read, True)
    report(~ok_box, lambda i: f"'bbox' is {quote_value(columns['bbox'][i])}, expected 4 numbers [x, y, width, height]",
           cannot_read, True)
    with np.errstate(invalid="ignore"):
        report((scores < 0) | (scores > 1), lambda i: f"score {float(scores[i])!r} is outside [0, 1]",
               "scores should be probabilities; kept and ranked by their score, as pycocotools does", False)
        report((boxes_xywh[:, 2] <= 0) | (boxes_xywh[:, 3] <= 0),
               lambda i: f"bbox {boxes_xywh[i].tolist()} has a non-positive width or height",
               "bbox is COCO [x, y, width, height], not xyxy; kept and scored as pycocotools scores them: they "
               "overlap nothing, so each is a false positive (ignored when its area w*h is negative)", False)
    known = dataset.category_ids
    report(~np.isin(labels, known), lambda i: f"category_id {int(labels[i])} is not a category of "
           f"{dataset.source} (ids {known[:20].tolist()}{' ...' if len(known) > 20 else ''})",
           "kept, and ignored by the evaluation as pycocotools ignores classes the ground truth lacks", False)

    image_index = dataset.image_index_of_id(image_ids)                               # [N]
    unknown = ok & (image_index < 0)
    _warn_unknown_images(image_ids[unknown], dataset, name, problems)
    ok &= ~unknown

    keep = np.flatnonzero(ok)
    _warn_outside_images(boxes_xywh, image_index, keep, dataset, name, problems)
    # Images in order of first appearance; boxes grouped by image, file order within an image.
    first_seen = pd.unique(image_index[keep])
    image_pos = pd.Index(first_seen).get_indexer(image_index[keep]).astype(np.int64)
    order = np.argsort(image_pos, kind="stable")
    keep, image_pos = keep[order], image_pos[order]
    return Predictions(
        image_keys=dataset.images["file_name"].to_numpy(dtype=object)[first_seen],
        image_pos=image_pos,
        labels=labels[keep],
        scores=scores[keep],
        boxes_xyxy=xywh_to_xyxy(boxes_xywh[keep]),
        lines=np.zeros(len(first_seen), dtype=np.int64),
        problems=problems,
        source=name,
    )


def _warn_unknown_images(unknown_ids: np.ndarray, dataset: Dataset, name: str, problems: list[Problem]) -> None:
    """One WARNING per image id the dataset lacks (capped), with its number of detections."""
    ids, counts = np.unique(unknown_ids, return_counts=True)
    for image_id, count in zip(ids[:MAX_LISTED].tolist(), counts[:MAX_LISTED].tolist()):
        problems.append(Problem(
            Severity.WARNING, f"image_id {image_id} is not an image of {dataset.source}; its {count} "
            "detection(s) are left out (results for another dataset or split?)", file=name, image_id=image_id))
    if len(ids) > MAX_LISTED:
        problems.append(Problem(Severity.WARNING, f"... and {len(ids) - MAX_LISTED} more unknown image ids "
                                f"({int(counts[MAX_LISTED:].sum())} detections left out)", file=name))


def _warn_outside_images(boxes_xywh: np.ndarray, image_index: np.ndarray, keep: np.ndarray, dataset: Dataset,
                         name: str, problems: list[Problem]) -> None:
    """One WARNING for all kept boxes reaching outside their image: kept as they are, as COCO evaluates them."""
    index = image_index[keep]
    width = dataset.images["width"].to_numpy(dtype=np.float64)[index]
    height = dataset.images["height"].to_numpy(dtype=np.float64)[index]
    boxes = xywh_to_xyxy(boxes_xywh[keep])
    outside = np.flatnonzero(outside_image(boxes, width, height))
    if not len(outside):
        return
    first = int(outside[0])
    problems.append(Problem(
        Severity.WARNING, f"{len(outside)} box(es) on {len(np.unique(index[outside]))} image(s) reach outside "
        f"their image (first: entry [{int(keep[first])}], bbox {boxes_xywh[keep[first]].tolist()} in a "
        f"{width[first]:g}x{height[first]:g} image); they are kept as they are, as COCO evaluates them",
        file=name, image_id=int(dataset.images["id"].iat[index[first]])))
