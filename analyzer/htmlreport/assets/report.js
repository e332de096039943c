// perfhound report: draws the flame graphs embedded as JSON in each
// .flamegraph element. No libraries and no network: the page must open
// from a file on a host without either.
//
// The data is {unit, total, names, root}; a node is [name index, value,
// frame kind, [children]], children largest first. Frames are absolutely
// positioned divs (class "frame"), root at the top (an icicle).
(function () {
  'use strict';

  var ROW = 18;      // px per stack level
  var MIN_PX = 0.6;  // frames narrower than this are not drawn

  // Frame kinds, as flame.go numbers them.
  var USER = 0, KERNEL = 1, RUNTIME = 2, LABEL = 3;

  function hash(s) {
    var h = 2166136261;
    for (var i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 16777619);
    }
    return (h >>> 0) / 4294967296;
  }

  // Go's profiles of goroutines waiting, drawn in the violets of locks
  // (clear of the search's magenta).
  var WAITS = { mutex: true, block: true, contention: true };

  // color gives on-CPU frames the classic warm palette, off-CPU frames a
  // cool one and goroutine waits a violet one, each with the kernel and
  // the Go runtime in their own hues, so that where time goes reads before
  // any name does.
  function color(graphKind, n) {
    if (n.k === LABEL) return n.p ? 'hsl(210, 18%, 80%)' : 'hsl(210, 14%, 88%)';
    var r = hash(n.name), r2 = hash(n.name + '.');
    var h, s, l;
    if (WAITS[graphKind]) {
      if (n.k === KERNEL) { h = 200 + 12 * r; } else if (n.k === RUNTIME) { h = 225 + 15 * r; } else { h = 255 + 30 * r; }
      s = 45 + 20 * r2; l = 66 + 10 * r;
    } else if (graphKind === 'offcpu') {
      if (n.k === KERNEL) { h = 185 + 15 * r; } else if (n.k === RUNTIME) { h = 240 + 15 * r; } else { h = 200 + 25 * r; }
      s = 55 + 20 * r2; l = 62 + 10 * r;
    } else {
      if (n.k === KERNEL) { h = 28 + 14 * r; } else if (n.k === RUNTIME) { h = 46 + 12 * r; } else { h = 2 + 22 * r; }
      s = 72 + 20 * r2; l = 56 + 10 * r;
    }
    return 'hsl(' + h.toFixed(0) + ', ' + s.toFixed(0) + '%, ' + l.toFixed(0) + '%)';
  }

  function fixed(x, d) {
    return x.toFixed(x >= 100 ? 0 : x >= 10 ? Math.min(d, 1) : d);
  }

  function si(v, unit) {
    var p = ['', 'k', 'M', 'G', 'T', 'P'], i = 0;
    while (Math.abs(v) >= 1000 && i < p.length - 1) { v /= 1000; i++; }
    return (i === 0 ? String(Math.round(v * 100) / 100) : fixed(v, 2)) + (p[i] || unit ? ' ' + p[i] + unit : '');
  }

  function fmt(v, unit) {
    if (unit === 'nanoseconds') {
      if (v >= 1e9) return fixed(v / 1e9, 2) + ' s';
      if (v >= 1e6) return fixed(v / 1e6, 2) + ' ms';
      if (v >= 1e3) return fixed(v / 1e3, 1) + ' µs';
      return v + ' ns';
    }
    if (unit === 'bytes') return si(v, 'B');
    if (unit === 'count' || !unit) return si(v, '');
    return si(v, '') + ' ' + unit;
  }

  function pct(x) {
    if (x >= 0.1) return (100 * x).toFixed(1) + '%';
    if (x >= 0.001) return (100 * x).toFixed(2) + '%';
    return '<0.1%';
  }

  // build turns the nested arrays into nodes with parents, depths and
  // offsets (in value units from the root's left edge).
  function build(data) {
    var nodes = [];
    var maxDepth = 0;
    function walk(a, parent, depth, x) {
      var n = { name: data.names[a[0]], v: a[1], k: a[2], p: parent, d: depth, x: x, c: [], i: nodes.length };
      nodes.push(n);
      if (depth > maxDepth) maxDepth = depth;
      var kids = a[3];
      if (kids) {
        var cx = x;
        for (var j = 0; j < kids.length; j++) {
          var c = walk(kids[j], n, depth + 1, cx);
          n.c.push(c);
          cx += c.v;
        }
      }
      return n;
    }
    var root = walk(data.root, null, 0, 0);
    return { root: root, nodes: nodes, maxDepth: maxDepth };
  }

  function FlameGraph(el) {
    var script = el.querySelector('script.fg-data');
    if (!script) return;
    var data = JSON.parse(script.textContent);
    var tree = build(data);
    var kind = el.getAttribute('data-kind') || 'cpu';
    var canvas = el.querySelector('.fg-canvas');
    var tip = el.querySelector('.fg-tip');
    var status = el.querySelector('.fg-status');
    var matchOut = el.querySelector('.fg-match');
    var crumbs = el.querySelector('.fg-crumbs');
    var search = el.querySelector('.fg-search');
    var total = tree.root.v || 1;
    var zoom = tree.root;
    var matcher = null;
    var idle = status.textContent;

    function matches(n) {
      return matcher !== null && n.k !== LABEL && matcher.test(n.name);
    }

    function frameDiv(n, left, width, cls) {
      var d = document.createElement('div');
      d.className = 'frame' + cls + (matches(n) ? ' match' : '');
      d.style.left = left.toFixed(1) + 'px';
      d.style.width = Math.max(width, 0.5).toFixed(1) + 'px';
      d.style.top = (n.d * ROW) + 'px';
      d.style.background = color(kind, n);
      d.setAttribute('data-i', n.i);
      if (width > 24) d.textContent = n.name;
      return d;
    }

    function draw() {
      var W = canvas.clientWidth;
      if (W <= 0) return;
      var frag = document.createDocumentFragment();
      var count = 0, depth = zoom.d;
      // The zoomed frame's callers, full width, faded.
      for (var a = zoom.p; a; a = a.p) {
        frag.appendChild(frameDiv(a, 0, W, ' anc'));
        count++;
      }
      var scale = W / zoom.v;
      var stack = [zoom];
      while (stack.length) {
        var n = stack.pop();
        var w = n.v * scale;
        if (w < MIN_PX) continue;
        frag.appendChild(frameDiv(n, (n.x - zoom.x) * scale, w, ''));
        count++;
        if (n.d > depth) depth = n.d;
        for (var j = n.c.length - 1; j >= 0; j--) stack.push(n.c[j]);
      }
      canvas.textContent = '';
      canvas.style.height = ((depth + 1) * ROW) + 'px';
      canvas.appendChild(frag);
      el.setAttribute('data-drawn', String(count));
      crumbs.textContent = zoom === tree.root ? '' : 'zoomed into ' + zoom.name;
    }

    function describe(n) {
      var self = n.v;
      for (var j = 0; j < n.c.length; j++) self -= n.c[j].v;
      var s = n.name + '\n' + fmt(n.v, data.unit) + ' (' + pct(n.v / total) + ' of all';
      if (zoom !== tree.root) s += ', ' + pct(n.v / zoom.v) + ' of zoomed';
      s += ')';
      if (n.c.length && self > 0) s += '\nself ' + fmt(self, data.unit) + ' (' + pct(self / total) + ')';
      return s;
    }

    function nodeAt(target) {
      var i = target && target.getAttribute && target.getAttribute('data-i');
      return i === null || i === undefined ? null : tree.nodes[+i];
    }

    canvas.addEventListener('mousemove', function (ev) {
      var n = nodeAt(ev.target);
      if (!n) { tip.hidden = true; return; }
      tip.textContent = describe(n);
      tip.hidden = false;
      var box = el.getBoundingClientRect();
      var x = ev.clientX - box.left + 14, y = ev.clientY - box.top + 16;
      if (x + tip.offsetWidth > box.width) x = Math.max(0, ev.clientX - box.left - tip.offsetWidth - 8);
      tip.style.left = x + 'px';
      tip.style.top = y + 'px';
      status.textContent = describe(n).replace(/\n/g, '  ·  ');
    });
    canvas.addEventListener('mouseleave', function () {
      tip.hidden = true;
      status.textContent = idle;
    });
    canvas.addEventListener('click', function (ev) {
      var n = nodeAt(ev.target);
      if (!n) return;
      zoom = n === zoom && n.p ? n.p : n;
      draw();
    });
    el.querySelector('.fg-reset').addEventListener('click', function () {
      zoom = tree.root;
      draw();
    });

    function applySearch() {
      var q = search.value.trim();
      matcher = null;
      matchOut.textContent = '';
      if (q) {
        try { matcher = new RegExp(q, 'i'); } catch (e) {
          matcher = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
        }
        // Time under a match, counting nested matches once.
        var sum = 0, hits = 0;
        var stack = [tree.root];
        while (stack.length) {
          var n = stack.pop();
          if (matches(n)) { sum += n.v; hits++; continue; }
          for (var j = 0; j < n.c.length; j++) stack.push(n.c[j]);
        }
        matchOut.textContent = hits ? 'matched ' + fmt(sum, data.unit) + ' (' + pct(sum / total) + ')' : 'no match';
      }
      draw();
    }
    var pending = 0;
    search.addEventListener('input', function () {
      clearTimeout(pending);
      pending = setTimeout(applySearch, 120);
    });

    var queued = false;
    window.addEventListener('resize', function () {
      if (queued) return;
      queued = true;
      requestAnimationFrame(function () { queued = false; draw(); });
    });
    draw();
  }

  var graphs = document.querySelectorAll('.flamegraph');
  for (var i = 0; i < graphs.length; i++) {
    try { FlameGraph(graphs[i]); } catch (e) {
      var p = document.createElement('p');
      p.className = 'absent';
      p.textContent = 'This flame graph could not be drawn: ' + e;
      graphs[i].appendChild(p);
    }
  }
})();
