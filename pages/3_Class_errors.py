"""Class errors: for one class, crops of every error type, its PR curve and its confusions."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.charts import class_counts_figure, iou_text, pr_curve_figure
from core.outcomes import DISPLAY_ORDER, GTStatus, Outcome
from ui import state as S
from ui.charts import plotly_chart
from ui.loaders import crop_png, pil_image, threshold_curve
from ui.sidebar import active_data, page_setup, score_slider
from ui.widgets import need_evaluation
from ui.analysis import class_boxes, open_boxes_at_score

# Every outcome a box of the class can have, in display order (ignored boxes count for nothing)
OUTCOMES = [o.value for o in DISPLAY_ORDER if o is not Outcome.IGNORED]
CROP_PX = 180  # crops are drawn at this size (ui.loaders.crop_png)
OPEN_KEY, _GO_TO_EXPLORER = "_errors_open", "_errors_go_to_explorer"


def _open_in_explorer(keys: list[str]) -> None:
    """The pill clicked: that crop's image becomes the explorer's, unfiltered (switched to below)."""
    picked = st.session_state.get(OPEN_KEY)
    st.session_state[OPEN_KEY] = None  # a pill, not a state: coming back must not reopen it
    if picked is not None:
        st.session_state[S.EXPLORER_IMAGE] = keys[picked]
        st.session_state[S.EXPLORER_CLASSES] = []
        st.session_state[S.EXPLORER_OUTCOMES] = []
        st.session_state[_GO_TO_EXPLORER] = True


@st.fragment
def class_errors(data) -> None:
    """Everything the score threshold changes; the slider is drawn from here, so a move reruns
    only this fragment (not the sidebar's loading)."""
    if st.session_state.pop(_GO_TO_EXPLORER, False):
        st.switch_page("pages/2_Image_explorer.py")
    data = score_slider(data)
    if not need_evaluation(data):
        return
    ev, view, ds = data.evaluation, data.view, data.dataset
    names = data.class_names
    options = list(names.values())
    top = st.columns([2, 3, 1])
    chosen = top[0].selectbox("Class", options, **S.bind(S.ERRORS_CLASS, options))
    category_id = {v: k for k, v in names.items()}[chosen]
    # the class's boxes ordered once per evaluation: a move cuts them, no 490k-row filtering
    boxes = class_boxes(data, category_id)
    counts = view.class_outcome_counts(boxes)
    # opens on background boxes: usually the most frequent false positive
    outcome = top[1].radio("Error type", OUTCOMES, horizontal=True, key="_errors_kind",
                           index=OUTCOMES.index(Outcome.BACKGROUND.value),
                           format_func=lambda o: f"{Outcome(o).label} ({counts[o]:,})")
    n_show = top[2].number_input("Crops", min_value=6, max_value=120, value=24, step=6, key="_errors_n")
    st.caption({
        "background": "Predicted boxes on nothing of any class, highest score first.",
        "classification": f"Predicted as {chosen} on an object of another class, highest score first.",
        "localization": f"Right class, poorly placed box (IoU below {data.iou_thr:.2f}), highest score first.",
        "both": "Wrong class and poorly placed, highest score first.",
        "duplicate": "A second box on an object already matched by a higher-scoring box.",
        "missed": f"{chosen} objects no prediction found at the current threshold, largest first.",
        "tp": "Correct detections, highest score first (for comparison).",
    }[outcome])

    images = ds.images
    ann = ds.annotations
    ann_xyxy = ann[["x1", "y1", "x2", "y2"]].to_numpy()
    rows = view.class_outcome_rows(boxes, outcome, int(n_show))  # by score; missed: by area

    if not len(rows):
        st.info(f"No {Outcome(outcome).label.lower()} boxes for {chosen} at score ≥ {data.score_thr:.2f}.")
    crops, captions, keys = [], [], []
    for i, (_, item) in enumerate(rows.iterrows()):
        image_index = int(item["image_index"])
        key = str(images["file_name"].iloc[image_index])
        size = (float(images["width"].iloc[image_index]), float(images["height"].iloc[image_index]))
        if outcome == Outcome.MISSED.value:
            a = int(item["ann_index"])
            focus = ann_xyxy[a]
            outlines = [(focus, Outcome.MISSED.color)]
            caption = f"{i + 1} · {key} · area {ann['area'].iloc[a]:,.0f}"
        else:
            focus = np.array([item["x1"], item["y1"], item["x2"], item["y2"]], dtype=np.float64)
            outlines = []
            if int(item["gt_index"]) >= 0:  # the GT that decided the outcome, for context
                g = int(item["gt_index"])
                outlines.append((ann_xyxy[g], GTStatus.PLAIN.color))
            outlines.append((focus, Outcome(outcome).color))
            caption = f"{i + 1} · {key} · score {item['score']:.2f} · IoU {item['iou']:.2f}"
            if outcome in ("classification", "both") and int(item["gt_index"]) >= 0:
                caption += f" · true {data.class_name(ann['category_id'].iloc[int(item['gt_index'])])}"
        # cached: a threshold move redraws none
        crops.append(crop_png(data.root, key, size, focus, outlines, out_side=CROP_PX, upright=data.upright_pixels))
        captions.append(caption)
        keys.append(key)
    if crops:
        # One element for the whole grid, and one row of numbered links to the explorer: a
        # threshold move resends and redraws 2 elements, not 24 images and 24 buttons (~50-90 ms
        # per move in the browser, bench/bench_slider.py). PNG named: with "auto" Streamlit
        # re-encodes an opaque PNG as JPEG on every run.
        st.image(crops, caption=captions, width=CROP_PX, output_format="PNG")
        st.pills("Open in explorer", list(range(len(keys))), format_func=lambda i: str(i + 1),
                 key=OPEN_KEY, on_change=_open_in_explorer, args=(keys,),
                 help="The number under a crop: its image in the Image explorer, all classes and outcomes shown.")
    first_image = str(images["file_name"].iloc[int(rows["image_index"].iloc[0])]) if len(rows) else None
    if first_image is not None and pil_image(data.root, first_image, upright=data.upright_pixels) is None:
        st.caption("Image files are missing: crops show the boxes on a blank canvas.")

    st.divider()
    left, right = st.columns(2)
    with left:
        curve = threshold_curve(ev, category_id)  # cached with ev: not recomputed per run
        pr_figure = pr_curve_figure(curve, data.score_thr, title=f"Precision-recall: {chosen}")
        pr_figure.update_traces(mode="lines+markers", marker_size=4, selector=dict(name="PR"))  # clickable
        pr_pick = plotly_chart(pr_figure, key="class_pr", on_select="rerun")
        open_boxes_at_score(data, pr_pick, category_id, chosen)  # a point: the images of boxes at that score
        ap_row = ev.per_class[ev.per_class["category_id"] == category_id]
        if len(ap_row):  # AP at the sidebar's IoU from every box (COCO's AP@0.5 only when it is 0.5)
            every_box = ev.at(-np.inf).per_class
            ap_iou = float(every_box.loc[every_box["category_id"] == category_id, "ap50"].iloc[0])
            st.caption(f"AP@{iou_text(data.iou_thr)} {ap_iou:.4f} · AP@[.5:.95] {ap_row['ap'].iloc[0]:.4f} · "
                       f"{int(ap_row['n_gt'].iloc[0]):,} GT boxes")
    with right:
        confusion = view.confusion
        as_other = confusion.loc[chosen].drop(labels=[chosen], errors="ignore")
        from_other = confusion[chosen].drop(labels=[chosen], errors="ignore")
        confused = pd.DataFrame({f"{chosen} predicted as …": as_other,
                                 f"… predicted as {chosen}": from_other}).fillna(0).astype(int)
        confused = confused[(confused.sum(axis=1) > 0)].sort_values(
            f"{chosen} predicted as …", ascending=False)
        plotly_chart(class_counts_figure(
            list(as_other.index), as_other.to_numpy(), ["#ff7f0e"] * len(as_other),
            title=f"What {chosen} objects were predicted as (background = no box of any class)"),
            key="class_confused")
        st.caption(f"Boxes of any class claim a {chosen} object here: its background bar "
                   f"({int(as_other.get('background', 0)):,}) counts the objects no box found, while Missed "
                   f"GT ({counts['missed']:,}) counts those no {chosen} box found.")
        st.table(confused)  # static: the data grid redraws ~150 ms after every slider move


page_setup("Class errors")
data = active_data(score_slider_in_fragment=True)
st.title("Class errors")
class_errors(data)
