"""COCO metrics: DetLens' engine against pycocotools on generated, random and real data."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.evaluation import evaluate
from core.metrics import STAT_NAMES
from tests.conftest import REAL_TRASH, need
from tests.eval_support import dataset_of, predictions_of, pycocotools_eval, random_case, results_of


def _assert_same_as_pycocotools(doc, image_index, labels, scores, boxes):
    dataset = dataset_of(doc)
    preds = predictions_of(dataset, image_index, labels, scores, boxes)
    ev = evaluate(dataset, preds)
    reference = pycocotools_eval(doc, results_of(dataset, preds))
    ours = np.array([ev.stats[name] for name in STAT_NAMES])
    np.testing.assert_allclose(ours, reference.stats, rtol=0, atol=1e-9)
    # per class AP, AP50, AP75 from pycocotools' precision array (area all, maxDets 100)
    p = reference.eval["precision"][:, :, :, 0, -1]                         # [T,R,K]
    for column, t in (("ap", slice(None)), ("ap50", slice(0, 1)), ("ap75", slice(5, 6))):
        s = p[t]
        expected = [np.mean(s[:, :, k][s[:, :, k] > -1]) if (s[:, :, k] > -1).any() else np.nan
                    for k in range(s.shape[2])]
        np.testing.assert_allclose(ev.per_class[column].to_numpy(), expected, rtol=0, atol=1e-9)
    return ev, reference


class TestAgainstPycocotools:
    @pytest.mark.parametrize("seed", range(6))
    def test_generated_datasets(self, seed):
        ev, reference = _assert_same_as_pycocotools(*random_case(seed, round_scores=seed % 2 == 0))
        assert ev.stats["map50"] > 0.1  # a meaningful case, not all -1

    def test_many_boxes_per_image_hit_max_dets(self):
        doc, image, labels, scores, boxes = random_case(11, n_images=4, n_classes=2)
        rng = np.random.default_rng(0)
        extra = 260  # > 100 per (image, class): COCO keeps only the best 100
        image = np.r_[image, np.zeros(extra, np.int64)]
        labels = np.r_[labels, np.full(extra, doc["categories"][0]["id"])]
        scores = np.r_[scores, rng.uniform(0, 1, extra)]
        xy = rng.uniform(0, 100, (extra, 2))
        boxes = np.vstack([boxes, np.hstack([xy, xy + rng.uniform(5, 80, (extra, 2))])])
        ev, _ = _assert_same_as_pycocotools(doc, image, labels, scores, boxes)
        group = ev.dets[(ev.dets.image_index == 0) & (ev.dets.category_id == labels[-1])]
        assert len(group) > 100
        assert (group["outcome"].iloc[100:] == "ignored").all()  # rows are in score order

    def test_per_class_view_at_zero_equals_coco_ap50(self):
        doc, *arrays = random_case(3)
        dataset = dataset_of(doc)
        ev = evaluate(dataset, predictions_of(dataset, *arrays))
        view = ev.at(0.0)
        assert view.map50 == pytest.approx(ev.stats["map50"], abs=1e-12)
        np.testing.assert_allclose(view.per_class["ap50"], ev.per_class["ap50"], atol=1e-12)


_box = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 30), st.integers(1, 30))


@st.composite
def _small_cases(draw):
    n_images = draw(st.integers(1, 4))
    cat_ids = [2, 5, 9]
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "width": 80, "height": 80} for i in range(n_images)]
    anns = []
    for i in range(n_images):
        for (x, y, w, h) in draw(st.lists(_box, max_size=4)):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": draw(st.sampled_from(cat_ids[:2])),
                         "bbox": [x, y, w, h], "area": w * h * draw(st.sampled_from([1.0, 0.5, 30.0])),
                         "iscrowd": int(draw(st.integers(0, 9)) == 0)})
    doc = {"images": images, "annotations": anns, "categories": [{"id": c, "name": f"c{c}"} for c in cat_ids]}
    dets = draw(st.lists(st.tuples(st.integers(0, n_images - 1), st.sampled_from(cat_ids), _box,
                                   st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.9])), max_size=14))
    # predictions copy some ground-truth boxes exactly (IoU 1, and exact ties between boxes)
    copies = draw(st.lists(st.tuples(st.integers(0, max(len(anns) - 1, 0)), st.sampled_from([0.2, 0.5, 0.7])),
                           max_size=6)) if anns else []
    image, label, score, boxes = [], [], [], []
    for i, c, (x, y, w, h), s in dets:
        image.append(i), label.append(c), score.append(s), boxes.append([x, y, x + w, y + h])
    for a, s in copies:
        x, y, w, h = anns[a]["bbox"]
        image.append(anns[a]["image_id"] - 1), label.append(anns[a]["category_id"]), score.append(s)
        boxes.append([x, y, x + w, y + h])
    return doc, np.array(image, np.int64), np.array(label, np.int64), np.array(score), np.array(boxes, float).reshape(-1, 4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_small_cases())
def test_random_small_cases_equal_pycocotools(case):
    """Ties, crowd boxes, empty images, images without predictions, classes without GT."""
    _assert_same_as_pycocotools(*case)


def test_annotation_id_zero_is_matched_unlike_pycocotools():
    """pycocotools stores matches as ids and uses 0 for "none", so a GT with id 0 counts as
    missed and its detection as a false positive. DetLens matches it like any other box."""
    doc = {"images": [{"id": 0, "file_name": "a.jpg", "width": 100, "height": 100}],
           "categories": [{"id": 0, "name": "General trash"}],
           "annotations": [{"id": k, "image_id": 0, "category_id": 0, "bbox": [10 + 30 * k, 10, 20, 40],
                            "area": 800, "iscrowd": 0} for k in range(2)]}
    dataset = dataset_of(doc)
    boxes = dataset.annotations[["x1", "y1", "x2", "y2"]].to_numpy()
    preds = predictions_of(dataset, [0, 0], [0, 0], [0.9, 0.8], boxes)
    ev = evaluate(dataset, preds)
    assert ev.stats["map"] == 1.0 and ev.stats["map50"] == 1.0
    assert (ev.dets["outcome"] == "tp").all() and (ev.gts["matched_pred"] >= 0).all()
    reference = pycocotools_eval(doc, results_of(dataset, preds))
    assert reference.stats[0] < 0.6  # the bug we do not inherit: id 0 counted as a miss + an FP


def test_real_fold3_equals_pycocotools_and_published_numbers():
    from core.submission import read_submission
    from core.dataset import load_coco

    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    preds = read_submission(need(REAL_TRASH / "fold3_deta_swinL.csv"), dataset=dataset)
    ev = evaluate(dataset, preds)
    assert ev.stats["map50"] == pytest.approx(0.668446, abs=5e-7)   # published in the README
    assert ev.stats["map"] == pytest.approx(0.570470, abs=5e-7)
    assert 0 not in set(dataset.annotations["id"])  # so pycocotools has no id-0 bug to differ by
    gt_doc = json.loads((REAL_TRASH / "fold3_gt.json").read_text())
    reference = pycocotools_eval(gt_doc, results_of(dataset, preds))
    np.testing.assert_allclose([ev.stats[n] for n in STAT_NAMES], reference.stats, rtol=0, atol=1e-9)


def _evaluated_case(seed: int, **kwargs):
    """(COCO dict, Dataset, Evaluation, results list) of random_case(seed)."""
    doc, *arrays = random_case(seed, **kwargs)
    dataset = dataset_of(doc)
    preds = predictions_of(dataset, *arrays)
    return doc, dataset, evaluate(dataset, preds), results_of(dataset, preds)


def test_confusion_matrix_equals_pycocotools_class_agnostic_matching():
    """Rebuilt from pycocotools' evalImgs with useCats=0 at IoU 0.5, as fce_shapes3's EXPECTED.md does."""
    doc, dataset, ev, results = _evaluated_case(21, n_images=40, crowd_rate=0.1)
    reference = pycocotools_eval(doc, results, use_cats=False, iou_thrs=[0.5], max_dets=[100])
    cat_ids = list(dataset.categories["id"])
    k = len(cat_ids)
    gt_cat = {a["id"]: a["category_id"] for a in doc["annotations"]}
    dt_cat = {i + 1: r["category_id"] for i, r in enumerate(results)}  # loadRes numbers from 1
    expected = np.zeros((k + 1, k + 1), np.int64)
    for e in reference.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        for det_id, gt_id, ignored in zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0]):
            if ignored:
                continue
            column = cat_ids.index(dt_cat[det_id])
            row = cat_ids.index(gt_cat[int(gt_id)]) if gt_id > 0 else k
            expected[row, column] += 1
        for gt_id, det_id, ignored in zip(e["gtIds"], e["gtMatches"][0], e["gtIgnore"]):
            if not ignored and det_id == 0:
                expected[cat_ids.index(gt_cat[gt_id]), k] += 1
    np.testing.assert_array_equal(ev.at(0.0).confusion.to_numpy(), expected)


def test_per_image_ap50_equals_pycocotools_on_that_image():
    doc, dataset, ev, results = _evaluated_case(8, n_images=30, crowd_rate=0.0)
    checked = 0
    for image in ev.per_image.itertuples():
        image_id = int(dataset.images["id"].iloc[image.image_index])
        gt_classes = {a["category_id"] for a in doc["annotations"] if a["image_id"] == image_id}
        dt_classes = {r["category_id"] for r in results if r["image_id"] == image_id}
        if not gt_classes or not dt_classes <= gt_classes:
            continue  # DetLens also counts classes predicted but absent there, as AP 0
        one = {**doc, "images": [im for im in doc["images"] if im["id"] == image_id],
               "annotations": [a for a in doc["annotations"] if a["image_id"] == image_id]}
        reference = pycocotools_eval(one, [r for r in results if r["image_id"] == image_id])
        assert image.ap50 == pytest.approx(reference.stats[1], abs=1e-12), image_id
        checked += 1
    assert checked >= 5
