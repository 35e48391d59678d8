"""The error simulator: deterministic, well-formed output, and error rates as configured."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from core.boxes import box_iou
from core.dataset import load_coco
from core.simulate import (
    STRONG, WEAK, ModelProfile, SimulationTruth, confusion_matrix, simulate_predictions,
    simulate_with_truth,
)
from core.tables import Dataset, Predictions
from tests.conftest import SAMPLE

TRASH = ["General trash", "Paper", "Paper pack", "Metal", "Glass", "Plastic", "Styrofoam",
         "Plastic bag", "Battery", "Clothing"]


def pycocotools_evaluator(dataset: Dataset, preds: Predictions):
    """pycocotools COCOeval (bbox) after summarize, with annotation ids shifted by +1."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": int(i), "file_name": f, "width": int(w), "height": int(h)}
              for i, f, w, h in dataset.images[["id", "file_name", "width", "height"]].itertuples(index=False)]
    anns = [{"id": k + 1, "image_id": int(a.image_id), "category_id": int(a.category_id),
             "bbox": [a.x, a.y, a.w, a.h], "area": float(a.w * a.h), "iscrowd": int(a.iscrowd)}
            for k, a in enumerate(dataset.annotations.itertuples(index=False))]
    cats = [{"id": int(c)} for c in dataset.category_ids]
    index = dataset.image_index_of_file(preds.image_keys)[preds.image_pos]
    b = preds.boxes_xyxy
    results = np.column_stack([dataset.images["id"].to_numpy()[index], b[:, 0], b[:, 1],
                               b[:, 2] - b[:, 0], b[:, 3] - b[:, 1], preds.scores, preds.labels])
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": cats}
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def pycocotools_map50(dataset: Dataset, preds: Predictions) -> float:
    """pycocotools' mAP@0.5, with annotation ids shifted by +1 (it treats GT id 0 as unmatched)."""
    return float(pycocotools_evaluator(dataset, preds).stats[1])


def pycocotools_class_ap(evaluator, iou: float) -> np.ndarray:
    """[K] per-class AP at one of pycocotools' IoU thresholds (all areas, 100 dets); nan without GT."""
    t = int(np.argmin(np.abs(evaluator.params.iouThrs - iou)))
    precision = evaluator.eval["precision"][t, :, :, 0, -1]  # [R,K], -1 where undefined
    valid = precision > -1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, precision, 0).sum(axis=0) / valid.sum(axis=0)  # 0/0 -> nan


def grid_dataset(n_images: int, side: float, *, per_image: int = 4, names=TRASH, ids=None,
                 image_size: int = 1024) -> Dataset:
    """Square GT boxes of one size on a grid, away from the image border; classes in turn."""
    ids = list(range(len(names))) if ids is None else ids
    step = image_size / per_image
    rows = []
    for i in range(n_images):
        for k in range(per_image):
            cx, cy = step * (k + 0.5), image_size / 2
            x1, y1 = cx - side / 2, cy - side / 2
            rows.append({"id": len(rows), "image_index": i, "image_id": i, "category_id": ids[len(rows) % len(ids)],
                         "x": x1, "y": y1, "w": side, "h": side, "x1": x1, "y1": y1,
                         "x2": x1 + side, "y2": y1 + side, "area": side * side, "iscrowd": 0})
    images = pd.DataFrame({"id": np.arange(n_images), "file_name": [f"img/{i:05d}.jpg" for i in range(n_images)],
                           "width": image_size, "height": image_size})
    return Dataset(images=images, annotations=pd.DataFrame(rows),
                   categories=pd.DataFrame({"id": ids, "name": list(names)}))


@pytest.fixture(scope="module")
def sample() -> Dataset:
    return load_coco(SAMPLE / "train.json")


@pytest.fixture(scope="module")
def big() -> Dataset:
    return grid_dataset(1500, 120.0)  # 6,000 large boxes: rates converge to ~1-2%


# A profile with every error at a distinct, easily measured rate.
MEASURED = ModelProfile(
    name="measured", recall=0.8, small_miss=0.0, small_size=40.0, jitter=0.03,
    localization_rate=0.2, confusion_rate=0.25, duplicate_rate=0.15, second_label_rate=0.1,
    background_per_image=2.0, correct_score=(6.0, 1.5), wrong_score=(1.2, 5.0),
)


def assert_same_predictions(a: Predictions, b: Predictions) -> None:
    np.testing.assert_array_equal(a.image_keys, b.image_keys)
    np.testing.assert_array_equal(a.image_pos, b.image_pos)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy)


