"""Ensemble recipes: the chosen settings as a small JSON, fitted on validation, applied to test.

    recipe = Recipe.of(sweep.best, inputs=["a_val.csv", "b_val.csv"], fitted_on="val.json", map50=0.71)
    text = recipe.to_json()                         # what --recipe-out writes, byte-stable
    result = apply_recipe(Recipe.from_json(text), [a_test, b_test], dataset=test_json)

Inputs are matched by position: the i-th test set plays the role of the i-th validation set
(its weight); the recipe names them so that the pairing can be shown and checked.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Sequence

from core.ensemble import CONF_TYPES, METHODS, EnsembleConfig, EnsembleResult, ensemble_predictions
from core.tables import Predictions

FORMAT = "detlens-ensemble-recipe"
VERSION = 1
_SETTINGS = ("method", "iou_thr", "skip_box_thr", "conf_type", "sigma", "soft_nms_min_score")


@dataclass(frozen=True)
class Recipe:
    """An EnsembleConfig plus the roles of its inputs and, when fitted, where and how well.

    inputs: one name per input (the validation files), in the order test files must follow.
    fitted_on: the validation ground truth's name ("" when not fitted); map50: its mAP@0.5 there.
    """

    config: EnsembleConfig
    inputs: tuple[str, ...]
    fitted_on: str = ""
    map50: float | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, config: EnsembleConfig, inputs: Sequence[str], *, fitted_on: str = "",
           map50: float | None = None) -> "Recipe":
        if config.weights is not None and len(config.weights) != len(inputs):
            raise ValueError(f"Invalid recipe: {len(config.weights)} weights for {len(inputs)} inputs.")
        return cls(config, tuple(str(n) for n in inputs), fitted_on,
                   None if map50 is None or not math.isfinite(map50) else float(map50))

    @property
    def weights(self) -> tuple[float, ...]:
        return self.config.weights or tuple(1.0 for _ in self.inputs)

    def to_dict(self) -> dict:
        c = self.config
        return {
            "format": FORMAT, "version": VERSION,
            "method": c.method, "iou_thr": c.iou_thr, "skip_box_thr": c.skip_box_thr,
            "conf_type": c.conf_type, "sigma": c.sigma, "soft_nms_min_score": c.soft_nms_min_score,
            "weights": list(self.weights),
            "inputs": list(self.inputs),
            "fitted_on": self.fitted_on,
            "validation_map50": self.map50,
        }

    def to_json(self) -> str:
        """Indented JSON, keys in a fixed order, ending in a newline: the same recipe, the same bytes."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, name: str = "recipe") -> "Recipe":
        """Parse a recipe; ValueError naming the file and the field on anything unusable."""
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{name}: not a JSON file ({exc}); give a recipe written by DetLens "
                             "(ensemble --recipe-out or the Ensemble page)") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{name}: not a DetLens ensemble recipe (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise ValueError(f"{name}: recipe version {doc.get('version')!r}; this DetLens reads version {VERSION}")
        missing = [k for k in (*_SETTINGS, "weights", "inputs") if k not in doc]
        if missing:
            raise ValueError(f"{name}: missing field(s) {', '.join(missing)}")
        if doc["method"] not in METHODS or doc["conf_type"] not in CONF_TYPES:
            raise ValueError(f"{name}: method {doc['method']!r} / conf_type {doc['conf_type']!r}: "
                             f"methods are {', '.join(METHODS)}, conf types {', '.join(CONF_TYPES)}")
        inputs, weights = doc["inputs"], doc["weights"]
        if (not isinstance(inputs, list) or not inputs or not isinstance(weights, list)
                or len(weights) != len(inputs)):
            raise ValueError(f"{name}: 'inputs' and 'weights' must be lists of the same, non-zero length")
        try:
            numbers = {k: float(doc[k]) for k in _SETTINGS if k not in ("method", "conf_type")}
            weights = tuple(float(w) for w in weights)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: iou_thr, skip_box_thr, sigma, soft_nms_min_score and weights "
                             "must be numbers") from None
        config = EnsembleConfig(doc["method"], conf_type=doc["conf_type"], **numbers,
                                weights=None if len(set(weights)) == 1 and weights[0] == 1.0 else weights)
        map50 = doc.get("validation_map50")
        return cls(config, tuple(str(n) for n in inputs), str(doc.get("fitted_on") or ""),
                   float(map50) if isinstance(map50, (int, float)) else None)

    def pairing(self, names: Sequence[str]) -> list[tuple[str, str, float]]:
        """(recipe input, given input, weight) by position; ValueError when the counts differ."""
        if len(names) != len(self.inputs):
            raise ValueError(
                f"The recipe was fitted on {len(self.inputs)} input(s) ({', '.join(self.inputs)}); "
                f"{len(names)} given. Give one file per recipe input, in the same order.")
        return list(zip(self.inputs, [str(n) for n in names], self.weights))

    def describe(self) -> str:
        fitted = f", fitted on {self.fitted_on}" if self.fitted_on else ""
        score = f" (mAP@0.5 {self.map50:.4f} there)" if self.map50 is not None else ""
        return f"{self.config.label}{fitted}{score}"


def apply_recipe(recipe: Recipe, inputs: Sequence[Predictions], *, names: Sequence[str] | None = None,
                 **options) -> EnsembleResult:
    """Run the recipe's settings on `inputs` (matched by position); options go to
    core.ensemble.ensemble_predictions (dataset, image_root, default_size, roots, workers...)."""
    recipe.pairing(list(names) if names is not None else [p.source for p in inputs])
    return ensemble_predictions(list(inputs), recipe.config, **options)
