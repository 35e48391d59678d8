"""The Ensemble page's "fit on validation, apply to test": the recipe of the last run or sweep
(or an uploaded recipe JSON) applied to the matching test submissions (core.recipe)."""
from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from core.recipe import Recipe, apply_recipe
from core.folder_scan import scan_folder
from core.submission import write_submission
from ui import loaders
from ui import state as S
from ui.loaders import Source
from ui.sidebar import ActiveData, prediction_options, register_predictions, show_problems

FITTED, UPLOADED = "fitted in this session", "a recipe file"


def _session_recipe(data: ActiveData) -> Recipe | None:
    """The recipe of the last sweep's best variant, else of the last single run."""
    sweep = st.session_state[S.ENSEMBLE_SWEEP]
    if sweep is not None:
        table = sweep["sweep"].table
        best = table[table["method"] != "input"].iloc[0]
        return Recipe.of(sweep["sweep"].best, sweep["inputs"], fitted_on=data.gt_label or "",
                         map50=float(best["map50"]))
    last = st.session_state[S.ENSEMBLE_RESULT]
    if last is not None:
        return Recipe.of(last["result"].config, last["inputs"],
                         fitted_on=data.gt_label if data.has_gt_boxes else "")
    return None


def _uploaded_recipe() -> Recipe | None:
    upload = st.file_uploader("Recipe JSON (from `ensemble --recipe-out` or the download below)",
                              type=["json"], key="_recipe_upload")
    if upload is None:
        return None
    try:
        return Recipe.from_json(upload.getvalue(), name=upload.name)
    except ValueError as exc:
        st.error(f"{exc}. Upload the recipe DetLens wrote (Download the recipe, or `--recipe-out`).")
        return None


def _test_dataset(data: ActiveData):
    """(dataset, key, label) of the test images: the active GT on a test set, else a json chosen
    from the dataset folder (test.json first)."""
    if not data.has_gt_boxes:
        return data.dataset, data.dataset_key, data.gt_label
    names = []
    if data.folder is not None:
        names = [g for g in scan_folder(data.folder, roots=S.data_roots()).ground_truths if g != data.gt_label]
    if not names:
        st.info("Put the test images' json (test.json) in the dataset folder to apply the recipe to test "
                "submissions: it gives their image sizes.")
        return None, "", None
    names.sort(key=lambda n: not n.endswith("test.json"))
    chosen = st.selectbox("Test images (json)", names, key="_recipe_test_json")
    loaded = loaders.load_dataset(Source(chosen, chosen, path=data.folder / chosen), data.root)
    show_problems(loaded.problems, f"Test json {chosen}", "Choose another json.", loaded=loaded.value is not None)
    return loaded.value, loaded.key, chosen


def apply_recipe_section(data: ActiveData) -> None:
    """Choose a recipe, the test submissions (one per recipe input, same order), apply, download."""
    st.subheader("Apply to the test set")
    fitted = _session_recipe(data)
    sources = [FITTED, UPLOADED] if fitted is not None else [UPLOADED]
    # keyed on the choices: once a recipe is fitted, "fitted in this session" is the default
    source = st.radio("Recipe", sources, horizontal=True, key=f"_recipe_source_{len(sources)}")
    recipe = fitted if source == FITTED else _uploaded_recipe()
    if recipe is None:
        st.caption("Run an ensemble or a sweep above on validation predictions (with ground truth), or "
                   "upload a recipe JSON, to apply its settings to test submissions.")
        return
    st.markdown(f"**Recipe:** {recipe.describe()}")
    left, right = st.columns([3, 1])
    left.code(recipe.to_json(), language="json")
    right.download_button("Download the recipe", recipe.to_json().encode(), file_name="ensemble_recipe.json",
                          mime="application/json", key="_recipe_download", icon=":material/download:")
    test, test_key, test_label = _test_dataset(data)
    if test is None:
        return
    options = prediction_options(data.folder)
    names = list(options)
    test_files = set(test.images["file_name"])
    chosen = st.multiselect(
        f"Test submissions, in the recipe's order ({len(recipe.inputs)}: the models of "
        f"{', '.join(recipe.inputs)})", names, placeholder="choose the test CSVs",
        **S.bind(S.ENSEMBLE_TEST_SETS, names))
    try:
        pairing = recipe.pairing(chosen)
    except ValueError as exc:
        st.info(str(exc))
        return
    st.table(pd.DataFrame(pairing, columns=["fitted on", "applied to", "weight"]), hide_index=True)
    loaded = [loaders.load_predictions(options[name], test, test_key) for name in chosen]
    bad = [name for name, item in zip(chosen, loaded) if item.value is None or item.errors]
    for name, item in zip(chosen, loaded):
        show_problems(item.problems, f"Test submission {name}", "Fix the file or choose another.",
                      loaded=item.value is not None)
    if bad:
        st.warning(f"{', '.join(bad)} could not be read cleanly: fix them before ensembling (their boxes would "
                   "be missing from the final submission).")
        return
    outside = [name for name, item in zip(chosen, loaded)
               if not set(item.value.image_keys.tolist()) & test_files]
    if outside:
        st.warning(f"No image of {', '.join(outside)} is in {test_label}: is it a validation file?")
    if st.button("Apply to the test submissions", type="primary", key="_recipe_apply", icon=":material/play_arrow:"):
        with st.spinner("Ensembling the test submissions ..."):
            result = apply_recipe(recipe, [item.value for item in loaded], names=chosen, dataset=test,
                                  image_root=data.root, roots=S.data_roots())
        st.session_state[S.ENSEMBLE_APPLIED] = {"result": result, "recipe": recipe, "inputs": list(chosen)}
    applied = st.session_state[S.ENSEMBLE_APPLIED]
    if applied is not None:
        result = applied["result"]
        st.success(f"Applied {applied['recipe'].config.label} to {', '.join(applied['inputs'])}: "
                   f"{len(result.predictions):,} boxes on {len(result.predictions.image_keys):,} images.")
        show_problems(result.problems, "Ensemble", "")
        buffer = io.StringIO()
        write_submission(result.predictions, buffer)
        cols = st.columns(2)
        cols[0].download_button("Download the final submission CSV", buffer.getvalue().encode(),
                                file_name="final_submission.csv", mime="text/csv", key="_recipe_final",
                                icon=":material/download:")
        label = f"test ensemble: {applied['recipe'].config.label}"
        cols[1].button("Browse it on every page", key="_recipe_register", on_click=register_predictions,
                       args=(label, result.predictions), icon=":material/travel_explore:",
                       help="Adds it to the sidebar's prediction sets (choose the test json as ground truth).")
