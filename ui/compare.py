"""The Compare page's parts: styled difference tables and the image view of one listed image,
GT | A | B side by side or one panel at a time, every panel in one colour scheme."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.charts import iou_text
from core.compare import COLOR_SCHEMES, comparison_panels
from ui import state as S
from ui.prediction_sets import PredictionSet, set_view
from ui.sidebar import ActiveData
from ui.widgets import draw_image_panels, image_ref_for, outcome_legend

LAYOUTS = ["side by side", "one at a time"]
LAYOUT_KEY, PANEL_KEY = "_compare_layout", "_compare_panel"
PANEL_CHOICES = ["A", "B", "Ground truth"]  # one at a time: which panel


def _delta_colour(value) -> str:
    if pd.isna(value) or abs(value) < 1e-9:
        return ""
    return "color: #1a7f37" if value > 0 else "color: #cf222e"


def styled(table: pd.DataFrame, deltas: list[str], number_format: str = "{:.4f}"):
    """Numbers formatted, Δ columns signed and green/red."""
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    styler = table.style.format(number_format, subset=[c for c in numeric if c not in deltas], na_rep="–")
    styler = styler.format("{:+.4f}" if "f}" in number_format else "{:+,}", subset=deltas, na_rep="–")
    return styler.map(_delta_colour, subset=deltas)


@st.fragment
def image_view(data: ActiveData, per_image: pd.DataFrame, candidates: pd.DataFrame,
               sets: list[PredictionSet], name_a: str, name_b: str) -> None:
    """GT | A | B of one listed image; a fragment, so its widgets rerun only this view.

    Colour by outcome (the default: what each model got right or wrong is what a comparison is
    for) draws the GT panel in the plain reference colour and each model's missed GT in its own
    panel; by class, every panel is by class. The figure has one legend, so it never mixes them.
    """
    labels = {row.file_name: f"{row.file_name}  (A − B {row.difference:+.3f})" for row in candidates.itertuples()}
    options = list(labels)
    controls = st.columns([3, 1.3, 1.2, 0.8])
    image_key = controls[0].selectbox("Image", options, format_func=labels.get,
                                      **S.bind(S.COMPARE_IMAGE, options))
    layout = controls[1].radio("Layout", LAYOUTS, key=LAYOUT_KEY, horizontal=True,
                               help="One at a time: a larger panel; switch between A, B and the ground truth.")
    color_by = controls[2].radio("Colour by", COLOR_SCHEMES, key="_compare_color_by", horizontal=True)
    show_labels = controls[3].toggle("Labels", value=True, key="_compare_labels")

    image_index = int(per_image.loc[per_image["file_name"] == image_key, "image_index"].iloc[0])
    by_label = {s.label: s for s in sets}
    row = per_image.loc[per_image["image_index"] == image_index].iloc[0]
    shown = []
    for letter, name, ap50 in (("A", name_a, row["ap50_a"]), ("B", name_b, row["ap50_b"])):
        title = f"{letter}: {name} · AP@{iou_text(data.iou_thr)} {ap50:.3f}" if pd.notna(ap50) else f"{letter}: {name}"
        shown.append((title, set_view(data, by_label[name])))
    panels = comparison_panels(data.dataset, image_key, image_index, shown, color_by=color_by,
                               class_names=data.class_names, class_colors=data.class_colors,
                               with_labels=show_labels)
    if layout == LAYOUTS[1]:
        which = st.radio("Panel", PANEL_CHOICES, key=PANEL_KEY, horizontal=True,
                         format_func=lambda p: {"A": f"A: {name_a}", "B": f"B: {name_b}"}.get(p, p))
        panels = [panels[{"Ground truth": 0, "A": 1, "B": 2}[which]]]
    if color_by == "outcome":
        outcome_legend(("tp", "duplicate", "localization", "classification", "both", "background",
                        "missed", "gt"))
    draw_image_panels(image_ref_for(data, image_key, image_index), panels, key="compare_panels",
                      height=620 if len(panels) > 1 else 760)
    st.caption(("Scroll to zoom, drag to pan: the three panels follow each other. " if len(panels) > 1
                else "One panel at a time: switch between A, B and the ground truth above. ")
               + "Boxes below the score threshold are hidden.")
