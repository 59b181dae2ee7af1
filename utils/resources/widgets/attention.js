/* The attention explorers (chapter 3, "Attention" and "The Transformer"), computed in the browser.
 *
 * mount_attention: the book's tiny Transformer (utils.transformer.TinyTransformer, exported float32
 *   weights) runs on the reader's digits; every score is divided by sqrt(d_k) * temperature in every
 *   layer, so both controls change the model's output as well as the maps. Two inputs side by side.
 *   Python reference: utils.widgets.reference.tiny_transformer_forward.
 * mount_qkv: one 2-D query, three keys with their own lengths and three values; the output is the
 *   convex combination sum_j a_j v_j. Python reference: reference.qkv_toy.
 * mount_dk: the d_k measurement of chapter 40 with random vectors (mulberry32 + Box-Muller,
 *   reproduced by reference.mulberry_normal). Python reference: reference.saturation_stats.
 * mount_stored_attention: attention maps of real pretrained models, precomputed in Python for a set
 *   of sentences (no model runs here), two sentences side by side.
 */
LMHO.layerNorm = function (x, w, b, C, out) {
  // nn.LayerNorm(C) with eps 1e-5 on one vector
  var mean = 0, v = 0, i;
  for (i = 0; i < C; i++) mean += x[i];
  mean /= C;
  for (i = 0; i < C; i++) v += (x[i] - mean) * (x[i] - mean);
  var inv = 1 / Math.sqrt(v / C + 1e-5);
  for (i = 0; i < C; i++) out[i] = (x[i] - mean) * inv * w[i] + b[i];
  return out;
};

LMHO.tinyForward = function (m, ids, temperature, dk) {
  // ids: token ids (T) -> {logits: [T][V], maps: [L][nh] Float64Array(T*T)}
  var T = ids.length, C = m.C, nh = m.nh, hs = C / nh, t, i, l, h;
  var x = [];
  for (t = 0; t < T; t++) {
    var row = new Float64Array(C);
    for (i = 0; i < C; i++) row[i] = m.tok_emb[ids[t] * C + i] + m.pos[t * C + i];
    x.push(row);
  }
  var scale = 1 / (Math.sqrt(dk) * temperature), maps = [];
  var tmp = new Float64Array(C), tmp2 = new Float64Array(C), hid = new Float64Array(m.d_ff);
  m.blocks.forEach(function (B) {
    // 1. attention sublayer (pre-LN: on LN1(x); post-LN: on x)
    var inp = x.map(function (r) { return m.norm_first ? LMHO.layerNorm(r, B.ln1_w, B.ln1_b, C, new Float64Array(C)) : r; });
    var qkv = inp.map(function (r) { return LMHO.matvec(B.in_w, 3 * C, C, r, B.in_b, new Float64Array(3 * C)); });
    var heads = [], concat = [];
    for (t = 0; t < T; t++) concat.push(new Float64Array(C));
    for (h = 0; h < nh; h++) {
      var w = new Float64Array(T * T);
      for (t = 0; t < T; t++) {
        var scores = new Float64Array(T);
        for (var s = 0; s < T; s++) {
          var dot = 0;
          for (i = 0; i < hs; i++) dot += qkv[t][h * hs + i] * qkv[s][C + h * hs + i];
          scores[s] = dot * scale;
        }
        var a = LMHO.softmax(scores);
        for (s = 0; s < T; s++) {
          w[t * T + s] = a[s];
          for (i = 0; i < hs; i++) concat[t][h * hs + i] += a[s] * qkv[s][2 * C + h * hs + i];
        }
      }
      heads.push(w);
    }
    maps.push(heads);
    for (t = 0; t < T; t++) {
      var att = LMHO.matvec(B.out_w, C, C, concat[t], B.out_b, tmp);
      if (m.norm_first) {
        for (i = 0; i < C; i++) x[t][i] += att[i];  // x = x + MHA(LN1(x))
        var n2 = LMHO.layerNorm(x[t], B.ln2_w, B.ln2_b, C, tmp2);
        LMHO.matvec(B.l1_w, m.d_ff, C, n2, B.l1_b, hid);
        for (i = 0; i < m.d_ff; i++) hid[i] = Math.max(0, hid[i]);
        var ff = LMHO.matvec(B.l2_w, C, m.d_ff, hid, B.l2_b, tmp2);
        for (i = 0; i < C; i++) x[t][i] += ff[i];  // x = x + FFN(LN2(x))
      } else {
        for (i = 0; i < C; i++) tmp2[i] = x[t][i] + att[i];
        var y = LMHO.layerNorm(tmp2, B.ln1_w, B.ln1_b, C, new Float64Array(C));  // x = LN1(x + MHA(x))
        LMHO.matvec(B.l1_w, m.d_ff, C, y, B.l1_b, hid);
        for (i = 0; i < m.d_ff; i++) hid[i] = Math.max(0, hid[i]);
        var f2 = LMHO.matvec(B.l2_w, C, m.d_ff, hid, B.l2_b, new Float64Array(C));
        for (i = 0; i < C; i++) tmp2[i] = y[i] + f2[i];
        LMHO.layerNorm(tmp2, B.ln2_w, B.ln2_b, C, x[t]);  // x = LN2(x + FFN(x))
      }
    }
  });
  var logits = x.map(function (r) {
    var z = m.norm ? LMHO.layerNorm(r, m.norm.w, m.norm.b, C, new Float64Array(C)) : r;
    return LMHO.matvec(m.head_w, m.V, C, z, m.head_b, new Float64Array(m.V));
  });
  return {logits: logits, maps: maps};
};

