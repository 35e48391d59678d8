"""core.thresholds.PredictionView: one surface for "these predictions at this score threshold",
with or without ground truth, checked against the evaluation's own tables (ev.dets, view.per_image,
view.gts); and the structural contract that the score cut lives in core.thresholds only."""
from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest

from core.browse import BOX_TABLE_COLUMNS, DET_COLUMNS, GT_COLUMNS, TABLE_COLUMNS, image_table
from core.dataset import load_coco
from core.evaluation import evaluate
from core.outcomes import OUTCOME_LABELS
from core.prediction_files import load_predictions
from core.tables import Dataset
from core.thresholds import PredictionView
from tests.conftest import REAL_TRASH, REPO, SAMPLE, need

OUTCOME_COLUMNS = ["n_tp", "n_fp", "n_missed", "ap50"]


@pytest.fixture(scope="module")
def sample():
    dataset = load_coco(SAMPLE / "train.json")
    predictions = load_predictions(SAMPLE / "predictions_strong.csv", dataset=dataset)
    return dataset, predictions, evaluate(dataset, predictions, iou_thr=0.5)


def both_views(sample, score_thr):
    dataset, predictions, ev = sample
    return (PredictionView(predictions, score_thr, dataset, ev.at(score_thr)),
            PredictionView(predictions, score_thr, dataset))


def without_gt_boxes(dataset: Dataset) -> Dataset:
    """The same images and classes with no annotations: a test set."""
    return Dataset(dataset.images, dataset.annotations.iloc[:0], dataset.categories)


@pytest.mark.parametrize("score_thr", [0.0, 0.05, 0.5, 0.9])
def test_image_table_counts_equal_the_evaluation(sample, score_thr):
    dataset, predictions, ev = sample
    evaluated, plain = both_views(sample, score_thr)
    reference = ev.at(score_thr).per_image.set_index("image_index")
    for view in (evaluated, plain):
        table = view.image_table()
        assert list(table.columns) == TABLE_COLUMNS
        rows = table[table["image_index"] >= 0].set_index("image_index")
        assert len(rows) == len(dataset.images)
        # every sample box is of a known class on a known image, so the plain count is the
        # evaluation's n_pred too
        np.testing.assert_array_equal(rows["n_pred"].to_numpy(), reference["n_pred"].to_numpy())
        np.testing.assert_array_equal(rows["n_gt"].to_numpy(), reference["n_gt"].to_numpy())
    rows = evaluated.image_table().set_index("image_index")
    for column in OUTCOME_COLUMNS:
        np.testing.assert_array_equal(rows.loc[reference.index, column].to_numpy(), reference[column].to_numpy())
    # without ground truth: the outcome columns are absent (NaN), not faked
    assert plain.image_table()[OUTCOME_COLUMNS].isna().all().all()
    # top score: the highest kept score of each image, from the predictions themselves
    kept = pd.DataFrame({"key": predictions.image_keys[predictions.image_pos], "score": predictions.scores})
    top = kept[kept["score"] >= score_thr].groupby("key")["score"].max()
    table = plain.image_table().set_index("key")
    np.testing.assert_array_equal(table["top_score"].to_numpy(),
                                  top.reindex(table.index).to_numpy(dtype=np.float64))


@pytest.mark.parametrize("score_thr", [0.05, 0.5])
def test_image_boxes_gt_rows_and_box_table_equal_the_evaluation(sample, score_thr):
    dataset, _, ev = sample
    evaluated, plain = both_views(sample, score_thr)
    view = ev.at(score_thr)
    for image_index in range(0, len(dataset.images), 7):
        key = str(dataset.images["file_name"].iloc[image_index])
        expected = view.dets[view.dets["image_index"] == image_index]
        dets = evaluated.image_boxes(key, image_index)
        assert dets["pred_index"].tolist() == expected["pred_index"].tolist()
        assert dets["outcome"].astype(str).tolist() == expected["outcome"].astype(str).tolist()
        bare = plain.image_boxes(key, image_index)
        assert list(bare.columns) == DET_COLUMNS  # no outcome, no iou
        assert bare["pred_index"].tolist() == expected["pred_index"].tolist()  # same rows, same order
        np.testing.assert_array_equal(bare[["x1", "y1", "x2", "y2", "score"]].to_numpy(np.float64),
                                      expected[["x1", "y1", "x2", "y2", "score"]].to_numpy(np.float64))

        gts = evaluated.image_gts(image_index, dets)
        own = view.gts[view.gts["image_index"] == image_index]
        assert list(gts.columns) == GT_COLUMNS
        assert gts["ann_index"].tolist() == own["ann_index"].tolist()
        crowd = own["iscrowd"].to_numpy().astype(bool)
        missed = own["missed"].to_numpy(bool)
        assert gts["status"].tolist() == np.where(crowd, "crowd", np.where(missed, "missed", "tp")).tolist()
        assert plain.image_gts(image_index, bare)["status"].tolist() == np.where(crowd, "crowd", "gt").tolist()

        table = evaluated.box_table(gts, dets)
        assert list(table.columns) == BOX_TABLE_COLUMNS
        predicted = table[table["kind"] == "prediction"]
        assert predicted["outcome"].tolist() == [OUTCOME_LABELS[str(o)] for o in expected["outcome"]]
        np.testing.assert_allclose(predicted["IoU"].to_numpy(np.float64),
                                   expected["iou"].to_numpy(np.float64).round(3))
        assert (table["kind"] == "ground truth").sum() == len(own)
        assert set(plain.box_table(gts, bare).loc[lambda t: t["kind"] == "prediction", "outcome"]) <= {"(no ground truth)"}


