"""Ensembling: identical to ensemble-boxes called directly, coordinates per image size, image
unions, the sweep, the real-trash figures and the `python -m core ensemble` command."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from contextlib import redirect_stdout

import ensemble_boxes
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image

from core.dataset import load_coco
from core.ensemble import (
    CONF_TYPES, EnsembleConfig, ensemble_predictions, image_sizes, image_union,
)
from core.ensemble_sweep import run_sweep, sweep_grid
from core.evaluation import evaluate
from core.problems import Severity
from core.submission import read_submission
from core.tables import Predictions
from tests.conftest import REAL_TRASH, REPO, SAMPLE, need
from tests.test_simulate import pycocotools_map50

# Three non-square images: (file_name, width, height)
IMAGES = [("a.jpg", 640, 480), ("b.jpg", 300, 900), ("c.jpg", 1024, 512)]
CATEGORIES = [{"id": i, "name": f"class{i}"} for i in range(3)]


def make_dataset(images=IMAGES, annotations=()):
    doc = {
        "images": [{"id": i, "file_name": f, "width": w, "height": h} for i, (f, w, h) in enumerate(images)],
        "annotations": list(annotations),
        "categories": CATEGORIES,
    }
    return load_coco(json.dumps(doc).encode(), name="gt.json")


def make_predictions(per_image: dict[str, np.ndarray], name: str) -> Predictions:
    """per_image: file_name -> [n, 6] rows (label, score, x1, y1, x2, y2) in pixels."""
    keys = np.array(list(per_image), dtype=object)
    rows = [np.asarray(v, dtype=np.float64).reshape(-1, 6) for v in per_image.values()]
    table = np.concatenate(rows) if rows else np.zeros((0, 6))
    pos = np.concatenate([np.full(len(r), i, np.int64) for i, r in enumerate(rows)]) if rows else np.zeros(0, np.int64)
    return Predictions(keys, pos, table[:, 0].astype(np.int64), table[:, 1], table[:, 2:].reshape(-1, 4),
                       np.arange(len(keys), dtype=np.int64) + 2, source=name)


def random_model(rng, base: dict[str, np.ndarray], jitter: float) -> dict[str, np.ndarray]:
    """A model that finds the `base` objects with jittered boxes and scores, plus a stray box."""
    out = {}
    for (file_name, w, h) in IMAGES:
        rows = base[file_name].copy()
        rows[:, 2:] += rng.normal(0, jitter, (len(rows), 4)) * np.array([w, h, w, h]) / 100
        rows[:, 1] = np.clip(rows[:, 1] + rng.normal(0, 0.1, len(rows)), 0.05, 1.0)
        stray = [[rng.integers(0, 3), 0.1, 0.8 * w, 0.8 * h, 0.95 * w, 0.99 * h]]
        out[file_name] = np.vstack([rows, stray])
    return out


@pytest.fixture(scope="module")
def three_models():
    rng = np.random.default_rng(0)
    base = {}
    for (file_name, w, h) in IMAGES:
        n = 12
        xy = rng.uniform(0, 0.6, (n, 2)) * [w, h]
        wh = rng.uniform(0.1, 0.35, (n, 2)) * [w, h]
        base[file_name] = np.column_stack([rng.integers(0, 3, n), rng.uniform(0.3, 1.0, n), xy, xy + wh])
    return [make_predictions(random_model(rng, base, j), f"m{i}.csv") for i, j in enumerate((1.0, 2.0, 3.0))]


def direct_call(models: list[Predictions], file_name: str, w: float, h: float, config: EnsembleConfig):
    """ensemble-boxes on one image, called as its README shows: normalised boxes, per model lists."""
    scale = np.array([w, h, w, h])
    lists = [[], [], []]
    for preds in models:
        i = list(preds.image_keys).index(file_name)
        mask = preds.image_pos == i
        lists[0].append(preds.boxes_xyxy[mask] / scale)
        lists[1].append(preds.scores[mask].copy())
        lists[2].append(preds.labels[mask])
    weights = list(config.weights) if config.weights else None
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if config.method == "wbf":
            boxes, scores, labels = ensemble_boxes.weighted_boxes_fusion(
                *lists, weights=weights, iou_thr=config.iou_thr, skip_box_thr=config.skip_box_thr,
                conf_type=config.conf_type)
        elif config.method == "nmw":
            boxes, scores, labels = ensemble_boxes.non_maximum_weighted(
                *lists, weights=weights, iou_thr=config.iou_thr, skip_box_thr=config.skip_box_thr)
        elif config.method == "nms":
            boxes, scores, labels = ensemble_boxes.nms(*lists, weights=weights, iou_thr=config.iou_thr)
        else:
            boxes, scores, labels = ensemble_boxes.soft_nms(*lists, weights=weights, iou_thr=config.iou_thr,
                                                            sigma=config.sigma, thresh=config.soft_nms_min_score)
    return boxes * scale, scores, labels


def boxes_of(preds: Predictions, file_name: str):
    i = list(preds.image_keys).index(file_name)
    mask = preds.image_pos == i
    return preds.boxes_xyxy[mask], preds.scores[mask], preds.labels[mask]


CONFIGS = [EnsembleConfig("wbf", iou_thr=0.55, conf_type=c, weights=(2, 1, 1)) for c in CONF_TYPES] + [
    EnsembleConfig("wbf", iou_thr=0.4, skip_box_thr=0.2),
    EnsembleConfig("nms", iou_thr=0.5, weights=(1, 2, 3)),
    EnsembleConfig("nmw", iou_thr=0.5, weights=(3, 1, 1), skip_box_thr=0.1),
]


class TestSameAsEnsembleBoxes:
    @pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label)
    def test_each_image_matches_a_direct_call(self, three_models, config):
        dataset = make_dataset()
        result = ensemble_predictions(three_models, config, dataset=dataset, workers=1)
        assert result.problems == []
        for file_name, w, h in IMAGES:
            expected_boxes, expected_scores, expected_labels = direct_call(three_models, file_name, w, h, config)
            boxes, scores, labels = boxes_of(result.predictions, file_name)
            assert len(scores) == len(expected_scores) > 0
            # same boxes in the same order; we round the library's float32 noise (1e-3 px, 1e-7)
            assert_allclose(boxes, expected_boxes, atol=1e-3)
            assert_allclose(scores, expected_scores, atol=1e-7)
            assert_array_equal(labels, expected_labels.astype(np.int64))

    def test_soft_nms_keeps_the_library_boxes_with_decayed_scores(self, three_models):
        config = EnsembleConfig("soft_nms", sigma=0.5)
        result = ensemble_predictions(three_models, config, dataset=make_dataset(), workers=1)
        for file_name, w, h in IMAGES:
            lib_boxes, lib_scores, lib_labels = direct_call(three_models, file_name, w, h, config)
            boxes, scores, labels = boxes_of(result.predictions, file_name)
            ours = np.lexsort((boxes[:, 1], boxes[:, 0], labels))
            theirs = np.lexsort((lib_boxes[:, 1], lib_boxes[:, 0], lib_labels))
            assert_array_equal(labels[ours], lib_labels[theirs].astype(np.int64))
            assert_allclose(boxes[ours], lib_boxes[theirs], atol=1e-3)
            # ensemble-boxes returns each kept box's original score; ours is decayed, never higher
            assert np.all(scores[ours] <= lib_scores[theirs] + 1e-7)
            assert np.any(scores[ours] < lib_scores[theirs] - 0.05)

    def test_soft_nms_decay_by_hand(self):
        # Two boxes of one class, IoU 0.5 (second box is half of the first): gaussian decay
        # of the lower one is exp(-0.5**2 / sigma).
        gt = make_dataset([("x.jpg", 100, 100)])
        a = make_predictions({"x.jpg": [[0, 0.9, 0, 0, 40, 40]]}, "a")
        b = make_predictions({"x.jpg": [[0, 0.6, 0, 0, 40, 20]]}, "b")
        result = ensemble_predictions([a, b], EnsembleConfig("soft_nms", sigma=0.5), dataset=gt)
        assert_allclose(sorted(result.predictions.scores), [0.6 * np.exp(-0.25 / 0.5), 0.9], atol=1e-7)

    def test_workers_give_the_same_result(self, three_models):
        config = EnsembleConfig("wbf", conf_type="max")
        one = ensemble_predictions(three_models, config, dataset=make_dataset(), workers=1).predictions
        two = ensemble_predictions(three_models, config, dataset=make_dataset(), workers=2).predictions
        assert_array_equal(one.image_pos, two.image_pos)
        assert_array_equal(one.boxes_xyxy, two.boxes_xyxy)
        assert_array_equal(one.scores, two.scores)


class TestCoordinates:
    def test_round_trip_on_non_square_images(self):
        # One model through NMS at IoU 1.0 suppresses nothing: every box comes back unchanged,
        # so normalising by (640, 480) and (300, 900) and back is exact to the rounding.
        rows = {"a.jpg": [[1, 0.9, 10.5, 20.25, 630.0, 470.0], [2, 0.5, 100, 50, 200, 400]],
                "b.jpg": [[0, 0.7, 1.0, 850.0, 299.0, 899.5]]}
        preds = make_predictions(rows, "m.csv")
        result = ensemble_predictions([preds], EnsembleConfig("nms", iou_thr=1.0), dataset=make_dataset())
        for file_name, expected in rows.items():
            boxes, scores, labels = boxes_of(result.predictions, file_name)
            order = np.argsort(-scores)
            assert_allclose(boxes[order], np.asarray(expected)[:, 2:], atol=1e-3)
            assert_allclose(scores[order], np.asarray(expected)[:, 1])

    def test_boxes_are_clipped_to_their_own_image(self):
        # The same box on a 640x480 and a 300x900 image: clipped at each image's own edges.
        box = [[0, 0.9, 200, 300, 700, 1000]]
        preds = make_predictions({"a.jpg": box, "b.jpg": box}, "m.csv")
        out = ensemble_predictions([preds, preds], EnsembleConfig("wbf"), dataset=make_dataset()).predictions
        assert_allclose(boxes_of(out, "a.jpg")[0], [[200, 300, 640, 480]], atol=1e-3)
        assert_allclose(boxes_of(out, "b.jpg")[0], [[200, 300, 300, 900]], atol=1e-3)

    def test_size_read_from_the_image_file_when_not_in_the_dataset(self, tmp_path):
        (tmp_path / "extra").mkdir()
        Image.new("RGB", (320, 200)).save(tmp_path / "extra" / "new.png")
        preds = make_predictions({"extra/new.png": [[0, 0.9, 100, 100, 500, 500]]}, "m.csv")
        result = ensemble_predictions([preds], EnsembleConfig("nms"), dataset=make_dataset(), image_root=tmp_path)
        assert_allclose(result.predictions.boxes_xyxy, [[100, 100, 320, 200]], atol=1e-3)
        assert any("not in the dataset" in p.message for p in result.problems)

    def test_unknown_size_is_reported_and_boxes_are_kept_whole(self):
        preds = make_predictions({"nowhere.jpg": [[0, 0.9, 100, 100, 2000, 1500], [0, 0.8, 10, 10, 50, 50]]}, "m")
        result = ensemble_predictions([preds], EnsembleConfig("nms"))
        assert any("no known size" in p.message for p in result.problems)
        assert_allclose(result.predictions.boxes_xyxy, [[100, 100, 2000, 1500], [10, 10, 50, 50]], atol=1e-3)

    def test_default_size_is_used_and_reported(self):
        preds = make_predictions({"nowhere.jpg": [[0, 0.9, 100, 100, 2000, 1500]]}, "m")
        result = ensemble_predictions([preds], EnsembleConfig("nms"), default_size=(1024, 1024))
        assert_allclose(result.predictions.boxes_xyxy, [[100, 100, 1024, 1024]], atol=1e-3)
        assert any("assumed 1024x1024" in p.message for p in result.problems)


class TestImageSets:
    def test_mismatched_image_sets_are_reported_and_the_union_used(self):
        a = make_predictions({"a.jpg": [[0, 0.9, 10, 10, 100, 100]], "b.jpg": [[1, 0.8, 10, 10, 100, 100]]}, "A.csv")
        b = make_predictions({"b.jpg": [[1, 0.6, 12, 12, 100, 100]], "c.jpg": [[2, 0.7, 5, 5, 50, 50]]}, "B.csv")
        result = ensemble_predictions([a, b], EnsembleConfig("wbf", conf_type="max"), dataset=make_dataset())
        out = result.predictions
        assert out.image_keys.tolist() == ["a.jpg", "b.jpg", "c.jpg"]
        warnings_by_file = {p.file: p.message for p in result.problems}
        assert set(warnings_by_file) == {"A.csv", "B.csv"}
        assert "c.jpg" in warnings_by_file["A.csv"] and "1 of the 3 images" in warnings_by_file["A.csv"]
        assert "a.jpg" in warnings_by_file["B.csv"]
        assert all(p.severity is Severity.WARNING for p in result.problems)
        # a.jpg and c.jpg come from one input each; b.jpg is fused from both
        assert_array_equal(boxes_of(out, "a.jpg")[2], [0])
        assert_array_equal(boxes_of(out, "c.jpg")[2], [2])
        assert len(boxes_of(out, "b.jpg")[1]) == 1

    def test_images_without_boxes_keep_their_row(self):
        a = make_predictions({"a.jpg": [], "b.jpg": [[1, 0.8, 10, 10, 100, 100]]}, "A.csv")
        result = ensemble_predictions([a, a], EnsembleConfig(), dataset=make_dataset())
        assert result.predictions.image_keys.tolist() == ["a.jpg", "b.jpg"]
        assert result.problems == []

    def test_union_order_is_first_seen(self):
        a = make_predictions({"b.jpg": [], "a.jpg": []}, "A")
        b = make_predictions({"c.jpg": [], "a.jpg": []}, "B")
        union, positions, _ = image_union([a, b])
        assert union.tolist() == ["b.jpg", "a.jpg", "c.jpg"]
        assert positions[1].tolist() == [2, 1]

    def test_union_of_inputs_listing_the_same_images(self):
        a = make_predictions({"b.jpg": [], "a.jpg": []}, "A")
        same = make_predictions({"b.jpg": [], "a.jpg": []}, "B")
        swapped = make_predictions({"a.jpg": [], "b.jpg": []}, "C")
        union, positions, problems = image_union([a, same])
        assert union.tolist() == ["b.jpg", "a.jpg"] and union.dtype == object and problems == []
        assert [p.tolist() for p in positions] == [[0, 1], [0, 1]]
        union, positions, problems = image_union([a, swapped])
        assert union.tolist() == ["b.jpg", "a.jpg"] and problems == []
        assert [p.tolist() for p in positions] == [[0, 1], [1, 0]]


class TestConfig:
    @pytest.mark.parametrize("kwargs, fragment", [
        (dict(method="wfb"), "Only wbf, nms, soft_nms, nmw"),
        (dict(conf_type="mean"), "Only avg, max"),
        (dict(iou_thr=1.5), "iou_thr"),
        (dict(weights=(1, -2)), "weights"),
    ])
    def test_invalid_values_are_named(self, kwargs, fragment):
        with pytest.raises(ValueError, match=fragment):
            EnsembleConfig(**kwargs)

    def test_weights_must_match_the_inputs(self, three_models):
        with pytest.raises(ValueError, match="one weight per input"):
            ensemble_predictions(three_models, EnsembleConfig(weights=(1, 2)))

    def test_progress_reaches_the_total(self, three_models):
        calls = []
        ensemble_predictions(three_models, EnsembleConfig(), progress=lambda d, t: calls.append((d, t)))
        assert calls[0] == (0, 3) and calls[-1] == (3, 3)
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    def test_grid(self):
        grid = sweep_grid()
        assert len(grid) == 25
        assert {c.conf_type for c in grid if c.method != "wbf"} == {"avg"}
        assert len({c.label for c in grid}) == len(grid)
        small = sweep_grid(["wbf", "nms"], [0.5, 0.6], ["max"], [0.0, 0.1])
        assert [c.label for c in small] == [
            "wbf iou=0.5 conf=max", "wbf iou=0.6 conf=max", "wbf iou=0.5 conf=max skip=0.1",
            "wbf iou=0.6 conf=max skip=0.1", "nms iou=0.5", "nms iou=0.6", "nms iou=0.5 skip=0.1",
            "nms iou=0.6 skip=0.1"]


def test_real_trash_figures():
    """The issue's measurements on the real validation fold and its horizontal-flip TTA."""
    dataset = load_coco(need(REAL_TRASH / "fold3_gt.json"))
    inputs = [read_submission(REAL_TRASH / name, dataset=dataset)
              for name in ("fold3_deta_swinL.csv", "fold3_deta_swinL_hflip.csv")]
    configs = [EnsembleConfig("wbf", iou_thr=0.55), EnsembleConfig("wbf", iou_thr=0.55, conf_type="max"),
               EnsembleConfig("nms", iou_thr=0.6)]
    sweep = run_sweep(inputs, dataset, configs, names=["deta", "deta_hflip"], workers=2)
    map50 = dict(zip(sweep.table["variant"], sweep.table["map50"]))
    assert map50["input: deta"] == pytest.approx(0.668446, abs=1e-4)  # pycocotools' figure (README)
    assert map50["wbf iou=0.55 conf=avg"] == pytest.approx(0.638, abs=1e-3)
    assert map50["wbf iou=0.55 conf=max"] == pytest.approx(0.679, abs=1e-3)
    assert map50["nms iou=0.6"] == pytest.approx(0.678, abs=1e-3)
    assert sweep.best.label == "wbf iou=0.55 conf=max"
    assert sweep.table["map50"].is_monotonic_decreasing
    # the kept best predictions are the ones scored
    assert evaluate(dataset, sweep.best_result.predictions).stats["map50"] == pytest.approx(0.679, abs=1e-3)
    # hflip boxes reach outside the 1024 px image: clipped to it, as ensemble-boxes does
    boxes = sweep.best_result.predictions.boxes_xyxy
    assert boxes.min() >= 0 and boxes.max() <= 1024


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "core", "ensemble", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


