"""Submission CSV reader/writer: every validation message, line numbers, round trip, real files."""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.dataset import load_coco
from core.problems import Severity, ValidationError
from core.submission import format_prediction_strings, read_submission, write_submission
from tests.conftest import REAL_TRASH, need

GOOD_A = "1 0.9 10 20 110 220 3 0.5 0 0 50.5 60.25"
GOOD_B = "0 0.25 5 5 6 6"


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def small_dataset():
    gt = {
        "images": [{"id": i, "file_name": f"test/{i:04d}.jpg", "width": 1024, "height": 1024} for i in range(3)],
        "annotations": [],
        "categories": [{"id": i, "name": f"c{i}"} for i in range(10)],
    }
    return load_coco(json.dumps(gt).encode(), name="gt.json")


def errors_at(preds, line):
    return [p for p in preds.problems if p.is_error and p.line == line]


def only_problem(preds):
    assert len(preds.problems) == 1, [str(p) for p in preds.problems]
    return preds.problems[0]


class TestReadValid:
    def test_arrays(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", f"{GOOD_A},test/0000.jpg",
                                          f"{GOOD_B},test/0001.jpg"), name="sub.csv")
        assert preds.problems == []
        assert preds.source == "sub.csv"
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg"]
        assert preds.lines.tolist() == [2, 3]
        assert preds.image_pos.tolist() == [0, 0, 1]
        assert preds.labels.tolist() == [1, 3, 0]
        assert preds.labels.dtype == np.int64
        assert preds.scores.tolist() == [0.9, 0.5, 0.25]
        np.testing.assert_array_equal(preds.boxes_xyxy, [[10, 20, 110, 220], [0, 0, 50.5, 60.25], [5, 5, 6, 6]])

    def test_either_column_order_and_extra_columns(self):
        a = read_submission(csv_bytes("image_id,PredictionString", f"test/0000.jpg,{GOOD_A}"))
        b = read_submission(csv_bytes("id,PredictionString,notes,image_id", f"7,{GOOD_A},hello,test/0000.jpg"))
        for preds in (a, b):
            assert preds.problems == []
            assert preds.image_keys.tolist() == ["test/0000.jpg"]
            assert preds.labels.tolist() == [1, 3]

    def test_empty_and_nan_prediction_strings_are_images_without_boxes(self):
        df = pd.DataFrame({"PredictionString": [GOOD_B, np.nan, ""], "image_id": ["a.jpg", "b.jpg", "c.jpg"]})
        written = df.to_csv(index=False).encode()
        preds = read_submission(written + b"nan,d.jpg\n   ,e.jpg\n")
        assert preds.problems == []
        assert preds.image_keys.tolist() == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
        assert len(preds) == 1

    def test_trailing_spaces_tabs_runs_of_spaces_crlf_and_bom(self):
        text = ("\ufeffPredictionString , image_id \r\n"
                "1 0.9  10 20\t110 220 ,  test/0000.jpg  \r\n\r\n"
                " 0 0.25 5 5 6 6 ,test/0001.jpg\r\n")
        preds = read_submission(text.encode())
        assert preds.problems == []
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg"]
        assert preds.lines.tolist() == [2, 4]
        np.testing.assert_array_equal(preds.boxes_xyxy, [[10, 20, 110, 220], [5, 5, 6, 6]])

    def test_out_of_image_coordinates_load_with_one_warning(self):
        preds = read_submission(csv_bytes("PredictionString,image_id",
                                          f"{GOOD_B} 2 0.5 -3.5 -1 1030 1100.5,test/0000.jpg",
                                          "2 0.5 0 0 1024.0001 1024,test/0001.jpg",          # float noise: inside
                                          "2 0.5 1 1 1025 9,test/0002.jpg"), dataset=small_dataset())
        assert not preds.has_errors
        assert preds.boxes_xyxy.tolist()[1] == [-3.5, -1, 1030, 1100.5]
        problem = only_problem(preds)
        assert problem.severity is Severity.WARNING and problem.message.startswith(
            "2 box(es) on 2 image(s) reach outside their image (first: line 2, [-3.5 -1 1030 1100.5] in a 1024x1024")
        assert read_submission(csv_bytes("PredictionString,image_id", "2 0.5 -3.5 -1 1030 1100.5,a.jpg")).problems == []

    def test_quoted_fields_keep_physical_line_numbers(self):
        text = ('PredictionString,image_id\n'
                '"1 0.9 10 20\n110 220","test/0000.jpg"\n'
                '"0 0.5 1 1 0 5",test/0001.jpg\n'
                '"0 0.5 1 1 2 5","test/0002,a.jpg"\n')
        preds = read_submission(text.encode())
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg", "test/0002,a.jpg"]
        assert preds.lines.tolist() == [2, 4, 5]
        assert [p.line for p in preds.problems] == [4]   # the x2 <= x1 row (kept), after a 2-line record

    def test_file_like_and_path_sources(self, tmp_path):
        path = tmp_path / "my.csv"
        path.write_bytes(csv_bytes("PredictionString,image_id", f"{GOOD_B},x.jpg"))
        assert read_submission(path).source == "my.csv"
        assert read_submission(str(path), name="shown").source == "shown"
        assert read_submission(io.BytesIO(path.read_bytes())).labels.tolist() == [0]

    def test_header_only_gives_no_predictions(self):
        preds = read_submission(b"PredictionString,image_id\n")
        assert len(preds) == 0 and len(preds.image_keys) == 0 and preds.boxes_xyxy.shape == (0, 4)


