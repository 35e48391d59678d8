"""Label-error suspects (core.label_issues) and the noise injector (core.label_noise).

References: cleanlab's own ObjectLab functions for the box scores; hand-built scenes whose
label errors are known; errors injected into the clean sample ground truth.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from core.boxes import box_iou
from core.dataset import load_coco
from core.evaluation import evaluate
from core.label_issues import (LabelIssuesError, calibrated_confidence, cleanlab_box_scores,
                               cleanlab_suspects, find_label_issues)
from core.label_noise import SHIFT_IOU_RANGE, found_shares, inject_label_noise, match_truth
from core.prediction_files import load_predictions
from core.simulate import STRONG, simulate_predictions
from core.tables import Predictions
from tests.conftest import REAL_TRASH, SAMPLE, need

CATEGORIES = [{"id": c, "name": n} for c, n in enumerate(["cat", "dog", "bird"])]


def coco(boxes_by_image: dict[int, list[tuple[int, list[float]]]], size=(1000, 1000)) -> dict:
    """A COCO dict: {image_id: [(category_id, [x, y, w, h]), ...]} (annotation ids from 1)."""
    images = [{"id": i, "file_name": f"img/{i}.jpg", "width": size[0], "height": size[1]} for i in boxes_by_image]
    anns, next_id = [], 1
    for image_id, boxes in boxes_by_image.items():
        for cls, bbox in boxes:
            anns.append({"id": next_id, "image_id": image_id, "category_id": cls, "bbox": list(bbox),
                         "area": bbox[2] * bbox[3], "iscrowd": 0})
            next_id += 1
    return {"images": images, "annotations": anns, "categories": CATEGORIES}


def predictions(rows: list[tuple[int, int, float, list[float]]]) -> Predictions:
    """[(image_id, label, score, [x1, y1, x2, y2]), ...] keyed like a CSV (file names)."""
    keys = sorted({r[0] for r in rows})
    return Predictions(
        image_keys=np.array([f"img/{k}.jpg" for k in keys], dtype=object),
        image_pos=np.array([keys.index(r[0]) for r in rows], np.int64),
        labels=np.array([r[1] for r in rows], np.int64), scores=np.array([r[2] for r in rows]),
        boxes_xyxy=np.array([r[3] for r in rows], np.float64).reshape(-1, 4), lines=np.zeros(len(keys), np.int64))


def well_found(n: int = 40):
    """n images each with one object the model finds well (score 0.9), to calibrate scores on."""
    gt = {i: [(0, [100, 100, 200, 200])] for i in range(100, 100 + n)}
    preds = [(i, 0, 0.9, [102, 101, 301, 299]) for i in gt]
    return gt, preds


@pytest.fixture(scope="module")
def scene():
    """One image per label error, plus calibration images; known answers."""
    gt, preds = well_found()
    gt[1] = [(0, [100, 100, 200, 200])]                       # the model sees a second object at 600
    preds += [(1, 0, 0.9, [100, 100, 300, 300]), (1, 1, 0.9, [600, 600, 800, 800])]
    gt[2] = [(0, [100, 100, 200, 200])]                       # labelled cat, the model says bird
    preds += [(2, 2, 0.9, [101, 100, 300, 301])]
    gt[3] = [(1, [100, 100, 200, 200])]                       # dog boxed loosely: the model's box is offset
    preds += [(3, 1, 0.9, [170, 160, 370, 360])]
    gt[4] = [(0, [100, 100, 200, 200]), (0, [103, 101, 198, 200])]   # the same cat boxed twice
    preds += [(4, 0, 0.9, [100, 100, 300, 300])]
    dataset = load_coco(json.dumps(coco(gt)).encode(), name="scene.json")
    return dataset, predictions(preds)


def only(table: pd.DataFrame, image_id: int) -> pd.DataFrame:
    return table[table["image_id"] == image_id]


class TestRules:
    def test_each_error_found_with_its_kind_and_fix(self, scene):
        dataset, preds = scene
        table = find_label_issues(dataset, preds).suspects
        ann_id = dict(zip(dataset.annotations["image_id"], dataset.annotations["id"]))
        missing = only(table, 1)
        assert missing["kind"].tolist() == ["missing"]
        assert missing["suggested_category_id"].iloc[0] == 1 and missing["fix"].iloc[0] == "add"
        assert missing[["fix_x1", "fix_y1", "fix_x2", "fix_y2"]].to_numpy().tolist() == [[600, 600, 800, 800]]
        wrong = only(table, 2)
        assert wrong["kind"].tolist() == ["wrong_class"]
        assert (wrong["ann_id"].iloc[0], wrong["category_id"].iloc[0], wrong["suggested_category_id"].iloc[0]) == \
            (ann_id[2], 0, 2)
        bad = only(table, 3)
        assert bad["kind"].tolist() == ["bad_box"] and bad["fix"].iloc[0] == "move"
        assert bad[["fix_x1", "fix_y1", "fix_x2", "fix_y2"]].to_numpy().tolist() == [[170, 160, 370, 360]]
        dup = only(table, 4)
        assert dup["kind"].tolist() == ["duplicate"] and dup["fix"].iloc[0] == "delete"
        pair = set(dataset.annotations.loc[dataset.annotations["image_id"] == 4, "id"])
        assert {dup["ann_id"].iloc[0], dup["other_ann_id"].iloc[0]} == pair

    def test_a_box_on_a_crowd_region_is_not_a_missing_annotation(self):
        gt, preds = well_found()
        doc = coco({**gt, 1: [(0, [100, 100, 400, 400])]})
        doc["annotations"][-1]["iscrowd"] = 1
        dataset = load_coco(json.dumps(doc).encode(), name="crowd.json")
        table = find_label_issues(dataset, predictions(preds + [(1, 0, 0.9, [150, 150, 250, 250])])).suspects
        assert only(table, 1).empty

    def test_agreeing_labels_are_not_suspected(self, scene):
        dataset, preds = scene
        table = find_label_issues(dataset, preds).suspects
        assert not table["image_id"].isin(range(100, 140)).any()

    def test_ranked_by_score_with_stable_ids(self, scene):
        dataset, preds = scene
        a = find_label_issues(dataset, preds).suspects
        b = find_label_issues(dataset, preds, use_cleanlab=False).suspects
        assert a["rank"].tolist() == list(range(1, len(a) + 1))
        assert np.all(np.diff(a["score"].to_numpy()) <= 0)
        assert a["suspect_id"].is_unique and set(a["suspect_id"]) == set(b["suspect_id"])
        assert b["cleanlab_score"].isna().all() and (b["score"] == b["detlens_score"]).all()

    def test_a_low_confidence_disagreement_ranks_below_a_confident_one(self, scene):
        dataset, preds = scene
        weak = copy.deepcopy(preds)
        weak.scores[(weak.labels == 1) & (weak.boxes_xyxy[:, 0] == 600)] = 0.06  # the unlabelled object
        strong_score = only(find_label_issues(dataset, preds).suspects, 1)["score"].iloc[0]
        weak_rows = only(find_label_issues(dataset, weak).suspects, 1)
        assert weak_rows.empty or weak_rows["score"].iloc[0] < strong_score


class TestBadInput:
    def test_ground_truth_without_annotations(self):
        dataset = load_coco(SAMPLE / "test.json")
        preds = load_predictions(SAMPLE / "predictions_test.csv", dataset=dataset)
        with pytest.raises(LabelIssuesError, match="no annotations"):
            find_label_issues(dataset, preds)

    def test_predictions_for_another_dataset(self):
        dataset = load_coco(SAMPLE / "train.json")
        preds = load_predictions(need(REAL_TRASH / "fold3_deta_swinL.csv"))
        preds.image_keys = np.array([k.replace("train/", "other/") for k in preds.image_keys], dtype=object)
        with pytest.raises(LabelIssuesError, match="none of its 958 image"):
            find_label_issues(dataset, preds)

    def test_predictions_sharing_only_a_few_file_names_are_warned(self):
        """The real fold's CSV names train/0xxx.jpg files; a few of those names are sample images."""
        dataset = load_coco(SAMPLE / "train.json")
        preds = load_predictions(need(REAL_TRASH / "fold3_deta_swinL.csv"))
        shared = int((dataset.image_index_of_file(preds.image_keys) >= 0).sum())
        assert 0 < shared < 958 / 2
        issues = find_label_issues(dataset, preds)
        assert any(f"only {shared} of the 958 images" in p.message for p in issues.problems)


