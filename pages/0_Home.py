"""Home: what is loaded, the classes, one image with its boxes, and every page (app.py opens it first)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.browse import busiest_image
from core.colors import text_color_on
from ui.sidebar import active_data, page_setup
from ui.widgets import boxes_of, draw_image_panels, image_panels, image_ref_for

page_setup("Home")
data = active_data()

st.title("DetLens")
st.markdown(
    "Error analysis for object detection: see, per image and per class, what a model gets "
    "wrong, choose the score threshold knowingly, and export a filtered submission. Pick a "
    "dataset folder and predictions in the sidebar; the pages on the left share them.")

if data.dataset is None:
    st.info("No ground truth loaded yet: type a dataset folder in the sidebar, or press "
            "'Use the sample data'.")
    st.stop()

ds = data.dataset
columns = st.columns(4)
columns[0].metric("Images", f"{len(ds.images):,}")
columns[1].metric("Ground-truth boxes", f"{len(ds.annotations):,}")
columns[2].metric("Classes", f"{len(ds.categories)}")
columns[3].metric("Predicted boxes", f"{len(data.predictions):,}" if data.predictions is not None else "—")
images = (f"images from `{data.root}`" if data.root is not None
          else f"no image folder chosen for {data.gt_label}: blank canvases")
st.caption(f"Ground truth **{data.gt_label}** · {images} · dataset folder `{data.folder}` · "
           f"active predictions **{data.predictions_label or 'none'}**")

left, right = st.columns([2, 3])  # the class table's three columns fit at 1280 px
with left:
    st.subheader("Classes")
    per_class = ds.annotations.groupby("category_id").size() if len(ds.annotations) else pd.Series(dtype=int)
    colors = [data.class_colors[int(c)] for c in ds.categories["id"]]
    table = pd.DataFrame({
        "id": ds.categories["id"].to_numpy(), "class": ds.categories["name"].to_numpy(),
        "boxes": per_class.reindex(ds.categories["id"]).fillna(0).astype(int).to_numpy()})
    if not len(ds.annotations) and data.prediction_view is not None:  # a test set: what was predicted
        predicted = pd.Series(data.prediction_view.kept.labels).value_counts()
        table = table.drop(columns="boxes").assign(**{  # its GT boxes are all 0: the metric says so
            f"predicted ≥ {data.score_thr:.2f}": predicted.reindex(ds.categories["id"]).fillna(0).astype(int).to_numpy()})
    # each class's colour on its name: a colour column of its own pushed the table past its width
    st.dataframe(
        table.style.apply(lambda _: [f"background-color: {c}; color: {text_color_on(c)}" for c in colors],
                          subset=["class"]),
        hide_index=True, width="stretch", height=min(38 * len(table) + 40, 560),
        column_config={"id": st.column_config.NumberColumn(width="small")})
with right:
    st.subheader("An image with its boxes")
    busiest, what = busiest_image(ds, data.prediction_view)
    if len(ds.images):
        key = str(ds.images["file_name"].iloc[busiest])
        dets, gts = boxes_of(data, key, busiest)
        st.caption(f"`{key}`: {what}. Open the **Image explorer** to browse them all.")
        draw_image_panels(image_ref_for(data, key, busiest),
                          image_panels(data, gts, dets, color_by="class", show_labels=True),
                          key="home_image", height=460)

st.subheader("Pages")
for path, text in [
    ("pages/1_Overview.py", "Overview: mAP, per-class AP, error breakdown, confusion matrix, threshold curves"),
    ("pages/2_Image_explorer.py", "Image explorer: ground truth and predictions side by side"),
    ("pages/3_Class_errors.py", "Class errors: crops of each error type for one class"),
    ("pages/4_Dataset.py", "Dataset: class, size and score distributions"),
    ("pages/5_Export.py", "Export: the filtered submission and the per-box outcome table"),
    ("pages/6_Live_inference.py", "Live inference: run a checkpoint on an image or the whole dataset"),
    ("pages/7_Compare.py", "Compare: two or more prediction sets side by side"),
    ("pages/8_Ensemble.py", "Ensemble: WBF, NMS, Soft-NMS, NMW and a sweep over their settings"),
    ("pages/9_Submissions.py", "Submissions: every submission loaded, validation mAP against the leaderboard"),
    ("pages/10_Label_review.py", "Label review: suspected label errors, decided with the keyboard"),
    ("pages/11_Slices.py", "Slices: the worst subsets by size, aspect, position, crowding and json fields"),
    ("pages/12_Calibration.py", "Calibration: reliability, ECE and per-class thresholds"),
]:
    st.page_link(path, label=text)