class TestDeterminism:
    def test_same_seed_same_output(self, sample):
        assert_same_predictions(simulate_predictions(sample, WEAK, seed=7), simulate_predictions(sample, WEAK, seed=7))

    def test_other_seed_other_output(self, sample):
        a, b = simulate_predictions(sample, WEAK, seed=7), simulate_predictions(sample, WEAK, seed=8)
        assert len(a) != len(b) or not np.array_equal(a.scores, b.scores)

    def test_image_subset_matches_full_run(self, sample):
        full = simulate_predictions(sample, STRONG, seed=3)
        chosen = np.array([42, 5, 17])
        part = simulate_predictions(sample, STRONG, seed=3, image_indices=chosen)
        np.testing.assert_array_equal(part.image_keys, sample.images["file_name"].to_numpy()[chosen])
        for pos, image_index in enumerate(chosen):
            in_full = full.image_pos == image_index
            in_part = part.image_pos == pos
            np.testing.assert_array_equal(part.boxes_xyxy[in_part], full.boxes_xyxy[in_full])
            np.testing.assert_array_equal(part.scores[in_part], full.scores[in_full])

    def test_bad_image_index_is_rejected(self, sample):
        with pytest.raises(ValueError, match="image_indices"):
            simulate_predictions(sample, STRONG, image_indices=[len(sample.images)])


class TestOutputFormat:
    @pytest.mark.parametrize("profile", [STRONG, WEAK], ids=lambda p: p.name)
    def test_well_formed(self, sample, profile):
        preds = simulate_predictions(sample, profile, seed=1)
        assert len(preds) > len(sample.annotations) * 0.8
        np.testing.assert_array_equal(preds.image_keys, sample.images["file_name"].to_numpy())
        assert preds.scores.min() >= 0.05 and preds.scores.max() <= 1.0
        assert set(np.unique(preds.labels)) <= set(sample.category_ids)
        b = preds.boxes_xyxy
        assert (b >= 0).all() and (b[:, [0, 2]] <= 1024).all() and (b[:, [1, 3]] <= 1024).all()
        assert ((b[:, 2] - b[:, 0]) >= 1).all() and ((b[:, 3] - b[:, 1]) >= 1).all()
        # grouped by image, highest score first within an image
        assert (np.diff(preds.image_pos) >= 0).all()
        same_image = np.diff(preds.image_pos) == 0
        assert (np.diff(preds.scores)[same_image] <= 0).all()

    def test_boxes_clipped_to_each_images_own_size(self):
        ds = grid_dataset(50, 200.0, image_size=300, per_image=1)
        preds = simulate_predictions(ds, WEAK.with_(background_per_image=10.0, localization_rate=1.0), seed=0)
        assert preds.boxes_xyxy.max() == 300.0 and preds.boxes_xyxy.min() == 0.0

    def test_at_most_max_dets_per_image_keeping_the_best(self, sample):
        crowded = STRONG.with_(background_per_image=150.0)
        preds, truth = simulate_with_truth(sample, crowded, seed=0)
        per_image = np.bincount(preds.image_pos, minlength=len(sample.images))
        assert per_image.max() == 100
        uncapped, _ = simulate_with_truth(sample, crowded.with_(max_dets=10_000), seed=0)
        for pos in np.flatnonzero(per_image == 100)[:5]:
            kept = np.sort(preds.scores[preds.image_pos == pos])[::-1]
            everything = np.sort(uncapped.scores[uncapped.image_pos == pos])[::-1]
            np.testing.assert_array_equal(kept, everything[:100])

    def test_any_category_ids(self):
        ds = grid_dataset(200, 150.0, names=["cat", "dog", "bird"], ids=[3, 17, 100])
        preds = simulate_predictions(ds, WEAK, seed=0)
        assert set(np.unique(preds.labels)) == {3, 17, 100}

    def test_no_annotations_gives_background_only(self):
        ds = grid_dataset(20, 100.0)
        ds.annotations = ds.annotations.iloc[0:0]
        preds, truth = simulate_with_truth(ds, STRONG.with_(background_per_image=3.0), seed=0)
        assert len(preds.image_keys) == 20 and len(preds) > 0
        assert set(truth.kinds) == {"background"} and (truth.gt_index == -1).all()

    def test_crowd_boxes_are_not_targets(self):
        ds = grid_dataset(50, 150.0)
        ds.annotations["iscrowd"] = 1
        _, truth = simulate_with_truth(ds, STRONG.with_(background_per_image=0.0), seed=0)
        assert len(truth.kinds) == 0 and not truth.gt_detected.any()


