"""Fit on validation, apply to test (issue 12): `ensemble --sweep --apply` writes exactly the CSV the
chosen recipe gives on the test inputs, and the recipe JSON reproduces it byte for byte."""
from __future__ import annotations

import io

import numpy as np
import pytest

from core.cli import main
from core.dataset import load_coco
from core.ensemble import EnsembleConfig, ensemble_predictions
from core.ensemble_sweep import run_sweep, sweep_grid
from core.prediction_files import load_predictions
from core.recipe import Recipe, apply_recipe
from core.submission import write_submission
from tests.conftest import SAMPLE

GRID = ["--sweep-methods", "wbf", "nms", "--sweep-iou", "0.5", "0.6", "--sweep-conf-types", "avg", "max"]


def _csv(predictions) -> bytes:
    buffer = io.StringIO()
    write_submission(predictions, buffer)
    return buffer.getvalue().encode()


@pytest.fixture(scope="module")
def test_pair(tmp_path_factory):
    """Two test submissions of 'the same models': the sample's test CSV and a jittered copy."""
    folder = tmp_path_factory.mktemp("tests")
    a = load_predictions(SAMPLE / "predictions_test.csv")
    b = load_predictions(SAMPLE / "predictions_test.csv")
    rng = np.random.default_rng(1)
    b.boxes_xyxy[:] = b.boxes_xyxy + rng.normal(0, 6, b.boxes_xyxy.shape)
    b.scores[:] = np.clip(b.scores * rng.uniform(0.7, 1.0, len(b.scores)), 0, 1)
    (folder / "a_test.csv").write_bytes(_csv(a))
    (folder / "b_test.csv").write_bytes(_csv(b))
    return folder / "a_test.csv", folder / "b_test.csv"


def test_apply_equals_running_the_best_recipe(tmp_path, test_pair):
    out, recipe_path = tmp_path / "final.csv", tmp_path / "recipe.json"
    args = ["ensemble", str(SAMPLE / "predictions_strong.csv"), str(SAMPLE / "predictions_weak.csv"),
            "--gt", str(SAMPLE / "train.json"), "--sweep", *GRID, "--weights", "2", "1",
            "--apply", *map(str, test_pair), "--dataset", str(SAMPLE / "test.json"),
            "--out", str(out), "--recipe-out", str(recipe_path)]
    assert main(args) == 0
    recipe = Recipe.from_json(recipe_path.read_bytes())

    # the recipe is the sweep's best on validation, run in-process here
    gt = load_coco(SAMPLE / "train.json")
    val = [load_predictions(SAMPLE / f"predictions_{n}.csv", dataset=gt) for n in ("strong", "weak")]
    grid = sweep_grid(["wbf", "nms"], [0.5, 0.6], ["avg", "max"], [0.0], [0.5], weights=[2, 1])
    best = run_sweep(val, gt, grid).best
    assert recipe.config == best
    assert recipe.inputs == ("predictions_strong.csv", "predictions_weak.csv")

    # --out is exactly that recipe run on the test inputs
    test_json = load_coco(SAMPLE / "test.json")
    tests = [load_predictions(p, dataset=test_json) for p in test_pair]
    expected = ensemble_predictions(tests, best, dataset=test_json, workers=1).predictions
    assert out.read_bytes() == _csv(expected)
    assert out.read_bytes() == _csv(apply_recipe(recipe, tests, names=["a", "b"], dataset=test_json).predictions)

    # the recipe JSON alone reproduces it, and itself, byte for byte
    again, recipe_again = tmp_path / "again.csv", tmp_path / "recipe2.json"
    assert main(["ensemble", *map(str, test_pair), "--recipe", str(recipe_path), "--dataset",
                 str(SAMPLE / "test.json"), "--out", str(again), "--recipe-out", str(recipe_again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    assert recipe_again.read_bytes() == recipe_path.read_bytes()


def test_recipe_json_round_trip_is_byte_stable():
    config = EnsembleConfig("wbf", iou_thr=0.6, conf_type="max", skip_box_thr=0.01, weights=(3, 1, 1))
    recipe = Recipe.of(config, ["a.csv", "b.csv", "c.csv"], fitted_on="val.json", map50=0.5)
    text = recipe.to_json()
    assert Recipe.from_json(text).to_json() == text
    assert Recipe.from_json(text).config == config


def test_recipe_refuses_wrong_input_count(tmp_path, test_pair, capsys):
    recipe = Recipe.of(EnsembleConfig("nms"), ["a", "b", "c"])
    path = tmp_path / "r.json"
    path.write_text(recipe.to_json())
    assert main(["ensemble", *map(str, test_pair), "--recipe", str(path), "--out", str(tmp_path / "o.csv")]) == 1
    err = capsys.readouterr().err
    assert "fitted on 3 input(s)" in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("text, message", [
    ("not json", "not a JSON file"),
    ('{"format": "other"}', "not a DetLens ensemble recipe"),
    ('{"format": "detlens-ensemble-recipe", "version": 1, "method": "wbf"}', "missing field"),
])
def test_bad_recipe_is_a_message(tmp_path, test_pair, capsys, text, message):
    path = tmp_path / "r.json"
    path.write_text(text)
    assert main(["ensemble", *map(str, test_pair), "--recipe", str(path), "--out", str(tmp_path / "o.csv")]) == 1
    assert message in capsys.readouterr().err


def test_apply_needs_one_test_file_per_input(tmp_path, test_pair, capsys):
    args = ["ensemble", str(SAMPLE / "predictions_strong.csv"), str(SAMPLE / "predictions_weak.csv"),
            "--gt", str(SAMPLE / "train.json"), "--apply", str(test_pair[0]), "--out", str(tmp_path / "o.csv")]
    assert main(args) == 1
    assert "one test file per input" in capsys.readouterr().err
