"""Export: the active predictions filtered at the score threshold, and the per-box outcome table."""
from __future__ import annotations

import streamlit as st

from core.export import filtered_submission_csv, outcome_counts, outcome_table
from core.outcomes import OUTCOME_LABELS
from ui.sidebar import active_data, page_setup

PREVIEW_ROWS = 1000  # the whole table (490,000 rows at competition scale) only goes to the download

page_setup("Export")
data = active_data()
st.title("Export")
if data.predictions is None:
    st.info("Choose or upload predictions in the sidebar to export them.")
    st.stop()

preds = data.predictions
stem = (data.predictions_label or "predictions").rsplit("/", 1)[-1].rsplit(".", 1)[0]
stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)
kept = data.prediction_view.n_kept
st.subheader("Submission filtered at the score threshold")
if not kept:
    st.info(f"No predicted boxes in {data.predictions_label} at score ≥ {data.score_thr:.2f}: the "
            "filtered submission lists every image with an empty PredictionString.")
st.markdown(f"**{kept:,}** of **{len(preds):,}** boxes have score ≥ {data.score_thr:.2f}, on "
            f"{len(preds.image_keys):,} images (every image keeps its row, as the competition "
            "requires). Columns `PredictionString,image_id`, boxes Pascal VOC xyxy in pixels.")
st.download_button(
    "Download the filtered submission CSV",
    lambda: filtered_submission_csv(preds, data.score_thr)[0],  # written only when clicked
    file_name=f"{stem}_score{data.score_thr:.2f}.csv", mime="text/csv",
    key="download_submission", type="primary")

st.subheader("Per-box outcome table")
if data.view is None:
    st.info("The outcome table needs a ground truth with boxes and predictions on its images.")
    st.stop()
dets, gts = data.view.dets, data.view.gts
counts = outcome_counts(dets, gts)
n_rows = int(counts.sum())
st.markdown(" · ".join(f"**{OUTCOME_LABELS.get(k, k)}** {v:,}" for k, v in counts.items()))
st.dataframe(outcome_table(data.dataset, dets, gts, limit=PREVIEW_ROWS), hide_index=True, width="stretch",
             column_config={"score": st.column_config.NumberColumn(format="%.3f"),
                            "iou": st.column_config.NumberColumn(format="%.3f")})
st.caption(f"First {min(n_rows, PREVIEW_ROWS):,} of {n_rows:,} rows: predictions at score ≥ "
           f"{data.score_thr:.2f} with their outcome at IoU {data.iou_thr:.2f}, then missed "
           "ground-truth boxes. Boxes are xyxy pixels.")
st.download_button(
    "Download the outcome table CSV",
    lambda: outcome_table(data.dataset, dets, gts).to_csv(index=False),  # built only when clicked
    file_name=f"{stem}_outcomes_score{data.score_thr:.2f}_iou{data.iou_thr:.2f}.csv",
    mime="text/csv", key="download_outcomes")
