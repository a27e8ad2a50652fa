"""ExampleGen's TFX inputs: span/version/date placeholders, input_config, output_config,
range_config, the artifact's properties, caching on new files, and ``conveyor examples``' flags.

The pattern and selection logic is tested on lists of paths; the rest on small CSV files
written under tmp_path.
"""

import json
import os

import pytest
from conftest import run_conveyor_in_process as run_cli

from conveyor.beam_utils.errors import InputError, UsageError
from conveyor.components.example_gen.inputs import (
    as_config,
    make_readers,
    parse_input_config,
    parse_output_config,
    parse_range_config,
    resolve_input,
    split_settings,
)
from conveyor.components.example_gen.spans import (
    FoundFile,
    SpanRange,
    date_to_span_number,
    describe_spans,
    input_fingerprint,
    parse_pattern,
    select_files,
    span_number_to_date,
)


def _select(paths, pattern, span_range=None):
    """select_files for one split."""
    return select_files({"train": paths}, {"train": parse_pattern(pattern)}, span_range)


# -- patterns ------------------------------------------------------------------------------


def test_pattern_placeholders_glob_and_parse():
    p = parse_pattern("data/span-{SPAN}/v{VERSION}/*.csv")
    assert p.glob == "data/span-*/v*/*.csv"
    assert (p.spanned, p.versioned, p.dated) == (True, True, False)
    assert p.parse("data/span-12/v3/a.csv") == (12, 3)
    assert p.parse("data/span-007/v10/a.csv") == (7, 10)
    assert p.fill("data/span-007/v10/a.csv") == "data/span-007/v10/*.csv"
    plain = parse_pattern("data/*.csv")
    assert (plain.spanned, plain.versioned) == (False, False)
    assert plain.parse("data/a.csv") == (0, None)


def test_placeholder_beside_a_wildcard_takes_all_its_digits():
    assert parse_pattern("x/*{SPAN}.csv").glob == "x/*.csv"  # not x/**.csv: within the folder
    assert parse_pattern("x/{SPAN}*-{VERSION}**").glob == "x/*-**"
    assert parse_pattern("x/{YYYY}{MM}{DD}/*").glob == "x/*/*"
    assert parse_pattern("x/*{SPAN}.csv").parse("x/day12.csv") == (12, None)
    assert parse_pattern("x/{SPAN}*.csv").parse("x/12-a.csv") == (12, None)
    assert parse_pattern("x/{SPAN}{VERSION:2}.csv").parse("x/12305.csv") == (123, 5)


def test_width_matches_exactly_that_many_digits():
    p = parse_pattern("d/part-{SPAN:2}/v{VERSION:3}/*")
    assert p.parse("d/part-07/v012/f") == (7, 12)
    with pytest.raises(InputError, match=r"d/part-7/v012/f: .*\{SPAN:2\} is '7', not 2 digits"):
        p.parse("d/part-7/v012/f")
    with pytest.raises(InputError, match=r"\{VERSION:3\} is '12', not 3 digits"):
        p.parse("d/part-07/v12/f")


