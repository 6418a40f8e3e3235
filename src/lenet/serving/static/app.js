// The drawing page: strokes on a canvas, a debounced POST /explain of its PNG, the
// ten probabilities as bars, the 28x28 image the network saw, and every layer's maps.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const bars = document.getElementById("bars");
const status = document.getElementById("status");
const layersBox = document.getElementById("layers");
const kernelCaption = document.getElementById("kernel-caption");
// Over the pad, the boxes where the digits were found; under it (number mode), each digit's 28x28.
const found = document.getElementById("found").getContext("2d");
const places = document.getElementById("places").getContext("2d");
// Pad pixels per pixel of the image read, and where the image starts on the pad (an upload is fitted).
let fitted = { scale: 1, dx: 0, dy: 0 };
const DEBOUNCE_MS = 120;
// MNIST strokes are about 2-3 px of 28; on a 280 px pad that is 20-30 px. Thinner
// strokes fade away when the drawing is scaled down to 28x28.
const STROKE = 22;

let drawing = false, dirty = false, timer = null, inFlight = false, last = null;
// Number mode: a wide pad sent to /predict/number, which reads a row of digits.
const numberMode = document.getElementById("number-mode");

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  fitted = { scale: 1, dx: 0, dy: 0 };
  clearAnswer();
}

// No answer on screen: after Clear, and after an error, so a refused file never
// leaves the previous digit looking like its answer.
function clearAnswer() {
  layersBox.innerHTML = "";
  teachBox.hidden = true;
  document.getElementById("digit").textContent = "–";
  document.getElementById("confidence").textContent = "";
  seen.clearRect(0, 0, seen.canvas.width, 28);
  renderBars(new Array(10).fill(0), -1);
  status.textContent = "";
  found.clearRect(0, 0, found.canvas.width, found.canvas.height);
  places.clearRect(0, 0, places.canvas.width, places.canvas.height);
}

// The found boxes ([left, top, right, bottom] in the image read) outlined on the pad.
function showBoxes(boxes) {
  found.clearRect(0, 0, found.canvas.width, found.canvas.height);
  found.strokeStyle = "#d2691e";
  found.lineWidth = 3;
  for (const [x, y, right, bottom] of boxes) {
    const w = right - x, h = bottom - y;
    const { scale, dx, dy } = fitted;
    found.strokeRect(dx + x * scale - 4, dy + y * scale - 4, w * scale + 8, h * scale + 8);
  }
}

