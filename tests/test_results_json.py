"""COCO results json as predictions, and format detection from content."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from core.dataset import load_coco
from core.prediction_files import FORMAT_CSV, FORMAT_JSON, detect_format, load_predictions
from core.problems import Severity, ValidationError
from core.results_json import read_results_json
from core.submission import read_submission, write_submission
from tests.conftest import EXTERNAL, need

GT = {
    "images": [{"id": 10, "file_name": "a.jpg", "width": 100, "height": 100},
               {"id": 20, "file_name": "b.jpg", "width": 100, "height": 100},
               {"id": 30, "file_name": "c.jpg", "width": 100, "height": 100}],
    "annotations": [{"id": 0, "image_id": 10, "category_id": 3, "bbox": [1, 2, 3, 4]}],
    "categories": [{"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}],
}
DETS = [
    {"image_id": 20, "category_id": 5, "bbox": [10, 20, 30, 40], "score": 0.5},
    {"image_id": 10, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.9, "id": 7, "segmentation": []},
    {"image_id": 20, "category_id": 3, "bbox": [0.5, 0.25, 1, 1], "score": 0.125},
]


@pytest.fixture(scope="module")
def dataset():
    return load_coco(json.dumps(GT).encode(), name="gt.json")


def read(dets, dataset, name="dets.json"):
    return read_results_json(json.dumps(dets).encode(), dataset=dataset, name=name)


class TestRead:
    def test_list_converted_to_xyxy_and_keyed_by_file_name(self, dataset):
        preds = read(DETS, dataset)
        assert preds.problems == []
        assert preds.image_keys.tolist() == ["b.jpg", "a.jpg"]        # first appearance order
        assert preds.image_pos.tolist() == [0, 0, 1]                   # grouped by image
        assert preds.labels.tolist() == [5, 3, 3]
        assert preds.scores.tolist() == [0.5, 0.125, 0.9]
        np.testing.assert_array_equal(preds.boxes_xyxy, [[10, 20, 40, 60], [0.5, 0.25, 1.5, 1.25], [1, 2, 4, 6]])
        assert preds.lines.tolist() == [0, 0]

    def test_dict_with_annotations(self, dataset):
        preds = read({"info": {}, "annotations": DETS}, dataset)
        assert len(preds) == 3 and preds.problems == []

    def test_empty_list(self, dataset):
        preds = read([], dataset)
        assert len(preds) == 0 and preds.boxes_xyxy.shape == (0, 4)

    @pytest.mark.parametrize("change, fragment", [
        ({"score": None}, "'score' is None, expected a number"),
        ({"score": "0.5"}, "'score' is '0.5', expected a number"),
        ({"bbox": [1, 2, 3]}, "'bbox' is [1, 2, 3], expected 4 numbers"),
        ({"category_id": "dog"}, "'category_id' is 'dog', expected an integer"),
    ])
    def test_unreadable_entry_is_an_error_with_its_index_and_is_left_out(self, dataset, change, fragment):
        dets = [dict(d) for d in DETS]
        dets[1].update(change)
        preds = read(dets, dataset)
        assert len(preds.problems) == 1
        problem = preds.problems[0]
        assert problem.severity is Severity.ERROR and problem.image_id == 10 and problem.file == "dets.json"
        assert problem.message.startswith("entry [1]: ") and fragment in problem.message
        assert "cannot be read and are left out" in problem.message
        assert len(preds) == 2 and preds.image_keys.tolist() == ["b.jpg"]

    @pytest.mark.parametrize("change, fragment, consequence", [
        ({"score": 1.5}, "score 1.5 is outside [0, 1]", "kept and ranked by their score"),
        ({"score": -0.5}, "score -0.5 is outside [0, 1]", "kept and ranked by their score"),
        ({"bbox": [10, 20, 5, 0]}, "non-positive width or height", "kept and scored as pycocotools"),
        ({"bbox": [10, 20, -5, 3]}, "non-positive width or height", "kept and scored as pycocotools"),
        ({"category_id": 4}, "category_id 4 is not a category of gt.json", "kept, and ignored by the evaluation"),
    ])
    def test_entry_the_scorer_keeps_is_an_error_and_kept(self, dataset, change, fragment, consequence):
        # pycocotools' loadRes takes these entries as they are: the server may reject them, but
        # the numbers must be the scorer's, so the entry stays (tests/test_scorer_parity.py)
        dets = [dict(d) for d in DETS]
        dets[1].update(change)
        preds = read(dets, dataset)
        (problem,) = preds.problems
        assert problem.severity is Severity.ERROR and problem.image_id == 10
        assert problem.message.startswith("entry [1]: ") and fragment in problem.message and consequence in problem.message
        assert len(preds) == 3 and preds.image_keys.tolist() == ["b.jpg", "a.jpg"]
        x, y, w, h = dets[1]["bbox"]
        kept = preds.image_pos == 1
        np.testing.assert_array_equal(preds.boxes_xyxy[kept], [[x, y, x + w, y + h]])
        assert preds.scores[kept].tolist() == [dets[1]["score"]] and preds.labels[kept].tolist() == [dets[1]["category_id"]]

    def test_one_problem_per_kind_naming_every_entry(self, dataset):
        dets = [dict(DETS[0], score=1.5 + i) for i in range(60)] + [dict(DETS[0], score=None)] * 2
        preds = read(dets, dataset)
        left_out, kept = preds.problems
        assert kept.message.startswith("60 entries: entry [0]: score 1.5 is outside [0, 1]; entry [1]: ")
        assert "(entries [0], [1], [2]" in kept.message and "[49] ... and 10 more)" in kept.message
        assert left_out.message.startswith("2 entries: entry [60]: 'score' is None") and len(preds) == 60

    def test_entry_that_is_not_an_object(self, dataset):
        preds = read(DETS + [5], dataset)
        assert [p.message for p in preds.problems] == [
            "entry [3]: is a int, expected an object; these entries cannot be read and are left out"]
        assert len(preds) == 3

    def test_deeply_nested_value_is_a_precise_message(self, dataset):
        deep = b'[{"image_id": 10, "category_id": 3, "score": 0.5, "bbox": ' + b"[" * 5000 + b"]" * 5000 + b"}]"
        with pytest.raises(ValidationError) as info:
            read_results_json(deep, dataset=dataset, name="deep.json")
        (problem,) = info.value.problems
        assert problem.file == "deep.json" and "nested too deeply" in problem.message

    @pytest.mark.parametrize("depth", [2000, 100_000])
    def test_deeply_nested_file_is_a_precise_message(self, dataset, depth):
        for deep in (b"[" * depth + b"]" * depth, b'{"a": ' * depth + b"1" + b"}" * depth):
            with pytest.raises(ValidationError) as info:
                read_results_json(deep, dataset=dataset, name="deep.json")
            assert info.value.problems[0].file == "deep.json", depth
            assert "nested too deeply" in str(info.value) or "top level is" in str(info.value)

    def test_unknown_image_is_a_warning_and_left_out(self, dataset):
        preds = read(DETS + [{"image_id": 99, "category_id": 3, "bbox": [1, 1, 1, 1], "score": 0.3}] * 2, dataset)
        assert len(preds.problems) == 1
        problem = preds.problems[0]
        assert problem.severity is Severity.WARNING and problem.image_id == 99 and "2 detection(s)" in problem.message
        assert not preds.has_errors and len(preds) == 3

    def test_boxes_outside_their_image_are_one_warning_and_kept(self, dataset):
        dets = DETS + [{"image_id": 30, "category_id": 5, "bbox": [90, 95, 20, 10], "score": 0.3},
                       {"image_id": 30, "category_id": 3, "bbox": [-2, 0, 5, 5], "score": 0.2}]
        preds = read(dets, dataset)
        assert len(preds) == len(dets)  # kept as they are
        (warning,) = preds.problems
        assert warning.severity is Severity.WARNING and warning.image_id == 30
        assert "2 box(es) on 1 image(s) reach outside" in warning.message
        assert "entry [3]" in warning.message and "100x100" in warning.message
        assert read(DETS, dataset).problems == []

    @pytest.mark.parametrize("doc, fragment", [({"images": []}, "top level is an object"),
                                               ("text", "top level is a JSON str")])
    def test_not_a_results_json(self, dataset, doc, fragment):
        with pytest.raises(ValidationError, match=fragment):
            read(doc, dataset)

    def test_needs_the_dataset(self):
        with pytest.raises(ValidationError, match="give the ground truth json"):
            read(DETS, None)

    def test_invalid_json_says_where(self, dataset):
        with pytest.raises(ValidationError, match="invalid JSON at line 2 column"):
            read_results_json(b'[{"image_id": 10,\n "bbox": [1, 2 3 4]}]', dataset=dataset)


class TestLoadPredictions:
    @pytest.mark.parametrize("content, expected", [
        (b"[]", FORMAT_JSON), (b'  \n {"annotations": []}', FORMAT_JSON), (b"\xef\xbb\xbf[", FORMAT_JSON),
        (b"PredictionString,image_id\n", FORMAT_CSV), (b"image_id,PredictionString\n", FORMAT_CSV),
        (b"", FORMAT_CSV),
    ])
    def test_detect_format(self, content, expected):
        assert detect_format(content) == expected

    def test_format_comes_from_content_not_name(self, dataset, tmp_path):
        json_named_csv = tmp_path / "preds.csv"
        json_named_csv.write_text(json.dumps(DETS))
        assert len(load_predictions(json_named_csv, dataset=dataset)) == 3
        csv_named_json = tmp_path / "preds.json"
        csv_named_json.write_text("PredictionString,image_id\n5 0.5 1 1 2 2,c.jpg\n")
        preds = load_predictions(csv_named_json, dataset=dataset)
        assert preds.image_keys.tolist() == ["c.jpg"] and preds.source == "preds.json"

    def test_json_exports_to_an_equal_submission(self, dataset):
        preds = load_predictions(json.dumps(DETS).encode(), dataset=dataset)
        buf = io.StringIO()
        write_submission(preds, buf)
        back = read_submission(buf.getvalue().encode(), dataset=dataset)
        assert not back.has_errors
        for field in ("image_keys", "image_pos", "labels", "scores", "boxes_xyxy"):
            np.testing.assert_array_equal(getattr(back, field), getattr(preds, field))


class TestPublicCases:
    @pytest.mark.parametrize("gt, dets, n_boxes", [
        ("cocoapi_fake100/instances_val2014_100.json", "cocoapi_fake100/instances_val2014_fakebbox100_results.json", 734),
        ("detectron2_coco_val_2img/gt_annotations.json", "detectron2_coco_val_2img/detections.json", 3),
        ("fce_shapes3/gt_dataset.json", "fce_shapes3/dt_dataset.json", 9),
    ])
    def test_boxes_match_pycocotools_loadres(self, gt, dets, n_boxes):
        gt_path, dets_path = need(EXTERNAL / gt), need(EXTERNAL / dets)
        dataset = load_coco(gt_path)
        preds = load_predictions(dets_path, dataset=dataset)
        assert preds.problems == [] and len(preds) == n_boxes
        coco_dt = COCO(str(gt_path)).loadRes(json.loads(dets_path.read_text()))
        ours = {(k, lab, s, *b) for k, lab, s, b in zip(
            preds.image_keys[preds.image_pos], preds.labels.tolist(), preds.scores.tolist(),
            preds.boxes_xyxy.tolist())}
        names = {im["id"]: im["file_name"] for im in coco_dt.dataset["images"]}
        theirs = set()
        for ann in coco_dt.dataset["annotations"]:
            x, y, w, h = ann["bbox"]
            theirs.add((names[ann["image_id"]], ann["category_id"], ann["score"], x, y, x + w, y + h))
        assert ours == theirs
