"""``statistics.html`` is Conveyor's own page and opens offline: no external URL, no HTML
Imports, every feature and its counts in the page itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from conveyor.components.statistics import (
    statistics_html,
    statistics_page,
    statistics_view,
)


class _Refs(HTMLParser):
    """Every tag's ``src``/``href`` and every ``<link>``."""

    def __init__(self):
        super().__init__()
        self.refs, self.links, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.refs += [attrs[k] for k in ("src", "href") if attrs.get(k)]
        if tag == "link":
            self.links.append(attrs)
        if tag == "script":
            self.scripts += 1


def _assert_offline(page: str) -> _Refs:
    parser = _Refs()
    parser.feed(page)
    assert [r for r in parser.refs if re.match(r"\s*(https?:)?//", r)] == []
    assert parser.links == []  # no stylesheet or HTML Import to fetch
    assert '<link rel="import"' not in page and "rel='import'" not in page
    assert "http://" not in page and "https://" not in page
    return parser


def _stats() -> statistics_pb2.DatasetFeatureStatisticsList:
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    d = stats.datasets.add(name="All Examples", num_examples=10)
    f = d.features.add(type=statistics_pb2.FeatureNameStatistics.FLOAT)
    f.path.step.append("fare")
    f.num_stats.common_stats.num_non_missing = 7
    f.num_stats.common_stats.num_missing = 3
    f.num_stats.mean, f.num_stats.max = 12.25, 40.0
    f.num_stats.histograms.add(type=statistics_pb2.Histogram.STANDARD).buckets.add(
        low_value=0, high_value=40, sample_count=7
    )
    g = d.features.add(type=statistics_pb2.FeatureNameStatistics.STRING)
    g.path.step.append("carrier<&>")
    g.string_stats.common_stats.num_non_missing = 10
    g.string_stats.unique = 2
    g.string_stats.top_values.add(value="UA", frequency=6)
    b = d.features.add(type=statistics_pb2.FeatureNameStatistics.BYTES)
    b.path.step.append("image")
    b.bytes_stats.common_stats.num_non_missing = 9
    b.bytes_stats.common_stats.num_missing = 1
    b.bytes_stats.unique = 9
    stats.datasets.add(name="carrier_UA", num_examples=6)
    return stats


def test_view_rows_slices_and_page():
    view = statistics_view({"train": _stats()})
    split = view["splits"]["train"]
    fare, carrier, image = split["features"]
    assert fare["count"] == 7 and fare["missing_pct"] == 30.0 and fare["mean"] == 12.25
    assert carrier["feature"] == "carrier<&>" and carrier["top_values"] == [["UA", 6.0]]
    assert image["unique"] == 9 and image["missing_pct"] == 10.0
    assert split["slices"] == [["carrier_UA", 6]]  # slices are not mixed into the rows
    page = statistics_page(view, "flights")
    parser = _assert_offline(page)
    assert parser.scripts == 1  # the inlined sorting script
    assert "<title>flights</title>" in page and "<style>" in page
    assert "carrier&lt;&amp;&gt;" in page and "carrier<&>" not in page
    assert 'data-v="7">7</td>' in page and 'data-v="30.0">30</td>' in page
    assert "UA (6)" in page and "carrier_UA: 6 examples" in page
    assert page.count('<svg class="hist"') == 1
    assert statistics_html({"kind": "statistics", "splits": {}}) == (
        "<p>No statistics file in this artifact.</p>"
    )


def test_bad_input_names_the_split():
    with pytest.raises(TypeError, match=r"stats_by_split\['train'\]: .*not dict"):
        statistics_view({"train": {}})


def test_conveyor_statistics_writes_an_offline_page(tmp_path):
    from conveyor.orchestration.cli import main

    csv = tmp_path / "in.csv"
    csv.write_text("dep_delay,carrier,seats\n1.5,UA,100\nNA,AA,120\n4.0,UA,\n-2.0,DL,90\n")
    out = tmp_path / "out"
    rc = main(["statistics", "--input", str(csv), "--format", "csv", "--output", str(out)])
    assert rc == 0
    page = (out / "statistics.html").read_text()
    _assert_offline(page)
    assert "facets" not in page.lower()
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        (out / "FeatureStats.pb").read_bytes()
    )
    features = stats.datasets[0].features
    assert {".".join(f.path.step) for f in features} == {"dep_delay", "carrier", "seats"}
    assert "4 examples" in page
    for feature in features:
        name = ".".join(feature.path.step)
        common = getattr(feature, feature.WhichOneof("stats")).common_stats
        row = re.search(rf"<tr><td>{name}</td>(.*?)</tr>", page)
        assert row, name
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
        # type, count, missing %: the page's figures are the proto's
        assert cells[0] == statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
        assert cells[1] == str(common.num_non_missing)
        total = common.num_non_missing + common.num_missing
        assert float(cells[2]) == pytest.approx(100.0 * common.num_missing / total, abs=0.01)
    assert "UA (2)" in page  # carrier's top value
