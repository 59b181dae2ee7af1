/* Large Models, Hands-On: shared helpers of the in-browser explorers (utils/widgets/browser.py).
 *
 * Plain ES5-style JavaScript with no dependencies, inlined into every explorer's HTML output so
 * that it runs offline, with no kernel and no widget manager: in the static HTML book, JupyterLab,
 * VS Code and Colab alike. Everything lives in the object LMHO that the enclosing function
 * creates; nothing is added to `window`.
 *
 * Numbers: all compute is float64 (JavaScript numbers) on float32 weights exported by Python.
 * Every rendered number carries its full value in a `data-v` attribute (what the browser tests
 * read); the text shows a rounded value.
 */
LMHO.decodeF32 = function (b64) {
  // base64 of little-endian float32 (numpy "<f4") -> Float32Array
  var bin = atob(b64), n = bin.length, bytes = new Uint8Array(n);
  for (var i = 0; i < n; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
};

LMHO.decodeUnitU16 = function (b64) {
  // base64 of little-endian uint16 holding round(x * 65535) for x in [0, 1] -> Float64Array
  var bin = atob(b64), n = bin.length / 2, out = new Float64Array(n);
  for (var i = 0; i < n; i++) out[i] = (bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8)) / 65535;
  return out;
};

LMHO.el = function (tag, attrs, children) {
  // Create an element: attrs {class, style, text, on<event>: fn, other: attribute}; children: nodes or strings
  var e = document.createElement(tag);
  attrs = attrs || {};
  for (var k in attrs) {
    if (!Object.prototype.hasOwnProperty.call(attrs, k) || attrs[k] === undefined || attrs[k] === null) continue;
    var v = attrs[k];
    if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v;
    else if (k.slice(0, 2) === "on" && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = !!v;
    else e.setAttribute(k, v);
  }
  (children || []).forEach(function (c) {
    if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  });
  return e;
};

LMHO.fmt = function (v, digits) {
  // Fixed-point text for a cell; "-0.00" becomes "0.00"
  if (!isFinite(v)) return v > 0 ? "inf" : (v < 0 ? "-inf" : "nan");
  var s = v.toFixed(digits === undefined ? 2 : digits);
  return /^-0\.?0*$/.test(s) ? s.slice(1) : s;
};

LMHO.setNum = function (node, v, digits) {
  // Show v rounded and keep the exact value in data-v (read by the tests, shown on hover: LMHO.start)
  node.textContent = LMHO.fmt(v, digits);
  node.setAttribute("data-v", String(v));
};

/* Colour maps. diverging: blue (negative) - white (0) - red (positive), like matplotlib's RdBu_r,
 * symmetric around 0 so that zero is always white. sequential: white to dark blue for values in
 * [0, 1] (attention weights, gates). */
LMHO._lerpStops = function (stops, t) {
  t = Math.max(0, Math.min(1, t));
  var n = stops.length - 1, i = Math.min(n - 1, Math.floor(t * n)), f = t * n - i;
  var a = stops[i], b = stops[i + 1];
  return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
};
LMHO.RDBU = [[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240], [247, 247, 247],
             [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43], [103, 0, 31]];
LMHO.BLUES = [[255, 255, 255], [222, 235, 247], [158, 202, 225], [66, 146, 198], [8, 81, 156], [8, 48, 107]];
LMHO.diverging = function (v, vmax) {
  var t = vmax > 0 ? 0.5 + 0.5 * v / vmax : 0.5;
  return LMHO._lerpStops(LMHO.RDBU, t);
};
LMHO.sequential = function (v, vmin, vmax) {
  var t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0;
  return LMHO._lerpStops(LMHO.BLUES, t);
};
LMHO.css = function (rgb) { return "rgb(" + rgb[0] + "," + rgb[1] + "," + rgb[2] + ")"; };
LMHO.ink = function (rgb) {
  // black or white text, whichever reads better on this background
  return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) > 140 ? "#111" : "#fff";
};

/* A grid of numbered cells (a heatmap with readable values). grid.update(values, colour, digits)
 * recolours and relabels in place: no elements are created after the first call. */
