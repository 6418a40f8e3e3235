// The reader and the network in the browser: a port of lenet.reading's path for a drawing (a
// canvas's RGBA: digit.find_digit with ink.find_ink on the analysis copy, the plain-canvas shortcut
// or the background estimate, and the closer look at a small digit) and of the NumPy forward pass,
// walking the network's description that model.js carries. Arrays keep NumPy's dtypes (float32,
// or float64 where NumPy promotes), the OpenCV and Pillow steps are ported as those libraries
// compute them. tests/test_web.py checks both against `lenet predict` on the same canvas pixels.
"use strict";

(function (root) {
  const f32 = Math.fround;
  const SIZE = 28, BOX = 20, ANALYSIS_SIDE = 192, LARGE_SIDE = 384, BACKGROUND_SIDE = 96, MIN_SIDE = 8;
  const MIN_CONTRAST = 0.08, STRONG = 0.5, WEAK = 0.22, FAINT = 0.15, MIN_HEIGHT = 10;
  const RULE_INK = 63, RULE_REACH = 4, RULE_SPAN = 0.25, RULE_STEP = 0.2;  // canvas.ruled's
  const CANVAS_MARGIN = 8, MIN_LINE = 16, PLAIN = 0.1, MNIST_WIDTH = 1.95, THIN = 1.3, THICK = 3.4;
  const SEVERAL = "several separate marks: looks like more than one digit (use --number)";
  const SMALL = "ink too small", FAINT_INK = "ink too faint", BORDER = "ink touches the border";
  const NO_INK = "no ink found: nothing stands out from the background";

  // Python's round(): halves to even.
  function pyRound(x) {
    const r = Math.round(x);
    return (Math.abs(x % 1) === 0.5) ? 2 * Math.round(x / 2) : r;
  }

  // A 2-D map: row-major values, h rows of w (Float32Array unless said: NumPy's float32).
  function map(h, w, Type) { return { h, w, a: new (Type || Float32Array)(h * w) }; }
  function like(m, Type) { return map(m.h, m.w, Type || m.a.constructor); }
  const isF64 = (m) => m.a instanceof Float64Array;
  // A Python float compared with an array: NumPy casts it to the array's dtype first.
  const as = (m, t) => isF64(m) ? t : f32(t);
  function toF32(m) { if (m.a instanceof Float32Array) return m; const o = like(m, Float32Array); o.a.set(m.a); return o; }
  function maxOf(a) { let m = -Infinity; for (let i = 0; i < a.length; i++) if (a[i] > m) m = a[i]; return m; }
  function minOf(a) { let m = Infinity; for (let i = 0; i < a.length; i++) if (a[i] < m) m = a[i]; return m; }
  function any(a) { for (let i = 0; i < a.length; i++) if (a[i]) return true; return false; }
  function count(a) { let n = 0; for (let i = 0; i < a.length; i++) if (a[i]) n++; return n; }
  function region(m, top, bottom, left, right) {  // m[top:bottom, left:right]
    const o = map(bottom - top, right - left, m.a.constructor);
    for (let y = top; y < bottom; y++) o.a.set(m.a.subarray(y * m.w + left, y * m.w + right), (y - top) * o.w);
    return o;
  }

  // numpy.percentile of float32 values (default, linear): its _lerp, the difference in float32,
  // the interpolation in float64.
  function percentiles(values, qs) {
    const s = Float64Array.from(values).sort();
    return qs.map((q) => {
      const pos = q / 100 * (s.length - 1), lo = Math.floor(pos), t = pos - lo;
      const a = s[lo], b = s[Math.min(lo + 1, s.length - 1)], d = f32(b - a);
      return t >= 0.5 ? b - d * (1 - t) : a + d * t;
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
  // numpy.median: the mean of the middle two in the values' own dtype (float32 unless `f64`).
  function median(values, f64) {
    const s = Float64Array.from(values), n = s.length;
    if (n % 2) return select(s, (n - 1) / 2);
    const upper = select(s, n / 2);
    let lower = -Infinity;  // the largest of the values before the upper middle one
    for (let i = 0; i < n / 2; i++) if (s[i] > lower) lower = s[i];
    return f64 ? (lower + upper) / 2 : f32(f32(lower + upper) / 2);
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
  // A small window directly, each pass along contiguous rows (the maximum is exact either way).
  function windowRows(m, size, isMax) {  // axis 0
    const { h, w } = m, before = (size - 1) >> 1, o = like(m), a = m.a, b = o.a;
    for (let y = 0; y < h; y++) {
      const yo = y * w;
      b.set(a.subarray(Math.max(0, y - before) * w, Math.max(0, y - before) * w + w), yo);
      for (let d = 1; d < size; d++) {
        const r = Math.min(h - 1, Math.max(0, y - before + d)) * w;
        if (isMax) for (let x = 0; x < w; x++) { const v = a[r + x]; if (v > b[yo + x]) b[yo + x] = v; }
        else for (let x = 0; x < w; x++) { const v = a[r + x]; if (v < b[yo + x]) b[yo + x] = v; }
      }
    }
    return o;
  }
  function windowCols(m, size, isMax) {  // axis 1
    const { h, w } = m, before = (size - 1) >> 1, o = like(m), a = m.a, b = o.a;
    const row = new (a.constructor)(w + size - 1);  // one row with its edges repeated
    for (let y = 0; y < h; y++) {
      const r = y * w;
      row.fill(a[r], 0, before);
      row.set(a.subarray(r, r + w), before);
      row.fill(a[r + w - 1], before + w);
      for (let x = 0; x < w; x++) {
        let v = row[x];
        if (isMax) { for (let d = 1; d < size; d++) if (row[x + d] > v) v = row[x + d]; }
        else for (let d = 1; d < size; d++) if (row[x + d] < v) v = row[x + d];
        b[r + x] = v;
      }
    }
    return o;
  }
  function filter2(m, size, isMax) {
    if (size <= 1) return m;
    const sign = isMax ? 1 : -1;
    m = toF32IfF64(m);  // morphology.py hands OpenCV float32
    if (size <= 9) return windowCols(windowRows(m, size, isMax), size, isMax);
    return runningMax(runningMaxRows(m, size, sign), size, 1, sign);
  }
  function toF32IfF64(m) { return isF64(m) ? toF32(m) : m; }
  const maxFilter = (m, size) => filter2(m, size, true);
  const minFilter = (m, size) => filter2(m, size, false);
  const closing = (m, size) => minFilter(maxFilter(m, size), size);
  const opening = (m, size) => maxFilter(minFilter(m, size), size);

  // morphology.box_blur (3x3) as OpenCV's cv2.blur computes it on float32: sums of three along
  // each row in float64, running sums of those down the columns in float64, times 1/9, float32.
  function boxBlur3(m) {
    const { h, w } = m, rows = new Float64Array((h + 2) * w), out = map(h, w), a = toF32(m).a, o = out.a;
    for (let y = 0; y < h; y++) {  // rows[y + 1]: the sums of three along row y, edges repeated
      const r = y * w, ro = (y + 1) * w;
      if (w === 1) { rows[ro] = a[r] + a[r] + a[r]; continue; }
      rows[ro] = a[r] + a[r] + a[r + 1];
      for (let x = 1; x < w - 1; x++) rows[ro + x] = a[r + x - 1] + a[r + x] + a[r + x + 1];
      rows[ro + w - 1] = a[r + w - 2] + a[r + w - 1] + a[r + w - 1];
    }
    rows.copyWithin(0, w, 2 * w);
    rows.copyWithin((h + 1) * w, h * w, (h + 1) * w);
    const sum = new Float64Array(w), scale = 1 / 9;
    for (let x = 0; x < w; x++) sum[x] = (0 + rows[x]) + rows[w + x];
    for (let y = 0; y < h; y++) {
      const r2 = (y + 2) * w, r0 = y * w;
      for (let x = 0; x < w; x++) {
        const s0 = sum[x] + rows[r2 + x];
        o[r0 + x] = s0 * scale;
        sum[x] = s0 - rows[r0 + x];
      }
    }
    return out;
  }
  // The peak of a map's 3x3 blur, kept on the map: find_ink asks it of the same ink twice.
  function blurPeak(m) {
    if (m.blurPeak === undefined) m.blurPeak = maxOf(boxBlur3(m).a);
    return m.blurPeak;
  }

  // [top, bottom, left, right] of a map's nonzero values (bottom and right exclusive; bottom 0 if none).
  function inkArea(m) {
    const { h, w } = m, a = m.a;
    let top = h, bottom = 0, left = w, right = 0;
    for (let y = 0; y < h; y++) for (let x = 0, i = y * w; x < w; x++, i++) if (a[i]) {
      if (y < top) top = y;
      if (y >= bottom) bottom = y + 1;
      if (x < left) left = x;
      if (x >= right) right = x + 1;
    }
    return [top, bottom, left, right];
  }
  const everywhere = (m) => [0, m.h, 0, m.w];

  // Binary opening with a 1 x length line along `axis` (1: horizontal), outside counted as background:
  // the runs of ink at least `length` long, kept whole, and nothing else.
  // `area` ([top, bottom, left, right]) holds every pixel of the mask.
  function lineOpening(mask, length, axis, area) {
    const { w } = mask, out = like(mask), a = mask.a, b = out.a, [top, bottom, left, right] = area;
    const [first, last] = axis === 1 ? [top, bottom] : [left, right], [from, n] = axis === 1 ? [left, right] : [top, bottom];
    const step = axis === 1 ? 1 : w, stride = axis === 1 ? w : 1;
    for (let line = first; line < last; line++) {
      const base = line * stride;
      for (let i = from; i < n;) {
        if (!a[base + i * step]) { i++; continue; }
        let end = i + 1;
        while (end < n && a[base + end * step]) end++;
        if (end - i >= length) for (let j = i; j < end; j++) b[base + j * step] = 1;
        i = end;
      }
    }
    return out;
  }

  // 8-connected components, numbered as OpenCV's connectedComponents numbers them: in the order of
  // the first 2x2 block (rows two at a time, then columns) that holds a pixel of the component (a
  // block's pixels all touch each other). The order decides ties when marks are ranked by ink.
  // `area` ([top, bottom, left, right]), if given, holds every pixel of the mask: the blocks outside
  // it are empty, so starting on its even row and column numbers the components the same.
  function label(mask, area) {
    const { h, w } = mask, labels = map(h, w, Int32Array), la = labels.a, ma = mask.a;
    const [top, bottom, left, right] = area || everywhere(mask);
    const stack = new Int32Array(h * w);  // a pixel is pushed once: it is labelled as it is pushed
    let n = 0;
    for (let by = top - (top & 1); by < bottom; by += 2) for (let bx = left - (left & 1); bx < right; bx += 2) {
      for (let k = 0; k < 4; k++) {
        const y0 = by + (k >> 1), x0 = bx + (k & 1), i = y0 * w + x0;
        if (y0 >= h || x0 >= w || !ma[i] || la[i]) continue;
        la[i] = ++n;
        let sp = 0;
        stack[sp++] = i;
        while (sp) {
          const j = stack[--sp], y = (j / w) | 0, x = j - y * w;
          const ya = y > 0 ? y - 1 : y, yb = y < h - 1 ? y + 1 : y, xa = x > 0 ? x - 1 : x, xb = x < w - 1 ? x + 1 : x;
          for (let yy = ya; yy <= yb; yy++) for (let xx = xa, kk = yy * w + xa; xx <= xb; xx++, kk++) {
            if (ma[kk] && !la[kk]) { la[kk] = n; stack[sp++] = kk; }
          }
        }
      }
    }
    return [labels, n];
  }
  // morphology.components: per label 1..n its pixel count, summed weight (float64, in raster order
  // as numpy.bincount sums) and box (left, top, right, bottom; right and bottom exclusive).
  function components(labels, n, weight, area) {  // area: as label's
    const { h, w } = labels, la = labels.a, wa = weight ? weight.a : null, [top, bottom, left, right] = area || everywhere(labels);
    const pixels = new Int32Array(n + 1), ink = new Float64Array(n + 1);
    const lefts = new Int32Array(n + 1).fill(w), tops = new Int32Array(n + 1).fill(h);
    const rights = new Int32Array(n + 1), bottoms = new Int32Array(n + 1);
    for (let y = top; y < bottom; y++) for (let x = left, i = y * w + left; x < right; x++, i++) {
      const l = la[i];
      if (!l) continue;
      pixels[l]++;
      ink[l] += wa ? wa[i] : 1;
      if (x < lefts[l]) lefts[l] = x;
      if (y < tops[l]) tops[l] = y;
      if (x >= rights[l]) rights[l] = x + 1;
      if (y >= bottoms[l]) bottoms[l] = y + 1;
    }
    const out = [];
    for (let l = 1; l <= n; l++) {
      out.push({ label: l, pixels: pixels[l], ink: ink[l], box: [lefts[l], tops[l], rights[l], bottoms[l]] });
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

  // ink.grey for a canvas's RGBA bytes: float32 grey 0..1; `lut` is grey() of each grey level, as
  // NumPy computes it. A transparent canvas is read by its alpha channel alone.
  function grey(rgba, w, h, lut) {
    if (Math.min(w, h) < MIN_SIDE) throw new Error(`${w}x${h} is too small to hold a digit`);
    const g = map(h, w), o = g.a, n = w * h;
    // Each pixel as one little-endian word (as every browser lays out RGBA): red in the low byte.
    const words = rgba.byteOffset % 4 === 0 ? new Uint32Array(rgba.buffer, rgba.byteOffset, n) : new Uint32Array(Uint8Array.from(rgba).buffer);
    let lo = 255, hi = 0;
    for (let i = 0; i < n; i++) { const a = words[i] >>> 24; if (a < lo) lo = a; if (a > hi) hi = a; }
    if (hi - lo > 127) {
      for (let i = 0; i < n; i++) o[i] = f32(1 - f32((words[i] >>> 24) / 255));
      return g;
    }
    const W0 = f32(0.299), W1 = f32(0.587), W2 = f32(0.114);
    for (let i = 0; i < n; i++) {
      const v = words[i];
      if ((v & 0xffff) === ((v >>> 8) & 0xffff)) { o[i] = lut[v & 0xff]; continue; }  // red = green = blue
      const r = v & 0xff, gg = (v >>> 8) & 0xff, b = (v >>> 16) & 0xff;
      o[i] = f32(f32(f32(f32(r / 255) * W0) + f32(f32(gg / 255) * W1)) + f32(f32(b / 255) * W2));
    }
    return g;
  }

  // Pillow's resize of a float ("F") image (Resample.c): its coefficients (precompute_coeffs),
  // one pass along each axis with sums in float64, each pass stored as float32. Pillow does the
  // vertical pass first when it takes away more than twice the rows the horizontal takes columns.
  function sinc(x) { if (x === 0) return 1; x *= Math.PI; return Math.sin(x) / x; }
  const FILTERS = {
    box: [(x) => (x > -0.5 && x <= 0.5) ? 1 : 0, 0.5],
    lanczos: [(x) => (-3 <= x && x < 3) ? sinc(x) * sinc(x / 3) : 0, 3],
  };
  // Kept by sizes and filter: the pad's reduction asks the same ones every answer.
  const coefficientsMade = new Map();
  function coefficients(inSize, outSize, filters) {
    const key = `${inSize} ${outSize} ${filters === FILTERS.box ? "box" : "lanczos"}`;
    if (!coefficientsMade.has(key)) coefficientsMade.set(key, makeCoefficients(inSize, outSize, filters));
    return coefficientsMade.get(key);
  }
  // {starts, lengths, k}: output i sums k[i * taps + t] times input starts[i] + t, t < lengths[i].
  function makeCoefficients(inSize, outSize, [filter, support0]) {
    const scale = inSize / outSize, filterscale = Math.max(1, scale), support = support0 * filterscale;
    const out = [];
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1 / filterscale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      const k = [];
      let ww = 0;
      for (let x = 0; x < xmax; x++) { const v = filter((x + xmin - center + 0.5) * ss); k.push(v); ww += v; }
      out.push([xmin, ww !== 0 ? k.map((v) => v / ww) : k]);
    }
    const taps = Math.max(1, ...out.map(([, k]) => k.length));
    const starts = new Int32Array(outSize), lengths = new Int32Array(outSize), k = new Float64Array(outSize * taps);
    out.forEach(([start, ks], i) => { starts[i] = start; lengths[i] = ks.length; k.set(ks, i * taps); });
    return { starts, lengths, k, taps };
  }
  function sameRow(a, i, j, n) {
    for (let x = 0; x < n; x++) if (a[i + x] !== a[j + x]) return false;
    return true;
  }
  function resamplePass(m, size, axis, filter) {  // axis 1: along rows (to `size` columns)
    const { starts, lengths, k, taps } = coefficients(axis === 1 ? m.w : m.h, size, filter);
    const o = axis === 1 ? map(m.h, size) : map(size, m.w), a = m.a, b = o.a, w = m.w, ow = o.w;
    // A row the same as the one before (the blank paper of a pad) gives the same sums: copied.
    if (axis === 1) {
      for (let y = 0; y < o.h; y++) {
        if (y > 0 && sameRow(a, (y - 1) * w, y * w, w)) { b.copyWithin(y * ow, (y - 1) * ow, y * ow); continue; }
        for (let x = 0; x < ow; x++) {
          const base = y * w + starts[x], kb = x * taps, n = lengths[x];
          let ss = 0;
          for (let i = 0; i < n; i++) ss += a[base + i] * k[kb + i];
          b[y * ow + x] = ss;
        }
      }
      return o;
    }
    const acc = new Float64Array(w);
    for (let y = 0; y < o.h; y++) {  // each output row summed tap by tap, in the taps' order
      const kb = y * taps, n = lengths[y], start = starts[y];
      acc.fill(0);
      for (let i = 0; i < n; i++) {
        const kv = k[kb + i], r = (start + i) * w;
        for (let x = 0; x < w; x++) acc[x] += a[r + x] * kv;
      }
      b.set(acc, y * ow);
    }
    return o;
  }
  function resample(m, w, h, filter) {
    let cur = toF32(m);
    if (w === m.w && h === m.h) return { h, w, a: Float32Array.from(cur.a) };
    const verticalFirst = w !== m.w && h !== m.h && Math.max(0, m.h - h) > 2 * Math.max(0, m.w - w);
    if (verticalFirst) return resamplePass(resamplePass(cur, h, 0, filter), w, 1, filter);
    if (w !== m.w) cur = resamplePass(cur, w, 1, filter);
    if (h !== m.h) cur = resamplePass(cur, h, 0, filter);
    return cur;
  }

  // background.reduced: by area (Pillow's BOX) so the longer side is at most `side`, and the factor.
  function reducedShape(h, w, side) {
    const factor = Math.max(h, w) / side;
    return factor <= 1 ? [[h, w], 1] : [[Math.max(1, pyRound(h / factor)), Math.max(1, pyRound(w / factor))], factor];
  }
  function reduced(m, side) {
    const [[h, w], factor] = reducedShape(m.h, m.w, side);
    return factor === 1 ? [m, 1] : [resample(m, w, h, FILTERS.box), factor];
  }
  const analysisSide = (h, w) => Math.max(h, w) <= 2 * ANALYSIS_SIDE ? ANALYSIS_SIDE : LARGE_SIDE;

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
    const o = map(h, w, coarse.a.constructor);
    for (let by = 0; by < coarse.h; by++) for (let bx = 0; bx < coarse.w; bx++) {
      const v = coarse.a[by * coarse.w + bx];
      for (let y = ys[by]; y < ys[by + 1]; y++) for (let x = xs[bx]; x < xs[bx + 1]; x++) o.a[y * w + x] = v;
    }
    return o;
  }
  // a - b elementwise, float64 when either is (NumPy's promotion), else float32.
  function minus(a, b) {
    const f64 = isF64(a) || isF64(b), o = like(a, f64 ? Float64Array : Float32Array);
    for (let i = 0; i < o.a.length; i++) o.a[i] = f64 ? a.a[i] - b.a[i] : f32(a.a[i] - b.a[i]);
    return o;
  }
  function maximum(a, b) {
    const o = like(a, isF64(a) || isF64(b) ? Float64Array : Float32Array);
    for (let i = 0; i < a.a.length; i++) o.a[i] = Math.max(a.a[i], b.a[i]);
    return o;
  }
  function above(m, t) { const o = like(m, Uint8Array); for (let i = 0; i < m.a.length; i++) o.a[i] = m.a[i] > t ? 1 : 0; return o; }
  function below(m, t) { let n = 0; for (let i = 0; i < m.a.length; i++) if (m.a[i] < t) n++; return n; }
  // 1 where `a` is set and `b` is not.
  function without(a, b) { const o = like(a, Uint8Array); for (let i = 0; i < a.a.length; i++) o.a[i] = a.a[i] && !b.a[i] ? 1 : 0; return o; }

  // background.backgrounds: (paper, board, dark ink, light ink). The plain-paper rule raises the paper
  // to a float64 percentile, so NumPy makes the paper, and the dark ink from it, float64.
  function backgrounds(s, shape, window, sMedian) {
    const [light, darkest, blocks] = pooled(s, shape);
    let paper = expand(closing(darkest, window), blocks, s.h, s.w);
    const [lo, mid, hi] = percentiles(borderOf(s), [5, 50, 95]);
    if (hi - lo < PLAIN && mid > sMedian - PLAIN / 2 && below(s, (lo + minOf(s.a)) / 2) / s.a.length < 0.35) {
      const raised = like(paper, Float64Array);
      for (let i = 0; i < paper.a.length; i++) raised.a[i] = Math.max(paper.a[i], lo);
      paper = raised;
    }
    const board = expand(opening(light, window), blocks, s.h, s.w);
    const top = expand(maxFilter(light, window), blocks, s.h, s.w);
    const f64 = isF64(paper), darkInk = like(s, f64 ? Float64Array : Float32Array), spread = like(s), lightInk = like(s);
    for (let i = 0; i < s.a.length; i++) {
      const p = paper.a[i];
      darkInk.a[i] = f64 ? Math.max(0, (p - s.a[i]) / Math.max(p, 0.05)) : Math.max(0, f32(f32(p - s.a[i]) / Math.max(p, f32(0.05))));
      spread.a[i] = f32(top.a[i] - board.a[i]);
    }
    const floor = f32(Math.max(MIN_CONTRAST, maxOf(spread.a) / 3));
    for (let i = 0; i < s.a.length; i++) lightInk.a[i] = Math.max(0, f32(f32(s.a[i] - board.a[i]) / Math.max(spread.a[i], floor)));
    return [paper, board, darkInk, lightInk];
  }

  // background.background: step 1, with the window widened for broad strokes, and the reach.
  function background(s) {
    const [coarse] = reducedShape(s.h, s.w, BACKGROUND_SIDE);
    let window = Math.max(3, pyRound(Math.max(...coarse) / 8)) | 1;
    const sMedian = median(s.a);
    let [paper, board, darkInk, lightInk] = backgrounds(s, coarse, window, sMedian);
    const either = maximum(darkInk, lightInk);
    if (maxOf(boxBlur3(either).a) < MIN_CONTRAST) throw new Error("no ink found: the image is blank or has too little contrast");
    const reachOf = () => Math.max(3, Math.floor(Math.floor(window * s.h / coarse[0]) / 2)) | 1;
    const near = maxFilter(above(either, as(either, 0.5 * maxOf(either.a))), reachOf());
    const [lo, hi] = percentiles(pick(s, near), [2, 98]);
    const darkSide = like(s, Uint8Array), cut = (lo + hi) / 2;
    for (let i = 0; i < s.a.length; i++) darkSide.a[i] = s.a[i] < cut && near.a[i] ? 1 : 0;
    const width = Math.max(strokeWidth(darkSide), strokeWidth(without(near, darkSide)));
    const broad = pyRound(2.2 * width * coarse[0] / s.h) | 1;
    if (broad > window) {
      window = Math.min(broad, Math.max(3, Math.floor(Math.max(...coarse) / 3)) | 1);
      [paper, board, darkInk, lightInk] = backgrounds(s, coarse, window, sMedian);
    }
    return [paper, board, darkInk, lightInk, reachOf()];
  }

  // ink.dark_is_ink: step 2, the polarity.
  function darkIsInk(s, darkInk, lightInk, reach) {
    const peakDark = blurPeak(darkInk), peakLight = blurPeak(lightInk);
    if (Math.min(peakDark, peakLight) < 0.35 * Math.max(peakDark, peakLight)) return peakDark > peakLight;
    const either = maximum(darkInk, lightInk);
    const inner = maxFilter(above(either, as(either, 0.5 * maxOf(either.a))), reach);
    const ring = without(maxFilter(inner, reach), inner);
    const [lo, hi] = percentiles(pick(s, inner), [2, 98]);
    const around = count(ring.a) >= 20 ? pick(s, ring) : borderOf(s);
    return median(around) > (lo + hi) / 2;
  }

  // ink.plain_ink: (dark ink, contrast) on an even background, all float32, or null.
  function plainInk(s) {
    const { h, w } = s, a = s.a, paper = a[0];
    if (paper < 0.5) return null;
    for (let x = 0; x < w; x++) if (a[x] !== paper || a[(h - 1) * w + x] !== paper) return null;
    for (let y = 0; y < h; y++) if (a[y * w] !== paper || a[y * w + w - 1] !== paper) return null;
    let hi = -Infinity, lo = Infinity;
    for (let i = 0; i < a.length; i++) { const v = a[i]; if (v > hi) hi = v; if (v < lo) lo = v; }
    if (hi !== paper) return null;
    if (below(s, f32((paper + lo) / 2)) / a.length >= 0.35) return null;
    const contrast = like(s), ink = like(s), by = f32(Math.max(paper, 0.05)), c = contrast.a, k = ink.a;
    for (let i = 0; i < a.length; i++) { const v = f32(paper - a[i]); c[i] = v; k[i] = f32(v / by); }
    if (blurPeak(ink) < 0.35) return null;
    return [ink, contrast];
  }

  // ink.strong_ink: step 3, ink relative to its strongest, and what reaches STRONG with WEAK joined.
  function strongInk(ink) {
    const peak = blurPeak(ink);
    if (peak < MIN_CONTRAST) throw new Error(NO_INK);
    const scaled = like(ink), f64 = isF64(ink), a = ink.a, sa = scaled.a, len = a.length;
    if (f64) for (let i = 0; i < len; i++) sa[i] = Math.min(1, Math.max(0, a[i] / peak));
    else for (let i = 0; i < len; i++) sa[i] = Math.min(1, Math.max(0, f32(a[i] / peak)));
    // The weak ink labelled on its box only: the labels serve to tell which parts reach STRONG.
    const { h, w } = ink, weak = as(scaled, WEAK);
    let top = h, bottom = 0, left = w, right = 0;
    for (let y = 0; y < h; y++) for (let x = 0, i = y * w; x < w; x++, i++) if (sa[i] > weak) {
      if (y < top) top = y;
      if (y >= bottom) bottom = y + 1;
      if (x < left) left = x;
      if (x >= right) right = x + 1;
    }
    if (bottom === 0) throw new Error(NO_INK);
    const part = map(bottom - top, right - left, Uint8Array), pw = part.w;
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) part.a[(y - top) * pw + x - left] = sa[y * w + x] > weak ? 1 : 0;
    const [weakLabels, n] = label(part);
    const keep = new Uint8Array(n + 1), wl = weakLabels.a;
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) if (sa[y * w + x] > STRONG) keep[wl[(y - top) * pw + x - left]] = 1;
    keep[0] = 0;
    const mask = like(scaled, Uint8Array), mk = mask.a;
    let inked = false;
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) if ((mk[y * w + x] = keep[wl[(y - top) * pw + x - left]])) inked = true;
    if (!inked) throw new Error(NO_INK);
    return [scaled, mask];
  }

  // ink.marks_of: step 5, the marks (gaps under 1% closed for the labelling), most ink first.
  const marksGap = (h, w) => Math.max(3, pyRound(Math.min(h, w) / 100)) | 1;
  function marksOf(mask, ink, closing) {  // closing: the gap to close, when not marksGap's
    const { h, w } = mask, gap = closing || marksGap(h, w);
    // The closing and labelling on the mask's box and a margin only: outside it the closing is
    // empty, and the box starts on an even row and column so the labels' 2x2 blocks are the same.
    const [top, bottom, left, right] = inkArea(mask);
    if (bottom === 0) throw new Error(NO_INK);
    let y0 = Math.max(0, top - gap - 1), x0 = Math.max(0, left - gap - 1);
    y0 -= y0 & 1;
    x0 -= x0 & 1;
    const y1 = Math.min(h, bottom + gap + 1), x1 = Math.min(w, right + gap + 1), cw = x1 - x0;
    const [near, n] = label(minFilter(maxFilter(region(mask, y0, y1, x0, x1), gap), gap));
    const labels = map(h, w, Int32Array);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
      const i = y * w + x;
      if (mask.a[i]) labels.a[i] = near.a[(y - y0) * cw + x - x0];
    }
    let marks = components(labels, n, ink, [y0, y1, x0, x1]).sort((a, b) => b.ink - a.ink);  // stable, as Python's sorted
    const biggest = marks.length ? marks[0].pixels : 0;
    marks = marks.filter((m) => m.pixels >= Math.max(3, 0.01 * biggest));
    if (!marks.length) throw new Error(NO_INK);
    return [labels, marks];
  }

  // ink.transparent_canvas: the alpha (uint8) of a drawing on a clean transparent canvas (every
  // edge pixel transparent, alpha over half its range), small enough to be read whole; else null.
  function transparentCanvas(rgba, w, h) {
    if (Math.min(w, h) < MIN_SIDE || Math.max(w, h) > 2 * ANALYSIS_SIDE) return null;
    const alpha = map(h, w, Uint8Array), a = alpha.a;
    let hi = 0;
    for (let i = 0; i < w * h; i++) { const v = rgba[4 * i + 3]; a[i] = v; if (v > hi) hi = v; }
    for (let x = 0; x < w; x++) if (a[x] || a[(h - 1) * w + x]) return null;
    for (let y = 0; y < h; y++) if (a[y * w] || a[y * w + w - 1]) return null;
    return hi > 127 ? alpha : null;
  }

  // canvas.white_pad: the ink (255 - grey, uint8) of a drawing on a clean white pad (the page's own:
  // opaque, R = G = B everywhere, every edge pixel pure white, some ink darker than mid grey, no
  // ruled line), small enough to be read whole; else null.
  function whitePad(rgba, w, h) {
    if (Math.min(w, h) < MIN_SIDE || Math.max(w, h) > 2 * ANALYSIS_SIDE) return null;
    const ink = map(h, w, Uint8Array), a = ink.a;
    let hi = 0;
    for (let i = 0; i < w * h; i++) {
      const v = rgba[4 * i];
      if (rgba[4 * i + 1] !== v || rgba[4 * i + 2] !== v || rgba[4 * i + 3] !== 255) return null;
      a[i] = 255 - v;
      if (a[i] > hi) hi = a[i];
    }
    for (let x = 0; x < w; x++) if (a[x] || a[(h - 1) * w + x]) return null;
    for (let y = 0; y < h; y++) if (a[y * w] || a[y * w + w - 1]) return null;
    return hi > 127 && !ruled(ink) ? ink : null;
  }

  // canvas.ruled: a row (column) inked over RULE_SPAN of the width (height) whose rows RULE_REACH
  // away on both sides hold RULE_STEP of the width less ink: a ruled line, which the canvas path keeps.
  function ruled(ink) {
    const { h, w } = ink, a = ink.a;
    const rows = new Int32Array(h), columns = new Int32Array(w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (a[y * w + x] > RULE_INK) { rows[y]++; columns[x]++; }
    for (const [counts, side] of [[rows, w], [columns, h]]) {
      const n = counts.length;
      for (let i = 0; i < n; i++) {
        const before = i >= RULE_REACH ? counts[i - RULE_REACH] : 0, after = i + RULE_REACH < n ? counts[i + RULE_REACH] : 0;
        if (counts[i] >= RULE_SPAN * side && counts[i] - Math.max(before, after) >= RULE_STEP * side) return true;
      }
    }
    return false;
  }

  // ink.canvas_ink: find_ink on a clean transparent canvas's alpha, on the ink's box and a margin
  // of clear canvas, not reduced; [found, [top, left]], or null where the plain-paper rule fails.
  function canvasInk(alpha) {
    const { h, w } = alpha, a = alpha.a;
    let top = h, bottom = 0, left = w, right = 0, hi = 0;
    for (let y = 0; y < h; y++) for (let x = 0, i = y * w; x < w; x++, i++) if (a[i]) {
      if (y < top) top = y;
      if (y >= bottom) bottom = y + 1;
      if (x < left) left = x;
      if (x >= right) right = x + 1;
      if (a[i] > hi) hi = a[i];
    }
    const y0 = Math.max(0, top - CANVAS_MARGIN), x0 = Math.max(0, left - CANVAS_MARGIN);
    const part = region(alpha, y0, Math.min(h, bottom + CANVAS_MARGIN), x0, Math.min(w, right + CANVAS_MARGIN));
    let dark = 0;
    for (let i = 0; i < part.a.length; i++) if (part.a[i] > hi / 2) dark++;
    if (dark / a.length >= 0.35) return null;  // mostly ink: the polarity must be weighed
    const contrast = like(part, Float32Array);
    for (let i = 0; i < part.a.length; i++) contrast.a[i] = f32(part.a[i] / 255);
    if (blurPeak(contrast) < 0.35) return null;  // faint ink
    const [strong, mask] = strongInk(contrast);
    // ink.canvas_gap: the gap closed on the canvas's analysis copy, in the canvas's pixels.
    const [[sh, sw], factor] = reducedShape(h, w, analysisSide(h, w));
    const [labels, marks] = marksOf(mask, strong, pyRound(marksGap(sh, sw) * factor) | 1);
    return [{ ink: strong, mask, marks, labels, contrast, factor: 1 }, [y0, x0]];
  }

  // ink.find_ink on a grey map, on a copy at most `side` long (by default ink.analysis_side).
  function findInk(g, side) {
    const [s, factor] = reduced(g, side || analysisSide(g.h, g.w));
    let ink, contrast;
    const plain = plainInk(s);
    if (plain) [ink, contrast] = plain;
    else {
      const [paper, board, darkInk, lightInk, reach] = background(s);
      const dark = darkIsInk(s, darkInk, lightInk, reach);
      ink = dark ? darkInk : lightInk;
      contrast = dark ? minus(paper, s) : minus(s, board);
    }
    const [strong, kept] = strongInk(ink);
    const mask = without(kept, formLines(kept));
    const [labels, marks] = marksOf(mask, strong);
    return { ink: strong, mask, marks, labels, contrast, factor };
  }

  // ink.closer_look: small marks in a reduced image, found again on the crop around them.
  function closerLook(g, found, marks) {
    const [left, top, right, bottom] = bounds(marks).map((v) => pyRound(v * found.factor));
    const size = Math.max(bottom - top, right - left);
    if (found.factor <= 1 || size * 2.5 > Math.max(g.h, g.w)) return null;
    const margin = Math.trunc(size * 0.6) + 4;
    const y0 = Math.max(0, top - margin), x0 = Math.max(0, left - margin);
    const crop = region(g, y0, Math.min(g.h, bottom + margin), x0, Math.min(g.w, right + margin));
    return [findInk(crop), y0, x0];
  }

  // lines.corner: boxes (left, top, right, bottom).
  function corner(one, other) {
    if ((one[2] - one[0]) < (one[3] - one[1])) [one, other] = [other, one];  // `one` the horizontal line
    const [hLeft, hTop, hRight, hBottom] = one, [vLeft, vTop, vRight, vBottom] = other;
    const tolerance = 3 + Math.max(hBottom - hTop, vRight - vLeft);
    const across = Math.min(Math.abs(hLeft - vLeft), Math.abs(hLeft - vRight), Math.abs(hRight - vLeft), Math.abs(hRight - vRight));
    const down = Math.min(Math.abs(vTop - hTop), Math.abs(vTop - hBottom), Math.abs(vBottom - hTop), Math.abs(vBottom - hBottom));
    return across <= tolerance && down <= tolerance;
  }
  const sameBox = (a, b) => a.every((v, i) => v === b[i]);

  // lines.form_lines: step 4, the pixels of form lines.
  function formLines(mask) {
    const { h, w } = mask, lines = like(mask, Uint8Array), candidates = [], area = inkArea(mask);
    for (const [axis, side] of [[1, w], [0, h]]) {
      const run = lineOpening(mask, Math.max(MIN_LINE, Math.floor(side / 4)), axis, area);
      if (!any(run.a)) continue;
      const [labels, n] = label(run, area);
      for (const m of components(labels, n, null, area)) {
        const [left, top, right, bottom] = m.box;
        const length = axis === 1 ? right - left : bottom - top;
        if (length >= 8 * m.pixels / Math.max(1, length)) candidates.push({ axis, labels, id: m.label, box: m.box, length });
      }
    }
    if (!candidates.length) return lines;
    const longest = Math.max(...candidates.map((c) => c.length));
    const rest = like(mask, Uint8Array);
    rest.a.set(mask.a);
    const has = (line, i) => line.labels.a[i] === line.id;
    const each = (line, fn) => {  // fn(index) for each of a line's pixels (all inside its box)
      const [l, t, r, b] = line.box;
      for (let y = t; y < b; y++) for (let x = l; x < r; x++) if (has(line, y * w + x)) fn(y * w + x);
    };
    for (const line of candidates) if (line.length >= 0.75 * longest) each(line, (i) => { rest.a[i] = 0; });
    if (count(rest.a) < 0.15 * count(mask.a)) return lines;
    const rowHas = new Uint8Array(h), colHas = new Uint8Array(w), rows = [], cols = [];
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (rest.a[y * w + x]) { rowHas[y] = 1; colHas[x] = 1; }
    for (let y = 0; y < h; y++) if (rowHas[y]) rows.push(y);
    for (let x = 0; x < w; x++) if (colHas[x]) cols.push(x);
    const extent = { 1: cols[cols.length - 1] + 1 - cols[0], 0: rows[rows.length - 1] + 1 - rows[0] };
    const framing = candidates.filter((c) => c.length >= 0.9 * extent[c.axis]);
    const add = (line) => each(line, (i) => { lines.a[i] = 1; });
    for (const line of candidates) {
      const { axis, box, length } = line;
      if (length >= 0.9 * extent[axis] && framing.some((o) => !sameBox(o.box, box) && axis !== o.axis && corner(box, o.box))) {
        add(line);
        continue;
      }
      const [start, end] = axis === 1 ? [box[0], box[2]] : [box[1], box[3]];
      if (start === 0 && end === (axis === 1 ? w : h)) { add(line); continue; }
      if (axis === 0 || box[1] < (rows[0] + rows[rows.length - 1]) / 2) continue;
      const inkStart = cols[0], inkEnd = cols[cols.length - 1] + 1;
      // lines.touches: some of the rest within one pixel (8-connected) of the line's pixels.
      let touches = false;
      for (let y = Math.max(0, box[1] - 1); y < Math.min(h, box[3] + 1) && !touches; y++) {
        for (let x = Math.max(0, box[0] - 1); x < Math.min(w, box[2] + 1) && !touches; x++) {
          if (!rest.a[y * w + x]) continue;
          for (let dy = -1; dy <= 1 && !touches; dy++) for (let dx = -1; dx <= 1; dx++) {
            const yy = y + dy, xx = x + dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w && has(line, yy * w + xx)) { touches = true; break; }
          }
        }
      }
      const margin = (touches ? 0.25 : 0.08) * (inkEnd - inkStart);
      if (start <= inkStart - margin && end >= inkEnd + margin) add(line);
    }
    return lines;
  }

  function bounds(marks) {
    return [Math.min(...marks.map((m) => m.box[0])), Math.min(...marks.map((m) => m.box[1])),
            Math.max(...marks.map((m) => m.box[2])), Math.max(...marks.map((m) => m.box[3]))];
  }

  // digit.digit_marks: the main mark with the pieces close to it, and the other digit-sized marks.
  function digitMarks(marks) {
    const main = marks[0], [mainLeft, mainTop, mainRight, mainBottom] = main.box;
    const reach = Math.max(mainBottom - mainTop, mainRight - mainLeft) / 3;
    let digit = [main], rest = marks.slice(1);
    const piece = (m, left, right) => {
      const [l, t, r, b] = m.box;
      const stacked = Math.min(r, right) - Math.max(l, left) >= 0.5 * (r - l);
      return stacked || m.pixels < 0.3 * main.pixels || (b - t) < 0.45 * (mainBottom - mainTop);
    };
    for (;;) {
      const [left, top, right, bottom] = bounds(digit);
      const close = rest.filter((m) => m.box[1] < bottom + reach && m.box[3] > top - reach &&
        m.box[0] < right + reach && m.box[2] > left - reach && piece(m, left, right));
      if (!close.length) break;
      digit = digit.concat(close);
      rest = rest.filter((m) => !close.includes(m));
    }
    const [, top, , bottom] = bounds(digit);
    const others = rest.filter((m) => m.pixels >= 0.25 * main.pixels && m.box[3] - m.box[1] >= 0.4 * (bottom - top));
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

  // digit.fit_box: Pillow's Lanczos to the 20 px box, scaled so the strongest is 1.
  function fitBox(crop) {
    const scale = BOX / Math.max(crop.h, crop.w);
    const w = Math.max(1, pyRound(crop.w * scale)), h = Math.max(1, pyRound(crop.h * scale));
    const out = resample(crop, w, h, FILTERS.lanczos);
    for (let i = 0; i < out.a.length; i++) out.a[i] = Math.max(0, out.a[i]);
    const peak = maxOf(out.a);
    if (peak > 0) for (let i = 0; i < out.a.length; i++) out.a[i] = Math.min(1, Math.max(0, f32(out.a[i] / peak)));
    return out;
  }

  // digit.centre_of_mass_place: the centre of mass from row and column sums in float64.
  function centreOfMassPlace(digit) {
    const byRow = new Float64Array(digit.h), byCol = new Float64Array(digit.w);
    for (let y = 0; y < digit.h; y++) for (let x = 0; x < digit.w; x++) {
      const v = digit.a[y * digit.w + x];
      byRow[y] += v;
      byCol[x] += v;
    }
    let total = 0, sy = 0, sx = 0;
    for (let y = 0; y < digit.h; y++) { total += byRow[y]; sy += byRow[y] * y; }
    for (let x = 0; x < digit.w; x++) sx += byCol[x] * x;
    const cy = sy / total, cx = sx / total;
    const top = Math.min(Math.max(pyRound((SIZE - 1) / 2 - cy), 0), SIZE - digit.h);
    const left = Math.min(Math.max(pyRound((SIZE - 1) / 2 - cx), 0), SIZE - digit.w);
    const out = new Uint8Array(SIZE * SIZE);
    for (let y = 0; y < digit.h; y++) for (let x = 0; x < digit.w; x++) {
      out[(top + y) * SIZE + left + x] = pyRound(f32(digit.a[y * digit.w + x] * 255));
    }
    return out;
  }

  // digit.image_box: a box at the analysis scale in the image's own pixels.
  function imageBox([left, top, right, bottom], factor, [y0, x0]) {
    const imageLeft = Math.trunc(x0 + left * factor), imageTop = Math.trunc(y0 + top * factor);
    const width = Math.max(1, pyRound((right - left) * factor)), height = Math.max(1, pyRound((bottom - top) * factor));
    return [imageLeft, imageTop, imageLeft + width, imageTop + height];
  }

  // digit.read_marks: the Reading of `marks` in `found`, its copy at `offset` (top, left) in an
  // image of `shape` (height, width).
  function readMarks(shape, found, marks, offset, several) {
    // The marks' pixels lie in their box: it and a ring of one pixel (for the near filter) are read.
    const { w, h } = found.labels, la = found.labels.a, [left, top, right, bottom] = bounds(marks);
    const kept = new Uint8Array(Math.max(...marks.map((m) => m.label)) + 1);
    for (const m of marks) kept[m.label] = 1;
    const ny = Math.max(0, top - 1), nx = Math.max(0, left - 1), keep = map(Math.min(h, bottom + 1) - ny, Math.min(w, right + 1) - nx, Uint8Array);
    for (let y = ny; y < ny + keep.h; y++) for (let x = nx; x < nx + keep.w; x++) {
      const l = la[y * w + x];
      if (l < kept.length && kept[l]) keep.a[(y - ny) * keep.w + x - nx] = 1;
    }
    const box = imageBox([left, top, right, bottom], found.factor, offset);
    const doubts = several ? [SEVERAL] : [];
    const strongContrast = [];
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) {
      const i = y * w + x;
      if (keep.a[(y - ny) * keep.w + x - nx] && found.ink.a[i] > STRONG) strongContrast.push(found.contrast.a[i]);
    }
    if (!strongContrast.length || median(strongContrast, isF64(found.contrast)) < FAINT) doubts.push(FAINT_INK);
    if (box[3] - box[1] < MIN_HEIGHT && box[2] - box[0] < MIN_HEIGHT) doubts.push(SMALL);
    if (box[0] <= 0 || box[1] <= 0 || box[2] >= shape[1] || box[3] >= shape[0]) doubts.push(BORDER);
    const near = maxFilter(keep, 3);
    const crop = map(bottom - top, right - left, found.ink.a.constructor);
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) {
      crop.a[(y - top) * crop.w + x - left] = near.a[(y - ny) * near.w + x - nx] ? found.ink.a[y * w + x] : 0;
    }
    return { image: centreOfMassPlace(fitBox(evenStrokes(crop))), box, doubts };
  }

  // digit.read_digit for a drawing (digit.find_digit: a canvas is never in MNIST's form):
  // {image: 28x28 uint8, box: [left, top, right, bottom] (right and bottom exclusive), doubts}.
  function readDigit(rgba, w, h, lut) {
    const alpha = transparentCanvas(rgba, w, h) || whitePad(rgba, w, h), onCanvas = alpha && canvasInk(alpha);
    if (onCanvas) {
      const [found, offset] = onCanvas, [digit, others] = digitMarks(found.marks);
      return readMarks([h, w], found, digit, offset, others.length > 0);
    }
    const g = grey(rgba, w, h, lut);
    let found = findInk(g), offset = [0, 0];
    let [digit, others] = digitMarks(found.marks);
    const closer = closerLook(g, found, digit);
    if (closer) {
      [found, ...offset] = closer;
      [digit] = digitMarks(found.marks);  // the others were counted on the whole image
    }
    return readMarks([g.h, g.w], found, digit, offset, others.length > 0);
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
      // The weights as float64 too (exact): the sums are float64, so no conversion in the loops.
      if (layer.weight) layer.w64 = Float64Array.from(layer.w);
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
  // The convolution as one matrix product over the patches (im2col, built once a layer): each
  // output summed in float64 in the (input channel, row, column) order of the kernel, several
  // outputs at a time so the sums run side by side.
  function conv(x, [c, h, w], layer) {
    const [o, ci, k] = layer.kernel, p = layer.padding, ph = h + 2 * p, pw = w + 2 * p;
    const oh = ph - k + 1, ow = pw - k + 1, n = oh * ow, J = ci * k * k, out = new Float32Array(o * n);
    const xp = new Float32Array(ci * ph * pw);  // zero padding made once, so the loops test no bounds
    for (let ic = 0; ic < ci; ic++) for (let y = 0; y < h; y++) {
      xp.set(x.subarray((ic * h + y) * w, (ic * h + y + 1) * w), (ic * ph + y + p) * pw + p);
    }
    const cols = new Float64Array(J * n);  // row j: kernel tap j's input for each output position
    for (let ic = 0; ic < ci; ic++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
      const row = ((ic * k + ky) * k + kx) * n, base = ic * ph * pw + ky * pw + kx;
      for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) cols[row + y * ow + xx] = xp[base + y * pw + xx];
    }
    const wt = layer.w64, n4 = n - (n % 4), o2 = o - (o % 2);
    for (let oc = 0; oc < o; oc += 2) {  // two output channels by four positions: eight sums side by side
      const two = oc < o2, wa = oc * J, wb = two ? wa + J : wa, ba = layer.b ? layer.b[oc] : 0;
      const bb = two && layer.b ? layer.b[oc + 1] : 0, oa = oc * n, ob = oa + n;
      for (let i = 0; i < n4; i += 4) {
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        for (let j = 0, r = i; j < J; j++, r += n) {
          const u = wt[wa + j], v = wt[wb + j], c0 = cols[r], c1 = cols[r + 1], c2 = cols[r + 2], c3 = cols[r + 3];
          a0 += c0 * u; a1 += c1 * u; a2 += c2 * u; a3 += c3 * u;
          b0 += c0 * v; b1 += c1 * v; b2 += c2 * v; b3 += c3 * v;
        }
        out[oa + i] = a0 + ba; out[oa + i + 1] = a1 + ba; out[oa + i + 2] = a2 + ba; out[oa + i + 3] = a3 + ba;
        if (two) { out[ob + i] = b0 + bb; out[ob + i + 1] = b1 + bb; out[ob + i + 2] = b2 + bb; out[ob + i + 3] = b3 + bb; }
      }
      for (let i = n4; i < n; i++) {
        let a0 = 0, b0 = 0;
        for (let j = 0, r = i; j < J; j++, r += n) { a0 += cols[r] * wt[wa + j]; b0 += cols[r] * wt[wb + j]; }
        out[oa + i] = a0 + ba;
        if (two) out[ob + i] = b0 + bb;
      }
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

  // `ported`: the steps that copy OpenCV's and Pillow's arithmetic, for tests/test_web.py to check
  // against those libraries directly.
  const ported = {
    label: (h, w, bits) => label({ h, w, a: Uint8Array.from(bits) })[0].a,
    boxBlur3: (h, w, values) => boxBlur3({ h, w, a: Float32Array.from(values) }).a,
    resample: (h, w, values, outH, outW, filter) => resample({ h, w, a: Float32Array.from(values) }, outW, outH, FILTERS[filter]).a,
  };
  const api = { readDigit, probabilities, doubtsOf, under, pyRound, SIZE, ported };
  root.Lenet = api;
  if (typeof module !== "undefined") module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);
