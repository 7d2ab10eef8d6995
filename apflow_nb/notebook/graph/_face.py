"""GraphFace: one tree's graph, laid out once, drawn from a RunState as often as asked.

The layout (boxes, layers, edge routes) is computed when the face is made and never again; a
draw reads only statuses and progress from the state. Three outputs share it: the SVG, the HTML
frame (SVG + clickable boxes + details panels, pure HTML/CSS so a saved notebook keeps the
clicks), and a text summary.

Clicks without JavaScript: every box is covered by a ``<label for=...>`` of a hidden radio button;
checking it shows that box's details panel through CSS (``input:checked + .panel`` in a static
frame; ``:has(...)`` in the live widget, whose radios sit in a widget that never redraws, so a
panel stays open while the graph keeps updating).
"""
from __future__ import annotations

import base64
import secrets
from typing import Any, Iterable

from apflow_nb.notebook.graph import _palette as P
from apflow_nb.notebook.graph._details import cluster_details, panel_css, task_details
from apflow_nb.notebook.graph._group import MAX_NODES, Plan, plan
from apflow_nb.notebook.graph._layout import Layout, layered_layout
from apflow_nb.notebook.graph._model import GraphSpec
from apflow_nb.notebook.graph._svg import Look, SvgPainter

MAX_HEIGHT = 640
TEXT_BOXES = 60
_ORDER = {s: k for k, s in enumerate(("pending", "in_progress", "completed", "failed", "cancelled", "unknown"))}


def new_uid() -> str:
    """A fresh id for one drawing (two drawings in one page must not share radio or marker ids)."""
    return "apg-" + secrets.token_hex(4)


