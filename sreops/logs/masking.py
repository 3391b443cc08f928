"""Masking of the variable parts of a log message: the values that change between two occurrences
of the same event become `<*>`, so that both occurrences read the same.

The rules name kinds of values, not datasets, so they carry over to logs never seen before:

- numbers and identifiers that carry digits: `42`, `-1.5`, `0x1f`, `blk_-5083`, `node-246`,
  `10.0.0.1`, `2bd79ce`, `core.2275` (a word keeps a lone trailing digit when it reads as a
  name: `eth0`, `ssh2`, `SOCKS5`);
- addresses: URLs, paths with a query string, MAC addresses, host names (`a.b.example.com`,
  `github.com`), `host:port`;
- paths (`/var/log/x`, `./run.sh`, `C:\\x`, `pkg/Class.method`) and file names with a common
  extension (`chrome.exe`, `workers.properties`);
- hexadecimal strings of 8 or more characters, booleans, quoted values of `key="…"`, and the
  empty `()` where a value was expected;
- units and dates next to a masked number (`12 KB`, `<1 sec`, `Jul 10 <*>`), and placeholders
  glued by `:`, `.`, `-`, `/`, `_`, `+` (`<*>:<*>`), which become one.

Everything else (words, punctuation, spacing) is kept, so lines that differ only in a
meaningful word still differ after masking. The function is written for speed: one regular
expression pass per new token finds the candidate words, and tokens seen before (most of
them: constant words) come from a memo.
"""

from __future__ import annotations

import re

PLACEHOLDER = "<*>"

# Characters that separate the words of a message (a dot does not: it lives inside numbers,
# hosts and class names).
_DELIMS = r"\s=:,;()\[\]{}<>\"'|#@"
_TLDS = (
    "com|net|org|edu|gov|mil|int|info|biz|io|co|us|uk|de|fr|jp|cn|hk|tw|kr|ru|br|in|au|ca|nl|it|es|eu"
    "|ch|se|no|pl|cz|local|localdomain|lan|internal"
)
_EXTENSIONS = (
    "exe|dll|so|jar|war|py|sh|bat|cmd|ps1|log|txt|out|err|conf|cfg|ini|xml|json|yaml|yml|toml|properties"
    "|html?|js|css|png|jpe?g|gif|svg|zip|gz|tgz|tar|bz2|xz|rpm|deb|pid|sock|lock|tmp|bak|dat|db|sqlite|csv"
    "|pdf|class|rb|pl|php|cpp|java|go|rs|md"
)

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>]+")
# A path with a query string (`/search?q=lamp&page=2`) is one value, query included.
_PATH_QUERY = re.compile(r"(?<![^\s(\[=\"'])/[^\s?\"']*\?[^\s\"'<>()\[\]]+")
_MAC = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{2}[:-]){5,}[0-9A-Fa-f]{2}(?![\w:])")
_QUOTED_VALUE = re.compile(r"(?<==)(\"|')[^\"'\n]*\1")
# A candidate is any word that might be a value: it holds a digit, a dot, a slash or a
# backslash, is a long hex string or a boolean, or is a lowercase name followed by `:port`
# (only where a host can stand: at a word start after a space, bracket, `=` or quote).
_CANDIDATE = re.compile(
    rf"(?<![^{_DELIMS}])(?:"
    rf"(?P<host>(?<![^\s\[(=\"'])[a-z][a-z0-9-]*)(?=:\d{{2,5}}(?![\d.:]))"
    rf"|(?P<flag>(?:true|false|TRUE|FALSE|True|False)(?![^{_DELIMS}]))"
    rf"|(?P<hex>[a-fA-F]{{8,}}(?![^{_DELIMS}]))"
    rf"|(?P<word>[^{_DELIMS}]*[0-9./\\][^{_DELIMS}]*)"
    r")"
)
# A digit makes a value unless it is a lone digit closing a name (eth0, ssh2, SOCKS5).
_NUMERIC = re.compile(r"\d\d|(?<![A-Za-z])\d")
_DOT_RUN = re.compile(r"(\.\.+)")
_NAMED_VALUE = re.compile(
    rf"[0-9a-fA-F]{{8,}}|0[xX][0-9a-fA-F]+"
    rf"|[a-zA-Z0-9][a-zA-Z0-9-]*(?:\.[a-zA-Z0-9-]+)*\.(?:{_TLDS})"
    rf"|[a-z0-9][a-z0-9-]*(?:\.[a-z0-9][a-z0-9-]*){{2,}}"
    rf"|[\w-]+\.(?i:{_EXTENSIONS})"
)
_UNIT = re.compile(
    r"<\*>\s?(?:[KMGTPE]i?B|B|bytes?|[mun]?s|sec|secs|seconds?|mins?|minutes?|hrs?|hours?|days?|%)"
    r"(?![\w])"
)
_GLUED = re.compile(r"<\*>(?:[:.\-/_+]*<\*>)+")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MEMO_LIMIT = 200_000
_memo: dict[str, str] = {}  # word → masked word, for words without digits
_token_memo: dict[str, str] = {}  # space-separated token → masked token


