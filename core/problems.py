"""Validation problems: one record per thing wrong with an input file."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"      # the competition server may reject the file (the message says if data was left out)
    WARNING = "warning"  # the file loads; the user should know


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file; `line` is 1-based (a CSV's header is line 1)."""

    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    image_id: str | int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        subject = f" image_id {self.image_id!r}:" if self.image_id is not None else ""
        return f"{where}: {self.severity.value}:{subject} {self.message}"


class ValidationError(ValueError):
    """Raised when an input has errors; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem], summary: str | None = None):
        self.problems = list(problems)
        errors = [p for p in self.problems if p.is_error]
        head = summary or f"{len(errors)} error(s) found"
        lines = [head] + [str(p) for p in errors[:20]]
        if len(errors) > 20:
            lines.append(f"... and {len(errors) - 20} more")
        super().__init__("\n".join(lines))


def errors_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]


def warnings_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if not p.is_error]
