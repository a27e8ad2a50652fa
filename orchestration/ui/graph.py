"""Graphs the UI draws: a run's DAG and an artifact's lineage, laid out here as inline SVG.

The layout puts each node in the layer of its topological depth (the longest path from
a node without inputs), left to right, and spreads each layer's nodes top to bottom.
"""

from __future__ import annotations

import html

#: Fill colour of a node by its state.
STATE_COLORS = {
    "COMPLETE": "#7bc67b",
    "CACHED": "#9ecae1",
    "RUNNING": "#fdd36a",
    "FAILED": "#f28b82",
    "CANCELED": "#c9c9c9",
    "SKIPPED": "#e6e6e6",
    "NOT_STARTED": "#ffffff",
    "artifact": "#f3e8ff",
}

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 170, 44, 70, 24, 16


def layers(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """``{node: depth}``: 0 for a node no edge enters, else 1 + its deepest predecessor's.

    Nodes on a cycle (none in a DAG) keep the depth reached when the cycle is cut.

    >>> layers(["a", "b", "c"], [("a", "b"), ("b", "c"), ("a", "c")])
    {'a': 0, 'b': 1, 'c': 2}
    """
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in preds and b in preds:
            preds[b].append(a)
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(n: str) -> int:
        if n in depth:
            return depth[n]
        if n in visiting:
            return 0
        visiting.add(n)
        d = 1 + max((visit(p) for p in preds[n]), default=-1)
        visiting.discard(n)
        depth[n] = d
        return d

    for n in nodes:
        visit(n)
    return {n: depth[n] for n in nodes}


def layout(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, tuple[int, int]]:
    """``{node: (x, y)}`` top-left corners: x by depth, y by order within the layer."""
    depth = layers(nodes, edges)
    rows: dict[int, int] = {}
    pos = {}
    for n in nodes:
        d = depth[n]
        i = rows.get(d, 0)
        rows[d] = i + 1
        pos[n] = (PAD + d * (NODE_W + GAP_X), PAD + i * (NODE_H + GAP_Y))
    return pos


def svg(nodes: list[dict], edges: list[tuple[str, str, str]], css_class: str = "dag") -> str:
    """An inline SVG of a graph.

    Args:
      nodes: ``{"id", "label", "sub", "state", "href"}`` each (``sub``: a second line).
      edges: ``(from id, to id, label)``.
    """
    ids = [n["id"] for n in nodes]
    pos = layout(ids, [(a, b) for a, b, _ in edges])
    width = max((x for x, _ in pos.values()), default=0) + NODE_W + PAD
    height = max((y for _, y in pos.values()), default=0) + NODE_H + PAD
    parts = [
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#666"/></marker></defs>',
    ]
    for a, b, label in edges:
        if a not in pos or b not in pos:
            continue
        x1, y1 = pos[a][0] + NODE_W, pos[a][1] + NODE_H // 2
        x2, y2 = pos[b][0], pos[b][1] + NODE_H // 2
        mx = (x1 + x2) // 2
        parts.append(
            f'<path class="edge" d="M{x1},{y1} C{mx},{y1} {mx},{y2} {x2},{y2}" fill="none" '
            f'stroke="#666" marker-end="url(#arrow)"><title>{_e(label)}</title></path>'
        )
    for n in nodes:
        x, y = pos[n["id"]]
        fill = STATE_COLORS.get(n.get("state") or "", "#ffffff")
        shape = (
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
            f'stroke="#444"/>'
            f'<text x="{x + 8}" y="{y + 18}" font-size="13">{_e(_short(n["label"]))}</text>'
            f'<text x="{x + 8}" y="{y + 35}" font-size="11" fill="#333">'
            f"{_e(_short(n.get('sub') or ''))}</text>"
        )
        title = f"<title>{_e(n['label'])} {_e(n.get('state') or '')}</title>"
        node = f'<g class="node" data-id="{_e(n["id"])}" data-state="{_e(n.get("state") or "")}">'
        if n.get("href"):
            node += f'<a href="{_e(n["href"])}">{title}{shape}</a></g>'
        else:
            node += f"{title}{shape}</g>"
        parts.append(node)
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, n: int = 24) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def lineage(md, artifact_id: int, max_nodes: int = 300) -> dict:
    """The executions and artifacts upstream and downstream of an artifact.

    Returns ``{"nodes": [...], "edges": [...], "truncated": bool}``: nodes are
    ``{"id": "a<id>" or "e<id>", "kind", ...}``; edges go artifact -> execution (an
    input) and execution -> artifact (an output). The walk stops after ``max_nodes``.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    types = md._type_names()
    arts: dict[int, object] = {}
    exes: dict[int, object] = {}
    edges: set[tuple[str, str, str]] = set()
    truncated = False
    # upstream: artifact <- producing execution <- its inputs...; downstream: the reverse
    for direction in ("up", "down"):
        frontier = [artifact_id]
        seen = {artifact_id}
        while frontier:
            events = md._call(md.store.get_events_by_artifact_ids, frontier)
            want = pb.Event.OUTPUT if direction == "up" else pb.Event.INPUT
            ex_ids = sorted({e.execution_id for e in events if e.type == want})
            for e in events:
                if e.type == want:
                    edges.add(_edge(e, pb))
            frontier = []
            if not ex_ids:
                break
            for ex in md._call(md.store.get_executions_by_id, ex_ids):
                exes[ex.id] = ex
            ex_events = md._call(md.store.get_events_by_execution_ids, ex_ids)
            other = pb.Event.INPUT if direction == "up" else pb.Event.OUTPUT
            for e in ex_events:
                if e.type != other:
                    continue
                edges.add(_edge(e, pb))
                if e.artifact_id not in seen:
                    seen.add(e.artifact_id)
                    frontier.append(e.artifact_id)
            if len(seen) + len(exes) > max_nodes:
                truncated, frontier = True, []
    ids = set()
    for a, b, _ in edges:
        ids.update((a, b))
    ids.add(f"a{artifact_id}")
    art_ids = sorted(int(i[1:]) for i in ids if i[0] == "a")
    for a in md._call(md.store.get_artifacts_by_id, art_ids):
        arts[a.id] = a
    nodes = []
    for i in sorted(ids, key=lambda s: (s[0], int(s[1:]))):
        num = int(i[1:])
        if i[0] == "a" and num in arts:
            a = arts[num]
            nodes.append(
                {
                    "id": i,
                    "kind": "artifact",
                    "artifact_id": num,
                    "type": types.get(a.type_id, ""),
                    "uri": a.uri,
                }
            )
        elif i[0] == "e" and num in exes:
            p = exes[num].properties
            nodes.append(
                {
                    "id": i,
                    "kind": "execution",
                    "execution_id": num,
                    "component_id": p["component_id"].string_value if "component_id" in p else "",
                    "run_id": p["run_id"].string_value if "run_id" in p else "",
                    "state": p["state"].string_value if "state" in p else "",
                }
            )
    known = {n["id"] for n in nodes}
    return {
        "artifact_id": artifact_id,
        "nodes": nodes,
        "edges": [
            {"from": a, "to": b, "key": k} for a, b, k in sorted(edges) if a in known and b in known
        ],
        "truncated": truncated,
    }


def _edge(event, pb) -> tuple[str, str, str]:
    key = event.path.steps[0].key if event.path.steps else ""
    if event.type in (pb.Event.OUTPUT, pb.Event.DECLARED_OUTPUT):
        return (f"e{event.execution_id}", f"a{event.artifact_id}", key)
    return (f"a{event.artifact_id}", f"e{event.execution_id}", key)