class TestRowErrors:
    """Each kind of problem: one Problem naming its lines. What the scorer (pycocotools on the
    converted results) would score is kept; only what cannot be read is left out, box by box."""

    @pytest.mark.parametrize("bad, fragment", [
        ("1 0.9 10 20 110", "line 3: 5 values"),
        ("1 0.9 10 20 110 220 3", "line 3: 7 values"),
    ])
    def test_row_that_cannot_be_cut_into_boxes_is_left_out(self, bad, fragment):
        preds = read_submission(csv_bytes(
            "PredictionString,image_id", f"{GOOD_A},test/0000.jpg", f"{bad},test/0001.jpg",
            f"{GOOD_B},test/0002.jpg"), name="s.csv")
        problem = only_problem(preds)
        assert problem.severity is Severity.ERROR
        assert problem.line == 3 and problem.image_id == "test/0001.jpg" and problem.file == "s.csv"
        assert "not a multiple of 6" in problem.message and fragment in problem.message
        assert "all their boxes are left out" in problem.message
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]  # listed, no box
        assert preds.lines.tolist() == [2, 3, 4]
        assert preds.labels.tolist() == [1, 3, 0] and preds.image_pos.tolist() == [0, 0, 2]

    @pytest.mark.parametrize("bad, fragment", [
        ("1 0.9 10 abc 110 220", "not finite numbers on line 3 (line 3 box 2: 'abc')"),
        ("1 0.9 10 nan 110 220", "(line 3 box 2: 'nan')"),
        ("1 0.9 10 20 110 inf", "(line 3 box 2: 'inf')"),
        ("NaN NaN 10 20 110 220", "(line 3 box 2: 'NaN', 'NaN')"),
        ("1.5 0.9 10 20 110 220", "1 label(s) that are not integers on line 3 (line 3 box 2: 1.5)"),
    ])
    def test_box_that_cannot_be_read_is_left_out_alone(self, bad, fragment):
        preds = read_submission(csv_bytes(
            "PredictionString,image_id", f"{GOOD_A},test/0000.jpg", f"{GOOD_B} {bad} {GOOD_B},test/0001.jpg"),
            name="s.csv")
        problem = only_problem(preds)
        assert problem.severity is Severity.ERROR and problem.line == 3 and problem.image_id == "test/0001.jpg"
        assert fragment in problem.message and "left out" in problem.message
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg"]
        assert preds.labels.tolist() == [1, 3, 0, 0] and preds.image_pos.tolist() == [0, 0, 1, 1]

    @pytest.mark.parametrize("bad, fragment", [
        ("1 1.2 10 20 110 220", "1 score(s) outside [0, 1] on line 3 (line 3 box 1: 1.2)"),
        ("1 -0.1 10 20 110 220", "score(s) outside [0, 1]"),
        ("1 0.9 110 20 10 220", "xmax <= xmin or ymax <= ymin on line 3 (line 3 box 1: [110 20 10 220])"),
        ("1 0.9 10 20 10 220", "xmax <= xmin or ymax <= ymin"),
        ("1 0.9 10 220 110 20", "xmax <= xmin or ymax <= ymin"),
        ("-1 0.9 10 20 110 220", "negative label"),
    ])
    def test_box_the_scorer_keeps_is_an_error_and_kept(self, bad, fragment):
        preds = read_submission(csv_bytes(
            "PredictionString,image_id", f"{GOOD_A},test/0000.jpg", f"{bad},test/0001.jpg",
            f"{GOOD_B},test/0002.jpg"), name="s.csv")
        problem = only_problem(preds)
        assert problem.severity is Severity.ERROR and preds.has_errors
        assert problem.line == 3 and problem.image_id == "test/0001.jpg" and problem.file == "s.csv"
        assert fragment in problem.message and "kept" in problem.message and "left out" not in problem.message
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg", "test/0002.jpg"]
        row = np.array(bad.split(), dtype=float)
        kept = preds.image_pos == 1
        assert preds.labels[kept].tolist() == [int(row[0])] and preds.scores[kept].tolist() == [row[1]]
        np.testing.assert_array_equal(preds.boxes_xyxy[kept], [row[2:]])

    def test_label_outside_categories_with_dataset_is_kept(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", "12 0.9 10 20 110 220,test/0000.jpg",
                                          f"{GOOD_B},test/0001.jpg"), dataset=small_dataset())
        problem = [p for p in preds.problems if p.is_error]
        assert len(problem) == 1 and problem[0].line == 2
        assert "not category ids" in problem[0].message and "(line 2 box 1: 12)" in problem[0].message
        assert "ignored by the evaluation" in problem[0].message
        assert preds.image_keys.tolist() == ["test/0000.jpg", "test/0001.jpg"] and preds.labels.tolist() == [12, 0]

    def test_integral_float_label_is_accepted(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", "7.0 0.9 10 20 110 220,a.jpg"))
        assert preds.problems == [] and preds.labels.tolist() == [7]

    def test_several_boxes_quoted_with_their_line_and_number(self):
        bad = " ".join(["1 0.9 10 20 110 220"] * 2 + ["1 0.9 110 20 10 220"] * 5)
        preds = read_submission(csv_bytes("PredictionString,image_id", f"{bad},a.jpg"))
        message = only_problem(preds).message
        assert message.startswith("5 box(es)") and "line 2 box 3: [110 20 10 220]" in message and "..." in message
        assert len(preds) == 7

    def test_one_problem_per_kind_naming_the_lines(self):
        rows = [f"1 0.9 110 20 10 220 {GOOD_B},img{i}.jpg" for i in range(30)] + [f"{GOOD_A} 1 7 1 1 2 2,x.jpg"]
        preds = read_submission(csv_bytes("PredictionString,image_id", *rows))
        degenerate, score = preds.problems
        assert degenerate.line == 2 and degenerate.image_id is None
        assert degenerate.message.startswith("30 box(es) with xmax <= xmin or ymax <= ymin on lines 2, 3, 4, ")
        assert "20, 21 ... and 10 more (line 2 box 1: [110 20 10 220], line 3 box 1:" in degenerate.message
        assert score.line == 32 and score.image_id == "x.jpg" and "line 32 box 3: 7.0" in score.message
        assert len(preds) == 63

    def test_image_listed_twice_is_one_warning_and_both_rows_are_scored(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", f"{GOOD_A},a.jpg", f"{GOOD_B},b.jpg",
                                          f"{GOOD_B},a.jpg", "2 0.5 1 1 3 3,c.jpg", "4 0.5 1 1 3 3,c.jpg",
                                          "5 0.5 1 1 3 3,c.jpg"))
        problem = only_problem(preds)
        assert problem.severity is Severity.WARNING and problem.line == 2 and problem.image_id is None
        assert "'a.jpg' on lines 2, 4; 'c.jpg' on lines 5, 6, 7" in problem.message
        assert "every row is scored, as pycocotools does" in problem.message
        assert preds.image_keys.tolist() == ["a.jpg", "b.jpg", "c.jpg"] and preds.lines.tolist() == [2, 3, 5]
        # the later rows' boxes join their image, in file order
        assert preds.image_pos.tolist() == [0, 0, 0, 1, 2, 2, 2]
        assert preds.labels.tolist() == [1, 3, 0, 0, 2, 4, 5]

    def test_missing_image_id(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", f"{GOOD_A},", f"{GOOD_B},b.jpg"))
        problem = only_problem(preds)
        assert problem.line == 2 and "empty image_id" in problem.message and "left out" in problem.message
        assert preds.image_keys.tolist() == ["b.jpg"]

    def test_wrong_field_count(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", "1,0.9,10,20,110,220,a.jpg",
                                          f"{GOOD_B},b.jpg"))
        problem = only_problem(preds)
        assert problem.line == 2 and "line 2: 7 fields" in problem.message and problem.image_id == "a.jpg"
        assert preds.image_keys.tolist() == ["b.jpg"]

    def test_every_bad_row_reported_in_line_order(self):
        preds = read_submission(csv_bytes(
            "PredictionString,image_id", "1 0.9 1 2 3,a.jpg", f"{GOOD_B},b.jpg", "1 2 1 2 3 4,c.jpg",
            "x 0.5 1 2 3 4,d.jpg", f"{GOOD_A},e.jpg"))
        assert [p.line for p in preds.problems] == [2, 4, 5]
        assert preds.image_keys.tolist() == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"]
        np.testing.assert_array_equal(preds.image_pos, [1, 2, 4, 4])   # c.jpg's score 2 is kept