class TestErrorRates:
    @pytest.fixture(scope="class")
    def run(self, big) -> tuple[Predictions, SimulationTruth]:
        return simulate_with_truth(big, MEASURED, seed=11)

    def test_recall(self, big, run):
        _, truth = run
        assert truth.gt_detected.mean() == pytest.approx(MEASURED.recall, abs=0.02)

    def test_kinds_rates(self, run):
        _, truth = run
        found = MEASURED.recall * 6000
        counts = pd.Series(truth.kinds).value_counts()
        # primary boxes: tp / localization / classification / both split by the two rates
        loc, conf = MEASURED.localization_rate, MEASURED.confusion_rate
        dup = MEASURED.duplicate_rate  # a duplicate inherits its original's kind unless that was "tp"
        assert counts["localization"] / found == pytest.approx(loc * (1 - conf) * (1 + dup), abs=0.02)
        assert counts["tp"] / found == pytest.approx((1 - loc) * (1 - conf), abs=0.03)
        assert counts["duplicate"] / found == pytest.approx(dup * (1 - loc) * (1 - conf), abs=0.02)
        # classification: confused primaries + their duplicates + well-placed second guesses
        expected_cls = conf * (1 - loc) * (1 + dup) + MEASURED.second_label_rate * (1 - loc)
        expected_both = conf * loc * (1 + dup) + MEASURED.second_label_rate * loc
        assert counts["classification"] / found == pytest.approx(expected_cls, abs=0.03)
        assert counts["both"] / found == pytest.approx(expected_both, abs=0.02)
        assert counts["background"] / 1500 == pytest.approx(MEASURED.background_per_image, abs=0.15)  # 4 sigma

    def test_kinds_mean_what_they_say(self, big, run):
        preds, truth = run
        gt = big.annotations
        has_gt = truth.gt_index >= 0
        gt_boxes = gt[["x1", "y1", "x2", "y2"]].to_numpy()[truth.gt_index[has_gt]]
        iou = np.array([box_iou(p[None], g[None])[0, 0] for p, g in zip(preds.boxes_xyxy[has_gt], gt_boxes)])
        same_label = preds.labels[has_gt] == gt["category_id"].to_numpy()[truth.gt_index[has_gt]]
        kinds = truth.kinds[has_gt]
        tp = kinds == "tp"
        assert (iou[tp] >= 0.5).mean() > 0.99 and same_label[tp].all()
        bad = (kinds == "localization") | (kinds == "both")
        assert ((iou[bad] >= 0.1) & (iou[bad] < 0.5)).mean() > 0.97
        assert not same_label[(kinds == "classification") | (kinds == "both")].any()
        assert same_label[(kinds == "localization")].all()

    def test_scores_separate_correct_from_wrong(self, run):
        preds, truth = run
        correct = truth.kinds == "tp"
        assert preds.scores[correct].mean() > preds.scores[~correct].mean() + 0.4

    def test_duplicates_score_below_their_original(self, run):
        preds, truth = run
        # a duplicate never outscores the box it duplicates, so it is never a GT's best box
        has_gt = truth.gt_index >= 0
        frame = pd.DataFrame({"gt": truth.gt_index[has_gt], "score": preds.scores[has_gt], "kind": truth.kinds[has_gt]})
        top_kind = frame.sort_values("score", ascending=False).groupby("gt")["kind"].first()
        assert (top_kind != "duplicate").all()

    def test_small_objects_missed_more(self):
        profile = MEASURED.with_(recall=0.95, small_miss=0.8, small_size=30.0)
        _, small = simulate_with_truth(grid_dataset(1000, 16.0), profile, seed=1)
        _, large = simulate_with_truth(grid_dataset(1000, 300.0), profile, seed=1)
        assert small.gt_detected.mean() == pytest.approx(0.95 * (1 - 0.8 * np.exp(-16 / 30)), abs=0.03)
        assert large.gt_detected.mean() == pytest.approx(0.95 * (1 - 0.8 * np.exp(-10)), abs=0.02)

    def test_per_class_recall(self):
        profile = MEASURED.with_(recall=1.0, class_recall={"Battery": 0.5})
        ds = grid_dataset(1000, 200.0)
        _, truth = simulate_with_truth(ds, profile, seed=2)
        battery = ds.annotations["category_id"].to_numpy() == 8
        assert truth.gt_detected[battery].mean() == pytest.approx(0.5, abs=0.06)
        assert truth.gt_detected[~battery].all()

    def test_confusions_follow_the_table(self, big):
        preds, truth = simulate_with_truth(big, MEASURED.with_(confusion_rate=1.0, second_label_rate=0.0), seed=5)
        has_gt = truth.gt_index >= 0
        true_label = big.annotations["category_id"].to_numpy()[truth.gt_index[has_gt]]
        paper = true_label == 1
        called = pd.Series(preds.labels[has_gt][paper]).value_counts(normalize=True)
        # Paper is mostly mistaken for Paper pack or General trash, never called Paper
        assert called.get(2, 0) + called.get(0, 0) > 0.7 and 1 not in called.index


