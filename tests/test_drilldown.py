"""The images behind a confusion-matrix cell or an outcome are exactly those whose own
evaluation (the image alone: matching is per image) has that cell or outcome."""
from __future__ import annotations

import numpy as np
import pytest

from core.drilldown import confusion_cell_images, outcome_images
from core.evaluation import evaluate
from tests.eval_support import dataset_of, predictions_of, random_case


@pytest.fixture(scope="module")
def case():
    doc, image, labels, scores, boxes = random_case(11, n_images=18, n_classes=4)
    dataset = dataset_of(doc)
    view = evaluate(dataset, predictions_of(dataset, image, labels, scores, boxes)).at(0.3)
    per_image = []
    for i, img in enumerate(doc["images"]):
        one = dict(doc, images=[img], annotations=[a for a in doc["annotations"] if a["image_id"] == img["id"]])
        mine = image == i
        ds = dataset_of(one)
        per_image.append(evaluate(ds, predictions_of(ds, np.zeros(mine.sum(), np.int64), labels[mine],
                                                     scores[mine], boxes[mine])).at(0.3))
    return view, per_image


def test_confusion_cells(case):
    view, per_image = case
    k = len(view.confusion) - 1
    for g in range(k + 1):
        for p in range(k + 1):
            got = confusion_cell_images(view, None if g == k else g, None if p == k else p)
            expected = [i for i, v in enumerate(per_image) if v.confusion.iat[g, p] > 0] if (g, p) != (k, k) else []
            assert got.tolist() == expected, (g, p)


@pytest.mark.parametrize("outcome", ["tp", "classification", "localization", "duplicate", "background", "missed"])
def test_outcomes(case, outcome):
    view, per_image = case
    expected = [i for i, v in enumerate(per_image) if v.counts[outcome] > 0]
    assert outcome_images(view, outcome).tolist() == expected


def test_top_confusion_keeps_the_most_confused_classes():
    import pandas as pd

    from core.drilldown import top_confusion

    labels = ["a", "b", "c", "d", "background"]
    counts = np.array([[5, 0, 0, 0, 1],    # a: 1 error
                       [3, 9, 0, 0, 4],    # b: 7 as true class (+0 as predicted)
                       [0, 0, 2, 0, 0],    # c: none
                       [0, 2, 0, 1, 0],    # d: 2
                       [0, 1, 0, 6, 0]])   # background row: b 1, d 6
    table = pd.DataFrame(counts, index=pd.Index(labels, name="gt"), columns=pd.Index(labels, name="pred"))
    top = top_confusion(table, 2)                                          # b: 7+2+1=10, d: 2+6=8, a: 1+3=4
    assert list(top.index) == ["b", "d", "background"] == list(top.columns)
    assert top.loc["d", "b"] == 2 and top.loc["background", "d"] == 6
    assert top_confusion(table, 4) is table
