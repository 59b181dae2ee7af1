/* The convolution explorer (chapter 3, "Convolution"), computed in the browser.
 *
 *   y[o, i, j] = b[o] + sum_c sum_m sum_n x_pad[c, i*s + m*d, j*s + n*d] * w[o, c, m, n]
 *
 * with stride s, dilation d and zero padding p (the cross-correlation of torch.nn.functional.conv2d;
 * Python reference: utils.widgets.reference.conv_reference). The reader draws on the input grids,
 * types one K x K kernel per (output, input) channel pair, sets the biases, or picks a hand-made
 * or a learned DigitsCNN kernel; every change recomputes everything.
 */
LMHO.parseKernel = function (text) {
  // "1 0 -1; 2 0 -2; 1 0 -1" -> {K, w: Float64Array(K*K)}; the rules of utils.conv_explorer.parse_kernel
  var rows = String(text).trim().split(";").map(function (r) { return r.trim(); }).filter(function (r) { return r.length; });
  var vals = rows.map(function (r) {
    return r.replace(/,/g, " ").split(/\s+/).map(function (t) {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) throw new Error("kernel values must be numbers, cannot read '" + t + "'");
      return parseFloat(t);
    });
  });
  if (!vals.length || vals.some(function (r) { return r.length !== vals.length; }))
    throw new Error("kernel must be square (K rows of K numbers separated by ';'), got '" + text + "'");
  var K = vals.length, w = new Float64Array(K * K);
  for (var m = 0; m < K; m++) for (var n = 0; n < K; n++) w[m * K + n] = vals[m][n];
  return {K: K, w: w};
};

LMHO.kernelText = function (K, w) {
  // K x K values as text, each rounded to 4 decimals without trailing zeros ("-1 0 1; ...")
  var rows = [];
  for (var m = 0; m < K; m++) {
    var r = [];
    for (var n = 0; n < K; n++) r.push(String(+w[m * K + n].toFixed(4)));
    rows.push(r.join(" "));
  }
  return rows.join("; ");
};

LMHO.convOutputSize = function (size, K, s, p, d) {
  var span = d * (K - 1) + 1;
  if (span > size + 2 * p)
    throw new Error("kernel (span " + span + " with dilation " + d + ") is larger than the padded input (" +
                    size + " + 2*" + p + " = " + (size + 2 * p) + ")");
  return Math.floor((size + 2 * p - span) / s) + 1;
};

LMHO.conv2d = function (inputs, H, W, kernels, K, bias, s, p, d) {
  // inputs[c]: Float64Array(H*W); kernels[o][c]: Float64Array(K*K); bias[o] -> {Ho, Wo, out[o]: Float64Array(Ho*Wo)}
  var Ho = LMHO.convOutputSize(H, K, s, p, d), Wo = LMHO.convOutputSize(W, K, s, p, d);
  var out = [];
  for (var o = 0; o < kernels.length; o++) {
    var y = new Float64Array(Ho * Wo);
    for (var i = 0; i < Ho; i++) for (var j = 0; j < Wo; j++) {
      var acc = bias[o];
      for (var c = 0; c < inputs.length; c++) {
        var x = inputs[c], w = kernels[o][c];
        for (var m = 0; m < K; m++) {
          var r = i * s + m * d - p;  // row in the unpadded input; outside = zero padding
          if (r < 0 || r >= H) continue;
          for (var n = 0; n < K; n++) {
            var q = j * s + n * d - p;
            if (q < 0 || q >= W) continue;
            acc += x[r * W + q] * w[m * K + n];
          }
        }
      }
      y[i * Wo + j] = acc;
    }
    out.push(y);
  }
  return {Ho: Ho, Wo: Wo, out: out};
};

LMHO.pool2 = function (y, Ho, Wo, kind) {
  // 2x2 pooling with stride 2 (floor), "max" or "avg" -> {h, w, v}
  var h = Math.floor(Ho / 2), w = Math.floor(Wo / 2), v = new Float64Array(h * w);
  for (var i = 0; i < h; i++) for (var j = 0; j < w; j++) {
    var a = [y[2 * i * Wo + 2 * j], y[2 * i * Wo + 2 * j + 1], y[(2 * i + 1) * Wo + 2 * j], y[(2 * i + 1) * Wo + 2 * j + 1]];
    v[i * w + j] = kind === "max" ? Math.max.apply(null, a) : (a[0] + a[1] + a[2] + a[3]) / 4;
  }
  return {h: h, w: w, v: v};
};

