"""Figures of images with boxes: N side-by-side panels with synchronised zoom, and box crops.

Pure functions (no streamlit): tables of xyxy boxes in, plotly figures or PIL images out.
A missing image is drawn as a blank canvas of the image's size, so boxes stay browsable.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image, ImageDraw

from core.colors import text_color_on
from core.outcomes import OUTCOME_LABELS, PREDICTION_OUTCOMES, GTStatus
from core.tables import class_name

BLANK_CANVAS_COLOR = "#e8e8e8"
MAX_LABELS_PER_PANEL = 300  # beyond this, labels hide the image; hover still works
_IMAGE_ITEM = "panel_image"  # name of the template image the panels share


@dataclass
class BoxLayer:
    """Boxes drawn alike (one legend entry): boxes_xyxy [N, 4] absolute pixels.

    labels: [N] text written on each box ("" for none); hovers: [N] hover-card text (plotly
    `<br>` line breaks allowed); dash: "solid", "dash" or "dot".
    """

    name: str
    color: str
    boxes_xyxy: np.ndarray
    labels: list[str] = field(default_factory=list)
    hovers: list[str] = field(default_factory=list)
    dash: str = "solid"
    line_width: float = 2.0

    def __post_init__(self):
        self.boxes_xyxy = np.asarray(self.boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(self.boxes_xyxy)
        if self.labels and len(self.labels) != n:
            raise ValueError(f"BoxLayer {self.name!r}: {len(self.labels)} labels for {n} boxes")
        if self.hovers and len(self.hovers) != n:
            raise ValueError(f"BoxLayer {self.name!r}: {len(self.hovers)} hovers for {n} boxes")


@dataclass
class Panel:
    """One panel of a figure: a title and the box layers drawn over the image."""

    title: str
    layers: list[BoxLayer] = field(default_factory=list)


def image_data_uri(image: Image.Image, *, max_side: int = 1024, quality: int = 85) -> str:
    """A JPEG data URI of `image`, downscaled so its longest side is at most max_side."""
    # No EXIF rotation: COCO boxes are in the stored pixel grid, as the training code reads it.
    image = image.convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _outline_xy(boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed rectangle outlines of [N, 4] boxes as one None-separated polyline (x, y)."""
    x1, y1, x2, y2 = boxes_xyxy.T
    gap = np.full(len(boxes_xyxy), np.nan)
    xs = np.stack([x1, x2, x2, x1, x1, gap], axis=1).ravel()  # [N*6]
    ys = np.stack([y1, y1, y2, y2, y1, gap], axis=1).ravel()  # [N*6]
    return xs, ys


def _label_halo(color: str) -> str:
    """CSS text-shadow drawing a solid-looking backdrop of `color` behind label text."""
    offsets = ["2px 0", "-2px 0", "0 2px", "0 -2px", "2px 2px", "-2px -2px", "2px -2px", "-2px 2px"]
    return ", ".join(f"{offset} 1px {color}" for offset in offsets)


def _axis_names(i: int) -> tuple[str, str, str, str]:
    """Trace refs and layout keys of panel i: ('x', 'y', 'xaxis', 'yaxis'), then 'x2' ..."""
    suffix = "" if i == 0 else str(i + 1)
    return f"x{suffix}", f"y{suffix}", f"xaxis{suffix}", f"yaxis{suffix}"


LABEL_PX = (7.0, 16.0)     # a bold 11 px label: about 7 px per character, 16 px tall
CONTAINER_PX = 1200.0      # the page's usual width: the panels share it


def label_positions(boxes_xyxy: np.ndarray, labels: list[str], unit: float,
                    placed: list[tuple[float, float, float, float]], image_width: float = np.inf
                    ) -> list[tuple[str, float] | None]:
    """(plotly textposition, x of the text's anchor) of each box's label: above the box, else
    inside it when there is no room above (the image's top edge) or another label in `placed`
    (x0, y0, x1, y1, data units, appended to) is there; from the box's left edge, or ending at
    its right edge when the text would run past the image's right edge; None (no label, the box
    keeps its hover card) when every place would cover another label. unit: data units per px."""
    def free(rect):
        return rect[1] >= 0 and not any(rect[0] < p[2] and p[0] < rect[2] and rect[1] < p[3] and p[1] < rect[3]
                                        for p in placed)
    positions: list[tuple[str, float] | None] = []
    for (x1, y1, x2, _), text in zip(np.asarray(boxes_xyxy, dtype=np.float64), labels):
        if not text:
            positions.append(("top right", x1))
            continue
        w, h = len(text) * LABEL_PX[0] * unit, LABEL_PX[1] * unit
        if x1 + w <= image_width:
            start, side = x1, "right"                       # text runs right from the corner
        else:
            start, side = min(x2, image_width) - w, "left"  # text ends at the box's right edge
        anchor = x1 if side == "right" else start + w
        above, inside = (start, y1 - h, start + w, y1), (start, y1, start + w, y1 + h)
        found = next(((r, p) for r, p in ((above, f"top {side}"), (inside, f"bottom {side}")) if free(r)), None)
        if found is None:  # a label written over another makes both unreadable
            positions.append(None)
            continue
        placed.append(found[0])
        positions.append((found[1], anchor))
    return positions


