"""Image explorer: ground truth and predictions of one image side by side, coloured by outcome."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.browse import NO_GT_SORT_ORDERS, SORT_ORDERS, box_table, only_shown
from core.charts import iou_text
from core.outcomes import OUTCOME_CHOICES, OUTCOME_LABELS
from ui import state as S
from ui.explorer import disagreement_source, image_list, navigation
from ui.sidebar import ActiveData, active_data, page_setup, score_slider
from ui.widgets import boxes_of, draw_image_panels, image_panels, image_ref_for, outcome_legend


def _filters(data: ActiveData):
    """The list's order, class and outcome filters and the drawing options (widgets in a row)."""
    names = data.class_names
    name_to_id = {v: k for k, v in names.items()}
    controls = st.columns([1.2, 2, 2, 1, 0.8])
    orders = SORT_ORDERS if data.has_gt_boxes else NO_GT_SORT_ORDERS  # no errors to count on a test set
    order = controls[0].selectbox("Sort images by", orders, **S.bind(S.EXPLORER_SORT, orders))
    class_filter = controls[1].multiselect("Classes", list(names.values()), placeholder="all classes",
                                           **S.bind(S.EXPLORER_CLASSES, list(names.values())))
    outcome_filter = []
    if data.view is not None:
        outcome_filter = controls[2].multiselect(
            "Outcomes", OUTCOME_CHOICES, format_func=lambda o: OUTCOME_LABELS[o],
            placeholder="all outcomes", **S.bind(S.EXPLORER_OUTCOMES, OUTCOME_CHOICES))
    else:  # outcomes (TP, FP kinds, missed) exist only against ground-truth boxes
        controls[2].caption("Outcomes need ground-truth boxes and predictions on them.")
    colourings = ["outcome", "class"] if data.view is not None else ["class"]
    color_by = controls[3].radio("Colour by", colourings, horizontal=False,
                                 **S.bind(S.EXPLORER_COLOR_BY, colourings))
    show_labels = controls[4].toggle("Labels", **S.bind(S.EXPLORER_LABELS))
    class_ids = [name_to_id[n] for n in class_filter] or None
    return order, class_ids, list(outcome_filter) or None, color_by, show_labels


def _facts(data: ActiveData, row, position: int, n_images: int) -> str:
    facts = [f"`{row['key']}`", f"{position + 1} / {n_images:,}"]
    if row["image_index"] < 0:
        facts.append("not in the ground truth: predictions only")
    elif data.has_gt_boxes:
        facts.append(f"{int(row['n_gt'])} GT boxes")
    if np.isfinite(row["n_pred"]):
        facts.append(f"{int(row['n_pred'])} predictions ≥ {data.score_thr:.2f}")
    if not data.has_gt_boxes and np.isfinite(row["top_score"]):
        facts.append(f"top score {row['top_score']:.2f}")
    if "disagreement" in row and np.isfinite(row["disagreement"]):
        facts.append(f"{int(row['disagreement'])} boxes disagree")
    if data.view is not None and row["image_index"] >= 0:
        facts.append(f"{int(row['n_tp'])} TP · {int(row['n_fp'])} FP · {int(row['n_missed'])} missed")
        if np.isfinite(row["ap50"]):
            facts.append(f"image AP@{iou_text(data.iou_thr)} {row['ap50']:.3f}")
    return " · ".join(facts)


@st.fragment
def explorer(data: ActiveData, filters: tuple | None) -> None:
    """The score slider and all it changes: the list, navigation, panels and box table. A move
    reruns only this function, not the sidebar's loading (the slider is drawn from here) nor the
    filters (`_filters`' values, drawn above it: a change there reruns the page)."""
    data = score_slider(data)
    if filters is None:
        st.info("Load a ground truth or predictions in the sidebar.")
        return
    order, class_ids, outcomes, color_by, show_labels = filters
    second = disagreement = None
    if order == "most disagreement":
        second, disagreement = disagreement_source(data)
        order = order if disagreement is not None else "most boxes"
    subset = st.session_state.get(S.EXPLORER_SUBSET)
    if subset:
        note = st.columns([5, 1])
        note[0].info(f"Showing the {len(subset[1]):,} images of {subset[0]} only.")
        note[1].button("Show all images", key="_explorer_clear_subset", on_click=S.set_value,
                       args=(S.EXPLORER_SUBSET, None))
    listing = image_list(data, order, class_ids, outcomes, second, disagreement)
    if not len(listing.table):
        st.warning("No image matches the class and outcome filters; clear them above.")
        return
    position, facts_cell = navigation(listing)
    row = listing.table.iloc[position]
    key, image_index = str(row["key"]), int(row["image_index"])
    facts_cell.markdown(_facts(data, row, position, len(listing.keys)))

    dets, gts = only_shown(*boxes_of(data, key, image_index), class_ids, outcomes)
    effective_color = color_by if data.view is not None else "class"
    if effective_color == "outcome":
        outcome_legend()
    st.caption("Scroll to zoom, drag to pan: both panels follow. Hover a box (centre or label "
               "corner) for its class, score, IoU and outcome. Click a legend entry to hide it.")
    # the box table is drawn by the panels' own page: a slider move redraws one element
    draw_image_panels(image_ref_for(data, key, image_index),
                      image_panels(data, gts, dets, color_by=effective_color, show_labels=show_labels),
                      key="explorer_panels", boxes=box_table(gts, dets, data.class_names))


page_setup("Image explorer")
data = active_data(score_slider_in_fragment=True)
st.title("Image explorer")
explorer(data, _filters(data) if data.dataset is not None or data.predictions is not None else None)