class GraphFace:
    """A laid-out graph of ``spec`` (grouped past ``max_nodes`` tasks) that draws any RunState."""

    def __init__(self, spec: GraphSpec, *, max_nodes: int = MAX_NODES, expanded: Iterable[str] = (),
                 uid: str | None = None):
        self.spec = spec
        self.uid = uid or new_uid()
        self.expanded = frozenset(expanded)
        self.plan: Plan = plan(spec, max_nodes, self.expanded)
        self.layout: Layout = layered_layout(len(self.plan.items), [(a, b) for a, b, _, _ in self.plan.edges])
        self.painter = SvgPainter(self.plan, self.layout, self.uid, [it.key for it in self.plan.items])
        self._details: dict[int, tuple[Any, str]] = {}
        self._label_html = self._labels()

    # -- what each box shows ------------------------------------------------------------------
    def looks(self, state: Any) -> list[Look]:
        """Status and progress of every box (clusters: counts by status and their combined progress)."""
        rows = state.rows
        tasks = self.spec.tasks
        out = []
        for item in self.plan.items:
            if not item.cluster:
                row = rows.get(tasks[item.members[0]].id)
                out.append(Look(P.status_of(row.status), round(row.progress, 2)) if row is not None
                           else Look("pending", 0.0))
                continue
            counts: dict[str, int] = {}
            done = 0.0
            for i in item.members:
                row = rows.get(tasks[i].id)
                status = P.status_of(row.status) if row is not None else "pending"
                counts[status] = counts.get(status, 0) + 1
                if row is not None:
                    done += 1.0 if status in ("completed", "failed") else row.progress if status != "pending" else 0.0
            out.append(Look(_cluster_status(counts), round(done / len(item.members), 2),
                            tuple(sorted(counts.items(), key=lambda kv: _ORDER[kv[0]]))))
        return out

    def svg(self, state: Any, standalone: bool = False) -> str:
        """The graph as SVG (``standalone`` adds the XML namespace: an ``image/svg+xml`` document)."""
        return self.painter.svg(self.looks(state), standalone=standalone)

    # -- HTML -------------------------------------------------------------------------------------
    def _labels(self) -> str:
        g, lay = self.layout.geometry, self.layout
        out = []
        for k, item in enumerate(self.plan.items):
            out.append(f'<label class="apflow-node" for="{self.uid}-r{k}" data-task-id="{P.esc(item.key)}" '
                       f'title="{P.esc(item.label)}: click for details" style="position:absolute;cursor:pointer;'
                       f'left:{lay.x[k] - g.node_w / 2:.0f}px;top:{lay.y[k] - g.node_h / 2:.0f}px;'
                       f'width:{g.node_w:.0f}px;height:{g.node_h:.0f}px;margin:0"></label>')
        return "".join(out)

    def graph_html(self, state: Any) -> str:
        """The SVG with a clickable label over every box, in a scrolling frame."""
        w, h = self.layout.width, self.layout.height
        return (f'<div class="apflow-graph-scroll" style="overflow:auto;max-height:{MAX_HEIGHT}px;max-width:100%">'
                f'<div style="position:relative;width:{w:.0f}px;height:{h:.0f}px">{self.svg(state)}'
                f"{self._label_html}</div></div>")

    def panel(self, k: int, state: Any) -> str:
        """The details of box ``k`` (cached until what it shows changes)."""
        item = self.plan.items[k]
        rows = state.rows
        if item.cluster:
            key: Any = tuple((rows[self.spec.tasks[i].id].status, rows[self.spec.tasks[i].id].progress)
                             if self.spec.tasks[i].id in rows else None for i in item.members[:200])
            key = (key, state.version if len(item.members) > 200 else 0)
        else:
            row = rows.get(item.key)
            key = None if row is None else (row.status, row.started, row.ended, row.error, row.message)
        hit = self._details.get(k)
        if hit is not None and hit[0] == key:
            return hit[1]
        if item.cluster:
            body = cluster_details(self.spec, item, rows, f".expand({item.key!r})")
        else:
            body = task_details(self.spec, item.members[0], rows.get(item.key))
        close = (f'<label for="{self.uid}-none" style="float:right;cursor:pointer" '
                 f'title="close">✕</label>')
        html = (f'<div class="apflow-panel {self.uid}-p{k}" data-task-id="{P.esc(item.key)}" '
                f'style="border:1px solid {P.css(P.BORDER)};padding:4px 8px;margin-top:4px;max-height:360px;'
                f'overflow:auto">{close}{body}</div>')
        self._details[k] = (key, html)
        return html

    def html(self, state: Any) -> str:
        """The static frame: graph, clickable boxes, details panels (radio + panel pairs, CSS only).

        Where HTML is sanitized (a notebook JupyterLab does not trust: ``<style>`` and ``<svg>``
        removed, inline styles kept) the graph shows as an image of the same SVG instead: the inline
        SVG and the image swap places only through the frame's own stylesheet.
        """
        uid = self.uid
        css = (f"#{uid}-h input.apflow-pick:checked+.apflow-slot{{display:block !important}}"
               f"#{uid}-h .apflow-svg-box{{display:block !important}}"
               f"#{uid}-h .apflow-graph-img{{display:none !important}}"
               f"#{uid}-h label.apflow-node:hover{{outline:2px solid {P.color('in_progress')};border-radius:6px}}"
               + panel_css(f"#{uid}-h"))
        hidden = 'hidden style="display:none"'
        radios = [f'<input type="radio" class="apflow-pick" name="{uid}" id="{uid}-none" {hidden} checked>']
        for k in range(len(self.plan.items)):
            radios.append(f'<input type="radio" class="apflow-pick" name="{uid}" id="{uid}-r{k}" {hidden}>'
                          f'<div class="apflow-slot" style="display:none">{self.panel(k, state)}</div>')
        return (f'<div class="apflow-graph" id="{uid}-h" data-root-id="{P.esc(self.spec.root_id)}" '
                f'style="font-family:{P.FONT};font-size:12px"><style>{css}</style>'
                f"{self.summary_html()}{self._static_graph(state)}"
                f'<div class="apflow-panels">{"".join(radios)}</div></div>')

    def _static_graph(self, state: Any) -> str:
        w, h = self.layout.width, self.layout.height
        image = base64.b64encode(self.svg(state, standalone=True).encode()).decode()
        return (f'<div class="apflow-graph-scroll" style="overflow:auto;max-height:{MAX_HEIGHT}px;max-width:100%">'
                f'<div style="position:relative;width:{w:.0f}px;height:{h:.0f}px">'
                f'<img class="apflow-graph-img" alt="dependency graph" width="{w:.0f}" height="{h:.0f}" '
                f'style="display:block;max-width:none" src="data:image/svg+xml;base64,{image}">'
                f'<div class="apflow-svg-box" style="display:none">{self.svg(state)}</div>'
                f"{self._label_html}</div></div>")

    def summary_html(self) -> str:
        """One muted line: how many tasks, boxes and layers; how to see details."""
        p = self.plan
        what = (f"{len(self.spec.tasks)} tasks in {len(p.items)} boxes (grouped)" if p.grouped
                else f"{len(self.spec.tasks)} tasks")
        layers = max(self.layout.layer, default=-1) + 1
        return (f'<div style="color:{P.css(P.MUTED)}">{what} · {len(p.edges)} dependencies · '
                f"{layers} layers · click a box for its details</div>")

    # -- live widget parts ------------------------------------------------------------------------
    def picker_html(self, scope: str) -> str:
        """The live view's radios and the ``:has`` rules that show the checked box's panel."""
        uid = self.uid
        rules = [f".{scope} .apflow-panel{{display:none}}", panel_css(f".{scope}")]
        for k in range(len(self.plan.items)):
            rules.append(f".{scope}:has(#{uid}-r{k}:checked) .{uid}-p{k}{{display:block}}"
                         f".{scope}:has(#{uid}-r{k}:checked) label[for={uid}-r{k}]"
                         f"{{outline:2px solid {P.color('in_progress')};border-radius:6px}}")
        radios = "".join(f'<input type="radio" name="{uid}" id="{uid}-r{k}" hidden>'
                         for k in range(len(self.plan.items)))
        return (f'<style>{"".join(rules)}</style><input type="radio" name="{uid}" id="{uid}-none" hidden checked>'
                + radios)

    def panels_html(self, state: Any) -> str:
        """Every box's details panel (hidden until its box is clicked), for the live view."""
        return "".join(self.panel(k, state) for k in range(len(self.plan.items)))

    # -- text -------------------------------------------------------------------------------------
    def text(self, state: Any) -> str:
        """Boxes layer by layer with their status and what they depend on."""
        looks = self.looks(state)
        items, p = self.plan.items, self.plan
        deps: dict[int, list[int]] = {}
        for a, b, _, _ in p.edges:
            deps.setdefault(b, []).append(a)
        layers = max(self.layout.layer, default=-1) + 1
        head = (f"graph of {len(self.spec.tasks)} tasks"
                + (f" in {len(items)} boxes (grouped)" if p.grouped else "")
                + f", {len(p.edges)} dependencies, {layers} layers")
        lines = [head]
        shown = 0
        for layer in range(layers):
            members = [k for k in range(len(items)) if self.layout.layer[k] == layer]
            for k in members:
                if shown >= TEXT_BOXES:
                    break
                look = looks[k]
                after = ", ".join(items[a].label for a in deps.get(k, ()))
                lines.append(f"  {layer + 1}: {P.ICON[look.status]} {items[k].label} [{items[k].sub}] "
                             f"{look.progress:.0%}" + (f" <- {after}" if after else ""))
                shown += 1
        if shown < len(items):
            lines.append(f"  … {len(items) - shown} more boxes")
        return "\n".join(lines)


def _cluster_status(counts: dict[str, int]) -> str:
    """A cluster's colour: failed if any failed, else running if any runs, else pending if any waits,
    else cancelled if any was cancelled, else completed."""
    for status in ("failed", "in_progress", "pending", "cancelled", "unknown"):
        if counts.get(status):
            return status
    return "completed"
