// The drawing page: strokes on a canvas, a debounced POST /predict of its PNG,
// the ten probabilities as bars and the 28x28 image the network saw.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const status = document.getElementById("status");
const DEBOUNCE_MS = 120;
// MNIST strokes are about 2-3 px of 28; on a 280 px pad that is 20-30 px. Thinner
// strokes fade away when the drawing is scaled down to 28x28.
const STROKE = 22;

let drawing = false, dirty = false, timer = null, inFlight = false, last = null;

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  clearAnswer();
}

// No answer on screen: after Clear, and after an error, so a refused file never
// leaves the previous digit looking like its answer.
function clearAnswer() {
  document.getElementById("digit").textContent = "–";
  document.getElementById("confidence").textContent = "";
  seen.clearRect(0, 0, 28, 28);
  renderBars(new Array(10).fill(0), -1);
  status.textContent = "";
}

function renderBars(probs, best) {
  bars.innerHTML = "";
  probs.forEach((p, d) => {
    const li = document.createElement("li");
    if (d === best) li.className = "best";
    li.innerHTML = `<span>${d}</span><span class="bar"><span class="fill" style="width:${(p * 100).toFixed(1)}%"></span></span>` +
                   `<span class="p">${(p * 100).toFixed(1)}%</span>`;
    bars.appendChild(li);
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
  timer = setTimeout(send, DEBOUNCE_MS);
}

async function send() {
  if (!dirty) return;
  if (inFlight) { schedule(); return; }
  inFlight = true;
  const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  try {
    await predict(blob, "image/png");
  } finally {
    inFlight = false;
  }
}

async function predict(body, type) {
  let response;
  try {
    response = await fetch("/predict", { method: "POST", headers: { "Content-Type": type }, body });
  } catch (err) {
    status.textContent = "The server cannot be reached.";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    clearAnswer();
    status.textContent = answer.error || `Error ${response.status}`;
    return;
  }
  status.textContent = "";
  document.getElementById("digit").textContent = answer.digit;
  document.getElementById("confidence").textContent = `${(answer.probability * 100).toFixed(1)}%`;
  renderBars(answer.probabilities, answer.digit);
  const img = seen.createImageData(28, 28);
  answer.preprocessed.flat().forEach((v, i) => {
    img.data.set([v, v, v, 255], i * 4);
  });
  seen.putImageData(img, 0, 0);
}

document.getElementById("clear").addEventListener("click", clearPad);
// An uploaded image replaces the drawing on the pad (fitted, on white), so the pad
// always shows what was read; the file itself is what is sent.
function showOnPad(file) {
  return createImageBitmap(file).then((bitmap) => {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const w = bitmap.width * scale, h = bitmap.height * scale;
    ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    dirty = false;  // the pad now shows the file; drawing on it again sends the pad
  }, () => {
    clearPad();  // the browser cannot show it either: an empty pad, the server says why
  });
}

document.getElementById("file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) {
    await showOnPad(file);
    await predict(file, file.type || "application/octet-stream");
  }
  e.target.value = "";
});

fetch("/model").then((r) => r.json()).then((m) => {
  const acc = m.test_accuracy ? `, ${(m.test_accuracy * 100).toFixed(2)}% on MNIST test` : "";
  document.getElementById("model").textContent = `model: ${m.arch}, ${m.parameters.toLocaleString()} parameters${acc}`;
}).catch(() => {});

clearPad();
