"""Dataset: class, box-count, size and aspect-ratio distributions; score distributions of the CSV."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.charts import (class_counts_figure, histogram_figure, per_class_box_figure,
                         predicted_vs_true_figure)
from ui.charts import plotly_chart
from ui.sidebar import active_data, page_setup

page_setup("Dataset")
data = active_data()
st.title("Dataset")
if data.dataset is None:
    st.info("Load a ground truth in the sidebar.")
    st.stop()

ds = data.dataset
names, colors = data.class_names, data.class_colors
ann = ds.annotations
boxes_per_image = np.bincount(ann["image_index"].to_numpy(np.int64), minlength=len(ds.images)) \
    if len(ann) else np.zeros(len(ds.images), np.int64)
row = st.columns(5)
row[0].metric("Images", f"{len(ds.images):,}")
row[1].metric("Boxes", f"{len(ann):,}")
row[2].metric("Classes", f"{len(ds.categories)}")
row[3].metric("Images without boxes", f"{int((boxes_per_image == 0).sum()):,}")
row[4].metric("Crowd boxes", f"{int(ann['iscrowd'].astype(bool).sum()):,}" if len(ann) else "0")

if not len(ann):
    st.info(f"{data.gt_label} has no annotations (a test set?): only the image list is shown.")
    sizes = ds.images.groupby(["width", "height"]).size().rename("images").reset_index()
    st.dataframe(sizes, hide_index=True)
else:
    class_ids = ds.categories["id"].tolist()
    per_class = ann.groupby("category_id").size().reindex(class_ids).fillna(0).astype(int)
    plotly_chart(class_counts_figure(
        [names[c] for c in class_ids], per_class.to_numpy(), [colors[c] for c in class_ids],
        title="Boxes per class"), key="class_counts")

    chosen = st.multiselect("Classes in the distributions below", list(names.values()),
                            placeholder="all classes", key="_dataset_classes")
    chosen_ids = [c for c in class_ids if names[c] in chosen] or class_ids
    subset = ann[ann["category_id"].isin(chosen_ids)]
    w = (subset["x2"] - subset["x1"]).to_numpy(np.float64)
    h = (subset["y2"] - subset["y1"]).to_numpy(np.float64)
    shapes = pd.DataFrame({"category_id": subset["category_id"].to_numpy(),
                           "side": np.sqrt(np.clip(subset["area"].to_numpy(np.float64), 0, None)),
                           "aspect": np.divide(w, h, out=np.full_like(w, np.nan), where=h > 0)})

    left, right = st.columns(2)
    with left:
        per_image = np.bincount(subset["image_index"].to_numpy(np.int64), minlength=len(ds.images))
        plotly_chart(histogram_figure(per_image, title="Boxes per image",
                                      x_title="boxes in the image", nbins=60, integer=True),
                     key="per_image")
        plotly_chart(histogram_figure(shapes["side"], title="Box size (√area, pixels)",
                                      x_title="√area (log scale)", log_x=True),
                     key="sizes")
        plotly_chart(histogram_figure(shapes["aspect"], title="Aspect ratio (width / height)",
                                      x_title="width / height (log scale)", log_x=True),
                     key="aspects")
    with right:
        small, medium = (shapes["side"] < 32).mean(), ((shapes["side"] >= 32) & (shapes["side"] < 96)).mean()
        st.caption(f"COCO size ranges: small {small:.1%} · medium {medium:.1%} · "
                   f"large {1 - small - medium:.1%} (by the annotation's area)")
        plotly_chart(per_class_box_figure(shapes, "side", names=names, colors=colors,
                                          title="Box size per class", y_title="√area (pixels)",
                                          log_y=True), key="sizes_per_class")
        plotly_chart(per_class_box_figure(shapes, "aspect", names=names, colors=colors,
                                          title="Aspect ratio per class", y_title="width / height",
                                          log_y=True), key="aspects_per_class")
    if ds.images[["width", "height"]].nunique().max() > 1:
        plotly_chart(histogram_figure(ds.images["width"] * ds.images["height"] / 1e6,
                                      title="Image size", x_title="megapixels"),
                     key="image_sizes")

st.header(f"Predictions: {data.predictions_label or '—'}")
if data.predictions is None:
    st.info("Choose or upload predictions in the sidebar to see their score distributions.")
    st.stop()
preds = data.predictions
if not len(preds):
    st.info(f"No predicted boxes in {data.predictions_label} at score ≥ {data.score_thr:.2f} (an "
            "empty submission): no score distribution to show.")
    st.stop()
scores = pd.DataFrame({"category_id": preds.labels, "score": preds.scores})
left, right = st.columns(2)
with left:
    figure = histogram_figure(preds.scores, title="Scores of all predictions", x_title="score")
    figure.add_vline(x=data.score_thr, line=dict(color="#444444", dash="dash"),
                     annotation_text=f"threshold {data.score_thr:.2f}")
    plotly_chart(figure, key="scores")
with right:
    plotly_chart(per_class_box_figure(scores, "score", names=names, colors=colors,
                                      title="Score distribution per class", y_title="score"),
                 key="scores_per_class")
known = data.prediction_view.image_index >= 0
keep = known & data.prediction_view.keep
all_ids = sorted(set(ds.categories["id"].tolist()) | set(np.unique(preds.labels).tolist()))
predicted = pd.Series(preds.labels[keep]).value_counts().reindex(all_ids).fillna(0).astype(int)
true = ann.groupby("category_id").size().reindex(all_ids).fillna(0).astype(int) if len(ann) \
    else pd.Series(0, index=all_ids)
plotly_chart(predicted_vs_true_figure([data.class_name(c) for c in all_ids], true.to_numpy(),
                                      predicted.to_numpy(), score_thr=data.score_thr),
             key="pred_vs_true")
if not known.all():
    st.caption(f"{int((~known).sum()):,} predicted boxes are on images not in {data.gt_label}; "
               "they are left out of the predicted counts.")
