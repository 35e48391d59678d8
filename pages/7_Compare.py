"""Compare models: metrics, per-class AP and error counts side by side; the images where one
model beats the other most, in a synchronised three-panel view (GT | A | B)."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.charts import iou_text
from core.compare import per_class_figure
from core.drawing import Panel, gt_layers, prediction_layers
from ui import state as S
from ui.agreement import agreement_section, compare_without_gt
from ui.catalog import bootstrap_section
from ui.prediction_sets import choose_prediction_sets, comparison_tables, data_for, pair_tables
from ui.sidebar import active_data, page_setup, score_slider
from ui.widgets import draw_image_panels, gt_rows, image_ref_for, outcome_legend, prediction_rows

TOP_IMAGES = 10  # images listed per direction


def _delta_colour(value) -> str:
    if pd.isna(value) or abs(value) < 1e-9:
        return ""
    return "color: #1a7f37" if value > 0 else "color: #cf222e"


def _styled(table: pd.DataFrame, deltas: list[str], number_format: str = "{:.4f}"):
    """Numbers formatted, Δ columns signed and green/red."""
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    styler = table.style.format(number_format, subset=[c for c in numeric if c not in deltas], na_rep="–")
    styler = styler.format("{:+.4f}" if "f}" in number_format else "{:+,}", subset=deltas, na_rep="–")
    return styler.map(_delta_colour, subset=deltas)


@st.fragment
def _image_view(data, per_image: pd.DataFrame, candidates: pd.DataFrame, sets, name_a: str,
                name_b: str) -> None:
    """GT | A | B of one listed image; a fragment, so its widgets rerun only this view."""
    labels = {row.file_name: f"{row.file_name}  (A − B {row.difference:+.3f})" for row in candidates.itertuples()}
    options = list(labels)
    view_controls = st.columns([3, 1, 1])
    image_key = view_controls[0].selectbox("Image", options, format_func=labels.get,
                                           **S.bind(S.COMPARE_IMAGE, options))
    color_by = view_controls[1].radio("Colour by", ["outcome", "class"], key="_compare_color_by", horizontal=True)
    show_labels = view_controls[2].toggle("Labels", value=True, key="_compare_labels")

    image_index = int(per_image.loc[per_image["file_name"] == image_key, "image_index"].iloc[0])
    by_label = {s.label: s for s in sets}
    no_boxes = pd.DataFrame(columns=["category_id", "score", "x1", "y1", "x2", "y2"])
    gts = gt_rows(replace(data, view=None), image_index, no_boxes).drop(columns=["hover_extra"])
    panels = [Panel("Ground truth", gt_layers(gts, color_by="class", class_names=data.class_names,
                                              class_colors=data.class_colors, with_labels=show_labels))]
    row = per_image.loc[per_image["image_index"] == image_index].iloc[0]
    for letter, name, ap50 in (("A", name_a, row["ap50_a"]), ("B", name_b, row["ap50_b"])):
        dets = prediction_rows(data_for(data, by_label[name]), image_key, image_index)
        title = f"{letter}: {name} · AP@{iou_text(data.iou_thr)} {ap50:.3f}" if pd.notna(ap50) else f"{letter}: {name}"
        panels.append(Panel(title, prediction_layers(dets, color_by=color_by, class_names=data.class_names,
                                                     class_colors=data.class_colors, with_labels=show_labels)))
    if color_by == "outcome":
        outcome_legend(kinds=("tp", "duplicate", "localization", "classification", "both", "background"))
    draw_image_panels(image_ref_for(data, image_key, image_index), panels, key="compare_panels")
    st.caption("Scroll to zoom, drag to pan: the three panels follow each other. Boxes below the score "
               "threshold are hidden.")


@st.fragment
def _at_threshold(data, sets) -> None:
    """Everything the score threshold changes; the slider is drawn from here, so a move reruns
    only this fragment (no sidebar, loading or set choice) and reads cached tables."""
    data = score_slider(data)
    tables = comparison_tables(data, sets)
    names = tables.comparison.names
    deltas = [c for c in tables.metrics.columns if c.startswith("Δ")]
    st.caption(f"Against **{data.gt_label}** · IoU threshold {data.iou_thr:.2f} · score threshold "
               f"{data.score_thr:.2f} (sidebar): the COCO rows use every box; the threshold rows, "
               "error counts and per-image AP drop boxes below the threshold.")

    # st.table, not st.dataframe: small tables, and a static table redraws at once after a
    # slider move where the data grid takes ~150 ms each (bench/bench_slider.py)
    st.subheader("Metrics")
    metrics = tables.metrics
    styled = _styled(metrics, deltas).format("{:,.0f}", subset=pd.IndexSlice[["boxes kept"], names])
    styled = styled.format("{:+,.0f}", subset=pd.IndexSlice[["boxes kept"], deltas])
    st.table(styled)

    iou = iou_text(data.iou_thr)  # the per-class and per-image APs are at the sidebar's IoU
    st.subheader(f"Per-class AP@{iou}")
    per_class = tables.per_class
    figure = per_class_figure(per_class, names).update_layout(yaxis_title=f"AP@{iou}")
    st.plotly_chart(figure, key="compare_per_class_chart", width="stretch")
    st.table(_styled(per_class.drop(columns=["category_id"]), deltas).format("{:,}", subset=["n_gt"]),
             hide_index=True)

    st.subheader("Error types")
    st.table(_styled(tables.error_counts, deltas, "{:,}"))
    st.caption("tp: correct boxes; the errors follow TIDE (classification, localization, both, "
               "duplicate, background); missed: ground-truth boxes no prediction found.")

    # --- per image: A against B ----------------------------------------------------------------
    st.subheader("Where one model beats the other")
    pair = st.session_state[S.COMPARE_PAIR]
    pick = st.columns(2)
    default_a = pair[0] if pair and pair[0] in names else names[0]
    name_a = pick[0].selectbox("Model A", names, index=names.index(default_a), key="_compare_a")
    others = [n for n in names if n != name_a]
    default_b = pair[1] if len(pair) == 2 and pair[1] in others else others[0]
    name_b = pick[1].selectbox("Model B", others, index=others.index(default_b), key="_compare_b")
    st.session_state[S.COMPARE_PAIR] = [name_a, name_b]

    per_image, a_wins, b_wins = pair_tables(data, sets, tables, name_a, name_b, TOP_IMAGES)
    shown_columns = {"file_name": "image", "n_gt": "GT", "ap50_a": f"AP@{iou} A", "ap50_b": f"AP@{iou} B",
                     "difference": "A − B", "n_tp_a": "TP A", "n_tp_b": "TP B", "n_fp_a": "FP A",
                     "n_fp_b": "FP B"}
    number_formats = {f"AP@{iou} A": "{:.3f}", f"AP@{iou} B": "{:.3f}", "A − B": "{:+.3f}"}
    lists = st.columns(2)
    for column, title, table in ((lists[0], f"A ({name_a}) beats B most", a_wins),
                                 (lists[1], f"B ({name_b}) beats A most", b_wins)):
        column.markdown(f"**{title}**")
        if len(table):
            shown = table[list(shown_columns)].rename(columns=shown_columns)
            column.table(shown.style.format(number_formats, na_rep="–"), hide_index=True)
        else:
            column.caption("No image.")
    difference = per_image["difference"]
    st.caption(f"Per-image AP@{iou} at score ≥ {data.score_thr:.2f}: {int((difference > 0).sum())} "
               f"images better with A, {int((difference < 0).sum())} better with B, "
               f"{int((difference == 0).sum())} equal. An image without ground truth counts AP 1 when "
               "a model puts no box on it.")
    evaluations = tables.comparison.evaluations  # is B − A real? (issue 14; every box, no threshold)
    bootstrap_section(evaluations[name_a], evaluations[name_b], name_a, name_b)

    candidates = pd.concat([a_wins, b_wins], ignore_index=True)
    if not len(candidates):
        st.info("The two models score the same on every image.")
        return
    _image_view(data, per_image, candidates, sets, name_a, name_b)


page_setup("Compare models", icon=":material/compare_arrows:")
data = active_data(score_slider_in_fragment=True)
st.title("Compare models")
if data.dataset is None or not data.has_gt_boxes:
    score_slider(data)  # the slider's slot waits for the fragment, which this page skips
    if data.dataset is None:
        st.info("Load a ground truth in the sidebar.")
    else:
        compare_without_gt(data)  # agreement between submissions, no ground truth needed
    st.stop()

sets = choose_prediction_sets(
    data, S.COMPARE_SETS, "Prediction sets to compare (the first is the reference)",
    help="Files in the dataset folder, uploads (sidebar) and sets made in the app (ensembles). "
         "Every Δ column is that model minus the first.")
empty = [s.label for s in sets if not len(s.predictions)]
if empty:
    st.info(f"No predicted boxes in {', '.join(empty)} (an empty submission): left out of the "
            "comparison.")
unmatched = [s.label for s in sets if s.evaluation is None and len(s.predictions)]
if unmatched:
    st.warning(f"No image of {', '.join(unmatched)} is in {data.gt_label}: left out of the comparison.")
sets = [s for s in sets if s.evaluation is not None]
if len(sets) < 2:
    score_slider(data)
    st.info("Choose at least two prediction sets on this dataset above.")
    st.stop()
_at_threshold(data, sets)
st.subheader("Agreement between the sets")
if st.toggle("Hold each set to the first one's confident boxes (as on a test set)", key="_compare_agree"):
    agreement_section(data, sets)
