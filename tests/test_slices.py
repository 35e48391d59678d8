"""Slices against pycocotools: a size slice is COCOeval with that areaRng, an image slice is
COCOeval with imgIds restricted (AP@iou_thr and AP@[.5:.95], to 1e-9)."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from core.evaluation import evaluate
from core.prediction_files import load_predictions
from core.slices import IMAGE, build_slices
from tests.conftest import SAMPLE
from tests.eval_support import dataset_of, predictions_of, random_case, results_of


def _coco_ap(doc, results, *, area_rng=None, img_ids=None, iou_thr=0.5):
    """(AP at iou_thr, AP@[.5:.95]) of pycocotools restricted to an areaRng or to imgIds."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(json.dumps(doc))
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        thrs = np.linspace(.5, 0.95, 10)
        if not np.any(thrs == iou_thr):
            thrs = np.r_[thrs, iou_thr]
        ev.params.iouThrs = thrs
        if area_rng is not None:
            ev.params.areaRng, ev.params.areaRngLbl = [list(area_rng)], ["slice"]
        if img_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in img_ids)
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, :, 0, -1]                               # [T, R, K]
    at_iou = p[int(np.flatnonzero(thrs == iou_thr)[0])]

    def mean(s):
        return float(np.mean(s[s > -1])) if (s > -1).any() else float("nan")
    return mean(at_iou), mean(p[:10])


def _sample_case():
    doc = json.loads((SAMPLE / "train.json").read_text())
    for ann in doc["annotations"]:
        ann["id"] += 1  # pycocotools never matches annotation id 0
    dataset = dataset_of(doc)
    preds = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
    return doc, dataset, preds


def _random_case(seed):
    doc, image, labels, scores, boxes = random_case(seed, n_images=40, n_classes=5)
    dataset = dataset_of(doc)
    return doc, dataset, predictions_of(dataset, image, labels, scores, boxes)


def _check(doc, dataset, preds, iou_thr):
    ev = evaluate(dataset, preds, iou_thr=iou_thr)
    index = build_slices(ev)
    table = index.table()
    results = results_of(dataset, preds)
    ids = dataset.images["id"].to_numpy()
    checked = 0
    for sc in index.scored:
        dim = sc.dimension
        for s, name in enumerate(dim.slices):
            row = table[(table["dimension"] == dim.name) & (table["slice"] == name)].iloc[0]
            if dim.kind == IMAGE:
                expected = _coco_ap(doc, results, img_ids=ids[dim.image_in[:, s]], iou_thr=iou_thr)
            elif dim.name.startswith("size"):
                lo, hi = _area_range(index, dim, s)
                expected = _coco_ap(doc, results, area_rng=(lo, hi), iou_thr=iou_thr)
            else:
                continue  # aspect ratio and position: no pycocotools parameter expresses them
            np.testing.assert_allclose([row["ap50"], row["ap"]], expected, atol=1e-9, equal_nan=True,
                                       err_msg=f"{dim.name} / {name}")
            checked += 1
    assert checked >= 10
    whole = index.whole()
    np.testing.assert_allclose([whole["ap50"], whole["ap"]],
                               [ev.at(-np.inf).map50, ev.stats["map"]], atol=1e-12)


def _area_range(index, dim, s):
    from core.metrics import COCO_AREA_RANGES
    if dim.name == "size (COCO areas)":
        return tuple(COCO_AREA_RANGES[1 + s])
    return dim.ranges[s]


class TestSlicesAgainstPycocotools:
    def test_sample_data(self):
        _check(*_sample_case(), iou_thr=0.5)

    @pytest.mark.parametrize("seed", [0, 3])
    def test_random_cases_with_crowd_and_ties(self, seed):
        _check(*_random_case(seed), iou_thr=0.5)

    def test_iou_threshold_outside_cocos_list(self):
        _check(*_random_case(1), iou_thr=0.42)


