"""Scores of a log parser against ground truth: GA, FGA and PA, as the Loghub literature defines them.

- **GA**, grouping accuracy (Zhu et al., ICSE 2019): a line counts as correct when the set of
  lines in its predicted cluster is exactly the set of lines of its ground-truth event.
- **FGA**, F1 of grouping accuracy (Jiang et al., ISSTA 2024): precision and recall of predicted
  clusters that exactly equal a ground-truth group.
- **PA**, parsing accuracy (Dai et al. / Jiang et al.): a line counts as correct when its
  predicted template equals its ground-truth template after `normalize_template` (applied to
  both sides: whitespace collapsed, glued placeholders such as `<*>:<*>` made one).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence


def _groups(labels: Sequence) -> dict:
    groups: dict = defaultdict(set)
    for index, label in enumerate(labels):
        groups[label].add(index)
    return groups


def _check_lengths(predicted: Sequence, truth: Sequence) -> None:
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} ground-truth lines")


def grouping_accuracy(predicted: Sequence, truth: Sequence) -> float:
    """Fraction of lines whose predicted group is exactly their ground-truth group (Zhu et al.)."""
    _check_lengths(predicted, truth)
    if not truth:
        return 1.0
    true_sets = {frozenset(s) for s in _groups(truth).values()}
    correct = sum(len(s) for s in _groups(predicted).values() if frozenset(s) in true_sets)
    return correct / len(truth)


def f1_grouping_accuracy(predicted: Sequence, truth: Sequence) -> float:
    """F1 of predicted groups that exactly equal a ground-truth group (Jiang et al.)."""
    _check_lengths(predicted, truth)
    if not truth:
        return 1.0
    true_sets = {frozenset(s) for s in _groups(truth).values()}
    predicted_sets = [frozenset(s) for s in _groups(predicted).values()]
    exact = sum(s in true_sets for s in predicted_sets)
    if exact == 0:
        return 0.0
    precision = exact / len(predicted_sets)
    recall = exact / len(true_sets)
    return 2 * precision * recall / (precision + recall)


_GLUED = re.compile(r"<\*>(?:[:.\-/_+]*<\*>)+")
_SPACES = re.compile(r"\s+")


def normalize_template(template: str) -> str:
    """A template in comparable form: whitespace collapsed, runs of glued placeholders made one."""
    return _GLUED.sub("<*>", _SPACES.sub(" ", str(template)).strip())


def parsing_accuracy(predicted_templates: Sequence[str], truth_templates: Sequence[str]) -> float:
    """Fraction of lines whose normalised predicted template equals the ground truth's."""
    _check_lengths(predicted_templates, truth_templates)
    if not truth_templates:
        return 1.0
    cache: dict[str, str] = {}

    def norm(t: str) -> str:
        if t not in cache:
            cache[t] = normalize_template(t)
        return cache[t]

    hits = sum(norm(p) == norm(t) for p, t in zip(predicted_templates, truth_templates, strict=True))
    return hits / len(truth_templates)
