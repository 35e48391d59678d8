"""Overview: the competition metric, per-class AP, error breakdown, confusion, threshold curves."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.charts import best_f1_threshold, confusion_figure, iou_text, threshold_curves_figure, tide_figure
from core.analysis_charts import with_cell_picks
from core.outcomes import DISPLAY_ORDER, Outcome
from ui import state as S
from ui.charts import plotly_chart
from ui.loaders import threshold_curve
from ui.sidebar import active_data, page_setup, score_slider
from ui.widgets import need_evaluation, static_table
from ui.analysis import confusion_shown, open_drilldown
from ui.no_gt import is_test_set, overview_without_gt

@st.fragment
def overview(data) -> None:
    """Everything the score threshold changes; the slider is drawn from here, so a move reruns
    only this function, not the sidebar's loading."""
    data = score_slider(data)
    if is_test_set(data):  # no boxes to measure against: what the predictions alone say
        overview_without_gt(data)
        return
    if not need_evaluation(data):
        return

    ev, view = data.evaluation, data.view
    iou = iou_text(data.iou_thr)  # every label below the COCO row names the IoU its number is at
    st.caption(f"**{data.predictions_label}** against **{data.gt_label}** · IoU threshold "
               f"{data.iou_thr:.2f} · score threshold {data.score_thr:.2f}")

    row = st.columns(4)
    row[0].metric("mAP@0.5 (competition)", f"{ev.stats['map50']:.4f}",
                  help="COCO-style AP at IoU 0.5 over all predictions (what the leaderboard computes)")
    row[1].metric("mAP@[.5:.95]", f"{ev.stats['map']:.4f}")
    row[2].metric("mAP@0.75", f"{ev.stats['map75']:.4f}")
    row[3].metric("AR@100", f"{ev.stats['ar100']:.4f}")
    row = st.columns(4)
    change = view.map50 - ev.at(-np.inf).map50  # like with like: the same IoU, every box kept
    row[0].metric(f"mAP@{iou} at score ≥ {data.score_thr:.2f}", f"{view.map50:.4f}",
                  delta=f"{change:+.4f}" if abs(change) >= 5e-5 else None,
                  help=f"After dropping the predictions below the score threshold; the change is against "
                       f"mAP@{iou} with every prediction kept")
    row[1].metric("Precision", f"{view.precision:.3f}")
    row[2].metric("Recall", f"{view.recall:.3f}")
    row[3].metric("F1", f"{view.f1:.3f}")

    if not view.keep.any():
        st.info(f"No predicted boxes in {data.predictions_label} at score ≥ {data.score_thr:.2f}: the "
                "threshold figures below count every ground truth as missed. Lower the score threshold "
                "in the sidebar.")
    counts = view.counts
    st.markdown(" · ".join(f"**{o.label}** {counts[o.value]:,}" for o in DISPLAY_ORDER
                           if counts[o.value] or o is not Outcome.IGNORED))
    st.caption(f"Boxes at score ≥ {data.score_thr:.2f} matched at IoU {iou}; Missed GT: every ground "
               "truth none of them matched.")

    st.subheader("Per-class AP")
    per_class = ev.per_class.merge(
        view.per_class.drop(columns=["name"], errors="ignore"), on="category_id", how="left",
        suffixes=("", "_at_thr"))
    shown = per_class.rename(columns={"ap": "AP", "ap50": "AP@0.5", "ap75": "AP@0.75", "n_gt": "GT boxes",
                                      "n_pred": "predictions", "ap50_at_thr": f"AP@{iou} at thr"}
                               ).drop(columns=["category_id"])  # the name says it; the table is wide
    # Static tables, not the data grid: a fresh session would load the grid's own bundle for them
    # (bench/bench_pages.py), and a 10-80-row table reads at a glance.
    static_table(shown.style.format({c: "{:.3f}" for c in ("AP", "AP@0.5", "AP@0.75", "precision", "recall", "f1",
                                                          f"AP@{iou} at thr") if c in shown.columns}, na_rep="–"),
                 name="overview_per_class", hide_index=True)

    left, right = st.columns(2)
    with left:
        tide_pick = plotly_chart(tide_figure(ev.tide, data.iou_thr, " (all boxes)"), key="tide", on_select="rerun")
        open_drilldown(data, tide_pick, "tide")  # a bar opens the images with boxes of that error type
        tide_table = ev.tide.assign(error=[Outcome(str(e)).label for e in ev.tide["error"]])
        static_table(tide_table.rename(columns={"dap": "dAP"}).style.format({"dAP": "{:.4f}"}, na_rep="–"),
                     name="overview_tide", hide_index=True)
        st.caption("TIDE's breakdown counts every box, whatever the score threshold (its dAP is a gain "
                   "over the mAP of all boxes). Its Missed GT counts only ground truths that no fixed "
                   "classification or localisation error would find, so it is at most the counts line's.")
    with right:
        curve = threshold_curve(ev)  # cached with ev: not recomputed per run or session
        best = best_f1_threshold(curve)
        plotly_chart(threshold_curves_figure(curve, data.score_thr, best, iou_thr=data.iou_thr), key="curves")
        if best is not None:
            st.button(f"Use the best-F1 threshold ({best:.2f})", key="use_best_f1",
                      on_click=S.set_value, args=(S.SCORE_THR, round(best, 2)))

    shown = confusion_shown(view)  # over 30 classes: the most confused N
    cell_pick = plotly_chart(with_cell_picks(confusion_figure(shown), shown), key="confusion", on_select="rerun")
    open_drilldown(data, cell_pick, "confusion")  # a cell opens its images in the explorer
    st.caption("At the current score threshold. Boxes claim ground truths whatever their class here, so "
               "a higher-scoring box of another class can take a ground truth that TP counts for its own "
               "class: the diagonal can be below TP. The background row counts predictions on nothing; "
               "the background column counts ground truths no prediction found. Click a cell (or a bar of "
               "the error breakdown) to open the images behind it in the explorer.")


page_setup("Overview")
data = active_data(score_slider_in_fragment=True)
st.title("Overview")
overview(data)
