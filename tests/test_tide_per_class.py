"""TIDE dAP per class: its base AP per class is pycocotools' AP at the IoU, its classes grouped
together give hotcoco-tested tide_errors, and per-class gains add up to the overall ones."""
from __future__ import annotations

import numpy as np
import pytest

from core.outcomes import ERROR_TYPES
from core.evaluation import evaluate
from core.tide import tide_dap_by_group, tide_errors
from core.tide_per_class import tide_input_of, tide_per_class
from tests.eval_support import dataset_of, predictions_of, pycocotools_eval, random_case, results_of


@pytest.fixture(scope="module", params=[0, 8])
def case(request):
    doc, image, labels, scores, boxes = random_case(request.param, n_images=40, n_classes=6)
    dataset = dataset_of(doc)
    preds = predictions_of(dataset, image, labels, scores, boxes)
    return doc, dataset, preds, evaluate(dataset, preds)


def test_base_ap_per_class_is_pycocotools(case):
    doc, dataset, preds, ev = case
    reference = pycocotools_eval(doc, results_of(dataset, preds), iou_thrs=[0.5])
    p = reference.eval["precision"][0, :, :, 0, -1]                           # [R, K]
    expected = np.array([p[:, k][p[:, k] > -1].mean() if (p[:, k] > -1).any() else np.nan
                         for k in range(p.shape[1])])
    np.testing.assert_allclose(tide_per_class(ev)["ap"].to_numpy(), expected, atol=1e-12)


def test_one_group_of_every_class_is_tide_errors(case):
    *_, ev = case
    data, _, _ = tide_input_of(ev)
    dap, base = tide_dap_by_group(data, np.zeros(data.n_classes, np.int64), 1)
    whole = tide_errors(data)
    np.testing.assert_allclose(dap[0], whole.table["dap"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(dap[0], ev.tide["dap"].to_numpy(), atol=1e-12)
    assert base[0] == pytest.approx(ev.tide_ap_base, abs=1e-12)


def test_per_class_gains_average_to_the_overall_gain(case):
    *_, ev = case
    table = tide_per_class(ev)
    has_gt = table["n_gt"] > 0
    for error in ERROR_TYPES:
        per_class = table.loc[has_gt, error.value].to_numpy()
        if error.value == "missed":
            continue  # a class whose every box is missed leaves the mean: not an average
        # no class loses AP by a fix of these types, so no gain was cut at 0
        assert per_class.mean() == pytest.approx(ev.tide.set_index("error").loc[error.value, "dap"], abs=1e-12)
