"""The dashboard's callbacks that run in the browser: JavaScript functions that
:func:`dashboards.callbacks.register_callbacks` wires with ``app.clientside_callback``
(event translation, the ring on the frame on show, the views that follow the
projection, play, the address, the tabs)."""

from __future__ import annotations

from . import figures
from . import layout as L

__all__ = ["EVENT_RUN", "MARK_FRAME", "DRAWN", "PLAY_STEP", "ADDRESS", "TAB"]

# The projection's points carry customdata [run index, frame], the index into their trace's meta, the ids of its
# runs (figures.projection_figure: the ids are not repeated in every point).  Hover and click events are translated
# here, in the browser, from the figure they came from, into customdata [run_id, frame] (a gap or anything else:
# null), and go to the server through the HOVER and CLICK stores.
EVENT_RUN = """
function (event, fig) {
    if (!event || !Array.isArray(event.points)) { return null; }
    const traces = (fig && Array.isArray(fig.data)) ? fig.data : [];
    const points = event.points.map(p => {
        const c = p ? p.customdata : null;
        const t = (p && Number.isInteger(p.curveNumber)) ? traces[p.curveNumber] : null;
        const runs = (t && Array.isArray(t.meta)) ? t.meta : [];
        const ok = Array.isArray(c) && c.length === 2 && Number.isInteger(c[0]) && c[0] >= 0 && c[0] < runs.length;
        return Object.assign({}, p, {customdata: ok ? [runs[c[0]], c[1]] : null});
    });
    return Object.assign({}, event, {points: points});
}
"""

MARK_FRAME = """
function (frame, fig) {
    const skip = window.dash_clientside.no_update;
    if (!frame || !fig || !Array.isArray(fig.data) || !fig.data.length || !fig.layout) { return skip; }
    let at = null;
    for (const t of fig.data) {
        if (t.name === "%(name)s" || !Array.isArray(t.customdata) || !Array.isArray(t.meta)) { continue; }
        const run = t.meta.indexOf(frame.run_id);
        if (run < 0) { continue; }
        // the frame's point, or (a large projection sends every k-th frame) the run's last point before it
        let i = -1;
        t.customdata.forEach((c, j) => {
            if (c && c[0] === run && c[1] <= frame.frame && (i < 0 || c[1] >= t.customdata[i][1])) { i = j; }
        });
        if (i >= 0) { at = {x: t.x[i], y: t.y[i], z: t.z ? t.z[i] : null}; break; }
    }
    const shapes = fig.layout.shapes || [];
    const s = shapes.findIndex(sh => sh.name === "%(name)s");
    if (s >= 0) {  // 2-D: move the ring shape; the traces stay the same objects, so nothing is redrawn
        const moved = at ? Object.assign({}, shapes[s], {xanchor: at.x, yanchor: at.y, visible: true})
                         : Object.assign({}, shapes[s], {visible: false});
        const layout = Object.assign({}, fig.layout, {shapes: shapes.map((sh, j) => j === s ? moved : sh)});
        return Object.assign({}, fig, {layout: layout});
    }
    const last = fig.data[fig.data.length - 1];
    if (last.name !== "%(name)s") { return skip; }
    const ring = Object.assign({}, last, at ? {x: [at.x], y: [at.y], z: [at.z]} : {x: [], y: [], z: []});
    return Object.assign({}, fig, {data: fig.data.slice(0, -1).concat([ring])});
}
""" % {"name": figures.CURRENT}

DRAWN = """
async function (_fig, _embedded, selection, drawn) {
    const sel = selection || [];
    if (JSON.stringify(sel) === JSON.stringify(drawn)) {
        return window.dash_clientside.no_update;
    }
    // Let plotly draw the projection first (the first paint), then start the views that follow the selection:
    // wait (at most 3 s) for the graph to hold a plot, one animation frame at a time.
    const t0 = performance.now();
    while (performance.now() - t0 < 3000) {
        const g = document.querySelector('#projection .js-plotly-plot');
        if (g && g._fullLayout) { break; }
        await new Promise(r => requestAnimationFrame(r));
    }
    return sel;
}
"""

PLAY_STEP = """
function (_n, frame, shown, max, value) {
    if (!frame || !shown || frame.run_id !== shown.run_id || frame.frame !== shown.frame) {
        return window.dash_clientside.no_update;
    }
    return ((value || 0) + 1) % ((max || 0) + 1);
}
"""


#: the view's query string, written by the browser as the view changes (at most 300 ticked runs go in it)
ADDRESS = """
function(method, dims, space, relative, filter, ticked, tab) {
    const q = new URLSearchParams();
    if (tab) { q.set('tab', tab); }
    if (method) { q.set('view', method); }
    if (dims) { q.set('dims', String(dims)); }
    if (space) { q.set('space', space); }
    q.set('rel', (relative && relative.length) ? '1' : '0');
    if (filter) { q.set('filter', filter); }
    if (ticked && ticked.length && ticked.length <= 300) { q.set('sel', ticked.join(',')); }
    const url = window.location.pathname + '?' + q.toString() + window.location.hash;
    window.history.replaceState(null, '', url);
    return q.toString();
}
"""

#: the tab shown: the styles of the Discover panel, the runs panel, Browse and Compare (layout.panel_styles)
TAB = """
function(tab) {
    const hide = {display: 'none'};
    return [tab === '%(d)s' ? {} : hide, tab === '%(d)s' ? hide : {}, tab === '%(b)s' ? {} : hide,
            tab === '%(c)s' ? {} : hide];
}
""" % {"b": L.BROWSE, "d": L.DISCOVER, "c": L.COMPARE}
