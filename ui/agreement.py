"""Agreement between prediction sets in the app (Compare, explorer's disagreement sort): the
core.agreement evaluation, cached per (dataset, the two files, reference threshold, IoU)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.agreement import Agreement, agreement
from ui import loaders
from ui.prediction_sets import PredictionSet, load_prediction_set
from ui.sidebar import ActiveData, prediction_options


def agreement_of(data: ActiveData, ref: PredictionSet, other: PredictionSet, ref_thr: float) -> Agreement:
    """`other` against `ref`'s boxes >= ref_thr on the active dataset; kept in the evaluations'
    cache (an Agreement holds one Evaluation), within the memory budget. Read-only."""
    ref_thr, iou_thr = round(float(ref_thr), 4), round(float(data.iou_thr), 4)
    key = ("agreement", data.dataset_key, ref.key, other.key, ref_thr, iou_thr, ref.label, other.label)
    cache = loaders.caches()["evaluations"]
    found = cache.get(key)
    if found is not None:
        return found
    with st.spinner("Matching the two submissions ..."):
        return cache.get_or_create(key, lambda: agreement(
            ref.predictions, other.predictions, ref_thr=ref_thr, dataset=data.dataset, iou_thr=iou_thr,
            ref_name=ref.label, other_name=other.label), depends_on=(data.dataset,))


def active_set(data: ActiveData) -> PredictionSet:
    """The sidebar's active predictions as a PredictionSet."""
    return PredictionSet(data.predictions_label, data.predictions, data.predictions_key)


def other_sets(data: ActiveData) -> list[str]:
    """Labels of the prediction sets on offer other than the active one."""
    from ui.prediction_sets import _fits

    options = prediction_options(data.folder)
    names = [name for name in options if name != data.predictions_label]
    return sorted(names, key=lambda n: not _fits(data, options[n]))  # sets on these images first


def load_named_set(data: ActiveData, label: str) -> PredictionSet | None:
    """One offered set by label, loaded without evaluation; None when gone or unreadable."""
    options = prediction_options(data.folder)
    if label not in options:
        return None
    chosen = load_prediction_set(data, label, options[label], evaluate=False)
    return chosen if chosen.predictions is not None else None


# ------------------------------------------------------------------------------ Compare section
TOP_IMAGES = 20


def agreement_section(data: ActiveData, sets: list[PredictionSet]) -> None:
    """Agreement of each set with the first (its boxes >= a threshold as pseudo ground truth):
    summary, per class, images ranked by disagreement, drawn side by side."""
    from ui import state as S

    ref, others = sets[0], sets[1:]
    st.number_input("Reference threshold: the first set's boxes scoring at least this are the pseudo "
                    "ground truth", 0.0, 1.0, step=0.05, format="%.2f", **S.bind(S.AGREE_REF_THR))
    ref_thr = float(st.session_state[S.AGREE_REF_THR])
    results = {s.label: agreement_of(data, ref, s, ref_thr) for s in others}
    summary = pd.DataFrame([{
        "submission": label, "agreement (mAP@0.5)": ag.map50,
        "reference boxes": int(ag.per_class["ref_boxes"].sum()),
        f"its boxes ≥ {ref_thr:.2f}": int(ag.per_class["other_boxes"].sum()),
        "matched": int(ag.per_class["matched"].sum()), f"only in {ref.label}": int(ag.per_class["only_ref"].sum()),
        "only in it": int(ag.per_class["only_other"].sum()),
        "class disagreements": int(ag.per_class["class_disagreements"].sum())} for label, ag in results.items()])
    st.table(summary.style.format({"agreement (mAP@0.5)": "{:.4f}"}), hide_index=True)
    st.caption(f"Each set is evaluated against **{ref.label}**'s boxes scoring ≥ {ref_thr:.2f} exactly as "
               "against a real ground truth (COCO matching, AP@0.5 per class): 1 means it finds the same "
               "boxes with the same classes ranked first. Counts use both sets' boxes ≥ that threshold. "
               "`python -m core agree` prints the same.")
    names = list(results)
    label = st.selectbox("Look at", names, key="_agree_other") if len(names) > 1 else names[0]
    ag = results[label]
    per_class = ag.per_class.drop(columns=["category_id"]).rename(columns={
        "agreement": "agreement (AP@0.5)", "ref_boxes": "reference boxes", "other_boxes": "its boxes",
        "only_ref": f"only in {ref.label}", "only_other": f"only in {label}",
        "class_disagreements": "class disagreements"})
    st.table(per_class.style.format({"agreement (AP@0.5)": "{:.4f}"}, na_rep="–"), hide_index=True)
    _disagreement_images(data, ref, next(s for s in others if s.label == label), ag)