class TestCli:
    def test_ensemble_with_gt(self, tmp_path):
        out = tmp_path / "ens.csv"
        proc = run_cli(SAMPLE / "predictions_strong.csv", SAMPLE / "predictions_weak.csv", "--method", "wbf",
                       "--weights", 2, 1, "--iou", 0.55, "--conf-type", "max", "--out", out,
                       "--gt", SAMPLE / "train.json")
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        dataset = load_coco(SAMPLE / "train.json")
        ens = read_submission(out, dataset=dataset)
        assert ens.problems == []
        assert len(ens.image_keys) == len(dataset.images)
        scores = {line.split()[0]: float(line.split()[-2]) for line in proc.stdout.splitlines()
                  if line.startswith(("predictions_", "ensemble"))}
        assert scores["ensemble"] == pytest.approx(evaluate(dataset, ens).stats["map50"], abs=1e-4)
        assert scores["predictions_strong.csv"] == pytest.approx(
            evaluate(dataset, read_submission(SAMPLE / "predictions_strong.csv")).stats["map50"], abs=1e-4)
        assert "100%" in proc.stderr  # the progress bar ran to the end

    def test_sweep_writes_the_best_variant(self, tmp_path):
        out, table = tmp_path / "best.csv", tmp_path / "sweep.csv"
        proc = run_cli(SAMPLE / "predictions_strong.csv", SAMPLE / "predictions_weak.csv", "--out", out,
                       "--gt", SAMPLE / "train.json", "--sweep", "--sweep-methods", "wbf", "soft_nms",
                       "--sweep-iou", 0.5, 0.7, "--sweep-conf-types", "avg", "max", "--sweep-table", table)
        assert proc.returncode == 0, proc.stderr
        import pandas as pd

        sweep = pd.read_csv(table)
        assert len(sweep) == 2 + 4 + 1  # inputs, wbf 2 iou x 2 conf, soft_nms (sigma only)
        best = sweep[sweep["method"] != "input"].iloc[0]
        assert f"best: {best['variant']}" in proc.stdout
        dataset = load_coco(SAMPLE / "train.json")
        written = evaluate(dataset, read_submission(out, dataset=dataset)).stats["map50"]
        assert written == pytest.approx(best["map50"], abs=1e-6)

    @pytest.mark.parametrize("extra, fragment", [
        (["--sweep"], "--sweep needs --gt"),
        (["--weights", "1", "2", "3"], "3 weight(s) for 2 input(s)"),
        (["--iou", "2"], "iou_thr"),
    ])
    def test_bad_arguments(self, tmp_path, capsys, extra, fragment):
        from core.cli import main

        code = main(["ensemble", str(SAMPLE / "predictions_strong.csv"), str(SAMPLE / "predictions_weak.csv"),
                     "--out", str(tmp_path / "o.csv"), *extra])
        assert code == 1
        assert fragment in capsys.readouterr().err
        assert not (tmp_path / "o.csv").exists()

    def test_bad_input_files(self, tmp_path):
        bad = tmp_path / "bad.csv"
        bad.write_text("PredictionString,image_id\n0 0.9 1 2 3,train/0000.jpg\n")
        proc = run_cli(SAMPLE / "predictions_strong.csv", bad, "--out", tmp_path / "o.csv")
        assert proc.returncode == 1
        assert "bad.csv:2" in proc.stderr and "fix the file" in proc.stderr
        proc = run_cli(SAMPLE / "predictions_strong.csv", tmp_path / "missing.csv", "--out", tmp_path / "o.csv")
        assert proc.returncode == 1 and "not found" in proc.stderr
        assert "Traceback" not in proc.stderr

    @pytest.mark.parametrize("where, fragment", [
        ("folder_in", "input(s) are folders, not prediction files"),
        ("folder_out", "is a folder; give a file path"),
        ("unwritable_out", "o.csv: cannot create the folder"),
        ("broken_gt", "gt.json: not a usable COCO json"),
    ])
    def test_unusable_paths_exit_1_with_the_reason(self, tmp_path, capsys, where, fragment):
        from core.cli import main

        inputs = [str(SAMPLE / "predictions_strong.csv"), str(SAMPLE / "predictions_weak.csv")]
        out, extra = tmp_path / "o.csv", []
        if where == "folder_in":
            inputs[1] = str(tmp_path)
        elif where == "folder_out":
            out = tmp_path
        elif where == "unwritable_out":
            (tmp_path / "file").write_text("")
            out = tmp_path / "file" / "o.csv"   # a file where a folder should be
        else:
            (tmp_path / "gt.json").write_text('{"images": [')
            extra = ["--gt", str(tmp_path / "gt.json")]
        code = main(["ensemble", *inputs, "--out", str(out), *extra])
        assert code == 1
        assert fragment in capsys.readouterr().err


