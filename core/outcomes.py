"""What a box turned out to be: each Outcome and ground-truth status with its order, label,
short name, description and colour. The one place these are declared; every page, chart and
drawing reads them from here.

The error types and their order follow dbolya/tide `tidecv/errors/main_errors.py` and
`TIDE._error_types` in `tidecv/quantify.py`; the rules that assign them are the compiled
cascade in `core.matching_kernels`.
"""
from __future__ import annotations

from enum import Enum
from types import MappingProxyType


class Outcome(str, Enum):
    """What a prediction (or a ground-truth box, for MISSED) turned out to be."""

    TP = "tp"
    CLASSIFICATION = "classification"
    LOCALIZATION = "localization"
    BOTH = "both"
    DUPLICATE = "duplicate"
    BACKGROUND = "background"
    MISSED = "missed"
    # Not an error: COCO leaves the box out (it matched a crowd region, or it is beyond the
    # 100 highest-scoring boxes of its class in its image).
    IGNORED = "ignored"

    @property
    def label(self) -> str:
        """Display name in legends, filters, tables and charts ("Missed GT")."""
        return _LABELS[self]

    @property
    def color(self) -> str:
        """Hex colour of its boxes, chips and bars."""
        return _COLORS[self]

    @property
    def short_name(self) -> str:
        return _SHORT_NAMES[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def code(self) -> int:
        """Small integer used in the columnar arrays (index in OUTCOME_CODES)."""
        return OUTCOME_CODES.index(self)


# Green = right, warm colours = false positives, blue = missed ground truth.
_COLORS = {
    Outcome.TP: "#2ca02c",
    Outcome.CLASSIFICATION: "#ff7f0e",
    Outcome.LOCALIZATION: "#ffbf00",
    Outcome.BOTH: "#9467bd",
    Outcome.DUPLICATE: "#e377c2",
    Outcome.BACKGROUND: "#d62728",
    Outcome.MISSED: "#1f77b4",
    Outcome.IGNORED: "#bcbd22",
}

_LABELS = {
    Outcome.TP: "TP",
    Outcome.CLASSIFICATION: "Classification",
    Outcome.LOCALIZATION: "Localization",
    Outcome.BOTH: "Cls + loc",
    Outcome.DUPLICATE: "Duplicate",
    Outcome.BACKGROUND: "Background",
    Outcome.MISSED: "Missed GT",
    Outcome.IGNORED: "Ignored by COCO",  # on a crowd region or beyond the 100 best: not "on crowd" only
}

_SHORT_NAMES = {
    Outcome.TP: "TP",
    Outcome.CLASSIFICATION: "Cls",
    Outcome.LOCALIZATION: "Loc",
    Outcome.BOTH: "Both",
    Outcome.DUPLICATE: "Dupe",
    Outcome.BACKGROUND: "Bkg",
    Outcome.MISSED: "Miss",
    Outcome.IGNORED: "Ign",
}

_DESCRIPTIONS = {
    Outcome.TP: "Correct: right class, IoU >= the threshold with a ground truth nobody else took.",
    Outcome.CLASSIFICATION: "Right place, wrong class: IoU >= the threshold with a box of another class.",
    Outcome.LOCALIZATION: "Right class, poor box: 0.1 <= IoU <= the threshold with a box of its class.",
    Outcome.BOTH: "Wrong class and poor box: overlaps a box of another class, but not enough.",
    Outcome.DUPLICATE: "A second box on an object already found by a higher-scoring box.",
    Outcome.BACKGROUND: "A box on nothing: IoU <= 0.1 with every ground-truth box.",
    Outcome.MISSED: "A ground-truth box no prediction found.",
    Outcome.IGNORED: "Left out by COCO: on a crowd region, or beyond the 100 best boxes of its class.",
}

# The order TIDE reports its main errors in (TIDE._error_types), with TP first for tables.
ERROR_TYPES: list[Outcome] = [
    Outcome.CLASSIFICATION, Outcome.LOCALIZATION, Outcome.BOTH,
    Outcome.DUPLICATE, Outcome.BACKGROUND, Outcome.MISSED,
]
# Integer code of each outcome in the columnar arrays (its position here); a prediction has
# any of them but MISSED, which belongs to ground-truth boxes.
OUTCOME_CODES: list[Outcome] = [
    Outcome.TP, Outcome.CLASSIFICATION, Outcome.LOCALIZATION, Outcome.BOTH,
    Outcome.DUPLICATE, Outcome.BACKGROUND, Outcome.IGNORED, Outcome.MISSED,
]
# Error types a prediction can have (all but MISSED), in TIDE order.
PREDICTION_ERRORS: list[Outcome] = [e for e in ERROR_TYPES if e is not Outcome.MISSED]
# Display order of legends, filters, tables and charts: TP, the errors in TIDE's order, ignored.
DISPLAY_ORDER: list[Outcome] = [Outcome.TP, *ERROR_TYPES, Outcome.IGNORED]
# What a prediction can be (all but MISSED), in display order: drawing's layers, explorer filter.
PREDICTION_OUTCOMES: list[Outcome] = [o for o in DISPLAY_ORDER if o is not Outcome.MISSED]
# Filter options (plain values, so widget state stays a list of str), in display order.
OUTCOME_CHOICES: list[str] = [o.value for o in DISPLAY_ORDER]


class GTStatus(str, Enum):
    """What a ground-truth box turned out to be (a GT table's `status` column); PLAIN when
    there are no predictions to compare with. MATCHED and MISSED look like TP and MISSED."""

    MATCHED = "tp"
    MISSED = "missed"
    CROWD = "crowd"
    PLAIN = "gt"

    @property
    def label(self) -> str:
        return _GT_STYLE[self][0]

    @property
    def color(self) -> str:
        return _GT_STYLE[self][1]

    @property
    def dash(self) -> str:
        """Line style of its boxes: missed dashed, crowd (ignored by COCO) dotted."""
        return _GT_STYLE[self][2]


_GT_STYLE = {  # label, colour, dash; in the order GT layers are drawn and listed
    GTStatus.MATCHED: (Outcome.TP.label, Outcome.TP.color, "solid"),
    GTStatus.MISSED: (Outcome.MISSED.label, Outcome.MISSED.color, "dash"),
    GTStatus.CROWD: ("Crowd (ignored)", "#7f7f7f", "dot"),
    GTStatus.PLAIN: ("Ground truth", "#17becf", "solid"),
}
# A prediction with nothing to compare it with (no outcome), beside GTStatus.PLAIN boxes.
PREDICTION_COLOR = "#ff00ff"

# Label and colour by value, for string columns and widget options ("tp", "missed", "crowd", ...);
# read-only views of the tables above.
OUTCOME_LABELS = MappingProxyType({**{s.value: s.label for s in GTStatus}, **{o.value: o.label for o in Outcome}})
OUTCOME_COLORS = MappingProxyType({**{s.value: s.color for s in GTStatus}, **{o.value: o.color for o in Outcome}})


def legend_entries(values=None) -> list[tuple[str, str]]:
    """(label, colour) of each outcome / GT status value in `values` (default: every outcome and
    crowd GT), in display order whatever the order given."""
    order = [*OUTCOME_CHOICES, GTStatus.CROWD.value, GTStatus.PLAIN.value]
    if values is None:
        values = order[:-1]
    unknown = sorted(set(values) - set(order))
    if unknown:
        raise ValueError(f"Unknown outcome {', '.join(map(repr, unknown))}. Known: {', '.join(order)}")
    return [(OUTCOME_LABELS[v], OUTCOME_COLORS[v]) for v in order if v in set(values)]