def _layer_traces(layer: BoxLayer, xref: str, yref: str, show_legend: bool,
                  show_labels: bool, positions: list[tuple[str, float] | None] | None = None) -> list[dict]:
    """Two scatter traces per layer: the outlines, and the points carrying labels and hover cards.
    Plain dicts: a go.Scatter validates every property (~1.5 ms each, ~50 ms for GT | A | B)."""
    boxes = layer.boxes_xyxy
    xs, ys = _outline_xy(boxes)
    outline = dict(
        type="scatter", x=xs, y=ys, mode="lines", xaxis=xref, yaxis=yref, name=layer.name,
        legendgroup=layer.name, showlegend=show_legend, hoverinfo="skip",
        line=dict(color=layer.color, width=layer.line_width, dash=layer.dash),
    )
    # Hover targets where each box's label is written (its top-left corner, or top-right when the
    # label ends there) and at its centre: plotly hovers points, not areas. Text traces, not
    # annotations: far cheaper to redraw. No markers: plotly finds the point under the cursor from
    # its coordinates, so invisible markers only added an SVG path per point to every redraw.
    hovers = list(layer.hovers or [layer.name] * len(boxes))
    labels = list(layer.labels) if show_labels and layer.labels else [""] * len(boxes)
    label_x = boxes[:, 0].copy()
    if positions is not None:  # None: no free place for that label
        labels = [text if where is not None else "" for text, where in zip(labels, positions)]
        label_x = np.array([where[1] if where is not None else x for where, x in zip(positions, label_x)])
        positions = [where[0] if where is not None else "top right" for where in positions]
    centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
    points = dict(
        type="scatter", x=np.concatenate([label_x, centre_x]), y=np.concatenate([boxes[:, 1], centre_y]),
        mode="text" if any(labels) else "none", xaxis=xref, yaxis=yref,
        name=layer.name, legendgroup=layer.name, showlegend=False,
        text=labels + [""] * len(boxes),
        textposition=(positions or ["top right"] * len(boxes)) + ["top right"] * len(boxes),
        # a halo of the layer colour around contrasting text reads like a label tag on any
        # photo, and stays a cheap text trace (annotations with a bgcolor redraw slowly)
        textfont=dict(size=11, weight="bold", color=text_color_on(layer.color),
                      shadow=_label_halo(layer.color)),
        hovertext=hovers * 2, hoverinfo="text",
        hoverlabel=dict(bgcolor=layer.color, font=dict(color=text_color_on(layer.color))),
    )
    return [outline, points]