LMHO.Grid = function (rows, cols, opts) {
  opts = opts || {};
  this.rows = rows; this.cols = cols;
  var size = opts.cell || 30;
  this.node = LMHO.el("div", {"class": "lmho-grid" + (opts.cls ? " " + opts.cls : ""),
    style: "grid-template-columns:" + (opts.rowLabels ? "auto " : "") + "repeat(" + cols + "," + size + "px);" +
           "font-size:" + (opts.font || (size >= 30 ? 10 : 8)) + "px"});
  this.cells = [];
  if (opts.colLabels) {
    if (opts.rowLabels) this.node.appendChild(LMHO.el("div", {"class": "lmho-lab"}));
    for (var c = 0; c < cols; c++) this.node.appendChild(LMHO.el("div", {"class": "lmho-lab lmho-collab", text: opts.colLabels[c]}));
  }
  for (var r = 0; r < rows; r++) {
    if (opts.rowLabels) this.node.appendChild(LMHO.el("div", {"class": "lmho-lab lmho-rowlab", text: opts.rowLabels[r]}));
    for (c = 0; c < cols; c++) {
      var cell = LMHO.el("div", {"class": "lmho-cell", style: "height:" + size + "px", "data-r": r, "data-c": c});
      this.cells.push(cell);
      this.node.appendChild(cell);
    }
  }
};
LMHO.Grid.prototype.update = function (values, colour, digits) {
  // values: array (rows*cols) of numbers or null (blank); colour(v) -> [r, g, b]. Only cells whose
  // value or colour changed are touched, so that an update costs the browser little layout work.
  for (var i = 0; i < this.cells.length; i++) {
    var cell = this.cells[i], v = values[i];
    if (v === null || v === undefined || (typeof v === "number" && isNaN(v))) {
      if (cell._v === null) continue;
      cell._v = null; cell._bg = null; cell._txt = "";
      cell.textContent = ""; cell.removeAttribute("data-v"); cell.removeAttribute("title");
      cell.style.background = "#fff"; continue;
    }
    var rgb = colour(v), bg = LMHO.css(rgb);
    if (bg !== cell._bg) { cell._bg = bg; cell.style.background = bg; cell.style.color = LMHO.ink(rgb); }
    if (v !== cell._v) {
      cell._v = v;
      cell.setAttribute("data-v", String(v));  // the exact value (tests; shown on hover, see LMHO.start)
      var txt = digits === null ? "" : LMHO.fmt(v, digits);
      if (txt !== cell._txt) {
        cell._txt = txt;
        if (cell.firstChild) cell.firstChild.nodeValue = txt;  // edit the text node in place
        else cell.appendChild(document.createTextNode(txt));
      }
    }
  }
};
LMHO.Grid.prototype.mark = function (predicate, cls) {
  // add `cls` to the cells (r, c) for which predicate(r, c) is true, remove it elsewhere
  for (var i = 0; i < this.cells.length; i++) {
    var r = Math.floor(i / this.cols), c = i % this.cols, on = !!predicate(r, c);
    if (this.cells[i].classList.contains(cls) !== on) this.cells[i].classList.toggle(cls, on);
  }
};
LMHO.Grid.prototype.onCell = function (type, fn) {
  var self = this;
  this.node.addEventListener(type, function (ev) {
    var t = ev.target;
    if (!t.classList || !t.classList.contains("lmho-cell")) return;
    fn(+t.getAttribute("data-r"), +t.getAttribute("data-c"), ev);
  });
  return self;
};

/* Labelled controls. Each returns {node, input}; `on` is called on every change (input event). */
LMHO.slider = function (label, min, max, step, value, on, fmt) {
  var out = LMHO.el("span", {"class": "lmho-val"});
  var input = LMHO.el("input", {type: "range", min: min, max: max, step: step, value: value, "aria-label": label});
  var show = function () { out.textContent = fmt ? fmt(+input.value) : input.value; };
  input.addEventListener("input", function () { show(); on(); });
  show();
  var node = LMHO.el("label", {"class": "lmho-ctl"}, [LMHO.el("span", {text: label}), input, out]);
  return {node: node, input: input, show: show,
          setMax: function (m) {
            if (+input.max !== m) input.max = m;
            if (+input.value > m) { input.value = m; show(); }
          }};
};
LMHO.select = function (label, options, value, on) {
  // options: array of [value, text]
  var input = LMHO.el("select", {"aria-label": label});
  LMHO.setOptions(input, options, value);
  input.addEventListener("change", on);
  input.addEventListener("input", on);
  return {node: LMHO.el("label", {"class": "lmho-ctl"}, [LMHO.el("span", {text: label}), input]), input: input};
};
LMHO.setOptions = function (select, options, value) {
  // replace the options (only if they changed) and select `value`
  var key = JSON.stringify(options);
  if (select._key !== key) {
    select.innerHTML = "";
    options.forEach(function (o) { select.appendChild(LMHO.el("option", {value: o[0], text: o[1]})); });
    select._key = key;
  }
  if (value !== undefined && value !== null && select.value !== String(value)) select.value = value;
};
LMHO.text = function (label, value, on, width) {
  var input = LMHO.el("input", {type: "text", value: value, "aria-label": label, spellcheck: "false",
                                style: "width:" + (width || 16) + "em"});
  input.addEventListener("input", on);
  return {node: LMHO.el("label", {"class": "lmho-ctl"}, [LMHO.el("span", {text: label}), input]), input: input};
};
LMHO.number = function (label, value, step, on, width) {
  var input = LMHO.el("input", {type: "number", value: value, step: step, "aria-label": label,
                                style: "width:" + (width || 5) + "em"});
  input.addEventListener("input", on);
  return {node: LMHO.el("label", {"class": "lmho-ctl"}, [LMHO.el("span", {text: label}), input]), input: input};
};
LMHO.checkbox = function (label, checked, on) {
  var input = LMHO.el("input", {type: "checkbox", checked: checked, "aria-label": label});
  input.addEventListener("change", on);
  return {node: LMHO.el("label", {"class": "lmho-ctl"}, [input, LMHO.el("span", {text: label})]), input: input};
};
LMHO.row = function (children, cls) { return LMHO.el("div", {"class": "lmho-row" + (cls ? " " + cls : "")}, children); };

