"""``conveyor ui`` end to end in headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright's Python package; no browser download), offline.

The server is a real ``conveyor ui`` process on 127.0.0.1 and a free port, over a registry
holding the API tests' pipeline (``ui``: Produce -> Sum -> Join; a complete run and a
failed one, with logs) and a pipeline root holding a small real one (``flights``: examples
from a CSV -> StatisticsGen -> a model-free Evaluator with slices), each run once for the
session. Every request the browser makes to anywhere but the server's own origin is
aborted and recorded; each test asserts there were none, and no console error, so each page
rendered with nothing but what Conveyor serves. Screenshots of each page are saved under
the test's tmp folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import urllib.request

import pytest

playwright = pytest.importorskip("playwright.sync_api")

from test_ui_api import NAME, ui_pipeline  # noqa: E402  (after the skip: needs the helpers)

from conveyor.orchestration import LocalDagRunner, registry  # noqa: E402
from conveyor.orchestration.local_runner import PipelineRunError  # noqa: E402
from conveyor.orchestration.ui import graph  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLIGHTS = "flights"

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


def _flights_csv(path) -> None:
    """60 flights: carrier, distance, late (the label), p (a model's predicted probability)."""
    rng = random.Random(0)
    lines = ["carrier,distance,late,p"]
    for _ in range(60):
        late = int(rng.random() < 0.4)
        p = min(0.99, max(0.01, 0.3 + 0.4 * late + rng.uniform(-0.3, 0.3)))
        lines.append(f"{rng.choice(['UA', 'AA', 'DL'])},{rng.randint(100, 2000)},{late},{p:.3f}")
    path.write_text("\n".join(lines) + "\n")


def flights_pipeline(root: str, csv: str):
    """Examples from ``csv`` (train/eval) -> StatisticsGen -> Evaluator (label ``late``,
    predictions ``p``, sliced by carrier)."""
    from orchestration_components import CsvExamples

    from conveyor.components.evaluation.node import Evaluator
    from conveyor.components.statistics.node import StatisticsGen
    from conveyor.dsl import Pipeline

    gen = CsvExamples(csv=csv, splits={"train": 2, "eval": 1})
    stats = StatisticsGen(examples=gen.outputs["examples"])
    evaluator = Evaluator(
        examples=gen.outputs["examples"], label_key="late", prediction_key="p", slice_by=["carrier"]
    )
    return Pipeline(FLIGHTS, root, [gen, stats, evaluator])


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory):
    """``{"url", "home", "root", "statistics_html", "artifacts"}``: a ``conveyor ui`` serving both
    pipelines; ``statistics_html``: the page ``conveyor statistics`` wrote for the CSV."""
    base = tmp_path_factory.mktemp("ui_browser")
    home, ui_root, flights_root = base / "home", base / "ui_root", base / "flights_root"
    csv = base / "flights.csv"
    _flights_csv(csv)
    env = dict(os.environ, CONVEYOR_HOME=str(home))
    conveyor = [sys.executable, "-m", "conveyor.orchestration.cli"]
    stats_out = base / "statistics"
    # `conveyor statistics` in its own process while the pipelines run here
    stats_proc = subprocess.Popen(
        conveyor
        + ["statistics", "--input", str(csv), "--format", "csv", "--output", str(stats_out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVEYOR_HOME", str(home))
    try:
        toy = ui_pipeline(ui_root)
        LocalDagRunner(quiet=True).run(toy, run_id="run-ok")
        with pytest.raises(PipelineRunError):
            LocalDagRunner(quiet=True).run(
                toy, run_id="run-fail", runtime_parameters={"fail": True}
            )
        path = base / "ui_pipeline.py"
        path.write_text(
            f"from test_ui_api import ui_pipeline\npipeline = ui_pipeline({str(ui_root)!r})\n"
        )
        registry.register(NAME, str(path), str(ui_root), "local", update=False)
        LocalDagRunner(quiet=True).run(
            flights_pipeline(str(flights_root), str(csv)), run_id="flights-1"
        )
    finally:
        mp.undo()
    out, _ = stats_proc.communicate(timeout=120)
    assert stats_proc.returncode == 0, out[-2000:]
    server = subprocess.Popen(
        conveyor + ["ui", "--port", "0", "--home", str(home), "--root", str(flights_root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("conveyor ui: http://127.0.0.1:"), line + server.stdout.read()
        url = line.split(": ", 1)[1].strip().rstrip("/")
        run = _get_json(f"{url}/api/runs/flights-1")
        artifacts = {
            f"{c['component_id']}.{key}": arts[0]["id"]
            for c in run["components"]
            for key, arts in c["outputs"].items()
        }
        yield {
            "url": url,
            "home": home,
            "root": flights_root,
            "statistics_html": stats_out / "statistics.html",
            "artifacts": artifacts,
        }
    finally:
        server.terminate()
        server.wait(timeout=20)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium, through Playwright (never a downloaded browser)."""
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


class Offline:
    """A browser context where every request not to ``origin`` is aborted and recorded,
    with the console errors and page errors of its pages."""

    def __init__(self, browser, origin: str | None):
        self.origin = origin
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _route(self, route):
        url = route.request.url
        if self.origin and (url == self.origin or url.startswith(self.origin + "/")):
            route.continue_()
        elif url.startswith(("data:", "file:", "about:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


@pytest.fixture()
def offline(browser, ui_server, tmp_path):
    """An :class:`Offline` context on the server's origin; on teardown, no request left the
    origin and no page logged an error."""
    o = Offline(browser, ui_server["url"])
    o.shots = tmp_path
    yield o
    o.context.close()
    assert o.blocked == [], f"requests outside {ui_server['url']}: {o.blocked}"
    assert o.errors == [], f"console errors: {o.errors}"


def _open(o: Offline, url: str, shot: str):
    response = o.page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, url
    o.page.screenshot(path=str(o.shots / f"{shot}.png"), full_page=True)
    assert (o.shots / f"{shot}.png").stat().st_size > 0
    return o.page


def _background(page, selector: str) -> str:
    return page.eval_on_selector(selector, "e => getComputedStyle(e).backgroundColor")


def test_pipelines_page(offline, ui_server):
    page = _open(offline, ui_server["url"] + "/", "pipelines")
    assert page.title() == "Pipelines · Conveyor"
    rows = page.locator("table.pipelines tbody tr")
    assert rows.count() == 2
    text = {rows.nth(i).locator("td").first.inner_text(): rows.nth(i) for i in range(2)}
    assert set(text) == {NAME, FLIGHTS}
    assert text[NAME].locator("td").nth(1).inner_text() == "local"
    assert text[NAME].locator(".state").inner_text() == "FAILED"  # run-fail is the last
    assert text[FLIGHTS].locator(".state").inner_text() == "COMPLETE"
    assert _background(page, "table.pipelines .state.FAILED") == "rgb(242, 139, 130)"
    assert _background(page, "table.pipelines .state.COMPLETE") == "rgb(123, 198, 123)"
    page.click(f"table.pipelines a[href='/pipelines/{FLIGHTS}']")
    assert page.locator("table.runs tbody tr[data-state=COMPLETE]").count() == 1


def test_run_dag_nodes_coloured_by_state(offline, ui_server):
    page = _open(offline, f"{ui_server['url']}/pipelines/{NAME}/runs/run-fail", "run-fail")
    nodes = page.locator("svg.dag g.node")
    assert nodes.count() == 3 and page.locator("svg.dag path.edge").count() == 3
    states = {
        nodes.nth(i).get_attribute("data-id"): nodes.nth(i).get_attribute("data-state")
        for i in range(3)
    }
    assert states == {"Produce": "CACHED", "Sum": "FAILED", "Join": states["Join"]}
    assert states["Join"] in ("NOT_STARTED", "SKIPPED", "CANCELED")
    for cid, state in states.items():
        fill = page.locator(f"svg.dag g.node[data-id={cid}] rect").get_attribute("fill")
        assert fill == graph.STATE_COLORS[state], cid
    assert "broke on purpose" in page.locator("table.components").inner_text()
    page = _open(offline, f"{ui_server['url']}/pipelines/{FLIGHTS}/runs/flights-1", "flights-run")
    ids = page.locator("svg.dag g.node").evaluate_all("ns => ns.map(n => n.dataset.id)")
    assert ids == ["CsvExamples", "StatisticsGen", "Evaluator"]
    assert page.locator("svg.dag g.node[data-state=COMPLETE]").count() == 3
    page.click("svg.dag g.node[data-id=Evaluator] a")
    page.wait_for_url("**/nodes/Evaluator")
    assert page.locator("table.parameters").inner_text().count("late") == 1


def test_node_log_and_error(offline, ui_server):
    page = _open(offline, f"{ui_server['url']}/pipelines/{NAME}/runs/run-ok/nodes/Sum", "node-log")
    assert page.locator("pre.log").inner_text().strip()
    assert page.locator("table.inputs a").inner_text().startswith("Examples #")
    page = _open(
        offline, f"{ui_server['url']}/pipelines/{NAME}/runs/run-fail/nodes/Sum", "node-error"
    )
    assert "broke on purpose" in page.locator("pre.error").inner_text()
    headings = page.locator("main h2").all_inner_texts()
    assert headings[0] == "Error" and headings.index("Inputs") > 0
    assert _background(page, "pre.error") == "rgb(91, 16, 16)"  # the stylesheet was applied


def test_statistics_view(offline, ui_server):
    sid = ui_server["artifacts"]["StatisticsGen.statistics"]
    page = _open(offline, f"{ui_server['url']}/pipelines/{FLIGHTS}/artifacts/{sid}", "statistics")
    headings = page.locator("main h2").all_inner_texts()
    assert any(h.startswith("Split train · ") for h in headings)
    assert any(h.startswith("Split eval · ") for h in headings)
    rows = page.locator("table.statistics").first.locator("tbody tr")
    features = sorted(rows.nth(i).locator("td").first.inner_text() for i in range(rows.count()))
    assert features == ["carrier", "distance", "late", "p"]
    assert page.locator("svg.hist rect").count() > 8  # histograms drawn inline
    assert any(h.startswith("Drift between") for h in headings)
    box = page.locator("svg.hist").first.bounding_box()
    assert box and box["width"] > 50 and box["height"] > 10


def test_evaluation_view(offline, ui_server):
    eid = ui_server["artifacts"]["Evaluator.evaluation"]
    page = _open(offline, f"{ui_server['url']}/pipelines/{FLIGHTS}/artifacts/{eid}", "evaluation")
    assert page.locator("main h2", has_text="Validation: BLESSED").count() == 1
    table = page.locator("table.slices")
    slices = table.locator("tbody tr td:first-child").all_inner_texts()
    assert slices[0] == "Overall" and sorted(slices[1:]) == [
        "carrier=AA",
        "carrier=DL",
        "carrier=UA",
    ]
    headers = table.locator("thead th").all_inner_texts()
    counts = headers.index("example_count")

    def column():
        return [
            float(t)
            for t in table.locator(f"tbody tr td:nth-child({counts + 1})").all_inner_texts()
        ]

    overall, *per_carrier = column()
    assert 10 <= overall <= 30 and overall == sum(per_carrier)  # the eval split: about 1/3
    table.locator("thead th").nth(counts).click()  # sortable: by example count
    assert column() == sorted(column())
    assert page.locator("svg.plot.roc").count() == 4
    assert page.locator("svg.plot.calibration").count() == 4
    roc = page.locator("figure.curves[data-slice=Overall] svg.roc polyline.curve")
    assert len(roc.get_attribute("points").split()) >= 3
    dots = page.locator("figure.curves[data-slice=Overall] svg.calibration circle.bin")
    assert dots.count() >= 3
    box = page.locator("svg.plot.roc").first.bounding_box()
    assert box and box["width"] >= 200


def test_lineage_graph(offline, ui_server):
    eid = ui_server["artifacts"]["Evaluator.evaluation"]
    url = f"{ui_server['url']}/pipelines/{FLIGHTS}/artifacts/{eid}/lineage"
    page = _open(offline, url, "lineage")
    labels = page.locator("svg.lineage g.node text:first-of-type").evaluate_all(
        "ts => ts.map(t => t.textContent)"
    )
    assert "CsvExamples" in labels and "Evaluator" in labels
    assert f"ModelEvaluation #{eid}" in labels and "StatisticsGen" not in labels
    this = page.locator(f"svg.lineage g.node[data-id=a{eid}] rect")
    assert this.get_attribute("fill") == graph.STATE_COLORS["artifact"]
    assert page.locator("svg.lineage path.edge").count() >= 2
    page.click("svg.lineage g.node[data-id^=e] a >> nth=0")
    page.wait_for_url("**/nodes/*")


def test_start_a_run_and_watch_it_finish(offline, ui_server):
    page = _open(offline, f"{ui_server['url']}/pipelines/{NAME}", "runs-before")
    before = page.locator("table.runs tbody tr").count()
    page.fill("form.start textarea[name=runtime_parameters]", "n=4\nsleep=4")
    page.click("form.start button[type=submit]")
    page.locator("form.start .result", has_text="started:").wait_for(timeout=10_000)
    # the page reloads itself once the run is recorded, then every 3 s while it is live
    page.locator("table.runs tbody tr[data-state=RUNNING]").wait_for(timeout=30_000)
    assert page.locator("main p", has_text="this page refreshes every 3 s").count() == 1
    page.screenshot(path=str(offline.shots / "runs-live.png"), full_page=True)
    page.wait_for_function(
        "n => document.querySelectorAll('table.runs tbody tr[data-state=COMPLETE]').length === n",
        arg=2,
        timeout=60_000,
    )
    assert page.locator("table.runs tbody tr").count() == before + 1
    newest = page.locator("table.runs tbody tr").first
    assert "n=4" in newest.inner_text() and newest.get_attribute("data-state") == "COMPLETE"
    assert page.locator("main p", has_text="this page refreshes").count() == 0
    page.screenshot(path=str(offline.shots / "runs-after.png"), full_page=True)


def test_the_offline_check_catches_outside_requests(browser, tmp_path):
    """The recorder itself: a page that loads an image from elsewhere is caught, not loaded."""
    o = Offline(browser, None)
    page_file = tmp_path / "outside.html"
    page_file.write_text('<img id=i src="https://example.com/logo.png"><p>x</p>')
    o.page.goto(page_file.as_uri())
    o.page.wait_for_load_state("load")
    assert o.blocked == ["https://example.com/logo.png"]
    assert o.page.eval_on_selector("#i", "i => i.naturalWidth") == 0
    o.context.close()


def test_statistics_html_opens_offline_from_disk(browser, ui_server, tmp_path):
    """The page `conveyor statistics` wrote, opened from a file:// URL with no network."""
    path = tmp_path / "statistics.html"
    shutil.copy(ui_server["statistics_html"], path)
    o = Offline(browser, None)
    o.page.goto(path.as_uri(), wait_until="load")
    o.page.screenshot(path=str(tmp_path / "statistics-file.png"), full_page=True)
    rows = o.page.locator("table.statistics tbody tr")
    features = sorted(rows.nth(i).locator("td").first.inner_text() for i in range(rows.count()))
    assert features == ["carrier", "distance", "late", "p"]
    assert "60 examples" in o.page.locator("h2").first.inner_text()
    assert o.page.locator("svg.hist rect").count() > 8
    first = o.page.locator("table.statistics thead th").first
    first.click()  # the inlined sorting script runs
    names = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert names in (sorted(names), sorted(names, reverse=True))
    o.context.close()
    assert o.blocked == [] and o.errors == [], (o.blocked, o.errors)