def panels_figure(
    panels: list[Panel],
    width: float,
    height: float,
    *,
    image_uri: str | None = None,
    missing_notice: str | None = None,
    figure_height: int = 560,
    show_labels: bool = True,
) -> go.Figure:
    """Side-by-side panels of one width x height image with boxes; zoom and pan are shared.

    image_uri: a data URI (image_data_uri) or None to draw a blank canvas of the image's size;
    missing_notice: text written on a blank canvas. Axes are pixels, y pointing down.
    """
    n = max(len(panels), 1)
    gap = 0.015
    # Side by side, "Predictions (file, score ≥ t)" is wider than a panel on a narrow page:
    # its parenthesis goes on a second line.
    titles = [p.title.replace(" (", "<br>(", 1) if n > 1 else p.title for p in panels]
    layout: dict = dict(
        height=figure_height, margin=dict(l=4, r=4, t=44 if any("<br>" in t for t in titles) else 28, b=4),
        dragmode="pan",
        hovermode="closest", plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.01, xanchor="left", x=0),
        images=[], annotations=[],
    )
    if image_uri is not None:
        # The image is sent once, as a named template item every panel refers to: as a plain
        # layout image per panel the data URI would travel (and be decoded) once per panel.
        template = pio.templates[pio.templates.default].to_plotly_json() if pio.templates.default else {}
        template["layout"] = {**template.get("layout", {}), "images": [dict(
            name=_IMAGE_ITEM, source=image_uri, x=0, y=0, sizex=width, sizey=height,
            xanchor="left", yanchor="top", sizing="stretch", layer="below")]}
        layout["template"] = template  # the default template (the app's theme) plus the image
    traces: list[dict] = []
    seen_legend: set[str] = set()
    for i, panel in enumerate(panels):
        xref, yref, xkey, ykey = _axis_names(i)
        x_axis = dict(domain=[i / n + gap, (i + 1) / n - gap], range=[0, width], showgrid=False,
                      zeroline=False, showticklabels=False, anchor=yref, constrain="domain")
        y_axis = dict(range=[height, 0], showgrid=False, zeroline=False, showticklabels=False,
                      anchor=xref, scaleanchor=xref, scaleratio=1, constrain="domain")
        if i > 0:  # synchronised zoom and pan: every panel's axes follow the first panel's
            x_axis["matches"] = "x"
            y_axis["matches"] = "y"
        layout[xkey], layout[ykey] = x_axis, y_axis
        # The panel's frame, drawn as a shape so a blank canvas shows the image's extent.
        layout.setdefault("shapes", []).append(dict(
            type="rect", xref=xref, yref=yref, x0=0, y0=0, x1=width, y1=height,
            line=dict(color="#999999", width=1), layer="below",
            fillcolor=BLANK_CANVAS_COLOR if image_uri is None else None))
        if image_uri is not None:  # the template's image, placed in this panel
            layout["images"].append(dict(templateitemname=_IMAGE_ITEM, xref=xref, yref=yref))
        elif missing_notice:
            layout["annotations"].append(dict(
                x=width / 2, y=height / 2, xref=xref, yref=yref, text=missing_notice,
                showarrow=False, font=dict(size=13, color="#555555")))
        layout["annotations"].append(dict(
            text=f"<b>{titles[i]}</b>", x=(i + 0.5) / n, y=1.0, xref="paper", yref="paper",
            xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
        n_labels = 0
        # data units per screen pixel with the whole image shown (the panel is height- or width-bound)
        unit = max(height / max(figure_height - 32, 1), width / (CONTAINER_PX / n))
        placed: list[tuple[float, float, float, float]] = []  # this panel's labels so far
        for layer in panel.layers:
            if len(layer.boxes_xyxy) == 0:
                continue
            labelled = show_labels and n_labels < MAX_LABELS_PER_PANEL
            n_labels += len(layer.boxes_xyxy) if labelled else 0
            positions = (label_positions(layer.boxes_xyxy, list(layer.labels), unit, placed, width)
                         if labelled and layer.labels else None)
            traces += _layer_traces(layer, xref, yref, layer.name not in seen_legend, labelled, positions)
            seen_legend.add(layer.name)
    # Built from plain values above; plotly's per-property validation would cost ~50 ms here.
    return go.Figure(data=traces, layout=layout, _validate=False)


# ----------------------------------------------------------------------------------- crops
def crop_region(box_xyxy, image_width: float, image_height: float, *, pad_frac: float = 0.25,
                min_side: float = 48.0) -> tuple[int, int, int, int]:
    """Integer (left, top, right, bottom) around a box, padded by pad_frac of its size, at least
    min_side wide and tall, clipped to the image."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w = max((x2 - x1) * (1 + 2 * pad_frac), min_side) / 2
    half_h = max((y2 - y1) * (1 + 2 * pad_frac), min_side) / 2
    left = int(np.clip(np.floor(cx - half_w), 0, max(image_width - 1, 0)))
    top = int(np.clip(np.floor(cy - half_h), 0, max(image_height - 1, 0)))
    right = int(np.clip(np.ceil(cx + half_w), left + 1, max(image_width, left + 1)))
    bottom = int(np.clip(np.ceil(cy + half_h), top + 1, max(image_height, top + 1)))
    return left, top, right, bottom


def render_crop(
    image: Image.Image | None,
    image_size: tuple[float, float],
    focus_box_xyxy,
    outlines: list[tuple[np.ndarray, str]],
    *,
    out_side: int = 180,
) -> Image.Image:
    """A square-ish thumbnail around focus_box with each (box_xyxy, hex colour) outline drawn.

    image None (file missing) gives a blank canvas crop, so the box shape is still visible.
    """
    width, height = image_size
    left, top, right, bottom = crop_region(focus_box_xyxy, width, height)
    if image is None:
        crop = Image.new("RGB", (right - left, bottom - top), BLANK_CANVAS_COLOR)
    else:
        crop = image.crop((left, top, right, bottom))  # crop first: convert only the crop
        crop = crop if crop.mode == "RGB" else crop.convert("RGB")
    scale = out_side / max(crop.size)
    crop = crop.resize((max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale))))
    draw = ImageDraw.Draw(crop)
    line_width = max(2, out_side // 90)
    for box, color in outlines:
        x1, y1, x2, y2 = ((np.asarray(box, dtype=np.float64) - [left, top, left, top]) * scale)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line_width)
    return crop


# ------------------------------------------------------------------ tables of boxes -> layers
def _names(category_ids, class_names: dict[int, str]) -> list[str]:
    return [class_name(class_names, c) for c in category_ids]


def prediction_layers(dets, *, color_by: str, class_names: dict[int, str],
                      class_colors: dict[int, str], with_labels: bool = True) -> list[BoxLayer]:
    """Layers for predictions: a table with category_id, score, x1, y1, x2, y2 and optionally
    outcome (an Outcome value) and iou. color_by "outcome" (needs the outcome column) or "class";
    outcome layers come in core.outcomes' display order."""
    if color_by not in ("outcome", "class"):
        raise ValueError(f"Invalid color_by {color_by!r}. Only 'outcome' and 'class' are supported.")
    if color_by == "outcome" and "outcome" not in dets:
        color_by = "class"
    names = _names(dets["category_id"], class_names)
    scores = dets["score"].to_numpy(dtype=np.float64)
    outcomes = dets["outcome"].astype(str).to_numpy() if "outcome" in dets else None
    ious = dets["iou"].to_numpy(dtype=np.float64) if "iou" in dets else None
    labels = [f"{n} {s:.2f}" for n, s in zip(names, scores)]
    hovers = []
    for i, (name, score) in enumerate(zip(names, scores)):
        card = f"<b>{name}</b><br>score {score:.3f}"
        if ious is not None:
            card += f"<br>IoU {ious[i]:.2f}"
        if outcomes is not None:
            card += f"<br>{OUTCOME_LABELS.get(outcomes[i], outcomes[i])}"
        hovers.append(card)
    boxes = dets[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64).reshape(-1, 4)
    if color_by == "outcome":
        groups = [(o.label, o.color, outcomes == o.value) for o in PREDICTION_OUTCOMES]
    else:
        category_ids = dets["category_id"].to_numpy()
        groups = [(class_name(class_names, c), class_colors.get(int(c), "#ff00ff"),
                   category_ids == c) for c in sorted(set(category_ids.tolist()))]
    layers = []
    for name, color, mask in groups:
        idx = np.flatnonzero(mask)
        if len(idx):
            layers.append(BoxLayer(
                name, color, boxes[idx], labels=[labels[i] for i in idx] if with_labels else [],
                hovers=[hovers[i] for i in idx], dash="solid"))
    return layers


def gt_layers(gts, *, color_by: str, class_names: dict[int, str], class_colors: dict[int, str],
              with_labels: bool = True) -> list[BoxLayer]:
    """Layers for ground truth: a table with category_id, x1, y1, x2, y2, status (a GTStatus
    value) and optionally hover_extra (text added to the hover card). Crowd boxes are
    always grey and dotted (COCO ignores them); missed boxes are dashed."""
    names = _names(gts["category_id"], class_names)
    status = gts["status"].astype(str).to_numpy()
    extra = gts["hover_extra"].astype(str).tolist() if "hover_extra" in gts else [""] * len(gts)
    boxes = gts[["x1", "y1", "x2", "y2"]].to_numpy(dtype=np.float64).reshape(-1, 4)
    labels = [f"{n} (crowd)" if s == GTStatus.CROWD.value else n for n, s in zip(names, status)]
    hovers = [f"<b>{n}</b> (ground truth)<br>{OUTCOME_LABELS[s]}" + (f"<br>{e}" if e else "")
              for n, s, e in zip(names, status, extra)]
    layers = []
    if color_by == "outcome":
        for s in GTStatus:
            idx = np.flatnonzero(status == s.value)
            if len(idx):
                layers.append(BoxLayer(
                    s.label if s is GTStatus.PLAIN else f"GT: {s.label}", s.color, boxes[idx], dash=s.dash,
                    labels=[labels[i] for i in idx] if with_labels else [],
                    hovers=[hovers[i] for i in idx]))
        return layers
    category_ids = gts["category_id"].to_numpy()
    for c in sorted(set(category_ids.tolist())):
        for crowd in (False, True):
            idx = np.flatnonzero((category_ids == c) & ((status == GTStatus.CROWD.value) == crowd))
            if len(idx):
                name = class_name(class_names, c)
                layers.append(BoxLayer(
                    f"{name} (crowd)" if crowd else name,
                    GTStatus.CROWD.color if crowd else class_colors.get(int(c), "#ff00ff"),
                    boxes[idx], dash=GTStatus.CROWD.dash if crowd else "solid",
                    labels=[labels[i] for i in idx] if with_labels else [],
                    hovers=[hovers[i] for i in idx]))
    return layers