def _is_named_value(word: str) -> bool:
    """A digit-free word that is still a value: a path, a host, a file name, a long hex string."""
    first = word[0]
    return (
        first == "/"
        or first == "\\"
        or word.startswith(("~/", "./", "../"))
        or word.count("/") >= 2
        or ("/" in word and "." in word)
        or _NAMED_VALUE.fullmatch(word) is not None
    )


def _mask_word(word: str) -> str:
    if ".." in word:
        # Runs of dots are padding ("parity error......0"): mask each side on its own.
        return "".join(
            part if i % 2 else _mask_word(part) if part else part
            for i, part in enumerate(_DOT_RUN.split(word))
        )
    if _NUMERIC.search(word):
        return PLACEHOLDER
    known = _memo.get(word)
    if known is not None:
        return known
    masked = PLACEHOLDER if _is_named_value(word) else word
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[word] = masked
    return masked


def _replace_candidate(match: re.Match[str]) -> str:
    word = match.group("word")
    return PLACEHOLDER if word is None else _mask_word(word)


def _mask_token(token: str) -> str:
    """One space-separated token, masked and remembered (constant words recur on most lines)."""
    masked = token
    if token.startswith("()"):
        masked = "(<*>)" + masked[2:]
    masked = _CANDIDATE.sub(_replace_candidate, masked)
    if len(_token_memo) >= _MEMO_LIMIT:
        _token_memo.clear()
    _token_memo[token] = masked
    return masked


def mask(message: str) -> str:
    """The message with every variable part replaced by `<*>`; the rest is kept as written."""
    text = message
    if "\x00" in text:
        # NUL is reserved for generalised template slots (see clustering).
        text = text.replace("\x00", "")
    if "://" in text:
        text = _URL.sub(PLACEHOLDER, text)
    if "?" in text:
        text = _PATH_QUERY.sub(PLACEHOLDER, text)
    if text.count(":") >= 5 or text.count("-") >= 5:
        text = _MAC.sub(PLACEHOLDER, text)
    if '="' in text or "='" in text:
        text = _QUOTED_VALUE.sub(r"\1<*>\1", text)
    # Token by token through a memo: a regular expression pass over whole lines costs three
    # times as much, because most tokens are constant words seen many times before.
    memo = _token_memo
    text = " ".join([memo.get(t) or _mask_token(t) for t in text.split(" ")])
    if PLACEHOLDER not in text:
        return text
    text = _UNIT.sub(PLACEHOLDER, text)
    if "<<*>" in text:
        text = text.replace("<=<*>", PLACEHOLDER).replace("<<*>", PLACEHOLDER)
    if " ><*>" in text:
        text = text.replace(" ><*>", " <*>")
    text = _GLUED.sub(PLACEHOLDER, text)
    if " <*>" in text:
        text = _mask_dates(text)
    return text


def _mask_dates(text: str) -> str:
    """`Sun Jul <*> <*>` → `<*> <*>`: month and weekday names in a written-out date are values."""
    for month in _MONTHS:
        if month in text:
            text = text.replace(f"{month} <*>", PLACEHOLDER).replace(f"{month}  <*>", PLACEHOLDER)
    for day in _WEEKDAYS:
        if day in text:
            text = text.replace(f"{day} <*>", PLACEHOLDER)
    return text


def reset_memo() -> None:
    """Forget remembered tokens (benchmarks start every stream cold)."""
    _memo.clear()
    _token_memo.clear()


def tokens(masked: str) -> list[str]:
    """The whitespace-separated tokens of a masked message (runs of spaces count as one)."""
    return masked.split()
