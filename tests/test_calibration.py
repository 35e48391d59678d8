"""Calibration against hotcoco's COCOeval.calibration (same definition: counted predictions,
equal-width bins, correct = TP at the IoU); operating thresholds against threshold views."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.calibration import (best_thresholds, calibration, cut_per_class, operating_points,
                              thresholds_json)
from core.evaluation import evaluate
from core.prediction_files import load_predictions
from tests.conftest import SAMPLE
from tests.eval_support import dataset_of, predictions_of, random_case, results_of


def _sample():
    doc = json.loads((SAMPLE / "train.json").read_text())
    for ann in doc["annotations"]:
        ann["id"] += 1  # pycocotools-style libraries never match annotation id 0
    dataset = dataset_of(doc)
    return doc, dataset, load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)


def _random(seed):
    doc, image, labels, scores, boxes = random_case(seed, n_images=40, n_classes=5, round_scores=False)
    dataset = dataset_of(doc)
    return doc, dataset, predictions_of(dataset, image, labels, scores, boxes)


def _hotcoco(doc, results, tmp_path, n_bins, iou):
    import hotcoco

    (tmp_path / "gt.json").write_text(json.dumps(doc))
    (tmp_path / "dt.json").write_text(json.dumps(results))
    gt = hotcoco.COCO(str(tmp_path / "gt.json"))
    ev = hotcoco.COCOeval(gt, gt.load_res(str(tmp_path / "dt.json")), "bbox")
    ev.evaluate()
    return ev.calibration(n_bins=n_bins, iou_threshold=iou)


@pytest.mark.parametrize("case,n_bins,iou", [("sample", 10, 0.5), ("sample", 15, 0.75), ("random", 10, 0.5),
                                             ("random", 7, 0.75)])
def test_calibration_equals_hotcoco(tmp_path, case, n_bins, iou):
    doc, dataset, preds = _sample() if case == "sample" else _random(4)
    ours = calibration(evaluate(dataset, preds, iou_thr=iou), n_bins=n_bins)
    ref = _hotcoco(doc, results_of(dataset, preds), tmp_path, n_bins, iou)
    assert ours.n == ref["num_detections"]
    np.testing.assert_allclose([ours.ece, ours.mce], [ref["ece"], ref["mce"]], atol=1e-12)
    np.testing.assert_array_equal(ours.bins["count"], [b["count"] for b in ref["bins"]])
    filled = ours.bins["count"].to_numpy() > 0
    np.testing.assert_allclose(ours.bins["avg_accuracy"].to_numpy()[filled],
                               np.array([b["avg_accuracy"] for b in ref["bins"]])[filled], atol=1e-12)
    np.testing.assert_allclose(ours.bins["avg_confidence"].to_numpy()[filled],
                               np.array([b["avg_confidence"] for b in ref["bins"]])[filled], atol=1e-12)
    per_class = dict(zip(ours.per_class["name"], ours.per_class["ece"]))
    for name, value in ref["per_category"].items():
        np.testing.assert_allclose(per_class[name], value, atol=1e-12, err_msg=name)


def test_score_threshold_drops_boxes_below_it():
    _, dataset, preds = _random(5)
    ev = evaluate(dataset, preds)
    moved = calibration(ev, score_thr=0.4)
    cut = calibration(evaluate(dataset, preds.subset(preds.scores >= 0.4)))
    assert moved.n == cut.n
    np.testing.assert_allclose([moved.ece, moved.mce], [cut.ece, cut.mce], atol=1e-12)


class TestThresholds:
    def test_best_f1_is_the_best_of_every_threshold_view(self):
        _, dataset, preds = _random(6)
        ev = evaluate(dataset, preds)
        table = best_thresholds(ev, min_precision=0.6, min_recall=0.5)
        scores = np.unique(ev.dets["score"].to_numpy())
        views = [ev.at(t).per_class for t in scores]                     # the reference: views
        dets = ev.dets[ev.dets["outcome"] != "ignored"]
        for row in table[table["category_id"] >= 0].itertuples():
            # the class's own scores: between two of them its kept boxes do not change
            own = np.isin(scores, dets.loc[dets["category_id"] == row.category_id, "score"].to_numpy())
            at = [v[v["category_id"] == row.category_id].iloc[0] for v, o in zip(views, own) if o]
            f1, p, r = (np.array([a[c] for a in at], float) for c in ("f1", "precision", "recall"))
            scores_c = scores[own]
            if np.all(np.isnan(f1)):
                assert np.isnan(row.best_f1)
                continue
            assert row.best_f1 == pytest.approx(np.nanmax(f1), abs=1e-12)
            best_at = scores_c[np.flatnonzero(f1 == np.nanmax(f1))].max()
            assert row.best_f1_thr == best_at
            ok = scores_c[p >= 0.6]
            assert (np.isnan(row.thr_precision) and not len(ok)) or row.thr_precision == ok.min()
            ok = scores_c[r >= 0.5]
            assert (np.isnan(row.thr_recall) and not len(ok)) or row.thr_recall == ok.max()
        overall = table[table["category_id"] == -1].iloc[0]
        all_f1 = np.array([ev.at(t).f1 for t in scores])
        assert overall["best_f1"] == pytest.approx(np.nanmax(all_f1), abs=1e-12)

    def test_cut_per_class_keeps_each_class_above_its_threshold(self):
        _, dataset, preds = _random(7)
        ev = evaluate(dataset, preds)
        table = best_thresholds(ev)
        thresholds = {int(r.category_id): r.best_f1_thr for r in table[table["category_id"] >= 0].itertuples()}
        cut = cut_per_class(preds, thresholds)
        for label, thr in thresholds.items():
            mine = preds.labels == label
            expected = int(mine.sum()) if np.isnan(thr) else int((mine & (preds.scores >= thr)).sum())
            assert int((cut.labels == label).sum()) == expected
        # the cut scored again: each class's precision and recall are those of its best-F1 point
        again = evaluate(dataset, cut).at(-np.inf).per_class
        for row in table[(table["category_id"] >= 0) & table["best_f1"].notna()].itertuples():
            mine = again[again["category_id"] == row.category_id].iloc[0]
            assert mine["f1"] == pytest.approx(row.best_f1, abs=1e-12)
        parsed = json.loads(thresholds_json(table))
        assert {v["category_id"] for v in parsed.values()} == {k for k, v in thresholds.items() if not np.isnan(v)}

    def test_operating_points_rejects_unknown_class(self):
        _, dataset, preds = _random(6)
        with pytest.raises(ValueError, match="Invalid category_id 12345"):
            operating_points(evaluate(dataset, preds), 12345)
