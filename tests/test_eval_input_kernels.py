"""The compiled passes that replaced numpy ones on the way into an evaluation (issue 16: 10x scale
in under 5 s) compute exactly what the numpy expressions they replaced compute, in both builds:
the accumulate order (numpy's stable sorts), the CSV's box checks, the label and outside-image
checks; and the build is tagged with the CPU it was compiled for."""
from __future__ import annotations

import numpy as np
import pytest

from core import csv_kernels, evaluation, kernel_build, matching_kernels, submission
from core.dataset import OUTSIDE_TOLERANCE, outside_image
from tests.eval_support import dataset_of, fresh_kernels, predictions_of, random_case

SPECIAL_SCORES = np.array([0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 0.5, 1e-300, 5e-324, -2.5, 0.5 + 1e-16])


def _builds():
    return [matching_kernels, fresh_kernels()]


def _numpy_class_order(score, cls, rows):
    """What evaluate ran before: numpy's stable argsort of -score, then of the classes."""
    det_order = rows[np.argsort(-score[rows], kind="stable")]
    by_class = np.argsort(cls[det_order], kind="stable")
    return by_class, det_order[by_class]


@pytest.mark.parametrize("kind", ["random", "rounded", "special", "constant", "wide", "close"])
def test_class_score_order_is_numpys_stable_sorts(kind):
    rng = np.random.default_rng(len(kind))
    for n in (0, 1, 2, 7, 300, 5000):
        score = {"random": lambda: rng.random(n), "rounded": lambda: np.round(rng.random(n), 2),
                 "special": lambda: rng.choice(SPECIAL_SCORES, n), "constant": lambda: np.full(n, 0.25),
                 "wide": lambda: rng.normal(size=n) * 10.0 ** rng.integers(-300, 300, n),
                 # the same high 32 key bits, long runs of them (and ties): the whole key decides
                 "close": lambda: 0.5 + rng.integers(0, 50, n) * 2.0 ** -45}[kind]()
        cls = rng.integers(0, 5, n)
        for rows in (np.arange(n), rng.permutation(n)):
            expected = _numpy_class_order(score, cls, rows)
            for build in _builds():
                for a, b in zip(build.class_score_order(score, cls, rows, 5), expected):
                    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shuffle_ids", [False, True])
def test_evaluations_class_order_is_the_accumulate_order_by_class(shuffle_ids):
    """evaluation._class_order against evaluation._accumulate_order (numpy), image ids in file
    order or not (then ties keep the ascending image id order, as pycocotools' accumulate)."""
    doc, *arrays = random_case(5, n_images=60, crowd_rate=0.1)
    if shuffle_ids:
        new_id = {im["id"]: 1000 - k * 7 for k, im in enumerate(doc["images"])}
        for im in doc["images"]:
            im["id"] = new_id[im["id"]]
        for ann in doc["annotations"]:
            ann["image_id"] = new_id[ann["image_id"]]
    dataset = dataset_of(doc)
    labels, scores = arrays[1], np.round(np.asarray(arrays[2]), 1)          # many ties across images
    det, _, _ = evaluation._known_predictions(dataset, predictions_of(dataset, arrays[0], labels, scores, arrays[3]))
    det_order = evaluation._accumulate_order(det, dataset)
    by_class, class_order = evaluation._class_order(det, dataset)
    np.testing.assert_array_equal(by_class, evaluation._stable_argsort_small(det.cls[det_order]))
    np.testing.assert_array_equal(class_order, det_order[by_class])
    # what TIDE per class, slices and COCO analyze take: each row's place in the accumulate order
    shared_order, position = evaluation.class_order_and_position(det, dataset)
    np.testing.assert_array_equal(shared_order, class_order)
    np.testing.assert_array_equal(det_order[position], np.arange(len(det_order)))


def _numpy_box_flags(boxes):
    """The checks _check_boxes made in numpy, as box_flags' bits."""
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(boxes).all(axis=1)
        labels, scores = boxes[:, 0], boxes[:, 1]
        integral = finite & (labels == np.round(labels)) & (np.abs(labels) < 2**62)
        flags = np.where(~finite, csv_kernels.NOT_FINITE, 0)
        flags |= np.where(finite & ~integral, csv_kernels.LABEL_NOT_INTEGER, 0)
        flags |= np.where(integral & ((scores < 0) | (scores > 1)), csv_kernels.SCORE_OUTSIDE, 0)
        flags |= np.where(integral & ((boxes[:, 4] <= boxes[:, 2]) | (boxes[:, 5] <= boxes[:, 3])),
                          csv_kernels.EMPTY_BOX, 0)
    return flags.astype(np.uint8)