def test_dates_are_days_since_1970():
    p = parse_pattern("logs/{YYYY}-{MM}-{DD}/*.csv")
    assert p.dated and p.spanned and p.glob == "logs/*-*-*/*.csv"
    assert p.parse("logs/1970-01-02/a.csv") == (1, None)
    assert (
        p.parse("logs/2024-01-15/a.csv")
        == (19737, None)
        == (date_to_span_number(2024, 1, 15), None)
    )
    assert span_number_to_date(19737).isoformat() == "2024-01-15"
    assert parse_pattern("log-{YYYY}{MM}{DD}.data").parse("log-20170101.data") == (17167, None)
    compact = parse_pattern("logs/{YYYY}{MM}{DD}/v{VERSION}/*")  # fixed widths: no ambiguity
    assert compact.parse("logs/20240115/v2/a") == (19737, 2)
    with pytest.raises(InputError, match=r"logs/2024-02-30/a.csv: 2024-02-30 is not a date"):
        p.parse("logs/2024-02-30/a.csv")
    with pytest.raises(InputError, match=r"\{MM\} is '1', not 2 digits of a date"):
        p.parse("logs/2024-1-15/a.csv")
    assert describe_spans([19737, 19738], dated=True) == "19737 (2024-01-15), 19738 (2024-01-16)"


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("d/{FOO}/*", r"d/\{FOO\}/\*: unknown placeholder \{FOO\}; a pattern may hold \{SPAN\}"),
        ("d/{span}/*", r"unknown placeholder \{span\}"),
        ("d/{SPAN}-{YYYY}{MM}{DD}", r"\{SPAN\} and a date \(\{DD\}, \{MM\}, \{YYYY\}\) at once"),
        ("d/{YYYY}-{MM}/*", r"a date needs \{YYYY\}, \{MM\} and \{DD\}; \{DD\} missing"),
        ("d/v{VERSION}/*", r"\{VERSION\} needs \{SPAN\} or a date"),
        ("d/{SPAN}/{SPAN}/*", r"\{SPAN\} appears twice"),
        ("d/{SPAN}{VERSION}/*", r"\{SPAN\} and \{VERSION\} side by side cannot be told apart"),
        ("d/{SPAN:x}/*", r"\{SPAN:x\}: the width is a positive number of digits"),
        ("d/{SPAN:0}/*", r"\{SPAN:0\}: the width is a positive number"),
        ("d/{YYYY:4}{MM}{DD}", r"\{YYYY:4\}: a date placeholder takes no width"),
    ],
)
def test_patterns_that_cannot_be_parsed_are_usage_errors(pattern, message):
    with pytest.raises(UsageError, match=message):
        parse_pattern(pattern)


def test_span_next_to_non_digits_is_an_input_error_naming_the_file():
    with pytest.raises(
        InputError,
        match=r"d/span-latest/a.csv: cannot read its span or version from the pattern "
        r"d/span-\{SPAN\}/\*.csv: \{SPAN\} is 'latest', not digits",
    ):
        _select(["d/span-1/a.csv", "d/span-latest/a.csv"], "d/span-{SPAN}/*.csv")


# -- selecting spans and versions ---------------------------------------------------------

PATHS = [
    "d/span-1/v1/a.csv",
    "d/span-2/v1/a.csv",
    "d/span-2/v2/a.csv",
    "d/span-2/v2/b.csv",
    "d/span-3/v1/a.csv",
    "d/span-5/v4/a.csv",
]
VERSIONED = "d/span-{SPAN}/v{VERSION}/*.csv"


def test_latest_span_at_its_latest_version_by_default():
    s = _select(PATHS, VERSIONED)
    assert (s.spans, s.versions, s.span, s.version) == ((5,), (4,), 5, 4)
    assert s.files == {"train": ("d/span-5/v4/a.csv",)}
    assert s.describe() == "span 5, version 4"
    s = _select(PATHS[:5], VERSIONED)
    assert (s.spans, s.versions) == ((3,), (1,))


def test_without_version_every_file_of_the_span_is_read():
    s = _select(PATHS, "d/span-{SPAN}/*/*.csv")
    assert s.spans == (5,) and s.versions == (None,) and not s.versioned
    s = _select(PATHS[:4], "d/span-{SPAN}/*/*.csv")
    assert s.files["train"] == ("d/span-2/v1/a.csv", "d/span-2/v2/a.csv", "d/span-2/v2/b.csv")
    assert s.describe() == "span 2"


def test_unspanned_pattern_is_span_0_of_every_file():
    s = _select(PATHS, "d/*/*/*.csv")
    assert (s.spans, s.versions, s.spanned) == ((0,), (None,), False)
    assert s.files["train"] == tuple(sorted(PATHS))


def test_static_range_reads_its_spans_each_at_its_latest_version():
    s = _select(PATHS, VERSIONED, SpanRange("static_range", start=2, end=3))
    assert (s.spans, s.versions) == ((2, 3), (2, 1))
    assert s.files["train"] == ("d/span-2/v2/a.csv", "d/span-2/v2/b.csv", "d/span-3/v1/a.csv")
    assert s.describe() == "spans 2, 3 (versions 2, 1)"
    s = _select(PATHS, VERSIONED, SpanRange("static_range", start=3, end=4))  # span 4 missing
    assert s.spans == (3,)


