"""Charts of a test submission without ground truth (pure: tables in, figures out)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts import integer_bin_edges

_PREDICTED, _EXPECTED, _SUGGESTED = "#ff7f0e", "#1f77b4", "#2ca02c"


def class_mix_figure(mix: pd.DataFrame, score_thr: float, prior_name: str) -> go.Figure:
    """Grouped bars per class: predicted boxes (score >= score_thr) and the training-prior count."""
    fig = go.Figure()
    fig.add_bar(x=mix["name"], y=mix["expected"], name=f"expected from {prior_name}", marker_color=_EXPECTED,
                hovertemplate="%{x}: %{y:,.0f} expected<extra></extra>")
    ratio = [f"{r:.2f}× expected" if np.isfinite(r) else "" for r in mix["ratio"]]
    fig.add_bar(x=mix["name"], y=mix["predicted"], name=f"predicted (score ≥ {score_thr:.2f})",
                marker_color=_PREDICTED, customdata=ratio,
                hovertemplate="%{x}: %{y:,} predicted, %{customdata}<extra></extra>")
    fig.update_layout(title="Boxes per class: predicted vs the training mix", barmode="group", height=380,
                      xaxis_tickangle=-45, margin=dict(l=10, r=10, t=80, b=10),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig


def count_curve_figure(curve: pd.DataFrame, expected: float, suggested: float, score_thr: float, *,
                       title: str) -> go.Figure:
    """Boxes kept against the score threshold, the expected count and the suggested threshold."""
    fig = go.Figure()
    fig.add_scatter(x=curve["score_thr"], y=curve["boxes"], mode="lines", name="boxes kept",
                    line=dict(color=_PREDICTED))
    fig.add_hline(y=expected, line=dict(color=_EXPECTED, dash="dot"),
                  annotation_text=f"expected {expected:,.0f}", annotation_position="top right")
    fig.add_vline(x=suggested, line=dict(color=_SUGGESTED, dash="dot"),
                  annotation_text=f"suggested {suggested:.2f}", annotation_position="top right")
    fig.add_vline(x=score_thr, line=dict(color="#444444", dash="dash"),
                  annotation_text=f"current {score_thr:.2f}", annotation_position="top left")
    fig.update_layout(title=title, xaxis_title="score threshold", yaxis_title="boxes (log scale)",
                      yaxis_type="log", xaxis_range=[0, 1], height=380, margin=dict(l=10, r=10, t=50, b=10),
                      showlegend=False)
    return fig


def boxes_per_image_figure(test_counts: np.ndarray, train_counts: np.ndarray, score_thr: float,
                           prior_name: str) -> go.Figure:
    """Share of images by box count: predicted (score >= score_thr) on test vs GT in training."""
    hi = int(max(test_counts.max(initial=0), train_counts.max(initial=0)))
    edges = integer_bin_edges(0, hi, 40)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for counts, name, color in ((train_counts, f"ground truth ({prior_name})", _EXPECTED),
                                (test_counts, f"predicted, score ≥ {score_thr:.2f}", _PREDICTED)):
        hist, _ = np.histogram(counts, bins=edges)
        share = hist / max(len(counts), 1)
        fig.add_bar(x=centres, y=share, name=name, marker_color=color, opacity=0.75,
                    width=np.diff(edges) * 0.9, hovertemplate="%{x:.0f} boxes: %{y:.1%} of images<extra></extra>")
    fig.update_layout(title="Boxes per image", barmode="overlay", xaxis_title="boxes in the image",
                      yaxis_title="share of images", yaxis_tickformat=".0%", height=380,
                      margin=dict(l=10, r=10, t=80, b=10), legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    return fig