LMHO.mount_conv = function (root, cfg) {
  var E = LMHO.el, H = cfg.H, W = cfg.W, MAXC_IN = 3, MAXC_OUT = 4;
  var body = LMHO.start(root, cfg.title);
  var images = {}, imageNames = [];
  cfg.images.forEach(function (im) { images[im[0]] = im[1]; imageNames.push(im[0]); });
  var presets = {};
  cfg.presets.forEach(function (p) { presets[p[0]] = p; });
  var d = cfg.defaults;

  // ---- state ----
  var inputs = [], sources = [];
  for (var c = 0; c < MAXC_IN; c++) {
    sources.push(d.inputs[c] || imageNames[0]);
    inputs.push(Float64Array.from(images[sources[c]]));
  }
  var kernelText = [], bias = [];
  for (var o = 0; o < MAXC_OUT; o++) {
    kernelText.push([]);
    for (c = 0; c < MAXC_IN; c++) kernelText[o].push((d.kernels[o] && d.kernels[o][c]) || d.fallback_kernel);
    bias.push(d.bias[o] || 0);
  }
  var state = {pos: d.position || 0, osel: 0, painting: false};

  // ---- controls ----
  var msg = LMHO.message();
  var update = LMHO.timed(root, msg, function () { render(); });
  var cin = LMHO.slider("input channels", 1, MAXC_IN, 1, d.c_in, function () { buildKernelTable(); update(); });
  var cout = LMHO.slider("output channels", 1, MAXC_OUT, 1, d.c_out, function () { buildKernelTable(); update(); });
  var stride = LMHO.slider("stride", 1, 3, 1, d.stride, function () { update(); });
  var padding = LMHO.slider("padding", 0, 3, 1, d.padding, function () { update(); });
  var dilation = LMHO.slider("dilation", 1, 3, 1, d.dilation, function () { update(); });
  var pool = LMHO.select("pooling of the output", [["none", "none"], ["max", "max 2x2"], ["avg", "average 2x2"]], "none", function () { update(); });
  // the brush: a number and a swatch that previews it on channel 0's colour scale
  var swatch = E("span", {"class": "lmho-swatch", title: "what the brush paints", "aria-label": "brush preview",
                          style: "display:inline-block;min-width:3em;padding:2px 6px;margin-left:4px;border:1px solid #999;text-align:center"});
  function showBrush() {
    var v = parseFloat(brush.input.value), vmax = 0;
    v = isFinite(v) ? v : 0;
    for (var k = 0; k < inputs[0].length; k++) vmax = Math.max(vmax, Math.abs(inputs[0][k]));
    var rgb = LMHO.diverging(v, Math.max(vmax, Math.abs(v)));
    swatch.style.background = LMHO.css(rgb);
    swatch.style.color = LMHO.ink(rgb);
    swatch.textContent = LMHO.fmt(v, 2);
  }
  var brush = LMHO.number("brush value", 1, 0.25, showBrush, 4);
  brush.node.appendChild(swatch);
  showBrush();
  var position = LMHO.slider("position", 0, 63, 1, state.pos, function () { state.pos = +position.input.value; update(); });
  body.appendChild(LMHO.row([cin.node, cout.node, stride.node, padding.node, dilation.node]));
  body.appendChild(msg);

  // input panels: one per input channel, each with a source picker and a drawable grid
  var inputRow = LMHO.row([], "lmho-top"), inputPanels = [];
  for (c = 0; c < MAXC_IN; c++) (function (c) {
    var src = LMHO.select("channel " + c, imageNames.map(function (n) { return [n, n]; }), sources[c], function () {
      sources[c] = src.input.value;
      inputs[c] = Float64Array.from(images[sources[c]]);
      update();
    });
    var holder = E("div");
    var panel = E("div", {"class": "lmho-panel lmho-inpanel", "data-c": c}, [src.node, holder]);
    inputPanels.push({panel: panel, holder: holder, grid: null, key: ""});
    inputRow.appendChild(panel);
  })(c);
  body.appendChild(E("div", {"class": "lmho-cap", text: "Input (draw: press and drag on a grid; the brush value is written into each cell; shaded cells are the zero padding; orange cells are the taps of the kernel at the chosen position)"}));
  body.appendChild(LMHO.row([brush.node, pool.node]));
  body.appendChild(inputRow);

  // kernel table: one text field per (output, input) channel pair, plus a bias per output channel
  var kernelBox = E("div");
  body.appendChild(E("div", {"class": "lmho-cap", text: "Kernels w[o, c] (rows separated by ';', any K x K, the same K for all) and biases b[o]; the menus fill a field with a hand-made or a learned DigitsCNN kernel"}));
  body.appendChild(kernelBox);
  var presetOptions = [["", "preset..."]].concat(cfg.presets.map(function (p) { return [p[0], p[0]]; }));
  function buildKernelTable() {
    kernelBox.innerHTML = "";
    var table = E("table", {"class": "lmho-table"});
    var head = E("tr", {}, [E("th", {text: ""})]);
    for (var c = 0; c < +cin.input.value; c++) head.appendChild(E("th", {text: "input channel " + c}));
    head.appendChild(E("th", {text: "bias"}));
    table.appendChild(head);
    for (var o = 0; o < +cout.input.value; o++) (function (o) {
      var tr = E("tr", {}, [E("th", {text: "output " + o})]);
      for (var c = 0; c < +cin.input.value; c++) (function (c) {
        var field = E("input", {type: "text", value: kernelText[o][c], spellcheck: "false", style: "width:15em",
                                "class": "lmho-kernel", "data-o": o, "data-c": c, "aria-label": "kernel " + o + " " + c});
        field.addEventListener("input", function () { kernelText[o][c] = field.value; update(); });
        var pick = E("select", {"aria-label": "preset kernel " + o + " " + c});
        LMHO.setOptions(pick, presetOptions, "");
        pick.addEventListener("change", function () {
          var p = presets[pick.value];
          if (!p) return;
          kernelText[o][c] = field.value = LMHO.kernelText(p[1], p[2]);
          if (p[3] !== null) { bias[o] = +p[3].toFixed(4); biasField.value = bias[o]; }
          pick.value = "";
          update();
        });
        tr.appendChild(E("td", {style: "text-align:left"}, [field, E("br"), pick]));
      })(c);
      var biasField = E("input", {type: "number", step: 0.1, value: bias[o], style: "width:5em", "class": "lmho-bias",
                                  "data-o": o, "aria-label": "bias " + o});
      biasField.addEventListener("input", function () { bias[o] = biasField.value === "" ? 0 : +biasField.value; update(); });
      tr.appendChild(E("td", {}, [biasField]));
      table.appendChild(tr);
    })(o);
    kernelBox.appendChild(table);
  }

  // the chosen position: kernel, products and sums of the selected output channel
  var stepBox = E("div");
  var stepText = E("div", {"class": "lmho-cap"});
  body.appendChild(LMHO.row([position.node, E("span", {"class": "lmho-note", text: "or click an output cell"})]));
  body.appendChild(stepText);
  body.appendChild(stepBox);
  var outCap = E("div", {"class": "lmho-cap"});
  var outBox = LMHO.row([], "lmho-top");
  body.appendChild(outCap);
  body.appendChild(outBox);
  body.appendChild(E("div", {"class": "lmho-note", text: "Colours: blue negative, white zero, red positive (each map scaled to its own largest |value|). Hover a cell for its exact value."}));

  function paint(c, r, q) {
    // r, q: indices in the padded grid; padding cells cannot be drawn on
    var p = +padding.input.value, i = r - p, j = q - p;
    if (i < 0 || i >= H || j < 0 || j >= W) return;
    var v = parseFloat(brush.input.value);
    inputs[c][i * W + j] = isFinite(v) ? v : 0;
    update();
  }
  inputPanels.forEach(function (ip, c) {
    ip.holder.addEventListener("pointerdown", function (ev) {
      var t = ev.target;
      if (!t.classList.contains("lmho-cell")) return;
      ev.preventDefault();
      state.painting = true;
      paint(c, +t.getAttribute("data-r"), +t.getAttribute("data-c"));
    });
    ip.holder.addEventListener("pointerover", function (ev) {
      var t = ev.target;
      if (state.painting && t.classList.contains("lmho-cell")) paint(c, +t.getAttribute("data-r"), +t.getAttribute("data-c"));
    });
  });
  document.addEventListener("pointerup", function () { state.painting = false; });

  var outGrids = [], poolGrids = [], outKey = "", stepGrids = [], stepKey = "";

  function render() {
    var nin = +cin.input.value, nout = +cout.input.value, s = +stride.input.value, p = +padding.input.value,
        dil = +dilation.input.value, c, o;
    inputPanels.forEach(function (ip, c) { ip.panel.style.display = c < nin ? "" : "none"; });
    // 1. parse the kernels: all K x K with one K
    var K = null, kernels = [];
    for (o = 0; o < nout; o++) {
      kernels.push([]);
      for (c = 0; c < nin; c++) {
        var parsed;
        try { parsed = LMHO.parseKernel(kernelText[o][c]); }
        catch (e) { throw new Error("kernel w[" + o + ", " + c + "]: " + e.message); }
        if (K === null) K = parsed.K;
        else if (parsed.K !== K) throw new Error("all kernels must have the same size: w[0, 0] is " + K + "x" + K +
                                                 ", w[" + o + ", " + c + "] is " + parsed.K + "x" + parsed.K);
        kernels[o].push(parsed.w);
      }
    }
    // 2. compute every output channel
    var res = LMHO.conv2d(inputs.slice(0, nin), H, W, kernels, K, bias, s, p, dil);
    var Ho = res.Ho, Wo = res.Wo, npos = Ho * Wo;
    position.setMax(npos - 1);
    state.pos = Math.min(+position.input.value, npos - 1);
    if (state.osel >= nout) state.osel = 0;
    var pi = Math.floor(state.pos / Wo), pj = state.pos % Wo, top = pi * s, left = pj * s;
    // 3. inputs: padded grids with the taps of the kernel at the chosen position
    var Hp = H + 2 * p, Wp = W + 2 * p;
    inputPanels.forEach(function (ip, c) {
      if (c >= nin) return;
      var key = Hp + "x" + Wp;
      if (ip.key !== key) {
        ip.grid = new LMHO.Grid(Hp, Wp, {cell: Hp > 12 ? 22 : 28, font: 9});
        ip.holder.innerHTML = "";
        ip.holder.appendChild(ip.grid.node);
        ip.key = key;
      }
      var vals = new Array(Hp * Wp);
      for (var r = 0; r < Hp; r++) for (var q = 0; q < Wp; q++) {
        var i = r - p, j = q - p;
        vals[r * Wp + q] = (i < 0 || i >= H || j < 0 || j >= W) ? 0 : inputs[c][i * W + j];
      }
      var vmax = 0;
      for (var k = 0; k < vals.length; k++) vmax = Math.max(vmax, Math.abs(vals[k]));
      ip.grid.update(vals, function (v) { return LMHO.diverging(v, vmax); }, 1);
      ip.grid.mark(function (r, q) { return r < p || r >= H + p || q < p || q >= W + p; }, "lmho-pad");
      ip.grid.mark(function (r, q) {
        var dm = r - top, dn = q - left;
        return dm >= 0 && dn >= 0 && dm % dil === 0 && dn % dil === 0 && dm / dil < K && dn / dil < K;
      }, "lmho-field");
    });
    // 4. the step: per input channel, kernel and products at the position, for output channel osel
    var key = nin + ":" + K;
    if (stepKey !== key) {
      stepBox.innerHTML = "";
      stepGrids = [];
      for (c = 0; c < nin; c++) {
        var kg = new LMHO.Grid(K, K, {cell: 34}), pg = new LMHO.Grid(K, K, {cell: 34});
        var sum = E("div", {"class": "lmho-cap lmho-chsum"});
        stepGrids.push({kg: kg, pg: pg, sum: sum});
        stepBox.appendChild(E("div", {"class": "lmho-panel"}, [
          E("div", {"class": "lmho-cap", text: "channel " + c + ": kernel | window x kernel"}),
          LMHO.row([kg.node, pg.node]), sum]));
      }
      stepKey = key;
    }
    var total = bias[state.osel];
    for (c = 0; c < nin; c++) {
      var w = kernels[state.osel][c], prods = new Array(K * K), chs = 0, wmax = 0, pmax = 0;
      for (var m = 0; m < K; m++) for (var n = 0; n < K; n++) {
        var r = top + m * dil - p, q = left + n * dil - p;
        var x = (r < 0 || r >= H || q < 0 || q >= W) ? 0 : inputs[c][r * W + q];
        prods[m * K + n] = x * w[m * K + n];
        chs += prods[m * K + n];
        wmax = Math.max(wmax, Math.abs(w[m * K + n]));
        pmax = Math.max(pmax, Math.abs(prods[m * K + n]));
      }
      total += chs;
      stepGrids[c].kg.update(Array.from(w), function (v) { return LMHO.diverging(v, wmax); }, 2);
      stepGrids[c].pg.update(prods, function (v) { return LMHO.diverging(v, pmax); }, 2);
      stepGrids[c].sum.textContent = "";
      stepGrids[c].sum.appendChild(document.createTextNode("sum of channel " + c + " = "));
      var num = E("b", {"class": "lmho-chsum-v"});
      LMHO.setNum(num, chs, 3);
      stepGrids[c].sum.appendChild(num);
    }
    stepText.innerHTML = "";
    var tot = E("b", {"class": "lmho-total"});
    LMHO.setNum(tot, total, 3);
    stepText.appendChild(document.createTextNode("Output channel " + state.osel + ", position " + state.pos + " = (row " + pi +
      ", column " + pj + "): window corner (" + top + ", " + left + ") of the padded input; sum over " + nin +
      " channel" + (nin > 1 ? "s" : "") + " + bias " + LMHO.fmt(bias[state.osel], 3) + " = "));
    stepText.appendChild(tot);
    // 5. output maps (and their pooling)
    var pk = pool.input.value;
    var okey = nout + ":" + Ho + "x" + Wo + ":" + pk;
    if (okey !== outKey) {
      outBox.innerHTML = "";
      outGrids = []; poolGrids = [];
      for (o = 0; o < nout; o++) (function (o) {
        var g = new LMHO.Grid(Ho, Wo, {cell: Wo > 10 ? 28 : 34, cls: "lmho-out", font: 9});
        g.node.setAttribute("data-o", o);
        g.onCell("click", function (r, q) { state.osel = o; position.input.value = r * Wo + q; position.show(); update(); });
        var cap = E("div", {"class": "lmho-cap"});
        var parts = [cap, g.node];
        var pg = null;
        if (pk !== "none" && Ho >= 2 && Wo >= 2) {
          pg = new LMHO.Grid(Math.floor(Ho / 2), Math.floor(Wo / 2), {cell: 34, cls: "lmho-pool"});
          parts.push(E("div", {"class": "lmho-cap", text: (pk === "max" ? "max" : "average") + " pool 2x2: " +
                               Math.floor(Ho / 2) + "x" + Math.floor(Wo / 2)}), pg.node);
        }
        outGrids.push({g: g, cap: cap});
        poolGrids.push(pg);
        outBox.appendChild(E("div", {"class": "lmho-panel"}, parts));
      })(o);
      outKey = okey;
    }
    outCap.textContent = "Output: " + nout + " channel" + (nout > 1 ? "s" : "") + " of " + Ho + "x" + Wo +
      "  (floor((" + H + " + 2*" + p + " - " + dil + "*(" + K + " - 1) - 1) / " + s + ") + 1 = " + Ho + ")";
    for (o = 0; o < nout; o++) {
      var y = res.out[o], vmax = 0;
      for (var k = 0; k < y.length; k++) vmax = Math.max(vmax, Math.abs(y[k]));
      outGrids[o].cap.textContent = "output channel " + o + " (largest |value| " + LMHO.fmt(vmax, 2) + ")";
      outGrids[o].g.update(Array.from(y), function (v) { return LMHO.diverging(v, vmax); }, 2);
      (function (o) { outGrids[o].g.mark(function (r, q) { return o === state.osel && r * Wo + q === state.pos; }, "lmho-sel"); })(o);
      if (poolGrids[o]) {
        var pr = LMHO.pool2(y, Ho, Wo, pk), pm = 0;
        for (k = 0; k < pr.v.length; k++) pm = Math.max(pm, Math.abs(pr.v[k]));
        poolGrids[o].update(Array.from(pr.v), function (v) { return LMHO.diverging(v, pm); }, 2);
      }
    }
  }

  buildKernelTable();
  update();
  root.lmho = {update: update, inputs: inputs, kernelText: kernelText, bias: bias};
};
