"""Paired bootstrap of mAP differences: weighted images equal pycocotools on the repeated images,
and the interval agrees with hotcoco's compare(..., n_bootstrap=...)."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from core.catalog.bootstrap import paired_bootstrap, resampled_map
from core.dataset import load_coco
from core.evaluation import evaluate
from core.formats import coco_results
from core.prediction_files import load_predictions
from tests.conftest import REAL_TRASH, SAMPLE, need


def _coco_eval(gt_doc: dict, results: list):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = gt_doc
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(results) if results else COCO(), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.fixture(scope="module")
def sample():
    dataset = load_coco(SAMPLE / "train.json")
    preds = {n: load_predictions(SAMPLE / f"predictions_{n}.csv", dataset=dataset) for n in ("strong", "weak")}
    return dataset, preds, {n: evaluate(dataset, p) for n, p in preds.items()}


def _shifted_gt(path) -> dict:
    doc = json.loads(path.read_text())
    for ann in doc["annotations"]:
        ann["id"] += 1  # pycocotools never matches annotation id 0
    return doc


def test_unit_weights_give_pycocotools_map50(sample):
    dataset, preds, evs = sample
    doc = _shifted_gt(SAMPLE / "train.json")
    for name, ev in evs.items():
        expected = _coco_eval(doc, coco_results(preds[name], dataset)[0]).stats[1]
        assert resampled_map(ev, np.ones((1, len(dataset.images))))[0] == pytest.approx(expected, abs=1e-12)


def test_weights_equal_pycocotools_on_the_resampled_dataset(sample):
    """An image drawn k times counts as k copies: build that dataset and score it with pycocotools."""
    dataset, preds, evs = sample
    rng = np.random.default_rng(7)
    weights = rng.multinomial(len(dataset.images), np.full(len(dataset.images), 1 / len(dataset.images)))
    doc = _shifted_gt(SAMPLE / "train.json")
    results = coco_results(preds["weak"], dataset)[0]
    images, anns, dets = [], [], []
    next_image, next_ann = 10_000, 10_000
    for image in doc["images"]:
        for _ in range(weights[dataset.image_index_of_id([image["id"]])[0]]):
            images.append({**image, "id": next_image})
            anns += [{**a, "id": (next_ann := next_ann + 1), "image_id": next_image}
                     for a in doc["annotations"] if a["image_id"] == image["id"]]
            dets += [{**d, "image_id": next_image} for d in results if d["image_id"] == image["id"]]
            next_image += 1
    expected = _coco_eval({**doc, "images": images, "annotations": anns}, dets).stats[1]
    assert resampled_map(evs["weak"], weights[None, :].astype(float))[0] == pytest.approx(expected, abs=1e-9)


def test_interval_against_hotcoco(sample, tmp_path):
    """hotcoco resamples the same way but scores each drawn image once (duplicates collapse), so its
    interval is narrower. With that weighting DetLens' bounds are within 0.35 standard errors of
    hotcoco's (two independent 2,000-resample estimates); with true repetition the standard error
    is 1.0-1.6x hotcoco's (about 1/sqrt(0.632) expected) and the deltas are identical."""
    hotcoco = pytest.importorskip("hotcoco")
    dataset, preds, evs = sample
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(_shifted_gt(SAMPLE / "train.json")))
    gt = hotcoco.COCO(str(gt_path))
    hot = []
    for name in ("weak", "strong"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(coco_results(preds[name], dataset)[0]))
        with contextlib.redirect_stdout(io.StringIO()):
            ev = hotcoco.COCOeval(gt, gt.loadRes(str(path)), "bbox")
            ev.evaluate()
            ev.accumulate()
        hot.append(ev)
    reference = hotcoco.compare(hot[0], hot[1], n_bootstrap=2000, seed=3)
    ci = reference["ci"]["AP50"]

    ours = paired_bootstrap(evs["weak"], evs["strong"], n_resamples=2000, seed=3)
    assert ours.delta == pytest.approx(reference["deltas"]["AP50"], abs=1e-9)
    assert 1.0 <= ours.std_err / ci["std_err"] <= 1.6
    assert ours.low < reference["deltas"]["AP50"] < ours.high

    n = len(dataset.images)
    drawn = np.random.default_rng(3).multinomial(n, np.full(n, 1 / n), size=2000) > 0
    delta = resampled_map(evs["strong"], drawn) - resampled_map(evs["weak"], drawn)
    low, high = np.quantile(delta, [0.025, 0.975])
    assert abs(low - ci["lower"]) <= 0.35 * ci["std_err"]
    assert abs(high - ci["upper"]) <= 0.35 * ci["std_err"]
    assert np.std(delta, ddof=1) == pytest.approx(ci["std_err"], rel=0.1)


def test_result_fields(sample):
    _, _, evs = sample
    r = paired_bootstrap(evs["weak"], evs["strong"], n_resamples=500, seed=1)
    same = paired_bootstrap(evs["weak"], evs["strong"], n_resamples=500, seed=1)
    assert r == same  # seeded
    assert r.map_b - r.map_a == pytest.approx(r.delta) and r.significant and r.p_b_better == 1.0
    itself = paired_bootstrap(evs["weak"], evs["weak"], n_resamples=100)
    assert (itself.delta, itself.low, itself.high, itself.p_b_better) == (0.0, 0.0, 0.0, 0.0)
    assert not itself.significant and "may be noise" in itself.sentence()


def test_refuses_different_ground_truths(sample):
    dataset, preds, evs = sample
    other = load_coco(SAMPLE / "train.json")
    other.images = other.images.iloc[:50].reset_index(drop=True)
    other.annotations = other.annotations[other.annotations["image_index"] < 50].reset_index(drop=True)
    with pytest.raises(ValueError, match="not on the same ground truth"):
        paired_bootstrap(evs["weak"], evaluate(other, preds["weak"]))
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap(evs["weak"], evs["strong"], n_resamples=1)


def test_real_fold_unit_weights():
    gt_path = need(REAL_TRASH / "fold3_gt.json")
    dataset = load_coco(gt_path)
    preds = load_predictions(need(REAL_TRASH / "fold3_deta_swinL.csv"), dataset=dataset)
    expected = _coco_eval(_shifted_gt(gt_path), coco_results(preds, dataset)[0]).stats[1]
    assert resampled_map(evaluate(dataset, preds), np.ones((1, len(dataset.images))))[0] == \
        pytest.approx(expected, abs=1e-9)
