// The reader and the network in the browser: a port of lenet.reading.preprocess's path for a
// drawing (find_digit at its own scale: no reduction, no closer look) and of the NumPy forward
// pass, walking the network's description that model.js carries. tests/test_web.py checks both
// against `lenet predict` on the same canvas pixels.
"use strict";

(function (root) {
  const f32 = Math.fround;
  const SIZE = 28, BOX = 20, ANALYSIS_SIDE = 384, BACKGROUND_SIDE = 96, MIN_SIDE = 8;
  const MIN_CONTRAST = 0.08, STRONG = f32(0.5), WEAK = f32(0.22), FAINT = 0.15, MIN_HEIGHT = 10;
  const MIN_LINE = 16, PLAIN = 0.1, MNIST_WIDTH = 1.95, THIN = 1.3, THICK = 3.4;
  const SEVERAL = "several separate marks: looks like more than one digit (use --number)";
  const SMALL = "ink too small", FAINT_INK = "ink too faint", BORDER = "ink touches the border";

  // Python's round(): halves to even.
  function pyRound(x) {
    const r = Math.round(x);
    return (Math.abs(x % 1) === 0.5) ? 2 * Math.round(x / 2) : r;
  }

  // A 2-D map: row-major values, h rows of w.
  function map(h, w, Type) { return { h, w, a: new (Type || Float32Array)(h * w) }; }
  function like(m, Type) { return map(m.h, m.w, Type || m.a.constructor); }
  function each(m, fn, Type) { const o = like(m, Type); for (let i = 0; i < m.a.length; i++) o.a[i] = fn(m.a[i], i); return o; }
  function maxOf(a) { let m = -Infinity; for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i]; return m; }
  function minOf(a) { let m = Infinity; for (let i = 0; i < a.length; i++) if (a[i] < m) m = a[i]; return m; }
  function any(a) { for (let i = 0; i < a.length; i++) if (a[i]) return true; return false; }
  function count(a) { let n = 0; for (let i = 0; i < a.length; i++) if (a[i]) n++; return n; }
  function transpose(m) {
    const o = map(m.w, m.h, m.a.constructor);
    for (let y = 0; y < m.h; y++) for (let x = 0; x < m.w; x++) o.a[x * m.h + y] = m.a[y * m.w + x];
    return o;
  }

  // numpy.percentile with its default (linear) interpolation.
  function percentiles(values, qs) {
    const s = Float64Array.from(values).sort();
    return qs.map((q) => {
      const pos = q / 100 * (s.length - 1), lo = Math.floor(pos), t = pos - lo;
      const a = s[lo], b = s[Math.min(lo + 1, s.length - 1)];
      return f32(t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t);
    });
  }
  // The k-th smallest of `a` (reordered in place), by quickselect.
  function select(a, k) {
    let lo = 0, hi = a.length - 1;
    while (hi > lo) {
      const pivot = a[(lo + hi) >> 1];
      let i = lo, j = hi;
      while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
      }
      if (k <= j) hi = j; else if (k >= i) lo = i; else return a[k];
    }
    return a[k];
  }
  function median(values) {
    const s = Float64Array.from(values), n = s.length;
    if (n % 2) return select(s, (n - 1) / 2);
    const upper = select(s, n / 2);
    let lower = -Infinity;  // the largest of the values before the upper middle one
    for (let i = 0; i < n / 2; i++) if (s[i] > lower) lower = s[i];
    return f32(f32(lower + upper) / 2);
  }
  function pick(m, where) { const out = []; for (let i = 0; i < m.a.length; i++) if (where.a[i]) out.push(m.a[i]); return out; }
  function borderOf(s) {
    const out = [];
    for (let x = 0; x < s.w; x++) out.push(s.a[x]);
    for (let x = 0; x < s.w; x++) out.push(s.a[(s.h - 1) * s.w + x]);
    for (let y = 0; y < s.h; y++) out.push(s.a[y * s.w]);
    for (let y = 0; y < s.h; y++) out.push(s.a[y * s.w + s.w - 1]);
    return out;
  }

  // morphology.py's max/min over a size x size square (edges repeated), separable, axis 0 first.
  // The running maximum over `size` values along each row (axis 1), edges repeated, by
  // van Herk / Gil-Werman: a window's maximum is the larger of the suffix maximum of
  // one block and the prefix maximum of the next, whatever the size. A minimum is that of -values.
  function runningMax(m, size, axis, sign) {  // axis 0 too, but runningMaxRows does it quicker
    const len = axis === 1 ? m.w : m.h, lines = axis === 1 ? m.h : m.w;
    const step = axis === 1 ? 1 : m.w, stride = axis === 1 ? m.w : 1;
    const before = (size - 1) >> 1, n = len + size - 1, o = like(m);
    const p = new Float64Array(n), g = new Float64Array(n), hh = new Float64Array(n);
    for (let line = 0; line < lines; line++) {
      const base = line * stride, first = sign * m.a[base], last = sign * m.a[base + (len - 1) * step];
      for (let i = 0; i < before; i++) p[i] = first;
      for (let y = 0; y < len; y++) p[before + y] = sign * m.a[base + y * step];
      for (let i = before + len; i < n; i++) p[i] = last;
      for (let start = 0; start < n; start += size) {  // prefix maxima within each block
        const end = Math.min(n, start + size);
        let v = p[start];
        g[start] = v;
        for (let i = start + 1; i < end; i++) { if (p[i] > v) v = p[i]; g[i] = v; }
        v = p[end - 1];
        hh[end - 1] = v;
        for (let i = end - 2; i >= start; i--) { if (p[i] > v) v = p[i]; hh[i] = v; }
      }
      for (let y = 0; y < len; y++) { const a = hh[y], b = g[y + size - 1]; o.a[base + y * step] = sign * (a > b ? a : b); }
    }
    return o;
  }
  // The same along axis 0, row by row: each step runs along a whole row, contiguous in memory.
  function runningMaxRows(m, size, sign) {
    const { h, w } = m, before = (size - 1) >> 1, n = h + size - 1, o = like(m);
    const g = new Float64Array(n * w), hh = new Float64Array(n * w);
    const row = (i) => Math.min(h - 1, Math.max(0, i - before)) * w;
    for (let start = 0; start < n; start += size) {
      const end = Math.min(n, start + size);
      for (let i = start; i < end; i++) {
        const r = row(i), gi = i * w;
        if (i === start) for (let x = 0; x < w; x++) g[gi + x] = sign * m.a[r + x];
        else for (let x = 0; x < w; x++) { const v = sign * m.a[r + x], u = g[gi - w + x]; g[gi + x] = v > u ? v : u; }
      }
      for (let i = end - 1; i >= start; i--) {
        const r = row(i), hi = i * w;
        if (i === end - 1) for (let x = 0; x < w; x++) hh[hi + x] = sign * m.a[r + x];
        else for (let x = 0; x < w; x++) { const v = sign * m.a[r + x], u = hh[hi + w + x]; hh[hi + x] = v > u ? v : u; }
      }
    }
    for (let y = 0; y < h; y++) {
      const a0 = y * w, b0 = (y + size - 1) * w;
      for (let x = 0; x < w; x++) { const a = hh[a0 + x], b = g[b0 + x]; o.a[y * w + x] = sign * (a > b ? a : b); }
    }
    return o;
  }
  function filter2(m, size, isMax) {
    if (size <= 1) return m;
    const sign = isMax ? 1 : -1;
    return runningMax(runningMaxRows(m, size, sign), size, 1, sign);
  }
  const maxFilter = (m, size) => filter2(m, size, true);
  const minFilter = (m, size) => filter2(m, size, false);
  const closing = (m, size) => minFilter(maxFilter(m, size), size);
  const opening = (m, size) => maxFilter(minFilter(m, size), size);

  // The mean over size x size (edges repeated), as morphology.box_blur: running sums in double
  // along each axis (axis 0 first), each mean stored as float32.
  function boxBlur(m, size) {
    if (size <= 1) return m;
    const half = size >> 1, { h, w } = m;
    const c = new Float64Array((h + size) * w), mid = map(h, w), out = map(h, w);
    for (let i = 0; i < h + size; i++) {
      const row = Math.min(h - 1, Math.max(0, i - half - 1)) * w;
      for (let x = 0; x < w; x++) c[i * w + x] = (i ? c[(i - 1) * w + x] : 0) + m.a[row + x];
    }
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) mid.a[y * w + x] = (c[(y + size) * w + x] - c[y * w + x]) / size;
    const r = new Float64Array(w + size);
    for (let y = 0; y < h; y++) {
      let acc = 0;
      for (let i = 0; i < w + size; i++) { acc += mid.a[y * w + Math.min(w - 1, Math.max(0, i - half - 1))]; r[i] = acc; }
      for (let x = 0; x < w; x++) out.a[y * w + x] = (r[x + size] - r[x]) / size;
    }
    return out;
  }

  // Binary opening with a 1 x length line along `axis` (1: horizontal), outside counted as background.
  function lineOpening(mask, length, axis) {
    const m = axis === 1 ? transpose(mask) : mask;
    const n = m.h, out = like(m);
    if (length > n) return axis === 1 ? transpose(out) : out;
    const b1 = (length - 1) >> 1, b2 = length >> 1, ones = new Int32Array(n + 1), hits = new Int32Array(n + 1);
    // Window sums from prefix sums: eroded where all `length` values are ink, then dilated back.
    const sum = (c, lo, hi) => c[Math.min(n, Math.max(0, hi))] - c[Math.min(n, Math.max(0, lo))];
    for (let x = 0; x < m.w; x++) {
      for (let y = 0; y < n; y++) ones[y + 1] = ones[y] + (m.a[y * m.w + x] ? 1 : 0);
      for (let y = 0; y < n; y++) {
        const lo = y - b1, e = lo >= 0 && lo + length <= n && sum(ones, lo, lo + length) === length;
        hits[y + 1] = hits[y] + (e ? 1 : 0);
      }
      for (let y = 0; y < n; y++) out.a[y * m.w + x] = sum(hits, y - b2, y - b2 + length) > 0 ? 1 : 0;
    }
    return axis === 1 ? transpose(out) : out;
  }

  // 8-connected components, labelled 1.. in order of their first pixel (row-major), as mo.label.
  function label(mask) {
    const { h, w } = mask, labels = map(h, w, Int32Array), stack = [];
    let n = 0;
    for (let i = 0; i < h * w; i++) {
      if (!mask.a[i] || labels.a[i]) continue;
      labels.a[i] = ++n;
      stack.push(i);
      while (stack.length) {
        const j = stack.pop(), y = (j / w) | 0, x = j % w;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx, k = yy * w + xx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && mask.a[k] && !labels.a[k]) { labels.a[k] = n; stack.push(k); }
        }
      }
    }
    return [labels, n];
  }
  function components(labels, n, weight) {
    const out = [];
    for (let i = 1; i <= n; i++) out.push({ label: i, area: 0, ink: 0, box: [labels.h, labels.w, 0, 0] });
    for (let y = 0; y < labels.h; y++) for (let x = 0; x < labels.w; x++) {
      const l = labels.a[y * labels.w + x];
      if (!l) continue;
      const m = out[l - 1];
      m.area++;
      if (weight) m.ink += weight.a[y * labels.w + x];
      m.box = [Math.min(m.box[0], y), Math.min(m.box[1], x), Math.max(m.box[2], y + 1), Math.max(m.box[3], x + 1)];
    }
    return out;
  }

  function strokeWidth(mask) {
    const { h, w } = mask;
    let area = 0, edges = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (!mask.a[y * w + x]) continue;
      area++;
      if (y === 0 || !mask.a[(y - 1) * w + x]) edges++;
      if (y === h - 1 || !mask.a[(y + 1) * w + x]) edges++;
      if (x === 0 || !mask.a[y * w + x - 1]) edges++;
      if (x === w - 1 || !mask.a[y * w + x + 1]) edges++;
    }
    return 2 * area / Math.max(edges, 1);
  }

  // preprocess.grey: float grey 0..1; `lut` is grey() of each grey level, as NumPy computes it.
  function grey(rgba, w, h, lut) {
    const g = map(h, w);
    let lo = 255, hi = 0;
    for (let i = 0; i < w * h; i++) { const a = rgba[4 * i + 3]; lo = Math.min(lo, a); hi = Math.max(hi, a); }
    const transparent = f32(hi / 255) - f32(lo / 255) > 0.5;
    const W = [f32(0.299), f32(0.587), f32(0.114)];
    for (let i = 0; i < w * h; i++) {
      const r = rgba[4 * i], gg = rgba[4 * i + 1], b = rgba[4 * i + 2];
      if (transparent) g.a[i] = f32(1 - f32(rgba[4 * i + 3] / 255));
      else if (r === gg && gg === b) g.a[i] = lut[r];
      else g.a[i] = f32(f32(f32(f32(r / 255) * W[0]) + f32(f32(gg / 255) * W[1])) + f32(f32(b / 255) * W[2]));
    }
    if (Math.min(w, h) < MIN_SIDE) throw new Error(`${w}x${h} is too small to hold a digit`);
    return g;
  }

  function pooled(a, shape) {
    // np.linspace(0, n, parts + 1).round(): numpy rounds halves to even, as Python does.
    const edges = (n, parts) => Array.from({ length: parts + 1 }, (_, i) => i === parts ? n : pyRound(i * (n / parts)));
    const ys = edges(a.h, shape[0]), xs = edges(a.w, shape[1]);
    const hi = map(shape[0], shape[1]), lo = map(shape[0], shape[1]);
    for (let by = 0; by < shape[0]; by++) for (let bx = 0; bx < shape[1]; bx++) {
      let mx = -Infinity, mn = Infinity;
      const y1 = Math.max(ys[by + 1], ys[by] + 1), x1 = Math.max(xs[bx + 1], xs[bx] + 1);
      for (let y = ys[by]; y < y1; y++) for (let x = xs[bx]; x < x1; x++) {
        const v = a.a[y * a.w + x];
        if (v > mx) mx = v;
        if (v < mn) mn = v;
      }
      hi.a[by * shape[1] + bx] = mx;
      lo.a[by * shape[1] + bx] = mn;
    }
    return [hi, lo, [ys, xs]];
  }
  function expand(coarse, [ys, xs], h, w) {
    const o = map(h, w);
    for (let by = 0; by < coarse.h; by++) for (let bx = 0; bx < coarse.w; bx++) {
      const v = coarse.a[by * coarse.w + bx];
      for (let y = ys[by]; y < ys[by + 1]; y++) for (let x = xs[bx]; x < xs[bx + 1]; x++) o.a[y * w + x] = v;
    }
    return o;
  }

  function backgrounds(s, shape, k, sMedian) {
    const [light, darkest, blocks] = pooled(s, shape);
    let paper = expand(closing(darkest, k), blocks, s.h, s.w);
    const border = borderOf(s);
    const [lo, mid, hi] = percentiles(border, [5, 50, 95]);
    const smin = minOf(s.a), cut = (lo + smin) / 2;
    let darkShare = 0;
    for (let i = 0; i < s.a.length; i++) if (s.a[i] < cut) darkShare++;
    if (hi - lo < PLAIN && mid > sMedian - PLAIN / 2 && darkShare / s.a.length < 0.35) {
      for (let i = 0; i < paper.a.length; i++) paper.a[i] = Math.max(paper.a[i], lo);
    }
    const board = expand(opening(light, k), blocks, s.h, s.w);
    const top = expand(maxFilter(light, k), blocks, s.h, s.w);
    const floor005 = f32(0.05);
    const darkInk = like(s), reach = like(s), lightInk = like(s);
    for (let i = 0; i < s.a.length; i++) {
      darkInk.a[i] = Math.max(0, f32(f32(paper.a[i] - s.a[i]) / Math.max(paper.a[i], floor005)));
      reach.a[i] = f32(top.a[i] - board.a[i]);
    }
    const floor = f32(Math.max(MIN_CONTRAST, maxOf(reach.a) / 3));
    for (let i = 0; i < s.a.length; i++) lightInk.a[i] = Math.max(0, f32(f32(s.a[i] - board.a[i]) / Math.max(reach.a[i], floor)));
    return [paper, board, darkInk, lightInk];
  }
  function maximum(a, b) { const o = like(a); for (let i = 0; i < a.a.length; i++) o.a[i] = Math.max(a.a[i], b.a[i]); return o; }
  function above(m, t) { const o = like(m); for (let i = 0; i < m.a.length; i++) o.a[i] = m.a[i] > t ? 1 : 0; return o; }
  // 1 where `a` is set and `b` is not.
  function without(a, b) { const o = like(a); for (let i = 0; i < a.a.length; i++) o.a[i] = a.a[i] && !b.a[i] ? 1 : 0; return o; }

  function findInk(g) {
    if (Math.max(g.h, g.w) > ANALYSIS_SIDE) throw new Error("the pad is larger than this reader takes");
    const s = g, factor = 1;
    const bf = Math.max(s.h, s.w) / BACKGROUND_SIDE;
    const cShape = bf <= 1 ? [s.h, s.w] : [Math.max(1, pyRound(s.h / bf)), Math.max(1, pyRound(s.w / bf))];
    let k = Math.max(3, pyRound(Math.max(...cShape) / 8)) | 1;
    const sMedian = median(s.a);
    let [paper, board, darkInk, lightInk] = backgrounds(s, cShape, k, sMedian);
    let either = maximum(darkInk, lightInk);
    if (maxOf(boxBlur(either, 3).a) < MIN_CONTRAST) throw new Error("no ink found: the image is blank or has too little contrast");
    const reachOf = () => Math.max(3, Math.floor(Math.floor(k * s.h / cShape[0]) / 2)) | 1;
    const near = maxFilter(above(either, f32(0.5 * maxOf(either.a))), reachOf());
    let [lo, hi] = percentiles(pick(s, near), [2, 98]);
    const darkSide = like(s), cut = f32(f32(lo + hi) / 2);
    for (let i = 0; i < s.a.length; i++) darkSide.a[i] = s.a[i] < cut && near.a[i] ? 1 : 0;
    const width = Math.max(strokeWidth(darkSide), strokeWidth(without(near, darkSide)));
    const broad = pyRound(2.2 * width * cShape[0] / s.h) | 1;
    if (broad > k) {
      k = Math.min(broad, Math.max(3, Math.floor(Math.max(...cShape) / 3)) | 1);
      [paper, board, darkInk, lightInk] = backgrounds(s, cShape, k, sMedian);
      either = maximum(darkInk, lightInk);
    }
    const peakDark = maxOf(boxBlur(darkInk, 3).a), peakLight = maxOf(boxBlur(lightInk, 3).a);
    let dark;
    if (Math.min(peakDark, peakLight) < 0.35 * Math.max(peakDark, peakLight)) {
      dark = peakDark > peakLight;
    } else {
      const reach = reachOf();
      const inner = maxFilter(above(either, f32(0.5 * maxOf(either.a))), reach);
      const outer = maxFilter(inner, reach);
      const ring = without(outer, inner);
      [lo, hi] = percentiles(pick(s, inner), [2, 98]);
      const around = count(ring.a) >= 20 ? pick(s, ring) : borderOf(s);
      dark = median(around) > f32(f32(lo + hi) / 2);
    }
    let ink = dark ? darkInk : lightInk;
    const contrast = like(s);
    for (let i = 0; i < s.a.length; i++) contrast.a[i] = dark ? f32(paper.a[i] - s.a[i]) : f32(s.a[i] - board.a[i]);
    const peak = maxOf(boxBlur(ink, 3).a);
    if (peak < MIN_CONTRAST) throw new Error("no ink found: nothing stands out from the background");
    const scaled = like(ink), p32 = f32(peak);
    for (let i = 0; i < ink.a.length; i++) scaled.a[i] = Math.min(1, Math.max(0, f32(ink.a[i] / p32)));
    ink = scaled;
    const [weakLabels, n] = label(above(ink, WEAK));
    const keep = new Uint8Array(n + 1);
    for (let i = 0; i < ink.a.length; i++) if (ink.a[i] > STRONG) keep[weakLabels.a[i]] = 1;
    keep[0] = 0;
    let mask = like(ink);
    for (let i = 0; i < mask.a.length; i++) mask.a[i] = keep[weakLabels.a[i]];
    if (!any(mask.a)) throw new Error("no ink found: nothing stands out from the background");
    const lines = formLines(mask);
    mask = without(mask, lines);
    const gap = Math.max(3, pyRound(Math.min(s.h, s.w) / 100)) | 1;
    const [labels, m] = label(minFilter(maxFilter(mask, gap), gap));
    for (let i = 0; i < labels.a.length; i++) if (!mask.a[i]) labels.a[i] = 0;
    let marks = components(labels, m, ink).sort((a, b) => b.ink - a.ink);
    const big = marks.length ? marks[0].area : 0;
    marks = marks.filter((mk) => mk.area >= Math.max(3, 0.01 * big));
    if (!marks.length) throw new Error("no ink found: nothing stands out from the background");
    return { ink, mask, marks, labels, contrast, factor };
  }

  function corner(one, other) {
    let [t1, l1, b1, r1] = one, [t2, l2, b2, r2] = other;
    if ((r1 - l1) < (b1 - t1)) { [t1, l1, b1, r1, t2, l2, b2, r2] = [t2, l2, b2, r2, t1, l1, b1, r1]; }
    const tol = 3 + Math.max(b1 - t1, r2 - l2);
    const endsH = Math.min(Math.abs(l1 - l2), Math.abs(l1 - r2), Math.abs(r1 - l2), Math.abs(r1 - r2)) <= tol;
    const endsV = Math.min(Math.abs(t2 - t1), Math.abs(t2 - b1), Math.abs(b2 - t1), Math.abs(b2 - b1)) <= tol;
    return endsH && endsV;
  }
  const sameBox = (a, b) => a.every((v, i) => v === b[i]);

  function formLines(mask) {
    const { h, w } = mask, lines = like(mask), candidates = [];
    for (const [axis, side] of [[1, w], [0, h]]) {
      const run = lineOpening(mask, Math.max(MIN_LINE, Math.floor(side / 4)), axis);
      if (!any(run.a)) continue;
      const [labels, n] = label(run);
      for (const m of components(labels, n)) {
        const [top, left, bottom, right] = m.box;
        const length = axis === 1 ? right - left : bottom - top;
        if (length >= 8 * m.area / Math.max(1, length)) {
          candidates.push([axis, { labels, id: m.label, box: m.box }, m.box, length]);
        }
      }
    }
    if (!candidates.length) return lines;
    const longest = Math.max(...candidates.map((c) => c[3]));
    const rest = map(h, w);
    rest.a.set(mask.a);
    const has = (pixels, i) => pixels.labels.a[i] === pixels.id;
    const inBox = (pixels, fn) => {  // fn(index) for each of a candidate's pixels (all inside its box)
      const [t, l, b, r] = pixels.box;
      for (let y = t; y < b; y++) for (let x = l; x < r; x++) if (has(pixels, y * w + x)) fn(y * w + x);
    };
    for (const [, pixels, , length] of candidates) {
      if (length >= 0.75 * longest) inBox(pixels, (i) => { rest.a[i] = 0; });
    }
    if (count(rest.a) < 0.15 * count(mask.a)) return lines;
    const rows = [], cols = [];
    for (let y = 0; y < h; y++) { for (let x = 0; x < w; x++) if (rest.a[y * w + x]) { rows.push(y); break; } }
    for (let x = 0; x < w; x++) { for (let y = 0; y < h; y++) if (rest.a[y * w + x]) { cols.push(x); break; } }
    const extent = { 1: cols[cols.length - 1] + 1 - cols[0], 0: rows[rows.length - 1] + 1 - rows[0] };
    const framing = candidates.filter((c) => c[3] >= 0.9 * extent[c[0]]);
    const add = (pixels) => inBox(pixels, (i) => { lines.a[i] = 1; });
    for (const [axis, pixels, box, length] of candidates) {
      if (length >= 0.9 * extent[axis] && framing.some((o) => !sameBox(o[2], box) && axis !== o[0] && corner(box, o[2]))) {
        add(pixels);
        continue;
      }
      const [a, b] = axis === 1 ? [box[1], box[3]] : [box[0], box[2]];
      if (a === 0 && b === (axis === 1 ? w : h)) { add(pixels); continue; }
      if (axis === 0 || box[0] < (rows[0] + rows[rows.length - 1]) / 2) continue;
      const start = cols[0], end = cols[cols.length - 1] + 1;
      // Joined: some of the rest within one pixel (a 3x3 dilation) of the line's pixels.
      let joined = false;
      for (let y = Math.max(0, box[0] - 1); y < Math.min(h, box[2] + 1) && !joined; y++) {
        for (let x = Math.max(0, box[1] - 1); x < Math.min(w, box[3] + 1) && !joined; x++) {
          if (!rest.a[y * w + x]) continue;
          for (let dy = -1; dy <= 1 && !joined; dy++) for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy, xx = x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w && has(pixels, yy * w + xx)) { joined = true; break; }
          }
        }
      }
      const margin = (joined ? 0.25 : 0.08) * (end - start);
      if (a <= start - margin && b >= end + margin) add(pixels);
    }
    return lines;
  }

  function bounds(marks) {
    return [Math.min(...marks.map((m) => m.box[0])), Math.min(...marks.map((m) => m.box[1])),
            Math.max(...marks.map((m) => m.box[2])), Math.max(...marks.map((m) => m.box[3]))];
  }

  function digitMarks(marks) {
    const main = marks[0], [t0, l0, b0, r0] = main.box;
    const reach = Math.max(b0 - t0, r0 - l0) / 3;
    let digit = [main], rest = marks.slice(1);
    const piece = (m, left, right) => {
      const [t, l, b, r] = m.box;
      const stacked = Math.min(r, right) - Math.max(l, left) >= 0.5 * (r - l);
      return stacked || m.area < 0.3 * main.area || (b - t) < 0.45 * (b0 - t0);
    };
    for (;;) {
      const [top, left, bottom, right] = bounds(digit);
      const close = rest.filter((m) => m.box[0] < bottom + reach && m.box[2] > top - reach &&
        m.box[1] < right + reach && m.box[3] > left - reach && piece(m, left, right));
      if (!close.length) break;
      digit = digit.concat(close);
      rest = rest.filter((m) => !close.includes(m));
    }
    const [top, , bottom] = bounds(digit);
    const others = rest.filter((m) => m.area >= 0.25 * main.area && m.box[2] - m.box[0] >= 0.4 * (bottom - top));
    return [digit, others];
  }

  function evenStrokes(crop) {
    const scale = BOX / Math.max(crop.h, crop.w);
    const width = strokeWidth(above(crop, STRONG)) * scale;
    if (width < THIN) {
      const r = pyRound((MNIST_WIDTH - width) / 2 / scale);
      return r >= 1 ? maxFilter(crop, 2 * r + 1) : crop;
    }
    if (width > THICK) {
      const r = pyRound((width - MNIST_WIDTH) / 2 / scale);
      const thinner = r >= 1 ? minFilter(crop, 2 * r + 1) : crop;
      return count(above(thinner, STRONG).a) >= 0.35 * count(above(crop, STRONG).a) ? thinner : crop;
    }
    return crop;
  }

  // Pillow's Lanczos resize of a float ("F") image: its coefficients (Resample.c's precompute_coeffs),
  // a horizontal pass then a vertical one, sums in double, stored as float32.
  function sinc(x) { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; }
  function lanczos(x) { return (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0; }
  function coefficients(inSize, outSize) {
    const scale = inSize / outSize, filterscale = Math.max(1, scale), support = 3 * filterscale;
    const out = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1 / filterscale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      const k = [];
      let ww = 0;
      for (let x = 0; x < xmax; x++) { const v = lanczos((x + xmin - center + 0.5) * ss); k.push(v); ww += v; }
      out.push([xmin, ww !== 0 ? k.map((v) => v / ww) : k]);
    }
    return out;
  }
  function resizeLanczos(m, w, h) {
    let cur = m;
    if (w !== m.w) {
      const cs = coefficients(m.w, w), o = map(m.h, w);
      for (let y = 0; y < m.h; y++) for (let xx = 0; xx < w; xx++) {
        const [x0, k] = cs[xx];
        let ss = 0;
        for (let x = 0; x < k.length; x++) ss += m.a[y * m.w + x0 + x] * k[x];
        o.a[y * w + xx] = ss;
      }
      cur = o;
    }
    if (h !== m.h) {
      const cs = coefficients(m.h, h), o = map(h, cur.w);
      for (let yy = 0; yy < h; yy++) {
        const [y0, k] = cs[yy];
        for (let x = 0; x < cur.w; x++) {
          let ss = 0;
          for (let y = 0; y < k.length; y++) ss += cur.a[(y0 + y) * cur.w + x] * k[y];
          o.a[yy * cur.w + x] = ss;
        }
      }
      cur = o;
    }
    return cur === m ? each(m, (v) => v) : cur;
  }

  function fitBox(crop) {
    const scale = BOX / Math.max(crop.h, crop.w);
    const w = Math.max(1, pyRound(crop.w * scale)), h = Math.max(1, pyRound(crop.h * scale));
    const out = each(resizeLanczos(crop, w, h), (v) => Math.max(0, v));
    const peak = maxOf(out.a);
    return peak > 0 ? each(out, (v) => Math.min(1, Math.max(0, f32(v / peak)))) : out;
  }

  function centreOfMassPlace(digit) {
    let total = 0, sy = 0, sx = 0;
    for (let y = 0; y < digit.h; y++) for (let x = 0; x < digit.w; x++) {
      const v = digit.a[y * digit.w + x];
      total += v; sy += y * v; sx += x * v;
    }
    total = f32(total);
    const cy = sy / total, cx = sx / total;
    const top = Math.min(Math.max(pyRound((SIZE - 1) / 2 - cy), 0), SIZE - digit.h);
    const left = Math.min(Math.max(pyRound((SIZE - 1) / 2 - cx), 0), SIZE - digit.w);
    const out = new Uint8Array(SIZE * SIZE);
    for (let y = 0; y < digit.h; y++) for (let x = 0; x < digit.w; x++) {
      out[(top + y) * SIZE + left + x] = pyRound(f32(digit.a[y * digit.w + x] * 255));
    }
    return out;
  }

  // preprocess.reading for the digit's marks, at factor 1 and offset 0.
  function reading(g, found, marks, several) {
    const labelsKept = new Set(marks.map((m) => m.label)), { w, h } = found.labels;
    const kept = new Uint8Array(maxOf(found.labels.a) + 1);
    for (const l of labelsKept) kept[l] = 1;
    const keep = map(h, w);
    for (let i = 0; i < keep.a.length; i++) keep.a[i] = kept[found.labels.a[i]];
    let top = h, bottom = 0, left = w, right = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (keep.a[y * w + x]) {
      top = Math.min(top, y); bottom = Math.max(bottom, y + 1); left = Math.min(left, x); right = Math.max(right, x + 1);
    }
    const box = [left, top, Math.max(1, right - left), Math.max(1, bottom - top)];
    const doubts = several ? [SEVERAL] : [];
    const strongContrast = [];
    for (let i = 0; i < keep.a.length; i++) if (keep.a[i] && found.ink.a[i] > STRONG) strongContrast.push(found.contrast.a[i]);
    if (!strongContrast.length || median(strongContrast) < FAINT) doubts.push(FAINT_INK);
    if (box[3] < MIN_HEIGHT && box[2] < MIN_HEIGHT) doubts.push(SMALL);
    if (box[0] <= 0 || box[1] <= 0 || box[0] + box[2] >= g.w || box[1] + box[3] >= g.h) doubts.push(BORDER);
    const near = maxFilter(keep, 3), crop = map(bottom - top, right - left);
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) {
      crop.a[(y - top) * crop.w + x - left] = near.a[y * w + x] ? found.ink.a[y * w + x] : 0;
    }
    return { image: centreOfMassPlace(fitBox(evenStrokes(crop))), box, doubts };
  }

  // read_digit for a drawing: {image: 28x28 uint8, box: [left, top, width, height], doubts}.
  function readDigit(rgba, w, h, lut) {
    const g = grey(rgba, w, h, lut), found = findInk(g);
    const [digit, others] = digitMarks(found.marks);
    return reading(g, found, digit, others.length > 0);
  }

  // The network: model.js's layers (network.describe, batch norm folded) on (C, H, W) maps.
  function decode(b64) {
    const bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }
  function prepare(model) {
    if (model.prepared) return model;
    for (const layer of model.layers) {
      if (layer.weight) layer.w = decode(layer.weight);
      if (layer.bias) layer.b = decode(layer.bias);
    }
    model.prepared = true;
    return model;
  }
  const ACTIVATION = {
    relu: (v) => v > 0 ? v : 0,
    sigmoid: (v) => f32(1 / (1 + Math.exp(-v))),
    tanh: (v) => f32(Math.tanh(v)),
  };
  function conv(x, [c, h, w], layer) {
    const [o, ci, k] = layer.kernel, p = layer.padding, ph = h + 2 * p, pw = w + 2 * p;
    const oh = ph - k + 1, ow = pw - k + 1, out = new Float32Array(o * oh * ow), wt = layer.w;
    const xp = new Float32Array(ci * ph * pw);  // zero padding made once, so the loops test no bounds
    for (let ic = 0; ic < ci; ic++) for (let y = 0; y < h; y++) {
      xp.set(x.subarray((ic * h + y) * w, (ic * h + y + 1) * w), (ic * ph + y + p) * pw + p);
    }
    const acc = new Float64Array(oh * ow);
    for (let oc = 0; oc < o; oc++) {
      acc.fill(0);
      for (let ic = 0; ic < ci; ic++) {
        const base = ic * ph * pw, wbase = (oc * ci + ic) * k * k;
        for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
          const wv = wt[wbase + ky * k + kx], off = base + ky * pw + kx;
          for (let y = 0; y < oh; y++) {
            const row = off + y * pw, ar = y * ow;
            for (let xx = 0; xx < ow; xx++) acc[ar + xx] += xp[row + xx] * wv;
          }
        }
      }
      const bias = layer.b ? layer.b[oc] : 0, ob = oc * oh * ow;
      for (let i = 0; i < oh * ow; i++) out[ob + i] = acc[i] + bias;
    }
    return [out, [o, oh, ow]];
  }
  function pool(x, [c, h, w], isMax) {
    const oh = h >> 1, ow = w >> 1, out = new Float32Array(c * oh * ow);
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
      const i = ch * h * w + 2 * y * w + 2 * xx, a = x[i], b = x[i + 1], d = x[i + w], e = x[i + w + 1];
      out[(ch * oh + y) * ow + xx] = isMax ? Math.max(a, b, d, e) : f32((a + b + d + e) * 0.25);
    }
    return [out, [c, oh, ow]];
  }
  function dense(x, layer) {
    const [o, n] = layer.kernel, out = new Float32Array(o);
    for (let j = 0; j < o; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[i] * layer.w[j * n + i];
      out[j] = s + layer.b[j];
    }
    return out;
  }
  function probabilities(model, image) {
    prepare(model);
    const S = f32(model.scale), M = f32(model.mean), D = f32(model.std);
    let x = Float32Array.from(image, (v) => f32(f32(f32(v * S) - M) / D)), shape = [1, SIZE, SIZE];
    for (const layer of model.layers) {
      if (layer.op === "conv") [x, shape] = conv(x, shape, layer);
      else if (layer.op === "maxpool" || layer.op === "avgpool") [x, shape] = pool(x, shape, layer.op === "maxpool");
      else { x = dense(x, layer); shape = [x.length]; }
      if (layer.activation) x = x.map(ACTIVATION[layer.activation]);
    }
    const z = Array.from(x, (v) => f32(v / f32(model.temperature))), top = Math.max(...z);
    const e = z.map((v) => f32(Math.exp(f32(v - top)))), sum = f32(e.reduce((a, b) => a + b, 0));
    return e.map((v) => f32(v / sum));
  }

  // lenet.reading.predict.doubts_of: the reader's doubts, then a probability under the threshold,
  // printed with the fewest decimals (at least two) that show it under (predict.under).
  function under(p, threshold) {
    for (let places = 2; places < 10; places++) {
      const a = p.toFixed(places), b = threshold.toFixed(places);
      if (parseFloat(a) < parseFloat(b)) return [a, b];
    }
    return [String(p), String(threshold)];
  }
  function doubtsOf(model, probability, readerDoubts) {
    const doubts = readerDoubts.slice();
    if (probability < model.unsure_below) {
      const [p, threshold] = under(probability, model.unsure_below);
      doubts.push(`low probability (${p}, under ${threshold})`);
    }
    return doubts;
  }

  const api = { readDigit, probabilities, doubtsOf, under, pyRound, SIZE };
  root.Lenet = api;
  if (typeof module !== "undefined") module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);
