"""`python -m core evaluate`: output, --json, and bad input (message + exit 1, no traceback)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import main
from tests.conftest import EXTERNAL, REAL_TRASH, REPO, need

FAKE100 = EXTERNAL / "cocoapi_fake100"


def _gt_with_ids_from_zero(tmp_path):
    doc = {"images": [{"id": 0, "file_name": "test/0000.jpg", "width": 1024, "height": 1024},
                      {"id": 1, "file_name": "test/0001.jpg", "width": 1024, "height": 1024}],
           "categories": [{"id": i, "name": n} for i, n in enumerate(["General trash", "Paper", "Paper pack"])],
           "annotations": [{"id": k, "image_id": k % 2, "category_id": k % 3, "bbox": [10 + 100 * k, 20, 80.5, 60],
                            "area": 4830.0, "iscrowd": 0} for k in range(5)]}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(doc))
    return path, doc


def test_cocoapi_fake100_prints_the_published_map(capsys):
    code = main(["evaluate", str(need(FAKE100 / "instances_val2014_100.json")),
                 str(FAKE100 / "instances_val2014_fakebbox100_results.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.505" in out
    assert "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.697" in out
    assert "TIDE dAP@0.5" in out and "\ntotal " in out


@pytest.mark.parametrize("gt, pred, line, published", [
    ("detectron2_coco_val_2img/gt_annotations.json", "detectron2_coco_val_2img/detections.json",
     "(AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.750", {"map": 0.7504950495049505, "ar1": 0.4}),
    ("fce_shapes3/gt_dataset.json", "fce_shapes3/dt_dataset.json",
     "(AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ] = 0.792", {"map": 0.6947194719471946}),
    ("voc-cartucho/gt.json", "voc-cartucho/detections.csv",
     "(AP) @[ IoU=0.50      | area=   all | maxDets=100 ] = 0.312", {"map": 0.149298, "map50": 0.311953}),
])
def test_other_published_cases_print_their_numbers(tmp_path, capsys, gt, pred, line, published):
    out_path = tmp_path / "out.json"
    assert main(["evaluate", str(need(EXTERNAL / gt)), str(EXTERNAL / pred), "--json", str(out_path)]) == 0
    assert line in capsys.readouterr().out
    result = json.loads(out_path.read_text())
    for name, value in published.items():
        assert result[name] == pytest.approx(value, abs=5e-7), name


def test_json_output_schema(tmp_path, capsys):
    out_path = tmp_path / "out.json"
    code = main(["evaluate", str(need(FAKE100 / "instances_val2014_100.json")),
                 str(FAKE100 / "instances_val2014_fakebbox100_results.json"), "--json", str(out_path)])
    assert code == 0
    result = json.loads(out_path.read_text())
    assert result["map"] == pytest.approx(0.5045806987249628, abs=1e-12)
    assert {"map50", "map75"} <= set(result)
    assert {"id", "name", "ap", "ap50"} <= set(result["per_class"][0])
    assert set(result["errors"]) >= {"tp", "duplicate", "localization", "classification", "both", "background",
                                     "missed"}
    assert result["errors"]["tp"] == 649 and result["errors"]["missed"] == 181


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_ids_from_zero_and_perfect_predictions_give_one(tmp_path, capsys, fmt):
    gt_path, doc = _gt_with_ids_from_zero(tmp_path)
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    if fmt == "csv":
        rows = {}
        for a in doc["annotations"]:
            x, y, w, h = a["bbox"]
            rows.setdefault(names[a["image_id"]], []).append(f"{a['category_id']} 0.9 {x} {y} {x + w} {y + h}")
        pred = tmp_path / "sub.csv"
        pred.write_text("PredictionString,image_id\n" + "".join(f"{' '.join(v)},{k}\n" for k, v in rows.items()))
    else:
        pred = tmp_path / "results.json"
        pred.write_text(json.dumps([{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                                     "score": 0.9} for a in doc["annotations"]]))
    out_path = tmp_path / "out.json"
    assert main(["evaluate", str(gt_path), str(pred), "--json", str(out_path)]) == 0
    result = json.loads(out_path.read_text())
    assert result["map"] == 1.0 and result["map50"] == 1.0
    assert result["errors"]["tp"] == 5 and result["errors"]["missed"] == 0


def test_unknown_images_are_reported_and_left_out(tmp_path, capsys):
    gt_path, _ = _gt_with_ids_from_zero(tmp_path)
    pred = tmp_path / "sub.csv"
    pred.write_text("PredictionString,image_id\n0 0.9 10 20 90.5 80,test/0000.jpg\n1 0.8 1 1 50 50,test/9999.jpg\n")
    assert main(["evaluate", str(gt_path), str(pred)]) == 0
    assert "test/9999.jpg" in capsys.readouterr().out


def test_score_threshold_deletes_low_boxes(tmp_path, capsys):
    gt_path, _ = _gt_with_ids_from_zero(tmp_path)
    pred = tmp_path / "sub.csv"
    pred.write_text("PredictionString,image_id\n0 0.9 10 20 90.5 80 1 0.2 500 500 600 600,test/0000.jpg\n")
    assert main(["evaluate", str(gt_path), str(pred), "--score-threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 boxes deleted" in out


class TestBadInput:
    def test_missing_prediction_file(self, tmp_path, capsys):
        gt_path, _ = _gt_with_ids_from_zero(tmp_path)
        assert main(["evaluate", str(gt_path), str(tmp_path / "nope.csv")]) == 1
        out = capsys.readouterr().out
        assert "nope.csv" in out and "Traceback" not in out

    def test_broken_ground_truth(self, tmp_path, capsys):
        bad = tmp_path / "gt.json"
        bad.write_text('{"images": [')
        pred = tmp_path / "sub.csv"
        pred.write_text("PredictionString,image_id\n")
        assert main(["evaluate", str(bad), str(pred)]) == 1
        assert "invalid JSON" in capsys.readouterr().out

    def test_bad_rows_are_listed_left_out_and_the_numbers_exit_0(self, tmp_path, capsys):
        # exit 1 means "no numbers"; these numbers are computed, so the listed errors do not fail the run
        gt_path, _ = _gt_with_ids_from_zero(tmp_path)
        pred = tmp_path / "sub.csv"
        pred.write_text("PredictionString,image_id\n0 0.9 10 20 90.5 80,test/0000.jpg\n0 0.9 10 oops,test/0001.jpg\n")
        assert main(["evaluate", str(gt_path), str(pred)]) == 0
        out = capsys.readouterr().out
        assert "sub.csv:3" in out and "left out" in out and "Average Precision" in out
        assert "the competition server may reject this file" in out

    @pytest.mark.parametrize("name, content", [("sub.csv", "PredictionString,image_id\n"), ("dets.json", "[]")])
    def test_empty_prediction_set_is_evaluated_and_exits_0(self, tmp_path, capsys, name, content):
        from tests.eval_support import pycocotools_eval

        gt_path, doc = _gt_with_ids_from_zero(tmp_path)
        pred = tmp_path / name
        pred.write_text(content)
        out_json = tmp_path / "out.json"
        assert main(["evaluate", str(gt_path), str(pred), "--json", str(out_json)]) == 0
        assert "Average Precision" in capsys.readouterr().out
        reference = pycocotools_eval(doc, []).stats
        assert [json.loads(out_json.read_text())[k] for k in ("map", "map50")] == [reference[0], reference[1]]

    def test_bad_iou(self, tmp_path, capsys):
        gt_path, _ = _gt_with_ids_from_zero(tmp_path)
        assert main(["evaluate", str(gt_path), str(gt_path), "--iou", "0"]) == 1
        assert "--iou" in capsys.readouterr().out

    @pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
    def test_score_threshold_outside_0_1(self, tmp_path, capsys, value):
        gt_path, _ = _gt_with_ids_from_zero(tmp_path)
        assert main(["evaluate", str(gt_path), str(gt_path), "--score-threshold", value]) == 1
        assert f"--score-threshold {float(value)} is not in [0, 1]" in capsys.readouterr().out

    def test_ground_truth_without_annotations(self, tmp_path, capsys):
        gt_path, doc = _gt_with_ids_from_zero(tmp_path)
        gt_path.write_text(json.dumps({**doc, "annotations": []}))
        pred = tmp_path / "sub.csv"
        pred.write_text("PredictionString,image_id\n0 0.9 10 20 90.5 80,test/0000.jpg\n")
        assert main(["evaluate", str(gt_path), str(pred)]) == 1
        out = capsys.readouterr().out
        assert "train.json: error: the ground truth has no annotations" in out and "Average Precision" not in out

    def test_arguments_swapped(self, tmp_path, capsys):
        gt_path, _ = _gt_with_ids_from_zero(tmp_path)
        pred = tmp_path / "sub.csv"
        pred.write_text("PredictionString,image_id\n0 0.9 10 20 90.5 80,test/0000.jpg\n")
        assert main(["evaluate", str(pred), str(gt_path)]) == 1
        assert "sub.csv:1: error: this is a submission CSV" in capsys.readouterr().out

    def test_unwritable_json(self, tmp_path, capsys):
        gt_path, doc = _gt_with_ids_from_zero(tmp_path)
        pred = tmp_path / "sub.csv"
        pred.write_text("PredictionString,image_id\n0 0.9 10 20 90.5 80,test/0000.jpg\n")
        (tmp_path / "no").write_text("a file where the folder should be")
        assert main(["evaluate", str(gt_path), str(pred), "--json", str(tmp_path / "no" / "dir" / "o.json")]) == 1
        assert "cannot create the folder" in capsys.readouterr().out


def test_whole_process_exit_code_and_no_traceback(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text("[1, 2]")
    proc = subprocess.run([sys.executable, "-m", "core", "evaluate", str(bad), str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr


def test_whole_process_without_pyarrow_prints_what_an_arrow_process_prints(tmp_path, capsys):
    """`evaluate` starts pandas without pyarrow (start-up time): the printed report and the --json
    file are those of a process where pandas has pyarrow (this one), on the real fold."""
    gt, csv = need(REAL_TRASH / "fold3_gt.json"), need(REAL_TRASH / "fold3_deta_swinL.csv")
    pytest.importorskip("pyarrow")
    import pandas  # noqa: F401  (with pyarrow, as the dashboard's sessions have it)

    assert main(["evaluate", str(gt), str(csv), "--json", str(tmp_path / "here.json")]) == 0
    here = capsys.readouterr().out
    probe = ("import sys; from core.cli import main; code = main(sys.argv[1:]); "
             "print('pyarrow loaded:', 'pyarrow' in sys.modules); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", probe, "evaluate", str(gt), str(csv), "--json",
                           str(tmp_path / "there.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == here + "pyarrow loaded: False\n"
    assert (tmp_path / "there.json").read_text() == (tmp_path / "here.json").read_text().replace(
        "here.json", "there.json")
