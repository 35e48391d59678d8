"""What the CLI and the app do with the catalog: register a file, evaluate-or-reuse, reopen."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from core.catalog.results import RESULT_VERSION, result_payload
from core.catalog.store import Catalog, Submission
from core.tables import Dataset, Predictions


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ground_truth_key(path: Path | str) -> str:
    """The GT's cache key: a json file's sha256, a YOLO / VOC folder's fingerprint (as the app keys it)."""
    from core.formats import dataset_folder, ground_truth_fingerprint

    path = Path(path)
    if path.is_file() and path.suffix.lower() not in (".yaml", ".yml"):
        return file_sha256(path)
    return ground_truth_fingerprint(dataset_folder(path))


def counts_of(preds: Predictions | None) -> dict:
    """n_boxes and n_images of loaded predictions (None when they could not be loaded)."""
    if preds is None:
        return {"n_boxes": None, "n_images": None}
    return {"n_boxes": int(len(preds)), "n_images": int(len(np.unique(np.asarray(preds.image_keys, dtype=object))))}


def register_predictions_file(catalog: Catalog, data: bytes, file_name: str, preds: Predictions | None,
                              **fields) -> tuple[Submission, bool]:
    """Catalogue a submission's bytes with its box and image counts."""
    return catalog.register(data, Path(str(file_name)).name, **counts_of(preds), **fields)


def load_submission(catalog: Catalog, submission: Submission, dataset: Dataset | None) -> Predictions:
    """The catalogued file read back as Predictions (ValidationError when it does not fit `dataset`)."""
    from core.formats import load_any_predictions

    return load_any_predictions(catalog.content(submission.id), dataset, name=submission.file_name)


def cached_result(catalog: Catalog, gt_key: str, pred_key: str, iou_thr: float) -> dict | None:
    """The cached numbers of this pair, if they are of the current payload version."""
    payload = catalog.result(gt_key, pred_key, iou_thr)
    return payload if payload is not None and payload.get("version") == RESULT_VERSION else None


def evaluate_cached(catalog: Catalog, dataset: Dataset, gt_key: str, gt_name: str, preds: Predictions,
                    pred_key: str, iou_thr: float = 0.5) -> tuple[dict, bool]:
    """The numbers of preds on dataset: from the cache, else evaluated and cached. (payload, was cached)."""
    payload = cached_result(catalog, gt_key, pred_key, iou_thr)
    if payload is not None:
        return payload, True
    from core.evaluation import evaluate

    payload = result_payload(evaluate(dataset, preds, iou_thr=iou_thr))
    catalog.save_result(gt_key, pred_key, iou_thr, payload, gt_name=gt_name)
    return payload, False
