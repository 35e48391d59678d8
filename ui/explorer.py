"""The explorer's image list, cached per (data, threshold, order, filters): a slider move back
to a value, or a prev/next click, costs nothing."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from core.browse import image_table, images_with, sort_images
from ui.sidebar import ActiveData


@dataclass(frozen=True)
class ImageList:
    """Sorted, filtered rows of core.browse.image_table; keys in order; key -> row position."""

    table: pd.DataFrame
    keys: list[str]
    positions: dict[str, int]


def _filter_sources(data: ActiveData):
    """(dets, gts) tables to filter images by class/outcome, at the score threshold."""
    if data.view is not None:
        return data.view.dets, data.view.gts
    gts = data.dataset.annotations if data.has_gt_boxes else None
    dets = None
    if data.predictions is not None and data.dataset is not None:
        preds = data.predictions
        keep = preds.scores >= data.score_thr
        dets = pd.DataFrame({"image_index": preds.image_index_in(data.dataset)[keep],
                             "category_id": preds.labels[keep]})
    return dets, gts


@st.cache_resource(max_entries=32, show_spinner=False)
def _image_list(dataset_key: str, pred_key: str, iou_thr: float, score_thr: float, order: str,
                class_ids: tuple | None, outcomes: tuple | None, _data: ActiveData) -> ImageList:
    per_image = _data.view.per_image if _data.view is not None else None
    table = image_table(_data.dataset, _data.predictions, score_thr, per_image)
    if class_ids is not None or outcomes is not None:
        dets, gts = _filter_sources(_data)
        wanted = images_with(dets, gts, list(class_ids) if class_ids else None,
                             list(outcomes) if outcomes else None)
        table = table[table["image_index"].isin(wanted)]
    table = sort_images(table, order).reset_index(drop=True)
    keys = table["key"].tolist()
    return ImageList(table, keys, {k: i for i, k in enumerate(keys)})


def image_list(data: ActiveData, order: str, class_ids: list | None, outcomes: list | None) -> ImageList:
    """The images the explorer browses, filtered and sorted (treat as read-only)."""
    return _image_list(data.dataset_key, data.predictions_key, round(data.iou_thr, 4),
                       round(data.score_thr, 4), order, tuple(class_ids) if class_ids else None,
                       tuple(outcomes) if outcomes else None, data)
