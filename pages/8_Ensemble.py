"""Ensemble: fuse prediction sets (WBF, NMS, Soft-NMS, NMW), see the result beside each input,
sweep the settings against the ground truth, browse and download the best."""
from __future__ import annotations

import streamlit as st

from core.ensemble import ensemble_predictions
from ui import state as S
from ui.ensemble import progress_bar, settings, show_result, sweep_section
from ui.prediction_sets import choose_prediction_sets
from ui.recipe import apply_recipe_section
from ui.sidebar import active_data, page_setup

page_setup("Ensemble", icon=":material/join:")
data = active_data()
st.title("Ensemble")
if data.dataset is None:
    st.info("Load a ground truth (or the test.json of the images) in the sidebar: the ensemble needs "
            "each image's size.")
    st.stop()
sets = choose_prediction_sets(
    data, S.ENSEMBLE_SETS, "Prediction sets to ensemble",
    help="Submission CSVs of several models (or test-time augmentations) on the same images. Files "
         "in the dataset folder, uploads (sidebar) and sets made in the app.",
    evaluate=data.has_gt_boxes)
if not sets:
    st.info("Choose two or more prediction sets above.")
    st.stop()
if len(sets) == 1:
    st.caption("One set: the method only merges its own overlapping boxes.")
empty = [s.label for s in sets if not len(s.predictions)]
if empty:
    st.info(f"No predicted boxes in {', '.join(empty)} (an empty submission): it adds no box to the "
            "ensemble; a weighted method still counts it in the averages.")

config = settings(sets)
if st.button("Run ensemble", type="primary", icon=":material/play_arrow:", key="_ens_run"):
    bar, update = progress_bar("Ensembling images")
    result = ensemble_predictions([s.predictions for s in sets], config, dataset=data.dataset,
                                  image_root=data.root, roots=S.data_roots(), progress=update)
    bar.empty()
    st.session_state[S.ENSEMBLE_RESULT] = {"result": result, "inputs": [s.label for s in sets]}
if st.session_state[S.ENSEMBLE_RESULT] is not None:
    show_result(data, sets, st.session_state[S.ENSEMBLE_RESULT])

st.subheader("Sweep: find the best settings")
if data.has_gt_boxes:
    sweep_section(data, sets, config.weights)
else:
    st.info("A sweep scores every variant against the ground truth: choose a ground truth with boxes "
            "(a validation fold) in the sidebar, sweep there, then apply the best to the test set below.")
apply_recipe_section(data)  # a recipe fitted on validation (this session or a file) on test sets