LMHO.headMatrix = function (maps, layer, head, T) {
  // one head's (T*T) weights, or the mean over heads when head == "mean"
  if (head !== "mean") return maps[layer][+head];
  var nh = maps[layer].length, out = new Float64Array(T * T);
  for (var h = 0; h < nh; h++) for (var i = 0; i < T * T; i++) out[i] += maps[layer][h][i] / nh;
  return out;
};

/* One attention panel: heatmap with values (the chosen query's row outlined) and, under the same
 * columns, that row as bars. */
LMHO.AttentionPanel = function (label) {
  var E = LMHO.el;
  this.node = E("div", {"class": "lmho-panel lmho-attpanel", "data-panel": label});
  this.cap = E("div", {"class": "lmho-cap"});
  this.holder = E("div");
  this.extra = E("div", {"class": "lmho-cap"});
  this.node.appendChild(this.cap);
  this.node.appendChild(this.holder);
  this.node.appendChild(this.extra);
  this.key = ""; this.grid = null; this.barCells = [];
};
LMHO.AttentionPanel.prototype.draw = function (tokens, W, query, caption, onQuery) {
  var T = tokens.length, key = tokens.join("\u241f"), E = LMHO.el, self = this;
  if (key !== this.key) {
    var size = T <= 10 ? 27 : (T <= 20 ? 23 : 16);
    this.grid = new LMHO.Grid(T, T, {cell: size, rowLabels: tokens, colLabels: tokens, font: size >= 23 ? 8 : 7});
    this.grid.onCell("click", function (r) { if (onQuery) onQuery(r); });
    // one more grid row: the query's weights as bars, aligned with the key columns
    this.rowLabel = E("div", {"class": "lmho-lab lmho-rowlab", text: "row"});
    this.grid.node.appendChild(this.rowLabel);
    this.barCells = [];
    for (var s = 0; s < T; s++) {
      var bar = E("div", {"class": "lmho-w", "data-key": s, style: "background:#2171b5;width:70%"});
      this.grid.node.appendChild(E("div", {"class": "lmho-barcell", style: "height:44px;display:flex;align-items:flex-end;justify-content:center;border-bottom:1px solid #999"}, [bar]));
      this.barCells.push(bar);
    }
    this.holder.innerHTML = "";
    this.holder.appendChild(this.grid.node);
    this.key = key;
  }
  this.cap.textContent = caption;
  var vmax = 0;
  for (var i = 0; i < W.length; i++) vmax = Math.max(vmax, W[i]);
  this.grid.update(Array.from(W), function (v) { return LMHO.sequential(v, 0, vmax); }, T <= 20 ? 2 : null);
  this.grid.mark(function (r) { return r === query; }, "lmho-sel");
  this.rowLabel.textContent = "row " + query;
  for (var k = 0; k < T; k++) {
    var v = W[query * T + k], h = Math.max(1, Math.round(42 * v)) + "px", bar = this.barCells[k];
    if (bar.style.height !== h) bar.style.height = h;
    bar.setAttribute("data-v", String(v));  // exact value: tests, and the title on hover
  }
};

