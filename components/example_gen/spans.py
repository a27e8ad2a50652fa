"""Spans and versions in ExampleGen's file patterns, as TFX reads them, and the files they select.

A pattern is a file glob (Beam's: ``*`` within a folder, ``**`` across folders,
``?``, ``[...]``) that may hold placeholders:

- ``{SPAN}``: digits, the span number (``{SPAN:2}``: exactly two digits, ``07``).
- ``{VERSION}``: digits, the version of a span's data (``{VERSION:3}``: three).
  It needs ``{SPAN}`` or a date.
- ``{YYYY}``, ``{MM}``, ``{DD}``: a date, all three, instead of ``{SPAN}``; the
  span is then the day number since 1970-01-01 (:func:`date_to_span_number`).

Each placeholder appears at most once in a pattern; a pattern ending in ``/``
names folders, to read the files in them. A pattern without ``{SPAN}``
or a date is span 0 and has no version. By default the latest span is read, at
its latest version; a :class:`SpanRange` (``range_config``) selects others, each
read at its latest version. Every split must have files at each span and
version read.

The pure part works on the paths a pattern matched (:func:`parse_pattern`,
:func:`select_files`, :func:`input_fingerprint`); :func:`find_files` matches
the patterns through Beam's FileSystems (any scheme it knows) and selects.

Example::

    pattern = parse_pattern("data/span-{SPAN}/v{VERSION}/*.csv")
    pattern.parse("data/span-3/v2/a.csv")   # (3, 2)
    select_files({"train": ["data/span-3/v2/a.csv", "data/span-2/v1/a.csv"]},
                 {"train": pattern}).spans  # (3,)
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.beam_utils.errors import InputError, UsageError

SPAN = "SPAN"
VERSION = "VERSION"
#: The date placeholders and the digits each stands for.
DATE_PARTS = {"YYYY": 4, "MM": 2, "DD": 2}
PLACEHOLDERS = (SPAN, VERSION, *DATE_PARTS)
#: The split name of an input given without input_config (TFX's).
SINGLE_SPLIT = "single_split"
#: Files named in a "matches no file" message.
LISTED_FILES = 10

_EPOCH = datetime.date(1970, 1, 1)
_BRACES = re.compile(r"\{([^{}]*)\}")
_KNOWN = "{SPAN}, {SPAN:width}, {VERSION}, {VERSION:width}, {YYYY}, {MM}, {DD}"


def date_to_span_number(year: int, month: int, day: int) -> int:
    """The span of a date in a ``{YYYY}{MM}{DD}`` pattern: its day number since 1970-01-01."""
    return (datetime.date(year, month, day) - _EPOCH).days


def span_number_to_date(span: int) -> datetime.date:
    """The date of a span read from a ``{YYYY}{MM}{DD}`` pattern."""
    return _EPOCH + datetime.timedelta(days=span)


@dataclass(frozen=True)
class _Placeholder:
    name: str
    width: int | None  # digits it stands for; None: one or more

    def digits(self, text: str) -> bool:
        return text.isdigit() and text.isascii() and self.width in (None, len(text))

    def __str__(self) -> str:
        return (
            "{"
            + self.name
            + (f":{self.width}" if self.width and self.name in (SPAN, VERSION) else "")
            + "}"
        )


@dataclass(frozen=True)
class SpanPattern:
    """A parsed file pattern (:func:`parse_pattern`).

    Attributes:
      text: the pattern as given.
      glob: the pattern with each placeholder as ``*``, to match files with.
      placeholders: the placeholders it holds, in order.
    """

    text: str
    glob: str
    placeholders: tuple[_Placeholder, ...]
    _regex: re.Pattern = field(repr=False)
    _loose: re.Pattern = field(repr=False)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.placeholders)

    @property
    def dated(self) -> bool:
        """True if the span is a date (``{YYYY}{MM}{DD}``)."""
        return "YYYY" in self.names

    @property
    def spanned(self) -> bool:
        """True if the pattern names a span (``{SPAN}`` or a date)."""
        return SPAN in self.names or self.dated

    @property
    def versioned(self) -> bool:
        return VERSION in self.names

    def parse(self, path: str) -> tuple[int, int | None]:
        """``(span, version)`` of a path the glob matched (span 0 and version None when not named).

        Raises InputError naming the path when a placeholder's text is not
        its digits, or a date is not a day of the calendar.
        """
        m = self._regex.fullmatch(path)
        if m is None:
            raise InputError(self._unparsable(path))
        if self.dated:
            y, mo, d = (m[name] for name in DATE_PARTS)
            try:
                span = date_to_span_number(int(y), int(mo), int(d))
            except ValueError:
                raise InputError(
                    f"{path}: {y}-{mo}-{d} is not a date (pattern {self.text})"
                ) from None
        else:
            span = int(m[SPAN]) if SPAN in self.names else 0
        return span, (int(m[VERSION]) if self.versioned else None)

    def fill(self, path: str) -> str:
        """The pattern with each placeholder replaced by its text in ``path`` (one the glob matched)."""
        m = self._regex.fullmatch(path)
        if m is None:
            return self.text
        return _BRACES.sub(lambda b: m[b.group(1).partition(":")[0]], self.text)

    def _unparsable(self, path: str) -> str:
        m = self._loose.fullmatch(path)
        bad = [
            f"{p} is {m[p.name]!r}, not "
            + (f"{p.width} digits" if p.width else "digits")
            + ("" if p.name not in DATE_PARTS else " of a date")
            for p in self.placeholders
            if m is not None and not p.digits(m[p.name])
        ]
        why = "; ".join(bad) if bad else "it does not fit the pattern"
        return (
            f"{path}: cannot read its span or version from the pattern {self.text}: {why} "
            "(narrow the pattern so it matches only files whose placeholders are digits)"
        )


def parse_pattern(text: str) -> SpanPattern:
    """Parses a file pattern's placeholders (see the module docstring).

    Raises UsageError for an unknown ``{FOO}``, a bad width, a placeholder
    given twice, ``{SPAN}`` with a date, part of a date, ``{VERSION}`` with
    neither, or two placeholders side by side that cannot be told apart
    (``{SPAN}{VERSION}``; ``{SPAN}{VERSION:2}`` can).
    """
    placeholders, strict, loose = [], [], []
    glob = ""  # each placeholder a '*', merged with a '*' beside it (two would be '**')
    pos, previous = 0, None  # previous: the placeholder that ends where this text starts
    for b in _BRACES.finditer(text):
        literal = text[pos : b.start()]
        glob = _glob_join(glob, literal)
        strict.append(_glob_regex(literal))
        loose.append(_glob_regex(literal))
        p = _placeholder(text, b.group(1))
        if not literal and previous is not None and previous.width is None and p.width is None:
            raise UsageError(
                f"{text}: {previous} and {p} side by side cannot be told apart; put text "
                f"between them or give one a width ({{{previous.name}:2}})"
            )
        if p.name in (q.name for q in placeholders):
            raise UsageError(f"{text}: {{{p.name}}} appears twice; a pattern holds each once")
        placeholders.append(p)
        glob = _glob_join(glob, "*")
        digits = "[0-9]+" if p.width is None else f"[0-9]{{{p.width}}}"
        strict.append(f"(?P<{p.name}>{digits})")
        loose.append(rf"(?P<{p.name}>[^/\\]*?)")
        pos, previous = b.end(), p
    literal = text[pos:]
    glob = _glob_join(glob, literal)
    strict.append(_glob_regex(literal))
    loose.append(_glob_regex(literal))
    names = {p.name for p in placeholders}
    dates = names & set(DATE_PARTS)
    if SPAN in names and dates:
        raise UsageError(
            f"{text}: {{SPAN}} and a date ({', '.join('{' + d + '}' for d in sorted(dates))}) "
            "at once; the span is either a number or a date, give one"
        )
    if dates and dates != set(DATE_PARTS):
        missing = ", ".join("{" + d + "}" for d in DATE_PARTS if d not in dates)
        raise UsageError(f"{text}: a date needs {{YYYY}}, {{MM}} and {{DD}}; {missing} missing")
    if VERSION in names and SPAN not in names and not dates:
        raise UsageError(f"{text}: {{VERSION}} needs {{SPAN}} or a date ({{YYYY}}{{MM}}{{DD}})")
    return SpanPattern(
        text,
        glob,
        tuple(placeholders),
        re.compile("".join(strict), re.DOTALL),
        re.compile("".join(loose), re.DOTALL),
    )


def _glob_join(glob: str, more: str) -> str:
    """``glob + more``, with a '*' at the end of one and the start of the other made one: a
    placeholder's '*' beside a wildcard is that wildcard (two would be '**', across folders)."""
    if glob.endswith("*") and more.startswith("*"):
        return glob if more == "*" else glob[:-1] + more
    return glob + more


