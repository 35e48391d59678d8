"""COCO ground-truth loader: tables, every validation message, real and public datasets vs pycocotools."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from core.dataset import load_coco
from core.problems import Severity, ValidationError
from core.tables import ANNOTATION_COLUMNS, CATEGORY_COLUMNS, IMAGE_COLUMNS
from tests.conftest import EXTERNAL, REAL_TRASH, need

BASE = {
    "images": [
        {"id": 1, "file_name": "train/0001.jpg", "width": 1024, "height": 1024},
        {"id": 2, "file_name": "train/0002.jpg", "width": 640, "height": 480},
        {"id": 3, "file_name": "train/0003.jpg", "width": 100, "height": 200},   # no annotations: normal
    ],
    "annotations": [
        {"id": 0, "image_id": 1, "category_id": 90, "bbox": [10, 20, 100, 50], "area": 4321.5, "iscrowd": 0},
        {"id": 1, "image_id": 2, "category_id": 1, "bbox": [0.5, 0, 639.5, 480]},
        {"id": 2, "image_id": 2, "category_id": 7, "bbox": [5, 6, 7, 8], "iscrowd": 1},
    ],
    "categories": [{"id": 90, "name": "plastic bag"}, {"id": 1, "name": "Paper pack"},
                   {"id": 7, "name": "스티로폼 (Styrofoam)"}],
}


def gt(**changes) -> dict:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def load(doc, name="gt.json"):
    return load_coco(json.dumps(doc).encode(), name=name)


def problems_of(doc) -> list:
    with pytest.raises(ValidationError) as info:
        load(doc)
    assert all(p.file == "gt.json" for p in info.value.problems)
    return info.value.problems


def messages(doc) -> str:
    return "\n".join(str(p) for p in problems_of(doc))


class TestTables:
    def test_columns_and_values(self):
        ds = load(BASE)
        assert list(ds.images.columns) == IMAGE_COLUMNS
        assert list(ds.annotations.columns) == ANNOTATION_COLUMNS
        assert list(ds.categories.columns) == CATEGORY_COLUMNS
        assert ds.problems == []
        a = ds.annotations
        assert a["id"].tolist() == [0, 1, 2]                     # ids may start at 0
        assert a["image_index"].tolist() == [0, 1, 1]
        np.testing.assert_array_equal(a[["x", "y", "w", "h"]].to_numpy(), [[10, 20, 100, 50], [0.5, 0, 639.5, 480],
                                                                          [5, 6, 7, 8]])
        np.testing.assert_array_equal(a[["x1", "y1", "x2", "y2"]].to_numpy(), [[10, 20, 110, 70], [0.5, 0, 640, 480],
                                                                              [5, 6, 12, 14]])
        assert a["area"].tolist() == [4321.5, 639.5 * 480, 56.0]  # own area when given, else w*h
        assert a["iscrowd"].tolist() == [0, 0, 1]
        assert a["x1"].dtype == np.float64 and a["category_id"].dtype == np.int64

    def test_categories_sorted_with_gaps_and_any_names(self):
        ds = load(BASE)
        assert ds.category_ids.tolist() == [1, 7, 90]
        assert ds.category_names == {1: "Paper pack", 7: "스티로폼 (Styrofoam)", 90: "plastic bag"}

    def test_images_of_different_sizes_and_without_annotations(self):
        ds = load(BASE)
        assert ds.images["width"].tolist() == [1024, 640, 100]
        assert ds.images["width"].dtype == np.int64
        assert ds.image_index_of_file(["train/0003.jpg", "nope.jpg"]).tolist() == [2, -1]
        assert ds.image_index_of_id([3, 1, 99]).tolist() == [2, 0, -1]

    def test_sources_name_and_root(self, tmp_path):
        path = tmp_path / "sub" / "train.json"
        path.parent.mkdir()
        path.write_text(json.dumps(BASE), encoding="utf-8")
        assert load_coco(path).source == "train.json"
        assert load_coco(path).root == path.parent
        assert load_coco(str(path), name="shown", root=tmp_path).root == tmp_path
        uploaded = load_coco(path.read_bytes())
        assert uploaded.source == "<upload>" and uploaded.root is None
        assert len(load_coco(b"\xef\xbb\xbf" + path.read_bytes()).annotations) == 3   # BOM

    def test_empty_sections(self):
        ds = load(gt(annotations=[]))
        assert len(ds.annotations) == 0 and list(ds.annotations.columns) == ANNOTATION_COLUMNS


class TestErrors:
    def test_invalid_json_says_where(self):
        text = json.dumps(BASE, indent=1).replace('"bbox"', 'bbox', 1).encode()
        with pytest.raises(ValidationError) as info:
            load_coco(text, name="gt.json")
        problem = info.value.problems[0]
        line = next(i for i, l in enumerate(text.decode().splitlines(), 1) if l.strip().startswith("bbox"))
        assert problem.line == line and f"line {line} column" in problem.message

    def test_truncated_json(self):
        with pytest.raises(ValidationError, match="invalid JSON at line 1 column"):
            load_coco(json.dumps(BASE)[:100].encode())

    def test_missing_file(self, tmp_path):
        with pytest.raises(ValidationError, match="cannot read"):
            load_coco(tmp_path / "nope.json")

    @pytest.mark.parametrize("deep", [
        b"[" * 100_000 + b"]" * 100_000,                                           # the whole file
        b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,                               # (old orjson: a crash)
        b'{"images": [], "categories": [], "annotations": [{"id": 1, "bbox": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
    ], ids=["list", "object", "value"])
    def test_deeply_nested_json_is_a_precise_message(self, deep):
        with pytest.raises(ValidationError) as info:
            load_coco(deep, name="deep.json")
        (problem,) = info.value.problems
        assert problem.file == "deep.json" and "nested too deeply" in problem.message

    def test_a_nested_value_is_quoted_short(self):
        doc = gt()
        doc["annotations"][0]["bbox"] = [[[[[[[[1]]]]]]]] * 50
        (problem,) = problems_of(doc)
        assert "'bbox' is [[[[...]]], [[[...]]], [[[...]]], [[[...]]], [[[...]]], [[[...]]], [[[...]]], [[[...]]], " \
               "...], expected 4 numbers" in problem.message

    def test_whole_float_ids_are_integers(self):
        doc = gt()
        doc["annotations"][1].update(id=1.0, image_id=2.0, category_id=1.0)
        a = load(doc).annotations
        assert a["id"].tolist() == [0, 1, 2] and a["image_id"].tolist() == [1, 2, 2] and a["id"].dtype == np.int64

    def test_missing_top_level_keys_all_listed(self):
        text = messages({"images": []})
        assert "'annotations', 'categories'" in text

    def test_results_list_is_not_a_ground_truth(self):
        assert "results file" in messages([{"image_id": 1}])

    def test_duplicate_ids(self):
        doc = gt()
        doc["images"].append({"id": 2, "file_name": "train/0009.jpg", "width": 5, "height": 5})
        doc["annotations"].append({"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]})
        doc["categories"].append({"id": 7, "name": "again"})
        problems = problems_of(doc)
        text = "\n".join(map(str, problems))
        assert "images[3] (id 2): duplicate id 2 (first used by images[1])" in text
        assert "categories[3]: duplicate id 7" in text
        # pycocotools scores repeated annotation ids (TestWarnings): no error of their own
        assert "annotations[3]" not in "\n".join(str(p) for p in problems if p.is_error)

    def test_duplicate_file_names(self):
        doc = gt()
        doc["images"][2]["file_name"] = "train/0001.jpg"
        assert "duplicate file_name 'train/0001.jpg'" in messages(doc)

    def test_unknown_image_and_category(self):
        doc = gt()
        doc["annotations"][1]["image_id"] = 42
        doc["annotations"][2]["category_id"] = 3
        problems = problems_of(doc)
        text = "\n".join(map(str, problems))
        assert "annotations[1] (id 1): image_id 42 is not the id of any image" in text
        assert "annotations[2] (id 2): category_id 3 is not in 'categories' (ids [1, 7, 90])" in text
        assert {p.image_id for p in problems} == {42, 2}

    @pytest.mark.parametrize("section, index, key, value, fragment", [
        ("annotations", 0, "bbox", [10, "20", 100, 50], "'bbox' is [10, '20', 100, 50], expected 4 numbers"),
        ("annotations", 0, "bbox", [10, 20, 100], "expected 4 numbers"),
        ("annotations", 0, "bbox", None, "'bbox' is None"),
        ("annotations", 0, "bbox", [10, 20, 100, None], "expected 4 numbers"),
        ("annotations", 0, "area", "big", "'area' is 'big', expected a number"),
        ("annotations", 0, "iscrowd", 2, "'iscrowd' is 2, expected 0 or 1"),
        ("annotations", 0, "id", "a1", "'id' is 'a1', expected an integer"),
        ("annotations", 0, "image_id", None, "'image_id' is None, expected an integer (missing)"),
        ("annotations", 0, "category_id", 1.5, "'category_id' is 1.5, expected an integer"),
        ("images", 1, "width", "640", "images[1] (id 2): 'width' is '640', expected a number"),
        ("images", 1, "height", None, "'height' is None, expected a number"),
        ("images", 1, "width", 0, "images[1] (id 2): width 0 is not positive"),
        ("images", 1, "height", -480, "height -480 is not positive"),
        ("images", 1, "file_name", "", "'file_name' is '', expected a non-empty string"),
        ("categories", 0, "name", None, "'name' is None, expected a non-empty string"),
    ])
    def test_bad_value(self, section, index, key, value, fragment):
        doc = gt()
        doc[section][index][key] = value
        assert fragment in messages(doc)

    def test_all_errors_listed_at_once(self):
        doc = gt()
        doc["annotations"][0]["bbox"] = [1, 2, 3]
        doc["annotations"][1]["image_id"] = 42
        doc["annotations"][2]["category_id"] = 3
        doc["images"][0]["width"] = -1
        problems = problems_of(doc)
        assert len(problems) == 4 and all(p.severity is Severity.ERROR for p in problems)

    def test_many_offenders_are_capped_with_a_count(self):
        doc = gt(annotations=[{"id": i, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]} for i in range(70)])
        problems = problems_of(doc)
        assert len(problems) == 51 and problems[-1].message.startswith("... and 20 more annotations")


class TestWarnings:
    def test_box_outside_its_image_loads_with_a_warning(self):
        doc = gt()
        doc["annotations"][1]["bbox"] = [-2, 0, 100, 481]
        ds = load(doc)
        assert len(ds.annotations) == 3
        assert len(ds.problems) == 1
        problem = ds.problems[0]
        assert problem.severity is Severity.WARNING and problem.image_id == 2
        assert "reaches outside its 640x480 image" in problem.message

    @pytest.mark.parametrize("bbox", [[10, 20, 0, 50], [10, 20, 100, -1], [10, 20, -3, -1]])
    def test_non_positive_box_size_loads_with_a_warning(self, bbox):
        doc = gt()
        doc["annotations"][0]["bbox"] = bbox
        ds = load(doc)
        (problem,) = ds.problems
        assert problem.severity is Severity.WARNING and problem.file == "gt.json"
        assert problem.message.startswith(f"1 annotation(s) with a width or height <= 0: annotations[0] (id 0) "
                                          f"bbox {[float(v) for v in bbox]}; kept and scored as pycocotools")
        assert ds.annotations[["x", "y", "w", "h"]].to_numpy()[0].tolist() == bbox
        assert ds.annotations["area"].iat[0] == 4321.5    # the json's own area, as pycocotools uses it

    def test_repeated_annotation_ids_are_scored_as_pycocotools_looks_them_up(self):
        # pycocotools indexes annotations by id (the last one wins) and lists them per image
        # by id: the last annotation with an id is scored in the place of each earlier one
        doc = gt()
        doc["annotations"][0]["id"] = 2                 # image 1's box now shares id 2 with image 2's crowd box
        doc["annotations"].append({"id": 1, "image_id": 1, "category_id": 90, "bbox": [1, 2, 3, 4], "area": 12})
        doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 90, "bbox": [50, 50, 5, 5], "area": 25})
        ds = load(doc)
        (problem,) = ds.problems
        assert problem.severity is Severity.WARNING
        assert problem.message.startswith("4 annotations sharing an id with another: annotations[0] (id 2); "
                                          "annotations[1] (id 1); annotations[2] (id 2); annotations[3] (id 1); ")
        coco = COCO()
        coco.dataset = json.loads(json.dumps(doc))
        coco.createIndex()
        scored = coco.loadAnns(coco.getAnnIds(imgIds=sorted(coco.getImgIds())))
        by_image = sorted(scored, key=lambda a: a["image_id"])   # stable: pycocotools' order in an image
        table = ds.annotations.sort_values("image_index", kind="stable")
        assert table["image_id"].tolist() == [a["image_id"] for a in by_image]
        np.testing.assert_array_equal(table[["x", "y", "w", "h"]].to_numpy(), [a["bbox"] for a in by_image])
        assert table["category_id"].tolist() == [a["category_id"] for a in by_image]
        assert table["iscrowd"].tolist() == [a.get("iscrowd", 0) for a in by_image]

    def test_float_noise_at_the_edge_is_not_outside(self):
        doc = gt()
        doc["annotations"][1]["bbox"] = [0.1, 0.2, 639.9000000000001, 479.8]
        assert load(doc).problems == []


class TestRealData:
    def test_competition_fold(self):
        ds = load_coco(need(REAL_TRASH / "fold3_gt.json"))
        assert (len(ds.images), len(ds.annotations), len(ds.categories)) == (958, 4587, 10)
        assert ds.problems == []
        assert ds.category_names[0] == "General trash" and ds.category_names[9] == "Clothing"

    def test_competition_test_json_has_no_annotations(self):
        ds = load_coco(need(REAL_TRASH / "test.json"))
        assert (len(ds.images), len(ds.annotations)) == (4871, 0)
        assert ds.images["file_name"].iat[1] == "test/0001.jpg"

    def test_voc_boxes_one_pixel_outside_are_warnings(self):
        ds = load_coco(need(EXTERNAL / "voc-cartucho" / "gt.json"))
        assert (len(ds.images), len(ds.annotations), len(ds.categories)) == (85, 686, 38)
        assert len(ds.problems) == 5 and all(p.severity is Severity.WARNING for p in ds.problems)

    @pytest.mark.parametrize("path", ["cocoapi_fake100/instances_val2014_100.json",
                                      "detectron2_coco_val_2img/gt_annotations.json",
                                      "fce_shapes3/gt_dataset.json", "voc-cartucho/gt.json"])
    def test_tables_agree_with_pycocotools(self, path):
        path = need(EXTERNAL / path)
        ds = load_coco(path)
        coco = COCO(str(path))
        ann_ids = ds.annotations["id"].tolist()
        anns = coco.loadAnns(ann_ids)
        np.testing.assert_array_equal(ds.annotations[["x", "y", "w", "h"]].to_numpy(), [a["bbox"] for a in anns])
        np.testing.assert_array_equal(ds.annotations["area"], [a["area"] for a in anns])
        np.testing.assert_array_equal(ds.annotations["iscrowd"], [a.get("iscrowd", 0) for a in anns])
        np.testing.assert_array_equal(ds.annotations["image_id"], [a["image_id"] for a in anns])
        assert ds.category_ids.tolist() == sorted(coco.getCatIds())
        assert sorted(ds.images["id"].tolist()) == sorted(coco.getImgIds())

    def test_coco_crowd_and_mask_area(self):
        ds = load_coco(need(EXTERNAL / "cocoapi_fake100" / "instances_val2014_100.json"))
        assert int(ds.annotations["iscrowd"].sum()) == 9
        box_area = ds.annotations["w"] * ds.annotations["h"]
        assert (ds.annotations["area"] < box_area).mean() > 0.9     # mask area, not w*h
        assert ds.category_ids.max() == 90 and len(ds.categories) == 80