LMHO.mount_attention = function (root, cfg) {
  var E = LMHO.el, m = cfg.model;
  var dec = LMHO.decodeF32;
  var model = {V: m.V, C: m.C, nh: m.nh, d_ff: m.d_ff, max_len: m.max_len, norm_first: m.norm_first,
               tok_emb: dec(m.tok_emb), pos: dec(m.pos), head_w: dec(m.head_w), head_b: dec(m.head_b),
               norm: m.norm ? {w: dec(m.norm.w), b: dec(m.norm.b)} : null,
               blocks: m.blocks.map(function (b) {
                 var o = {};
                 for (var k in b) o[k] = dec(b[k]);
                 return o;
               })};
  var hs = m.C / m.nh, L = m.blocks.length;
  var body = LMHO.start(root, cfg.title);
  var msg = LMHO.message();
  var update = LMHO.timed(root, msg, function () { render(); });
  var presetOpts = [["", "preset..."]].concat(cfg.presets.map(function (p) { return [p[1], p[0]]; }));
  function inputRow(label, value) {
    var t = LMHO.text(label, value, function () { update(); }, 14);
    var p = LMHO.select("", presetOpts, "", function () { if (p.input.value) { t.input.value = p.input.value; p.input.value = ""; update(); } });
    t.input.classList.add("lmho-digits");
    t.input.setAttribute("data-panel", label);
    return {t: t, p: p};
  }
  var A = inputRow("input A", cfg.inputs[0]), B = inputRow("input B", cfg.inputs[1]);
  var compare = LMHO.checkbox("show B beside A", true, function () { update(); });
  var layer = LMHO.slider("layer", 0, L - 1, 1, cfg.layer || 0, function () { update(); });
  var headOpts = [];
  for (var h = 0; h < m.nh; h++) headOpts.push([String(h), "head " + h]);
  headOpts.push(["mean", "mean of heads"]);
  var head = LMHO.select("head", headOpts, String(cfg.head || 0), function () { update(); });
  var query = LMHO.slider("query", 0, m.max_len - 1, 1, cfg.query || 0, function () { update(); });
  var temp = LMHO.slider("temperature \u03C4", -1, 1, 0.05, 0, function () { update(); }, function (v) { return Math.pow(10, v).toFixed(2); });
  var dk = LMHO.slider("d_k in the scale 1/\u221Ad_k", 1, 4 * hs, 1, hs, function () { update(); });
  body.appendChild(LMHO.row([A.t.node, A.p.node, B.t.node, B.p.node, compare.node]));
  body.appendChild(LMHO.row([layer.node, head.node, query.node]));
  body.appendChild(LMHO.row([temp.node, dk.node, E("span", {"class": "lmho-note", text: "trained with d_k = " + hs + ", \u03C4 = 1; both act on every layer"})]));
  body.appendChild(msg);
  var panels = [new LMHO.AttentionPanel("A"), new LMHO.AttentionPanel("B")];
  body.appendChild(LMHO.row([panels[0].node, panels[1].node], "lmho-top"));
  body.appendChild(E("div", {"class": "lmho-note", text: "Rows are queries, columns keys; each row sums to 1 (white 0, dark blue the largest weight). Click a row to choose the query. Hover a cell for its exact value."}));

  function parse(text) {
    var chars = String(text).replace(/[\s,]/g, "");
    if (!chars.length || !/^\d+$/.test(chars)) throw new Error("type digits 0-9 such as '3 1 4 1 5', got '" + text + "'");
    if (chars.length > m.max_len) throw new Error("at most " + m.max_len + " digits (the model's max_len), got " + chars.length);
    return chars.split("").map(Number);
  }
  function target(ids) {
    if (cfg.task === "reverse") return ids.slice().reverse();
    if (cfg.task === "sort") return ids.slice().sort(function (a, b) { return a - b; });
    if (cfg.task === "copy") return ids.slice();
    return null;
  }
  function render() {
    var tau = Math.pow(10, +temp.input.value), d = +dk.input.value, l = +layer.input.value, hd = head.input.value;
    var runs = [A, B].map(function (inp, k) {
      if (k === 1 && !compare.input.checked) return null;
      try { return {ids: parse(inp.t.input.value)}; }
      catch (e) { throw new Error("input " + "AB"[k] + ": " + e.message); }
    });
    var Tmax = Math.max(runs[0].ids.length, runs[1] ? runs[1].ids.length : 0);
    query.setMax(Tmax - 1);
    panels[1].node.style.display = runs[1] ? "" : "none";
    runs.forEach(function (r, k) {
      if (!r) return;
      var T = r.ids.length, q = Math.min(+query.input.value, T - 1);
      var out = LMHO.tinyForward(model, r.ids, tau, d);
      var W = LMHO.headMatrix(out.maps, l, hd, T);
      var tokens = r.ids.map(String);
      panels[k].draw(tokens, W, q, "input " + "AB"[k] + ": layer " + l + ", " + (hd === "mean" ? "mean of heads" : "head " + hd) +
                     ", \u03C4 = " + tau.toFixed(2) + ", d_k = " + d, function (row) { query.input.value = row; query.show(); update(); });
      // the model's output per position (argmax of the logits) against the task's target; the table
      // is rebuilt only when the input changes, otherwise its cells are edited in place
      var pred = out.logits.map(function (z) { var b = 0; for (var v = 1; v < z.length; v++) if (z[v] > z[b]) b = v; return b; });
      var want = target(r.ids), ex = panels[k].extra, key = r.ids.join(",");
      if (ex._key !== key) {
        ex.innerHTML = "";
        ex.appendChild(document.createTextNode("model output" + (want ? " (" + cfg.task + " target below)" : "") + ": "));
        var tbl = E("table", {"class": "lmho-table lmho-pred"});
        var r1 = E("tr", {}, [E("th", {text: "output"})]), r2 = E("tr", {}, [E("th", {text: "target"})]);
        ex._cells = pred.map(function (p, t) {
          var td = E("td", {"data-pos": t});
          r1.appendChild(td);
          if (want) r2.appendChild(E("td", {text: String(want[t])}));
          return td;
        });
        tbl.appendChild(r1);
        if (want) tbl.appendChild(r2);
        ex.appendChild(tbl);
        ex._score = E("span", {"class": "lmho-note lmho-score"});
        ex.appendChild(ex._score);
        ex._key = key;
      }
      pred.forEach(function (p, t) {
        var td = ex._cells[t], txt = String(p), cls = want ? (p === want[t] ? "lmho-good" : "lmho-bad") : "";
        if (td.textContent !== txt) td.textContent = txt;
        if (td.className !== cls) td.className = cls;
        td.setAttribute("data-v", String(out.logits[t][p]));  // the winning logit
      });
      if (want) ex._score.textContent = pred.filter(function (p, t) { return p === want[t]; }).length + " of " + T + " positions right";
    });
  }
  update();
  root.lmho = {update: update, forward: function (ids, tau, d) { return LMHO.tinyForward(model, ids, tau, d); }};
};

