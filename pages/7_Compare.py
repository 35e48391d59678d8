"""Compare models: metrics, per-class AP and error counts side by side; the images where one
model beats the other most, GT | A | B side by side or one panel at a time (ui.compare)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.charts import iou_text
from core.compare import per_class_figure
from ui import state as S
from ui.charts import plotly_chart
from ui.agreement import agreement_section, compare_without_gt
from ui.catalog import bootstrap_section
from ui.compare import image_view, styled
from ui.prediction_sets import choose_prediction_sets, comparison_tables, pair_tables
from ui.sidebar import active_data, page_setup, score_slider
from ui.widgets import static_table

TOP_IMAGES = 10  # images listed per direction
TABS, TAB_KEY = ["Every set", "A against B, per image"], "_compare_tab"


def _threshold_caption(data, uses: str) -> None:
    st.caption(f"Against **{data.gt_label}** · IoU threshold {data.iou_thr:.2f} · score threshold "
               f"{data.score_thr:.2f} (sidebar): {uses}")


@st.fragment
def _every_set(data, sets) -> None:
    """The first tab at the score threshold; the slider is drawn from here, so a move reruns
    only this fragment (no sidebar, loading or set choice) and reads cached tables."""
    data = score_slider(data)
    _threshold_caption(data, "the COCO rows use every box; the threshold rows and the error counts "
                             "drop boxes below the threshold.")
    _summary(data, comparison_tables(data, sets))


def _summary(data, tables) -> None:
    """Metrics, per-class AP and error counts of every set at the threshold."""
    names = tables.comparison.names
    deltas = [c for c in tables.metrics.columns if c.startswith("Δ")]
    # st.table, not st.dataframe: small tables, and a static table redraws at once after a
    # slider move where the data grid takes ~150 ms each (bench/bench_slider.py)
    st.subheader("Metrics")
    metrics = tables.metrics
    shown = styled(metrics, deltas).format("{:,.0f}", subset=pd.IndexSlice[["boxes kept"], names])
    static_table(shown.format("{:+,.0f}", subset=pd.IndexSlice[["boxes kept"], deltas]), name="compare_metrics")

    iou = iou_text(data.iou_thr)  # the per-class and per-image APs are at the sidebar's IoU
    st.subheader(f"Per-class AP@{iou}")
    per_class = tables.per_class
    figure = per_class_figure(per_class, names).update_layout(yaxis_title=f"AP@{iou}")
    plotly_chart(figure, key="compare_per_class_chart")
    static_table(styled(per_class.drop(columns=["category_id"]), deltas).format("{:,}", subset=["n_gt"]),
                 name="compare_per_class", hide_index=True)

    st.subheader("Error types")
    static_table(styled(tables.error_counts, deltas, "{:,}"), name="compare_error_types")
    st.caption("tp: correct boxes; the errors follow TIDE (classification, localization, both, "
               "duplicate, background); missed: ground-truth boxes no prediction found.")


def _head_to_head(data, sets) -> None:
    """Two sets, A against B: whether the difference is real (every box), then the images where
    one beats the other most at the score threshold and GT | A | B of a listed image."""
    names = [s.label for s in sets]
    st.subheader("A against B")
    pair = st.session_state[S.COMPARE_PAIR]
    pick = st.columns(2)
    default_a = pair[0] if pair and pair[0] in names else names[0]
    name_a = pick[0].selectbox("Model A", names, index=names.index(default_a), key="_compare_a")
    others = [n for n in names if n != name_a]
    default_b = pair[1] if len(pair) == 2 and pair[1] in others else others[0]
    name_b = pick[1].selectbox("Model B", others, index=others.index(default_b), key="_compare_b")
    st.session_state[S.COMPARE_PAIR] = [name_a, name_b]
    by_label = {s.label: s.evaluation for s in sets}  # is B − A real? (issue 14; no threshold)
    bootstrap_section(by_label[name_a], by_label[name_b], name_a, name_b)
    _pair_at_threshold(data, sets, name_a, name_b)


@st.fragment
def _pair_at_threshold(data, sets, name_a: str, name_b: str) -> None:
    """What the score threshold changes in the second tab; the slider is drawn from here, so a
    move reruns only the lists and the panels, not the choice of A and B or the bootstrap."""
    data = score_slider(data)
    tables = comparison_tables(data, sets)
    iou = iou_text(data.iou_thr)
    st.subheader("Where one model beats the other")
    _threshold_caption(data, "the per-image AP, the lists and the panels drop boxes below it.")
    per_image, a_wins, b_wins = pair_tables(data, sets, tables, name_a, name_b, TOP_IMAGES)
    shown_columns = {"file_name": "image", "n_gt": "GT", "ap50_a": f"AP@{iou} A", "ap50_b": f"AP@{iou} B",
                     "difference": "A − B", "n_tp_a": "TP A", "n_tp_b": "TP B", "n_fp_a": "FP A",
                     "n_fp_b": "FP B"}
    number_formats = {f"AP@{iou} A": "{:.3f}", f"AP@{iou} B": "{:.3f}", "A − B": "{:+.3f}"}
    lists = st.columns(2)
    for column, title, table, name in ((lists[0], f"A ({name_a}) beats B most", a_wins, "compare_a_wins"),
                                       (lists[1], f"B ({name_b}) beats A most", b_wins, "compare_b_wins")):
        column.markdown(f"**{title}**")
        if len(table):
            shown = table[list(shown_columns)].rename(columns=shown_columns)
            with column:
                static_table(shown.style.format(number_formats, na_rep="–"), name=name, hide_index=True)
        else:
            column.caption("No image.")
    difference = per_image["difference"]
    st.caption(f"Per-image AP@{iou} at score ≥ {data.score_thr:.2f}: {int((difference > 0).sum())} "
               f"images better with A, {int((difference < 0).sum())} better with B, "
               f"{int((difference == 0).sum())} equal. An image without ground truth counts AP 1 when "
               "a model puts no box on it.")
    candidates = pd.concat([a_wins, b_wins], ignore_index=True)
    if not len(candidates):
        st.info("The two models score the same on every image.")
        return
    image_view(data, per_image, candidates, sets, name_a, name_b)


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
# Lazy tabs: only the open one runs and is sent, so a slider move on the summary does not redraw
# the GT | A | B panels (~250 ms of a ~500 ms move at competition scale, bench/bench_slider.py),
# and the other way round. Each tab's threshold part is a fragment that draws the slider.
every_set, head_to_head = st.tabs(TABS, key=TAB_KEY, on_change="rerun")
with every_set:
    if every_set.open:
        _every_set(data, sets)
with head_to_head:
    if head_to_head.open:
        _head_to_head(data, sets)
st.subheader("Agreement between the sets")
if st.toggle("Hold each set to the first one's confident boxes (as on a test set)", key="_compare_agree"):
    agreement_section(data, sets)