def test_calibrated_confidence_is_monotone_and_a_rate():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 2000)
    is_tp = rng.uniform(0, 1, 2000) < scores ** 2
    conf = calibrated_confidence(scores, is_tp)
    order = np.argsort(scores)
    assert np.all(np.diff(conf[order]) >= -1e-12)
    assert 0 <= conf.min() and conf.max() <= 1
    assert abs(conf.mean() - is_tp.mean()) < 0.05


def _cleanlab_lists(dataset, dets):
    """cleanlab's documented input format, built naively: labels dicts, per-class prediction arrays."""
    ann = dataset.annotations
    labels, preds, det_order = [], [], []
    k = int(dataset.category_ids.max()) + 1
    for i in range(len(dataset.images)):
        a = ann[ann["image_index"] == i]
        labels.append({"bboxes": a[["x1", "y1", "x2", "y2"]].to_numpy(np.float64).reshape(-1, 4),
                       "labels": a["category_id"].to_numpy()})
        d = dets[dets["image_index"] == i]
        per_class, order = [], []
        for c in range(k):
            rows = d[d["category_id"] == c]
            per_class.append(rows[["x1", "y1", "x2", "y2", "score"]].to_numpy(np.float64).reshape(-1, 5))
            order += rows.index.tolist()
        preds.append(per_class)
        det_order.append(np.array(order, np.int64))
    return labels, preds, det_order