class TestDatasetChecks:
    def test_unknown_image_is_a_warning_and_loads(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", f"{GOOD_B},test/0000.jpg",
                                          f"{GOOD_B},test/9999.jpg", f"{GOOD_B},test/0001.jpg",
                                          f"{GOOD_B},test/0002.jpg"), dataset=small_dataset())
        problem = only_problem(preds)
        assert problem.severity is Severity.WARNING and problem.line == 3
        assert problem.image_id == "test/9999.jpg" and "test image" in problem.message
        assert not preds.has_errors and "test/9999.jpg" in preds.image_keys.tolist()

    def test_wrong_path_prefix_gets_a_hint_and_many_unknowns_are_capped(self):
        rows = [f"{GOOD_B},{i:04d}.jpg" for i in range(60)]
        preds = read_submission(csv_bytes("PredictionString,image_id", *rows), dataset=small_dataset())
        warnings = [p for p in preds.problems if p.line is not None]
        assert len(warnings) == 51 and not preds.has_errors
        assert "(the dataset has 'test/0000.jpg')" in warnings[0].message
        assert "(the dataset has" not in warnings[5].message            # no test/0005.jpg in the dataset
        assert warnings[-1].message.startswith("... and 10 more image_ids") and warnings[-1].line == 52

    def test_quoted_examples_belong_to_their_own_row(self):
        # row 2 has one unknown label; the next row's bad boxes must not be quoted as its examples
        preds = read_submission(csv_bytes("PredictionString,image_id",
                                          "1 0.9 1 1 5 5 12 0.5 1 1 5 5,test/0000.jpg",
                                          "13 0.5 1 1 5 5 14 0.5 1 1 5 5,test/0001.jpg"), dataset=small_dataset())
        (problem,) = (p for p in preds.problems if p.is_error)
        assert ("3 label(s) that are not category ids of the ground truth on lines 2, 3 (line 2 box 2: 12, "
                "line 3 box 1: 13, line 3 box 2: 14);") in problem.message

    def test_dataset_images_without_a_row_are_one_warning(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", f"{GOOD_B},test/0001.jpg"),
                                dataset=small_dataset())
        problem = only_problem(preds)
        assert problem.severity is Severity.WARNING and problem.line is None
        assert problem.message.startswith("2 of 3 images") and "test/0000.jpg" in problem.message