class TestSliceTable:
    def test_score_threshold_equals_deleting_boxes(self):
        doc, dataset, preds = _random_case(2)
        thr = 0.45
        cut = build_slices(evaluate(dataset, preds.subset(preds.scores >= thr))).table()
        moved = build_slices(evaluate(dataset, preds)).table(thr)
        key = ["dimension", "slice"]
        cut, moved = cut.sort_values(key).reset_index(drop=True), moved.sort_values(key).reset_index(drop=True)
        for column in ("n_gt", "n_pred", "ap50", "ap", "recall"):
            np.testing.assert_allclose(moved[column].to_numpy(float), cut[column].to_numpy(float),
                                       atol=1e-12, equal_nan=True, err_msg=column)

    def test_ranked_worst_first_tiny_last(self):
        _, dataset, preds = _sample_case()
        table = build_slices(evaluate(dataset, preds)).table(0.05, min_boxes=50)
        tiny = table["tiny"].to_numpy()
        assert not np.any(tiny[:-1] & ~tiny[1:])                          # tiny slices at the end
        big = table[~table["tiny"]]["delta_ap50"].to_numpy()
        assert np.all(np.diff(big[~np.isnan(big)]) >= 0)
        assert (table["n_gt"] >= 50).eq(~table["tiny"]).all()

    def test_tide_of_the_all_images_slice_is_the_evaluations(self):
        from core.slices import Dimension
        _, dataset, preds = _sample_case()
        ev = evaluate(dataset, preds)
        n_gt, n_det, n_img = len(dataset.annotations), len(ev.dets), len(dataset.images)
        everything = Dimension("all", IMAGE, ["all"], np.ones((n_gt, 1), bool), np.ones((n_det, 1), bool),
                               np.ones((n_img, 1), bool))
        table = build_slices(ev, [everything]).table()
        daps = table[[c for c in table.columns if c.startswith("dap_")]].to_numpy()[0]
        np.testing.assert_allclose(daps, ev.tide["dap"].to_numpy(), atol=1e-12)


class TestJsonFieldSlices:
    def _case(self):
        doc, dataset, preds = _sample_case()
        for i, image in enumerate(doc["images"]):
            image["weather"] = ["sun", "rain", "fog"][i % 3]
        for j, ann in enumerate(doc["annotations"]):
            ann["attributes"] = {"occluded": bool(j % 4 == 0), "source": "x"}   # one value: no slice
        return doc, dataset_of(doc), preds

    def test_image_field_equals_pycocotools_imgids(self):
        from core.slices import json_field_dimensions

        doc, dataset, preds = self._case()
        preds = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
        ev = evaluate(dataset, preds)
        dims = json_field_dimensions(ev, doc)
        assert [d.name for d in dims] == ["image field weather", "box field attributes.occluded"]
        table = build_slices(ev, dims).table()
        ids = dataset.images["id"].to_numpy()
        results = results_of(dataset, preds)
        weather = dims[0]
        for s, name in enumerate(weather.slices):
            row = table[table["slice"] == name].iloc[0]
            expected = _coco_ap(doc, results, img_ids=ids[weather.image_in[:, s]])
            np.testing.assert_allclose([row["ap50"], row["ap"]], expected, atol=1e-9, err_msg=name)

    def test_box_field_counts_its_ground_truth_and_decided_predictions(self):
        from core.slices import json_field_dimensions

        doc, dataset, preds = self._case()
        preds = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
        ev = evaluate(dataset, preds)
        occluded = json_field_dimensions(ev, doc)[1]
        flags = np.array([a["attributes"]["occluded"] for a in doc["annotations"]])
        table = build_slices(ev, [occluded]).table()
        for s, value in enumerate([False, True]):
            row = table[table["slice"] == f"attributes.occluded = {value}"].iloc[0]
            assert row["n_gt"] == int((flags == value).sum())                 # no crowd boxes here
            # background predictions belong to no value of a field predictions do not have
            background = (ev.dets["outcome"] == "background").to_numpy()
            assert background.any() and not occluded.det_in[background].any()
            decided = ev.dets["gt_index"].to_numpy()
            near = ~background & (decided >= 0)
            assert (occluded.det_in[near, s] == (flags[decided[near]] == value)).all()


def test_brightness_and_contrast_slices_from_the_sample_images():
    from core.slices import image_statistics, pixel_dimensions

    _, dataset, preds = _sample_case()
    ev = evaluate(dataset, preds)
    names = dataset.images["file_name"].to_numpy()
    stats = image_statistics(SAMPLE, names[:12])
    assert np.isfinite(stats).all() and (stats[:, 0] > 0).all()
    # the reference: the same image's luminance through PIL directly
    from PIL import Image
    with Image.open(SAMPLE / names[0]) as image:
        rgb = image.convert("RGB")  # decoded whole first (no JPEG draft scaling), as read_image does
    rgb.thumbnail((256, 256))
    luma = np.asarray(rgb.convert("L"), np.float64)
    np.testing.assert_allclose(stats[0], [luma.mean(), luma.std()], atol=1e-9)
    full = np.full((len(names), 2), np.nan)
    full[:12] = stats
    dims = pixel_dimensions(ev, full)
    assert [d.name for d in dims] == ["image brightness", "image contrast"]
    assert dims[0].image_in.sum() == 12 and (dims[0].image_in.sum(axis=1) <= 1).all()
    table = build_slices(ev, dims).table()
    assert table["n_images"].sum() == 24
