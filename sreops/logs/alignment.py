"""Alignment of messages whose token counts differ by runs of values (rule 4 of the clusterer).

`align` finds a template covering a cluster's template and a new message where they differ only
by runs of value tokens (a list of another length, an optional `(<*>)`, stack frames), those runs
becoming variable-length `SPAN`s. Pure functions over token lists.
"""

from __future__ import annotations

import re

from sreops.logs.masking import PLACEHOLDER
from sreops.logs.slots import GENERAL, SPAN, fits_slot, is_anchor

_GAP_MEMO: dict[str, bool] = {}
_NAMED_FIELD = re.compile(r"[A-Za-z_][\w.\-]*=")


def _gap_token(token: str) -> bool:
    """A token an optional or variable-length part may hold: a value, but not a named field.

    `<*>`, `<*>,`, `(<*>)`, `[<*>]`, `pkg.Class.method:<*>` (list items, a parenthesised
    alternate, stack frames) qualify; `user=<*>` does not: a field with a name is part of the
    event's structure.
    """
    known = _GAP_MEMO.get(token)
    if known is None:
        known = (PLACEHOLDER in token or GENERAL in token) and _NAMED_FIELD.match(token) is None
        if len(_GAP_MEMO) > 100_000:
            _GAP_MEMO.clear()
        _GAP_MEMO[token] = known
    return known


def _words(tokens: list[str]) -> list[str]:
    """The tokens that are plain words (no value in them): every alignment must match them all."""
    return [t for t in tokens if t != SPAN and PLACEHOLDER not in t and GENERAL not in t]


def _subsequence(needles: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(h == n for h in it) for n in needles)


def align(template: list[str], toks: list[str], new_gaps: bool) -> list[str] | None:
    """A template covering both `template` and `toks`, where they differ only by runs of values.

    Tokens are matched in order (equal, or filling a slot); a `SPAN` of the template takes any
    run of value tokens, none included; with `new_gaps`, a run of value tokens present on one side
    only (a list of another length, an optional `(<*>)`) becomes a new `SPAN`. The first token
    must match, and at least one named token besides. None when no such alignment exists.
    """
    m, n = len(template), len(toks)
    if m == 0 or n == 0 or not fits_slot(template[0], toks[0]) and template[0] != toks[0]:
        return None
    # a plain word of the template is never skipped, and matches only itself: a cheap necessary test
    if not _subsequence(_words(template), toks):
        return None
    neg = -1
    # best[i][j]: most matched tokens aligning template[i:] with toks[j:] (neg: impossible)
    best = [[neg] * (n + 1) for _ in range(m + 1)]
    best[m][n] = 0
    for i in range(m, -1, -1):
        for j in range(n, -1, -1):
            if i == m and j == n:
                continue
            score = neg
            if i < m and template[i] == SPAN:
                score = max(score, best[i + 1][j])
                if j < n and _gap_token(toks[j]):
                    score = max(score, best[i][j + 1])
            else:
                matches = i < m and j < n and (template[i] == toks[j] or fits_slot(template[i], toks[j]))
                if matches and best[i + 1][j + 1] >= 0:
                    score = max(score, best[i + 1][j + 1] + 1)
                if new_gaps and i < m and _gap_token(template[i]):
                    score = max(score, best[i + 1][j])
                if new_gaps and j < n and _gap_token(toks[j]):
                    score = max(score, best[i][j + 1])
            best[i][j] = score
    if best[0][0] < 0 or best[1][1] + 1 != best[0][0] and template[0] != SPAN:
        return None
    out: list[str] = []
    anchors = 0
    i = j = 0
    while i < m or j < n:
        here = best[i][j]
        if i < m and template[i] == SPAN:
            if j < n and _gap_token(toks[j]) and best[i][j + 1] == here:
                j += 1
                continue
            _append_span(out)
            i += 1
            continue
        if (
            i < m
            and j < n
            and (template[i] == toks[j] or fits_slot(template[i], toks[j]))
            and best[i + 1][j + 1] + 1 == here
        ):
            out.append(template[i])
            anchors += int(is_anchor(template[i]))
            i, j = i + 1, j + 1
            continue
        if i < m and _gap_token(template[i]) and best[i + 1][j] == here:
            _append_span(out)
            i += 1
            continue
        _append_span(out)
        j += 1
    if anchors < 2 and not (anchors == 1 and not is_anchor(template[0])):
        return None
    return _fold_spans(out)


def _fold_spans(tokens: list[str]) -> list[str]:
    """Runs of values around a span become the span: a list of any length, one item included, fits."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if token == SPAN or (token and _gap_token(token)):
            run.append(token)
            continue
        if SPAN in run:
            out.append(SPAN)
        else:
            out.extend(run)
        run = []
        if token:
            out.append(token)
    return out


def _append_span(out: list[str]) -> None:
    if not out or out[-1] != SPAN:
        out.append(SPAN)