class TestUnusableFile:
    @pytest.mark.parametrize("content, fragment", [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b'[{"image_id": 1}]', "this is JSON"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "binary file"),
        (b"\xff\xfe\x00P", "binary file"),
        (b"\xe9t\xe9,x\n", "not UTF-8"),
        (b"preds,image\n1 0.5 1 1 2 2,a.jpg\n", "lacks the column(s) PredictionString, image_id"),
        (b"1 0.5 1 1 2 2,a.jpg\n", "lacks the column(s) PredictionString, image_id"),
    ])
    def test_raises_with_message(self, content, fragment):
        with pytest.raises(ValidationError) as info:
            read_submission(content, name="bad.csv")
        assert fragment in str(info.value)
        assert info.value.problems[0].file == "bad.csv"

    def test_missing_file(self, tmp_path):
        with pytest.raises(ValidationError, match="cannot read"):
            read_submission(tmp_path / "nope.csv")


GOOD_ROWS = [(2, "a.jpg", [1, 0.9, 10, 20, 110, 220]), (4, "b.jpg", [0, 0.25, 5, 5, 6, 6])]


def told_about(preds, line: int) -> bool:
    """An ERROR names this line, in its list of lines or as a record spanning it (an unclosed quote
    swallows lines)."""
    for p in preds.problems:
        if not p.is_error or p.line is None:
            continue
        named = {int(n) for listed in re.findall(r"lines? (\d+(?:, \d+)*)", p.message) for n in listed.split(", ")}
        spans = re.findall(r"lines (\d+)-(\d+)", p.message)
        if p.line == line or line in named or any(int(a) <= line <= int(b) for a, b in spans):
            return True
    return False


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"),
               max_size=60))