@st.fragment
def _disagreement_images(data: ActiveData, ref: PredictionSet, other: PredictionSet, ag: Agreement) -> None:
    """The images where the two disagree most, and one of them drawn: [GT |] reference | other."""
    from core.browse import DET_COLUMNS, gt_rows
    from core.drawing import Panel, gt_layers, prediction_layers
    from ui.prediction_sets import set_view
    from ui.widgets import draw_image_panels, image_ref_for

    top = ag.per_image.head(TOP_IMAGES)
    top = top[top["disagreements"] > 0]
    st.markdown(f"**Images where {other.label} and {ref.label} disagree most**")
    if not len(top):
        st.info("They agree on every image.")
        return
    st.table(top.drop(columns=["image_index"]).rename(columns={
        "file_name": "image", "ref_boxes": "reference boxes", "other_boxes": "its boxes",
        "agreement": "agreement (AP@0.5)"}).style.format({"agreement (AP@0.5)": "{:.3f}"}, na_rep="–"),
        hide_index=True)
    options = top["file_name"].tolist()
    key = st.selectbox("Image", options, key="_agree_image")
    image_index = int(top.loc[top["file_name"] == key, "image_index"].iloc[0])
    names, colors = data.class_names, data.class_colors
    panels = []
    if data.has_gt_boxes:
        gts = gt_rows(data.dataset, image_index, pd.DataFrame(columns=DET_COLUMNS)).drop(columns=["hover_extra"])
        panels.append(Panel("Ground truth", gt_layers(gts, color_by="class", class_names=names,
                                                      class_colors=colors, with_labels=True)))
    for title, chosen in ((f"reference: {ref.label}", ref), (other.label, other)):
        dets = set_view(data, chosen, ag.ref_thr, evaluated=False).image_boxes(key, image_index)
        panels.append(Panel(f"{title} (score ≥ {ag.ref_thr:.2f})", prediction_layers(
            dets, color_by="class", class_names=names, class_colors=colors, with_labels=True)))
    draw_image_panels(image_ref_for(data, key, image_index), panels, key="agree_panels")


def compare_without_gt(data: ActiveData) -> None:
    """The Compare page on a ground truth without boxes: agreement between submissions."""
    from ui import state as S
    from ui.prediction_sets import choose_prediction_sets

    st.caption(f"{data.gt_label} has no annotations (a test set): no mAP, but submissions can be held to "
               "each other. The first set is the reference.")
    sets = choose_prediction_sets(
        data, S.COMPARE_SETS, "Submissions to compare (the first is the reference)", evaluate=False,
        help="Files in the dataset folder, uploads (sidebar) and sets made in the app (ensembles).")
    sets = [s for s in sets if len(s.predictions)]
    elsewhere = [s.label for s in sets
                 if not (data.dataset.image_index_of_file(s.predictions.image_keys) >= 0).any()]
    if elsewhere:
        st.warning(f"No image of {', '.join(elsewhere)} is in {data.gt_label}: left out of the comparison.")
    sets = [s for s in sets if s.label not in elsewhere]
    if len(sets) < 2:
        st.info("Choose at least two non-empty submissions for these images above (e.g. two models, or a "
                "model and its test-time augmentation).")
        return
    agreement_section(data, sets)