def test_filter_sources_and_kept(sample):
    dataset, predictions, ev = sample
    evaluated, plain = both_views(sample, 0.3)
    dets, gts = evaluated.filter_sources()
    assert dets.equals(ev.at(0.3).dets) and gts.equals(ev.at(0.3).gts)
    dets, gts = plain.filter_sources()
    assert "outcome" not in dets and len(dets) == int((predictions.scores >= 0.3).sum())
    assert sorted(dets["image_index"]) == sorted(ev.at(0.3).dets["image_index"])
    assert len(plain.kept) == plain.n_kept == len(ev.at(0.3).dets)
    assert plain.kept.scores.min() >= 0.3


def test_test_set_view_has_the_same_surface(sample):
    """No ground-truth boxes: the view still answers every question, outcome columns absent."""
    dataset, predictions, _ = sample
    test = without_gt_boxes(dataset)
    view = PredictionView(predictions, 0.5, test)
    table = view.image_table()
    assert table[OUTCOME_COLUMNS].isna().all().all()
    index = int(table.sort_values("n_pred").iloc[-1]["image_index"])
    key = str(test.images["file_name"].iloc[index])
    dets = view.image_boxes(key, index)
    assert len(dets) == table.loc[table["image_index"] == index, "n_pred"].iloc[0] > 0
    assert len(view.image_gts(index, dets)) == 0
    assert view.box_table(view.image_gts(index, dets), dets)["kind"].eq("prediction").all()
    # an image the dataset lacks is browsed by its key
    other = PredictionView(predictions, 0.5, None)
    assert other.image_boxes(key, -1)["pred_index"].tolist() == dets["pred_index"].tolist()
    assert (other.image_table()["image_index"] == -1).all()


def test_threshold_of_the_evaluated_view_must_match(sample):
    dataset, predictions, ev = sample
    with pytest.raises(ValueError, match="same threshold"):
        PredictionView(predictions, 0.5, dataset, ev.at(0.3))


def test_real_fold_per_image_counts():
    """The competition fold (dets of unknown images or classes would differ here first)."""
    folder = need(REAL_TRASH)
    dataset = load_coco(folder / "fold3_gt.json")
    predictions = load_predictions(folder / "fold3_deta_swinL.csv", dataset=dataset)
    ev = evaluate(dataset, predictions, iou_thr=0.5)
    for score_thr in (0.05, 0.3):
        reference = ev.at(score_thr).per_image
        evaluated = PredictionView(predictions, score_thr, dataset, ev.at(score_thr)).image_table()
        plain = PredictionView(predictions, score_thr, dataset).image_table()
        known = evaluated["image_index"] >= 0
        for column in ["n_pred", *OUTCOME_COLUMNS]:
            np.testing.assert_array_equal(evaluated.loc[known, column].to_numpy(), reference[column].to_numpy())
        np.testing.assert_array_equal(plain.loc[plain["image_index"] >= 0, "n_pred"].to_numpy(),
                                      reference["n_pred"].to_numpy())


# ------------------------------------------------------------------ structural contract (issue 11)
SCORE_CUT_ALLOWED = {
    "core/thresholds.py",        # the one place
    "core/inference.py",         # ImageDetections.above(): the model's output at inference time
    "core/ensemble.py", "core/ensemble_kernels.py",       # WBF's skip_box_thr, inside fusion
    "core/slices.py", "core/slice_kernels.py",            # compiled AP kernels over score prefixes
}


def _sources(*patterns):
    for pattern in patterns:
        for path in sorted(REPO.glob(pattern)):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_the_score_cut_is_written_in_core_thresholds_only():
    """No comparison of a score with a threshold outside the allowed modules (docstrings and
    comments do not count: this reads the syntax tree)."""
    found = []
    for name, tree in _sources("core/**/*.py", "ui/*.py", "pages/*.py", "app.py"):
        if name in SCORE_CUT_ALLOWED:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(o, (ast.GtE, ast.Gt, ast.Lt, ast.LtE)) for o in node.ops):
                sides = [ast.unparse(s).lower() for s in (node.left, *node.comparators)]
                scores = {i for i, s in enumerate(sides) if "score" in s and "thr" not in s}
                thresholds = {i for i, s in enumerate(sides) if "thr" in s}
                if scores and thresholds:  # a score against a threshold (not a range check of one)
                    found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_no_page_or_widget_fakes_active_data_with_replace():
    """Compare and Live inference build views of their own predictions; the only dataclass
    replace on ActiveData is its own at_threshold (a slider move)."""
    found = []
    for name, tree in _sources("ui/*.py", "pages/*.py", "app.py"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "replace")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "replace"
                        and ast.unparse(node.func.value) == "dataclasses")):
                found.append(f"{name}:{node.lineno}")
    assert found == [f"ui/sidebar.py:{_at_threshold_replace_line()}"]


def _at_threshold_replace_line() -> int:
    tree = ast.parse((REPO / "ui/sidebar.py").read_text(encoding="utf-8"))
    method = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "at_threshold")
    return next(n.lineno for n in ast.walk(method) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Name) and n.func.id == "replace")
