/* losslab explorer: three live views of why classification trains with cross-entropy.
 *
 * 1. The gradient explorer evaluates each built-in loss of src/losslab/core/losses.py along the margin
 *    path of losslab.analysis.landscape.margin_logits. The formulas below are those of losses.py,
 *    line for line and in the same log-space form, so they agree with losslab's float64 values to
 *    rounding (a browser test checks it).
 * 2. Nielsen's neuron (Neural Networks and Deep Learning, ch. 3) is trained here by gradient descent.
 * 3. The measured training section draws rows that `losslab explore --results DIR` embedded.
 *
 * Every setting lives in the URL fragment (#margin=-3&K=3&...), read on load and on hashchange, and
 * written back on every change, so a link restores the exact view. No libraries and nothing fetched:
 * the charts are hand-drawn SVG.
 *
 * Every word shown comes from the message catalogue of the page's language (src/losslab/i18n/<lang>.toml,
 * ids explore.* and figure.loss.*), which page.py embeds beside the data; t(id, params) reads it.
 */
"use strict";

(function () {
  // =============================================================================================
  // 0. The page's data and words
  // =============================================================================================

  const DATA = JSON.parse(document.getElementById("losslab-data").textContent);
  // 1e-3 as "10⁻³" (a power of ten with a superscript exponent), any other number as written.
  const powerOfTen = (v) => {
    const e = Math.log10(v);
    if (!Number.isInteger(e)) return String(v);
    const sup = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
    return "10" + String(e).split("").map((c) => sup[c]).join("");
  };
  const MESSAGES = DATA.messages;

  function tParts(id, params = {}) {
    // The message `id` as a list of text and the values of its {name} placeholders (strings, numbers or DOM
    // nodes, for node.append); {{ and }} are literal braces, as in Python's str.format.
    const template = MESSAGES[id];
    if (typeof template !== "string") throw new Error(`explorer: no message ${id} in this page`);
    const parts = [];
    let last = 0;
    for (const match of template.matchAll(/\{\{|\}\}|\{(\w+)\}/g)) {
      parts.push(template.slice(last, match.index));
      last = match.index + match[0].length;
      if (match[1] === undefined) parts.push(match[0][0]);
      else if (Object.prototype.hasOwnProperty.call(params, match[1])) parts.push(params[match[1]]);
      else throw new Error(`explorer: message ${id} needs {${match[1]}}`);
    }
    parts.push(template.slice(last));
    return parts;
  }

  function t(id, params) {
    // The message `id` of the page's language with its placeholders filled in, as text. Ids are written out
    // in full, never computed: tests/test_i18n.py collects them from this file.
    return tParts(id, params).map(String).join("");
  }

  // =============================================================================================
  // 1. Closed forms, mirroring src/losslab/core/losses.py (y: probability targets, z: logits)
  // =============================================================================================

  function sum(values) {
    let s = 0;
    for (const v of values) s += v;
    return s;
  }

  function square(x) {
    return x * x;
  }

  function argmax(values) {
    // torch.argmax returns the first maximal index; on the margin path at m = 0 all logits tie.
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return best;
  }

  function logsumexp(values) {
    let max = -Infinity;
    for (const v of values) if (v > max) max = v;
    if (max === -Infinity) return -Infinity;
    let s = 0;
    for (const v of values) s += Math.exp(v - max);
    return Math.log(s) + max;
  }

  function softmaxParts(z) {
    // As torch does: subtract the maximum before exponentiating (no overflow at z = 1e4), and
    // log p = (z - max) - log(sum), finite where log(softmax(z)) would be log(0).
    let max = -Infinity;
    for (const v of z) if (v > max) max = v;
    const e = z.map((v) => Math.exp(v - max));
    const s = sum(e);
    const inv = 1 / s;
    const logS = Math.log(s);
    return { p: e.map((v) => v * inv), logp: z.map((v) => v - max - logS) };
  }

  function crossEntropyValues(z, y) {
    const { logp } = softmaxParts(z);
    return -sum(y.map((yi, i) => yi * logp[i]));
  }

  function crossEntropyGrad(z, y) {
    // p * sum(y) - y = p - y for targets that sum to 1: the softmax's derivative cancels.
    const { p } = softmaxParts(z);
    const ySum = sum(y);
    return p.map((pi, i) => pi * ySum - y[i]);
  }

  function focalParts(z, gamma) {
    // log p, log(1 - p) and (1 - p)^gamma, each accurate for p near 0 and near 1 (see losses.py).
    const logp = softmaxParts(z).logp;
    const top = argmax(z);
    // For the most likely class 1 - p is the mass of the others: a leave-one-out logsumexp.
    const logQTop = logsumexp(z.map((v, i) => (i === top ? -Infinity : v))) - logsumexp(z);
    // Every other class has p <= 1/2, where log(1 - p) = log(-expm1(log p)) is accurate.
    const logq = logp.map((lp) => Math.log(-Math.expm1(Math.min(lp, -Math.log(2)))));
    logq[top] = logQTop;
    logp[top] = Math.log1p(-Math.exp(logQTop));
    return { logp, logq, qGamma: logq.map((lq) => Math.exp(gamma * lq)) };
  }

  function smoothed(y, epsilon) {
    return y.map((yi) => (1 - epsilon) * yi + epsilon / y.length);
  }

  const MULTICLASS = {
    cross_entropy: { values: crossEntropyValues, grad: crossEntropyGrad },
    mse: {
      // Eq. (31): 1/2 ||p - y||^2; its gradient (diag p - p p^T)(p - y) carries a factor p.
      values(z, y) {
        const { p } = softmaxParts(z);
        return 0.5 * sum(p.map((pi, i) => square(pi - y[i])));
      },
      grad(z, y) {
        const { p } = softmaxParts(z);
        const v = p.map((pi, i) => pi - y[i]);
        const pv = sum(p.map((pi, i) => pi * v[i]));
        return p.map((pi, i) => pi * (v[i] - pv));
      },
    },
    square_logits: {
      // Hui & Belkin: (1/K) sum_i w_i (z_i - M y_i)^2 with w_i = 1 + (k - 1) y_i; no softmax.
      values(z, y, q) {
        return sum(z.map((zi, i) => (1 + (q.k - 1) * y[i]) * square(zi - q.M * y[i]))) / z.length;
      },
      grad(z, y, q) {
        return z.map((zi, i) => (2 * (1 + (q.k - 1) * y[i]) * (zi - q.M * y[i])) / z.length);
      },
    },
    focal: {
      values(z, y, q) {
        const { logp, qGamma } = focalParts(z, q.gamma);
        return -sum(y.map((yi, i) => yi * qGamma[i] * logp[i]));
      },
      grad(z, y, q) {
        // dL/dz_j = a_j - p_j sum_i a_i, a_i = -y_i (1 - p_i)^gamma (1 - gamma p_i log p_i / (1 - p_i)).
        const gamma = q.gamma;
        const { logp, logq, qGamma } = focalParts(z, gamma);
        const a = y.map((yi, i) => {
          const p = Math.exp(logp[i]);
          const qi = Math.exp(logq[i]);
          // p log p / (1 - p) -> -1 + q/2 as q -> 0, where the quotient would be 0/0.
          const ratio = logq[i] < -20 ? qi / 2 - 1 : (p * logp[i]) / qi;
          return -yi * qGamma[i] * (1 - gamma * ratio);
        });
        const aSum = sum(a);
        return a.map((ai, i) => ai - Math.exp(logp[i]) * aSum);
      },
    },
    label_smoothing_cross_entropy: {
      values: (z, y, q) => crossEntropyValues(z, smoothed(y, q.epsilon)),
      grad: (z, y, q) => crossEntropyGrad(z, smoothed(y, q.epsilon)),
    },
    squentropy: {
      // Hui, Belkin & Wright: cross-entropy + (1/(K-1)) sum_i (1 - y_i) z_i^2, the incorrect classes' squared logits.
      values: (z, y) => crossEntropyValues(z, y) + sum(z.map((zi, i) => (1 - y[i]) * square(zi))) / (z.length - 1),
      grad(z, y) {
        const ce = crossEntropyGrad(z, y);
        return z.map((zi, i) => ce[i] + (2 * (1 - y[i]) * zi) / (z.length - 1));
      },
    },
  };

  function sigmoid(x) {
    return 1 / (1 + Math.exp(-x));
  }

  function logSigmoid(x) {
    // min(x, 0) - log1p(exp(-|x|)): finite in both tails, where log(sigmoid(x)) is log(0).
    return Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
  }

  const BINARY = {
    binary_cross_entropy: {
      values: (z, y) => -(y * logSigmoid(z) + (1 - y) * logSigmoid(-z)),
      grad: (z, y) => sigmoid(z) - y,
    },
    mse: {
      values: (z, y) => 0.5 * square(sigmoid(z) - y),
      // (p - y) p (1 - p), with p (1 - p) = sigmoid(z) sigmoid(-z) to keep both tails precise.
      grad: (z, y) => (sigmoid(z) - y) * sigmoid(z) * sigmoid(-z),
    },
  };

  function marginLogits(m, K) {
    // landscape.margin_logits: z_true = max(m, 0), one rival z_1 = max(-m, 0), the rest 0; true class 0.
    const z = new Array(K).fill(0);
    z[0] = Math.max(m, 0);
    z[1] = Math.max(-m, 0);
    return z;
  }

  function oneHot(K) {
    const y = new Array(K).fill(0);
    y[0] = 1;
    return y;
  }

  // The rows of the gradient explorer: each built-in loss of losslab.core.LOSSES, on the K-logit
  // softmax model, and the two with a one-logit form on the sigmoid model (shown for K = 2).
  // tests/test_explore.py fails, naming the loss, when a built-in loss is missing here.
  const LOSS_ROWS = [
    { key: "cross_entropy", loss: "cross_entropy", model: "softmax", label: t("figure.loss.cross_entropy"),
      color: "#0072B2", dash: "", formula: "L = −log p_c;  ∂L/∂z = p − y" },
    { key: "mse", loss: "mse", model: "softmax", label: t("figure.loss.mse"),
      color: "#D55E00", dash: "7 4", formula: "L = ½‖p − y‖²;  ∂L/∂z = (diag p − ppᵀ)(p − y)" },
    { key: "square_logits", loss: "square_logits", model: "softmax", label: t("figure.loss.square_logits"),
      color: "#009E73", dash: "10 3 2 3", formula: "L = (1/K)[k(z_c − M)² + Σ_{i≠c} z_i²];  ∂L/∂z_i = (2/K) w_i (z_i − M y_i)" },
    { key: "focal", loss: "focal", model: "softmax", label: t("explore.loss.focal"), color: "#CC79A7", dash: "2 3",
      formula: "L = −(1 − p_c)^γ log p_c" },
    { key: "label_smoothing_cross_entropy", loss: "label_smoothing_cross_entropy", model: "softmax",
      label: t("explore.loss.label_smoothing_cross_entropy"), color: "#E69F00", dash: "12 4",
      formula: "L = −Σ y′_i log p_i, y′ = (1 − ε)y + ε/K;  ∂L/∂z = p − y′" },
    { key: "squentropy", loss: "squentropy", model: "softmax", label: t("explore.loss.squentropy"),
      color: "#882255", dash: "6 2 2 2",
      formula: "L = −log p_c + (1/(K−1)) Σ_{i≠c} z_i²;  ∂L/∂z = p − y + 2(1 − y) z/(K − 1)" },
    { key: "binary_cross_entropy", loss: "binary_cross_entropy", model: "sigmoid",
      label: t("figure.loss.binary_cross_entropy"), color: "#56B4E9", dash: "4 2 1 2",
      formula: "L = −log σ(z);  ∂L/∂z = σ(z) − 1" },
    { key: "sigmoid_mse", loss: "mse", model: "sigmoid", label: t("explore.loss.sigmoid_mse"),
      color: "#000000", dash: "1 3", formula: "L = ½(σ(z) − 1)²;  ∂L/∂z = (σ(z) − 1) σ(z) σ(−z)" },
  ];
  const ROW_BY_KEY = Object.fromEntries(LOSS_ROWS.map((r) => [r.key, r]));
  const DEAD = DATA.dead_epsilon; // the dead zone: wrongly classified margins with logit-gradient norm below this
  const LOWER = -50; // the dead zone is searched in [LOWER, 0), as landscape.dead_zone does

  function rowVisible(row, K) {
    return row.model === "softmax" || K === 2;
  }

  function evaluate(row, m, K, params) {
    if (row.model === "sigmoid") {
      const f = BINARY[row.loss];
      const g = f.grad(m, 1);
      return { z: [m], value: f.values(m, 1), grad: [g], norm: Math.abs(g) };
    }
    const f = MULTICLASS[row.loss];
    const z = marginLogits(m, K);
    const y = oneHot(K);
    const grad = f.grad(z, y, params);
    return { z, value: f.values(z, y, params), grad, norm: Math.sqrt(sum(grad.map(square))) };
  }

  const deadCache = new Map();

  function deadZone(row, K, params) {
    // Wrongly classified margins in [-50, 0) whose gradient norm is below 1e-3, as intervals; each
    // boundary is refined by bisection from a grid of 2000 margins.
    const key = [row.key, K, params.gamma, params.epsilon, params.k, params.M].join("|");
    if (deadCache.has(key)) return deadCache.get(key);
    const isDead = (m) => evaluate(row, m, K, params).norm < DEAD;
    const bisect = (a, b) => {
      const deadAtA = isDead(a);
      for (let i = 0; i < 80; i++) {
        const mid = (a + b) / 2;
        if (mid === a || mid === b) break;
        if (isDead(mid) === deadAtA) a = mid;
        else b = mid;
      }
      return (a + b) / 2;
    };
    const N = 2000;
    const intervals = [];
    let start = null;
    let previous = null;
    for (let j = 0; j < N; j++) {
      const m = LOWER + (j * -LOWER) / N;
      const dead = isDead(m);
      if (j === 0) {
        if (dead) start = LOWER;
      } else if (dead !== previous.dead) {
        const edge = bisect(previous.m, m);
        if (dead) start = edge;
        else {
          intervals.push([start, edge]);
          start = null;
        }
      }
      previous = { m, dead };
    }
    if (start !== null) intervals.push([start, 0]);
    if (deadCache.size > 500) deadCache.clear();
    deadCache.set(key, intervals);
    return intervals;
  }

  // =============================================================================================
  // 2. Nielsen's neuron: input x = 1, target y = 0, one gradient step per epoch
  // =============================================================================================

  const NEURON_X = 1;
  const NEURON_Y = 0;

  function trainNeuron(w0, b0, eta, epochs, loss) {
    // Returns w, b, a, cost and dC/db before each step, for epochs 0..epochs.
    const out = { w: [], b: [], a: [], cost: [], grad: [] };
    let w = w0;
    let b = b0;
    for (let t = 0; t <= epochs; t++) {
      const z = w * NEURON_X + b;
      const a = sigmoid(z);
      let cost;
      let dz;
      if (loss === "mse") {
        cost = square(a - NEURON_Y) / 2;
        dz = (a - NEURON_Y) * (sigmoid(z) * sigmoid(-z)); // (a - y) sigma'(z)
      } else {
        cost = -(NEURON_Y * logSigmoid(z) + (1 - NEURON_Y) * logSigmoid(-z));
        dz = a - NEURON_Y; // sigma'(z) cancelled
      }
      out.w.push(w);
      out.b.push(b);
      out.a.push(a);
      out.cost.push(cost);
      out.grad.push(dz);
      w -= eta * dz * NEURON_X;
      b -= eta * dz;
    }
    return out;
  }

  const NEURON_RUNS = [
    { key: "mse", label: t("explore.neuron.run_mse"), title: t("explore.neuron.title_mse"), color: "#D55E00",
      dash: "7 4", chart: "chart-cost-mse" },
    { key: "ce", label: t("explore.neuron.run_ce"), title: t("explore.neuron.title_ce"), color: "#0072B2", dash: "",
      chart: "chart-cost-ce" },
  ];

  // =============================================================================================
  // 3. State in the URL fragment
  // =============================================================================================

  const SPEC = {
    tab: { kind: "enum", values: ["gradient", "neuron", "measured"], def: "gradient" },
    margin: { kind: "num", min: -50, max: 50, def: -4 },
    K: { kind: "int", min: 2, max: 100, def: 3 },
    gamma: { kind: "num", min: 0, max: 5, def: 2 },
    epsilon: { kind: "num", min: 0, max: 0.95, def: 0.1 },
    k: { kind: "num", min: 0.01, max: 50, def: 1 },
    M: { kind: "num", min: 0.01, max: 50, def: 1 },
    focus: { kind: "enum", values: LOSS_ROWS.map((r) => r.key), def: "mse" },
    hide: { kind: "list", values: LOSS_ROWS.map((r) => r.key), def: [] },
    view: { kind: "enum", values: ["10", "20", "50"], def: "20" },
    vscale: { kind: "enum", values: ["log", "lin"], def: "log" },
    w: { kind: "num", min: -5, max: 5, def: 2 },
    b: { kind: "num", min: -5, max: 5, def: 2 },
    eta: { kind: "num", min: 0.001, max: 10, def: 0.15 },
    epochs: { kind: "int", min: 1, max: 5000, def: 300 },
    epoch: { kind: "int", min: 0, max: 5000, def: 300 },
    cell: { kind: "str", def: "" },
    step: { kind: "int", min: -1, max: 1e9, def: -1 }, // -1: the last evaluation
    hidescales: { kind: "str", def: "" },
    bands: { kind: "enum", values: ["1", "0"], def: "1" },
  };

  function defaults() {
    const s = {};
    for (const [key, spec] of Object.entries(SPEC)) s[key] = Array.isArray(spec.def) ? [...spec.def] : spec.def;
    return s;
  }

  function parseValue(key, text) {
    // Returns [value, ok]; a bad value falls back to the default and is reported in the notice.
    const spec = SPEC[key];
    if (spec.kind === "num" || spec.kind === "int") {
      const v = Number(text);
      if (text === "" || !Number.isFinite(v) || (spec.kind === "int" && !Number.isInteger(v))) return [spec.def, false];
      if (v < spec.min || v > spec.max) return [Math.min(spec.max, Math.max(spec.min, v)), false];
      return [v, true];
    }
    if (spec.kind === "enum") return spec.values.includes(text) ? [text, true] : [spec.def, false];
    if (spec.kind === "list") {
      const items = text === "" ? [] : text.split(",");
      const good = items.filter((x) => spec.values.includes(x));
      return [good, good.length === items.length];
    }
    return [text, true];
  }

  function readHash() {
    const s = defaults();
    const bad = [];
    const hash = location.hash.replace(/^#/, "");
    if (!hash) return { state: s, bad };
    for (const part of hash.split("&")) {
      if (!part) continue;
      const eq = part.indexOf("=");
      let key;
      let text;
      try {
        key = decodeURIComponent(eq < 0 ? part : part.slice(0, eq));
        text = eq < 0 ? "" : decodeURIComponent(part.slice(eq + 1));
      } catch (err) {
        bad.push(part);
        continue;
      }
      if (!Object.prototype.hasOwnProperty.call(SPEC, key)) {
        bad.push(key);
        continue;
      }
      const [value, ok] = parseValue(key, text);
      s[key] = value;
      if (!ok) bad.push(`${key}=${text}`);
    }
    return { state: s, bad };
  }

  function hashOf(s) {
    return Object.keys(SPEC)
      .map((key) => {
        const v = Array.isArray(s[key]) ? s[key].join(",") : String(s[key]);
        return `${key}=${encodeURIComponent(v).replace(/%2C/g, ",")}`;
      })
      .join("&");
  }

  let state = defaults();

  // Chromium drops URL updates beyond about 200 in 10 s (a fast slider drag makes more), so the fragment
  // is written at most every 250 ms, and once more after the last change: it always ends up current.
  const HASH_INTERVAL_MS = 250;
  let hashTimer = null;
  let lastHashWrite = -Infinity;

  function flushHash() {
    clearTimeout(hashTimer);
    hashTimer = null;
    lastHashWrite = performance.now();
    const hash = "#" + hashOf(state);
    if (location.hash === hash) return;
    try {
      history.replaceState(null, "", hash); // no history entry per slider move
    } catch (err) {
      location.replace(hash);
    }
  }

  function writeHash() {
    const wait = lastHashWrite + HASH_INTERVAL_MS - performance.now();
    if (wait <= 0) flushHash();
    else if (hashTimer === null) hashTimer = setTimeout(flushHash, wait);
  }
  window.losslabFlushHash = flushHash; // tests read the fragment at once rather than wait for the timer

  // =============================================================================================
  // 4. Formatting and SVG charts
  // =============================================================================================

  const SVG_NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, parent, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(tag, attrs, parent, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

  function fmt(v, digits = 4) {
    // Human-readable: 4 significant digits, written as a power of ten below 1e-3 and from 1e5.
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (v === 0) return "0";
    const a = Math.abs(v);
    let text;
    if (a >= 1e-3 && a < 1e5) text = String(Number(v.toPrecision(digits)));
    else {
      const [mant, exp] = v.toExponential(digits - 1).split("e");
      const sup = String(Number(exp)).replace(/./g, (c) => SUPERSCRIPT[c]);
      text = `${Number(mant)}×10${sup}`;
    }
    return text.replace(/-/g, "−"); // a typographic minus
  }

  function setNumber(node, v, digits) {
    // The text is rounded for reading; data-value keeps the exact double (tests read it) and the
    // tooltip shows it.
    node.textContent = fmt(v, digits);
    node.dataset.value = String(v);
    node.title = String(v);
  }

  function niceTicks(min, max, count) {
    const span = max - min;
    if (!(span > 0)) return [min];
    const raw = span / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => span / s <= count) || 10 * mag;
    const ticks = [];
    for (let t = Math.ceil(min / step - 1e-9) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
    return ticks;
  }

  function decadeRange(values, floor, ceiling) {
    const pos = values.filter((v) => v > 0 && Number.isFinite(v));
    if (!pos.length) return [1e-6, 1];
    let lo = Math.floor(Math.log10(Math.min(...pos)));
    let hi = Math.ceil(Math.log10(Math.max(...pos)));
    lo = Math.max(lo, floor);
    hi = Math.min(Math.max(hi, lo + 1), ceiling);
    return [Math.pow(10, lo), Math.pow(10, hi)];
  }

  function drawChart(svg, spec) {
    // spec: {title, x: {min, max, label}, y: {min, max, log, label, percent}, lines: [{xs, ys, color,
    // dash, width, key}], areas: [{xs, lo, hi, color}], bands: [{from, to, label}], hlines: [{y, label}],
    // marker: x, points: [{x, y, color}]}. Values outside the y range are drawn at its edge.
    const W = spec.width || 600;
    const H = spec.height || 340;
    // A labelled threshold line writes its label in the right margin, never on the curves.
    const labelled = (spec.hlines || []).some((h) => h.label);
    const pad = { l: 64, r: labelled ? 78 : 16, t: 28, b: 46 };
    const X0 = pad.l;
    const X1 = W - pad.r;
    const Y0 = H - pad.b;
    const Y1 = pad.t;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const { x, y } = spec;
    const sx = (v) => X0 + ((v - x.min) / (x.max - x.min)) * (X1 - X0);
    const ly = (v) => (y.log ? Math.log10(v) : v);
    const yLo = ly(y.min);
    const yHi = ly(y.max);
    const sy = (v) => {
      if (v === null || v === undefined || Number.isNaN(v)) return null;
      let t = y.log ? (v > 0 ? Math.log10(v) : -Infinity) : v;
      t = Math.min(Math.max(t, yLo - 0.02 * (yHi - yLo)), yHi + 0.02 * (yHi - yLo));
      return Y0 - ((t - yLo) / (yHi - yLo)) * (Y0 - Y1);
    };
    const clipId = `clip-${svg.id}`;
    el("rect", { x: X0, y: Y1, width: X1 - X0, height: Y0 - Y1 }, el("clipPath", { id: clipId }, el("defs", {}, svg)));
    el("text", { x: X0, y: 17, class: "chart-title" }, svg, spec.title || "");
    const grid = el("g", { class: "grid" }, svg);
    const axis = el("g", { class: "axis" }, svg);
    // y ticks
    let yTicks;
    if (y.log) {
      const lo = Math.round(yLo);
      const hi = Math.round(yHi);
      const every = Math.max(1, Math.ceil((hi - lo) / 8));
      yTicks = [];
      for (let e = lo; e <= hi; e += every) yTicks.push(e);
    } else yTicks = niceTicks(y.min, y.max, 6);
    for (const t of yTicks) {
      const py = Y0 - ((t - yLo) / (yHi - yLo)) * (Y0 - Y1);
      el("line", { x1: X0, x2: X1, y1: py, y2: py }, grid);
      el("line", { x1: X0 - 4, x2: X0, y1: py, y2: py }, axis);
      const label = el("text", { x: X0 - 7, y: py + 4, "text-anchor": "end" }, axis);
      if (y.log) {
        if (t === 0) label.textContent = "1";
        else {
          label.textContent = "10";
          el("tspan", { dy: -5, "font-size": "9px" }, label, String(t).replace("-", "−"));
        }
      } else label.textContent = y.percent ? `${Math.round(t * 100)}%` : String(t).replace("-", "−");
    }
    for (const t of niceTicks(x.min, x.max, 8)) {
      const px = sx(t);
      el("line", { x1: px, x2: px, y1: Y1, y2: Y0 }, grid);
      el("line", { x1: px, x2: px, y1: Y0, y2: Y0 + 4 }, axis);
      el("text", { x: px, y: Y0 + 17, "text-anchor": "middle" }, axis, String(t).replace("-", "−"));
    }
    el("line", { x1: X0, x2: X1, y1: Y0, y2: Y0 }, axis);
    el("line", { x1: X0, x2: X0, y1: Y1, y2: Y0 }, axis);
    el("text", { x: (X0 + X1) / 2, y: H - 8, "text-anchor": "middle", class: "axis-label" }, svg, x.label);
    el("text", { x: 14, y: (Y0 + Y1) / 2, "text-anchor": "middle", class: "axis-label",
      transform: `rotate(-90 14 ${(Y0 + Y1) / 2})` }, svg, y.label);
    const plot = el("g", { "clip-path": `url(#${clipId})` }, svg);
    for (const band of spec.bands || []) {
      const a = sx(Math.max(band.from, x.min));
      const b = sx(Math.min(band.to, x.max));
      if (b <= a) continue;
      el("rect", { x: a, y: Y1, width: b - a, height: Y0 - Y1, class: "dead-band",
        "data-from": band.from, "data-to": band.to }, plot);
      if (band.label && b - a > 60) el("text", { x: a + 5, y: Y0 - 6, class: "band-label" }, plot, band.label);
    }
    for (const area of spec.areas || []) {
      const top = [];
      const bottom = [];
      area.xs.forEach((xv, i) => {
        if (area.lo[i] === null || area.hi[i] === null) return;
        top.push(`${sx(xv).toFixed(2)},${sy(area.hi[i]).toFixed(2)}`);
        bottom.unshift(`${sx(xv).toFixed(2)},${sy(area.lo[i]).toFixed(2)}`);
      });
      if (top.length) el("polygon", { points: top.concat(bottom).join(" "), fill: area.color, opacity: 0.1 }, plot);
    }
    for (const h of spec.hlines || []) {
      const py = sy(h.y);
      el("line", { x1: X0, x2: X1, y1: py, y2: py, class: "threshold" }, plot);
      if (h.label) el("text", { x: X1 + 5, y: py + 4, "text-anchor": "start", class: "band-label" }, svg, h.label);
    }
    for (const line of spec.lines || []) {
      let d = "";
      let pen = false;
      line.xs.forEach((xv, i) => {
        const py = sy(line.ys[i]);
        if (py === null) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${sx(xv).toFixed(2)} ${py.toFixed(2)}`;
        pen = true;
      });
      el("path", { d, fill: "none", stroke: line.color, "stroke-width": line.width || 2,
        "stroke-dasharray": line.dash || "none", "stroke-linejoin": "round", "data-key": line.key || "" }, plot);
    }
    if (spec.marker !== undefined && spec.marker >= x.min && spec.marker <= x.max) {
      el("line", { x1: sx(spec.marker), x2: sx(spec.marker), y1: Y1, y2: Y0, class: "marker" }, plot);
    }
    for (const p of spec.points || []) {
      const py = sy(p.y);
      if (py !== null && p.x >= x.min && p.x <= x.max) {
        el("circle", { cx: sx(p.x), cy: py, r: 4, fill: p.color, stroke: "#fff", "stroke-width": 1 }, plot);
      }
    }
  }

  function lighten(hex, fraction) {
    // Mix a "#rrggbb" colour with white: 0 keeps it, 1 gives white.
    const channel = (i) => parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16);
    const mixed = [0, 1, 2].map((i) => Math.round(channel(i) + (255 - channel(i)) * fraction));
    return `#${mixed.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
  }

  function swatch(color, dash) {
    const svg = el("svg", { viewBox: "0 0 34 12", "aria-hidden": "true" });
    el("line", { x1: 1, x2: 33, y1: 6, y2: 6, stroke: color, "stroke-width": 2.5, "stroke-dasharray": dash || "none" }, svg);
    return svg;
  }

  // A table row whose first cell is an entry's colour and name ({color, label}); the caller adds the rest.
  function namedRow(tbody, attrs, entry) {
    const tr = html("tr", attrs, tbody);
    const name = html("td", {}, tr);
    html("span", { class: "swatch", style: `background:${entry.color}` }, name);
    name.append(entry.label);
    return tr;
  }

  // =============================================================================================
  // 5. Section 1: the gradient explorer
  // =============================================================================================

  function params() {
    return { gamma: state.gamma, epsilon: state.epsilon, k: state.k, M: state.M };
  }

  function vectorText(g) {
    // On the margin path every class after the rival has the same gradient: write it once.
    if (g.length <= 4) return `[${g.map((v) => fmt(v, 3)).join(", ")}]`;
    return `[${fmt(g[0], 3)}, ${fmt(g[1], 3)}, ${fmt(g[2], 3)} × ${g.length - 2}]`;
  }

  function describeDead(intervals) {
    if (!intervals.length) return { text: t("explore.gradient.dead_none"), threshold: "" };
    if (intervals.length === 1 && intervals[0][0] === LOWER) {
      const edge = intervals[0][1];
      const text = edge === 0 ? t("explore.gradient.dead_all") : t("explore.gradient.dead_below", { threshold: fmt(edge, 4) });
      return { text, threshold: String(edge) };
    }
    return { text: intervals.map(([a, b]) => `[${fmt(a, 4)}, ${fmt(b, 4)}]`).join(", "), threshold: "" };
  }

  function buildGradientControls() {
    const focus = document.getElementById("focus");
    for (const row of LOSS_ROWS) {
      html("option", { value: row.key }, focus, row.model === "sigmoid" ? t("explore.gradient.one_logit", { loss: row.label }) : row.label);
    }
    for (const option of document.getElementById("view").options) {
      option.textContent = t("explore.gradient.view_range", { low: fmt(-Number(option.value)), high: option.value });
    }
    const legend = document.getElementById("gradient-legend");
    for (const row of LOSS_ROWS) {
      const label = html("label", { "data-key": row.key }, legend);
      const box = html("input", { type: "checkbox", "data-loss": row.key }, label);
      box.addEventListener("change", () => {
        const hidden = new Set(state.hide);
        if (box.checked) hidden.delete(row.key);
        else hidden.add(row.key);
        update({ hide: LOSS_ROWS.map((r) => r.key).filter((k) => hidden.has(k)) });
      });
      label.appendChild(swatch(row.color, row.dash));
      label.append(row.label);
    }
    const tbody = document.querySelector("#gradient-table tbody");
    for (const row of LOSS_ROWS) {
      const tr = namedRow(tbody, { "data-row": row.key }, row);
      html("td", { class: "model" }, tr);
      html("td", { class: "num value" }, tr);
      html("td", { class: "num norm" }, tr);
      html("td", { class: "num grad" }, tr);
      html("td", { class: "dead" }, tr);
      html("td", { class: "formula" }, tr, row.formula);
    }
  }

  function renderGradient() {
    const K = state.K;
    const q = params();
    const m = state.margin;
    let R = Number(state.view);
    if (Math.abs(m) > R) R = [10, 20, 50].find((r) => r >= Math.abs(m));
    const n = 401;
    const xs = Array.from({ length: n }, (_, i) => -R + (2 * R * i) / (n - 1));
    const visible = LOSS_ROWS.filter((r) => rowVisible(r, K));
    const shown = visible.filter((r) => !state.hide.includes(r.key));
    const curves = shown.map((row) => {
      const pts = xs.map((x) => evaluate(row, x, K, q));
      return { row, values: pts.map((p) => p.value), norms: pts.map((p) => p.norm) };
    });
    const focusRow = ROW_BY_KEY[state.focus];
    const bands = [];
    if (rowVisible(focusRow, K)) {
      for (const [a, b] of deadZone(focusRow, K, q)) bands.push({ from: a, to: b, label: t("explore.gradient.dead_band", { loss: focusRow.label }) });
    }
    const here = Object.fromEntries(visible.map((row) => [row.key, evaluate(row, m, K, q)]));
    const allValues = curves.flatMap((c) => c.values);
    const allNorms = curves.flatMap((c) => c.norms);
    const valueAxis = state.vscale === "log"
      ? (() => { const [lo, hi] = decadeRange(allValues, -12, 6); return { min: lo, max: hi, log: true }; })()
      : { min: 0, max: Math.max(1e-9, ...allValues.filter(Number.isFinite)) * 1.05, log: false };
    const [nlo, nhi] = decadeRange(allNorms.concat([DEAD]), -12, 6);
    drawChart(document.getElementById("chart-value"), {
      title: t("explore.gradient.value_title", { K }),
      x: { min: -R, max: R, label: t("explore.gradient.margin_axis") },
      y: { ...valueAxis, label: state.vscale === "log" ? t("explore.gradient.loss_axis_log") : t("explore.gradient.loss_axis") },
      bands,
      lines: curves.map((c) => ({ xs, ys: c.values, color: c.row.color, dash: c.row.dash, key: c.row.key })),
      marker: m,
      points: shown.map((row) => ({ x: m, y: here[row.key].value, color: row.color })),
    });
    drawChart(document.getElementById("chart-grad"), {
      title: t("explore.gradient.grad_title", { K }),
      x: { min: -R, max: R, label: t("explore.gradient.margin_axis") },
      y: { min: nlo, max: nhi, log: true, label: t("explore.gradient.norm_axis") },
      bands,
      hlines: [{ y: DEAD, label: powerOfTen(DEAD) }],
      lines: curves.map((c) => ({ xs, ys: c.norms, color: c.row.color, dash: c.row.dash, key: c.row.key })),
      marker: m,
      points: shown.map((row) => ({ x: m, y: here[row.key].norm, color: row.color })),
    });
    // The logits and probabilities at the slider's margin.
    const z = marginLogits(m, K);
    const p = softmaxParts(z).p;
    const point = document.getElementById("gradient-point");
    const compact = (v) => (v.length <= 4 ? `[${v.map((x) => fmt(x, 3)).join(", ")}]` :
      `[${fmt(v[0], 3)}, ${fmt(v[1], 3)}, ${fmt(v[2], 3)} × ${v.length - 2}]`);
    let verdict = t("explore.gradient.verdict_tie");
    if (m < 0) verdict = t("explore.gradient.verdict_wrong", { lead: fmt(-m, 3) });
    else if (m > 0) verdict = t("explore.gradient.verdict_right");
    point.textContent = t("explore.gradient.point", {
      m: fmt(m, 4),
      K,
      z: compact(z),
      p: compact(p),
      p_true: fmt(p[0], 4),
      verdict,
      sigmoid: K === 2 ? t("explore.gradient.point_sigmoid", { value: fmt(sigmoid(m), 4) }) : "",
      ratio: m < 0 ? t("explore.gradient.point_ratio", { ratio: fmt(here.cross_entropy.norm / here.mse.norm, 3) }) : "",
    });
    point.dataset.margin = String(m);
    for (const row of LOSS_ROWS) {
      const tr = document.querySelector(`#gradient-table tr[data-row="${row.key}"]`);
      const show = rowVisible(row, K);
      tr.hidden = !show;
      if (!show) continue;
      const r = here[row.key];
      tr.querySelector(".model").textContent = row.model === "softmax" ? t("explore.gradient.model_softmax", { K }) : t("explore.gradient.model_sigmoid");
      setNumber(tr.querySelector(".value"), r.value);
      setNumber(tr.querySelector(".norm"), r.norm);
      const g = tr.querySelector(".grad");
      g.textContent = row.model === "sigmoid" ? fmt(r.grad[0], 4) : vectorText(r.grad);
      g.dataset.value = JSON.stringify(r.grad);
      const dz = describeDead(deadZone(row, K, q));
      const deadCell = tr.querySelector(".dead");
      deadCell.textContent = dz.text;
      deadCell.dataset.threshold = dz.threshold;
      const deadNow = m < 0 && r.norm < DEAD;
      tr.classList.toggle("dead", deadNow);
      if (deadNow) html("span", { class: "tag-dead" }, deadCell, t("explore.gradient.dead_here"));
    }
    for (const option of document.getElementById("focus").options) option.disabled = !rowVisible(ROW_BY_KEY[option.value], K);
    for (const box of document.querySelectorAll("#gradient-legend input")) {
      const row = ROW_BY_KEY[box.dataset.loss];
      box.checked = !state.hide.includes(row.key);
      box.parentElement.hidden = !rowVisible(row, K);
    }
  }

  // =============================================================================================
  // 6. Section 2: Nielsen's neuron
  // =============================================================================================

  let neuronCache = null;

  function neuronRuns() {
    const key = [state.w, state.b, state.eta, state.epochs].join("|");
    if (!neuronCache || neuronCache.key !== key) {
      neuronCache = { key, runs: Object.fromEntries(NEURON_RUNS.map((r) => [r.key, trainNeuron(state.w, state.b, state.eta, state.epochs, r.key)])) };
    }
    return neuronCache.runs;
  }

  function buildNeuronControls() {
    const legend = document.getElementById("neuron-legend");
    for (const run of NEURON_RUNS) {
      const label = html("label", {}, legend);
      label.appendChild(swatch(run.color, run.dash));
      label.append(t("explore.neuron.trained_with", { cost: run.label }));
    }
    const tbody = document.querySelector("#neuron-table tbody");
    for (const run of NEURON_RUNS) {
      const tr = namedRow(tbody, { "data-run": run.key }, run);
      for (const cls of ["epoch", "w", "b", "a", "cost", "grad", "half"]) html("td", { class: `num ${cls}` }, tr);
    }
    for (const button of document.querySelectorAll("button.preset")) {
      button.addEventListener("click", () =>
        update({ w: Number(button.dataset.w), b: Number(button.dataset.b), eta: 0.15, epochs: 300, epoch: 300 }));
    }
    document.getElementById("play").addEventListener("click", play);
  }

  let playing = null;

  function play() {
    if (playing) cancelAnimationFrame(playing);
    const started = performance.now();
    const total = state.epochs;
    const duration = 4000;
    const frame = (now) => {
      const t = Math.min(1, (now - started) / duration);
      state.epoch = Math.round(t * total);
      syncControls();
      renderNeuron();
      if (t < 1) playing = requestAnimationFrame(frame);
      else {
        playing = null;
        writeHash();
      }
    };
    playing = requestAnimationFrame(frame);
  }

  function renderNeuron() {
    const runs = neuronRuns();
    const E = state.epochs;
    const epoch = Math.min(state.epoch, E);
    const xs = Array.from({ length: E + 1 }, (_, i) => i);
    const visibleUpTo = (values) => values.map((v, i) => (i <= epoch ? v : null));
    const xAxis = { min: 0, max: E, label: t("explore.neuron.epoch_axis") };
    drawChart(document.getElementById("chart-output"), {
      width: 440,
      height: 320,
      title: t("explore.neuron.output_title", { w: fmt(state.w), b: fmt(state.b), eta: fmt(state.eta) }),
      x: xAxis,
      y: { min: 0, max: 1, label: "a = σ(w + b)" },
      lines: NEURON_RUNS.map((r) => ({ xs, ys: visibleUpTo(runs[r.key].a), color: r.color, dash: r.dash, key: r.key })),
      marker: epoch,
      points: NEURON_RUNS.map((r) => ({ x: epoch, y: runs[r.key].a[epoch], color: r.color })),
    });
    for (const r of NEURON_RUNS) {
      const cost = runs[r.key].cost;
      drawChart(document.getElementById(r.chart), {
        width: 440,
        height: 320,
        title: r.title,
        x: xAxis,
        y: { min: 0, max: Math.max(...cost) * 1.05 || 1, label: t("explore.neuron.cost_axis") },
        lines: [{ xs, ys: visibleUpTo(cost), color: r.color, dash: r.dash, key: r.key }],
        marker: epoch,
        points: [{ x: epoch, y: cost[epoch], color: r.color }],
      });
      const tr = document.querySelector(`#neuron-table tr[data-run="${r.key}"]`);
      const run = runs[r.key];
      tr.querySelector(".epoch").textContent = String(epoch);
      tr.querySelector(".epoch").dataset.value = String(epoch);
      for (const field of ["w", "b", "a", "cost", "grad"]) setNumber(tr.querySelector(`.${field}`), run[field][epoch]);
      const half = run.a.findIndex((a) => a < 0.5);
      tr.querySelector(".half").textContent = half < 0 ? t("explore.neuron.not_within", { epochs: E }) : String(half);
    }
  }

  // =============================================================================================
  // 7. Section 3: measured training
  // =============================================================================================

  const MEASURED = DATA.measured;
  const MEASURED_COLORS = { cross_entropy: "#0072B2", binary_cross_entropy: "#0072B2", mse: "#D55E00" };
  const OTHER_COLORS = ["#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
  const SCALE_DASHES = ["", "7 4", "2 3", "10 3 2 3", "12 4"];

  const MEASURED_NAMES = {
    cross_entropy: t("figure.loss.cross_entropy"),
    binary_cross_entropy: t("figure.loss.binary_cross_entropy"),
    mse: t("explore.measured.mse"),
  };

  function seriesLabel(s) {
    const name = MEASURED_NAMES[s.loss] || s.loss;
    const params = Object.entries(s.params || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    return params ? t("explore.measured.series_params", { loss: name, params }) : name;
  }

  function currentCell() {
    if (!MEASURED || !MEASURED.cells.length) return null;
    return MEASURED.cells.find((c) => c.cell === state.cell) || MEASURED.cells[0];
  }

  function buildMeasuredControls() {
    const empty = !MEASURED || !MEASURED.cells.length;
    document.getElementById("measured-empty").hidden = !empty;
    document.getElementById("measured-body").hidden = empty;
    if (empty) return;
    const select = document.getElementById("cell");
    for (const c of MEASURED.cells) {
      const text = t("explore.measured.cell_option", { cell: c.cell, dataset: c.dataset, model: c.model, K: c.num_classes });
      html("option", { value: c.cell }, select, text);
    }
    select.addEventListener("change", () => update({ cell: select.value, step: -1, hidescales: "" }));
  }

  function stepIndex(cell) {
    if (state.step < 0) return cell.steps.length - 1;
    let best = 0;
    cell.steps.forEach((s, i) => {
      if (Math.abs(s - state.step) < Math.abs(cell.steps[best] - state.step)) best = i;
    });
    return best;
  }

  function renderMeasured() {
    const cell = currentCell();
    if (!cell) return;
    document.getElementById("cell").value = cell.cell;
    const scales = [...new Set(cell.series.map((s) => s.init_scale))].sort((a, b) => a - b);
    const hidden = new Set(state.hidescales.split(",").filter(Boolean).map(Number));
    const boxes = document.getElementById("scale-boxes");
    boxes.textContent = t("explore.measured.scales");
    for (const scale of scales) {
      const label = html("label", { class: "scale" }, boxes);
      const box = html("input", { type: "checkbox", "data-scale": scale }, label);
      box.checked = !hidden.has(scale);
      box.addEventListener("change", () => {
        const h = new Set(hidden);
        if (box.checked) h.delete(scale);
        else h.add(scale);
        update({ hidescales: [...h].sort((a, b) => a - b).join(",") });
      });
      label.append(` ×${scale} `);
    }
    const losses = [...new Set(cell.series.map(seriesLabel))];
    // Colour says the loss, its shade and width the learning rate (darkest and widest: the smallest rate), the
    // dash the initial scale: every series a style of its own, even with several rates per loss.
    const rates = {};
    for (const s of cell.series) (rates[seriesLabel(s)] ||= new Set()).add(s.lr);
    const rank = (s) => {
      const sorted = [...rates[seriesLabel(s)]].sort((a, b) => a - b);
      return [sorted.indexOf(s.lr), sorted.length];
    };
    const base = (s) => MEASURED_COLORS[s.loss] || OTHER_COLORS[losses.indexOf(seriesLabel(s)) % OTHER_COLORS.length];
    const color = (s) => {
      const [k, n] = rank(s);
      return lighten(base(s), n > 1 ? (0.6 * k) / (n - 1) : 0);
    };
    const width = (s) => {
      const [k, n] = rank(s);
      return n > 1 ? 2.8 - (1.4 * k) / (n - 1) : 2;
    };
    const dash = (s) => SCALE_DASHES[scales.indexOf(s.init_scale) % SCALE_DASHES.length];
    const shown = cell.series.filter((s) => !hidden.has(s.init_scale));
    const i = stepIndex(cell);
    const step = cell.steps[i];
    const range = document.getElementById("step-range");
    range.max = String(cell.steps.length - 1);
    range.value = String(i);
    const out = document.getElementById("step-out");
    out.textContent = t("explore.measured.step_out", { step, index: i + 1, count: cell.steps.length });
    out.dataset.value = String(step);
    const size = MEASURED.size === "full" ? t("explore.measured.size_full") : t("explore.measured.size", { size: MEASURED.size });
    const intro = document.getElementById("measured-intro");
    const about = { cell: cell.cell, dataset: cell.dataset, model: cell.model, K: cell.num_classes };
    intro.textContent = "";
    intro.append(...tParts("explore.measured.intro", {
      spec: MEASURED.spec,
      size,
      command: html("code", {}, null, MEASURED.command),
      source: MEASURED.source,
      cell: cell.target ? t("explore.measured.cell_intro_target", { ...about, target: Math.round(cell.target * 100) })
        : t("explore.measured.cell_intro", about),
    }));
    const legend = document.getElementById("measured-legend");
    legend.textContent = "";
    for (const s of shown) {
      const label = html("label", {}, legend);
      label.appendChild(swatch(color(s), dash(s)));
      label.append(t("explore.measured.legend", { loss: seriesLabel(s), scale: s.init_scale, lr: s.lr }));
    }
    const xAxis = { min: cell.steps[0], max: Math.max(cell.steps[cell.steps.length - 1], cell.steps[0] + 1), label: t("explore.measured.step_axis") };
    drawChart(document.getElementById("chart-acc"), {
      title: t("explore.measured.acc_title", { cell: cell.cell }),
      x: xAxis,
      y: { min: 0, max: 1, percent: true, label: t("explore.measured.acc_axis") },
      areas: state.bands === "1" ? shown.map((s) => ({ xs: cell.steps, lo: s.acc_lo, hi: s.acc_hi, color: color(s) })) : [],
      lines: shown.map((s) => ({ xs: cell.steps, ys: s.acc, color: color(s), dash: dash(s), width: width(s) })),
      hlines: cell.target ? [{ y: cell.target, label: t("explore.measured.target", { target: Math.round(cell.target * 100) }) }] : [],
      marker: step,
      points: shown.map((s) => ({ x: step, y: s.acc[i], color: color(s) })),
    });
    const [glo, ghi] = decadeRange(shown.flatMap((s) => s.grad_lo.concat(s.grad_hi)), -12, 6);
    drawChart(document.getElementById("chart-mgrad"), {
      title: t("explore.measured.grad_title", { cell: cell.cell }),
      x: xAxis,
      y: { min: glo, max: ghi, log: true, label: t("explore.gradient.norm_axis") },
      areas: state.bands === "1" ? shown.map((s) => ({ xs: cell.steps, lo: s.grad_lo, hi: s.grad_hi, color: color(s) })) : [],
      lines: shown.map((s) => ({ xs: cell.steps, ys: s.grad, color: color(s), dash: dash(s), width: width(s) })),
      marker: step,
      points: shown.map((s) => ({ x: step, y: s.grad[i], color: color(s) })),
    });
    const tbody = document.querySelector("#measured-table tbody");
    tbody.textContent = "";
    for (const s of shown) {
      const tr = html("tr", { "data-loss": s.loss, "data-scale": s.init_scale, "data-lr": s.lr }, tbody);
      const name = html("td", {}, tr);
      html("span", { class: "swatch", style: `background:${color(s)}` }, name);
      name.append(seriesLabel(s));
      html("td", { class: "num" }, tr, `×${s.init_scale}`);
      html("td", { class: "num" }, tr, String(s.lr));
      html("td", { class: "num" }, tr, String(s.seeds));
      const acc = html("td", { class: "num acc" }, tr);
      acc.textContent = s.acc[i] === null ? "–" : `${(100 * s.acc[i]).toFixed(1)}% (${(100 * s.acc_lo[i]).toFixed(1)}, ${(100 * s.acc_hi[i]).toFixed(1)})`;
      acc.dataset.value = String(s.acc[i]);
      setNumber(html("td", { class: "num grad" }, tr), s.grad[i], 3);
      const dead = html("td", { class: "num dead" }, tr);
      dead.textContent = s.dead[i] === null ? "–" : `${(100 * s.dead[i]).toFixed(1)}%`;
      dead.dataset.value = String(s.dead[i]);
    }
  }

  // =============================================================================================
  // 8. Wiring: controls <-> state <-> URL
  // =============================================================================================

  const RENDER = { gradient: renderGradient, neuron: renderNeuron, measured: renderMeasured };

  function syncControls() {
    for (const control of document.querySelectorAll(".control[data-key]")) {
      const key = control.dataset.key;
      if (key === "step") continue; // the scrubber holds an index, set by renderMeasured
      for (const input of control.querySelectorAll("input")) {
        if (document.activeElement === input && input.type === "number") continue; // don't fight typing
        input.value = String(state[key]);
      }
    }
    const epochs = document.querySelectorAll('.control[data-key="epoch"] input');
    for (const input of epochs) input.max = String(state.epochs);
    document.getElementById("focus").value = state.focus;
    document.getElementById("view").value = state.view;
    document.getElementById("vscale").value = state.vscale;
    document.getElementById("bands").checked = state.bands === "1";
    for (const button of document.querySelectorAll(".tabs button")) {
      const on = button.dataset.tab === state.tab;
      button.setAttribute("aria-selected", on ? "true" : "false");
      button.tabIndex = on ? 0 : -1;
    }
    for (const tab of Object.keys(RENDER)) document.getElementById(`panel-${tab}`).hidden = tab !== state.tab;
  }

  function render() {
    syncControls();
    RENDER[state.tab]();
  }

  function update(changes) {
    const next = { ...state, ...changes };
    // A neuron shown at its last epoch stays at the last epoch when the number of epochs changes.
    if ("epochs" in changes && !("epoch" in changes) && state.epoch >= state.epochs) next.epoch = next.epochs;
    if (next.epoch > next.epochs) next.epoch = next.epochs;
    state = next;
    render();
    writeHash();
  }

  function wireControls() {
    for (const control of document.querySelectorAll(".control[data-key]")) {
      const key = control.dataset.key;
      for (const input of control.querySelectorAll("input")) {
        input.addEventListener("input", () => {
          if (key === "step") {
            const cell = currentCell();
            if (cell) update({ step: cell.steps[Number(input.value)] });
            return;
          }
          const [value, ok] = parseValue(key, input.value);
          if (!ok && input.type === "number") return; // half-typed or out of range: wait for more
          update({ [key]: value });
        });
        if (input.type === "number") input.addEventListener("change", () => syncControls());
      }
    }
    const bands = document.getElementById("bands");
    bands.addEventListener("change", () => update({ bands: bands.checked ? "1" : "0" }));
    for (const id of ["focus", "view", "vscale"]) {
      const select = document.getElementById(id);
      select.addEventListener("change", () => update({ [id]: select.value }));
    }
    for (const button of document.querySelectorAll(".tabs button")) {
      button.addEventListener("click", () => update({ tab: button.dataset.tab }));
      button.addEventListener("keydown", (event) => {
        const tabs = SPEC.tab.values;
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(tabs.indexOf(state.tab) + step + tabs.length) % tabs.length];
        update({ tab: next });
        document.getElementById(`tab-${next}`).focus();
      });
    }
  }

  function loadFromHash() {
    const { state: s, bad } = readHash();
    state = s;
    if (MEASURED && MEASURED.cells.length && !MEASURED.cells.some((c) => c.cell === state.cell)) {
      if (state.cell !== "") bad.push(`cell=${state.cell}`);
      state.cell = MEASURED.cells[0].cell;
    }
    if (state.epoch > state.epochs) state.epoch = state.epochs;
    const notice = document.getElementById("notice");
    notice.hidden = bad.length === 0;
    notice.textContent = bad.length ? t("explore.notice", { items: bad.join(", ") }) : "";
    render();
  }

  function init() {
    buildGradientControls();
    buildNeuronControls();
    buildMeasuredControls();
    wireControls();
    document.getElementById("footer").textContent = t("explore.footer", { version: DATA.version, generated: DATA.generated });
    loadFromHash();
    writeHash();
    window.addEventListener("hashchange", loadFromHash);
    document.body.dataset.ready = "true";
  }

  init();
})();
