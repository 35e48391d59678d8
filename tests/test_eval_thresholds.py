"""Threshold views: ev.at(t) must equal a full re-run with the boxes scoring below t deleted."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.evaluation import evaluate
from tests.eval_support import dataset_of, predictions_of, random_case


def _case(seed: int, **kwargs):
    doc, *arrays = random_case(seed, **kwargs)
    dataset = dataset_of(doc)
    return dataset, predictions_of(dataset, *arrays)


def _assert_view_equals_rerun(dataset, preds, ev, score_thr: float):
    view = ev.at(score_thr)
    keep = preds.scores >= score_thr
    rerun = evaluate(dataset, preds.subset(keep), iou_thr=ev.iou_thr)
    full = rerun.at(-np.inf)
    # every kept box has the same outcome, IoU and deciding ground truth
    ours = view.dets.reset_index(drop=True)
    theirs = rerun.dets.assign(pred_index=np.flatnonzero(keep)[rerun.dets["pred_index"].to_numpy()])
    pd.testing.assert_frame_equal(ours, theirs.reset_index(drop=True), check_categorical=False)
    missed = view.gts["missed"].to_numpy()
    assert np.array_equal(missed, (rerun.gts["matched_pred"] < 0).to_numpy() & (rerun.gts["iscrowd"] == 0).to_numpy())
    assert view.counts == full.counts
    for name in ("precision", "recall", "f1"):
        np.testing.assert_equal(getattr(view, name), getattr(full, name))
    coco_name = {0.5: "map50", 0.75: "map75"}[ev.iou_thr]  # the view's AP is at ev.iou_thr
    expected_map50 = rerun.stats[coco_name] if rerun.stats[coco_name] > -1 else np.nan
    np.testing.assert_allclose(view.map50, expected_map50, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(view.per_class, full.per_class, check_exact=False, atol=1e-12)
    pd.testing.assert_frame_equal(view.per_image, full.per_image, check_exact=False, atol=1e-12)
    pd.testing.assert_frame_equal(view.confusion, full.confusion)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), score_thr=st.sampled_from([0.0, 0.05, 0.3, 0.5, 0.55, 0.8, 1.0]),
       crowd=st.booleans(), iou_thr=st.sampled_from([0.5, 0.75]))
def test_view_equals_rerun_without_low_boxes(seed, score_thr, crowd, iou_thr):
    """Ties at the threshold included: scores are rounded to 0.1, and t sits on them."""
    dataset, preds = _case(seed, n_images=12, crowd_rate=0.1 if crowd else 0.0)
    _assert_view_equals_rerun(dataset, preds, evaluate(dataset, preds, iou_thr=iou_thr), score_thr)


def test_view_equals_rerun_with_more_than_100_boxes_per_image():
    doc, image, labels, scores, boxes = random_case(5, n_images=3, n_classes=2, round_scores=False)
    rng = np.random.default_rng(1)
    extra = 150
    xy = rng.uniform(0, 50, (extra, 2))
    dataset = dataset_of(doc)
    preds = predictions_of(dataset, np.r_[image, np.zeros(extra, np.int64)],
                           np.r_[labels, np.full(extra, labels[0])], np.r_[scores, rng.uniform(0, 1, extra)],
                           np.vstack([boxes, np.hstack([xy, xy + rng.uniform(5, 60, (extra, 2))])]))
    ev = evaluate(dataset, preds)
    for score_thr in (0.0, 0.2, 0.6):
        _assert_view_equals_rerun(dataset, preds, ev, score_thr)


class TestThresholdCurve:
    def test_curve_points_equal_views(self):
        dataset, preds = _case(2, n_images=40)
        ev = evaluate(dataset, preds)
        curve = ev.threshold_curve(thresholds=[0.0, 0.25, 0.5, 0.75])
        for row in curve.itertuples():
            view = ev.at(row.score_thr)
            assert row.precision == pytest.approx(view.precision)
            assert row.recall == pytest.approx(view.recall)
            assert row.f1 == pytest.approx(view.f1)
            assert row.map50 == pytest.approx(view.map50)

    def test_per_class_curve_equals_per_class_view(self):
        dataset, preds = _case(4, n_images=40)
        ev = evaluate(dataset, preds)
        category_id = int(dataset.categories["id"].iloc[0])
        curve = ev.threshold_curve(category_id, thresholds=[0.1, 0.6])
        for row in curve.itertuples():
            line = ev.at(row.score_thr).per_class.set_index("category_id").loc[category_id]
            assert row.precision == pytest.approx(line["precision"])
            assert row.recall == pytest.approx(line["recall"])
            assert row.map50 == pytest.approx(line["ap50"])

    def test_raising_the_threshold_lowers_map_and_recall(self):
        """What the competition's users must see: cutting low-score boxes never helps mAP."""
        dataset, preds = _case(7, n_images=60, round_scores=False)
        curve = evaluate(dataset, preds).threshold_curve()
        assert curve["score_thr"].iloc[0] == 0.0 and curve["score_thr"].iloc[-1] == 1.0
        assert (np.diff(curve["map50"].dropna()) <= 1e-12).all()
        assert (np.diff(curve["recall"]) <= 0).all()
        assert curve["map50"].iloc[5] < curve["map50"].iloc[0]

    def test_unknown_category_is_rejected(self):
        dataset, preds = _case(1)
        with pytest.raises(ValueError, match="Invalid category_id 12345"):
            evaluate(dataset, preds).threshold_curve(12345)
