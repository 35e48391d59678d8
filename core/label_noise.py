"""Inject known label errors into a clean COCO ground truth, to measure how well they are found.

    noisy, truth = inject_label_noise(coco_dict, n_drop=20, n_swap=20, n_shift=20, n_duplicate=20, seed=0)

Deterministic (numpy's PCG64 seeded by `seed`); the input dict is never modified. Each
annotation receives at most one error, chosen among the non-crowd boxes:

- drop: the annotation is removed (a missing annotation; the model should still see the object);
- swap: its category becomes another of the dataset's categories, drawn uniformly;
- shift: its box is moved and rescaled (centre moved by U(-0.4, 0.4) of its width / height, each
  side scaled by exp(U(-0.4, 0.4))), redrawn until its IoU with the original is in
  [0.3, 0.65] (a loose or misplaced box), clipped to the image;
- duplicate: a copy with each edge moved by U(-0.03, 0.03) of the box size is added with a new id
  (max id + 1, ...), same image and category (the same object boxed twice).

`truth` has one row per injected error: kind, image_id, ann_id (the affected annotation: the
removed one for drop, the added copy for duplicate), source_ann_id (the original a duplicate
copies; = ann_id otherwise), category_id (before), new_category_id (after), x1, y1, x2, y2 (the
box before, xyxy) and nx1, ny1, nx2, ny2 (the box after; the original's for drop).
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from core.boxes import box_iou

NOISE_KINDS = ("drop", "swap", "shift", "duplicate")
SHIFT_IOU_RANGE = (0.3, 0.65)
_SHIFT_TRIES = 200


def inject_label_noise(coco: dict, *, n_drop: int = 0, n_swap: int = 0, n_shift: int = 0,
                       n_duplicate: int = 0, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """A noisy copy of the COCO dict and the table of injected errors (see the module docstring)."""
    counts = {"drop": n_drop, "swap": n_swap, "shift": n_shift, "duplicate": n_duplicate}
    for kind, n in counts.items():
        if int(n) < 0:
            raise ValueError(f"Invalid n_{kind} {n!r}. Only counts >= 0 are supported.")
    noisy = copy.deepcopy(coco)
    anns = noisy["annotations"]
    eligible = [i for i, a in enumerate(anns) if not a.get("iscrowd", 0)]
    total = sum(counts.values())
    if total > len(eligible):
        raise ValueError(f"cannot inject {total} errors into {len(eligible)} non-crowd annotations; "
                         "inject fewer")
    rng = np.random.default_rng(seed)
    picked = rng.permutation(eligible)[:total]
    sizes = {int(im["id"]): (float(im.get("width") or np.inf), float(im.get("height") or np.inf))
             for im in noisy["images"]}
    category_ids = sorted(int(c["id"]) for c in noisy["categories"])
    next_id = max((int(a["id"]) for a in anns), default=-1) + 1
    rows, drop, start = [], set(), 0
    for kind in NOISE_KINDS:
        for position in picked[start:start + counts[kind]]:
            ann = anns[int(position)]
            before = _xyxy(ann["bbox"])
            row = dict(kind=kind, image_id=int(ann["image_id"]), ann_id=int(ann["id"]),
                       source_ann_id=int(ann["id"]), category_id=int(ann["category_id"]),
                       new_category_id=int(ann["category_id"]))
            after = before
            if kind == "drop":
                drop.add(int(position))
            elif kind == "swap":
                others = [c for c in category_ids if c != int(ann["category_id"])]
                if not others:
                    raise ValueError("cannot swap classes in a dataset with one category")
                ann["category_id"] = row["new_category_id"] = int(rng.choice(others))
            elif kind == "shift":
                after = _shifted(rng, before, sizes.get(int(ann["image_id"]), (np.inf, np.inf)))
                _set_box(ann, after)
            else:  # duplicate
                w, h = before[2] - before[0], before[3] - before[1]
                after = before + rng.uniform(-0.03, 0.03, 4) * np.array([w, h, w, h])
                copy_ann = {**copy.deepcopy(ann), "id": next_id}
                _set_box(copy_ann, after)
                anns.append(copy_ann)
                row["ann_id"] = next_id
                next_id += 1
            rows.append({**row, **dict(zip(("x1", "y1", "x2", "y2"), map(float, before))),
                         **dict(zip(("nx1", "ny1", "nx2", "ny2"), map(float, after)))})
        start += counts[kind]
    noisy["annotations"] = [a for i, a in enumerate(anns) if i not in drop]
    columns = ["kind", "image_id", "ann_id", "source_ann_id", "category_id", "new_category_id",
               "x1", "y1", "x2", "y2", "nx1", "ny1", "nx2", "ny2"]
    return noisy, pd.DataFrame(rows, columns=columns)


def _xyxy(bbox) -> np.ndarray:
    x, y, w, h = (float(v) for v in bbox)
    return np.array([x, y, x + w, y + h])


def _set_box(ann: dict, box_xyxy: np.ndarray) -> None:
    x1, y1, x2, y2 = (round(float(v), 1) for v in box_xyxy)
    ann["bbox"] = [x1, y1, round(x2 - x1, 1), round(y2 - y1, 1)]
    ann["area"] = round((x2 - x1) * (y2 - y1), 2)


def _shifted(rng: np.random.Generator, box: np.ndarray, image_wh: tuple[float, float]) -> np.ndarray:
    """box moved and rescaled until its IoU with box is in SHIFT_IOU_RANGE, inside the image."""
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    lo, hi = SHIFT_IOU_RANGE
    best, best_gap = box, np.inf
    for _ in range(_SHIFT_TRIES):
        dx, dy = rng.uniform(-0.4, 0.4, 2) * (w, h)
        sw, sh = np.exp(rng.uniform(-0.4, 0.4, 2))
        new = np.array([cx + dx - w * sw / 2, cy + dy - h * sh / 2, cx + dx + w * sw / 2, cy + dy + h * sh / 2])
        new = np.clip(new, 0, [image_wh[0], image_wh[1], image_wh[0], image_wh[1]])
        if new[2] - new[0] < 1 or new[3] - new[1] < 1:
            continue
        iou = float(box_iou(box, new)[0, 0])
        if lo <= iou <= hi:
            return new
        gap = min(abs(iou - lo), abs(iou - hi))
        if gap < best_gap:  # a box at the image's edge may never get there: keep the closest
            best, best_gap = new, gap
    return best


# suspect kind (core.label_issues) that finds each injected error
KIND_FOUND_AS = {"drop": "missing", "swap": "wrong_class", "shift": "bad_box", "duplicate": "duplicate"}
FOUND_IOU = 0.5  # a missing-box suspect finds a dropped box when its box overlaps it this much


def match_truth(suspects: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """[S] index into truth of the injected error each suspect finds (-1: none), in suspect order;
    each error is found once, by its first suspect. A dropped box is found by a missing-box
    suspect whose box has IoU >= FOUND_IOU with it; the others by the annotation (a duplicate
    by either box of the pair) and the suspect kind of KIND_FOUND_AS."""
    found = np.full(len(suspects), -1, np.int64)
    taken = np.zeros(len(truth), bool)
    by_ann: dict[tuple[str, int], list[int]] = {}
    for t, row in enumerate(truth.itertuples(index=False)):
        kind = KIND_FOUND_AS[row.kind]
        ids = {row.ann_id, row.source_ann_id} if row.kind == "duplicate" else {row.ann_id}
        if row.kind != "drop":
            for ann_id in ids:
                by_ann.setdefault((kind, int(ann_id)), []).append(t)
    drops = truth[truth["kind"] == "drop"]
    drop_boxes = drops[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).reshape(-1, 4)
    drop_image = drops["image_id"].to_numpy()
    drop_index = drops.index.to_numpy()
    for s, row in enumerate(suspects.itertuples(index=False)):
        if row.kind == "missing":
            box = np.array([row.model_x1, row.model_y1, row.model_x2, row.model_y2])
            overlap = box_iou(box, drop_boxes)[0] if len(drop_boxes) else np.zeros(0)
            hits = drop_index[(drop_image == row.image_id) & (overlap >= FOUND_IOU)]
            candidates = list(hits)
        else:
            candidates = by_ann.get((row.kind, int(row.ann_id)), [])
        for t in candidates:
            if not taken[t]:
                taken[t], found[s] = True, t
                break
    return found


def found_shares(suspects: pd.DataFrame, truth: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Suspect kind -> (share of its n injected errors found in the top 2n suspects of that kind,
    share of the top 50 suspects of that kind that find one), and 'all' for the whole ranking
    (top 2N; top 50). NaN recall for a kind nothing was injected of."""
    out = {}
    for noise, kind in KIND_FOUND_AS.items():
        t = truth[truth["kind"] == noise].reset_index(drop=True)
        mine = suspects[suspects["kind"] == kind].reset_index(drop=True)
        found = match_truth(mine, t) if len(mine) else np.zeros(0, np.int64)
        n = len(t)
        out[kind] = ((found[:2 * n] >= 0).sum() / n if n else np.nan, (found[:50] >= 0).sum() / 50)
    found = match_truth(suspects, truth)
    out["all"] = ((found[:2 * len(truth)] >= 0).sum() / max(len(truth), 1), (found[:50] >= 0).sum() / 50)
    return out