def test_rolling_range_reads_the_latest_spans():
    roll = _select(PATHS, VERSIONED, SpanRange("rolling_range", num_spans=2))
    assert (roll.spans, roll.versions) == ((3, 5), (1, 4))
    assert _select(PATHS, VERSIONED, SpanRange("rolling_range", num_spans=9)).spans == (1, 2, 3, 5)
    started = SpanRange("rolling_range", num_spans=9, start=2)
    assert _select(PATHS, VERSIONED, started).spans == (2, 3, 5)
    skipped = SpanRange("rolling_range", num_spans=2, skip=1)
    assert _select(PATHS, VERSIONED, skipped).spans == (2, 3)


def test_range_that_selects_no_span_names_range_and_spans_found():
    with pytest.raises(
        InputError,
        match=r"range_config \(static_range start_span_number=6 end_span_number=9\) selects no "
        r"span; the spans found are 1, 2, 3, 5 \(d/span-\{SPAN\}/v\{VERSION\}/\*.csv\)",
    ):
        _select(PATHS, VERSIONED, SpanRange("static_range", start=6, end=9))
    with pytest.raises(
        InputError, match=r"rolling_range num_spans=1 start_span_number=7\) selects"
    ):
        _select(PATHS, VERSIONED, SpanRange("rolling_range", start=7))
    with pytest.raises(
        UsageError, match=r"range_config .* but the pattern d/\*.csv has no \{SPAN\}"
    ):
        _select(["d/a.csv"], "d/*.csv", SpanRange("rolling_range"))


def test_splits_read_the_same_spans():
    patterns = {s: parse_pattern(f"d/{s}/span-{{SPAN}}/*") for s in ("train", "eval")}
    found = {
        "train": ["d/train/span-1/a", "d/train/span-2/a"],
        "eval": ["d/eval/span-1/a", "d/eval/span-2/a", "d/eval/span-2/b"],
    }
    s = select_files(found, patterns)
    assert s.files == {
        "train": ("d/train/span-2/a",),
        "eval": ("d/eval/span-2/a", "d/eval/span-2/b"),
    }
    found["train"].append("d/train/span-3/a")  # span 3 written for train only
    with pytest.raises(
        InputError,
        match=r"span 3 has files of split 'train' but none of split 'eval' \(d/eval/span-\{SPAN\}/\*, "
        r"whose spans are 1, 2\); the splits must have the same spans",
    ):
        select_files(found, patterns)
    # An older span both splits have is fine.
    assert select_files(found, patterns, SpanRange("static_range", start=1, end=2)).spans == (1, 2)


def test_splits_read_the_same_version():
    patterns = {s: parse_pattern(f"d/{s}/{{SPAN}}/v{{VERSION}}/*") for s in ("train", "eval")}
    found = {"train": ["d/train/1/v1/a", "d/train/1/v2/a"], "eval": ["d/eval/1/v1/a"]}
    with pytest.raises(
        InputError,
        match=r"span 1, version 2: files of split 'train' but none of split 'eval' "
        r"\(d/eval/\{SPAN\}/v\{VERSION\}/\*, whose versions of span 1 are 1\)",
    ):
        select_files(found, patterns)


def test_two_splits_matching_one_file_is_an_error_naming_both():
    patterns = {"train": parse_pattern("d/*.csv"), "eval": parse_pattern("d/e*.csv")}
    with pytest.raises(
        InputError,
        match=r"d/eval.csv matches the patterns of two splits, 'train' \(d/\*.csv\) and 'eval' "
        r"\(d/e\*.csv\)",
    ):
        select_files({"train": ["d/eval.csv", "d/t.csv"], "eval": ["d/eval.csv"]}, patterns)


def test_splits_must_name_the_same_placeholders():
    patterns = {"train": parse_pattern("d/{SPAN}/t/*"), "eval": parse_pattern("d/e/*")}
    with pytest.raises(
        UsageError,
        match=r"split 'train' \(d/\{SPAN\}/t/\*\) and split 'eval' \(d/e/\*\) name different "
        r"placeholders \(\{SPAN\} vs none\)",
    ):
        select_files({"train": ["d/1/t/a"], "eval": ["d/e/a"]}, patterns)


def test_input_fingerprint_is_tfx_shaped():
    files = {
        "train": [FoundFile("a", 10, 1000.5), FoundFile("b", 5, 3000.0)],
        "eval": [FoundFile("c", 7, 2000.0)],
    }
    assert input_fingerprint(files) == (
        "split:train,num_files:2,total_bytes:15,xor_checksum:2128,sum_checksum:4000\n"
        "split:eval,num_files:1,total_bytes:7,xor_checksum:2000,sum_checksum:2000"
    )


