"""Outcome of each box: a true positive or one of TIDE's error types, in TIDE's order.

The error types and their order follow dbolya/tide `tidecv/errors/main_errors.py` and
`TIDE._error_types` in `tidecv/quantify.py`; the rules that assign them are the compiled
cascade in `core.matching_kernels`.
"""
from __future__ import annotations

from enum import Enum


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
    def short_name(self) -> str:
        return _SHORT_NAMES[self]

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def code(self) -> int:
        """Small integer used in the columnar arrays (index in OUTCOME_CODES)."""
        return OUTCOME_CODES.index(self)


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