def test_box_flags_are_the_numpy_checks():
    rng = np.random.default_rng(0)
    values = np.array([0.0, -0.0, 1.0, 2.0, 0.5, -1.0, 1.5, 3.0, 1e300, 2.0**62, -(2.0**62), 2.0**62 - 1024,
                       np.nan, np.inf, -np.inf, 10.0, 100.0])
    boxes = rng.choice(values, size=(20000, 6))
    boxes[::3, 4] = boxes[::3, 2] + 1                                        # more regular boxes
    for build in (csv_kernels, fresh_kernels()):
        np.testing.assert_array_equal(build.box_flags(boxes), _numpy_box_flags(boxes))
    assert (submission._NOT_FINITE, submission._LABEL_NOT_INTEGER, submission._SCORE_OUTSIDE,
            submission._EMPTY_BOX) == (csv_kernels.NOT_FINITE, csv_kernels.LABEL_NOT_INTEGER,
                                       csv_kernels.SCORE_OUTSIDE, csv_kernels.EMPTY_BOX)


def test_outside_images_is_outside_image():
    rng = np.random.default_rng(1)
    n_keys, n = 40, 5000
    width, height = rng.integers(50, 500, n_keys).astype(float), rng.integers(50, 500, n_keys).astype(float)
    known = rng.random(n_keys) < 0.8
    image = rng.integers(0, n_keys, n)
    xy = rng.uniform(-30, 520, (n, 2))
    boxes = np.c_[xy, xy + rng.uniform(0, 60, (n, 2))]
    boxes[:50, 0] = -OUTSIDE_TOLERANCE                                      # on the tolerance: inside
    boxes[50:100, 2] = width[image[50:100]] + OUTSIDE_TOLERANCE
    expected = known[image] & outside_image(boxes, width[image], height[image])
    assert 0 < expected.sum() < n
    for build in (csv_kernels, fresh_kernels()):
        np.testing.assert_array_equal(build.outside_images(boxes, image, known, width, height, OUTSIDE_TOLERANCE),
                                      expected)


def test_known_labels_is_isin():
    rng = np.random.default_rng(2)
    labels = rng.choice([0.0, 1.0, 2.0, 3.0, 7.0, 8.0, -1.0, 1e6, 2.0**61, np.nan, 2.5], 3000)
    readable = np.isfinite(labels) & (labels == np.round(labels))
    for ids in (np.array([1, 3, 7]), np.array([0]), np.array([5, 2**21]), np.array([-2, 3]), np.array([], np.int64)):
        np.testing.assert_array_equal(submission._known_labels(labels, readable, ids),
                                      readable & np.isin(labels, ids))


def test_the_build_is_tagged_with_the_cpu(monkeypatch):
    """A checkout copied to a machine with other instruction sets builds anew (the build is
    compiled for this CPU) instead of loading code its CPU may not run."""
    here = kernel_build.build_tag()
    assert kernel_build._cpu_features()                                     # Linux lists them
    monkeypatch.setattr(kernel_build, "_cpu_features", lambda: "flags\t\t: fpu sse sse2")
    assert kernel_build.build_tag() != here


def test_box_columns_are_the_numpy_columns():
    rng = np.random.default_rng(3)
    boxes = rng.normal(size=(3000, 6)) * 1000
    boxes[:, 0] = rng.choice([0.0, -0.0, 3.0, -7.0, 2.0**61, -(2.0**61)], 3000)   # readable labels
    boxes[::5, 1] = -0.0
    for build in (csv_kernels, fresh_kernels()):
        labels, scores, xyxy = build.box_columns(boxes)
        assert labels.dtype == np.int64 and labels.tobytes() == boxes[:, 0].astype(np.int64).tobytes()
        assert scores.tobytes() == boxes[:, 1].copy().tobytes() and xyxy.tobytes() == boxes[:, 2:].copy().tobytes()
