"""The Ensemble page's pieces: the settings widgets, the last run's result, the sweep."""
from __future__ import annotations

import io

import streamlit as st

from core.compare import compare
from core.ensemble import CONF_TYPES, METHOD_NAMES, METHOD_SHORT_NAMES, METHODS, EnsembleConfig
from core.ensemble_sweep import DEFAULT_IOU_THRS, INPUT_METHOD, run_sweep, sweep_grid
from core.submission import write_submission
from core.charts import iou_text
from ui import loaders
from ui import state as S
from ui.sidebar import ActiveData, register_predictions, show_problems

IOU_CHOICES = [0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8]
SKIP_CHOICES = [0.0, 0.01, 0.02, 0.05, 0.1]
SUMMARY_ROWS = ["mAP@0.5", "mAP@[.5:.95]", "mAP@0.75", "AR@100", "boxes kept"]  # COCO's, at fixed IoUs
# widget keys of the single-run settings (set by "Use these settings")
METHOD_KEY, IOU_KEY, SKIP_KEY, CONF_KEY, SIGMA_KEY = ("_ens_method", "_ens_iou", "_ens_skip", "_ens_conf",
                                                      "_ens_sigma")


def _csv_bytes(predictions) -> bytes:
    buffer = io.StringIO()
    write_submission(predictions, buffer)
    return buffer.getvalue().encode("utf-8")


def _file_name(config: EnsembleConfig) -> str:
    return "ensemble_" + config.label.replace(" ", "_").replace("=", "").replace(",", "-") + ".csv"


def _use_settings(config: EnsembleConfig) -> None:
    st.session_state[METHOD_KEY] = config.method
    st.session_state[IOU_KEY] = config.iou_thr
    st.session_state[SKIP_KEY] = config.skip_box_thr
    st.session_state[CONF_KEY] = config.conf_type
    st.session_state[SIGMA_KEY] = config.sigma


def progress_bar(text: str):
    """(the bar, progress(done, total, *label)) for a long loop."""
    bar = st.progress(0.0, text=text)

    def update(done: int, total: int, *label) -> None:
        suffix = f" · {label[0]}" if label else ""
        bar.progress(min(1.0, done / max(total, 1)), text=f"{text} {done:,} / {total:,}{suffix}")
    return bar, update


def result_actions(predictions, config: EnsembleConfig, inputs: list[str], key: str) -> None:
    """Browse (register as a prediction set) and download buttons for an ensemble."""
    label = f"ensemble: {config.label} of {len(inputs)} sets"
    left, right = st.columns(2)
    left.button("Browse it on every page", key=f"_ens_register_{key}", icon=":material/travel_explore:",
                on_click=register_predictions, args=(label, predictions),
                help="Adds it to the sidebar's prediction sets and makes it the active one.")
    if st.session_state[S.ACTIVE_PREDICTIONS] == label:
        left.success(f"**{label}** is the active prediction set: open the Overview or the Image explorer.")
    right.download_button("Download the submission CSV", _csv_bytes(predictions), file_name=_file_name(config),
                          mime="text/csv", key=f"_ens_download_{key}", icon=":material/download:")


def settings(sets) -> EnsembleConfig:
    """The method, its parameters and each set's weight, as widgets; the config they make."""
    for widget_key, default in ((METHOD_KEY, "wbf"), (IOU_KEY, 0.55), (SKIP_KEY, 0.0), (CONF_KEY, "avg"),
                                (SIGMA_KEY, 0.5)):
        st.session_state.setdefault(widget_key, default)  # widgets take their value from here
    cols = st.columns(4)
    method = cols[0].selectbox("Method", METHODS, format_func=METHOD_NAMES.get, key=METHOD_KEY)
    iou_thr = cols[1].slider("IoU threshold", 0.1, 0.95, step=0.05, key=IOU_KEY, disabled=method == "soft_nms",
                             help="Boxes of one class overlapping more than this are fused (WBF, NMW) or "
                                  "suppressed (NMS). Gaussian Soft-NMS uses sigma instead.")
    skip_box_thr = cols[2].number_input("Drop input boxes below score", 0.0, 1.0, step=0.01, key=SKIP_KEY)
    if method == "soft_nms":
        sigma = cols[3].number_input("Soft-NMS sigma", 0.05, 2.0, step=0.05, key=SIGMA_KEY)
        conf_type = "avg"
    else:
        sigma = st.session_state[SIGMA_KEY]
        conf_type = cols[3].selectbox("WBF confidence", CONF_TYPES, key=CONF_KEY, disabled=method != "wbf",
                                      help="How a fused box is scored. 'avg' lowers boxes only some models "
                                           "found; 'max' keeps the best score.")
    weight_cols = st.columns(min(len(sets), 6))
    weights = tuple(float(weight_cols[i % len(weight_cols)].number_input(
        f"Weight of {s.label}", 0.1, 100.0, 1.0, 0.5, key=f"_ens_weight_{s.label}")) for i, s in enumerate(sets))
    return EnsembleConfig(method, iou_thr=float(iou_thr), skip_box_thr=float(skip_box_thr), conf_type=conf_type,
                          sigma=float(sigma), weights=weights if len(set(weights)) > 1 else None)