@example(",b.jpg")
@example(",a.jpg")
@example("PredictionString,image_id")
@example('"1 0.5 1 1 2 2,c.jpg')
@example('x,"c.jpg')
@example("1 0.5 1 1 2 2,c.jpg,extra")
def test_a_malformed_line_never_crashes_or_silently_drops_its_neighbours(junk):
    content = csv_bytes("PredictionString,image_id", "1 0.9 10 20 110 220,a.jpg", junk,
                        "0 0.25 5 5 6 6,b.jpg")
    preds = read_submission(content)
    keys = preds.image_keys.tolist()
    for line, key, box in GOOD_ROWS:
        if key in keys:   # its box is scored with its image (which a junk row may share)
            row = preds.image_pos == keys.index(key)
            found = np.column_stack([preds.labels[row], preds.scores[row], preds.boxes_xyxy[row]])
            if (found == box).all(axis=1).any():
                continue
        # only ever left out with an error naming its line
        assert told_about(preds, line), (junk, [str(p) for p in preds.problems])


def assert_same_predictions(a, b):
    for field in ("image_keys", "image_pos", "labels", "scores", "boxes_xyxy"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        assert getattr(a, field).dtype == getattr(b, field).dtype


class TestRoundTrip:
    def test_awkward_floats_round_trip_exactly(self):
        rng = np.random.default_rng(0)
        n = 500
        boxes = np.sort(rng.normal(300, 400, (n, 2, 2)), axis=2).transpose(0, 2, 1).reshape(n, 4)
        boxes[:5] = [[0.1, 0.2, 0.30000000000000004, 1e-7], [1, 2, 3, 4], [-0.5, -1e-12, 1e6, 1e6 + 0.1],
                     [5e-324, 1e-300, 1e300, 1.7976931348623157e308], [1023.9999999999999, 0, 1024, 1024]]
        boxes[:5, 3] = np.maximum(boxes[:5, 3], boxes[:5, 1] + 1)
        scores = rng.random(n)
        scores[:4] = [0.0, 1.0, 0.05, 1 / 3]
        from core.tables import Predictions
        preds = Predictions(image_keys=np.array(["a.jpg", "b b.jpg", "c,1.jpg", "empty.jpg"], dtype=object),
                            image_pos=rng.integers(0, 3, n), labels=rng.integers(0, 90, n), scores=scores,
                            boxes_xyxy=boxes, lines=np.zeros(4, np.int64))
        buf = io.StringIO()
        write_submission(preds, buf)
        back = read_submission(buf.getvalue().encode())
        assert back.problems == []
        assert back.image_keys.tolist() == preds.image_keys.tolist()
        order = np.argsort(preds.image_pos, kind="stable")   # the writer groups boxes by image
        np.testing.assert_array_equal(back.image_pos, preds.image_pos[order])
        np.testing.assert_array_equal(back.labels, preds.labels[order])
        np.testing.assert_array_equal(back.scores, preds.scores[order])
        np.testing.assert_array_equal(back.boxes_xyxy, preds.boxes_xyxy[order])
        assert buf.getvalue().splitlines()[4] == ",empty.jpg"   # images without boxes keep a row

    def test_whole_numbers_are_written_as_integers(self):
        preds = read_submission(csv_bytes("PredictionString,image_id", "3 1 0 13 174 244.5,a.jpg"))
        assert format_prediction_strings(preds) == ["3 1 0 13 174 244.5"]

    @pytest.mark.parametrize("gt, csv", [("fold3_gt.json", "fold3_deta_swinL.csv"),
                                          ("fold3_gt.json", "fold3_deta_swinL_hflip.csv"),
                                          ("test.json", "test_submission_cascade.csv")])
    def test_real_files_round_trip(self, gt, csv, tmp_path):
        dataset = load_coco(need(REAL_TRASH / gt))
        preds = read_submission(need(REAL_TRASH / csv), dataset=dataset)
        out = tmp_path / "out.csv"
        write_submission(preds, out)
        back = read_submission(out, dataset=dataset)
        assert_same_predictions(preds, back)
        again = io.StringIO()
        write_submission(back, again)
        assert again.getvalue() == out.read_text()   # writing is a fixed point after one pass


class TestRealFiles:
    @pytest.mark.parametrize("gt, csv, n_rows, n_boxes, n_outside", [
        ("fold3_gt.json", "fold3_deta_swinL.csv", 958, 41188, 2510),
        ("fold3_gt.json", "fold3_deta_swinL_hflip.csv", 958, 40989, 2512),
        ("test.json", "test_submission_cascade.csv", 4871, 25463, 0),
    ])
    def test_load_without_errors(self, gt, csv, n_rows, n_boxes, n_outside):
        dataset = load_coco(need(REAL_TRASH / gt))
        preds = read_submission(need(REAL_TRASH / csv), dataset=dataset)
        # boxes reaching outside the 1024 px image (DETA's, up to ~500 px) are one warning, kept as they are
        assert [p.message.split(" box(es)")[0] for p in preds.problems] == ([str(n_outside)] if n_outside else [])
        assert all(p.severity is Severity.WARNING for p in preds.problems)
        assert len(preds.image_keys) == n_rows
        assert len(preds) == n_boxes
        assert (preds.image_index_in(dataset) >= 0).all()

    def test_values_equal_a_plain_per_row_parse(self):
        path = need(REAL_TRASH / "fold3_deta_swinL_hflip.csv")
        preds = read_submission(path)
        df = pd.read_csv(path)
        table = np.concatenate([np.array([float(t) for t in s.split()]).reshape(-1, 6)
                                for s in df["PredictionString"] if isinstance(s, str)])
        np.testing.assert_array_equal(preds.labels, table[:, 0].astype(np.int64))
        np.testing.assert_array_equal(preds.scores, table[:, 1])
        np.testing.assert_array_equal(preds.boxes_xyxy, table[:, 2:])
        assert (preds.boxes_xyxy < 0).any() and (preds.boxes_xyxy > 1024).any()  # real out-of-image boxes

    def test_empty_row_of_the_real_submission(self):
        preds = read_submission(need(REAL_TRASH / "test_submission_cascade.csv"))
        pos = preds.image_keys.tolist().index("test/1497.jpg")
        assert preds.lines[pos] == 1499
        assert not (preds.image_pos == pos).any()

    def test_broken_copy_names_the_line_and_keeps_the_rest(self):
        lines = need(REAL_TRASH / "fold3_deta_swinL.csv").read_text().splitlines()
        lines[9] = lines[9].replace(" 0.", " O.", 1)     # line 10: a letter O for a zero
        preds = read_submission("\n".join(lines).encode(), dataset=load_coco(REAL_TRASH / "fold3_gt.json"))
        (error,) = (p for p in preds.problems if p.is_error)
        assert error.line == 10 and error.image_id == lines[9].rsplit(",", 1)[1]
        assert "line 10 box" in error.message and "'O." in error.message and "left out" in error.message
        assert len(preds.image_keys) == 958 and len(preds) == 41188 - 1   # that box only


# ------------------------------------------------------------------ the compiled number parser
TOKEN = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),                       # 17 digits: float()'s
    st.builds(lambda v, d: f"{v:.{d}f}", st.floats(-1e6, 1e6), st.integers(0, 9)),    # a detector's %.6f
    st.builds(lambda v, d, e: f"{v:.{d}{e}}", st.floats(-1e30, 1e30), st.integers(0, 12), st.sampled_from("eE")),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from(["-0", "+5", ".5", "5.", "007.50", "1e22", "1e23", "3e-22", "3e-23", "1e-0005", "0e999",
                     "9007199254740993", "123456789012345678", "1234567890123456789", "0.0000000000000000000001",
                     ".", "-", "1e", "1e+", "0x10", "inf", "-nan", "1_0", "abc", "1.2.3", "--1", "1e00001",
                     "1e+0022", "5e-99999999999999999999", "1e5x", "+", "2.5e-3"]),
)


