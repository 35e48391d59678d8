"""Submissions: every catalogued submission, its validation and leaderboard scores, editable
fields; validation against leaderboard; is a difference real; which models to ensemble."""
from __future__ import annotations

import re

import plotly.express as px
import streamlit as st

from core.catalog.store import ENV_VAR
from core.ensemble import EnsembleConfig
from ui import catalog as C
from ui import state as S
from ui.charts import plotly_chart
from ui.sidebar import active_data, page_setup

page_setup("Submissions", icon=":material/table_view:")
data = active_data()
st.title("Submissions")
catalog, error = C.get_catalog()
if catalog is None:
    st.error(f"{error}\n\nSet {ENV_VAR} (or `{C.SECRET_KEY}` in .streamlit/secrets.toml) to a reachable "
             "store; every other page works without the catalog.")
    st.stop()
st.caption(f"Store: `{catalog.masked_url}` · every prediction file loaded in the sidebar is registered here "
           "by content. Validation numbers are against the sidebar's ground truth "
           f"(**{data.gt_label or 'none'}**), IoU 0.5, cached in the store.")

try:
    table = C.submissions_table(catalog, data.dataset_key if data.has_gt_boxes else "")
except C.CatalogError as exc:
    st.error(str(exc))
    st.stop()
if not len(table):
    st.info("No submission yet: load a prediction file in the sidebar (or `python -m core catalog add FILE`).")
    st.stop()

top = st.columns([3, 1])
query = top[0].text_input("Filter (name, model, author, notes)", key="_catalog_filter").strip().lower()
missing = int(table["val mAP@0.5"].isna().sum())
if data.has_gt_boxes and missing and top[1].button(f"Evaluate {missing} without a score", key="_catalog_eval"):
    C.evaluate_missing(catalog, data, table)
    st.rerun()
shown = table
if query:
    text = table[["name", "model", "author", "notes", "file"]].astype(str).agg(" ".join, axis=1).str.lower()
    shown = table[text.str.contains(query, regex=False)]

st.session_state.setdefault("_catalog_editor_round", 0)
edited = st.data_editor(
    shown.drop(columns=["sha256"]), key=f"_catalog_editor_{st.session_state['_catalog_editor_round']}",
    hide_index=True, width="stretch",
    disabled=[c for c in shown.columns if c not in C.EDITABLE],
    column_config={"val mAP@0.5": st.column_config.NumberColumn(format="%.4f"),
                   "val mAP": st.column_config.NumberColumn(format="%.4f"),
                   "LB score": st.column_config.NumberColumn(format="%.4f"),
                   "private score": st.column_config.NumberColumn(format="%.4f"),
                   "first seen": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})
try:
    saved = C.save_edits(catalog, shown, edited)
except (C.CatalogError, ValueError) as exc:
    st.error(f"Not saved: {exc}")
    saved = []
if saved:
    st.session_state["_catalog_editor_round"] += 1  # a fresh editor on the stored values
    st.toast("Saved " + "; ".join(saved))
    st.rerun()
st.caption("Click a cell of name, model, LB score, private score, author or notes to edit it; each edit is "
           "saved at once, field by field, so teammates' edits of other fields are kept.")

st.subheader("Validation against leaderboard")
pearson, spearman, n_both = C.correlations(table)
if n_both >= 1:
    both = table.dropna(subset=["val mAP@0.5", "LB score"])
    fig = px.scatter(both, x="val mAP@0.5", y="LB score", text="name", hover_data=["model", "notes"])
    fig.update_traces(textposition="top center")
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10))
    plotly_chart(fig, key="_catalog_scatter")
if n_both >= 3:
    st.markdown(f"Pearson **{pearson:.3f}** · Spearman **{spearman:.3f}** over {n_both} submissions.")
else:
    st.caption(f"{n_both} submission(s) have both a validation score and a leaderboard score; type LB scores "
               "in the table (3 or more give the correlation).")

st.subheader("Selected submissions")
labels = {int(r.id): f"#{r.id} {r.name}" for r in table.itertuples(index=False)}
chosen = st.multiselect("Choose two or more", list(labels), format_func=labels.get, key="_catalog_chosen")
if not data.has_gt_boxes:
    st.info("Choose a ground truth with boxes in the sidebar to compare, bootstrap or ensemble.")
    st.stop()
buttons = st.columns(4)
if buttons[0].button("Open in Compare", key="_catalog_compare", disabled=len(chosen) < 2):
    C.open_in(catalog, data, chosen, S.COMPARE_SETS, "pages/7_Compare.py")
if buttons[1].button("Open in Ensemble", key="_catalog_ensemble", disabled=len(chosen) < 2):
    C.open_in(catalog, data, chosen, S.ENSEMBLE_SETS, "pages/8_Ensemble.py")
run_selection = buttons[2].button("Forward ensemble selection", key="_catalog_forward", disabled=len(chosen) < 2)
make_report = buttons[3].button("HTML report of the first", key="_catalog_report", disabled=not chosen)

evaluations = C.evaluations_of(catalog, data, chosen[:2]) if len(chosen) >= 2 else {}
if len(evaluations) == 2:
    (name_a, (_, ev_a)), (name_b, (_, ev_b)) = evaluations.items()
    C.bootstrap_section(ev_a, ev_b, name_a, name_b)

if run_selection:
    from core.catalog.selection import forward_selection

    sweep = st.session_state.get(S.ENSEMBLE_SWEEP)
    config = sweep.best if sweep is not None else EnsembleConfig("wbf", conf_type="max")
    members = {name: preds for name, (preds, _) in C.evaluations_of(catalog, data, chosen).items()}
    if len(members) >= 2:
        bar = st.progress(0.0, text="Forward selection ...")
        result = forward_selection(members, data.dataset, [config], image_root=data.root, roots=S.data_roots(),
                                   progress=lambda step, i, text: bar.progress(min(1.0, step / len(members)), text=text))
        bar.empty()
        st.session_state["_catalog_selection"] = (result, config.label, data.dataset_key)
selection = st.session_state.get("_catalog_selection")
if selection and selection[2] == data.dataset_key:
    result, label, _ = selection
    st.markdown(f"**Forward selection** ({label}; the Ensemble page's sweep sets these settings): "
                f"{' + '.join(result.members)} → mAP@0.5 **{result.map50:.4f}**")
    st.table(result.path.style.format({"map50": "{:.4f}", "map": "{:.4f}", "gain": "{:+.4f}"}, na_rep="–"),
             hide_index=True)

report_source = C.evaluations_of(catalog, data, chosen[:1]) if make_report and chosen else {}
for name, (_, ev) in report_source.items():
    from core.report import build_report

    html = build_report(ev, gt_name=data.gt_label, pred_name=name, score_thr=data.score_thr)
    st.download_button("Download the report (HTML, opens offline)", html, file_name="detlens_report_" + re.sub(r"[^\w.-]+", "_", name) + ".html",
                       mime="text/html", key="_catalog_report_download")
