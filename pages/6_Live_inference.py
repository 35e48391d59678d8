"""Live inference: run a checkpoint on one image next to its ground truth, or on the whole dataset."""
from __future__ import annotations

import io

import streamlit as st

from core.drawing import image_data_uri
from core.images import read_image, resolve_image_path
from core.inference import dataset_image_items, expected_image_sizes, predict_images, to_predictions
from core.submission import write_submission
from core.thresholds import PredictionView
from ui import loaders
from ui import state as S
from ui.inference import first_image_found, image_detections, model_picker
from ui.loaders import ImageRef
from ui.sidebar import active_data, page_setup, register_predictions
from ui.widgets import draw_image_panels, image_panels, image_ref_for

FROM_DATASET = "From the dataset"
UPLOADED = "Upload an image"
BATCH_DONE = "_infer_batch_done"

page_setup("Live inference", icon=":material/bolt:")
data = active_data()
st.title("Live inference")
st.caption("Run a detection checkpoint on an image and compare it with the ground truth. "
           "Checkpoints are read with `torch.load(weights_only=True)`: one that would run code is refused.")

categories = data.dataset.categories if data.dataset is not None else None
choice = model_picker(categories, data.folder)
if choice.error:
    st.error(choice.error)
detector = choice.detector
if detector is not None:
    for warning in detector.warnings:
        st.warning(warning)
    facts = [f"**{choice.label}**", detector.arch, f"{len(detector.category_ids)} classes",
             f"input {detector.input_size} px", f"on **{detector.device}**"]
    scores = detector.train_info
    if "map50_train" in scores:
        facts.append(f"recorded mAP@0.5: {scores['map50_train']:.3f} on its training images"
                     + (f", {scores['map50_holdout']:.3f} on held-out ones" if "map50_holdout" in scores else ""))
    st.caption(" · ".join(facts))

# --- one image -----------------------------------------------------------------------------------
has_images = data.dataset is not None and data.root is not None and len(data.dataset.images) > 0
sources = [FROM_DATASET, UPLOADED] if has_images else [UPLOADED]
cols = st.columns([1, 3])
image_source = cols[0].radio("Image", sources, key="_infer_image_source")
image, image_key, image_index, ref = None, None, -1, None
if image_source == FROM_DATASET:
    names = data.dataset.images["file_name"].tolist()
    if st.session_state.get("_infer_image") not in names:  # the explorer's image, or one that exists
        st.session_state["_infer_image"] = first_image_found(data.root, names, st.session_state.get(S.EXPLORER_IMAGE))
    image_key = cols[1].selectbox(f"Dataset image ({len(names):,})", names, key="_infer_image")
    image_index = int(data.dataset.image_index_of_file([image_key])[0])
    image = loaders.pil_image(data.root, image_key, upright=data.upright_pixels)
    lookup = resolve_image_path(data.root, image_key, S.data_roots())
    ref = image_ref_for(data, image_key, image_index)
    if image is None or not lookup.found:
        st.error(f"{ref.notice or image_key + ': the image cannot be read'}. Pick another image "
                 "or upload one.")
        st.stop()
    cache_key = loaders.content_key(loaders.Source(image_key, image_key, path=lookup.path))
else:
    upload = cols[1].file_uploader("Image (jpg, png)", type=["jpg", "jpeg", "png", "bmp", "webp"],
                                   key="_infer_image_upload")
    if upload is None:
        st.info("Upload an image to run the model on it.")
        st.stop()
    try:
        image, notices = read_image(upload.getvalue(), name=upload.name)
    except ValueError as exc:
        st.error(f"{exc}. Upload a JPEG or PNG image.")
        st.stop()
    image_key = upload.name
    cache_key = loaders.content_key(loaders.Source(upload.name, upload.name, data=upload.getvalue()))
    ref = ImageRef(upload.name, float(image.width), float(image.height), image_data_uri(image),
                   "\n\n".join(notices) or None)
# the image widgets are drawn before this stop, so a checkpoint error keeps the chosen image and upload
if detector is None:
    if not choice.error:
        st.info("Choose a checkpoint above to run it.")
    st.stop()

dets = image_detections(choice, cache_key, image)
# the live model's own view at the sidebar's threshold: not evaluated, so GT boxes get plain status
live = PredictionView(to_predictions([image_key], [dets], source=choice.label), data.score_thr, data.dataset)
frame = live.image_boxes(image_key, image_index)
gts = live.image_gts(image_index, frame)

metrics = st.columns(4)
metrics[0].metric("Inference time", f"{dets.elapsed_s * 1000:.0f} ms", help=f"forward pass on {detector.device}, "
                  "resize and postprocessing included; the first run also warms up")
metrics[1].metric(f"Boxes ≥ {data.score_thr:.2f}", len(frame))
metrics[2].metric("Ground-truth boxes", len(gts) if image_index >= 0 else "–")
metrics[3].metric("Image size", f"{dets.width} × {dets.height}")
show_labels = st.toggle("Labels", value=True, key="_infer_labels")
draw_image_panels(ref, image_panels(data, gts, frame, color_by="class", show_labels=show_labels,
                                    prediction_title=f"{choice.label}, score ≥ {data.score_thr:.2f}"),
                  key="infer_panels", show_labels=show_labels)
st.caption("The score threshold in the sidebar filters the boxes; moving it does not re-run the model.")
st.dataframe(live.box_table(gts, frame), hide_index=True, width="stretch")

# --- the whole dataset ------------------------------------------------------------------------------
st.subheader("Predict the whole dataset")
if not has_images:
    st.info("Set a dataset folder with a ground truth in the sidebar to predict all its images.")
    st.stop()
if st.session_state.get(BATCH_DONE):
    st.success(st.session_state[BATCH_DONE])
n_images = len(data.dataset.images)
st.markdown(f"Runs **{choice.label}** over the {n_images:,} images of {data.gt_label} (boxes with "
            "score ≥ 0.05, like the baselines), then makes the result the active prediction set, "
            "selectable in the sidebar on every page.")
if st.button(f"Predict {n_images:,} images", key="_infer_batch", type="primary"):
    items, problems = dataset_image_items(data.dataset, roots=S.data_roots())
    bar = st.progress(0.0, text="starting…")
    preds = predict_images(detector, items, score_thr=0.05, batch_size=4 if detector.device != "cpu" else 1,
                           source=choice.label, expected_sizes=expected_image_sizes(data.dataset),
                           upright=data.dataset.upright_pixels,
                           progress=lambda done, total: bar.progress(done / total, text=f"{done:,} / {total:,} images"))
    problems += preds.problems
    errors = [p for p in problems if p.is_error]
    for problem in errors[:20]:
        st.error(str(problem))
    warned = [p for p in problems if not p.is_error]
    if warned:
        with st.expander(f"{len(warned)} image warning(s) (predicted anyway)"):
            st.markdown("\n".join(f"- `{p}`" for p in warned[:200]))
    label = register_predictions(f"live: {choice.label} on {data.gt_label}", preds)
    buffer = io.StringIO()
    write_submission(preds, buffer)
    st.session_state["_infer_batch_csv"] = (label, buffer.getvalue())
    st.session_state[BATCH_DONE] = (f"Predicted {len(preds.image_keys):,} images ({len(preds):,} boxes): "
                                    f"now the active predictions, **{label}**.")
    if not problems:
        st.rerun()
if st.session_state.get("_infer_batch_csv"):
    label, csv_text = st.session_state["_infer_batch_csv"]
    st.download_button("Download it as a submission CSV", csv_text, file_name="predictions_live.csv",
                       mime="text/csv", key="_infer_download")