def float_or_nan(token: str) -> float:
    try:
        return float(token)
    except ValueError:
        return float("nan")


class TestNumberParser:
    """core.csv_kernels.parse_numbers (both builds) and the reader around it, against float()."""

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.lists(TOKEN, max_size=12), max_size=8), st.sampled_from([" ", "  ", "\t", " \x0b", "\x1c"]))
    def test_every_token_as_float_parses_it(self, rows, space):
        from core import csv_kernels, kernel_build
        from core.submission import _parse_numbers

        strings = [space.join(tokens) for tokens in rows]
        expected = [float_or_nan(t) for s in strings for t in s.split()]
        data = " ".join(strings).encode()
        ends = np.cumsum([len(s) + 1 for s in strings], dtype=np.int64) - 1
        starts = ends - np.array([len(s) for s in strings], dtype=np.int64)
        for kernel in (csv_kernels.parse_numbers, kernel_build.kernel("parse_numbers")):
            values, counts, slow = kernel(np.frombuffer(data, np.uint8), starts, ends)
            assert counts.tolist() == [len(s.split()) for s in strings]
            fast = ~slow
            # bit-equal where the compiled path answers; the rest is flagged for float()
            assert values[fast].tobytes() == np.array(expected)[fast].tobytes()
            assert np.isnan(values[slow]).all()
        values, counts = _parse_numbers(strings)
        np.testing.assert_array_equal(values, expected)
        assert counts.tolist() == [len(s.split()) for s in strings]

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["a.jpg", "b.jpg", " c.jpg ", "", "nan"]),
                              st.lists(st.sampled_from(["1", "0.5", "3.25", "-2", "12", "x", "1e400", "NaN"]),
                                       max_size=14)), max_size=6),
           st.booleans(), st.sampled_from(["\n", "\r\n"]), st.booleans())
    def test_the_plain_reader_equals_the_general_one(self, rows, prediction_first, newline, blank):
        """Files the byte-level reader takes read exactly as the csv/str reader reads them."""
        from core import submission

        lines = [("PredictionString,image_id" if prediction_first else "image_id,PredictionString")]
        for image_id, tokens in rows:
            string = " ".join(tokens)
            lines.append(f"{string},{image_id}" if prediction_first else f"{image_id},{string}")
            if blank:
                lines.append("  ")
        data = (newline.join(lines) + newline).encode()
        fast = submission.read_submission(data, name="s.csv")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(submission, "_plain_rows", lambda data: None)
            general = submission.read_submission(data, name="s.csv")
        assert_same_predictions(fast, general)
        np.testing.assert_array_equal(fast.lines, general.lines)
        assert [str(p) for p in fast.problems] == [str(p) for p in general.problems]

    def test_the_competition_format_takes_the_plain_reader(self, monkeypatch):
        from core import submission

        taken = []
        original = submission._plain_rows
        monkeypatch.setattr(submission, "_plain_rows", lambda data: taken.append(original(data)) or taken[-1])
        preds = read_submission(need(REAL_TRASH / "fold3_deta_swinL.csv"))
        assert taken[0] is not None and len(preds) == 41188

    def test_rows_parsed_in_parts_on_threads_equal_one_pass(self, monkeypatch):
        import os

        from core import submission

        path = need(REAL_TRASH / "fold3_deta_swinL.csv")
        whole = read_submission(path)
        monkeypatch.setattr(submission, "_BYTES_PER_PART", 1000)               # ~7 rows per part
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(7)), raising=False)
        calls = []
        original = submission._parse_in_parts
        monkeypatch.setattr(submission, "_parse_in_parts",
                            lambda parse, *args: calls.append(parse) or original(lambda *a: calls.append(a) or parse(*a),
                                                                                 *args))
        parts = read_submission(path)
        assert len(calls) == 1 + 7                                             # the parser, then 7 parts
        assert_same_predictions(whole, parts)
        np.testing.assert_array_equal(whole.lines, parts.lines)
