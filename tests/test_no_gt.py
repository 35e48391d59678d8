"""Test-set analysis without ground truth (issue 12): class mix against the training prior and the
label-free threshold suggestion, checked on the sample data where the truth is known."""
from __future__ import annotations

import numpy as np
import pytest

from core.dataset import load_coco
from core.evaluation import evaluate
from core.no_gt import (ALL_CLASSES, boxes_per_image, class_mix, class_prior, count_curve,
                        count_matching_threshold, images_without_boxes, suggest_thresholds)
from core.prediction_files import load_predictions
from tests.conftest import REAL_TRASH, SAMPLE, need


@pytest.fixture(scope="module")
def sample_train():
    train = load_coco(SAMPLE / "train.json")
    return train, load_predictions(SAMPLE / "predictions_strong.csv", dataset=train)


def test_suggestion_on_labelled_images_matches_the_true_counts(sample_train):
    """Prior = the images' own GT: the expected count is the true count, so at the suggested
    threshold the model keeps as many boxes as there are objects, and precision equals recall."""
    train, preds = sample_train
    table = suggest_thresholds(preds, train, class_prior(train)).set_index("category_id")
    n_gt = train.annotations["category_id"].value_counts()
    view_of = evaluate(train, preds).at
    for category_id, row in table.drop(index=ALL_CLASSES).iterrows():
        assert row["expected"] == n_gt.get(category_id, 0)
        own = np.sort(preds.scores[preds.labels == category_id])[::-1]
        assert row["threshold"] == own[int(row["expected"]) - 1]            # k-th best score
        assert row["kept"] == int((own >= row["threshold"]).sum())
        per_class = view_of(row["threshold"]).per_class.set_index("category_id").loc[category_id]
        if row["kept"] == row["expected"]:  # no tie at the threshold
            assert per_class["precision"] == pytest.approx(per_class["recall"], abs=1e-12)
    overall = table.loc[ALL_CLASSES]
    assert overall["expected"] == len(train.annotations)
    view = view_of(overall["threshold"])
    assert overall["kept"] == len(train.annotations)
    assert view.precision == pytest.approx(view.recall, abs=1e-12)


def test_test_submission_against_training_prior():
    train, test = load_coco(SAMPLE / "train.json"), load_coco(SAMPLE / "test.json")
    preds = load_predictions(SAMPLE / "predictions_test.csv", dataset=test)
    prior = class_prior(train)
    mix = class_mix(preds, test, prior, 0.3)
    rate = train.annotations["category_id"].value_counts() / len(train.images)
    for row in mix.itertuples():
        assert row.expected == pytest.approx(rate.get(row.category_id, 0) * len(test.images))
        assert row.predicted == int(((preds.labels == row.category_id) & (preds.scores >= 0.3)).sum())
    assert mix["predicted"].sum() == boxes_per_image(preds, test, 0.3).sum()
    assert mix["share_train"].sum() == pytest.approx(1.0)
    table = suggest_thresholds(preds, test, prior)
    overall = table[table["category_id"] == ALL_CLASSES].iloc[0]
    assert overall["expected"] == pytest.approx(len(train.annotations) / len(train.images) * len(test.images))
    assert abs(overall["kept"] - overall["expected"]) <= 1 or not overall["enough"]
    curve = count_curve(preds.scores)
    assert curve["boxes"].iloc[0] == len(preds) and curve["boxes"].is_monotonic_decreasing


def test_images_without_boxes():
    test = load_coco(SAMPLE / "test.json")
    preds = load_predictions(SAMPLE / "predictions_test.csv", dataset=test)
    top = {k: preds.scores[preds.image_pos == i].max() for i, k in enumerate(preds.image_keys)}
    thr = float(np.median(list(top.values())))
    empty = images_without_boxes(preds, test, thr)
    assert set(empty["file_name"]) == {k for k, s in top.items() if s < thr} | (
        set(test.images["file_name"]) - set(top))


def test_count_matching_threshold_edges():
    scores = np.array([0.9, 0.8, 0.8, 0.5, 0.1])
    assert count_matching_threshold(scores, 2) == (0.8, 3)   # a tie keeps one more
    assert count_matching_threshold(scores, 4) == (0.5, 4)
    assert count_matching_threshold(scores, 40) == (0.1, 5)  # under-predicted: everything kept
    assert count_matching_threshold(scores, 0.2) == (1.0, 0)
    assert count_matching_threshold(np.zeros(0), 3) == (0.0, 0)


def test_real_test_submission_prior_from_the_fold():
    test = load_coco(need(REAL_TRASH / "test.json"))
    preds = load_predictions(need(REAL_TRASH / "test_submission_cascade.csv"), dataset=test)
    prior = class_prior(load_coco(need(REAL_TRASH / "fold3_gt.json")))
    table = suggest_thresholds(preds, test, prior)
    assert len(table) == len(test.categories) + 1
    per_image = boxes_per_image(preds, test, 0.0)
    assert len(per_image) == len(test.images) and per_image.sum() == len(preds)