/* A small SVG line plot: series [{values, color, label, dash}], x from 0 to n-1; y range given. */
LMHO.LinePlot = function (width, height, ylo, yhi) {
  var ns = "http://www.w3.org/2000/svg";
  this.w = width; this.h = height; this.ylo = ylo; this.yhi = yhi; this.ns = ns;
  this.node = document.createElementNS(ns, "svg");
  this.node.setAttribute("width", width); this.node.setAttribute("height", height);
  this.node.setAttribute("class", "lmho-plot");
  this.node.setAttribute("role", "img");
};
LMHO.LinePlot.prototype.draw = function (series, n, cursor, title) {
  var ns = this.ns, svg = this.node, w = this.w, h = this.h, pad = 28, self = this;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var X = function (i) { return pad + (w - pad - 8) * (n > 1 ? i / (n - 1) : 0); };
  var Y = function (v) { return 8 + (h - 26) * (1 - (v - self.ylo) / (self.yhi - self.ylo)); };
  var add = function (tag, attrs) {
    var e = document.createElementNS(ns, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    svg.appendChild(e);
    return e;
  };
  [this.ylo, 0, this.yhi].forEach(function (v) {
    if (v < self.ylo || v > self.yhi) return;
    add("line", {x1: pad, x2: w - 8, y1: Y(v), y2: Y(v), stroke: v === 0 ? "#999" : "#ddd", "stroke-width": 1});
    add("text", {x: pad - 4, y: Y(v) + 3, "text-anchor": "end", "font-size": 9, fill: "#555"}).textContent = v;
  });
  if (cursor !== undefined && cursor !== null)
    add("line", {x1: X(cursor), x2: X(cursor), y1: 6, y2: h - 18, stroke: "#aaa", "stroke-dasharray": "2,2"});
  var legendX = pad + 4;
  series.forEach(function (s) {
    var pts = [];
    for (var i = 0; i < s.values.length; i++) if (s.values[i] !== null && isFinite(s.values[i])) pts.push(X(i).toFixed(1) + "," + Y(s.values[i]).toFixed(1));
    if (pts.length) add("polyline", {points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": 2,
                                     "stroke-dasharray": s.dash || "none"});
    var t = add("text", {x: legendX, y: h - 4, "font-size": 10, fill: s.color});
    t.textContent = s.label;
    legendX += 8 + 6.2 * s.label.length;
  });
  add("text", {x: w - 8, y: h - 4, "text-anchor": "end", "font-size": 9, fill: "#555"}).textContent = title || "";
};

/* Error line under the controls: shown instead of an exception, cleared by the next valid update. */
LMHO.message = function () { return LMHO.el("div", {"class": "lmho-msg", role: "status"}); };

/* Wrap an explorer's update function: time it (root.lmhoTimes keeps the last 200 durations in
 * ms, read by the tests), and show an error message instead of throwing. */
LMHO.timed = function (root, msg, fn) {
  root.lmhoTimes = root.lmhoTimes || [];
  return function () {
    var t0 = performance.now();
    try { msg.textContent = ""; root.removeAttribute("data-error"); fn.apply(null, arguments); }
    catch (e) { msg.textContent = String(e && e.message ? e.message : e); root.setAttribute("data-error", msg.textContent); }
    var dt = performance.now() - t0;
    root.lmhoTimes.push(dt);
    if (root.lmhoTimes.length > 200) root.lmhoTimes.shift();
  };
};

LMHO.softmax = function (scores) {
  // numerically stable softmax of an array (entries -Infinity get weight 0)
  var m = -Infinity, i, out = new Float64Array(scores.length), s = 0;
  for (i = 0; i < scores.length; i++) if (scores[i] > m) m = scores[i];
  for (i = 0; i < scores.length; i++) { out[i] = scores[i] === -Infinity ? 0 : Math.exp(scores[i] - m); s += out[i]; }
  for (i = 0; i < scores.length; i++) out[i] /= s;
  return out;
};

LMHO.sigmoid = function (x) { return 1 / (1 + Math.exp(-x)); };

LMHO.matvec = function (W, rows, cols, x, b, out, rowOffset) {
  // out[r] = sum_c W[(rowOffset + r) * cols + c] x[c] + b[rowOffset + r] for r < rows (W row-major, like x @ W.T)
  rowOffset = rowOffset || 0;
  for (var r = 0; r < rows; r++) {
    var s = b ? b[rowOffset + r] : 0, base = (rowOffset + r) * cols;
    for (var c = 0; c < cols; c++) s += W[base + c] * x[c];
    out[r] = s;
  }
  return out;
};

LMHO.STYLE = [
  ".lmho-explorer{font:13px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111;background:#fff;",
  "border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;margin:6px 0;max-width:100%;overflow-x:auto}",
  ".lmho-explorer *{box-sizing:border-box}",
  ".lmho-explorer table{margin:0;width:auto}",
  ".lmho-title{font-weight:600;margin-bottom:4px}",
  ".lmho-row{display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;margin:4px 0}",
  ".lmho-top{align-items:flex-start}",
  ".lmho-ctl{display:inline-flex;gap:5px;align-items:center;white-space:nowrap}",
  ".lmho-ctl input[type=range]{width:120px}",
  ".lmho-ctl input[type=text],.lmho-ctl input[type=number],.lmho-ctl select{font:inherit;padding:1px 3px;border:1px solid #bbb;border-radius:3px;background:#fff;color:#111}",
  ".lmho-val{font-family:ui-monospace,Menlo,Consolas,monospace;min-width:2.5em}",
  ".lmho-grid{display:inline-grid;gap:1px;background:#fff;user-select:none}",
  ".lmho-cell{display:flex;align-items:center;justify-content:center;font-family:ui-monospace,Menlo,Consolas,monospace;",
  "border:1px solid #e3e3e3;overflow:hidden;white-space:nowrap}",
  ".lmho-lab{font-size:10px;color:#444;display:flex;align-items:center;justify-content:center;padding:0 3px;white-space:nowrap}",
  ".lmho-rowlab{justify-content:flex-end}",
  ".lmho-collab{writing-mode:vertical-rl;transform:rotate(180deg);justify-content:flex-start;padding:3px 0;max-height:70px}",
  ".lmho-inpanel .lmho-grid{touch-action:none;cursor:crosshair}",
  ".lmho-sel{outline:2px solid #ff7f0e;outline-offset:-2px}",
  ".lmho-field{outline:2px solid #ff7f0e;outline-offset:-1px}",
  ".lmho-pad{opacity:0.55}",
  ".lmho-hold{font-weight:700;color:#c00}",
  ".lmho-panel{display:inline-block;vertical-align:top;margin:2px 8px 4px 0}",
  ".lmho-cap{font-size:11px;color:#333;margin:2px 0}",
  ".lmho-msg{color:#b00020;font-size:12px;min-height:1em}",
  ".lmho-note{font-size:11px;color:#555}",
  ".lmho-table{border-collapse:collapse;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}",
  ".lmho-table td,.lmho-table th{border:1px solid #ddd;padding:1px 5px;text-align:right}",
  ".lmho-table th{background:#f4f4f4;font-weight:600}",
  ".lmho-bad{background:#fde0e0}",
  ".lmho-good{background:#e2f4e2}",
  ".lmho-plot{background:#fff;border:1px solid #eee}",
  ".lmho-bars{display:flex;align-items:flex-end;gap:2px;height:70px;border-bottom:1px solid #999}",
  ".lmho-bar{background:#2171b5;width:14px}",
  "canvas.lmho-heat{image-rendering:pixelated;border:1px solid #ddd;display:block}"
].join("");

LMHO.start = function (root, title) {
  // Replace the loading note with the explorer's frame; returns the body element
  root.innerHTML = "";
  root.appendChild(LMHO.el("style", {text: LMHO.STYLE}));
  if (title) root.appendChild(LMHO.el("div", {"class": "lmho-title", text: title}));
  var body = LMHO.el("div");
  root.appendChild(body);
  root.addEventListener("mouseover", function (ev) {  // the exact value of any number, on hover
    var t = ev.target;
    if (t.getAttribute && t.hasAttribute("data-v")) t.title = t.getAttribute("data-v");
  });
  root.setAttribute("data-ready", "1");
  return body;
};
