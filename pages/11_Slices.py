"""Slices: the subsets (box size, aspect ratio, position, objects and classes per image, class
pairs) a model does worst on, at the sidebar's thresholds; TIDE dAP per class."""
from __future__ import annotations

import streamlit as st

from core.analysis_charts import analyze_figure, slice_bars_figure, tide_heatmap_figure
from core.coco_analyze import AREAS
from core.outcomes import ERROR_TYPES
from ui import analysis as A
from ui.charts import plotly_chart
from ui.sidebar import active_data, page_setup, score_slider
from ui.widgets import need_evaluation, static_table

page_setup("Slices")
data = active_data(score_slider_in_fragment=True)
st.title("Slices")
if not need_evaluation(data):
    st.stop()


@st.fragment
def slices(data) -> None:
    """The score slider and everything it changes; a move reruns only this (as the explorer's)."""
    data = score_slider(data)
    pixels = st.toggle("Brightness and contrast slices (reads every image once)", key="_slices_pixels",
                       disabled=data.root is None, help="Mean luminance and its spread of each image, in thirds")
    index = A.slice_index(data, with_pixels=pixels and data.root is not None)
    st.caption(f"**{data.predictions_label}** against **{data.gt_label}** · IoU {data.iou_thr:.2f} · score ≥ "
               f"{data.score_thr:.2f}. A box slice scores as pycocotools with an areaRng (ground truth outside "
               "it ignored, and predictions matching it or lying outside it unmatched); an image slice as "
               "pycocotools on those images only. AP@IoU and AP@[.5:.95] over the classes with ground truth "
               "in the slice; dAP: TIDE's gain per error type inside the slice.")
    controls = st.columns([3, 1, 2])
    hidden = controls[0].multiselect("Hide dimensions", index.dimensions, key="_slices_hide",
                                     placeholder="every dimension shown")
    min_boxes = int(controls[1].number_input("Fewer GT boxes = tiny", min_value=1, value=30, step=5,
                                             key="_slices_min_boxes"))
    query = controls[2].text_input("Search slices", key="_slices_search", placeholder="e.g. small, Paper")
    table = index.table(data.score_thr, min_boxes=min_boxes)
    whole = index.whole(data.score_thr)
    table = table[~table["dimension"].isin(hidden)]
    if query:
        table = table[table["slice"].str.contains(query, case=False, regex=False)
                      | table["dimension"].str.contains(query, case=False, regex=False)]
    row = st.columns(3)
    row[0].metric(f"AP@{data.iou_thr:.2f}, all boxes", f"{whole['ap50']:.4f}")
    row[1].metric("AP@[.5:.95], all boxes", f"{whole['ap']:.4f}")
    worst = table[~table["tiny"]].head(1)
    if len(worst):
        row[2].metric("Worst slice", f"{worst['slice'].iloc[0]}", delta=f"{worst['delta_ap50'].iloc[0]:+.3f} AP")
    if table.empty:
        st.info("No slice left: show more dimensions or clear the search above.")
        return

    chosen = None
    # the bar chart and the clickable grid cost a browser redraw on every threshold move (the
    # chart ~0.5 s, the grid ~0.1 s): on request; the static table stays under 300 ms
    clickable = controls[0].toggle("Click to open: bar chart of ΔAP and a selectable table", key="_slices_bars")
    if clickable:
        event = plotly_chart(slice_bars_figure(table, whole["ap50"], data.iou_thr), key="slice_bars",
                             on_select="rerun")
        points = A.selected_points(event)
        if points and len(A.custom_data(points[0].get("customdata"))) >= 2:
            chosen = tuple(A.custom_data(points[0]["customdata"])[:2])
    dap_columns = {f"dap_{e.value}": f"dAP {e.short_name}" for e in ERROR_TYPES}
    shown = table.rename(columns={"slice": "slice", "n_gt": "GT boxes", "n_pred": "predictions",
                                  "n_images": "images", "ap50": f"AP@{data.iou_thr:.2f}", "ap": "AP",
                                  "delta_ap50": "Δ vs all", **dap_columns}).drop(columns=["kind"])
    ap_name = f"AP@{data.iou_thr:.2f}"
    first = ["dimension", "slice", "GT boxes", "predictions", "images", ap_name, "Δ vs all", "AP", "recall"]
    shown = shown[first + [c for c in shown.columns if c not in first]]
    greyed = shown.style.apply(lambda r: ["color: #aaaaaa" if r["tiny"] else "" for _ in r], axis=1)
    if not clickable:
        static_table(greyed.format({c: "{:.3f}" for c in [ap_name, "AP", "recall", "Δ vs all", *dap_columns.values()]},
                                   na_rep="–"), name="slices", hide_index=True)
    grid = None if not clickable else st.dataframe(
        greyed, hide_index=True, width="stretch", key="slice_table", on_select="rerun", selection_mode="single-row",
        column_config={**{c: st.column_config.NumberColumn(format="%.3f") for c in
                          ["AP", "recall", "Δ vs all", *dap_columns.values()]},
                       ap_name: st.column_config.ProgressColumn(format="%.3f", min_value=0, max_value=1)})
    rows = A.selected_rows(grid)
    if rows:
        chosen = (table["dimension"].iloc[rows[0]], table["slice"].iloc[rows[0]])
    st.caption("With 'Click to open' on, a bar or a row opens that slice's images in the explorer (or pick "
               "it below). Grey: fewer ground-truth boxes than the limit above, "
               "ranked last. Δ vs all: the slice's AP minus the whole set's, at the current thresholds.")

    if chosen is not None:  # a bar or a row clicked: open it (its selection ends with the page switch)
        A.open_images_in_explorer(data, index.images_of(*chosen), f"slice {chosen[0]} · {chosen[1]}")
    labels = [f"{d} · {s}" for d, s in zip(table["dimension"], table["slice"])]
    pick = st.columns([3, 1])
    label = pick[0].selectbox("Slice to open", labels, key="_slices_open")
    dimension, name = table.iloc[labels.index(label)][["dimension", "slice"]]
    images = index.images_of(dimension, name)
    if pick[1].button(f"Open its {len(images):,} images in the explorer", key="_slices_to_explorer",
                      disabled=not len(images), width="stretch"):
        A.open_images_in_explorer(data, images, f"slice {label}")


