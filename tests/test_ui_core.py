"""The dashboard's pure helpers in core: colours, figures, image list, folder scan, image paths."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from core.browse import find_image, image_table, images_with, sort_images
from core.colors import class_colors, palette, text_color_on
from core.drawing import (BoxLayer, Panel, crop_region, gt_layers, panels_figure,
                          prediction_layers, render_crop)
from core.images import resolve_image_path
from core.folder_scan import default_predictions, json_kind, scan_folder
from core.tables import Dataset, Predictions
from core.thresholds import PredictionView

from tests.conftest import EXTERNAL, REAL_TRASH, need


def _dataset() -> Dataset:
    images = pd.DataFrame({"id": [10, 11, 12], "file_name": ["a.jpg", "b.jpg", "c.jpg"],
                           "width": [100, 100, 200], "height": [50, 50, 100]})
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 2, 2]], dtype=np.float64)
    annotations = pd.DataFrame({
        "id": [0, 1, 2], "image_index": [0, 0, 2], "image_id": [10, 10, 12], "category_id": [1, 3, 1],
        "x": boxes[:, 0], "y": boxes[:, 1], "w": boxes[:, 2] - boxes[:, 0], "h": boxes[:, 3] - boxes[:, 1],
        "x1": boxes[:, 0], "y1": boxes[:, 1], "x2": boxes[:, 2], "y2": boxes[:, 3],
        "area": [100.0, 225.0, 1.0], "iscrowd": [0, 0, 1]})
    categories = pd.DataFrame({"id": [1, 3], "name": ["cat", "dog"]})
    return Dataset(images, annotations, categories)


def _predictions() -> Predictions:
    return Predictions(
        image_keys=np.array(["a.jpg", "test/x.jpg"], dtype=object),
        image_pos=np.array([0, 0, 1]), labels=np.array([1, 3, 1]),
        scores=np.array([0.9, 0.04, 0.5]),
        boxes_xyxy=np.array([[0, 0, 10, 10], [5, 5, 20, 20], [3, 3, 30, 40]], dtype=np.float64),
        lines=np.array([2, 3]))


class TestColors:
    def test_forty_classes_get_distinct_colours(self):
        colours = palette(45)
        assert len(set(colours)) == 45
        assert all(len(c) == 7 and c.startswith("#") for c in colours)

    def test_colours_follow_sorted_position_not_id(self):
        assert class_colors([90, 1, 5]) == dict(zip([1, 5, 90], palette(3)))

    def test_text_colour_contrasts(self):
        assert text_color_on("#ffffff") == "#000000"
        assert text_color_on("#000075") == "#ffffff"


class TestPanelsFigure:
    def test_two_panels_share_zoom_and_show_image(self):
        layer = BoxLayer("TP", "#00ff00", [[0, 0, 10, 10], [5, 5, 8, 9]], labels=["cat 0.90", ""],
                         hovers=["<b>cat</b>", "<b>cat</b>"])
        fig = panels_figure([Panel("GT", [layer]), Panel("Pred", [layer])], 100, 50,
                            image_uri="data:image/jpeg;base64,xx")
        assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis2.matches == "y"
        assert tuple(fig.layout.yaxis.range) == (50, 0)  # y points down, like pixels
        assert len(fig.layout.images) == 2
        outlines = [t for t in fig.data if t.mode == "lines"]
        assert len(outlines) == 2 and sum(t.showlegend for t in outlines) == 1
        xs = np.asarray(outlines[0].x, dtype=float)
        np.testing.assert_array_equal(xs[:5], [0, 10, 10, 0, 0])
        points = [t for t in fig.data if t.mode != "lines"]
        assert [list(t.text[:2]) for t in points] == [["cat 0.90", ""]] * 2  # label per box
        assert list(points[0].hovertext[:2]) == ["<b>cat</b>", "<b>cat</b>"]

    def test_missing_image_draws_blank_canvas_with_notice(self):
        fig = panels_figure([Panel("GT")], 640, 480, image_uri=None, missing_notice="missing")
        assert len(fig.layout.images) == 0
        assert any(a.text == "missing" for a in fig.layout.annotations)
        assert fig.layout.shapes[0].x1 == 640 and fig.layout.shapes[0].y1 == 480

    def test_layer_checks_lengths(self):
        with pytest.raises(ValueError, match="labels"):
            BoxLayer("x", "#000000", [[0, 0, 1, 1]], labels=["a", "b"])

    def test_prediction_layers_group_by_outcome(self):
        dets = pd.DataFrame({"category_id": [1, 3, 1], "score": [0.9, 0.5, 0.3],
                             "x1": [0, 1, 2], "y1": [0, 1, 2], "x2": [5, 6, 7], "y2": [5, 6, 7],
                             "outcome": ["tp", "background", "tp"], "iou": [0.8, 0.0, 0.6]})
        layers = prediction_layers(dets, color_by="outcome", class_names={1: "cat", 3: "dog"},
                                   class_colors={1: "#111111", 3: "#222222"})
        assert [layer.name for layer in layers] == ["TP", "Background"]
        assert layers[0].labels == ["cat 0.90", "cat 0.30"]
        assert "IoU 0.80" in layers[0].hovers[0] and "score 0.900" in layers[0].hovers[0]
        by_class = prediction_layers(dets, color_by="class", class_names={1: "cat", 3: "dog"},
                                     class_colors={1: "#111111", 3: "#222222"})
        assert [(layer.name, layer.color) for layer in by_class] == [("cat", "#111111"), ("dog", "#222222")]

    def test_gt_layers_draw_crowd_distinctly(self):
        gts = pd.DataFrame({"category_id": [1, 1], "x1": [0, 1], "y1": [0, 1], "x2": [5, 6],
                            "y2": [5, 6], "status": ["missed", "crowd"]})
        layers = gt_layers(gts, color_by="class", class_names={1: "cat"}, class_colors={1: "#111111"})
        crowd = [layer for layer in layers if layer.name == "cat (crowd)"][0]
        assert crowd.dash == "dot" and crowd.color != "#111111"
        by_outcome = gt_layers(gts, color_by="outcome", class_names={1: "cat"}, class_colors={})
        assert {layer.dash for layer in by_outcome} == {"dash", "dot"}


class TestCrops:
    def test_crop_region_pads_and_clips(self):
        assert crop_region([10, 10, 30, 30], 100, 100, pad_frac=0.5, min_side=0) == (0, 0, 40, 40)
        left, top, right, bottom = crop_region([90, 90, 99, 99], 100, 100, min_side=48)
        assert right <= 100 and bottom <= 100 and left >= 0 and right - left >= 24

    def test_render_crop_without_image_is_blank_with_box(self):
        crop = render_crop(None, (200, 100), [50, 20, 150, 80], [([50, 20, 150, 80], "#ff0000")],
                           out_side=100)
        assert max(crop.size) == 100
        pixels = np.asarray(crop)
        assert (pixels == [255, 0, 0]).all(axis=-1).any()

    def test_render_crop_of_real_image(self):
        image = Image.new("RGB", (64, 64), "#00ff00")
        crop = render_crop(image, (64, 64), [10, 10, 20, 20], [], out_side=60)
        assert np.asarray(crop)[5, 5].tolist() == [0, 255, 0]


class TestImageList:
    def test_rows_for_gt_images_and_prediction_only_images(self):
        table = image_table(_dataset(), PredictionView(_predictions(), 0.05, _dataset()))
        assert table["key"].tolist() == ["a.jpg", "b.jpg", "c.jpg", "test/x.jpg"]
        assert table["image_index"].tolist() == [0, 1, 2, -1]
        assert table["n_gt"].tolist()[:3] == [2, 0, 1] and np.isnan(table["n_gt"].iloc[3])
        assert table["n_pred"].tolist() == [1, 0, 0, 1]  # the 0.04 box is below the threshold

    def test_per_image_stats_and_sort(self):
        per_image = pd.DataFrame({"image_index": [0, 1, 2], "n_pred": [2, 0, 0], "n_tp": [1, 0, 0],
                                  "n_fp": [1, 0, 0], "n_missed": [1, 0, 1], "ap50": [0.5, np.nan, 0.0]})
        table = image_table(_dataset(), None, per_image)
        assert sort_images(table, "most errors")["key"].tolist() == ["a.jpg", "c.jpg", "b.jpg"]
        assert sort_images(table, "lowest image AP")["key"].tolist() == ["c.jpg", "a.jpg", "b.jpg"]
        with pytest.raises(ValueError, match="Invalid sort order"):
            sort_images(table, "random")

    def test_per_image_in_another_order_or_a_subset_lines_up_by_image_index(self):
        per_image = pd.DataFrame({"image_index": [2, 0], "n_pred": [5, 2], "n_tp": [1, 1],
                                  "n_fp": [4, 1], "n_missed": [0, 1], "ap50": [0.25, 0.5]})
        table = image_table(_dataset(), None, per_image)
        expected = per_image.set_index("image_index").reindex([0, 1, 2])  # pandas' alignment
        for column in ("n_pred", "n_tp", "n_fp", "n_missed", "ap50"):
            np.testing.assert_array_equal(table[column].to_numpy(), expected[column].to_numpy(float))

    def test_filters_and_find(self):
        dets = pd.DataFrame({"image_index": [0, 2], "category_id": [1, 3], "outcome": ["tp", "background"]})
        gts = pd.DataFrame({"image_index": [0, 1], "category_id": [1, 3], "missed": [False, True]})
        assert images_with(dets, gts, [3], None).tolist() == [1, 2]
        assert images_with(dets, gts, None, ["missed"]).tolist() == [1]
        assert images_with(dets, gts, [1], ["tp"]).tolist() == [0]
        table = image_table(_dataset(), PredictionView(_predictions(), 0.05, _dataset()))
        assert find_image(table, "x.jpg") == 3
        assert find_image(table, "12") == 2
        assert find_image(table, "nope") is None
        # issue 11: the jump box found "0017.jpg" but not "0017"; an id still wins over a name
        assert find_image(table, "x") == 3 and find_image(table, "c") == find_image(table, "c.jpg")


class TestSources:
    def test_json_kind_from_content(self, tmp_path):
        (tmp_path / "gt.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
        (tmp_path / "results.json").write_text("[]")
        (tmp_path / "dict_results.json").write_text(json.dumps({"annotations": []}))
        (tmp_path / "other.json").write_text("{}")
        assert json_kind(tmp_path / "gt.json") == "gt"
        assert json_kind(tmp_path / "results.json") == "results"
        assert json_kind(tmp_path / "dict_results.json") == "results"
        assert json_kind(tmp_path / "other.json") == "unknown"

    def test_scan_real_trash(self):
        scan = scan_folder(need(REAL_TRASH))
        assert scan.ground_truths == ["fold3_gt.json", "test.json"]
        assert "fold3_deta_swinL.csv" in scan.predictions
        assert default_predictions(scan.root, scan.predictions, ["train/0056.jpg", "x"]) \
            == "fold3_deta_swinL.csv"
        assert default_predictions(scan.root, scan.predictions, ["test/0000.jpg"]) \
            == "test_submission_cascade.csv"

    def test_scan_voc_and_missing_folder(self, tmp_path):
        scan = scan_folder(need(EXTERNAL / "voc-cartucho"))
        assert scan.ground_truths == ["gt.json"] and scan.predictions == ["detections.csv"]
        assert "does not exist" in scan_folder(tmp_path / "nope").problem


class TestImagePaths:
    def test_escape_and_absolute_paths_are_refused(self, tmp_path):
        (tmp_path / "root").mkdir()
        (tmp_path / "secret.jpg").write_bytes(b"x")
        escaped = resolve_image_path(tmp_path / "root", "../secret.jpg")
        assert not escaped.found and "outside the dataset folder" in escaped.message
        absolute = resolve_image_path(tmp_path / "root", str(tmp_path / "secret.jpg"))
        assert not absolute.found and "absolute" in absolute.message

    def test_missing_and_found(self, tmp_path):
        Image.new("RGB", (4, 4)).save(tmp_path / "a.jpg")
        assert resolve_image_path(tmp_path, "a.jpg").found
        missing = resolve_image_path(tmp_path, "train/b.jpg")
        assert not missing.found and "not found" in missing.message


class TestAggregatedCharts:
    """Charts at competition scale send bins and box statistics to the browser, not raw values."""

    def test_histogram_counts_match_numpy_and_drop_non_finite(self):
        from core.charts import histogram_counts, histogram_figure

        values = np.array([0.05, 0.1, 0.1, 0.5, 0.99, np.nan, np.inf])
        edges, counts = histogram_counts(values, nbins=4)
        expected, expected_edges = np.histogram(values[:5], bins=4)
        np.testing.assert_array_equal(counts, expected)
        np.testing.assert_allclose(edges, expected_edges)
        figure = histogram_figure(np.random.default_rng(0).random(100_000), title="t", x_title="x")
        assert len(figure.data[0].y) == 50 and int(np.sum(figure.data[0].y)) == 100_000

    def test_integer_histogram_has_one_bar_per_whole_number_and_no_empty_gaps(self):
        from core.charts import histogram_counts, histogram_figure

        # boxes per image 1..8 (every image has a box), every count present: the old 9 bins
        # from 1 to 8 are 7/9 wide, so one holds no whole number and shows as an empty bar
        values = np.array([1, 1, 2, 3, 3, 3, 4, 5, 6, 7, 7, 8])
        _, linear_counts = histogram_counts(values, nbins=9)
        assert (linear_counts == 0).sum() == 1
        edges, counts = histogram_counts(values, nbins=60, integer=True)
        np.testing.assert_allclose(edges, np.arange(0.5, 9.0))
        assert counts.tolist() == [2, 1, 3, 1, 1, 1, 2, 1]
        figure = histogram_figure(values, title="t", x_title="x", nbins=60, integer=True)
        assert list(figure.data[0].x) == list(range(1, 9))
        assert list(figure.data[0].customdata) == [str(k) for k in range(1, 9)]

    def test_integer_histogram_groups_whole_numbers_when_the_range_exceeds_nbins(self):
        from core.charts import histogram_counts, histogram_figure

        values = np.arange(3, 103)  # 100 whole numbers into at most 40 bins: width 3
        edges, counts = histogram_counts(values, nbins=40, integer=True)
        np.testing.assert_allclose(np.diff(edges), 3.0)
        assert edges[0] == 2.5 and edges[-1] >= 102.5 and len(counts) == 34
        assert counts.sum() == 100 and counts[:-1].tolist() == [3] * 33 and counts[-1] == 1
        figure = histogram_figure(values, title="t", x_title="x", nbins=40, integer=True)
        assert figure.data[0].customdata[0] == "3 – 5" and figure.data[0].customdata[-1] == "102 – 104"

    def test_log_histogram_uses_positive_values_on_log_spaced_bins(self):
        from core.charts import histogram_counts

        edges, counts = histogram_counts([0.0, -1.0, 1.0, 10.0, 100.0], nbins=2, log_x=True)
        np.testing.assert_allclose(edges, [1.0, 10.0, 100.0])
        assert counts.tolist() == [1, 2]

    def test_box_stats_are_tukeys_like_plotly(self):
        from core.charts import box_stats, per_class_box_figure

        values = np.r_[np.arange(1.0, 10.0), 100.0]  # 100 is an outlier: beyond q3 + 1.5 IQR
        stats = box_stats(values)
        q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
        assert (stats["q1"], stats["median"], stats["q3"]) == (q1, median, q3)
        assert stats["lowerfence"] == 1.0 and stats["upperfence"] == 9.0
        frame = pd.DataFrame({"category_id": [1] * 10 + [3] * 2, "v": np.r_[values, 2.0, 4.0]})
        figure = per_class_box_figure(frame, "v", names={1: "cat", 3: "dog"}, colors={}, title="t",
                                      y_title="v")
        assert [box.x[0] for box in figure.data] == ["cat", "dog"]
        assert figure.data[1].median == (3.0,) and figure.data[0].y is None  # no raw values


class TestOutcomeTable:
    def _tables(self):
        dets = pd.DataFrame({"image_index": [0, 0, 2], "category_id": [1, 3, 1],
                             "score": [0.9, 0.5, 0.3], "outcome": ["tp", "background", "duplicate"],
                             "iou": [0.9, 0.0, 0.6], "x1": [0.0] * 3, "y1": [0.0] * 3,
                             "x2": [5.0] * 3, "y2": [5.0] * 3})
        gts = pd.DataFrame({"ann_index": [0, 1, 2], "missed": [False, True, True]})
        return dets, gts

    def test_preview_is_the_head_of_the_whole_table(self):
        from core.export import outcome_table

        dets, gts = self._tables()
        whole = outcome_table(_dataset(), dets, gts)
        assert len(whole) == 5 and whole["outcome"].tolist()[-2:] == ["missed", "missed"]
        for limit in (0, 2, 4, 10):
            pd.testing.assert_frame_equal(outcome_table(_dataset(), dets, gts, limit=limit),
                                          whole.head(limit).reset_index(drop=True),
                                          check_dtype=False)  # an empty column has no str dtype

    def test_counts_equal_the_tables_value_counts(self):
        from core.export import outcome_counts, outcome_table

        dets, gts = self._tables()
        counts = outcome_counts(dets, gts)
        assert counts.to_dict() == outcome_table(_dataset(), dets, gts)["outcome"].value_counts().to_dict()
        assert counts.index[0] == "missed"
