"""Shared helpers for the evaluation tests: build cases, run pycocotools on the same data."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from core.dataset import load_coco
from core.tables import Dataset, Predictions


def dataset_of(doc: dict) -> Dataset:
    """A Dataset from a COCO dict, through the real loader."""
    return load_coco(json.dumps(doc).encode(), name="case.json")


def predictions_of(dataset: Dataset, image_index, labels, scores, boxes_xyxy,
                   extra_keys: tuple = ()) -> Predictions:
    """Predictions on dataset images (by image index), grouped by image as a CSV would be."""
    image_index = np.asarray(image_index, np.int64)
    order = np.argsort(image_index, kind="stable")
    file_names = dataset.images["file_name"].to_numpy(dtype=object)
    used = np.unique(image_index)
    keys = np.r_[file_names[used], np.asarray(extra_keys, dtype=object)].astype(object)
    pos = np.searchsorted(used, image_index[order])
    return Predictions(
        image_keys=keys, image_pos=pos.astype(np.int64),
        labels=np.asarray(labels, np.int64)[order], scores=np.asarray(scores, np.float64)[order],
        boxes_xyxy=np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)[order],
        lines=np.arange(len(keys), dtype=np.int64) + 2,
    )


def results_of(dataset: Dataset, preds: Predictions) -> list[dict]:
    """The predictions as a COCO results list (xywh), in prediction order, known images only."""
    image = preds.image_index_in(dataset)
    ids = dataset.images["id"].to_numpy()
    xywh = preds.boxes_xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    return [{"image_id": int(ids[i]), "category_id": int(c), "bbox": b.tolist(), "score": float(s)}
            for i, c, b, s in zip(image, preds.labels, xywh, preds.scores) if i >= 0]


def pycocotools_eval(doc: dict, results: list[dict], use_cats: bool = True, iou_thrs=None, max_dets=None):
    """pycocotools COCOeval (bbox) after evaluate/accumulate/summarize, printing nothing."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(json.dumps(doc))
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        if not results:
            dt.dataset = {"images": doc["images"], "categories": doc["categories"], "annotations": []}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.params.useCats = int(use_cats)
        if iou_thrs is not None:
            evaluator.params.iouThrs = np.asarray(iou_thrs, float)
        if max_dets is not None:
            evaluator.params.maxDets = list(max_dets)
        evaluator.evaluate()
        evaluator.accumulate()
        if iou_thrs is None and max_dets is None:
            evaluator.summarize()
    return evaluator


def random_case(seed: int, n_images: int = 30, n_classes: int = 5, crowd_rate: float = 0.05,
                round_scores: bool = True) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A COCO dict and predictions shaped like a detector's output, with every hard case:
    non-contiguous category ids, crowd boxes, an `area` unlike w*h, images without boxes or
    without predictions, classes without ground truth, tied scores, wrong classes, duplicates.

    Returns (doc, image_index, labels, scores, boxes_xyxy); annotation ids start at 1.
    """
    rng = np.random.default_rng(seed)
    cat_ids = np.sort(rng.choice(np.arange(1, 100), n_classes, replace=False))
    sizes = rng.integers(60, 400, (n_images, 2))
    images = [{"id": int(10 + 3 * i), "file_name": f"img/{i:03d}.jpg", "width": int(w), "height": int(h)}
              for i, (w, h) in enumerate(sizes)]
    anns, gt_rows = [], []
    for i, (w, h) in enumerate(sizes):
        for _ in range(rng.poisson(3) if i % 7 else 0):                # every 7th image: none
            bw, bh = rng.uniform(4, w / 2), rng.uniform(4, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            c = int(rng.choice(cat_ids[:-1]))                           # the last class: no GT
            crowd = int(rng.random() < crowd_rate)
            area = float(bw * bh * rng.uniform(0.5, 1.0))               # like a mask area
            anns.append({"id": len(anns) + 1, "image_id": images[i]["id"], "category_id": c,
                         "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                         "area": round(area, 2), "iscrowd": crowd})
            gt_rows.append((i, c, x, y, bw, bh))
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": int(c), "name": f"class {c}"} for c in cat_ids]}
    det_image, det_label, det_box = [], [], []
    for i, c, x, y, bw, bh in gt_rows:
        if i % 5 == 3:
            continue                                                     # images with no predictions
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):                  # misses and duplicates
            jitter = rng.normal(0, 0.15, 4) * [bw, bh, bw, bh]
            x1, y1 = x + jitter[0], y + jitter[1]
            x2, y2 = x + bw + jitter[2], y + bh + jitter[3]
            label = c if rng.random() > 0.15 else int(rng.choice(cat_ids))
            det_image.append(i)
            det_label.append(label)
            det_box.append([x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)])
    for i, (w, h) in enumerate(sizes):
        if i % 5 == 3:
            continue
        for _ in range(rng.poisson(2)):                                  # background boxes
            x1, y1 = rng.uniform(0, w - 10), rng.uniform(0, h - 10)
            det_image.append(i)
            det_label.append(int(rng.choice(cat_ids)))
            det_box.append([x1, y1, x1 + rng.uniform(3, w / 3), y1 + rng.uniform(3, h / 3)])
    scores = rng.uniform(0.01, 1.0, len(det_image))
    if round_scores:
        scores = np.round(scores, 1)                                     # many ties
    return (doc, np.asarray(det_image, np.int64), np.asarray(det_label, np.int64), scores,
            np.asarray(det_box, np.float64).reshape(-1, 4))


def fresh_kernels():
    """core.kernel_build.kernels() chosen anew (as in a new process), the cached choice left
    cleared behind so later tests choose again."""
    from core import kernel_build

    kernel_build.kernels.cache_clear()
    try:
        return kernel_build.kernels()
    finally:
        kernel_build.kernels.cache_clear()
