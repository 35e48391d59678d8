"""`python -m core validate`: exit codes and messages on real, public and broken files."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import main
from tests.conftest import EXTERNAL, REAL_TRASH, REPO, SAMPLE, need


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "validate", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


class TestSubprocess:
    def test_real_submission_is_valid(self):
        result = run_cli(need(REAL_TRASH / "fold3_deta_swinL.csv"), "--gt", need(REAL_TRASH / "fold3_gt.json"))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "41188 boxes loaded, 958 images, 958 of 958 GT images covered; 0 error(s), " \
               "1 warning(s). VALID" in result.stdout
        assert "fold3_deta_swinL.csv: warning: 2510 box(es) on 319 image(s) reach outside" in result.stdout   # outside the image, kept

    def test_broken_copy_exits_1_and_names_the_line(self, tmp_path):
        lines = need(REAL_TRASH / "test_submission_cascade.csv").read_text().splitlines()
        lines[41] = lines[41].replace(" ", " ,", 1)     # line 42: a stray comma
        broken = tmp_path / "broken.csv"
        broken.write_text("\n".join(lines) + "\n")
        result = run_cli(broken, "--gt", REAL_TRASH / "test.json")
        assert result.returncode == 1
        assert "broken.csv:42: error: image_id 'test/0040.jpg': 1 row(s) whose field count is not the header's 2" \
            in result.stdout and "(line 42: 3 fields); these rows cannot be read and are left out" in result.stdout
        assert "4870 images, 4870 of 4871 GT images covered; 1 error(s)" in result.stdout
        assert "INVALID: the competition server may reject it" in result.stdout
        assert "Traceback" not in result.stdout + result.stderr

    def test_bad_ground_truth_exits_1_without_traceback(self, tmp_path):
        gt = tmp_path / "gt.json"
        gt.write_text('{"images": [], "annotations": []')
        result = run_cli(need(REAL_TRASH / "fold3_deta_swinL.csv"), "--gt", gt)
        assert result.returncode == 1
        assert "gt.json:1: error: invalid JSON at line 1 column" in result.stdout
        assert "Traceback" not in result.stdout + result.stderr

    def test_usage_error_exits_2(self):
        result = run_cli()
        assert result.returncode == 2 and "required: pred" in result.stderr


class TestInProcess:
    @pytest.mark.parametrize("pred, gt, warnings", [
        ("fold3_deta_swinL_hflip.csv", "fold3_gt.json", 1),   # boxes reaching outside the image
        ("test_submission_cascade.csv", "test.json", 0),
        ("test_submission_cascade.csv", None, 0),
    ])
    def test_real_files_exit_0(self, pred, gt, warnings, capsys):
        args = [str(need(REAL_TRASH / pred))] + (["--gt", str(need(REAL_TRASH / gt))] if gt else [])
        assert main(["validate", *args]) == 0
        out = capsys.readouterr().out
        assert out.count("\n") == 1 + warnings and f"0 error(s), {warnings} warning(s). VALID" in out

    def test_results_json_with_gt(self, capsys):
        folder = need(EXTERNAL / "cocoapi_fake100")
        code = main(["validate", str(folder / "instances_val2014_fakebbox100_results.json"),
                     "--gt", str(folder / "instances_val2014_100.json")])
        assert code == 0
        assert "COCO results json: 734 entries loaded, 99 images, 99 of 100 GT images covered" \
            in capsys.readouterr().out

    def test_results_json_without_gt_exits_1(self, capsys):
        folder = need(EXTERNAL / "cocoapi_fake100")
        assert main(["validate", str(folder / "instances_val2014_fakebbox100_results.json")]) == 1
        assert "give the ground truth json" in capsys.readouterr().out

    @pytest.mark.parametrize("pred, gt", [("predictions_strong.csv", "train.json"),
                                          ("predictions_weak.csv", "train.json"),
                                          ("predictions_trained_fcos.csv", "train.json"),
                                          ("predictions_test.csv", "test.json")])
    def test_sample_csvs_exit_0(self, pred, gt, capsys):
        assert main(["validate", str(SAMPLE / pred), "--gt", str(SAMPLE / gt)]) == 0
        out = capsys.readouterr().out
        assert out.count("\n") == 1 and "0 error(s), 0 warning(s). VALID" in out

    def test_voc_detections(self, capsys):
        folder = need(EXTERNAL / "voc-cartucho")
        assert main(["validate", str(folder / "detections.csv"), "--gt", str(folder / "gt.json")]) == 0
        out = capsys.readouterr().out
        assert out.count("gt.json: warning:") == 5 and "VALID" in out   # 5 GT boxes 1 px outside (VOC)

    def test_warnings_alone_exit_0(self, tmp_path, capsys):
        gt = tmp_path / "gt.json"
        gt.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
                                  "annotations": [], "categories": [{"id": 0, "name": "x"}]}))
        pred = tmp_path / "p.csv"
        pred.write_text("PredictionString,image_id\n0 0.5 1 1 2 2,a.jpg\n0 0.5 1 1 2 2,test/b.jpg\n")
        assert main(["validate", str(pred), "--gt", str(gt)]) == 0
        out = capsys.readouterr().out
        assert "p.csv:3: warning: image_id 'test/b.jpg'" in out and "0 error(s), 1 warning(s). VALID" in out

    @pytest.mark.parametrize("name, content, kind", [("p.csv", "PredictionString,image_id\n", "submission CSV"),
                                                     ("p.json", "[]", "COCO results json")])
    def test_empty_prediction_set_is_valid(self, tmp_path, capsys, name, content, kind):
        pred = tmp_path / name
        pred.write_text(content)
        assert main(["validate", str(pred), "--gt", str(SAMPLE / "train.json")]) == 0
        out = capsys.readouterr().out
        assert f"{name}: {kind}: 0 " in out and "0 images, 0 of 100 GT images covered; 0 error(s), 0 warning(s). VALID" \
            in out

    def test_errors_the_server_may_reject_exit_1_though_every_box_loads(self, tmp_path, capsys):
        pred = tmp_path / "p.csv"
        pred.write_text("PredictionString,image_id\n0 0.5 1 1 2 2,train/0000.jpg\n0 1.5 3 1 2 2,train/0001.jpg\n")
        assert main(["validate", str(pred), "--gt", str(SAMPLE / "train.json")]) == 1
        out = capsys.readouterr().out
        assert "p.csv:3: error: image_id 'train/0001.jpg': 1 score(s) outside [0, 1] on line 3" in out
        assert "p.csv:3: error: image_id 'train/0001.jpg': 1 box(es) with xmax <= xmin" in out
        assert "2 boxes loaded, 2 images" in out and "INVALID: the competition server may reject it" in out

    def test_missing_files_exit_1(self, tmp_path, capsys):
        assert main(["validate", str(tmp_path / "nope.csv")]) == 1
        assert "nope.csv: error: cannot read the file" in capsys.readouterr().out
        assert main(["validate", str(need(REAL_TRASH / "fold3_deta_swinL.csv")), "--gt",
                     str(tmp_path / "nope.json")]) == 1
        assert "nope.json: error: cannot read the file" in capsys.readouterr().out

    def test_not_a_csv_exits_1(self, tmp_path, capsys):
        pred = tmp_path / "p.csv"
        pred.write_bytes(b"\x00\x01binary")
        assert main(["validate", str(pred)]) == 1
        assert "binary file, neither a submission CSV nor a COCO results json" in capsys.readouterr().out
