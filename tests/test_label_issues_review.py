"""Review decisions (core.review) and the label-issues / apply-review commands.

The corrected json must contain exactly the accepted changes, pass `validate`, load in
pycocotools, and score as pycocotools scores it; the original file is never modified.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from core.cli import main
from core.dataset import load_coco
from core.label_issues import find_label_issues
from core.prediction_files import load_predictions
from core.review import (ACCEPT, FIX_CLASS, REJECT, TAKE_BOX, ReviewError, apply_decisions, decide,
                         label_fix_worth, load_review, review_path, save_review)
from tests.conftest import REAL_TRASH, REPO, SAMPLE, need

FCOS = SAMPLE / "predictions_trained_fcos.csv"


def run_cli(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def sample():
    dataset = load_coco(SAMPLE / "train.json")
    preds = load_predictions(FCOS, dataset=dataset)
    return dataset, preds, find_label_issues(dataset, preds).suspects


def first_of(suspects: pd.DataFrame, kind: str) -> dict:
    return suspects[suspects["kind"] == kind].iloc[0].to_dict()


def synthetic_duplicate(doc: dict) -> tuple[dict, int]:
    """doc with annotation 0 boxed twice (the sample ground truth has no duplicates)."""
    doc = copy.deepcopy(doc)
    new_id = max(a["id"] for a in doc["annotations"]) + 1
    doc["annotations"].append({**doc["annotations"][0], "id": new_id})
    return doc, new_id


class TestDecideAndApply:
    def test_exactly_the_accepted_changes(self, sample):
        dataset, _, suspects = sample
        doc = json.loads((SAMPLE / "train.json").read_text())
        original = copy.deepcopy(doc)
        missing, wrong, bad = (first_of(suspects, k) for k in ("missing", "wrong_class", "bad_box"))
        rejected = suspects[suspects["kind"] == "bad_box"].iloc[1].to_dict()
        decisions = {d["suspect_id"]: d for d in (
            decide(missing, ACCEPT), decide(wrong, FIX_CLASS, category_id=9), decide(bad, TAKE_BOX),
            decide(rejected, REJECT))}
        fixed, log, problems = apply_decisions(doc, decisions)
        assert doc == original and not problems
        assert sorted(log["edit"]) == ["add", "move", "relabel"]
        before = {a["id"]: a for a in doc["annotations"]}
        after = {a["id"]: a for a in fixed["annotations"]}
        changed = {i for i in before if before[i] != after.get(i)}
        added = set(after) - set(before)
        assert changed == {wrong["ann_id"], bad["ann_id"]} and len(added) == 1
        assert after[wrong["ann_id"]]["category_id"] == 9
        x, y, w, h = after[bad["ann_id"]]["bbox"]
        np.testing.assert_allclose([x, y, x + w, y + h], [bad[f"model_{c}"] for c in ("x1", "y1", "x2", "y2")],
                                   atol=0.01)
        new = after[added.pop()]
        assert new["category_id"] == missing["model_category_id"] and new["image_id"] == missing["image_id"]
        assert {k: v for k, v in fixed.items() if k != "annotations"} == \
            {k: v for k, v in doc.items() if k != "annotations"}                     # info, licenses kept

    def test_duplicate_accepted_is_deleted(self, sample):
        doc, dup_id = synthetic_duplicate(json.loads((SAMPLE / "train.json").read_text()))
        dataset = load_coco(json.dumps(doc).encode(), name="dup.json")
        suspects = find_label_issues(dataset, sample[1]).suspects
        dup = first_of(suspects, "duplicate")
        assert {dup["ann_id"], dup["other_ann_id"]} == {0, dup_id}
        with pytest.raises(ReviewError, match="no model box"):
            decide(dup, TAKE_BOX)
        fixed, log, _ = apply_decisions(doc, {dup["suspect_id"]: decide(dup, ACCEPT)})
        assert len(fixed["annotations"]) == len(doc["annotations"]) - 1
        assert log["edit"].tolist() == ["delete"] and log["ann_id"].tolist() == [dup["ann_id"]]

    def test_decisions_for_another_ground_truth_are_errors(self, sample):
        _, _, suspects = sample
        d = decide(first_of(suspects, "wrong_class"), ACCEPT)
        other = {"images": [{"id": 5000, "file_name": "x.jpg", "width": 10, "height": 10}],
                 "annotations": [], "categories": [{"id": 0, "name": "a"}]}
        _, _, problems = apply_decisions(other, {d["suspect_id"]: d})
        assert [p.is_error for p in problems] == [True] and "another ground truth" in problems[0].message

    def test_review_file_round_trip(self, sample, tmp_path):
        _, _, suspects = sample
        d = decide(first_of(suspects, "bad_box"), REJECT)
        path = review_path(tmp_path / "train.json")
        assert path.name == "train.json.review.json"
        save_review(path, {d["suspect_id"]: d}, "train.json", "abc")
        assert load_review(path) == ({d["suspect_id"]: d}, "abc")
        path.write_text('{"decisions": [{"suspect_id": "x"}]}')
        with pytest.raises(ReviewError, match="lacks kind"):
            load_review(path)


def pycocotools_ap50(gt_doc: dict, preds_csv) -> np.ndarray:
    """pycocotools' per-class AP@0.5 (annotation ids shifted by +1: it never matches id 0)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from core.formats import coco_results
    doc = copy.deepcopy(gt_doc)
    for a in doc["annotations"]:
        a["id"] += 1
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        dataset = load_coco(json.dumps(gt_doc).encode(), name="gt.json")
        entries, _ = coco_results(load_predictions(preds_csv, dataset=dataset), dataset)
        dt = gt.loadRes(entries)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][0, :, :, 0, 2]                    # [R, K] at IoU .5, all areas
    return np.array([np.mean(p[p > -1]) if (p > -1).any() else np.nan for p in precision.T]), ev.stats[1]