# -- configs -------------------------------------------------------------------------------


def test_configs_as_dict_json_camel_case_or_proto():
    from google.protobuf import struct_pb2

    config = {"splits": [{"name": "train", "pattern": "t/*"}, {"name": "eval", "pattern": "e/*"}]}
    expected = [("train", "t/*"), ("eval", "e/*")]
    assert parse_input_config(config) == parse_input_config(json.dumps(config)) == expected
    proto = struct_pb2.Struct()
    proto.update(config)
    assert parse_input_config(proto) == expected
    zero = struct_pb2.Struct()
    zero.update({"static_range": {"start_span_number": 0, "end_span_number": 0}})
    assert parse_range_config(zero) == SpanRange("static_range", start=0, end=0)
    camel = '{"staticRange": {"startSpanNumber": 2, "endSpanNumber": "3"}}'
    assert parse_range_config(camel) == SpanRange("static_range", start=2, end=3)
    assert parse_range_config({"rolling_range": {}}) == SpanRange("rolling_range", num_spans=1)
    assert as_config(None, "x") is as_config("", "x") is as_config({}, "x") is None
    out = {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}],
            "partition_feature_name": "user",
        },
    }
    assert parse_output_config(out) == ({"train": 3, "eval": 1}, "user")
    assert parse_output_config(None) == parse_output_config({"split_config": {}}) == (None, None)


@pytest.mark.parametrize(
    "parse, config, message",
    [
        (parse_input_config, "{not json", r"input_config: not JSON"),
        (parse_input_config, "[1]", r"input_config: a JSON object \(a dict\) is expected"),
        (
            parse_input_config,
            {"splits": []},
            r"splits must be a non-empty list of \{name, pattern\}",
        ),
        (parse_input_config, {"split": []}, r"input_config: unknown field\(s\) \['split'\]"),
        (
            parse_input_config,
            {"splits": [{"name": "a", "pattern": "x"}, {"name": "a", "pattern": "y"}]},
            r"split 'a' is named twice",
        ),
        (parse_input_config, {"splits": [{"name": "a/b", "pattern": "x"}]}, r"a name usable as"),
        (parse_input_config, {"splits": [{"name": "a"}]}, r"split 'a' needs a pattern"),
        (parse_input_config, {"splits": [{"name": "a", "pattern": "/x/*"}]}, r"is absolute"),
        (
            parse_output_config,
            {"split_config": {"splits": [{"name": "a", "hash_buckets": 0}]}},
            r"split 'a': hash_buckets must be an integer >= 1, not 0",
        ),
        (
            parse_output_config,
            {"split_config": {"splits": [{"name": "a"}]}},
            r"split 'a' needs hash_buckets",
        ),
        (
            parse_output_config,
            {"payload_format": "FORMAT_PARQUET"},
            r"output_config: unknown field\(s\) \['payload_format'\]; the fields are \['split_config'\]",
        ),
        (parse_range_config, {"static_range": {"start_span_number": 1}}, r"needs both"),
        (
            parse_range_config,
            {"static_range": {"start_span_number": 3, "end_span_number": 1}},
            r"start_span_number 3 is after end_span_number 1",
        ),
        (
            parse_range_config,
            {"rolling_range": {"num_spans": 0}},
            r"num_spans must be an integer >= 1",
        ),
        (
            parse_range_config,
            {"static_range": {"start_span_number": 1, "end_span_number": 1}, "rolling_range": {}},
            r"give one of static_range or rolling_range",
        ),
        (parse_range_config, {"latest": {}}, r"range_config: unknown field\(s\) \['latest'\]"),
    ],
)
def test_bad_configs_are_usage_errors(parse, config, message):
    with pytest.raises(UsageError, match=message):
        parse(config)


