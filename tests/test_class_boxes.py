"""core.browse.class_boxes (Class errors' per-class index, ordered once per evaluation): at any
threshold the view's class_outcome_counts / class_outcome_rows over it equal filtering the
view's full tables, the page's old way."""
from __future__ import annotations

import numpy as np
import pytest

from core.browse import class_boxes
from core.dataset import load_coco
from core.evaluation import evaluate
from core.outcomes import DISPLAY_ORDER, Outcome
from core.prediction_files import load_predictions
from tests.conftest import REAL_TRASH, SAMPLE, need

OUTCOMES = [o.value for o in DISPLAY_ORDER if o is not Outcome.IGNORED]


def _evaluation(folder, gt, csv):
    dataset = load_coco(folder / gt)
    return evaluate(dataset, load_predictions(folder / csv, dataset=dataset), iou_thr=0.5)


@pytest.fixture(scope="module", params=["sample", "real fold"])
def ev(request):
    if request.param == "sample":
        return _evaluation(SAMPLE, "train.json", "predictions_strong.csv")
    need(REAL_TRASH / "fold3_deta_swinL.csv")
    return _evaluation(REAL_TRASH, "fold3_gt.json", "fold3_deta_swinL.csv")


def _filtered(view, category_id, outcome, n):
    """The reference: the full tables at the threshold, filtered and sorted (stable)."""
    if outcome == Outcome.MISSED.value:
        gts = view.gts
        gts = gts[(gts["category_id"] == category_id) & gts["missed"].astype(bool)
                  & ~gts["iscrowd"].astype(bool)]
        area = view.evaluation.dataset.annotations["area"].to_numpy()[gts["ann_index"].to_numpy()]
        return gts.assign(area=area).sort_values("area", ascending=False, kind="stable").head(n)
    dets = view.dets
    dets = dets[(dets["category_id"] == category_id) & (dets["outcome"].astype(str) == outcome)]
    return dets.sort_values("score", ascending=False, kind="stable").head(n)


@pytest.mark.parametrize("score_thr", [0.0, 0.05, 0.3, 0.71, 1.01])
def test_counts_and_rows_equal_filtering_the_view(ev, score_thr):
    view = ev.at(score_thr)
    checked = 0
    for category_id in ev.dataset.categories["id"].tolist():
        boxes = class_boxes(ev, category_id)
        counts = view.class_outcome_counts(boxes)
        for outcome in OUTCOMES:
            expected = _filtered(view, category_id, outcome, 10 ** 9)
            assert counts[outcome] == len(expected), (category_id, outcome)
            for n in (24, 10 ** 9):
                rows = view.class_outcome_rows(boxes, outcome, n)
                want = expected.head(n)
                assert rows.index.tolist() == want.index.tolist(), (category_id, outcome, n)
                assert list(rows.columns) == [c for c in want.columns if c != "missed"], outcome
                if outcome == Outcome.MISSED.value:
                    np.testing.assert_array_equal(rows["area"].to_numpy(), want["area"].to_numpy())
            checked += len(expected)
    assert checked or score_thr > 1  # something was compared below the top score
