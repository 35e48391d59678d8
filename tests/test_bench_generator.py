"""bench/make_competition_scale.py: deterministic, and its files load and validate."""
from __future__ import annotations

import importlib.util
import json

import numpy as np

from core.dataset import load_coco
from core.submission import read_submission
from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("make_competition_scale", REPO / "bench" / "make_competition_scale.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)


def make(seed: int, n_images: int = 60):
    rng = np.random.default_rng(seed)
    gt = gen.make_ground_truth(rng, n_images)
    rows, image_ids = gen.make_predictions(rng, gt)
    text = gen.format_submission(rows, image_ids, [im["file_name"] for im in gt["images"]])
    return gt, text


def test_small_case_is_deterministic_valid_and_shaped_like_a_model():
    gt, text = make(0)
    assert make(0) == (gt, text) and make(1)[1] != text
    dataset = load_coco(json.dumps(gt).encode())
    assert dataset.problems == [] and dataset.annotations["id"].min() == 0
    assert (dataset.annotations["image_index"].value_counts() >= 1).all()
    preds = read_submission(text.encode(), dataset=dataset)
    assert [p for p in preds.problems if p.is_error] == []
    assert len(preds.problems) == 1 and "reach outside their image (first:" in preds.problems[0].message
    assert len(preds) == 60 * gen.BOXES_PER_IMAGE and preds.scores.min() >= gen.SCORE_THR
    assert np.median(preds.scores) < 0.2                    # mostly low-score background and duplicates
    assert (preds.scores > 0.5).sum() > 0.5 * len(dataset.annotations)   # found objects score high
