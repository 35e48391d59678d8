"""Matching on threads: chunks of images give exactly the one-chunk result and pycocotools' stats,
and the compiled kernels (ahead-of-time build and JIT) release the GIL so the threads overlap."""
from __future__ import annotations

import json
import sys
import threading

import numpy as np
import pytest

from core import evaluation, kernel_build, matching_kernels
from core.dataset import load_coco
from core.metrics import COCO_AREA_RANGES, COCO_IOU_THRS, COCO_RECALL_THRS, STAT_NAMES
from core.submission import read_submission
from tests.conftest import REAL_TRASH, need
from tests.eval_support import (dataset_of, fresh_kernels, predictions_of, pycocotools_eval, random_case,
                                results_of)


def _evaluate(dataset, preds, rows_per_chunk, monkeypatch):
    monkeypatch.setattr(evaluation, "_ROWS_PER_CHUNK", rows_per_chunk)
    monkeypatch.setattr(evaluation, "_cores", lambda: 7)      # more chunks than this machine's cores
    return evaluation.evaluate(dataset, preds)


def _assert_same(one, many):
    for column in one.dets.columns:
        np.testing.assert_array_equal(one.dets[column].to_numpy(), many.dets[column].to_numpy(), err_msg=column)
    for column in one.gts.columns:
        np.testing.assert_array_equal(one.gts[column].to_numpy(), many.gts[column].to_numpy(), err_msg=column)
    for threshold in (0.0, 0.3):
        np.testing.assert_array_equal(one.at(threshold).confusion.to_numpy(), many.at(threshold).confusion.to_numpy())
    np.testing.assert_array_equal([one.stats[n] for n in STAT_NAMES], [many.stats[n] for n in STAT_NAMES])
    np.testing.assert_array_equal(one.per_class[["ap", "ap50", "ap75"]].to_numpy(),
                                  many.per_class[["ap", "ap50", "ap75"]].to_numpy())
    np.testing.assert_array_equal(one.tide[["count", "dap"]].to_numpy(), many.tide[["count", "dap"]].to_numpy())


@pytest.mark.parametrize("seed", [3, 11])
def test_chunks_equal_one_chunk_and_pycocotools_on_random_cases(seed, monkeypatch):
    """Crowd boxes, images without predictions or GT at chunk edges: indices into GT and
    predictions must come back global."""
    doc, *arrays = random_case(seed, n_images=60, crowd_rate=0.15)
    dataset = dataset_of(doc)
    preds = predictions_of(dataset, *arrays)
    one = _evaluate(dataset, preds, 10 ** 9, monkeypatch)
    many = _evaluate(dataset, preds, 5, monkeypatch)        # as many chunks as the pool takes
    _assert_same(one, many)
    reference = pycocotools_eval(doc, results_of(dataset, preds))
    np.testing.assert_allclose([many.stats[n] for n in STAT_NAMES], reference.stats, rtol=0, atol=1e-9)


def test_chunks_equal_pycocotools_on_the_real_fold(monkeypatch):
    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    preds = read_submission(need(REAL_TRASH / "fold3_deta_swinL.csv"), dataset=dataset)
    one = _evaluate(dataset, preds, 10 ** 9, monkeypatch)
    many = _evaluate(dataset, preds, 2_000, monkeypatch)
    _assert_same(one, many)
    reference = pycocotools_eval(json.loads((REAL_TRASH / "fold3_gt.json").read_text()), results_of(dataset, preds))
    np.testing.assert_allclose([many.stats[n] for n in STAT_NAMES], reference.stats, rtol=0, atol=1e-9)


def _kernel_args():
    """Arguments of match_images and of accumulate on a random case of 400 images."""
    doc, *arrays = random_case(5, n_images=400, crowd_rate=0.05)
    dataset = dataset_of(doc)
    det, _, _ = evaluation._known_predictions(dataset, predictions_of(dataset, *arrays))
    gt = evaluation._gt_arrays(dataset)
    order = np.argsort(gt.image, kind="stable")
    n = len(dataset.images)
    match_args = (np.searchsorted(det.image, np.arange(n + 1)), det.cls, det.score, det.xywh,
                  np.searchsorted(gt.image[order], np.arange(n + 1)), gt.cls[order], gt.xywh[order],
                  gt.crowd[order], gt.area[order], 0.5, 0.1, COCO_IOU_THRS, COCO_AREA_RANGES, 100)
    rank, coco, never = (matching_kernels.match_images(*match_args)[k] for k in (0, 8, 9))
    class_order = np.lexsort((np.arange(len(det.score)), -det.score, det.cls))
    n_classes = len(doc["categories"])
    # n_pos bounds the kernel's true-positive buffers: every GT box is an upper bound
    accumulate_args = (coco[class_order], never[class_order],
                       np.searchsorted(det.cls[class_order], np.arange(n_classes + 1)), rank[class_order],
                       np.array([1, 10, 100]), np.full((n_classes, 4), len(gt.cls), np.int64), COCO_RECALL_THRS)
    return match_args, accumulate_args


def _releases_gil(function, args) -> bool:
    """Whether another Python thread runs while function runs: with a 10 s switch interval a
    thread holding the GIL keeps it for the whole call, so the waiting thread would wake only
    after the call has returned."""
    function(*args)  # compiled and warm
    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        for _ in range(200):                                 # long enough to be caught running
            function(*args)
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        overlapped = not done.is_set()
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    return overlapped


def test_the_jit_kernels_release_the_gil():
    match_args, accumulate_args = _kernel_args()
    assert _releases_gil(matching_kernels.match_images, match_args)
    assert _releases_gil(matching_kernels.accumulate, accumulate_args)


def test_the_ahead_of_time_kernels_release_the_gil(monkeypatch):
    monkeypatch.delenv("DETLENS_KERNELS", raising=False)
    built = fresh_kernels()
    if built is matching_kernels:
        pytest.skip("no ahead-of-time build on this machine (no C compiler): the JIT serves")
    match_args, accumulate_args = _kernel_args()
    assert _releases_gil(built.match_images, match_args)
    assert _releases_gil(built.accumulate, accumulate_args)