def test_split_settings_from_output_config_or_the_short_form():
    out = {
        "split_config": {
            "splits": [{"name": "a", "hash_buckets": 1}],
            "partition_feature_name": "k",
        }
    }
    assert split_settings(out, None, None, presplit=False) == ({"a": 1}, ["k"])
    assert split_settings(None, {"a": 2}, ["c"], presplit=False) == ({"a": 2}, ["c"])
    assert split_settings(None, None, None, presplit=True) == (None, None)
    with pytest.raises(UsageError, match=r"split_config and splits name the splits twice"):
        split_settings(out, {"a": 2}, None, presplit=False)
    with pytest.raises(UsageError, match=r"partition_feature_name and hash_columns"):
        split_settings(out, None, ["c"], presplit=False)
    with pytest.raises(UsageError, match=r"pre-split inputs are written as the splits they are"):
        split_settings(out, None, None, presplit=True)


# -- files through Beam's FileSystems --------------------------------------------------------


def _csv(path, rows, header="a,b"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(f"{a},{b}\n" for a, b in rows))
    return path


def _spans(base, spans, splits=("train", "eval"), version=None):
    """base/span-N[/vV]/<split>/data.csv with rows (N*10+i, "<split>N")."""
    for span in spans:
        folder = base / f"span-{span}" / (f"v{version}" if version else "")
        for k, split in enumerate(splits):
            _csv(
                folder / split / "data.csv",
                [(span * 10 + i, f"{split}{span}") for i in range(k + 2)],
            )


def _presplit(pattern="span-{SPAN}/{split}/*"):
    splits = ("train", "eval")
    return {"splits": [{"name": s, "pattern": pattern.replace("{split}", s)} for s in splits]}


def test_input_base_folder_file_or_glob(tmp_path):
    _csv(tmp_path / "d" / "a.csv", [(1, "x")])
    _csv(tmp_path / "d" / "b.csv", [(2, "y")])
    _csv(tmp_path / "d" / "sub" / "c.csv", [(3, "z")])  # a subfolder's files are not the folder's
    names = lambda r: [os.path.basename(f.path) for f in r.files["single_split"]]  # noqa: E731
    assert names(resolve_input(str(tmp_path / "d"))) == ["a.csv", "b.csv"]
    assert names(resolve_input(str(tmp_path / "d") + "/")) == ["a.csv", "b.csv"]
    assert names(resolve_input(str(tmp_path / "d" / "b.csv"))) == ["b.csv"]
    assert names(resolve_input(str(tmp_path / "d" / "*" / "*.csv"))) == ["c.csv"]
    (reader,) = make_readers(resolve_input(str(tmp_path / "d"))).values()
    assert reader.format == "csv" and [os.path.basename(f) for f in reader.files] == [
        "a.csv",
        "b.csv",
    ]
    assert reader.with_schema(None).files == reader.files


def test_pattern_that_matches_nothing_names_it_and_what_input_base_holds(tmp_path):
    _spans(tmp_path, [1])
    base = str(tmp_path)
    with pytest.raises(
        InputError,
        match=r"input_config split 'test': 'span-\{SPAN\}/test/\*' \(.*/span-\{SPAN\}/test/\*\) "
        r"matches no file; input_base .*/ holds 2 files: span-1/eval/data.csv, span-1/train/data.csv",
    ):
        resolve_input(
            base,
            {
                "splits": [
                    {"name": "train", "pattern": "span-{SPAN}/train/*"},
                    {"name": "test", "pattern": "span-{SPAN}/test/*"},
                ]
            },
        )
    with pytest.raises(
        InputError, match=r"/nope-\{SPAN\}/\*: no such file or pattern; .*/ holds 2 files"
    ):
        resolve_input(f"{base}/nope-{{SPAN}}/*")
    with pytest.raises(
        InputError, match=r"/no/such/file.csv: no such file or pattern; /no/such/ holds no file"
    ):
        resolve_input("/no/such/file.csv")
    with pytest.raises(
        UsageError, match=r"input_base .*data.csv is a file; with input_config it is the folder"
    ):
        resolve_input(f"{base}/span-1/train/data.csv", _presplit())


def test_pattern_naming_folders(tmp_path):
    _spans(tmp_path, [1, 2])
    with pytest.raises(
        InputError, match=r"no such file or pattern; it names folders: end it with /\* to read"
    ):
        resolve_input(str(tmp_path / "span-{SPAN}" / "train"))
    with pytest.raises(
        InputError,
        match=r"/\*: no such file or pattern; it names folders: end it with /\* to read the files "
        r"in them \(.*/span-1/\*/\*\); .*/span-1/ holds 2 files: eval/data.csv, train/data.csv",
    ):
        resolve_input(str(tmp_path / "span-1"))  # a folder of folders: its own files are none
    r = resolve_input(str(tmp_path / "span-{SPAN}" / "train") + "/")
    assert [f.path for f in r.files["single_split"]] == [str(tmp_path / "span-2/train/data.csv")]
    assert r.description("single_split") == str(tmp_path / "span-2" / "train") + "/*"


