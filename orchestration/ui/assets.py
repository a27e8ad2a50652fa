"""The UI's stylesheet and script, served from here (``/static/ui.css``, ``/static/ui.js``):
no CDN, no build step, so every page works offline."""

from conveyor.components.statistics import SORT_JS, TABLE_CSS

CSS = (
    TABLE_CSS
    + """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
header { background: #263238; color: #fff; padding: 8px 16px; }
header a { color: #fff; text-decoration: none; margin-right: 16px; }
main { padding: 12px 16px; }
.state { padding: 1px 6px; border-radius: 3px; font-size: 12px; }
.COMPLETE { background: #7bc67b; } .CACHED { background: #9ecae1; }
.RUNNING { background: #fdd36a; } .FAILED { background: #f28b82; }
.CANCELED, .SKIPPED { background: #d0d0d0; } .NOT_STARTED { background: #fff; border: 1px solid #aaa; }
.bad { background: #fde0dc; }
pre.log, pre.error { background: #111; color: #eee; padding: 8px; max-height: 480px; overflow: auto; }
pre.error { background: #5b1010; }
svg.dag, svg.lineage { border: 1px solid #ddd; background: #fafafa; }
.muted { color: #777; }
figure.plot, figure.curves { display: inline-block; margin: 4px 8px; vertical-align: top; }
svg.plot { margin-right: 6px; }
"""
)

JS = (
    SORT_JS
    + """
// Forms marked data-api post JSON with the CSRF token, then reload.
document.addEventListener('submit', function (ev) {
  var form = ev.target; if (!form.dataset.api) return;
  ev.preventDefault();
  var token = document.querySelector('meta[name=csrf-token]').content;
  var body = {};
  var params = form.querySelector('[name=runtime_parameters]');
  if (params) {
    body.runtime_parameters = {};
    params.value.split('\\n').forEach(function (line) {
      var i = line.indexOf('='); if (i > 0) body.runtime_parameters[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    });
  }
  var nc = form.querySelector('[name=no_cache]'); if (nc) body.no_cache = nc.checked;
  fetch(form.action, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': token},
                      body: JSON.stringify(body), credentials: 'same-origin'})
    .then(function (r) { return r.json().then(function (j) { return [r, j]; }); })
    .then(function (rj) {
      var out = form.querySelector('.result');
      if (out) out.textContent = rj[0].ok ? 'started: ' + JSON.stringify(rj[1]) : (rj[1].error || rj[0].status);
      if (!rj[0].ok) return;
      if (form.dataset.runsUrl) waitForNewRun(form, out); else setTimeout(function () { location.reload(); }, 2000);
    });
});
// A run just started: reload once ML Metadata has it (its runner takes a moment to start),
// so the page shows it and then refreshes itself while it is live.
function waitForNewRun(form, out) {
  var tries = 0;
  var timer = setInterval(function () {
    tries += 1;
    fetch(form.dataset.runsUrl, {credentials: 'same-origin'}).then(function (r) { return r.json(); })
      .then(function (j) {
        var newest = j.runs && j.runs.length ? j.runs[0].run_id : '';
        if (newest && newest !== form.dataset.newest) { clearInterval(timer); location.reload(); }
        else if (tries >= 120) {
          clearInterval(timer);
          if (out) out.textContent += ' (no run recorded after 2 minutes: see its log)';
        }
      });
  }, 1000);
}
// A live log: [data-log-url] is refreshed every 2 s while its run is running.
(function () {
  var pre = document.querySelector('pre[data-log-url]'); if (!pre) return;
  var timer = setInterval(function () {
    fetch(pre.dataset.logUrl, {credentials: 'same-origin'}).then(function (r) { return r.json(); })
      .then(function (j) {
        if (j.log !== null) pre.textContent = j.log;
        if (j.state !== 'RUNNING' && j.state !== 'NOT_STARTED') clearInterval(timer);
      });
  }, 2000);
})();
"""
)
