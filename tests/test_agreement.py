"""Agreement between two prediction sets (pseudo GT = the reference's confident boxes) equals
pycocotools run on the same pseudo GT written as a COCO json (issue 12)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.agreement import agreement
from core.cli import main
from core.dataset import load_coco
from core.prediction_files import load_predictions
from tests.conftest import REAL_TRASH, SAMPLE, need
from tests.eval_support import pycocotools_eval


def _pseudo_gt_doc(ref, ref_thr: float, dataset=None) -> dict:
    """The reference's boxes >= ref_thr as a COCO GT dict, written independently of core.agreement."""
    if dataset is not None:
        images = [{"id": int(i), "file_name": str(f), "width": float(w), "height": float(h)}
                  for i, f, w, h in dataset.images[["id", "file_name", "width", "height"]].itertuples(index=False)]
        categories = [{"id": int(i), "name": str(n)} for i, n in dataset.categories[["id", "name"]].itertuples(index=False)]
    else:
        images = [{"id": k + 1, "file_name": str(f)} for k, f in enumerate(ref.image_keys)]
        categories = [{"id": int(c), "name": str(c)} for c in np.unique(ref.labels)]
    id_of = {im["file_name"]: im["id"] for im in images}
    annotations = []
    for key_pos, label, score, box in zip(ref.image_pos, ref.labels, ref.scores, ref.boxes_xyxy):
        key = str(ref.image_keys[key_pos])
        if score < ref_thr or key not in id_of:
            continue
        w, h = box[2] - box[0], box[3] - box[1]
        annotations.append({"id": len(annotations) + 1, "image_id": id_of[key], "category_id": int(label),
                            "bbox": [float(box[0]), float(box[1]), float(w), float(h)],
                            "area": float(w * h), "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories}


def _results(doc: dict, other) -> list[dict]:
    id_of = {im["file_name"]: im["id"] for im in doc["images"]}
    out = []
    for key_pos, label, score, box in zip(other.image_pos, other.labels, other.scores, other.boxes_xyxy):
        key = str(other.image_keys[key_pos])
        if key in id_of:
            out.append({"image_id": id_of[key], "category_id": int(label), "score": float(score),
                        "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    return out


def _reference_ap50(doc: dict, results: list[dict]) -> tuple[float, dict[int, float]]:
    ev = pycocotools_eval(doc, results)
    precision = ev.eval["precision"][0, :, :, 0, 2]                    # IoU 0.5, all areas, 100 dets
    per_class = {}
    for k, cat in enumerate(ev.params.catIds):
        p = precision[:, k]
        per_class[cat] = float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
    return float(ev.stats[1]), per_class


def _check_equal(ag, doc, other):
    map50, per_class = _reference_ap50(doc, _results(doc, other))
    assert ag.map50 == pytest.approx(map50, abs=1e-9)
    ours = dict(zip(ag.per_class["category_id"].tolist(), ag.per_class["agreement"].tolist()))
    for cat, ap in per_class.items():
        if np.isnan(ap):
            assert np.isnan(ours[cat])
        else:
            assert ours[cat] == pytest.approx(ap, abs=1e-9), cat
    assert int(ag.per_class["ref_boxes"].sum()) == len(doc["annotations"])


@pytest.mark.parametrize("ref_thr", [0.5, 0.3])
def test_sample_strong_vs_weak_equals_pycocotools(ref_thr):
    gt = load_coco(SAMPLE / "train.json")
    ref = load_predictions(SAMPLE / "predictions_strong.csv", dataset=gt)
    other = load_predictions(SAMPLE / "predictions_weak.csv", dataset=gt)
    ag = agreement(ref, other, ref_thr=ref_thr, dataset=gt)
    _check_equal(ag, _pseudo_gt_doc(ref, ref_thr, gt), other)


def test_sample_test_submission_without_dataset_uses_file_order_ids():
    ref = load_predictions(SAMPLE / "predictions_test.csv")
    other = load_predictions(SAMPLE / "predictions_test.csv")
    jitter = other.boxes_xyxy + np.random.default_rng(0).normal(0, 30, other.boxes_xyxy.shape)
    other.boxes_xyxy[:] = jitter
    ag = agreement(ref, other, ref_thr=0.5)
    _check_equal(ag, _pseudo_gt_doc(ref, 0.5), other)
    assert 0 < ag.map50 < 1


def test_real_tta_pair_equals_pycocotools():
    gt = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    ref = load_predictions(need(REAL_TRASH / "fold3_deta_swinL.csv"), dataset=gt)
    other = load_predictions(need(REAL_TRASH / "fold3_deta_swinL_hflip.csv"), dataset=gt)
    ag = agreement(ref, other, ref_thr=0.5, dataset=gt)
    _check_equal(ag, _pseudo_gt_doc(ref, 0.5, gt), other)
    # counts partition the pseudo GT and other's confident boxes
    table = ag.per_class
    assert (table["matched"] + table["only_ref"] <= table["ref_boxes"]).all()
    per_image = ag.per_image
    assert per_image["disagreements"].is_monotonic_decreasing


def test_agree_cli_json_matches_core(tmp_path, capsys):
    out = tmp_path / "agree.json"
    args = ["agree", str(SAMPLE / "predictions_strong.csv"), str(SAMPLE / "predictions_weak.csv"),
            "--gt", str(SAMPLE / "train.json"), "--ref-threshold", "0.4", "--json", str(out)]
    assert main(args) == 0
    report = json.loads(out.read_text())
    gt = load_coco(SAMPLE / "train.json")
    ref = load_predictions(SAMPLE / "predictions_strong.csv", dataset=gt)
    other = load_predictions(SAMPLE / "predictions_weak.csv", dataset=gt)
    map50, _ = _reference_ap50(_pseudo_gt_doc(ref, 0.4, gt), _results(_pseudo_gt_doc(ref, 0.4, gt), other))
    (entry,) = report["comparisons"]
    assert entry["agreement"] == pytest.approx(map50, abs=1e-9)
    assert len(entry["images"]) == 20
    assert "Paper" in capsys.readouterr().out


def test_agree_cli_refuses_bad_threshold(capsys):
    args = ["agree", str(SAMPLE / "predictions_test.csv"), str(SAMPLE / "predictions_test.csv"),
            "--ref-threshold", "1.5"]
    assert main(args) == 1
    assert "--ref-threshold" in capsys.readouterr().err