@pytest.mark.parametrize("high", [None, 0.5])
def test_cleanlab_scores_equal_cleanlabs_own(high):
    """Our vectorised inputs give cleanlab's own box scores (its per-pair loops as the reference)."""
    from cleanlab.object_detection.rank import (compute_badloc_box_scores, compute_overlooked_box_scores,
                                                compute_swap_box_scores)
    full = load_coco(SAMPLE / "train.json")
    doc = json.loads((SAMPLE / "train.json").read_text())
    keep = {im["id"] for im in doc["images"][:25]}
    doc["images"] = [im for im in doc["images"] if im["id"] in keep]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in keep]
    dataset = load_coco(json.dumps(doc).encode(), name="first25.json")
    preds = load_predictions(SAMPLE / "predictions_trained_fcos.csv", dataset=full)
    dets = evaluate(dataset, preds).dets
    ours = cleanlab_box_scores(dataset, dets, high_probability_threshold=high)
    labels, predictions_, det_order = _cleanlab_lists(dataset, dets)
    extra = {} if high is None else {"high_probability_threshold": high}
    overlooked = compute_overlooked_box_scores(labels=labels, predictions=predictions_, **extra)
    swap = compute_swap_box_scores(labels=labels, predictions=predictions_, **extra)
    badloc = compute_badloc_box_scores(labels=labels, predictions=predictions_)
    ann_image = dataset.annotations["image_index"].to_numpy()
    for i in range(len(dataset.images)):
        np.testing.assert_allclose(ours.overlooked[det_order[i]], overlooked[i], atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(ours.swap[ann_image == i], swap[i], atol=1e-12)
        np.testing.assert_allclose(ours.badloc[ann_image == i], badloc[i], atol=1e-12)


class TestNoise:
    def test_deterministic_disjoint_and_as_documented(self):
        doc = json.loads((SAMPLE / "train.json").read_text())
        original = copy.deepcopy(doc)
        noisy, truth = inject_label_noise(doc, n_drop=5, n_swap=6, n_shift=7, n_duplicate=8, seed=3)
        again, truth2 = inject_label_noise(doc, n_drop=5, n_swap=6, n_shift=7, n_duplicate=8, seed=3)
        assert doc == original and noisy == again and truth.equals(truth2)
        assert truth["kind"].value_counts().to_dict() == {"drop": 5, "swap": 6, "shift": 7, "duplicate": 8}
        assert truth["source_ann_id"].is_unique                       # one error per annotation
        assert len(noisy["annotations"]) == len(doc["annotations"]) - 5 + 8
        by_id = {a["id"]: a for a in noisy["annotations"]}
        old = {a["id"]: a for a in doc["annotations"]}
        for row in truth.itertuples():
            if row.kind == "drop":
                assert row.ann_id not in by_id
            elif row.kind == "swap":
                assert by_id[row.ann_id]["category_id"] == row.new_category_id != old[row.ann_id]["category_id"]
            elif row.kind == "shift":
                x, y, w, h = by_id[row.ann_id]["bbox"]
                iou = box_iou([row.x1, row.y1, row.x2, row.y2], [x, y, x + w, y + h])[0, 0]
                assert SHIFT_IOU_RANGE[0] - 0.01 <= iou <= SHIFT_IOU_RANGE[1] + 0.01
            else:
                assert row.ann_id not in old and by_id[row.ann_id]["image_id"] == row.image_id
        load_coco(json.dumps(noisy).encode(), name="noisy.json")  # a valid ground truth

    def test_too_many_errors_refused(self):
        doc = coco({1: [(0, [0, 0, 10, 10])]})
        with pytest.raises(ValueError, match="cannot inject 2 errors into 1"):
            inject_label_noise(doc, n_drop=1, n_swap=1)


def test_injected_errors_found_better_than_cleanlab_alone():
    """On the sample ground truth with injected errors and a model that sees the real objects,
    each kind is mostly found in the top 2n, and the ranking beats cleanlab's scores alone."""
    doc = json.loads((SAMPLE / "train.json").read_text())
    clean = load_coco(SAMPLE / "train.json")
    noisy_doc, truth = inject_label_noise(doc, n_drop=15, n_swap=15, n_shift=15, n_duplicate=15, seed=11)
    noisy = load_coco(json.dumps(noisy_doc).encode(), name="noisy.json")
    preds = simulate_predictions(clean, STRONG, seed=7)
    ev = evaluate(noisy, preds)
    ours = found_shares(find_label_issues(noisy, preds, evaluation=ev).suspects, truth)
    theirs = found_shares(cleanlab_suspects(noisy, ev.dets, None), truth)
    for kind in ("missing", "wrong_class", "bad_box", "duplicate"):
        assert ours[kind][0] >= 0.5, (kind, ours)
    assert ours["all"][0] > theirs["all"][0] and ours["all"][1] > theirs["all"][1]


def test_match_truth_counts_each_error_once():
    truth = pd.DataFrame([dict(kind="swap", image_id=1, ann_id=5, source_ann_id=5, category_id=0, new_category_id=1,
                               x1=0, y1=0, x2=1, y2=1, nx1=0, ny1=0, nx2=1, ny2=1)])
    suspects = pd.DataFrame({"kind": ["wrong_class", "wrong_class", "bad_box"], "image_id": [1, 1, 1],
                             "ann_id": [5, 5, 5], "model_x1": np.nan, "model_y1": np.nan, "model_x2": np.nan,
                             "model_y2": np.nan})
    assert match_truth(suspects, truth).tolist() == [0, -1, -1]
