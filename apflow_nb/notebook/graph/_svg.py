"""SVG drawing of a laid-out graph: boxes coloured by status with a progress bar, arrows for
dependencies (dashed when optional), light dotted links from parents to children.

Edges never change during a run, so they are drawn once; a redraw joins the cached edge layer
with the node fragments, each cached by what it shows (status, percent), so a redraw of 300 boxes
costs a string join. Every text and attribute goes through ``esc``; status classes come only
from the known statuses ("unknown" otherwise), so hostile ids or names cannot inject markup.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from apflow_nb.notebook.graph import _palette as P
from apflow_nb.notebook.graph._group import Plan
from apflow_nb.notebook.graph._layout import Layout, Point

KEY_CHARS = 19
SUB_CHARS = 23
SEGMENTS = ("completed", "failed", "cancelled", "in_progress")


@dataclass(frozen=True)
class Look:
    """What a box shows: its status, progress 0..1, and for a cluster its counts by status."""

    status: str
    progress: float
    counts: tuple[tuple[str, int], ...] = ()


def style(uid: str) -> str:
    """The SVG's own stylesheet, scoped to its id (inline SVGs share the page's CSS)."""
    s = f"#{uid}"
    rules = [f"{s}{{font-family:{P.FONT};font-size:12px}}",
             f"{s} .b{{fill:{P.css(P.BOX)};stroke-width:1.2}}",
             f"{s} .b2{{fill:{P.css(P.PANEL)};stroke:{P.css(P.BORDER)}}}",
             f"{s} .k{{fill:{P.css(P.TEXT)};font-weight:600}}",
             f"{s} .x{{fill:{P.css(P.MUTED)};font-size:11px}}",
             f"{s} .tr{{fill:{P.css(P.TRACK)}}}",
             f"{s} .e{{fill:none;stroke:{P.css(P.EDGE)}}}",
             f"{s} .e.o{{stroke-dasharray:5 4}}",
             f"{s} .l{{fill:none;stroke:{P.css(P.EDGE)};stroke-dasharray:2 3;opacity:.55}}",
             f"{s} .ah{{fill:{P.css(P.EDGE)}}}",
             f"{s} .s-in_progress .b{{stroke-width:2.4}}"]
    for status in P.STATUS_VAR:  # a box's stripe, icon, border and bar are drawn in currentColor
        c = P.color(status)
        rules.append(f"{s} .s-{status}{{color:{c}}}{s} .g-{status}{{fill:{c}}}")
    return "".join(rules)


def _curve(points: Sequence[Point]) -> str:
    """A path through ``points`` with horizontal tangents (straight where a long edge passes a layer)."""
    (x0, y0), out = points[0], [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for x1, y1 in points[1:]:
        if abs(y1 - y0) < 0.5:
            out.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x1 - x0) / 2
            out.append(f"C{x0 + mid:.1f},{y0:.1f} {x1 - mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return "".join(out)


def edges_svg(plan: Plan, layout: Layout, uid: str) -> str:
    """The edge layer: drawn once per layout."""
    out = ['<g class="edges">']
    items = plan.items
    for k, (a, b, optional, count) in enumerate(plan.edges):
        width = 1.3 + 0.6 * min(4.0, math.log2(count)) if count > 1 else 1.3
        what = f"{count} dependencies" if count > 1 else ("optional dependency" if optional else "dependency")
        out.append(f'<path class="e{" o" if optional else ""}" d="{_curve(layout.routes[k])}" '
                   f'stroke="#8a8a8a" fill="none" stroke-width="{width:.1f}" marker-end="url(#{uid}-a)">'
                   f"<title>{P.esc(items[a].label)} → {P.esc(items[b].label)} ({what})</title></path>")
    g = layout.geometry
    for a, b in plan.parent_links:
        (xa, ya), (xb, yb) = (layout.x[a], layout.y[a]), (layout.x[b], layout.y[b])
        if abs(xa - xb) < 1:  # same layer: from the parent's bottom (or top) edge to the child's
            sign = 1 if yb > ya else -1
            pts = [(xa, ya + sign * g.node_h / 2), (xb, yb - sign * g.node_h / 2)]
        else:
            sign = 1 if xb > xa else -1
            pts = [(xa + sign * g.node_w / 2, ya), (xb - sign * g.node_w / 2, yb)]
        out.append(f'<path class="l" d="M{pts[0][0]:.1f},{pts[0][1]:.1f}L{pts[1][0]:.1f},{pts[1][1]:.1f}" '
                   f'stroke="#8a8a8a" fill="none"><title>{P.esc(plan.items[a].label)} is the parent of '
                   f"{P.esc(plan.items[b].label)}</title></path>")
    out.append("</g>")
    return "".join(out)


class Box:
    """One box's markup: the parts that never change are escaped and formatted once; ``svg(look)``
    adds what a look changes (status, counts, progress)."""

    __slots__ = ("label", "sub", "cluster", "w", "h", "head", "shapes", "title")

    def __init__(self, label: str, sub: str, task_id: str, x: float, y: float, w: float, h: float, cluster: bool):
        self.label, self.sub, self.cluster, self.w, self.h = label, sub, cluster, w, h
        self.head = f'data-task-id="{P.esc(task_id)}" transform="translate({x - w / 2:.1f},{y - h / 2:.1f})"'
        self.title = f"{P.esc(label)} ({P.esc(sub)}): "
        back = (f'<rect class="b2" x="4" y="-4" width="{w:.0f}" height="{h:.0f}" rx="6" fill="#f5f5f5" '
                f'stroke="#bdbdbd"/>') if cluster else ""
        self.shapes = (back + f'<rect class="b" width="{w:.0f}" height="{h:.0f}" rx="6" fill="#ffffff" '
                       f'stroke="currentColor"/><rect class="st" width="5" height="{h:.0f}" rx="2" fill="currentColor"/>'
                       f'<text class="k" x="26" y="18" fill="#212121">{P.esc(P.clip(label, KEY_CHARS))}</text>'
                       f'<rect class="tr" x="12" y="{h - 8:.0f}" width="{w - 22:.0f}" height="3" fill="#e0e0e0"/>')

    def svg(self, look: Look) -> str:
        status = P.status_of(look.status)
        pct = max(0.0, min(1.0, look.progress))
        bar_w = self.w - 22
        y = self.h - 8
        if self.cluster:
            counts = dict(look.counts)
            total = sum(counts.values()) or 1
            done = sum(counts.get(s, 0) for s in ("completed", "failed", "cancelled"))
            suffix = f" · {done}/{total}"
            title = ", ".join(f"{c} {s.replace('_', ' ')}" for s, c in look.counts if c)
            bars, offset = [], 12.0
            for seg in SEGMENTS:
                if counts.get(seg):
                    seg_w = bar_w * counts[seg] / total
                    bars.append(f'<rect class="g-{seg}" x="{offset:.1f}" y="{y:.0f}" width="{seg_w:.1f}" height="3" '
                                f'fill="{P.FALLBACK[seg]}"/>')
                    offset += seg_w
            bar = "".join(bars)
        else:
            suffix = f" · {pct:.0%}"
            title = f"{status.replace('_', ' ')} {pct:.0%}"
            bar = (f'<rect class="pg" x="12" y="{y:.0f}" width="{bar_w * pct:.1f}" height="3" fill="currentColor"/>'
                   if pct > 0 else "")
        sub = P.esc(P.clip(self.sub, SUB_CHARS - len(suffix))) + suffix
        return (f'<g class="n s-{status}{" c" if self.cluster else ""}" data-status="{status}" {self.head} '
                f'color="{P.FALLBACK[status]}"><title>{self.title}{title}</title>{self.shapes}'
                f'<text class="ic" x="12" y="18" fill="currentColor">{P.ICON[status]}</text>'
                f'<text class="x" x="12" y="32" fill="#616161">{sub}</text>{bar}</g>')


class SvgPainter:
    """Draws one layout again and again: the edge layer once, node boxes from a cache."""

    def __init__(self, plan: Plan, layout: Layout, uid: str, task_ids: Sequence[str]):
        self.plan, self.layout, self.uid = plan, layout, uid
        g = layout.geometry
        self.boxes = [Box(item.label, item.sub, task_ids[k], layout.x[k], layout.y[k], g.node_w, g.node_h,
                          item.cluster) for k, item in enumerate(plan.items)]
        self._edges = edges_svg(plan, layout, uid)
        self._cache: list[tuple[Look | None, str]] = [(None, "")] * len(self.boxes)

    def svg(self, looks: Sequence[Look], standalone: bool = False) -> str:
        """The whole SVG for these looks (one per item)."""
        cache = self._cache
        nodes = []
        for k, box in enumerate(self.boxes):
            look = looks[k]
            hit = cache[k]
            if hit[0] != look:
                hit = cache[k] = (look, box.svg(look))
            nodes.append(hit[1])
        w, h = self.layout.width, self.layout.height
        ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
        return (f'<svg{ns} id="{self.uid}" class="apflow-graph-svg" width="{w:.0f}" height="{h:.0f}" '
                f'viewBox="0 0 {w:.0f} {h:.0f}" style="max-width:none;width:{w:.0f}px;height:{h:.0f}px" '
                f'font-family="monospace" font-size="12" role="img">'
                f"<style>{style(self.uid)}</style>"
                f'<defs><marker id="{self.uid}-a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
                f'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path class="ah" d="M0,0L10,5L0,10z" fill="#8a8a8a"/>'
                f"</marker></defs>{self._edges}<g class=\"nodes\">{''.join(nodes)}</g></svg>")