slices(data)

st.subheader("TIDE dAP per class")
tide = A.tide_per_class(data)
tide = tide.assign(total=tide[[e.value for e in ERROR_TYPES]].sum(axis=1))
top = A.search_and_top(tide[tide["n_gt"] > 0], key="_tide_classes", sort_by="total")
plotly_chart(tide_heatmap_figure(top), key="tide_heatmap")
picked = st.dataframe(
    top.rename(columns={e.value: e.label for e in ERROR_TYPES}),
    hide_index=True, width="stretch", key="tide_table", on_select="rerun", selection_mode="single-row",
    column_config={c: st.column_config.NumberColumn(format="%.4f") for c in
                   ["ap", "total", *(e.label for e in ERROR_TYPES)]})
st.caption("Each class's AP at the IoU gained by fixing every error of a type (the whole set's fixes: "
           "a fixed classification error raises the AP of its true class). Select a row to see that "
           "class's boxes of its costliest error type in Class errors.")
chosen_rows = A.selected_rows(picked)
if chosen_rows:
    hit = top.iloc[chosen_rows[0]]
    costliest = max((e.value for e in ERROR_TYPES), key=lambda e: hit[e])
    A.open_class_errors(str(hit["name"]), costliest)

st.subheader("COCO analyze() breakdown")
result = A.coco_analyze(data)
cells = st.columns([3, 2])
names = ["all classes"] + [str(n) for n in result.names]
target = cells[0].selectbox("Class", names, key="_analyze_class")
area = cells[1].radio("Area", AREAS, horizontal=True, key="_analyze_area")
cid = None if target == "all classes" else int(result.category_ids[result.names.index(target)])
plotly_chart(analyze_figure(result.curves(cid, area), result.ap(cid, area), f"{target} · area {area}"),
             key="analyze")
st.caption("As MMDetection's coco_error_analysis.py: C75, C50 = COCO AP at IoU .75/.5; Loc = IoU .1; "
           "Sim = confusions within a supercategory forgiven" + ("" if result.has_sim else
           " (no supercategories in this ground truth: Sim equals Oth)") + "; Oth = every class confusion "
           "forgiven; BG = background false positives removed; FN = every object found. Classes without "
           "ground truth count 0 in 'all classes', as in that script.")
