/* The gating explorer (chapter 3, "Gates: GRU and LSTM"), computed in the browser.
 *
 * A trained GRU or LSTM regressor for the adding problem runs on a sequence the reader picks or
 * types, with the book's cells (utils.rnn; GRU in the book's convention, z = 1 takes the candidate):
 *   GRU:  r = s(W_r x + U_r h + b_r), z = s(W_z x + U_z h + b_z), n = tanh(W_n x + b_in + r * (U_n h + b_hn)),
 *         h = (1 - z) * h + z * n
 *   LSTM: i, f, o = s(...), g = tanh(...), c = f * c + i * g, h = o * tanh(c)
 * and the read-out y_t = w . h_t + b. The time slider reveals the states step by step; the clamp
 * forces the update gate z (GRU) or the forget gate f (LSTM) of chosen units from a chosen step on.
 * Python reference: utils.widgets.reference.gate_trace.
 */
LMHO.parseAdding = function (text) {
  // "31[7]2 0 5[4]8" -> {x: [value, marker, ...] (T*2), target}; the rules of utils.rnn_models.parse_adding_sequence
  var tokens = String(text).match(/\[\d\]|\d|\S/g) || [];
  for (var i = 0; i < tokens.length; i++)
    if (!/^(\[\d\]|\d)$/.test(tokens[i])) throw new Error("use digits 0-9 and mark two of them with brackets like [7]; cannot read '" + tokens[i] + "'");
  if (tokens.length < 2) throw new Error("type at least two digits");
  var x = [], marked = 0, target = 0;
  tokens.forEach(function (t) {
    var m = t.charAt(0) === "[", v = parseInt(t.replace(/[\[\]]/g, ""), 10);
    x.push(Math.fround(v / 10), m ? 1 : 0);  // float32 values, as the Python parser makes them
    if (m) { marked++; target += v; }
  });
  if (marked !== 2) throw new Error("mark exactly two digits with brackets, got " + marked + " marked");
  return {x: x, target: target / 10};
};

LMHO.runGated = function (model, x, clamp) {
  // One pass over x (T*I). clamp: {units: [..], value, from} or null. Returns {panels: {name: Float64Array(T*H)}, keep, readout}
  var H = model.H, I = model.I, T = x.length / I, G = model.cell === "gru" ? 3 : 4;
  var h = new Float64Array(H), c = new Float64Array(H), gi = new Float64Array(G * H), gh = new Float64Array(G * H);
  var names = model.cell === "gru" ? ["update z", "reset r", "candidate", "hidden h"] : ["input i", "forget f", "output o", "cell c", "hidden h"];
  var panels = {};
  names.forEach(function (n) { panels[n] = new Float64Array(T * H); });
  var keep = new Float64Array(T * H), readout = new Float64Array(T), clamped = new Uint8Array(H);
  if (clamp) clamp.units.forEach(function (u) { clamped[u] = 1; });
  for (var t = 0; t < T; t++) {
    var xt = x.slice(t * I, (t + 1) * I);
    LMHO.matvec(model.W_ih, G * H, I, xt, model.b_ih, gi);
    LMHO.matvec(model.W_hh, G * H, H, h, model.b_hh, gh);
    var on = clamp && t >= clamp.from, u, o = t * H;
    if (model.cell === "gru") {  // rows [r, z, n]; the z rows are already negated (book convention)
      for (u = 0; u < H; u++) {
        var r = LMHO.sigmoid(gi[u] + gh[u]);
        var z = LMHO.sigmoid(gi[H + u] + gh[H + u]);
        if (on && clamped[u]) z = clamp.value;
        var n = Math.tanh(gi[2 * H + u] + r * gh[2 * H + u]);
        h[u] = (1 - z) * h[u] + z * n;
        panels["update z"][o + u] = z; panels["reset r"][o + u] = r; panels["candidate"][o + u] = n;
        panels["hidden h"][o + u] = h[u]; keep[o + u] = 1 - z;
      }
    } else {  // rows [i, f, g, o]
      for (u = 0; u < H; u++) {
        var ig = LMHO.sigmoid(gi[u] + gh[u]);
        var fg = LMHO.sigmoid(gi[H + u] + gh[H + u]);
        if (on && clamped[u]) fg = clamp.value;
        var g = Math.tanh(gi[2 * H + u] + gh[2 * H + u]);
        var og = LMHO.sigmoid(gi[3 * H + u] + gh[3 * H + u]);
        c[u] = fg * c[u] + ig * g;
        h[u] = og * Math.tanh(c[u]);
        panels["input i"][o + u] = ig; panels["forget f"][o + u] = fg; panels["output o"][o + u] = og;
        panels["cell c"][o + u] = c[u]; panels["hidden h"][o + u] = h[u]; keep[o + u] = fg;
      }
    }
    var y = model.head_b;
    for (u = 0; u < H; u++) y += model.head_w[u] * h[u];
    readout[t] = y;
  }
  return {names: names, panels: panels, keep: keep, readout: readout, T: T, H: H};
};

