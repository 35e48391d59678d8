"""`python -m core evaluate` reads the ground truth on a thread while the CSV is parsed: what it
says about bad inputs, and in which order, is what the one-after-the-other reading says."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from core.cli import checks, main
from core.problems import ValidationError
from core.submission import parse_submission, read_submission
from tests.conftest import REAL_TRASH, REPO, need

GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
      "categories": [{"id": 1, "name": "box"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0}]}
GOOD_CSV = "PredictionString,image_id\n1 0.9 10 10 30 30,a.jpg\n"
BAD_CSVS = {"no header": "a.jpg,1 0.9 10 10 30 30\n", "binary": "\x00\x01PK", "truncated json": "[{\"image_id\": 1, \"bbox\": [1, 2",
            "missing": None}
BAD_GTS = {"broken json": '{"images": [', "no annotations": {**GT, "annotations": []},
           "not a dict": "[]", "missing": None}


def _write(path, content):
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _sequential(gt_path, pred_path) -> str:
    """What the command said before the overlap: the ground truth read, checked, then the predictions."""
    dataset = checks.load_ground_truth_or_say(gt_path)
    if dataset is None:
        return
    if not len(dataset.annotations):
        print(f"{gt_path}: error: the ground truth has no annotations (a test split?), so every metric is "
              "undefined; give a json with boxes, e.g. train.json or a validation fold")
        return
    checks.load_predictions_or_say(pred_path, dataset)


@pytest.mark.parametrize("gt, csv", [(g, c) for g in [*BAD_GTS, "good"] for c in [*BAD_CSVS, "good"]
                                     if "good" not in (g, c) or g != c])
def test_bad_inputs_are_said_as_one_after_the_other(tmp_path, capsys, gt, csv):
    gt_path = _write(tmp_path / "gt.json", GT if gt == "good" else BAD_GTS[gt])
    pred_path = _write(tmp_path / "pred.csv", GOOD_CSV if csv == "good" else BAD_CSVS[csv])
    _sequential(gt_path, pred_path)
    expected = capsys.readouterr().out
    assert main(["evaluate", str(gt_path), str(pred_path)]) == 1
    said = capsys.readouterr().out
    assert said == expected and said.strip()
    # the ground truth's problem comes first and alone; the CSV's only once the ground truth will do
    assert (str(gt_path) in said) == (gt != "good")
    assert ("not usable as predictions" in said) == (gt == "good")


def test_a_parsed_csv_finishes_again_with_another_dataset():
    """One parse_submission of the real fold, finished with the dataset, without, and with it again
    (finish must not change what it holds): each time what read_submission reads on its own."""
    from core.dataset import load_coco

    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    parsed = parse_submission(REAL_TRASH / "fold3_deta_swinL.csv")
    for ds in (dataset, None, dataset):                       # finish() may be called again
        once = read_submission(REAL_TRASH / "fold3_deta_swinL.csv", dataset=ds)
        twice = parsed.finish(ds)
        assert [str(p) for p in twice.problems] == [str(p) for p in once.problems]
        assert twice.image_keys.tolist() == once.image_keys.tolist()
        for field in ("image_pos", "labels", "scores", "boxes_xyxy", "lines"):       # bit-equal
            assert getattr(twice, field).tobytes() == getattr(once, field).tobytes(), field


def test_an_unusable_csv_raises_when_parsed():
    with pytest.raises(ValidationError):
        parse_submission(b"image_id\na.jpg\n", name="x.csv")


@pytest.mark.parametrize("reader", ["file", "closed pipe"])
def test_the_process_ends_without_teardown_having_written_everything(tmp_path, capsys, reader):
    """`python -m core evaluate` ends with os._exit (no interpreter teardown): its report, sent to a
    file, is the in-process report whole; a reader that goes away early (`| head -1`) still gets
    its first line, and the --json file is written either way."""
    gt, csv = need(REAL_TRASH / "fold3_gt.json"), need(REAL_TRASH / "fold3_deta_swinL.csv")
    assert main(["evaluate", str(gt), str(csv)]) == 0
    expected = capsys.readouterr().out
    out_json = tmp_path / "out.json"
    command = [sys.executable, "-m", "core", "evaluate", str(gt), str(csv), "--json", str(out_json)]
    if reader == "file":
        with open(tmp_path / "report.txt", "w") as report:
            code = subprocess.run(command, cwd=REPO, stdout=report, timeout=300).returncode
        said = (tmp_path / "report.txt").read_text()
        assert said == expected
    else:
        shell = subprocess.run(" ".join(map(shlex.quote, command)) + " | head -1", shell=True, cwd=REPO,
                               capture_output=True, text=True, timeout=300)
        code, said = 0, shell.stdout
        assert said == expected.splitlines(keepends=True)[0] and "Traceback" not in shell.stderr
    assert code == 0
    assert json.loads(out_json.read_text())["map50"] > 0


def test_load_inputs_is_loading_one_after_the_other(tmp_path):
    """core.prediction_files.load_inputs (what the CLI and bench_evaluate call): the real fold's
    dataset and predictions as loaded one after the other; an unusable file named by its role."""
    from core.formats import load_any_predictions, load_ground_truth
    from core.prediction_files import UnusableInput, load_inputs

    gt, csv = need(REAL_TRASH / "fold3_gt.json"), need(REAL_TRASH / "fold3_deta_swinL.csv")
    dataset, preds = load_inputs(gt, csv)
    alone = load_any_predictions(csv, load_ground_truth(gt))
    assert dataset.annotations.equals(load_ground_truth(gt).annotations)
    assert [str(p) for p in preds.problems] == [str(p) for p in alone.problems]
    for field in ("image_pos", "labels", "scores", "boxes_xyxy", "lines"):
        assert getattr(preds, field).tobytes() == getattr(alone, field).tobytes(), field
    assert load_inputs(gt, csv, ready=lambda ds: False) is None
    bad_gt = _write(tmp_path / "gt.json", BAD_GTS["broken json"])
    bad_csv = _write(tmp_path / "p.csv", BAD_CSVS["binary"])
    for paths, role in (((bad_gt, bad_csv), "ground truth"), ((gt, bad_csv), "predictions")):
        with pytest.raises(UnusableInput) as raised:
            load_inputs(*paths)
        assert raised.value.role == role and raised.value.error.problems