def test_remote_folder_with_input_config(object_store):
    for span in (1, 2):
        for split in ("train", "eval"):
            object_store.objects[f"teststore://b/d/span-{span}/{split}/x.csv"] = b"a\n1\n"
    r = resolve_input("teststore://b/d", _presplit())
    assert r.selection.spans == (2,)
    assert r.files["eval"][0].path == "teststore://b/d/span-2/eval/x.csv"
    assert resolve_input("teststore://b/d/span-1/train").files["single_split"][0].size == 4


# -- end to end: the node, through LocalDagRunner ---------------------------------------------


def _run(gen, root):
    from conveyor.orchestration import LocalDagRunner, Metadata, Pipeline

    pipeline = Pipeline("spans", str(root), [gen])
    result = LocalDagRunner(quiet=True, in_process=True).run(pipeline)
    (status,) = result["components"].values()
    examples = Metadata(pipeline.metadata_path).latest_outputs("spans", result["run_id"], gen.id)
    return status["state"], examples["examples"]


def _split_rows(uri):
    from conveyor.beam_utils.files import read_summary

    return read_summary(uri)["splits"]


def test_node_records_span_version_and_caches_until_inputs_change(tmp_path):
    from conveyor.components import ExampleGen

    data, root = tmp_path / "data", tmp_path / "root"
    _spans(data, [1, 2], version=1)
    gen = ExampleGen(
        input_base=str(data), input_config=_presplit("span-{SPAN}/v{VERSION}/{split}/*")
    )
    state, examples = _run(gen, root)
    props = examples.properties
    assert state == "COMPLETE"
    assert (int(props["span"]), int(props["version"])) == (2, 1)
    assert json.loads(props["split_names"]) == ["train", "eval"]
    assert props["input_fingerprint"].startswith("split:train,num_files:1,total_bytes:")
    assert _split_rows(examples.uri) == {"train": 2, "eval": 3}  # as they were: not re-split
    assert _values(examples.uri, "eval", "b", {"a": "INT", "b": "BYTES"}) == [b"eval2"] * 3
    assert _run(gen, root)[0] == "CACHED"  # nothing changed
    _spans(data, [2], version=2)  # a new version of span 2
    state, examples = _run(gen, root)
    assert state == "COMPLETE" and (
        int(examples.properties["span"]),
        int(examples.properties["version"]),
    ) == (2, 2)
    assert _run(gen, root)[0] == "CACHED"
    _spans(data, [3], version=1)  # a new span
    state, examples = _run(gen, root)
    assert state == "COMPLETE" and int(examples.properties["span"]) == 3


def test_new_file_in_a_span_without_version_is_read_anew_without_a_version(tmp_path):
    from conveyor.components import ExampleGen

    data, root = tmp_path / "data", tmp_path / "root"
    _spans(data, [1])
    gen = ExampleGen(input_base=str(data / "span-{SPAN}" / "train") + "/", splits={"all": 1})
    state, examples = _run(gen, root)
    assert state == "COMPLETE" and int(examples.properties["span"]) == 1
    assert "version" not in examples.properties and _split_rows(examples.uri) == {"all": 2}
    _csv(data / "span-1" / "train" / "more.csv", [(99, "m")])
    state, examples = _run(gen, root)
    assert state == "COMPLETE" and "version" not in examples.properties
    assert int(examples.properties["span"]) == 1 and _split_rows(examples.uri) == {"all": 3}
    # Same size, new modification time: read again.
    os.utime(data / "span-1" / "train" / "more.csv", (1_000_000, 1_000_000))
    assert _run(gen, root)[0] == "COMPLETE"
    assert _run(gen, root)[0] == "CACHED"