LMHO.mulberry = function (seed) {
  // mulberry32: a tiny seeded generator, reproduced in Python by reference.mulberry_uniform
  var a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    var t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};
LMHO.normals = function (seed, n) {
  var rnd = LMHO.mulberry(seed), out = new Float64Array(n);
  for (var i = 0; i < n; i++) {
    var u1 = rnd(), u2 = rnd();
    out[i] = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
};
LMHO.saturation = function (dk, seed, T, S) {
  // scores of T random queries against S random keys (N(0,1) entries), scaled and unscaled
  var z = LMHO.normals(seed, (T + S) * dk), res = {};
  [["scaled", 1 / Math.sqrt(dk)], ["unscaled", 1]].forEach(function (sc) {
    var all = [], maxw = 0, ent = 0, first = null;
    for (var t = 0; t < T; t++) {
      var scores = new Float64Array(S);
      for (var s = 0; s < S; s++) {
        var dot = 0;
        for (var i = 0; i < dk; i++) dot += z[t * dk + i] * z[(T + s) * dk + i];
        scores[s] = dot * sc[1];
        all.push(scores[s]);
      }
      var w = LMHO.softmax(scores), mx = 0, e = 0;
      for (s = 0; s < S; s++) { mx = Math.max(mx, w[s]); e -= w[s] * Math.log(Math.max(w[s], 1e-300)); }
      maxw += mx / T; ent += e / T;
      if (t === 0) first = w;
    }
    var mean = 0, v = 0;
    all.forEach(function (x) { mean += x; });
    mean /= all.length;
    all.forEach(function (x) { v += (x - mean) * (x - mean); });
    res[sc[0]] = {std: Math.sqrt(v / (all.length - 1)), max_weight: maxw, entropy: ent, first: first};
  });
  return res;
};

LMHO.mount_qkv = function (root, cfg) {
  var E = LMHO.el, ns = "http://www.w3.org/2000/svg";
  var body = LMHO.start(root, cfg.title);
  var msg = LMHO.message();
  var update = LMHO.timed(root, msg, function () { render(); });
  var COLORS = ["#1f77b4", "#2ca02c", "#d62728"];
  var qa = LMHO.slider("q angle", -180, 180, 5, cfg.q_angle, function () { update(); });
  var ql = LMHO.slider("q length", 0, 4, 0.1, cfg.q_length, function () { update(); }, function (v) { return v.toFixed(1); });
  var temp = LMHO.slider("temperature \u03C4", -1, 1, 0.05, Math.log10(cfg.temperature), function () { update(); }, function (v) { return Math.pow(10, v).toFixed(2); });
  body.appendChild(LMHO.row([qa.node, ql.node, temp.node]));
  var keys = cfg.keys.map(function (k, j) {
    var a = LMHO.slider("k" + j + " angle", -180, 180, 5, k[0], function () { update(); });
    var l = LMHO.slider("length", 0.1, 4, 0.1, k[1], function () { update(); }, function (v) { return v.toFixed(1); });
    var vx = LMHO.number("v" + j + " = (", cfg.values[j][0], 0.1, function () { update(); }, 4);
    var vy = LMHO.number(",", cfg.values[j][1], 0.1, function () { update(); }, 4);
    a.node.style.color = COLORS[j];
    body.appendChild(LMHO.row([a.node, l.node, vx.node, vy.node, E("span", {text: ")"})]));
    return {a: a, l: l, vx: vx, vy: vy};
  });
  body.appendChild(msg);
  var svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", 330); svg.setAttribute("height", 330); svg.setAttribute("class", "lmho-plot");
  var table = E("div");
  body.appendChild(LMHO.row([svg, table], "lmho-top"));

  function add(tag, attrs, text) {
    var e = document.createElementNS(ns, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  }
  function render() {
    var rad = Math.PI / 180, tau = Math.pow(10, +temp.input.value);
    var q = [+ql.input.value * Math.cos(+qa.input.value * rad), +ql.input.value * Math.sin(+qa.input.value * rad)];
    var K = keys.map(function (k) { return [+k.l.input.value * Math.cos(+k.a.input.value * rad), +k.l.input.value * Math.sin(+k.a.input.value * rad)]; });
    var V = keys.map(function (k, j) {
      var x = parseFloat(k.vx.input.value), y = parseFloat(k.vy.input.value);
      if (!isFinite(x) || !isFinite(y)) throw new Error("value v" + j + " needs two numbers");
      return [x, y];
    });
    var scale = 1 / (Math.SQRT2 * tau);
    var scores = K.map(function (k) { return scale * (k[0] * q[0] + k[1] * q[1]); });
    var w = LMHO.softmax(scores);
    var o = [0, 0];
    for (var j = 0; j < 3; j++) { o[0] += w[j] * V[j][0]; o[1] += w[j] * V[j][1]; }
    // 1. the picture: keys (width ~ weight), query, values, their triangle and the output
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var lim = 1.15 * Math.max(4, Math.max.apply(null, V.map(function (v) { return Math.max(Math.abs(v[0]), Math.abs(v[1])); })));
    var X = function (x) { return 165 + 160 * x / lim; }, Y = function (y) { return 165 - 160 * y / lim; };
    add("line", {x1: 5, x2: 325, y1: 165, y2: 165, stroke: "#ddd"});
    add("line", {y1: 5, y2: 325, x1: 165, x2: 165, stroke: "#ddd"});
    add("polygon", {points: V.map(function (v) { return X(v[0]) + "," + Y(v[1]); }).join(" "), fill: "#f3f3f3", stroke: "#999", "stroke-dasharray": "4,3"});
    K.forEach(function (k, j) {
      add("line", {x1: 165, y1: 165, x2: X(k[0]), y2: Y(k[1]), stroke: COLORS[j], "stroke-width": 1 + 7 * w[j], "stroke-linecap": "round"});
      add("text", {x: X(k[0] * 1.08), y: Y(k[1] * 1.08), fill: COLORS[j], "font-size": 12, "text-anchor": "middle"}, "k" + j);
      add("rect", {x: X(V[j][0]) - 5, y: Y(V[j][1]) - 5, width: 10, height: 10, fill: COLORS[j]});
      add("text", {x: X(V[j][0]) + 8, y: Y(V[j][1]) - 6, fill: COLORS[j], "font-size": 11}, "v" + j);
    });
    add("line", {x1: 165, y1: 165, x2: X(q[0]), y2: Y(q[1]), stroke: "#000", "stroke-width": 2.5});
    add("text", {x: X(q[0] * 1.1), y: Y(q[1] * 1.1), "font-size": 13, "font-weight": 700, "text-anchor": "middle"}, "q");
    add("circle", {cx: X(o[0]), cy: Y(o[1]), r: 6, fill: "#000"});
    add("text", {x: X(o[0]) - 8, y: Y(o[1]) + 16, "font-size": 13, "font-weight": 700, "text-anchor": "end"}, "o");
    // 2. the numbers
    table.innerHTML = "";
    var tb = E("table", {"class": "lmho-table lmho-qkv"});
    tb.appendChild(E("tr", {}, ["key", "|k|", "cos(q, k)", "q\u00B7k", "score", "weight a", "value v"].map(function (h) { return E("th", {text: h}); })));
    var qn = Math.hypot(q[0], q[1]);
    K.forEach(function (k, j) {
      var kn = Math.hypot(k[0], k[1]), dot = k[0] * q[0] + k[1] * q[1];
      var cells = [[kn, 2, "len"], [qn > 0 ? dot / (qn * kn) : 0, 2, "cos"], [dot, 3, "dot"], [scores[j], 3, "score"], [w[j], 4, "weight"]];
      var tr = E("tr", {"data-key": j}, [E("th", {text: "k" + j, style: "color:" + COLORS[j]})]);
      cells.forEach(function (c) { var td = E("td", {"data-q": c[2]}); LMHO.setNum(td, c[0], c[1]); tr.appendChild(td); });
      tr.appendChild(E("td", {text: "(" + LMHO.fmt(V[j][0], 1) + ", " + LMHO.fmt(V[j][1], 1) + ")"}));
      tb.appendChild(tr);
    });
    table.appendChild(tb);
    var line = E("div", {"class": "lmho-cap", style: "font-size:13px"});
    line.appendChild(document.createTextNode("output o = \u03A3 a_j v_j = ("));
    var ox = E("b", {"class": "lmho-ox"}), oy = E("b", {"class": "lmho-oy"});
    LMHO.setNum(ox, o[0], 4); LMHO.setNum(oy, o[1], 4);
    line.appendChild(ox); line.appendChild(document.createTextNode(", ")); line.appendChild(oy);
    line.appendChild(document.createTextNode(")  with scale 1/(\u221A2 \u00B7 \u03C4) = " + LMHO.fmt(scale, 3)));
    table.appendChild(line);
    table.appendChild(E("div", {"class": "lmho-note", text: "The weights are \u2265 0 and sum to 1, so the output always lies in the grey triangle of the values."}));
  }
  update();
  root.lmho = {update: update};
};

LMHO.mount_dk = function (root, cfg) {
  // the d_k measurement of chapter 40, live: scores of random queries and keys, scaled and unscaled
  var E = LMHO.el;
  var body = LMHO.start(root, cfg.title);
  var msg = LMHO.message();
  var update = LMHO.timed(root, msg, function () { render(); });
  var dkBox = E("div");
  var dkSlider = LMHO.slider("d_k = 2^", 1, 10, 1, Math.round(Math.log2(cfg.dk)), function () { update(); },
                             function (v) { return v + " = " + Math.pow(2, v); });
  body.appendChild(LMHO.row([dkSlider.node, E("span", {"class": "lmho-note", text: "16 random queries and 32 random keys with N(0, 1) entries"})]));
  body.appendChild(msg);
  body.appendChild(dkBox);
  function render() {
    var d = Math.pow(2, +dkSlider.input.value), st = LMHO.saturation(d, cfg.seed, 16, 32);
    dkBox.innerHTML = "";
    var t2 = E("table", {"class": "lmho-table lmho-dk"});
    t2.appendChild(E("tr", {}, ["d_k = " + d, "std of scores", "mean largest weight", "mean entropy (max ln 32 = 3.47)"].map(function (h) { return E("th", {text: h}); })));
    ["scaled", "unscaled"].forEach(function (name) {
      var tr = E("tr", {"data-mode": name}, [E("th", {text: name === "scaled" ? "scores / \u221Ad_k" : "raw scores q\u00B7k"})]);
      [["std", 2], ["max_weight", 3], ["entropy", 3]].forEach(function (c) {
        var td = E("td", {"data-q": c[0]}); LMHO.setNum(td, st[name][c[0]], c[1]); tr.appendChild(td);
      });
      t2.appendChild(tr);
    });
    var bars = LMHO.row([], "lmho-top");
    ["scaled", "unscaled"].forEach(function (name) {
      var b = E("div", {"class": "lmho-bars"});
      Array.from(st[name].first).forEach(function (v) { b.appendChild(E("div", {"class": "lmho-bar", style: "width:6px;height:" + Math.max(1, 70 * v) + "px", title: String(v)})); });
      bars.appendChild(E("div", {}, [E("div", {"class": "lmho-cap", text: "weights of query 0 over the 32 keys, " + name}), b]));
    });
    dkBox.appendChild(t2);
    dkBox.appendChild(bars);
  }
  update();
  root.lmho = {update: update};
};

LMHO.mount_stored_attention = function (root, cfg) {
  var E = LMHO.el;
  var body = LMHO.start(root, cfg.title);
  var sources = {};
  cfg.sources.forEach(function (s) {
    sources[s.name] = s;
    s.sentences.forEach(function (x) { x.W = null; });
  });
  var msg = LMHO.message();
  var update = LMHO.timed(root, msg, function () { render(); });
  // a menu only when there is a choice; one model is named in plain text (a one-item menu would be a dead control)
  var src = cfg.sources.length > 1
    ? LMHO.select("model", cfg.sources.map(function (s) { return [s.name, s.name]; }), cfg.sources[0].name, function () { fill(); update(); })
    : {node: E("span", {"class": "lmho-ctl", text: "model: " + cfg.sources[0].name}), input: {value: cfg.sources[0].name}};
  var sa = LMHO.select("sentence A", [], null, function () { update(); });
  var sb = LMHO.select("sentence B", [], null, function () { update(); });
  var layer = LMHO.slider("layer", 0, 0, 1, 0, function () { update(); }, function (v) { return String(current().layers[v]); });
  var head = LMHO.select("head", [], null, function () { update(); });
  var qa = LMHO.select("query in A", [], null, function () { update(); });
  var qb = LMHO.select("query in B", [], null, function () { update(); });
  var note = E("div", {"class": "lmho-note"});
  body.appendChild(LMHO.row([src.node, sa.node, sb.node]));
  body.appendChild(LMHO.row([layer.node, head.node, qa.node, qb.node]));
  body.appendChild(note);
  body.appendChild(msg);
  var panels = [new LMHO.AttentionPanel("A"), new LMHO.AttentionPanel("B")];
  body.appendChild(LMHO.row([panels[0].node, panels[1].node], "lmho-top"));
  function current() { return sources[src.input.value]; }
  function weights(sent) {
    if (!sent.W) sent.W = LMHO.decodeUnitU16(sent.w);  // (layers * nh * T * T), decoded once
    return sent.W;
  }
  function fill() {
    var s = current(), d = cfg.defaults[s.name] || {};
    var opts = s.sentences.map(function (x, i) { return [String(i), x.text]; });
    LMHO.setOptions(sa.input, opts, String(d.a || 0));
    LMHO.setOptions(sb.input, [["none", "(none)"]].concat(opts), d.b === undefined ? "none" : String(d.b));
    layer.setMax(s.layers.length - 1);
    layer.input.value = d.layer || 0; layer.show();
    var ho = [];
    for (var h = 0; h < s.nh; h++) ho.push([String(h), "head " + h]);
    ho.push(["mean", "mean of heads"]);
    LMHO.setOptions(head.input, ho, String(d.head === undefined ? 0 : d.head));
    note.textContent = s.note;
    qa.input.setAttribute("data-token", d.query_token || "");
    qb.input.setAttribute("data-token", d.query_token || "");
    [qa.input, qb.input].forEach(function (sel) { sel.removeAttribute("data-key"); sel._key = null; sel.innerHTML = ""; });
  }
  function queryOptions(sel, sent) {
    var key = sent.tokens.join("\u241f");
    if (sel.getAttribute("data-key") === key) return;
    var prev = sel.getAttribute("data-token") || (sel.selectedIndex >= 0 ? sel.options[sel.selectedIndex].text.replace(/^\d+: /, "") : "");
    LMHO.setOptions(sel, sent.tokens.map(function (t, i) { return [String(i), i + ": " + t]; }), "0");
    var at = sent.tokens.indexOf(prev);
    sel.value = String(at >= 0 ? at : 0);
    sel.setAttribute("data-key", key);
    sel.setAttribute("data-token", "");
  }
  function render() {
    var s = current(), li = +layer.input.value, hd = head.input.value, nh = s.nh;
    [[sa, qa, 0], [sb, qb, 1]].forEach(function (p) {
      var panel = panels[p[2]];
      if (p[0].input.value === "none") { panel.node.style.display = "none"; p[1].node.style.display = "none"; return; }
      panel.node.style.display = ""; p[1].node.style.display = "";
      var sent = s.sentences[+p[0].input.value], T = sent.tokens.length, W = weights(sent);
      queryOptions(p[1].input, sent);
      var maps = [];  // maps[layer][head] views into W
      var heads = [];
      for (var h = 0; h < nh; h++) heads.push(W.subarray(((li * nh) + h) * T * T, ((li * nh) + h + 1) * T * T));
      maps[li] = heads;
      var M = LMHO.headMatrix(maps, li, hd, T);
      panel.draw(sent.tokens, M, +p[1].input.value, (p[2] ? "B" : "A") + ": layer " + s.layers[li] + ", " +
                 (hd === "mean" ? "mean of heads" : "head " + hd), function (row) { p[1].input.value = String(row); update(); });
    });
  }
  fill();
  update();
  root.lmho = {update: update};
};
