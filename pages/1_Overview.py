"""Overview: the competition metric, per-class AP, error breakdown, confusion, threshold curves."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.charts import best_f1_threshold, confusion_figure, threshold_curves_figure, tide_figure
from core.analysis_charts import with_cell_picks
from core.colors import OUTCOME_LABELS
from ui import state as S
from ui.sidebar import active_data, page_setup
from ui.widgets import need_evaluation
from ui.analysis import confusion_shown, open_drilldown
from ui.no_gt import is_test_set, overview_without_gt

page_setup("Overview")
data = active_data()
st.title("Overview")
if is_test_set(data):  # no boxes to measure against: what the predictions alone say
    overview_without_gt(data)
    st.stop()
if not need_evaluation(data):
    st.stop()

ev, view = data.evaluation, data.view
st.caption(f"**{data.predictions_label}** against **{data.gt_label}** · IoU threshold "
           f"{data.iou_thr:.2f} · score threshold {data.score_thr:.2f}")

row = st.columns(4)
row[0].metric("mAP@0.5 (competition)", f"{ev.stats['map50']:.4f}",
              help="COCO-style AP at IoU 0.5 over all predictions (what the leaderboard computes)")
row[1].metric("mAP@[.5:.95]", f"{ev.stats['map']:.4f}")
row[2].metric("mAP@0.75", f"{ev.stats['map75']:.4f}")
row[3].metric("AR@100", f"{ev.stats['ar100']:.4f}")
row = st.columns(4)
change = view.map50 - ev.stats["map50"]
row[0].metric(f"mAP@0.5 at score ≥ {data.score_thr:.2f}", f"{view.map50:.4f}",
              delta=f"{change:+.4f}" if abs(change) >= 5e-5 else None,
              help="After dropping the predictions below the score threshold")
row[1].metric("Precision", f"{view.precision:.3f}")
row[2].metric("Recall", f"{view.recall:.3f}")
row[3].metric("F1", f"{view.f1:.3f}")

if not view.keep.any():
    st.info(f"No predicted boxes in {data.predictions_label} at score ≥ {data.score_thr:.2f}: the "
            "threshold figures below count every ground truth as missed. Lower the score threshold "
            "in the sidebar.")
counts = view.counts
st.markdown(" · ".join(f"**{OUTCOME_LABELS.get(k, k)}** {int(v):,}" for k, v in counts.items()
                       if v or k != "ignored"))

st.subheader("Per-class AP")
per_class = ev.per_class.merge(
    view.per_class.drop(columns=["name"], errors="ignore"), on="category_id", how="left",
    suffixes=("", "_at_thr"))
shown = per_class.rename(columns={"ap": "AP", "ap50": "AP@0.5", "ap75": "AP@0.75", "n_gt": "GT boxes",
                                  "n_pred": "predictions", "ap50_at_thr": "AP@0.5 at thr"})
st.dataframe(
    shown, hide_index=True, width="stretch",
    column_config={c: st.column_config.NumberColumn(format="%.3f")
                   for c in ("AP", "AP@0.5", "AP@0.75", "precision", "recall", "f1", "AP@0.5 at thr")})

left, right = st.columns(2)
with left:
    tide_pick = st.plotly_chart(tide_figure(ev.tide), key="tide", width="stretch", on_select="rerun",
                                selection_mode="points")
    open_drilldown(data, tide_pick, "tide")  # a bar opens the images with boxes of that error type
    tide_table = ev.tide.assign(error=[OUTCOME_LABELS.get(str(e), str(e)) for e in ev.tide["error"]])
    st.dataframe(tide_table, hide_index=True, width="stretch",
                 column_config={"dap": st.column_config.NumberColumn("dAP", format="%.4f")})
with right:
    curve = ev.threshold_curve()
    best = best_f1_threshold(curve)
    st.plotly_chart(threshold_curves_figure(curve, data.score_thr, best), key="curves",
                    width="stretch")
    if best is not None:
        st.button(f"Use the best-F1 threshold ({best:.2f})", key="use_best_f1",
                  on_click=S.set_value, args=(S.SCORE_THR, round(best, 2)))

shown = confusion_shown(view)  # over 30 classes: the most confused N
cell_pick = st.plotly_chart(with_cell_picks(confusion_figure(shown), shown), key="confusion",
                            width="stretch", on_select="rerun", selection_mode="points")
open_drilldown(data, cell_pick, "confusion")  # a cell opens its images in the explorer
st.caption("At the current score threshold. The background row counts predictions on nothing; "
           "the background column counts ground truths no prediction found. Click a cell (or a bar of "
           "the error breakdown) to open the images behind it in the explorer.")
