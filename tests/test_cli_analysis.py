"""`evaluate --json` writes slices, calibration, TIDE per class and best-F1 thresholds; on the
80-class cocoapi_fake100 case the slices' COCO sizes equal pycocotools' published stats."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.cli import main
from tests.conftest import EXTERNAL, SAMPLE, need

FAKE100 = EXTERNAL / "cocoapi_fake100"


def test_json_has_the_analysis_parts(tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["evaluate", str(SAMPLE / "train.json"), str(SAMPLE / "predictions_strong.csv"),
                 "--json", str(out), "--calibration-bins", "5", "--calibration-iou", "0.75"])
    assert code == 0
    doc = json.loads(out.read_text())
    dims = {s["dimension"] for s in doc["slices"]}
    assert {"size (COCO areas)", "aspect ratio", "position", "objects per image"} <= dims
    assert set(doc["slices"][0]) >= {"dimension", "name", "n_gt", "n_pred", "ap50", "ap", "recall", "dap"}
    assert doc["calibration"]["n_bins"] == 5 and len(doc["calibration"]["bins"]) == 5
    assert doc["calibration"]["iou_thr"] == 0.75
    assert len(doc["tide_per_class"]) == len(doc["per_class"])
    # the whole set's mAP is the mean of the per-class base AP of TIDE
    base = [c["ap"] for c in doc["tide_per_class"] if c["ap"] is not None]
    assert np.mean(base) == pytest.approx(doc["tide"]["ap_base"], abs=1e-12)
    for name, entry in doc["best_f1_thresholds"].items():
        assert 0 <= entry["threshold"] <= 1 and 0 < entry["f1"] <= 1


def test_80_classes_sizes_equal_pycocotools_published_stats(tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["evaluate", str(need(FAKE100 / "instances_val2014_100.json")),
                 str(need(FAKE100 / "instances_val2014_fakebbox100_results.json")), "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    sizes = {s["name"].split()[0]: s for s in doc["slices"] if s["dimension"] == "size (COCO areas)"}
    for size in ("small", "medium", "large"):
        assert sizes[size]["ap"] == pytest.approx(doc[f"map_{size}"], abs=1e-9)
    assert len(doc["tide_per_class"]) == 80


@pytest.mark.parametrize("option", [["--calibration-bins", "0"], ["--calibration-iou", "1.5"],
                                    ["--calibration-iou", "0"]])
def test_bad_calibration_options_exit_1(tmp_path, capsys, option):
    code = main(["evaluate", str(SAMPLE / "train.json"), str(SAMPLE / "predictions_strong.csv"),
                 "--json", str(tmp_path / "o.json"), *option])
    assert code == 1
    assert "--calibration-bins must be a positive integer" in capsys.readouterr().out
    assert not (tmp_path / "o.json").exists()


def test_custom_json_fields_become_slices(tmp_path, capsys):
    doc = json.loads((SAMPLE / "train.json").read_text())
    for i, image in enumerate(doc["images"]):
        image["camera"] = "A" if i % 2 else "B"
    gt = tmp_path / "train.json"
    gt.write_text(json.dumps(doc))
    out = tmp_path / "out.json"
    assert main(["evaluate", str(gt), str(SAMPLE / "predictions_strong.csv"), "--json", str(out)]) == 0
    slices = [s for s in json.loads(out.read_text())["slices"] if s["dimension"] == "image field camera"]
    assert sorted(s["name"] for s in slices) == ["camera = A", "camera = B"]
    assert sum(s["n_images"] for s in slices) == len(doc["images"])
