"""Calibration and thresholds: how far the scores can be trusted, and per-class cut-offs."""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.analysis_charts import operating_points_figure, reliability_figure
from core.calibration import cut_per_class_csv, operating_points, thresholds_json
from ui import analysis as A
from ui import state as S
from ui.charts import plotly_chart
from ui.sidebar import active_data, page_setup
from ui.widgets import need_evaluation

page_setup("Calibration")
data = active_data()
st.title("Calibration and thresholds")
if not need_evaluation(data):
    st.stop()
ev = data.evaluation
st.caption(f"**{data.predictions_label}** against **{data.gt_label}** · a box is correct when it is a true "
           f"positive at IoU {data.iou_thr:.2f} · boxes scoring ≥ {data.score_thr:.2f}, those COCO counts "
           "(not on crowd regions, within the 100 best per class and image).")

left, right = st.columns([3, 2])
n_bins = int(right.number_input("Score bins (equal width over [0, 1])", min_value=2, max_value=50, value=10,
                                key="_cal_bins"))
cal = A.calibration(data, n_bins)
with left:
    bin_pick = plotly_chart(reliability_figure(cal.bins, cal.ece, data.iou_thr), key="reliability", on_select="rerun")
bin_points = [p for p in A.selected_points(bin_pick) if len(A.custom_data(p.get("customdata"))) == 3]
if bin_points:  # a bar clicked: the images of the counted boxes scoring in that bin
    lo, hi, _ = A.custom_data(bin_points[0]["customdata"])
    A.open_images_in_explorer(data, A.images_scoring(data, float(lo), float(hi)),
                              f"boxes scoring {float(lo):.2f}–{float(hi):.2f}")
metrics = right.columns(2)
metrics[0].metric("ECE", f"{cal.ece:.4f}", help="Σ (boxes in bin / boxes) × |fraction correct − mean score|")
metrics[1].metric("MCE", f"{cal.mce:.4f}", help="The largest gap of a non-empty bin")
right.caption(f"ECE {cal.ece:.4f} over {cal.n:,} boxes. Bin i holds i/n ≤ score < (i+1)/n (the last one "
              "also 1.0). The same definition as hotcoco's COCOeval.calibration.")
per_class = cal.per_class.assign(name=cal.per_class["name"].astype(str))
with right:
    shown = A.search_and_top(per_class[per_class["n"] > 0], key="_cal_classes", sort_by="ece", default_top=10)
    st.dataframe(shown.drop(columns=["category_id"]), hide_index=True, width="stretch", key="per_class_ece",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in ("ece", "mce")})

st.subheader("Operating thresholds per class")
st.info("mAP rewards keeping low-score boxes: every box can only add recall, so the leaderboard "
        "submission keeps them all (0.05 or lower). A per-class cut is for deployment, where "
        "false alarms cost something, not for the leaderboard.")
cells = st.columns(2)
min_precision = float(cells[0].number_input("Threshold for precision ≥", 0.0, 1.0, 0.9, 0.05, key="_cal_p"))
min_recall = float(cells[1].number_input("Threshold for recall ≥", 0.0, 1.0, 0.5, 0.05, key="_cal_r"))
table = A.best_thresholds(data, min_precision, min_recall)
shown = table.rename(columns={"name": "class", "best_f1": "best F1", "best_f1_thr": "best-F1 threshold",
                              "thr_precision": f"thr P≥{min_precision:.2f}",
                              "recall_at_thr_precision": "recall there",
                              "thr_recall": f"thr R≥{min_recall:.2f}", "precision_at_thr_recall": "precision there"})
shown = A.search_and_top(shown, key="_cal_best", column="class")
st.dataframe(shown.drop(columns=["category_id"]), hide_index=True, width="stretch", key="best_thresholds",
             column_config={c: st.column_config.NumberColumn(format="%.4f") for c in shown.columns
                            if c not in ("class", "n_gt", "n_pred")})
per_class = {int(r.category_id): float(r.best_f1_thr) for r in table[table["category_id"] >= 0].itertuples()}
downloads = st.columns(2)
downloads[0].download_button("Best-F1 thresholds (JSON: class → threshold)", thresholds_json(table),
                             file_name="best_f1_thresholds.json", mime="application/json", key="_cal_json")
if downloads[1].button("Prepare the submission cut per class (best-F1 thresholds)", key="_cal_prepare"):
    csv_text, kept = cut_per_class_csv(data.predictions, per_class)
    downloads[1].download_button(f"Download the cut ({kept:,} of {len(data.predictions):,} boxes)", csv_text,
                                 file_name="submission_cut_per_class.csv", mime="text/csv", key="_cal_csv")

names = ["all classes"] + [str(n) for n in data.class_names.values()]
chosen = st.selectbox("Threshold chart of", names, key="_cal_class")
category_id = None if chosen == "all classes" else {str(v): k for k, v in data.class_names.items()}[chosen]
points = operating_points(ev, category_id)
row = table[table["category_id"] == (-1 if category_id is None else category_id)].iloc[0]
marks = {"best F1": row["best_f1_thr"], f"P≥{min_precision:.2f}": row.get("thr_precision"),
         f"R≥{min_recall:.2f}": row.get("thr_recall")}
event = plotly_chart(operating_points_figure(points, f"{chosen}: precision, recall, F1 by threshold",
                                             data.score_thr, marks),
                     key="operating_points", on_select="rerun")
picked = A.selected_points(event)
if picked:
    score = float(picked[0]["x"])
    dets = ev.dets[(ev.dets["score"] == score)
                   & (True if category_id is None else ev.dets["category_id"] == category_id)]
    st.markdown(f"**{len(dets):,} box(es) scoring exactly {score:.4f}** (the point clicked):")
    st.dataframe(dets[["image_index", "category_id", "score", "outcome", "iou"]], hide_index=True,
                 key="boxes_at_score")
    if len(dets) and st.button("Open their images in the explorer", key="_cal_to_explorer"):
        A.open_images_in_explorer(data, np.unique(dets["image_index"].to_numpy()), f"boxes scoring {score:.4f}")
st.button("Use this class's best-F1 threshold as the score threshold", key="_cal_use_best",
          disabled=not np.isfinite(row["best_f1_thr"]),
          on_click=S.set_value, args=(S.SCORE_THR, round(float(row["best_f1_thr"]), 2)
                                      if np.isfinite(row["best_f1_thr"]) else data.score_thr))