// What a refused upload means for the user, and what to do about it.
function uploadError(status, message, name) {
  if (status === 413) return `${name} is too large (${message}): upload a smaller copy, or a crop around the digit.`;
  if (status === 400 || status === 415) {
    return `${name} cannot be read as an image (${message}): upload a PNG, JPEG, BMP, GIF, WebP or TIFF file.`;
  }
  if (status === 422) return `No digit found in ${name} (${message}): upload a picture of a dark digit on light paper, or draw it on the pad.`;
  return `${name} was refused (${message}).`;
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

async function predict(body, type, upload) {
  lastSent = { body, type, upload };
  let response;
  try {
    const url = numberMode.checked ? "/predict/number" : "/explain";
    response = await fetch(url, { method: "POST", headers: { "Content-Type": type }, body });
  } catch (err) {
    status.textContent = "The server cannot be reached.";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    clearAnswer();
    const message = answer.error || `error ${response.status}`;
    status.textContent = upload ? uploadError(response.status, message, upload) : message;
    return;
  }
  if (answer.number !== undefined) {
    showNumber(answer);
    return;
  }
  // An answer to doubt says so, with the reasons (several marks, faint, small, low probability).
  status.textContent = answer.unsure ? `Unsure: ${answer.doubts.join("; ")}` : "";
  document.getElementById("digit").textContent = answer.digit;
  document.getElementById("confidence").textContent = `${(answer.probability * 100).toFixed(1)}%`;
  renderBars(answer.probabilities, answer.digit);
  const img = seen.createImageData(28, 28);
  answer.preprocessed.flat().forEach((v, i) => {
    img.data.set([v, v, v, 255], i * 4);
  });
  seen.putImageData(img, 0, 0);
  showBoxes([answer.box]);
  renderLayers(answer.layers);
  teachBox.hidden = !learning;
}


function bytes(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// One small greyscale canvas from h*w values 0..255 (or a colour ramp for kernels).
function paint(canvas, values, h, w, offset, signed) {
  canvas.width = w;
  canvas.height = h;
  const c = canvas.getContext("2d");
  const img = c.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = values[offset + i];
    // Kernels: blue (negative) through white to red (positive); maps: grey.
    const rgb = signed ? [Math.min(255, 2 * v), Math.min(255, 2 * v, 510 - 2 * v), Math.min(255, 510 - 2 * v)] : [v, v, v];
    img.data.set([...rgb, 255], i * 4);
  }
  c.putImageData(img, 0, 0);
}

function showKernel(layer, index) {
  const k = layer.kernel, [n, kh, kw] = k.shape;
  paint(document.getElementById("kernel"), bytes(k.values), kh, kw, (index % n) * kh * kw, true);
  kernelCaption.textContent = `${layer.title}, map ${index}: made by ${k.of.toUpperCase()}'s ${kh}x${kw} kernel ${index % n}` +
                              (k.of === "c1" ? "" : " (mean over its inputs)");
}

function renderLayers(layers) {
  layersBox.innerHTML = "";
  for (const layer of layers || []) {
    if (layer.name === "output") continue;  // the bars above show it
    const box = document.createElement("div");
    box.className = "layer";
    box.dataset.name = layer.name;
    box.innerHTML = `<h3>${layer.title}</h3>`;
    const values = bytes(layer.values);
    if (layer.shape.length === 3 && layer.shape[1] > 1) {
      const [channels, h, w] = layer.shape;
      const tiles = document.createElement("div");
      tiles.className = "tiles";
      for (let c = 0; c < channels; c++) {
        const canvas = document.createElement("canvas");
        if (channels > 16) canvas.className = "small";
        paint(canvas, values, h, w, c * h * w, false);
        canvas.title = `${layer.title}, map ${c}`;
        const pick = () => {
          document.querySelectorAll(".tiles canvas.active").forEach((t) => t.classList.remove("active"));
          canvas.classList.add("active");
          showKernel(layer, c);
        };
        canvas.addEventListener("pointerenter", pick);
        canvas.addEventListener("click", pick);
        tiles.appendChild(canvas);
      }
      box.appendChild(tiles);
    } else {
      const canvas = document.createElement("canvas");
      canvas.className = "strip";
      paint(canvas, values, 1, values.length, 0, false);
      box.appendChild(canvas);
    }
    layersBox.appendChild(box);
  }
}

// A number: the digits as text, each one's probability, its box on the pad, and under the pad
// the 28x28 the network saw of it, below the place where it was found.
function showNumber(answer) {
  document.getElementById("digit").textContent = answer.number;
  document.getElementById("confidence").textContent =
    answer.digits.map((d) => `${(d.probability * 100).toFixed(0)}%`).join(" ");
  const doubts = answer.digits.flatMap((d, i) => d.unsure ? [`digit ${i + 1}: ${d.doubts.join("; ")}`] : []);
  status.textContent = doubts.length ? `Unsure: ${doubts.join(" | ")}` : "";
  showBoxes(answer.digits.map((d) => d.box));
  const side = places.canvas.height, one = seen.createImageData(28, 28);
  places.clearRect(0, 0, places.canvas.width, side);
  places.imageSmoothingEnabled = false;
  answer.preprocessed.forEach((digit, k) => {
    digit.flat().forEach((v, i) => one.data.set([v, v, v, 255], i * 4));
    seen.putImageData(one, 0, 0);  // the small canvas as a stamp, enlarged onto the strip
    const [left, , right] = answer.digits[k].box;
    const centre = (fitted.dx + (left + right) / 2 * fitted.scale) * places.canvas.width / pad.width;
    places.drawImage(seen.canvas, 0, 0, 28, 28, Math.round(centre - side / 2), 0, side, side);
  });
  seen.clearRect(0, 0, 28, 28);
  layersBox.innerHTML = "";
}

numberMode.addEventListener("change", () => {
  document.querySelector("main").classList.toggle("number", numberMode.checked);
  pad.width = numberMode.checked ? 840 : 280;  // the canvas's own pixels: three digits' room per 280
  found.canvas.width = pad.width;
  clearPad();
});

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
    fitted = { scale, dx: (pad.width - w) / 2, dy: (pad.height - h) / 2 };
    dirty = false;  // the pad now shows the file; drawing on it again sends the pad
  }, () => {
    clearPad();  // the browser cannot show it either: an empty pad, the server says why
  });
}

document.getElementById("file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) {
    await showOnPad(file);
    await predict(file, file.type || "application/octet-stream", file.name);
  }
  e.target.value = "";
});

// lenet serve --learn: "Wrong? It is a ..." stores the last image sent with the right label
// (POST /teach); the server learns in the background and /model says which model answers.
const teachBox = document.getElementById("teach");
let lastSent = null, learning = false, polling = null;

function showModel(m) {
  const acc = m.test_accuracy ? `, ${(m.test_accuracy * 100).toFixed(2)}% on MNIST test` : "";
  const who = m.answering ? ` (${m.answering})` : "";
  document.getElementById("model").textContent =
    `model${who}: ${m.arch}, ${m.parameters.toLocaleString()} parameters${acc}`;
  learning = !!m.learning;
  if (m.learning && m.learning.training && !polling) {
    polling = setInterval(refreshModel, 2000);
  } else if (polling && !(m.learning && m.learning.training)) {
    clearInterval(polling);
    polling = null;
    if (m.learning && !m.learning.failed) status.textContent = `Learned: now answering with ${m.answering}. Draw it again.`;
  }
}

function refreshModel() {
  return fetch("/model").then((r) => r.json()).then(showModel).catch(() => {});
}

async function teach(label) {
  if (!lastSent) return;
  let response;
  try {
    response = await fetch(`/teach?label=${label}`,
                           { method: "POST", headers: { "Content-Type": lastSent.type }, body: lastSent.body });
  } catch (err) {
    status.textContent = "The server cannot be reached.";
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    status.textContent = answer.error || `Error ${response.status}`;
    return;
  }
  const l = answer.learning;
  status.textContent = l.training ? `Stored as a ${label}. Learning from ${l.samples} samples…`
    : `Stored as a ${label}. ${l.until_learning} more correction${l.until_learning === 1 ? "" : "s"} until it learns.`;
  refreshModel();
}

for (let d = 0; d < 10; d++) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = d;
  b.addEventListener("click", () => teach(d));
  document.getElementById("teach-buttons").appendChild(b);
}

refreshModel();

clearPad();