def primary_box_ious(dataset: Dataset, preds: Predictions, truth: SimulationTruth) -> tuple[np.ndarray, np.ndarray]:
    """IoU of every box made from a ground truth with that ground truth, and the boxes' kinds."""
    has_gt = truth.gt_index >= 0
    gt_boxes = dataset.annotations[["x1", "y1", "x2", "y2"]].to_numpy()[truth.gt_index[has_gt]]
    iou = np.array([box_iou(p[None], g[None])[0, 0] for p, g in zip(preds.boxes_xyxy[has_gt], gt_boxes)])
    return iou, truth.kinds[has_gt]


class TestJitterSpread:
    """Issue 18: a fixed edge noise leaves no IoU between 0.5 and 0.75, so AP@0.75 = AP@0.5."""

    ONLY_BOXING = MEASURED.with_(jitter=0.035, localization_rate=0.0, confusion_rate=0.0, duplicate_rate=0.0,
                                 second_label_rate=0.0, background_per_image=0.0)

    def test_fixed_jitter_leaves_a_gap_the_spread_fills(self, big):
        fixed, _ = primary_box_ious(big, *simulate_with_truth(big, self.ONLY_BOXING, seed=3))
        spread, _ = primary_box_ious(big, *simulate_with_truth(big, self.ONLY_BOXING.with_(jitter_spread=0.8), seed=3))
        assert ((fixed >= 0.5) & (fixed < 0.75)).mean() < 0.002  # 1 box in 4,800 on this seed
        band = ((spread >= 0.5) & (spread < 0.75)).mean()
        assert 0.03 < band < 0.2 and np.median(spread) > 0.85  # a tail, most boxes still tight
        counts = np.histogram(spread, bins=np.linspace(0.5, 0.95, 10))[0]
        assert (counts > 0).all()  # continuous: no empty 0.05-wide bin from 0.5 to 0.95

    def test_tail_below_half_is_a_localisation_error(self, big):
        profile = self.ONLY_BOXING.with_(jitter=0.06, jitter_spread=1.0)
        preds, truth = simulate_with_truth(big, profile, seed=3)
        iou, kinds = primary_box_ious(big, preds, truth)
        assert set(kinds) == {"tp", "localization"} and (kinds == "localization").sum() > 30
        # 0.1 px rounding moves an IoU by far less than 0.01
        assert (iou[kinds == "tp"] > 0.49).all() and (iou[kinds == "localization"] < 0.51).all()
        has_gt = truth.gt_index >= 0
        assert preds.scores[has_gt][kinds == "tp"].mean() > preds.scores[has_gt][kinds == "localization"].mean() + 0.4

    def test_per_box_scale_is_drawn_only_when_asked(self, sample):
        # jitter_spread=0 keeps a profile's random stream, so WEAK's CSV did not change with the option
        assert_same_predictions(simulate_predictions(sample, WEAK.with_(jitter_spread=0.0), seed=2),
                                simulate_predictions(sample, WEAK, seed=2))
        assert STRONG.jitter_spread > 0 and WEAK.jitter_spread == 0


class TestConfusionMatrix:
    def test_rows_are_distributions_without_diagonal(self):
        m = confusion_matrix(TRASH)
        np.testing.assert_allclose(m.sum(axis=1), 1.0)
        assert (np.diag(m) == 0).all() and (m > 0).sum() == 90

    def test_plausible_pairs(self):
        m = confusion_matrix(TRASH)
        idx = {n: i for i, n in enumerate(TRASH)}
        assert m[idx["Paper"]].argmax() == idx["Paper pack"]
        assert m[idx["Plastic"]].argmax() == idx["Plastic bag"]
        assert m[idx["Battery"]].argmax() == idx["Metal"]
        general = idx["General trash"]
        assert all(m[i, general] >= 0.15 for i in range(10) if i != general)  # confused with anything

    def test_unknown_names_are_uniform(self):
        np.testing.assert_allclose(confusion_matrix(["a", "b", "c"]), [[0, .5, .5], [.5, 0, .5], [.5, .5, 0]])


class TestProfiles:
    def test_strong_beats_weak_on_pycocotools(self, sample):
        strong = pycocotools_map50(sample, simulate_predictions(sample, STRONG, seed=4))
        weak = pycocotools_map50(sample, simulate_predictions(sample, WEAK, seed=4))
        assert 0.65 < strong < 0.87 and 0.32 < weak < 0.58 and strong > weak + 0.15
