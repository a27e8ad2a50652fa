"""ExampleGen's inputs as TFX names them: ``input_base``, ``input_config``, ``output_config``,
``range_config``, and the readers and artifact properties they make.

The configs are dicts (TFX's protos as JSON, ``snake_case`` or ``camelCase`` keys),
their JSON text, or the protos themselves (anything protobuf's ``json_format``
reads)::

    input_config = {"splits": [{"name": "train", "pattern": "span-{SPAN}/train/*"},
                               {"name": "eval", "pattern": "span-{SPAN}/eval/*"}]}
    output_config = {"split_config": {"splits": [{"name": "train", "hash_buckets": 2},
                                                 {"name": "eval", "hash_buckets": 1}],
                                      "partition_feature_name": "user_id"}}
    range_config = {"static_range": {"start_span_number": 3, "end_span_number": 5}}
    range_config = {"rolling_range": {"num_spans": 2, "start_span_number": 3}}

Example::

    resolved = resolve_input("data", input_config, range_config)
    examples = make_readers(resolved, format="csv")   # {split: ReadExamples}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from conveyor.beam_utils.errors import UsageError
from conveyor.beam_utils.io import ReadExamples
from conveyor.components.example_gen.spans import (
    SINGLE_SPLIT,
    Resolved,
    SpanRange,
    find_files,
    input_fingerprint,
)

# -- the configs --------------------------------------------------------------------


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _normalized(value):
    if isinstance(value, Mapping):
        return {_snake(str(k)): _normalized(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    return value


def as_config(value, what: str) -> dict | None:
    """A config as a dict with ``snake_case`` keys: from a dict, its JSON text or a protobuf message.

    None, ``""`` and ``{}`` give None. Raises UsageError naming ``what`` otherwise.
    """
    if value is None:
        return None
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):  # a protobuf message
        from google.protobuf import json_format

        try:  # zeros printed too: a span number 0 is one (protobuf >= 5.26 renamed the flag)
            value = json_format.MessageToDict(
                value, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        except TypeError:
            value = json_format.MessageToDict(
                value, preserving_proto_field_name=True, including_default_value_fields=True
            )
    elif isinstance(value, str | bytes):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError as e:
            raise UsageError(f"{what}: not JSON ({e}): {value[:200]!r}") from None
    if not isinstance(value, Mapping):
        raise UsageError(f"{what}: a JSON object (a dict) is expected, not {type(value).__name__}")
    return _normalized(value) or None


def _fields(config: Mapping, allowed: Sequence[str], what: str) -> None:
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise UsageError(f"{what}: unknown field(s) {unknown}; the fields are {list(allowed)}")


def _number(config: Mapping, key: str, what: str, *, minimum: int = 0, default=None) -> int | None:
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)  # protobuf's JSON gives 64-bit numbers as text
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # a google.protobuf.Struct's numbers are doubles
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{what}: {key} must be an integer >= {minimum}, not {value!r}")
    return value


def _named_splits(config: Mapping, what: str, extra: str) -> list[dict]:
    splits = config.get("splits")
    if not isinstance(splits, list) or not splits:
        raise UsageError(f"{what}: splits must be a non-empty list of {{name, {extra}}}")
    seen = set()
    for i, split in enumerate(splits):
        if not isinstance(split, Mapping):
            raise UsageError(
                f"{what}: split {i} must be an object {{name, {extra}}}, not {split!r}"
            )
        _fields(split, ["name", extra], f"{what} split {i}")
        name = split.get("name")
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            raise UsageError(f"{what}: split {i} needs a name usable as a folder, not {name!r}")
        if name in seen:
            raise UsageError(f"{what}: split {name!r} is named twice")
        seen.add(name)
    return splits


def parse_input_config(value) -> list[tuple[str, str]] | None:
    """``input_config`` -> ``[(split name, file pattern under input_base)]``, or None if not given."""
    config = as_config(value, "input_config")
    if config is None:
        return None
    _fields(config, ["splits"], "input_config")
    out = []
    for split in _named_splits(config, "input_config", "pattern"):
        pattern = split.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise UsageError(
                f"input_config split {split['name']!r} needs a pattern, not {pattern!r}"
            )
        if pattern.startswith("/") or "://" in pattern:
            raise UsageError(
                f"input_config split {split['name']!r}: pattern {pattern!r} is absolute; "
                "patterns are relative to input_base"
            )
        out.append((split["name"], pattern))
    return out


def parse_output_config(value) -> tuple[dict[str, int] | None, str | None]:
    """``output_config`` -> ``({split: hash_buckets} or None, partition_feature_name or None)``."""
    config = as_config(value, "output_config")
    if config is None:
        return None, None
    _fields(config, ["split_config"], "output_config")
    split_config = config.get("split_config")
    if not split_config:
        return None, None
    if not isinstance(split_config, Mapping):
        raise UsageError(f"output_config: split_config must be an object, not {split_config!r}")
    what = "output_config split_config"
    _fields(split_config, ["splits", "partition_feature_name"], what)
    splits = {}
    for split in _named_splits(split_config, what, "hash_buckets"):
        splits[split["name"]] = _number(
            split, "hash_buckets", f"{what} split {split['name']!r}", minimum=1
        )
        if splits[split["name"]] is None:
            raise UsageError(
                f"{what} split {split['name']!r} needs hash_buckets (a positive integer)"
            )
    feature = split_config.get("partition_feature_name") or None
    if feature is not None and not isinstance(feature, str):
        raise UsageError(f"{what}: partition_feature_name must be a column name, not {feature!r}")
    return splits, feature


def parse_range_config(value) -> SpanRange | None:
    """``range_config`` -> a :class:`~conveyor.components.example_gen.spans.SpanRange`, or None."""
    config = as_config(value, "range_config")
    if config is None:
        return None
    _fields(config, ["static_range", "rolling_range"], "range_config")
    if len(config) != 1:
        raise UsageError("range_config: give one of static_range or rolling_range, not both")
    ((kind, body),) = config.items()
    what = f"range_config {kind}"
    if not isinstance(body, Mapping):
        raise UsageError(f"{what} must be an object, not {body!r}")
    if kind == "static_range":
        _fields(body, ["start_span_number", "end_span_number"], what)
        start = _number(body, "start_span_number", what)
        end = _number(body, "end_span_number", what)
        if start is None or end is None:
            raise UsageError(f"{what} needs both start_span_number and end_span_number")
        if start > end:
            raise UsageError(f"{what}: start_span_number {start} is after end_span_number {end}")
        return SpanRange(kind, start=start, end=end)
    _fields(body, ["num_spans", "start_span_number", "skip_num_recent_spans"], what)
    return SpanRange(
        kind,
        start=_number(body, "start_span_number", what),
        num_spans=_number(body, "num_spans", what, minimum=1, default=1),
        skip=_number(body, "skip_num_recent_spans", what, default=0),
    )


def split_settings(
    output_config,
    splits: Mapping[str, int] | None,
    hash_columns: Sequence[str] | None,
    presplit: bool,
) -> tuple[dict[str, int] | None, list[str] | None]:
    """The ``splits`` and ``hash_columns`` for run_example_gen, from ``output_config`` or the short form.

    Raises UsageError for both forms at once, or a split_config for pre-split inputs.
    """
    config_splits, feature = parse_output_config(output_config)
    if config_splits is not None and splits is not None:
        raise UsageError(
            "output_config's split_config and splits name the splits twice; give one of them"
        )
    if feature is not None and hash_columns:
        raise UsageError(
            "output_config's partition_feature_name and hash_columns both say what decides a "
            "row's split; give one of them"
        )
    if presplit and config_splits is not None:
        raise UsageError(
            f"output_config's split_config ({config_splits}) and input_config's splits: "
            "pre-split inputs are written as the splits they are; drop split_config (or give "
            "input_config one split, to split it)"
        )
    chosen = config_splits if config_splits is not None else splits
    columns = [feature] if feature is not None else (list(hash_columns) if hash_columns else None)
    return (dict(chosen) if chosen is not None else None), columns


# -- input_base and the patterns ---------------------------------------------------------


def _has_wildcards(path: str) -> bool:
    return any(c in path for c in "*?[{")


def _is_folder(path: str) -> bool:
    """True if ``path`` (no wildcards) is a folder: a local directory, or a remote prefix
    with files under it and no file of its own name."""
    if path.endswith("/"):
        return True
    if "://" not in path:
        return os.path.isdir(path)
    from apache_beam.io.filesystems import FileSystems

    from conveyor.components.example_gen.spans import match_files

    if FileSystems.exists(path):
        return False
    return bool(match_files(FileSystems.join(path, "*"), limit=1))


def _is_file(path: str) -> bool:
    if path.endswith("/"):
        return False
    if "://" not in path:
        return os.path.isfile(path)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)


def split_patterns(input_base: str, input_config=None) -> dict[str, tuple[str, str]]:
    """``{split: (pattern as given, full pattern)}`` of input_base and input_config.

    Without input_config, ``input_base`` is a file, a glob (either may hold span
    placeholders) or a folder (all its files: ``<folder>/*``), one split. With
    it, input_base is the folder each split's pattern is under.
    """
    from apache_beam.io.filesystems import FileSystems

    if not isinstance(input_base, str) or not input_base:
        raise UsageError(f"input_base must be a path, not {input_base!r}")
    splits = parse_input_config(input_config)
    if splits is None:
        if not _has_wildcards(input_base) and _is_folder(input_base):
            return {SINGLE_SPLIT: ("*", FileSystems.join(input_base.rstrip("/") or "/", "*"))}
        if input_base.endswith("/"):  # a pattern naming folders: their files
            return {SINGLE_SPLIT: (input_base, input_base + "*")}
        return {SINGLE_SPLIT: (input_base, input_base)}
    if not _has_wildcards(input_base) and _is_file(input_base):
        raise UsageError(
            f"input_base {input_base} is a file; with input_config it is the folder the "
            "splits' patterns are under"
        )
    base = input_base.rstrip("/") or "/"
    return {name: (pattern, FileSystems.join(base, pattern)) for name, pattern in splits}


def resolve_input(input_base: str, input_config=None, range_config=None) -> Resolved:
    """The files to read for ``input_base``, ``input_config`` and ``range_config`` (see
    :func:`~conveyor.components.example_gen.spans.find_files`)."""
    inputs = split_patterns(input_base, input_config)
    span_range = parse_range_config(range_config)
    return find_files(inputs, span_range, input_base if input_config is not None else None)


# -- readers and properties ----------------------------------------------------------------


class _ListedFiles(ReadExamples):
    """A :class:`ReadExamples` of the files given (the spans and versions selected) rather than
    of every file its pattern matches; ``description`` stands for them in summaries and messages."""

    def __init__(self, paths: Sequence[str], description: str, **settings):
        self._listed = list(paths)
        super().__init__(description, **settings)

    @property
    def files(self) -> list[str]:
        return list(self._listed)

    def with_schema(self, schema, **overrides) -> ReadExamples:
        settings = {
            "format": self.format,
            "batch_size": self.batch_size,
            "missing_values": self.csv_options.missing_values,
            "delimiter": self.csv_options.delimiter,
            "sample_size": self.sample_size,
            "split_bytes": self.split_bytes,
            "reshuffle": self.reshuffle,
        }
        settings.update(overrides)
        return _ListedFiles(self._listed, self.file_pattern, schema=schema, **settings)


def make_readers(resolved: Resolved, **settings) -> dict[str | None, ReadExamples]:
    """``{split: ReadExamples}`` of the selected files; one split is keyed None (to be split).

    ``settings`` go to every ReadExamples (format, schema, missing_values...).
    """
    readers = {
        split: _ListedFiles([f.path for f in found], resolved.description(split), **settings)
        for split, found in resolved.files.items()
    }
    if len(readers) == 1:
        return {None: next(iter(readers.values()))}
    return readers


def artifact_properties(resolved: Resolved, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The Examples artifact's properties, TFX's names: ``span``, ``version`` (with
    ``{VERSION}``), ``split_names``, ``input_fingerprint``; ``spans`` (and ``versions``)
    when a range reads several; the row counts."""
    selection = resolved.selection
    props: dict[str, Any] = {
        "span": selection.span,
        "split_names": json.dumps(list(summary["splits"])),
        "input_fingerprint": input_fingerprint(resolved.files),
        "rows_read": summary["rows_read"],
        "rows_rejected": summary["rows_rejected"],
    }
    if selection.versioned:
        props["version"] = selection.version
    if len(selection.spans) > 1:
        props["spans"] = json.dumps(list(selection.spans))
        if selection.versioned:
            props["versions"] = json.dumps(list(selection.versions))
    return props


def input_root(input_base: str) -> str:
    """The part of input_base before any wildcard or placeholder (to keep an output out of it)."""
    if not _has_wildcards(input_base):
        return input_base
    return re.split(r"[*?\[{]", input_base, maxsplit=1)[0] or "."
