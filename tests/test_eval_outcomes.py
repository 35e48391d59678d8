"""Per-box outcomes (TIDE's error types), TIDE dAP against hotcoco, and the Evaluation API."""
from __future__ import annotations

import numpy as np
import pytest

from core.outcomes import ERROR_TYPES, OUTCOME_CODES, Outcome
from core.evaluation import evaluate
from tests.eval_support import dataset_of, predictions_of, random_case, results_of

CAT, DOG = 1, 2
GT_CAT = [0, 0, 50, 50]    # xywh
GT_DOG = [100, 0, 50, 50]


def _scene(gt_boxes, dets, crowd=()):
    """One 200x200 image; gt_boxes [(class, xywh)], dets [(class, score, xyxy)]."""
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 200}],
           "categories": [{"id": CAT, "name": "cat"}, {"id": DOG, "name": "dog"}],
           "annotations": [{"id": i + 1, "image_id": 1, "category_id": c, "bbox": b, "area": b[2] * b[3],
                            "iscrowd": int(i in crowd)} for i, (c, b) in enumerate(gt_boxes)]}
    dataset = dataset_of(doc)
    preds = predictions_of(dataset, [0] * len(dets), [d[0] for d in dets], [d[1] for d in dets],
                           [d[2] for d in dets])
    return evaluate(dataset, preds)


def _outcomes(ev) -> dict:
    """pred_index -> (outcome, gt_index, iou)."""
    return {int(r.pred_index): (r.outcome, int(r.gt_index), round(float(r.iou), 4)) for r in ev.dets.itertuples()}


class TestOneErrorTypeEach:
    def test_true_positive(self):
        ev = _scene([(CAT, GT_CAT)], [(CAT, 0.9, [0, 0, 50, 50])])
        assert _outcomes(ev) == {0: ("tp", 0, 1.0)}
        assert ev.gts["matched_pred"].tolist() == [0]

    def test_duplicate(self):
        ev = _scene([(CAT, GT_CAT)], [(CAT, 0.9, [0, 0, 50, 50]), (CAT, 0.7, [0, 0, 50, 45])])
        assert _outcomes(ev) == {0: ("tp", 0, 1.0), 1: ("duplicate", 0, 0.9)}

    def test_localization(self):
        ev = _scene([(CAT, GT_CAT)], [(CAT, 0.9, [25, 0, 75, 50])])  # IoU 1/3 with its class
        assert _outcomes(ev) == {0: ("localization", 0, 0.3333)}

    def test_classification(self):
        ev = _scene([(CAT, GT_CAT), (DOG, GT_DOG)], [(DOG, 0.9, [0, 0, 50, 50])])
        assert _outcomes(ev) == {0: ("classification", 0, 1.0)}

    def test_both(self):
        ev = _scene([(CAT, GT_CAT)], [(DOG, 0.9, [25, 0, 75, 50])])  # wrong class, IoU 1/3
        assert _outcomes(ev) == {0: ("both", 0, 0.3333)}

    def test_background(self):
        ev = _scene([(CAT, GT_CAT)], [(CAT, 0.9, [150, 150, 190, 190])])
        assert _outcomes(ev) == {0: ("background", -1, 0.0)}

    def test_background_on_an_image_without_ground_truth(self):
        ev = _scene([], [(CAT, 0.9, [0, 0, 50, 50])])
        assert _outcomes(ev) == {0: ("background", -1, 0.0)}

    def test_missed(self):
        ev = _scene([(CAT, GT_CAT), (DOG, GT_DOG)], [(CAT, 0.9, [0, 0, 50, 50])])
        view = ev.at(0.0)
        assert view.counts["missed"] == 1 and view.gts["missed"].tolist() == [False, True]
        assert ev.tide.set_index("error").loc["missed", "count"] == 1

    def test_crowd_region_makes_a_box_ignored(self):
        ev = _scene([(CAT, GT_CAT), (CAT, [100, 100, 80, 80])], [(CAT, 0.9, [110, 110, 150, 150])], crowd=(1,))
        assert _outcomes(ev) == {0: ("ignored", -1, 0.0)}
        assert ev.at(0.0).counts["missed"] == 1  # the crowd box itself is never "missed"

    def test_localization_wins_over_classification(self):
        """TIDE's order: a box with IoU 0.36 with its class and 1.0 with another is a Loc error."""
        ev = _scene([(CAT, [0, 0, 30, 30]), (DOG, [0, 0, 50, 50])], [(CAT, 0.9, [0, 0, 50, 50])])
        assert _outcomes(ev) == {0: ("localization", 0, 0.36)}

    def test_score_order_decides_who_is_the_duplicate(self):
        ev = _scene([(CAT, GT_CAT)], [(CAT, 0.5, [0, 0, 50, 50]), (CAT, 0.8, [0, 0, 50, 40])])
        assert _outcomes(ev) == {0: ("duplicate", 0, 1.0), 1: ("tp", 0, 0.8)}


