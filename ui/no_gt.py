"""Pages' glue for a ground truth without boxes (a test set): the training prior and the
Overview drawn from the predictions alone (core.no_gt)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.charts import histogram_figure, per_class_box_figure
from core.no_gt import (ALL_CLASSES, ClassPrior, boxes_per_image, class_mix, class_prior, count_curve,
                        images_without_boxes, suggest_thresholds)
from core.no_gt_charts import boxes_per_image_figure, class_mix_figure, count_curve_figure
from core.folder_scan import default_ground_truth, scan_folder
from ui import loaders
from ui import state as S
from ui.charts import plotly_chart
from ui.loaders import Source
from ui.sidebar import ActiveData

MAX_LISTED = 200  # images without boxes listed


def is_test_set(data: ActiveData) -> bool:
    """A ground truth with images but no boxes, and predictions to look at."""
    return data.dataset is not None and not data.has_gt_boxes and data.predictions is not None


def choose_prior(data: ActiveData) -> ClassPrior | None:
    """A selectbox of the dataset folder's other COCO jsons (train.json first); its class mix."""
    candidates = []
    if data.folder is not None:
        scan = scan_folder(data.folder, roots=S.data_roots())
        candidates = [g for g in scan.ground_truths if g != data.gt_label]
    if not candidates:
        st.info("No training json beside this test set: put the competition's train.json (or a "
                "validation fold) in the dataset folder to compare the predictions with its class mix.")
        return None
    first = default_ground_truth(candidates)
    options = [first] + [c for c in candidates if c != first]
    chosen = st.selectbox("Training set (the class mix expected)", options,
                          help="Its ground-truth boxes per class and per image, scaled to the number of "
                               "test images, are what a model matching the training distribution predicts.",
                          **S.bind(S.NO_GT_PRIOR, options))
    loaded = loaders.load_dataset(Source(chosen, chosen, path=data.folder / chosen), None)
    if loaded.value is None:
        st.warning(f"{chosen} could not be read as a COCO ground truth ({len(loaded.errors)} error(s)); "
                   "choose another training json.")
        return None
    if not len(loaded.value.annotations):
        st.warning(f"{chosen} has no annotations either; choose a json with boxes (train.json).")
        return None
    return class_prior(loaded.value)


def overview_without_gt(data: ActiveData) -> None:
    """The Overview of a test submission: counts, class mix, threshold suggestion, distributions."""
    ds, preds, thr = data.dataset, data.predictions, data.score_thr
    st.caption(f"**{data.predictions_label}** on **{data.gt_label}**, which has no annotations (a test set): "
               "no mAP can be computed. What the predictions alone say, at score threshold "
               f"{thr:.2f} (sidebar). To compare submissions with each other, open **Compare**.")
    per_image = boxes_per_image(preds, ds, thr)
    empty = images_without_boxes(preds, ds, thr)
    row = st.columns(4)
    row[0].metric("Test images", f"{len(ds.images):,}")
    row[1].metric(f"Boxes at score ≥ {thr:.2f}", f"{int(per_image.sum()):,}")
    row[2].metric("Boxes per image", f"{per_image.mean():.2f}" if len(per_image) else "—")
    row[3].metric(f"Images with no box ≥ {thr:.2f}", f"{len(empty):,}")

    prior = choose_prior(data)
    if prior is not None:
        _against_prior(data, prior, per_image)
    st.subheader("Score distributions")
    scores = pd.DataFrame({"category_id": preds.labels, "score": preds.scores})
    left, right = st.columns(2)
    with left:
        figure = histogram_figure(preds.scores, title="Scores of all predictions", x_title="score")
        figure.add_vline(x=thr, line=dict(color="#444444", dash="dash"), annotation_text=f"threshold {thr:.2f}")
        plotly_chart(figure, key="no_gt_scores")
    with right:
        plotly_chart(per_class_box_figure(scores, "score", names=data.class_names, colors=data.class_colors,
                                          title="Score distribution per class", y_title="score"),
                     key="no_gt_scores_per_class")
    st.subheader(f"Images with no box at score ≥ {thr:.2f}")
    if not len(empty):
        st.caption("Every test image has at least one box above the threshold.")
    else:
        st.caption(f"{len(empty):,} image(s): a missed image costs every object on it. Top score shown "
                   "(empty: the submission has no box there at all).")
        st.dataframe(empty.head(MAX_LISTED), hide_index=True, width="stretch",
                     column_config={"top_score": st.column_config.NumberColumn("top score", format="%.3f")})


def _against_prior(data: ActiveData, prior: ClassPrior, per_image) -> None:
    ds, preds, thr = data.dataset, data.predictions, data.score_thr
    name = prior.source
    mix = class_mix(preds, ds, prior, thr)
    st.subheader("Class mix against the training set")
    plotly_chart(class_mix_figure(mix, thr, name), key="no_gt_mix")
    st.caption(f"Expected: the boxes of each class in {name} ({prior.n_images:,} images) scaled to the "
               f"{len(ds.images):,} test images. A class far above it is over-predicted (or more frequent "
               "in test), far below under-predicted; hover a bar for the ratio.")

    st.subheader("Label-free threshold suggestion")
    suggestion = suggest_thresholds(preds, ds, prior)
    overall = suggestion[suggestion["category_id"] == ALL_CLASSES].iloc[0]
    names = ["all classes"] + mix["name"].tolist()
    pick = st.columns([2, 3])
    shown = pick[0].selectbox("Class", names, key="_no_gt_curve_class")
    row = suggestion[suggestion["name"] == shown].iloc[0]
    scores = preds.scores if row["category_id"] == ALL_CLASSES else preds.scores[preds.labels == row["category_id"]]
    pick[1].button(f"Use the suggested overall threshold ({overall['threshold']:.2f})", key="_no_gt_use",
                   on_click=S.set_value, args=(S.SCORE_THR, round(float(overall["threshold"]), 2)))
    plotly_chart(count_curve_figure(count_curve(scores), row["expected"], row["threshold"], thr,
                                    title=f"Boxes kept against the threshold: {shown}"),
                 key="no_gt_curve")
    table = suggestion.drop(columns=["category_id"]).merge(
        mix[["name", "predicted", "ratio"]], on="name", how="left")
    table["note"] = ["under-predicted even with every box" if not e else "" for e in table["enough"]]
    st.dataframe(table.drop(columns=["enough"]), hide_index=True, width="stretch", column_config={
        "expected": st.column_config.NumberColumn("expected boxes", format="%.0f"),
        "threshold": st.column_config.NumberColumn("suggested threshold", format="%.3f"),
        "kept": st.column_config.NumberColumn("boxes at it"),
        "available": st.column_config.NumberColumn("boxes in the file"),
        "predicted": st.column_config.NumberColumn(f"boxes ≥ {thr:.2f}"),
        "ratio": st.column_config.NumberColumn("predicted / expected", format="%.2f")})
    st.caption("The threshold at which the number of predicted boxes equals the training count scaled to "
               "the test images. mAP itself prefers a low threshold (0.05 loses nothing); use this for a "
               "precision/recall balance, and read a class far off the prior as a shift or a bias.")
    plotly_chart(boxes_per_image_figure(per_image, prior.boxes_per_image, thr, name),
                 key="no_gt_per_image")