def test_execute_returns_ints_and_several_spans(tmp_path):
    from conveyor.components import ExampleGen
    from conveyor.dsl import Artifact, ExecutionContext

    _spans(tmp_path / "data", [1, 2, 3], version=1)
    gen = ExampleGen(
        input_base=str(tmp_path / "data"),
        input_config=json.dumps(_presplit("span-{SPAN}/v{VERSION}/{split}/*")),
        range_config='{"rolling_range": {"num_spans": 2}}',
    )
    out = Artifact("Examples", str(tmp_path / "out"))
    ctx = ExecutionContext({}, {"examples": out}, dict(gen.parameters), [], "r", str(tmp_path))
    props = gen.execute(ctx)["examples"]
    assert props["span"] == 3 and props["version"] == 1
    assert json.loads(props["spans"]) == [2, 3] and json.loads(props["versions"]) == [1, 1]
    assert props["split_names"] == '["train", "eval"]' and props["rows_read"] == 10
    assert props["input_fingerprint"].count("num_files:2") == 2
    assert _split_rows(out.uri) == {"train": 4, "eval": 6}


def test_dates_in_the_node(tmp_path):
    from conveyor.components import ExampleGen
    from conveyor.dsl import Artifact, ExecutionContext

    for day in ("2024-01-30", "2024-02-01"):
        _csv(tmp_path / "logs" / day / "a.csv", [(1, day), (2, day)])
    gen = ExampleGen(
        input_base=str(tmp_path / "logs" / "{YYYY}-{MM}-{DD}" / "*.csv"), splits={"all": 1}
    )
    out = Artifact("Examples", str(tmp_path / "out"))
    props = gen.execute(ExecutionContext({}, {"examples": out}, dict(gen.parameters), [], "r", ""))
    assert props["examples"]["span"] == date_to_span_number(2024, 2, 1) == 19754
    assert "version" not in props["examples"]


def test_output_config_hash_split_keeps_a_partition_feature_together(tmp_path):
    from conveyor.components import ExampleGen

    rows = [(i % 7, f"r{i}") for i in range(300)]  # deterministic rows, 7 keys
    _csv(tmp_path / "in.csv", rows, header="k,b")
    out_config = {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 2}, {"name": "eval", "hash_buckets": 1}],
            "partition_feature_name": "k",
        }
    }
    gen = ExampleGen(input_base=str(tmp_path / "in.csv"), output_config=out_config)
    state, examples = _run(gen, tmp_path / "root")
    assert state == "COMPLETE" and json.loads(examples.properties["split_names"]) == [
        "train",
        "eval",
    ]
    keys = {s: _values(examples.uri, s, "k", {"k": "INT", "b": "BYTES"}) for s in ("train", "eval")}
    assert len(keys["train"]) + len(keys["eval"]) == 300
    assert keys["train"] and keys["eval"] and not set(keys["train"]) & set(keys["eval"])
    # The short form writes the same split.
    short = ExampleGen(
        input_base=str(tmp_path / "in.csv"), splits={"train": 2, "eval": 1}, hash_columns=["k"]
    )
    assert _split_rows(_run(short, tmp_path / "root2")[1].uri) == _split_rows(examples.uri)


def _values(uri, split, column, schema) -> list:
    """The values of ``column`` in a split of an Examples directory."""
    import glob

    from conveyor.beam_utils import arrow
    from conveyor.beam_utils.example_parsing import ExampleDecoder
    from conveyor.beam_utils.tfrecord_io import open_records

    decoder = ExampleDecoder(arrow.make_schema(schema))
    values = []
    for path in sorted(glob.glob(os.path.join(uri, f"Split-{split}", "*"))):
        with open(path, "rb") as f:
            records = list(open_records(f, path))
        if records:
            values += [v for vs in decoder.decode(records).column(column).to_pylist() for v in vs]
    return values


def test_presplit_folder_with_one_split_is_hash_split(tmp_path):
    from conveyor.components import ExampleGen
    from conveyor.dsl import Artifact, ExecutionContext

    _csv(tmp_path / "d" / "train" / "a.csv", [(i, "x") for i in range(30)])
    gen = ExampleGen(
        input_base=str(tmp_path / "d"),
        input_config={"splits": [{"name": "all", "pattern": "train/*"}]},
    )
    out = Artifact("Examples", str(tmp_path / "out"))
    props = gen.execute(ExecutionContext({}, {"examples": out}, dict(gen.parameters), [], "r", ""))
    assert json.loads(props["examples"]["split_names"]) == ["train", "eval"]
    assert props["examples"]["span"] == 0 and props["examples"]["input_fingerprint"].startswith(
        "split:all,"
    )


