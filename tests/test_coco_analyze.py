"""COCO analyze() breakdown against MMDetection's coco_error_analysis.py method, reproduced
here with pycocotools (its own steps: iouThrs [.75, .5, .1], supercategory / all-class
confusions turned into crowd regions of the class, -1 -> 0, BG and FN rows)."""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest

from core.coco_analyze import CURVES, coco_analyze, supercategories_of
from core.evaluation import evaluate
from core.prediction_files import load_predictions
from tests.conftest import SAMPLE
from tests.eval_support import dataset_of, predictions_of, random_case, results_of


def _mmdet_reference(doc: dict, results: list[dict]) -> np.ndarray:
    """ps [7, R, K, A] as analyze_results() builds it (maxDets 100, default areas)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(doc)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        img_ids = coco_gt.getImgIds()

        def run(gt, dt, ious):
            ev = COCOeval(gt, dt, "bbox")
            ev.params.imgIds = img_ids
            ev.params.iouThrs = np.array(ious)
            ev.params.maxDets = [100]
            ev.evaluate()
            ev.accumulate()
            return ev.eval["precision"]

        ps = run(copy.deepcopy(coco_gt), copy.deepcopy(coco_dt), [0.75, 0.5, 0.1])
        ps = np.vstack([ps, np.zeros((4, *ps.shape[1:]))])
        cat_ids = coco_gt.getCatIds()
        for k, cat_id in enumerate(cat_ids):
            dt = copy.deepcopy(coco_dt)
            dt.dataset["annotations"] = [a for a in dt.dataset["annotations"] if a["category_id"] == cat_id]
            dt.createIndex()
            nm = coco_gt.loadCats(cat_id)[0]
            for row, children in ((3, coco_gt.getCatIds(supNms=[nm["supercategory"]])), (4, None)):
                gt = copy.deepcopy(coco_gt)
                for ann in gt.dataset["annotations"]:
                    if (children is None or ann["category_id"] in children) and ann["category_id"] != cat_id:
                        ann["ignore"], ann["iscrowd"], ann["category_id"] = 1, 1, cat_id
                ps[row, :, k, :, :] = run(gt, copy.deepcopy(dt), [0.1])[0, :, k, :, :]
            ps[ps == -1] = 0
            ps[5, :, k, :, :] = ps[4, :, k, :, :] > 0
            ps[6, :, k, :, :] = 1.0
    return ps[..., 0]


def _sample_with_supercategories():
    doc = json.loads((SAMPLE / "train.json").read_text())
    for ann in doc["annotations"]:
        ann["id"] += 1  # pycocotools never matches annotation id 0
    for cat in doc["categories"]:  # two or three classes per supercategory, so Sim differs from Oth
        cat["supercategory"] = f"group {cat['id'] % 4}"
    dataset = dataset_of(doc)
    return doc, dataset, load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)


def _random_with_supercategories(seed):
    doc, image, labels, scores, boxes = random_case(seed, n_images=30, n_classes=5)
    for i, cat in enumerate(doc["categories"]):
        cat["supercategory"] = "a" if i % 2 else "b"
    dataset = dataset_of(doc)
    return doc, dataset, predictions_of(dataset, image, labels, scores, boxes)


@pytest.mark.parametrize("case", ["sample", "random"])
def test_equals_the_mmdetection_method(case):
    doc, dataset, preds = _sample_with_supercategories() if case == "sample" else _random_with_supercategories(2)
    ours = coco_analyze(evaluate(dataset, preds), supercategories_of(doc))
    expected = _mmdet_reference(doc, results_of(dataset, preds))
    assert ours.ps.shape == expected.shape
    for i, name in enumerate(CURVES):
        np.testing.assert_allclose(ours.ps[i], expected[i], atol=1e-9, err_msg=name)
    assert not np.allclose(ours.ps[3], ours.ps[4])  # the supercategories mattered
    # the overall AP of each curve is the mean over classes and recall points, as makeplot's
    ap = ours.ap()
    assert ap["C50"] == pytest.approx(expected[1, :, :, 0].mean(), abs=1e-12)
    assert list(ap.index) == CURVES and ap.is_monotonic_increasing


def test_without_supercategories_sim_is_oth():
    doc, dataset, preds = _random_with_supercategories(3)
    for cat in doc["categories"]:
        del cat["supercategory"]
    assert supercategories_of(doc) is None
    result = coco_analyze(evaluate(dataset, preds), None)
    assert not result.has_sim
    np.testing.assert_array_equal(result.ps[3], result.ps[4])
