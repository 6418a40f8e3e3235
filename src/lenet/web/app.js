// The drawing page without a server: strokes on a canvas, read and answered here (lenet.js) with
// the model model.js defines; the ten probabilities as bars and the 28x28 the network saw.
"use strict";

const model = window.LENET_MODEL;
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const status = document.getElementById("status");
const DEBOUNCE_MS = 120;
// As the served page: MNIST's strokes are 2-3 px of 28, so 20-30 px on a 280 px pad.
const STROKE = 22;
const EMPTY = "Draw a digit.";
// The reader's doubt names the command's option; here, reading a number needs the server.
const SEVERAL_HINT = ["(use --number)", "(reading a number needs lenet serve)"];

let drawing = false, dirty = false, timer = null, last = null;
// What the page answered last, and how long each answer took (ms): read by tests/test_web.py.
window.lenetLast = null;
window.lenetTimes = { ready: null, answers: [] };

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  clearAnswer(EMPTY);
  window.lenetLast = null;
}

function clearAnswer(message) {
  document.getElementById("digit").textContent = "–";
  document.getElementById("confidence").textContent = "";
  seen.clearRect(0, 0, 28, 28);
  renderBars(new Array(model.num_classes).fill(0), -1);
  status.textContent = message;
}

// Built node by node once (the page's policy allows no inline style, so widths are set through
// the DOM), then only the widths, texts and the best one's class change with each answer.
let barParts = null;
function renderBars(probs, best) {
  if (!barParts) {
    barParts = probs.map((_, d) => {
      const li = document.createElement("li");
      const label = document.createElement("span"), bar = document.createElement("span");
      const fill = document.createElement("span"), value = document.createElement("span");
      label.textContent = d;
      bar.className = "bar";
      fill.className = "fill";
      value.className = "p";
      bar.appendChild(fill);
      li.append(label, bar, value);
      return { li, fill, value };
    });
    bars.replaceChildren(...barParts.map((part) => part.li));
  }
  probs.forEach((p, d) => {
    const { li, fill, value } = barParts[d], percent = `${(p * 100).toFixed(1)}%`;
    li.className = d === best ? "best" : "";
    fill.style.width = percent;
    value.textContent = percent;
  });
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

function stroke(from, to) {
  ctx.strokeStyle = "#000";
  ctx.lineWidth = STROKE;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
}

pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  last = point(e);
  stroke(last, last);
  dirty = true;
  schedule();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
  schedule();
});
for (const type of ["pointerup", "pointercancel", "pointerleave"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; schedule(); } });
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(answer, DEBOUNCE_MS);
}

// Python's round(x, 6), as lenet.reading.predict rounds a probability before judging it.
function round6(p) { return Lenet.pyRound(p * 1e6) / 1e6; }

function answer() {
  if (!dirty) { clearAnswer(EMPTY); return; }
  const start = performance.now();
  const pixels = ctx.getImageData(0, 0, pad.width, pad.height).data;
  let reading;
  try {
    reading = Lenet.readDigit(pixels, pad.width, pad.height, model.grey);
  } catch (err) {
    window.lenetLast = { empty: true, error: err.message };
    clearAnswer(err.message.startsWith("no ink found") ? EMPTY : err.message);
    return;
  }
  // A dot or a short dash (ink no longer than two strokes are wide) is not a digit: no answer.
  const [left, top, right, bottom] = reading.box;  // right and bottom exclusive
  if (Math.max(right - left, bottom - top) < 2 * STROKE) {
    window.lenetLast = { empty: true, box: reading.box };
    clearAnswer(`${EMPTY} (this is too small to read: draw it bigger)`);
    return;
  }
  const probs = Lenet.probabilities(model, reading.image);
  let best = 0;
  probs.forEach((p, d) => { if (p > probs[best]) best = d; });
  const probability = round6(probs[best]);
  const doubts = Lenet.doubtsOf(model, probability, reading.doubts).map((d) => d.replace(...SEVERAL_HINT));
  const ms = performance.now() - start;
  window.lenetTimes.answers.push(ms);
  window.lenetLast = { pixels: Array.from(reading.image), probabilities: Array.from(probs), digit: best,
                       probability, doubts, box: reading.box, ms };
  // An answer to doubt says so, with the reasons (several marks, faint, small, low probability).
  status.textContent = doubts.length ? `Unsure: ${doubts.join("; ")}` : "";
  document.getElementById("digit").textContent = best;
  document.getElementById("confidence").textContent = `${(probability * 100).toFixed(1)}%`;
  renderBars(probs, best);
  const img = seen.createImageData(28, 28);
  for (let i = 0; i < reading.image.length; i++) {
    const v = reading.image[i];
    img.data[4 * i] = v; img.data[4 * i + 1] = v; img.data[4 * i + 2] = v; img.data[4 * i + 3] = 255;
  }
  seen.putImageData(img, 0, 0);
}

document.getElementById("clear").addEventListener("click", clearPad);

const acc = model.test_accuracy ? `, ${(model.test_accuracy * 100).toFixed(2)}% on MNIST test` : "";
document.getElementById("model").textContent = `model: ${model.arch}, ${model.parameters.toLocaleString()} parameters${acc}`;
clearPad();
window.lenetTimes.ready = performance.now();

// A few readings of a stroke on a hidden pad right after loading, one a task: the browser
// compiles and then optimises the reader while the user reaches for the pad, rather than during
// the first answers.
const WARM_UPS = 4;
function warmUp(left, spent) {
  const start = performance.now(), spare = document.createElement("canvas");
  spare.width = pad.width;
  spare.height = pad.height;
  const c = spare.getContext("2d", { willReadFrequently: true });
  c.fillStyle = "#fff";
  c.fillRect(0, 0, spare.width, spare.height);
  c.lineWidth = STROKE;
  c.lineCap = "round";
  c.beginPath();
  c.moveTo(140, 50);
  c.lineTo(120, 230);
  c.stroke();
  const reading = Lenet.readDigit(c.getImageData(0, 0, spare.width, spare.height).data, spare.width, spare.height, model.grey);
  Lenet.probabilities(model, reading.image);
  spent += performance.now() - start;
  if (left > 1) setTimeout(() => warmUp(left - 1, spent), 0);
  else window.lenetTimes.warmUp = spent;
}
setTimeout(() => warmUp(WARM_UPS, 0), 0);