def _placeholder(text: str, inside: str) -> _Placeholder:
    name, colon, width = inside.partition(":")
    if name not in PLACEHOLDERS:
        raise UsageError(
            f"{text}: unknown placeholder {{{inside}}}; a pattern may hold {_KNOWN} "
            "(a file name with braces cannot be matched)"
        )
    if name in DATE_PARTS:
        if colon:
            raise UsageError(
                f"{text}: {{{inside}}}: a date placeholder takes no width "
                f"({{{name}}} is {DATE_PARTS[name]} digits)"
            )
        return _Placeholder(name, DATE_PARTS[name])
    if not colon:
        return _Placeholder(name, None)
    if not (width.isdigit() and width.isascii() and int(width) > 0):
        raise UsageError(
            f"{text}: {{{inside}}}: the width is a positive number of digits, such as {{{name}:2}}"
        )
    return _Placeholder(name, int(width))


def _glob_regex(glob: str) -> str:
    """A regular expression for a glob without placeholders, as Beam's FileSystems match it
    (``*`` within a folder, ``**`` across, ``?`` any character, ``[...]``), wildcards lazy:
    a placeholder beside a wildcard takes all the digits there."""
    out, i, n = [], 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            if i < n and glob[i] == "*":
                out.append(".*?")
                i += 1
            else:
                out.append(r"[^/\\]*?")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i + (i < n and glob[i] == "!")
            j += j < n and glob[j] == "]"
            while j < n and glob[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")
                continue
            chars = glob[i:j].replace("\\", "\\\\")
            i = j + 1
            if chars[0] == "!":
                chars = "^" + chars[1:]
            elif chars[0] == "^":
                chars = "\\" + chars
            out.append(f"[{chars}]")
        else:
            out.append(re.escape(c))
    return "".join(out)


# -- ranges ---------------------------------------------------------------------


@dataclass(frozen=True)
class SpanRange:
    """The spans to read (``range_config``) instead of the latest.

    ``static_range``: the spans found from ``start`` to ``end`` (inclusive).
    ``rolling_range``: the latest ``num_spans`` spans found, none before
    ``start`` when given, after leaving out the ``skip`` most recent.
    """

    kind: str  # "static_range" or "rolling_range"
    start: int | None = None
    end: int | None = None
    num_spans: int = 1
    skip: int = 0

    def select(self, spans: Sequence[int]) -> list[int]:
        """The spans of ``spans`` (ascending) this range takes."""
        if self.kind == "static_range":
            return [s for s in spans if self.start <= s <= self.end]
        found = [s for s in spans if self.start is None or s >= self.start]
        if self.skip:
            found = found[: -self.skip]
        return found[-self.num_spans :]

    def __str__(self) -> str:
        if self.kind == "static_range":
            return f"static_range start_span_number={self.start} end_span_number={self.end}"
        text = f"rolling_range num_spans={self.num_spans}"
        if self.start is not None:
            text += f" start_span_number={self.start}"
        if self.skip:
            text += f" skip_num_recent_spans={self.skip}"
        return text


def describe_spans(spans: Sequence[int], dated: bool = False, limit: int = 8) -> str:
    """``1, 2, 3`` (``19737 (2024-01-15), ...`` for dates); the middle left out past ``limit``."""

    def one(s: int) -> str:
        return f"{s} ({span_number_to_date(s).isoformat()})" if dated else str(s)

    spans = list(spans)
    if len(spans) > limit:
        half = limit // 2
        shown = [*map(one, spans[:half]), "...", *map(one, spans[-half:])]
        return ", ".join(shown) + f" ({len(spans)} spans)"
    return ", ".join(map(one, spans))


# -- selecting the files ----------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What :func:`select_files` chose.

    Attributes:
      spans: the spans read, ascending (``(0,)`` when the patterns name none).
      versions: the version read of each span (None without ``{VERSION}``).
      files: ``{split: paths}``, sorted, of the spans and versions read.
      spanned, versioned, dated: whether the patterns name a span, a version, a date.
    """

    spans: tuple[int, ...]
    versions: tuple[int | None, ...]
    files: dict[str, tuple[str, ...]]
    spanned: bool = False
    versioned: bool = False
    dated: bool = False

    @property
    def span(self) -> int:
        """The latest span read (TFX's ``span``)."""
        return self.spans[-1]

    @property
    def version(self) -> int | None:
        """The version of the latest span read (TFX's ``version``)."""
        return self.versions[-1]

    def describe(self) -> str:
        """``span 3, version 2``, ``spans 3, 4 (versions 1, 2)``, ``span 0`` for unspanned inputs."""
        several = len(self.spans) > 1
        text = ("spans " if several else "span ") + describe_spans(self.spans, self.dated, 1 << 30)
        if self.versioned:
            if several:
                text += f" (versions {', '.join(map(str, self.versions))})"
            else:
                text += f", version {self.version}"
        return text


def check_patterns(patterns: Mapping[str, SpanPattern], span_range: SpanRange | None) -> None:
    """Raises UsageError unless every split's pattern names the same kinds (span, date, version)
    and a range has spans to select."""
    kinds = {split: (p.spanned, p.dated, p.versioned) for split, p in patterns.items()}
    (first, first_kind), *rest = kinds.items()
    for split, kind in rest:
        if kind != first_kind:
            raise UsageError(
                f"the patterns of split {first!r} ({patterns[first].text}) and split {split!r} "
                f"({patterns[split].text}) name different placeholders ({_kinds(first_kind)} vs "
                f"{_kinds(kind)}); give every split's pattern the same span, date and version "
                "placeholders"
            )
    if span_range is not None and not first_kind[0]:
        raise UsageError(
            f"range_config ({span_range}) selects spans, but the pattern "
            f"{patterns[first].text} has no {{SPAN}} or date ({{YYYY}}{{MM}}{{DD}}) placeholder"
        )


def _kinds(kind: tuple[bool, bool, bool]) -> str:
    spanned, dated, versioned = kind
    names = (["a date"] if dated else ["{SPAN}"] if spanned else []) + (
        ["{VERSION}"] if versioned else []
    )
    return " and ".join(names) or "none"


def select_files(
    found: Mapping[str, Sequence[str]],
    patterns: Mapping[str, SpanPattern],
    span_range: SpanRange | None = None,
) -> Selection:
    """The spans, versions and files to read of the paths each split's pattern matched.

    Args:
      found: ``{split: paths its pattern's glob matched}`` (each split some).
      patterns: ``{split: SpanPattern}``.
      span_range: the spans to read; None reads the latest.

    Raises:
      UsageError: see :func:`check_patterns`.
      InputError: a split that matched nothing; a file two splits match; a
        path whose placeholders are not digits (:meth:`SpanPattern.parse`);
        a range that selects no span; a span or version read that some
        split has no files of.
    """
    check_patterns(patterns, span_range)
    _check_disjoint(found, patterns)
    first = next(iter(patterns.values()))
    keyed: dict[str, dict[tuple[int, int | None], list[str]]] = {}
    for split, paths in found.items():
        if not paths:
            raise InputError(f"split {split!r}: {patterns[split].text} matches no file")
        keyed[split] = {}
        for path in paths:
            keyed[split].setdefault(patterns[split].parse(path), []).append(path)
    found_spans = sorted({span for by in keyed.values() for span, _ in by})
    chosen = span_range.select(found_spans) if span_range else found_spans[-1:]
    if not chosen:
        raise InputError(
            f"range_config ({span_range}) selects no span; the spans found are "
            f"{describe_spans(found_spans, first.dated)} ({_pattern_list(patterns)})"
        )
    versions, files = [], {split: [] for split in keyed}
    for span in chosen:
        version = None
        if first.versioned:
            version = max(v for by in keyed.values() for s, v in by if s == span)
        for split, by in keyed.items():
            paths = by.get((span, version))
            if not paths:
                raise InputError(_missing(split, span, version, keyed, patterns, first.dated))
            files[split].extend(paths)
        versions.append(version)
    return Selection(
        tuple(chosen),
        tuple(versions),
        {split: tuple(sorted(paths)) for split, paths in files.items()},
        first.spanned,
        first.versioned,
        first.dated,
    )


def _pattern_list(patterns: Mapping[str, SpanPattern]) -> str:
    if len(patterns) == 1:
        return next(iter(patterns.values())).text
    return ", ".join(f"{split}: {p.text}" for split, p in patterns.items())


def _check_disjoint(found: Mapping[str, Sequence[str]], patterns: Mapping[str, SpanPattern]):
    owner: dict[str, str] = {}
    for split, paths in found.items():
        for path in paths:
            other = owner.setdefault(path, split)
            if other != split:
                raise InputError(
                    f"{path} matches the patterns of two splits, {other!r} "
                    f"({patterns[other].text}) and {split!r} ({patterns[split].text}); "
                    "a file belongs to one split: make the patterns exclusive"
                )


def _missing(split, span, version, keyed, patterns, dated) -> str:
    """Why ``split`` has no files at ``(span, version)`` while another split has."""
    have = sorted(s for s, by in keyed.items() if (span, version) in by)
    at = describe_spans([span], dated)
    own = keyed[split]
    if not any(s == span for s, _ in own):
        spans = sorted({s for s, _ in own})
        return (
            f"span {at} has files of split {', '.join(map(repr, have))} but none of split "
            f"{split!r} ({patterns[split].text}, whose spans are {describe_spans(spans, dated)}); "
            "the splits must have the same spans: every split needs files at each span read"
        )
    own_versions = sorted(v for s, v in own if s == span)
    return (
        f"span {at}, version {version}: files of split {', '.join(map(repr, have))} but none "
        f"of split {split!r} ({patterns[split].text}, whose versions of span {span} are "
        f"{', '.join(map(str, own_versions))}); every split needs files at the version read"
    )


# -- matching through Beam's FileSystems ---------------------------------------------


@dataclass(frozen=True, order=True)
class FoundFile:
    """A matched file: its path, size in bytes and last update in seconds."""

    path: str
    size: int
    updated: float


@dataclass(frozen=True)
class Resolved:
    """The input files to read (:func:`find_files`).

    Attributes:
      selection: the spans, versions and paths chosen.
      patterns: ``{split: SpanPattern}``.
      files: ``{split: [FoundFile]}`` of the selected paths.
    """

    selection: Selection
    patterns: dict[str, SpanPattern]
    files: dict[str, list[FoundFile]]

    def description(self, split: str) -> str:
        """What a split's files are, for summaries and messages: the pattern, its placeholders
        filled in when one span is read."""
        pattern = self.patterns[split]
        if len(self.selection.spans) == 1 and pattern.placeholders:
            return pattern.fill(self.files[split][0].path)
        return pattern.text

    def cache_lines(self) -> list[str]:
        """What the cache key covers: each selected file's split, path, size and update time."""
        lines = [f"spans={list(self.selection.spans)} versions={list(self.selection.versions)}"]
        for split in sorted(self.files):
            lines += [f"{split}:{f.path}:{f.size}:{f.updated!r}" for f in self.files[split]]
        return lines


def input_fingerprint(files: Mapping[str, Sequence[FoundFile]]) -> str:
    """TFX's ``input_fingerprint``: per split, one line ``split:<name>,num_files:<n>,
    total_bytes:<b>,xor_checksum:<x>,sum_checksum:<s>`` (the checksums over the files'
    update times in whole seconds)."""
    lines = []
    for split, found in files.items():
        xor = total = 0
        for f in found:
            xor ^= int(f.updated)
            total += int(f.updated)
        lines.append(
            f"split:{split},num_files:{len(found)},total_bytes:{sum(f.size for f in found)},"
            f"xor_checksum:{xor},sum_checksum:{total}"
        )
    return "\n".join(lines)


def match_files(glob: str, limit: int | None = None) -> list[FoundFile]:
    """The files a glob matches through Beam's FileSystems, sorted (none if it matches none).

    Local folders are left out (a pattern without wildcards that names a folder
    matches the folder itself).
    """
    import os

    from apache_beam.io.filesystems import FileSystems

    try:
        result = FileSystems.match([glob], None if limit is None else [limit])[0]
    except Exception:  # some filesystems raise for a pattern that matches nothing
        return []
    found = [
        FoundFile(m.path, m.size_in_bytes, m.last_updated_in_seconds)
        for m in result.metadata_list
        if "://" in m.path or not os.path.isdir(m.path)
    ]
    return sorted(found)


def folder_of(pattern: str) -> str:
    """The folder a pattern's fixed part ends in (``data/`` of ``data/span-{SPAN}/*``; ``.`` for none)."""
    fixed = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
    folder = fixed.rpartition("/")[0]
    if not folder:
        return "/" if fixed.startswith("/") else "."
    return folder + "/"


def list_folder(folder: str, limit: int = LISTED_FILES) -> str:
    """``<folder> holds 3 files: a.csv, b/c.csv, d.txt`` (the first ``limit``), for a message."""
    from apache_beam.io.filesystems import FileSystems

    base = folder.rstrip("/")
    glob = FileSystems.join(base, "**") if base else "/**"
    found = match_files(glob, limit + 1)
    names = sorted(
        f.path[len(base) + 1 :] if f.path.startswith(base + "/") else f.path for f in found
    )
    if not names:
        return f"{folder} holds no file"
    more = len(names) > limit
    count = f"{limit} files or more" if more else f"{len(names)} file" + "s" * (len(names) > 1)
    return f"{folder} holds {count}: {', '.join(names[:limit])}" + (", ..." if more else "")


def _no_match(split: str, given: str, full: str, pattern: SpanPattern, input_base) -> str:
    """Why a pattern matched no file: what its folder holds (or input_base), and a hint when it
    names folders."""
    if match_files(pattern.glob.rstrip("/") + "/*", limit=1):
        hint = (
            f"; it names folders: end it with /* to read the files in them ({full.rstrip('/')}/*)"
        )
    else:
        hint = ""
    if input_base is not None:
        holds = list_folder(input_base if input_base.endswith("/") else input_base + "/")
        return f"input_config split {split!r}: {given!r} ({full}) matches no file{hint}; input_base {holds}"
    folder = folder_of(full)
    holds = list_folder(folder)
    parent = folder_of(folder.rstrip("/"))
    if holds.endswith("holds no file") and parent not in ("/", ".", folder):
        holds += "; " + list_folder(parent)
    return f"{full}: no such file or pattern{hint}; {holds}"


def find_files(
    inputs: Mapping[str, tuple[str, str]],
    span_range: SpanRange | None = None,
    input_base: str | None = None,
) -> Resolved:
    """Matches each split's pattern through Beam's FileSystems and selects the files to read.

    Args:
      inputs: ``{split: (pattern as given, full pattern)}``; the full pattern is
        the one matched (``input_base`` joined to the pattern given).
      span_range: the spans to read; None reads the latest.
      input_base: the folder the patterns are under (given with input_config),
        named with what it holds when a pattern matches nothing.

    Raises:
      UsageError, InputError: as :func:`parse_pattern` and :func:`select_files`;
      InputError for a pattern that matches no file, naming what its folder holds.
    """
    patterns = {split: parse_pattern(full) for split, (_, full) in inputs.items()}
    check_patterns(patterns, span_range)
    found: dict[str, list[FoundFile]] = {}
    for split, (given, full) in inputs.items():
        found[split] = match_files(patterns[split].glob)
        if not found[split]:
            raise InputError(_no_match(split, given, full, patterns[split], input_base))
    selection = select_files(
        {split: [f.path for f in fs] for split, fs in found.items()}, patterns, span_range
    )
    info = {f.path: f for fs in found.values() for f in fs}
    files = {split: [info[p] for p in paths] for split, paths in selection.files.items()}
    return Resolved(selection, patterns, files)