def test_node_fingerprint_folds_in_errors_and_new_spans(tmp_path):
    from conveyor.components import ExampleGen

    gen = ExampleGen(input_base=str(tmp_path / "span-{SPAN}" / "*.csv"))
    missing = gen.fingerprint()  # no file yet: a key (of the error), not an exception
    _csv(tmp_path / "span-1" / "a.csv", [(1, "x")])
    first = gen.fingerprint()
    assert first != missing and gen.fingerprint() == first
    _csv(tmp_path / "span-2" / "a.csv", [(1, "x")])
    second = gen.fingerprint()
    assert second != first
    _csv(tmp_path / "span-0" / "a.csv", [(1, "x")])  # an older span is not read: same key
    assert gen.fingerprint() == second


# -- the command line --------------------------------------------------------------------------


def test_cli_input_config_range_and_span_printed(tmp_path, capsys):
    _spans(tmp_path / "data", [1, 2, 3], version=1)
    _spans(tmp_path / "data", [3], version=2)
    config = json.dumps(_presplit("span-{SPAN}/v{VERSION}/{split}/*"))
    out = tmp_path / "out"
    assert (
        run_cli("examples", "--input", tmp_path / "data", "--input-config", config, "--output", out)
        == 0
    )
    printed = capsys.readouterr().out
    assert "  span 3, version 2\n" in printed and "data/span-3/v2/train/*" in printed
    assert _split_rows(str(out)) == {"train": 2, "eval": 3}
    rng = '{"static_range": {"start_span_number": 1, "end_span_number": 2}}'
    args = ["--input-config", config, "--range-config", rng, "--output", out]
    assert run_cli("examples", "--input", tmp_path / "data", *args) == 0
    assert "  spans 1, 2 (versions 1, 1)\n" in capsys.readouterr().out
    assert _split_rows(str(out)) == {"train": 4, "eval": 6}


def test_cli_output_config_and_placeholders_in_input(tmp_path, capsys):
    _spans(tmp_path / "data", [1, 2], splits=("train",))
    out_config = '{"split_config": {"splits": [{"name": "a", "hash_buckets": 1}], "partition_feature_name": "a"}}'
    pattern = str(tmp_path / "data" / "span-{SPAN:1}" / "train" / "*.csv")
    assert (
        run_cli(
            "examples",
            "--input",
            pattern,
            "--output-config",
            out_config,
            "--output",
            tmp_path / "o",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "  span 2\n" in printed and "Split-a: 2 rows" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--input", "{d}/span-{FOO}/*"], "unknown placeholder {FOO}"),
        (
            ["--input", "{d}/nope/*"],
            "nope/*: no such file or pattern; {d}/nope/ holds no file; {d}/ holds 4 files",
        ),
        (["--input", "{d}", "--input-config", "{bad"], "input_config: not JSON"),
        (
            [
                "--input",
                "{d}",
                "--input-config",
                '{"splits": [{"name": "t", "pattern": "*/*/*"}, {"name": "e", "pattern": "span-1/*/*"}]}',
            ],
            "matches the patterns of two splits, 't' ({d}/*/*/*) and 'e' ({d}/span-1/*/*)",
        ),
        (
            [
                "--input",
                "{d}/span-{SPAN}/train/*",
                "--range-config",
                '{"static_range": {"start_span_number": 7, "end_span_number": 8}}',
            ],
            "selects no span; the spans found are 1, 2",
        ),
        (
            [
                "--input",
                "{d}/span-{SPAN}/train/*",
                "--splits",
                "a:1",
                "--output-config",
                '{"split_config": {"splits": [{"name": "a", "hash_buckets": 1}]}}',
            ],
            "name the splits twice",
        ),
        (
            ["--input", "{d}", "--input-config", json.dumps(_presplit()), "--splits", "a:1"],
            "pre-split examples",
        ),
        (["--input", "{d}/span-{SPAN}{VERSION}/*"], "cannot be told apart"),
    ],
)
def test_cli_errors_exit_2_with_the_message(tmp_path, capsys, args, message):
    data = tmp_path / "data"
    _spans(data, [1, 2])
    args = [a.replace("{d}", str(data)) for a in args]
    assert run_cli("examples", *args, "--output", tmp_path / "out") == 2
    assert message.replace("{d}", str(data)) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