def test_label_fix_worth_is_pycocotools_before_and_after(sample):
    dataset, preds, suspects = sample
    doc = json.loads((SAMPLE / "train.json").read_text())
    decisions = {r["suspect_id"]: decide(r, ACCEPT) for r in suspects.head(10).to_dict(orient="records")}
    fixed, _, _ = apply_decisions(doc, decisions)
    after = load_coco(json.dumps(fixed).encode(), name="fixed.json")
    worth = label_fix_worth(dataset, after, preds)
    for column, gt_doc in (("before", doc), ("after", fixed)):
        per_class, map50 = pycocotools_ap50(gt_doc, FCOS)
        np.testing.assert_allclose(worth[f"ap50_{column}"].to_numpy()[1:], per_class, atol=1e-9)
        assert abs(worth[f"ap50_{column}"].iloc[0] - map50) < 1e-9


class TestLabelIssuesCommand:
    def test_csv_columns_ranks_and_top(self, sample, tmp_path):
        out, js = tmp_path / "s.csv", tmp_path / "s.json"
        code, text = run_cli("label-issues", SAMPLE / "train.json", FCOS, "--out", out, "--json", js, "--top", 25)
        assert code == 0, text
        table = pd.read_csv(out)
        assert table.columns[:11].tolist() == ["rank", "kind", "image_id", "ann_id", "category_id",
                                               "suggested_category_id", "x1", "y1", "x2", "y2", "score"]
        assert table["rank"].tolist() == list(range(1, 26))
        expected = sample[2].head(25)
        assert table["suspect_id"].tolist() == expected["suspect_id"].tolist()
        np.testing.assert_allclose(table["score"], expected["score"], atol=1e-4)
        assert len(json.loads(js.read_text())) == 25
        assert "suspect(s) on 100 image(s)" in text

    def test_ground_truth_without_annotations(self):
        code, text = run_cli("label-issues", SAMPLE / "test.json", SAMPLE / "predictions_test.csv")
        assert code == 1 and "no annotations" in text and "Traceback" not in text

    def test_predictions_for_another_dataset(self, tmp_path):
        doc = json.loads((SAMPLE / "train.json").read_text())
        for im in doc["images"]:
            im["file_name"] = im["file_name"].replace("train/", "val/")
        gt = tmp_path / "val.json"
        gt.write_text(json.dumps(doc))
        code, text = run_cli("label-issues", gt, FCOS)
        assert code == 1 and "none of its 100 image(s) is in the ground truth" in text

    def test_unusable_out_refused_before_the_work(self, tmp_path):
        code, text = run_cli("label-issues", SAMPLE / "train.json", FCOS, "--out", tmp_path)
        assert code == 1 and "is a folder" in text and "suspect(s)" not in text


class TestApplyReviewCommand:
    def test_end_to_end(self, sample, tmp_path):
        _, _, suspects = sample
        gt = tmp_path / "train.json"
        gt.write_bytes((SAMPLE / "train.json").read_bytes())
        original = gt.read_bytes()
        rows = suspects.head(6).to_dict(orient="records")
        decisions = {r["suspect_id"]: decide(r, ACCEPT if i % 2 == 0 else REJECT) for i, r in enumerate(rows)}
        save_review(review_path(gt), decisions, "train.json", None)
        fixed = tmp_path / "fixed.json"
        code, text = run_cli("apply-review", gt, review_path(gt), "--out", fixed)
        assert code == 0, text
        assert gt.read_bytes() == original
        log = pd.read_csv(tmp_path / "fixed.changes.csv")
        assert sorted(log["suspect_id"]) == sorted(r["suspect_id"] for i, r in enumerate(rows) if i % 2 == 0)
        expected, _, _ = apply_decisions(json.loads(original), decisions)
        assert json.loads(fixed.read_text()) == expected
        valid = subprocess.run([sys.executable, "-m", "core", "validate", str(FCOS), "--gt", str(fixed)],
                               cwd=REPO, capture_output=True, text=True)
        assert valid.returncode == 0, valid.stdout
        from pycocotools.coco import COCO
        with contextlib.redirect_stdout(io.StringIO()):
            assert len(COCO(str(fixed)).anns) == len(expected["annotations"])

    def test_decisions_for_another_ground_truth_write_nothing(self, sample, tmp_path):
        _, _, suspects = sample
        d = decide(first_of(suspects, "wrong_class"), ACCEPT)
        review = tmp_path / "r.review.json"
        save_review(review, {d["suspect_id"]: d}, "train.json", None)
        fold = need(REAL_TRASH / "fold3_gt.json")
        doc = json.loads(fold.read_text())
        other = tmp_path / "other.json"
        doc["images"] = [im for im in doc["images"] if im["id"] != d["image_id"]]
        doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != d["image_id"]]
        other.write_text(json.dumps(doc))
        code, text = run_cli("apply-review", other, review, "--out", tmp_path / "fixed.json")
        assert code == 1 and "nothing written" in text and not (tmp_path / "fixed.json").exists()

    def test_not_a_review_file(self, tmp_path):
        bad = tmp_path / "x.json"
        bad.write_text("[1, 2]")
        code, text = run_cli("apply-review", SAMPLE / "train.json", bad, "--out", tmp_path / "f.json")
        assert code == 1 and "not a DetLens review file" in text

    def test_out_may_not_be_the_ground_truth(self, tmp_path):
        gt = tmp_path / "train.json"
        gt.write_bytes((SAMPLE / "train.json").read_bytes())
        save_review(review_path(gt), {}, "train.json", None)
        code, text = run_cli("apply-review", gt, review_path(gt), "--out", gt)
        assert code == 1 and "never modified" in text