# --------------------------------------------------------------------------------- the page
def open_ensemble(**state):
    """The Ensemble page; on the sample data, strong + weak unless state says otherwise."""
    from streamlit.testing.v1 import AppTest

    from ui import state as S

    state = {S.ENSEMBLE_SETS: ["predictions_strong.csv", "predictions_weak.csv"], **state}
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page("pages/8_Ensemble.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


class TestEnsemblePage:
    def test_run_compare_browse(self):
        from ui import state as S

        at = open_ensemble()
        at.selectbox(key="_ens_conf").set_value("max").run()
        at.button(key="_ens_run").click().run()
        assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
        summary = at.dataframe[0].value
        assert list(summary.index) == ["predictions_strong.csv", "predictions_weak.csv", "ensemble"]
        dataset = load_coco(SAMPLE / "train.json")
        inputs = [read_submission(SAMPLE / f"predictions_{n}.csv", dataset=dataset) for n in ("strong", "weak")]
        expected = ensemble_predictions(inputs, EnsembleConfig("wbf", conf_type="max"), dataset=dataset)
        assert summary.loc["ensemble", "mAP@0.5"] == pytest.approx(
            evaluate(dataset, expected.predictions).stats["map50"], abs=1e-9)
        assert summary.loc["predictions_strong.csv", "mAP@0.5"] == pytest.approx(
            pycocotools_map50(dataset, inputs[0]), abs=1e-5)
        assert any(b.proto.label == "Download the submission CSV" for b in at.get("download_button"))
        at.button(key="_ens_register_run").click().run()
        assert not at.exception
        label = "ensemble: wbf iou=0.55 conf=max of 2 sets"
        assert at.session_state[S.ACTIVE_PREDICTIONS] == label
        assert at.selectbox(key=S.widget_key(S.ACTIVE_PREDICTIONS)).value == label
        at.switch_page("pages/1_Overview.py").run()  # browsable like any CSV
        assert not at.exception
        assert any(m.value == f"{summary.loc['ensemble', 'mAP@0.5']:.4f}" for m in at.metric)

    def test_per_class_table_names_the_sidebar_iou(self):
        """Issue 11: every label names the IoU it is computed at; the per-class table is the
        views' AP at the sidebar's IoU (0.75 here), so it must not say AP@0.5."""
        from ui import state as S

        at = open_ensemble(**{S.IOU_THR: 0.75})
        at.button(key="_ens_run").click().run()
        assert not at.exception
        titles = [e.proto.label for e in at.get("expander")]
        assert "Per-class AP@0.75 (the sidebar's IoU)" in titles
        assert not [t for t in titles if "AP@0.5" in t]

    def test_sweep_and_use_the_best(self):
        at = open_ensemble()
        at.multiselect(key="_sweep_methods").set_value(["wbf", "soft_nms"]).run()
        at.multiselect(key="_sweep_ious").set_value([0.5, 0.7]).run()
        at.multiselect(key="_sweep_confs").set_value(["avg", "max"]).run()
        at.button(key="_sweep_run").click().run()
        assert not at.exception and not at.error
        table = at.dataframe[-1].value
        assert len(table) == 2 + 4 + 1
        assert table["mAP@0.5"].is_monotonic_decreasing
        best = table[~table["variant"].str.startswith("input: ")].iloc[0]
        assert f"Best: **{best['variant']}**" in at.success[0].value
        at.button(key="_sweep_use").click().run()
        assert not at.exception
        assert at.selectbox(key="_ens_method").value == best["variant"].split()[0]

    def test_test_set_ensembles_without_metrics(self):
        from ui import state as S

        at = open_ensemble(**{S.GT_CHOICE: "test.json", S.ENSEMBLE_SETS: ["predictions_test.csv"]})
        at.button(key="_ens_run").click().run()
        assert not at.exception and not at.error
        assert any("no boxes: no metrics" in c.value for c in at.caption)
        assert any("A sweep scores every variant" in i.value for i in at.info)

    def test_real_trash_folder(self):
        """The real validation fold and its flip TTA on the page: WBF max gives the issue's 0.679."""
        from ui import state as S

        at = open_ensemble(**{S.DATA_DIR: str(need(REAL_TRASH)), S.GT_CHOICE: "fold3_gt.json",
                              S.ENSEMBLE_SETS: []})
        assert at.multiselect(key=S.widget_key(S.ENSEMBLE_SETS)).value == [
            "fold3_deta_swinL.csv", "fold3_deta_swinL_hflip.csv"]
        at.selectbox(key="_ens_conf").set_value("max").run()
        at.button(key="_ens_run").click().run()
        assert not at.exception and not at.error
        summary = at.dataframe[0].value
        assert summary.loc["fold3_deta_swinL.csv", "mAP@0.5"] == pytest.approx(0.668446, abs=1e-5)
        assert summary.loc["ensemble", "mAP@0.5"] == pytest.approx(0.679, abs=1e-3)


class TestImageSizesInsideDataRoots:
    """Sizes read from image headers obey the app's data roots (a symlink out of them is not read)."""

    def _layout(self, tmp_path):
        outside = tmp_path / "outside"
        outside.mkdir()
        Image.new("RGB", (321, 123)).save(outside / "a.png")
        data = tmp_path / "data"
        data.mkdir()
        (data / "train").symlink_to(outside, target_is_directory=True)
        return data, outside

    def test_unrestricted_follows_the_symlink(self, tmp_path):
        data, _ = self._layout(tmp_path)
        sizes, _ = image_sizes(np.array(["train/a.png"], dtype=object), image_root=data)
        assert sizes.tolist() == [[321.0, 123.0]]

    def test_restricted_reads_only_inside_the_roots(self, tmp_path):
        from core.data_roots import DataRoots

        data, outside = self._layout(tmp_path)
        keys = np.array(["train/a.png"], dtype=object)
        refused, problems = image_sizes(keys, image_root=data, default_size=(1024.0, 1024.0),
                                        roots=DataRoots((data.resolve(),), restricted=True))
        assert refused.tolist() == [[1024.0, 1024.0]] and problems
        allowed, _ = image_sizes(keys, image_root=data,
                                 roots=DataRoots((data.resolve(), outside.resolve()), restricted=True))
        assert allowed.tolist() == [[321.0, 123.0]]
