"""The evaluation's faster paths at 10x scale compute exactly what the plain ones compute."""
from __future__ import annotations

import numpy as np
import pytest

from core import evaluation, kernel_build, matching_kernels
from core.metrics import COCO_RECALL_THRS
from tests.eval_support import dataset_of, predictions_of, random_case


def _prepared(seed: int, max_dets: int):
    doc, *arrays = random_case(seed, n_images=120, crowd_rate=0.1)
    dataset = dataset_of(doc)
    det, _, _ = evaluation._known_predictions(dataset, predictions_of(dataset, *arrays))
    gt = evaluation._gt_arrays(dataset)
    outcome = evaluation._match(det, gt, len(dataset.images), 0.5, max_dets)
    det_order = evaluation._accumulate_order(det, dataset)
    class_order = det_order[evaluation._stable_argsort_small(det.cls[det_order])]
    return dataset, det, gt, outcome, class_order


@pytest.mark.parametrize("seed, max_dets", [(0, 100), (1, 100), (2, 3), (3, 1)])
def test_accumulate_reachable_equals_accumulate(seed, max_dets, monkeypatch):
    """Flags + the reachable rows' status give the precision and recall of the full [N, T, A]."""
    dataset, det, gt, outcome, class_order = _prepared(seed, max_dets)
    n_classes = len(dataset.categories)
    assert outcome.never_matched.any() and not outcome.never_matched.all()
    assert (outcome.group_rank >= max_dets).any() == (max_dets < 100)
    # the plain kernel on the whole status array, in class order (what evaluate ran before)
    n_pos = _n_pos(gt, n_classes)
    class_start = np.searchsorted(det.cls[class_order], np.arange(n_classes + 1))
    plain = matching_kernels.accumulate(outcome.coco[class_order], outcome.never_matched[class_order], class_start,
                                        outcome.group_rank[class_order], np.array([1, 10, max_dets]), n_pos,
                                        COCO_RECALL_THRS)
    for kernels in (matching_kernels, kernel_build.kernels()):
        monkeypatch.setattr(kernel_build, "kernels", lambda kernels=kernels: kernels)
        fast = evaluation._coco_accumulate(outcome, det, gt, class_order, n_classes, max_dets)
        for a, b in zip(plain, fast):
            np.testing.assert_array_equal(a, b)


def _n_pos(gt, n_classes):
    from core.metrics import COCO_AREA_RANGES

    lo, hi = COCO_AREA_RANGES[:, 0], COCO_AREA_RANGES[:, 1]
    in_range = (gt.area[:, None] >= lo) & (gt.area[:, None] <= hi) & ~gt.crowd[:, None]
    n_pos = np.zeros((n_classes, len(lo)), np.int64)
    np.add.at(n_pos, gt.cls, in_range.astype(np.int64))
    return n_pos


def test_the_flag_constants_are_the_kernels():
    assert (evaluation._COCO_FP, evaluation._REACHABLE) == (matching_kernels.COCO_FP, matching_kernels.REACHABLE)


@pytest.mark.parametrize("max_dets", [100, 2])
def test_compact_coco_status_expands_to_the_kernels(max_dets):
    """The outcome keeps COCO's [N, T, A] status compact; expanded, it is the matcher's array."""
    from core.metrics import COCO_AREA_RANGES, COCO_IOU_THRS

    dataset, det, gt, outcome, _ = _prepared(4, max_dets)
    order = np.argsort(gt.image, kind="stable")
    n = len(dataset.images)
    full = matching_kernels.match_images(
        np.searchsorted(det.image, np.arange(n + 1)), det.cls, det.score, det.xywh,
        np.searchsorted(gt.image[order], np.arange(n + 1)), gt.cls[order], gt.xywh[order], gt.crowd[order],
        gt.area[order], 0.5, 0.1, COCO_IOU_THRS, COCO_AREA_RANGES, max_dets)[8]
    assert outcome.coco_reach.shape[0] < len(det.score) / 2
    np.testing.assert_array_equal(outcome.coco, full)