class TestTideAgainstHotcoco:
    @pytest.mark.parametrize("seed", range(3))
    def test_counts_and_dap_equal_hotcoco(self, seed):
        import hotcoco

        doc, *arrays = random_case(seed, n_images=40, crowd_rate=0.0, round_scores=False)
        dataset = dataset_of(doc)
        preds = predictions_of(dataset, *arrays)
        ev = evaluate(dataset, preds)
        coco_gt = hotcoco.COCO(doc)
        evaluator = hotcoco.COCOeval(coco_gt, coco_gt.load_res(results_of(dataset, preds)), "bbox")
        evaluator.evaluate()
        reference = evaluator.tide_errors(pos_thr=0.5, bg_thr=0.1)
        tide = ev.tide.set_index("error")
        for error in ERROR_TYPES:
            short = error.short_name
            assert tide.loc[error.value, "count"] == reference["counts"][short], short
            assert tide.loc[error.value, "dap"] == pytest.approx(reference["delta_ap"][short], abs=1e-9), short
        assert ev.tide_special["false_positives"] == pytest.approx(reference["delta_ap"]["FP"], abs=1e-9)
        assert ev.tide_special["false_negatives"] == pytest.approx(reference["delta_ap"]["FN"], abs=1e-9)
        assert ev.tide_ap_base == pytest.approx(ev.stats["map50"], abs=1e-12)

    def test_error_counts_add_up(self):
        doc, *arrays = random_case(9, n_images=40)
        dataset = dataset_of(doc)
        ev = evaluate(dataset, predictions_of(dataset, *arrays))
        view = ev.at(0.0)
        tide = ev.tide.set_index("error")["count"]
        for error in ERROR_TYPES[:-1]:
            assert tide[error.value] == view.counts[error.value]
        assert tide["missed"] <= view.counts["missed"]  # TIDE's Miss leaves out GT a fix can take
        assert sum(view.counts[e.value] for e in OUTCOME_CODES if e is not Outcome.MISSED) == len(ev.dets)


class TestEvaluationApi:
    def test_unknown_images_and_labels_are_reported_and_left_out(self):
        doc, image, labels, scores, boxes = random_case(1, n_images=10)
        dataset = dataset_of(doc)
        preds = predictions_of(dataset, image, labels, scores, boxes, extra_keys=("nope.jpg",))
        # move the first image's boxes onto an image the dataset lacks, and give a box label 777
        preds.image_pos[preds.image_pos == 0] = len(preds.image_keys) - 1
        preds.labels[-1] = 777
        ev = evaluate(dataset, preds)
        assert list(ev.unknown_image_keys) == ["nope.jpg"]
        assert "not in the ground truth" in str(ev.problems[0]) and "777" in str(ev.problems[1])
        left_in = ~np.isin(np.arange(len(preds)), ev.dets["pred_index"])
        assert left_in.sum() == (preds.image_pos == len(preds.image_keys) - 1).sum() + 1

    def test_no_predictions_at_all(self):
        doc, *_ = random_case(2, n_images=5)
        dataset = dataset_of(doc)
        preds = predictions_of(dataset, [], [], [], np.zeros((0, 4)))
        ev = evaluate(dataset, preds)
        assert ev.stats["map"] == 0.0 and len(ev.dets) == 0
        assert ev.at(0.3).counts["missed"] == (dataset.annotations["iscrowd"] == 0).sum()
        assert ev.at(0.3).confusion.to_numpy()[-1].sum() == 0

    def test_dets_columns_and_order(self):
        doc, *arrays = random_case(3, n_images=10)
        dataset = dataset_of(doc)
        ev = evaluate(dataset, predictions_of(dataset, *arrays))
        assert list(ev.dets.columns) == ["pred_index", "image_index", "category_id", "score", "x1", "y1", "x2", "y2",
                                         "outcome", "iou", "gt_index"]
        keys = np.lexsort((-ev.dets["score"].to_numpy(), ev.dets["image_index"].to_numpy()))
        assert np.array_equal(keys, np.arange(len(ev.dets)))
        assert set(ev.dets["outcome"].astype(str)) <= {e.value for e in OUTCOME_CODES}

    def test_bad_iou_threshold(self):
        doc, *arrays = random_case(3, n_images=3)
        dataset = dataset_of(doc)
        with pytest.raises(ValueError, match="Invalid iou_thr 1.5"):
            evaluate(dataset, predictions_of(dataset, *arrays), iou_thr=1.5)

    def test_error_types_have_names_and_descriptions(self):
        assert [e.short_name for e in ERROR_TYPES] == ["Cls", "Loc", "Both", "Dupe", "Bkg", "Miss"]
        assert all(e.description for e in Outcome)