LMHO.holders = function (run, x, I) {
  // units whose mean keep fraction after the first marker is >= 0.9 (utils.rnn.holding_units)
  var T = run.T, H = run.H, start = 0, out = [];
  for (var t = 0; t < T; t++) if (x[t * I + 1] > 0.5) { start = t; break; }
  for (var u = 0; u < H; u++) {
    var s = 0;
    for (t = start; t < T; t++) s += run.keep[t * H + u];
    if (s / (T - start) >= 0.9) out.push(u);
  }
  return {units: out, start: start};
};

LMHO.mount_gating = function (root, cfg) {
  var E = LMHO.el;
  var body = LMHO.start(root, cfg.title);
  var models = {};
  cfg.models.forEach(function (m) {
    models[m.name] = {name: m.name, cell: m.cell, H: m.H, I: m.I, W_ih: LMHO.decodeF32(m.W_ih), W_hh: LMHO.decodeF32(m.W_hh),
                      b_ih: LMHO.decodeF32(m.b_ih), b_hh: LMHO.decodeF32(m.b_hh), head_w: LMHO.decodeF32(m.head_w),
                      head_b: m.head_b};
  });
  var seqs = {};
  cfg.sequences.forEach(function (s) { seqs[s.name] = s; });
  var msg = LMHO.message();
  var update = LMHO.timed(root, msg, function () { render(); });
  var modelSel = LMHO.select("model", cfg.models.map(function (m) { return [m.name, m.name]; }), cfg.models[0].name,
                             function () { unitsTouched = false; clampTouched = false; update(); });
  var seqSel = LMHO.select("sequence", cfg.sequences.map(function (s) { return [s.name, s.name]; }).concat([["typed", "typed below"]]),
                           cfg.default_sequence || "typed", function () { unitsTouched = false; clampTouched = false; update(); });
  var typed = LMHO.text("typed", cfg.typed, function () { seqSel.input.value = "typed"; unitsTouched = false; clampTouched = false; update(); }, 20);
  var tSlider = LMHO.slider("time step t", 0, 9, 1, 0, function () { update(); });
  var play = E("button", {type: "button", "aria-label": "play", text: "\u25B6"});
  var units = LMHO.text("units shown", "", function () { unitsTouched = true; update(); }, 9);
  var plotUnit = LMHO.select("plot unit", [["0", "0"]], "0", function () { update(); });
  var clampOn = LMHO.checkbox("clamp", false, function () { update(); });
  var clampUnits = LMHO.text("units", "", function () { clampTouched = true; update(); }, 9);
  var clampVal = LMHO.slider("gate value", 0, 1, 0.05, 1, function () { clampTouched = true; update(); }, function (v) { return v.toFixed(2); });
  var clampFrom = LMHO.number("from step", 0, 1, function () { clampTouched = true; update(); }, 4);
  var clampName = E("span", {"class": "lmho-note"});
  var unitsTouched = false, clampTouched = false, timer = null;
  play.addEventListener("click", function () {
    if (timer) { clearInterval(timer); timer = null; play.textContent = "\u25B6"; return; }
    play.textContent = "\u275A\u275A";
    timer = setInterval(function () {
      var t = (+tSlider.input.value + 1) % (+tSlider.input.max + 1);
      tSlider.input.value = t; tSlider.show(); update();
    }, 350);
  });
  body.appendChild(LMHO.row([modelSel.node, seqSel.node, typed.node]));
  body.appendChild(E("div", {"class": "lmho-note", text: "Typed sequences: digits 0-9 stand for the values 0.0-0.9; brackets mark the two values to add, e.g. 31[7]2 0 5[4]8."}));
  body.appendChild(LMHO.row([play, tSlider.node, units.node, plotUnit.node]));
  body.appendChild(LMHO.row([clampOn.node, clampName, clampUnits.node, clampVal.node, clampFrom.node]));
  body.appendChild(msg);
  var summary = E("div", {"class": "lmho-cap", style: "font-size:13px"});
  body.appendChild(summary);
  var heatBox = E("div");
  body.appendChild(heatBox);
  var lower = LMHO.row([], "lmho-top");
  body.appendChild(lower);
  var tableBox = E("div");
  var plot = new LMHO.LinePlot(430, 170, -1, 1);
  lower.appendChild(tableBox);
  lower.appendChild(E("div", {}, [plot.node]));
  body.appendChild(E("div", {"class": "lmho-note", text: "Heatmaps: time to the right, units downward (blue negative, white 0, red positive; gates from white 0 to dark 1). Steps after t are hidden. Red ticks on the right: holder units (keep at least 90% of their state per step after the first marker); black ticks on the left: the units shown in the table."}));

  var heat = {key: "", canvases: {}, ticks: {}};

  function parseUnits(text, H) {
    var out = [];
    (String(text).match(/\S+/g) || []).forEach(function (tok) {
      tok.split(",").forEach(function (s) {
        if (!s) return;
        if (!/^\d+$/.test(s) || +s >= H) throw new Error("units must be numbers from 0 to " + (H - 1) + ", cannot read '" + s + "'");
        if (out.indexOf(+s) < 0) out.push(+s);
      });
    });
    return out;
  }

  function drawHeat(canvas, data, T, H, tShown, isGate) {
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(T, H);
    for (var u = 0; u < H; u++) for (var t = 0; t < T; t++) {
      var p = 4 * (u * T + t), rgb;
      if (t > tShown) rgb = [238, 238, 238];
      else rgb = isGate ? LMHO.sequential(data[t * H + u], 0, 1) : LMHO.diverging(data[t * H + u], 1);
      img.data[p] = rgb[0]; img.data[p + 1] = rgb[1]; img.data[p + 2] = rgb[2]; img.data[p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function render() {
    var model = models[modelSel.input.value], seq;
    if (seqSel.input.value === "typed") seq = LMHO.parseAdding(typed.input.value);
    else seq = seqs[seqSel.input.value];
    var x = seq.x, I = model.I, T = x.length / I, H = model.H;
    tSlider.setMax(T - 1);
    var t = +tSlider.input.value;
    // 1. the unclamped run gives the holders and the reference prediction
    var base = LMHO.runGated(model, x, null), hold = LMHO.holders(base, x, I);
    var gateName = model.cell === "gru" ? "update gate z" : "forget gate f";
    clampName.textContent = "the " + gateName + " of";
    if (!clampTouched) {
      clampUnits.input.value = hold.units.join(" ");
      clampVal.input.value = model.cell === "gru" ? 1 : 0; clampVal.show();
      clampFrom.input.value = Math.min(hold.start + 1, T - 1);
    }
    var shown = unitsTouched ? parseUnits(units.input.value, H) : hold.units.slice(0, 6);
    if (!shown.length) {  // no holder: show the four units that keep the most
      var order = [];
      for (var u = 0; u < H; u++) { var s = 0; for (var k = hold.start; k < T; k++) s += base.keep[k * H + u]; order.push([s, u]); }
      order.sort(function (a, b) { return b[0] - a[0]; });
      shown = order.slice(0, 4).map(function (p) { return p[1]; });
    }
    if (!unitsTouched) units.input.value = shown.join(" ");
    // 2. the displayed run: clamped if asked
    var run = base, clamp = null;
    if (clampOn.input.checked) {
      var cu = parseUnits(clampUnits.input.value, H), from = parseInt(clampFrom.input.value, 10);
      if (!isFinite(from) || from < 0) throw new Error("from step must be a step number >= 0");
      clamp = {units: cu, value: +clampVal.input.value, from: from};
      run = LMHO.runGated(model, x, clamp);
    }
    // 3. summary
    summary.innerHTML = "";
    var add = function (label, v, cls) {
      summary.appendChild(document.createTextNode(label));
      var b = E("b", {"class": cls}); LMHO.setNum(b, v, 3); summary.appendChild(b);
    };
    add("target ", seq.target, "lmho-target");
    add("  |  prediction after the last step ", base.readout[T - 1], "lmho-pred");
    if (clamp) {
      add("  |  with " + clamp.units.length + " unit" + (clamp.units.length === 1 ? "" : "s") + " clamped: ", run.readout[T - 1], "lmho-pred-clamped");
      summary.appendChild(document.createTextNode(Math.abs(run.readout[T - 1] - seq.target) > Math.abs(base.readout[T - 1] - seq.target) + 0.05 ?
        "  (further from the target)" : ""));
    }
    add("  |  read-out w\u00B7h_t + b at step " + t + ": ", run.readout[t], "lmho-readout");
    // 4. heatmaps (rebuilt only when the shape or the model changes)
    var key = model.name + ":" + T + ":" + H;
    var cw = Math.max(6, Math.min(16, Math.floor(520 / T))), ch = 4;
    if (heat.key !== key) {
      heatBox.innerHTML = "";
      heat.canvases = {}; heat.ticks = {};
      var inRow = E("canvas", {"class": "lmho-heat lmho-input", width: T, height: 10, style: "width:" + (T * cw) + "px;height:30px"});
      heat.input = inRow;
      heatBox.appendChild(LMHO.row([E("span", {"class": "lmho-lab", style: "width:70px", text: "input"}), inRow]));
      run.names.forEach(function (n) {
        var cv = E("canvas", {"class": "lmho-heat", width: T, height: H, style: "width:" + (T * cw) + "px;height:" + (H * ch) + "px"});
        var left = E("canvas", {width: 6, height: H * ch, style: "width:6px;height:" + (H * ch) + "px"});
        var right = E("canvas", {width: 6, height: H * ch, style: "width:6px;height:" + (H * ch) + "px"});
        heat.canvases[n] = cv; heat.ticks[n] = [left, right];
        heatBox.appendChild(LMHO.row([E("span", {"class": "lmho-lab", style: "width:64px;justify-content:flex-end", text: n}), left, cv, right]));
      });
      heat.key = key;
    }
    var ictx = heat.input.getContext("2d");
    ictx.clearRect(0, 0, T, 10);
    for (k = 0; k < T; k++) {
      if (k > t) continue;
      ictx.fillStyle = x[k * I + 1] > 0.5 ? "#d62728" : "#999";
      var hgt = Math.max(1, Math.round(10 * x[k * I]));
      ictx.fillRect(k, 10 - hgt, 1, hgt);
    }
    run.names.forEach(function (n) {
      drawHeat(heat.canvases[n], run.panels[n], T, H, t, !/candidate|hidden|cell/.test(n));
      var l = heat.ticks[n][0].getContext("2d"), r = heat.ticks[n][1].getContext("2d");
      l.clearRect(0, 0, 6, H * ch); r.clearRect(0, 0, 6, H * ch);
      l.fillStyle = "#000"; r.fillStyle = "#c00";
      shown.forEach(function (u) { l.fillRect(0, u * ch, 6, ch); });
      hold.units.forEach(function (u) { r.fillRect(0, u * ch, 6, ch); });
    });
    // 5. table of the shown units at step t (rebuilt only when the units or the model change)
    var cols = run.names.concat(["keep"]), tkey = model.name + "|" + shown.join(",") + "|" + hold.units.join(",");
    if (tableBox._key !== tkey) {
      tableBox.innerHTML = "";
      tableBox._cap = E("div", {"class": "lmho-cap"});
      var table = E("table", {"class": "lmho-table lmho-steps"});
      var hr = E("tr", {}, [E("th", {text: "unit"})]);
      run.names.forEach(function (n) { hr.appendChild(E("th", {text: n + "_t"})); });
      hr.appendChild(E("th", {text: "keeps"}));
      table.appendChild(hr);
      tableBox._cells = shown.map(function (u) {
        var tr = E("tr", {"data-unit": u}, [E("th", {text: String(u) + (hold.units.indexOf(u) >= 0 ? " (holder)" : "")})]);
        var tds = cols.map(function (n) { var td = E("td", {"data-panel": n}); tr.appendChild(td); return td; });
        table.appendChild(tr);
        return tds;
      });
      tableBox.appendChild(tableBox._cap);
      tableBox.appendChild(table);
      tableBox._key = tkey;
    }
    shown.forEach(function (u, i) {
      cols.forEach(function (n, j) {
        LMHO.setNum(tableBox._cells[i][j], n === "keep" ? run.keep[t * H + u] : run.panels[n][t * H + u], 4);
      });
    });
    tableBox._cap.textContent = "Step t = " + t + " of " + (T - 1) + ": input value " + LMHO.fmt(x[t * I], 1) +
      (x[t * I + 1] > 0.5 ? " (marked)" : "");
    // 6. line plot of one unit (revealed up to t)
    var pu = plotUnit.input.value;
    LMHO.setOptions(plotUnit.input, shown.map(function (u) { return [String(u), String(u)]; }), shown.indexOf(+pu) >= 0 ? pu : String(shown[0]));
    var uu = +plotUnit.input.value, gateKey = model.cell === "gru" ? "update z" : "forget f";
    var series = function (arr, label, color, dash) {
      var v = [];
      for (var k = 0; k < T; k++) v.push(k <= t ? arr[k * H + uu] : null);
      return {values: v, label: label, color: color, dash: dash};
    };
    var lines = [series(run.panels[gateKey], (model.cell === "gru" ? "z" : "f") + "_t", "#ff7f0e"),
                 series(run.panels["hidden h"], "h_t", "#1f77b4")];
    if (clamp) lines.push(series(base.panels["hidden h"], "h_t unclamped", "#1f77b4", "4,3"));
    plot.draw(lines, T, t, "unit " + uu);
  }
  update();
  root.lmho = {update: update};
};