def show_result(data: ActiveData, sets, last: dict) -> None:
    """The last ensemble: its metrics beside each input's (with ground truth), browse, download."""
    result = last["result"]
    st.subheader(f"Ensemble: {result.config.label}")
    st.caption(f"Of {', '.join(last['inputs'])} · {len(result.predictions):,} boxes on "
               f"{len(result.predictions.image_keys):,} images · {result.seconds:.1f} s")
    show_problems(result.problems, "Ensemble", "")
    by_label = {s.label: s for s in sets}
    evaluated = {name: by_label[name].evaluation for name in last["inputs"]
                 if name in by_label and by_label[name].evaluation is not None}
    if data.has_gt_boxes and evaluated:
        predictions = result.predictions
        ens_eval = loaders.evaluation(data.dataset, data.dataset_key, predictions,
                                      loaders.predictions_key(predictions), data.iou_thr)
        comparison = compare({**evaluated, "ensemble": ens_eval})
        summary = comparison.metrics()[comparison.names].T[SUMMARY_ROWS]
        summary["Δ mAP@0.5 vs best input"] = summary["mAP@0.5"] - summary["mAP@0.5"].iloc[:-1].max()
        st.dataframe(summary, width="stretch", column_config={
            **{c: st.column_config.NumberColumn(format="%.4f") for c in SUMMARY_ROWS[:-1]},
            "boxes kept": st.column_config.NumberColumn(format="%d"),
            "Δ mAP@0.5 vs best input": st.column_config.NumberColumn(format="%+.4f")})
        with st.expander(f"Per-class AP@{iou_text(data.iou_thr)} (the sidebar's IoU)"):
            per_class = comparison.per_class()
            st.dataframe(per_class.drop(columns=["category_id"]), hide_index=True, width="stretch",
                         column_config={c: st.column_config.NumberColumn(format="%.3f")
                                        for c in per_class.columns if c not in ("category_id", "name", "n_gt")})
    elif not data.has_gt_boxes:
        st.caption(f"{data.gt_label} has no boxes: no metrics (a test set). Download the ensemble below.")
    result_actions(result.predictions, result.config, last["inputs"], "run")


def sweep_section(data: ActiveData, sets, weights) -> None:
    """Every variant of a grid ensembled and scored against the ground truth; the best first."""
    cols = st.columns(4)
    methods = cols[0].multiselect("Methods", METHODS, default=list(METHODS), format_func=METHOD_SHORT_NAMES.get,
                                  key="_sweep_methods")
    ious = cols[1].multiselect("IoU thresholds", IOU_CHOICES, default=list(DEFAULT_IOU_THRS), key="_sweep_ious")
    confs = cols[2].multiselect("WBF confidence", CONF_TYPES, default=list(CONF_TYPES), key="_sweep_confs")
    skips = cols[3].multiselect("Drop below score", SKIP_CHOICES, default=[0.0], key="_sweep_skips")
    try:
        grid = sweep_grid(methods, sorted(ious), confs or ["avg"], sorted(skips) or [0.0], weights=weights)
    except ValueError as exc:
        st.warning(str(exc))
        return
    n_boxes = sum(len(s.predictions) for s in sets)
    st.caption(f"{len(grid)} variants, each ensembled and evaluated; the inputs' weights above are used. "
               + ("Large inputs: each variant takes tens of seconds; narrow the grid first." if n_boxes > 300_000 else ""))
    labels = [s.label for s in sets]
    if st.button("Run the sweep", key="_sweep_run", icon=":material/tune:"):
        bar, update = progress_bar("Variants")
        sweep = run_sweep([s.predictions for s in sets], data.dataset, grid, names=labels, progress=update,
                          image_root=data.root, roots=S.data_roots())
        bar.empty()
        st.session_state[S.ENSEMBLE_SWEEP] = {"sweep": sweep, "inputs": labels}
    last = st.session_state[S.ENSEMBLE_SWEEP]
    if last is not None:
        _show_sweep(last)


def _show_sweep(last: dict) -> None:
    sweep = last["sweep"]
    table = sweep.table
    best_row = table[table["method"] != INPUT_METHOD].iloc[0]
    best_input = table.loc[table["method"] == INPUT_METHOD, "map50"].max()
    st.success(f"Best: **{sweep.best.label}** · mAP@0.5 {best_row['map50']:.4f} "
               f"({best_row['map50'] - best_input:+.4f} against the best input)")
    result_actions(sweep.best_result.predictions, sweep.best, last["inputs"], "sweep")
    st.button("Use these settings above", key="_sweep_use", on_click=_use_settings, args=(sweep.best,))
    shown = table.drop(columns=["method"]).rename(columns={
        "map50": "mAP@0.5", "map": "mAP", "map75": "mAP@0.75", "delta_map50": "Δ mAP@0.5 vs best input",
        "n_boxes": "boxes", "seconds": "time (s)"})
    number = {c: st.column_config.NumberColumn(format="%.4f") for c in shown.columns
              if c.startswith(("mAP", "AP50"))}
    height = min(36 * (len(shown) + 1) + 3, 640)
    st.dataframe(shown, hide_index=True, width="stretch", height=height, column_config={
        **number, "Δ mAP@0.5 vs best input": st.column_config.NumberColumn(format="%+.4f"),
        "time (s)": st.column_config.NumberColumn(format="%.2f"),
        "iou_thr": st.column_config.NumberColumn(format="%.2f")})
    st.download_button("Download the sweep table", table.to_csv(index=False).encode(), file_name="sweep.csv",
                       mime="text/csv", key="_sweep_table_download")
