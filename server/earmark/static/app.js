// Earmark's try-it page: microphone or file -> WebSocket (PCM) or WebRTC (Opus) -> results.
// No build step: plain browser JavaScript. `window.earmark` exposes the page's state so that
// tests (and curious people) can read it.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { finals: [], messages: 0, state: "idle", errors: [], metadata: null };
window.earmark = state;

let session = null; // the running session: { stop(), ... }

function setState(name, detail) {
  state.state = name;
  const el = $("state");
  el.dataset.state = name;
  el.textContent = detail ? `${name}: ${detail}` : name;
  const running = name === "connecting" || name === "live" || name === "closing";
  $("start-mic").disabled = running;
  $("file").disabled = running;
  $("stop").disabled = !running;
}

function showError(text) {
  state.errors.push(text);
  const el = $("error");
  el.textContent = text;
  el.hidden = false;
}

function clearOutput() {
  state.finals = [];
  state.metadata = null;
  $("finals").textContent = "";
  $("interim-text").textContent = "";
  $("error").hidden = true;
  $("tags").innerHTML = '<span class="muted">none yet</span>';
}

function queryString(extra) {
  const q = new URLSearchParams(extra);
  q.set("interim_results", $("interim").checked ? "true" : "false");
  const ep = $("endpointing").value.trim();
  if (ep) q.set("endpointing", ep);
  for (const kw of $("keywords").value.split(",").map((s) => s.trim()).filter(Boolean)) {
    q.append("keyterm", kw);
  }
  return q.toString();
}

function wordSpan(w) {
  const span = document.createElement("span");
  span.className = "word";
  span.textContent = w.punctuated_word || w.word;
  span.title = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s · confidence ${w.confidence.toFixed(2)}`;
  return span;
}

// One server message (same JSON on the socket and the data channel).
function onMessage(text) {
  state.messages += 1;
  let msg;
  try { msg = JSON.parse(text); } catch { return; }
  if (msg.type === "Results") {
    const alt = msg.channel.alternatives[0];
    if (msg.is_final) {
      if (alt.transcript) {
        state.finals.push(alt.transcript);
        const finals = $("finals");
        for (const w of alt.words) { finals.append(wordSpan(w), " "); }
      }
      $("interim-text").textContent = "";
    } else {
      $("interim-text").textContent = alt.transcript;
    }
  } else if (msg.type === "Tags") {
    renderTags(msg);
  } else if (msg.type === "Metadata") {
    state.metadata = msg;
  } else if (msg.type === "Error") {
    showError(`${msg.code || msg.variant}: ${msg.description}`);
  }
}

function renderTags(msg) {
  const box = $("tags");
  box.textContent = "";
  if (!msg.tags.length) {
    box.innerHTML = `<span class="muted">no tags (${msg.reason || "nothing stands out"})</span>`;
  }
  for (const t of msg.tags) {
    const el = document.createElement("span");
    el.className = `tag ${t.kind}`;
    el.textContent = t.name;
    el.title = `${t.kind} · score ${t.score.toFixed(2)}`;
    box.append(el);
  }
  for (const t of msg.undocumented_tags || []) {
    const el = document.createElement("span");
    el.className = "tag undocumented";
    el.textContent = typeof t === "string" ? t : t.name;
    el.title = "keyword found in the talk, not in the tag catalogue";
    box.append(el);
  }
}

// Audio sources: the microphone, or a file played in real time (and heard).
async function micSource(ctx) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  });
  return { node: ctx.createMediaStreamSource(stream), stream, ended: new Promise(() => {}) };
}

async function fileSource(ctx, file) {
  const buffer = await ctx.decodeAudioData(await file.arrayBuffer());
  const node = ctx.createBufferSource();
  node.buffer = buffer;
  node.connect(ctx.destination);
  const ended = new Promise((resolve) => { node.onended = resolve; });
  return { node, stream: null, ended, start: () => node.start() };
}

// WebSocket mode: AudioWorklet -> 16-bit PCM at the context's rate (the server resamples).
async function startWebSocket(makeSource) {
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule("/static/pcm-worklet.js");
  const src = await makeSource(ctx);
  const capture = new AudioWorkletNode(ctx, "pcm-capture");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/v1/listen?` +
    queryString({ encoding: "linear16", sample_rate: String(ctx.sampleRate), channels: "1" });
  const key = $("api-key").value.trim();
  const ws = key ? new WebSocket(url, ["token", key]) : new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    setState("closing");
    capture.port.postMessage("flush");
    src.node.disconnect();
    if (src.stream) src.stream.getTracks().forEach((t) => t.stop());
    // Let the flushed frame reach the socket, then ask for the last finals.
    setTimeout(() => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "CloseStream" }));
    }, 50);
  };
  capture.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) ws.send(e.data); };
  ws.onopen = () => {
    setState("live", "WebSocket");
    src.node.connect(capture);
    capture.connect(ctx.destination); // the worklet outputs silence; this keeps it pulled
    if (src.start) src.start();
  };
  ws.onmessage = (e) => onMessage(e.data);
  ws.onerror = () => showError("WebSocket error (is the server running? is an API key needed?)");
  ws.onclose = (e) => {
    ctx.close();
    session = null;
    const why = e.code === 1000 ? "" : `code ${e.code}${e.reason ? ` (${e.reason})` : ""}`;
    if (e.code !== 1000 && !closing) showError(`connection closed: ${why}`);
    setState("closed", why);
  };
  src.ended.then(stop);
  return { stop };
}

// WebRTC mode: the track goes as Opus; results come back on the "earmark" data channel.
async function startWebRtc(makeSource) {
  const ctx = new AudioContext();
  const src = await makeSource(ctx);
  let track;
  if (src.stream) {
    track = src.stream.getAudioTracks()[0];
  } else {
    const dest = ctx.createMediaStreamDestination();
    src.node.connect(dest);
    track = dest.stream.getAudioTracks()[0];
  }
  const pc = new RTCPeerConnection();
  const channel = pc.createDataChannel("earmark");
  pc.addTrack(track);
  let closing = false;
  const finish = (why) => {
    pc.close();
    ctx.close();
    if (src.stream) src.stream.getTracks().forEach((t) => t.stop());
    session = null;
    setState("closed", why);
  };
  const stop = () => {
    if (closing) return;
    closing = true;
    setState("closing");
    if (channel.readyState === "open") channel.send(JSON.stringify({ type: "CloseStream" }));
    else finish("");
  };
  channel.onopen = () => {
    setState("live", "WebRTC");
    if (src.start) src.start();
  };
  channel.onmessage = (e) => {
    onMessage(e.data);
    const msg = JSON.parse(e.data);
    if (msg.type === "Metadata") finish("");
  };
  channel.onclose = () => { if (state.state !== "closed") finish(closing ? "" : "peer closed"); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") {
      showError("WebRTC connection failed (see the server's ICE settings in docs/webrtc.md)");
      finish("failed");
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  // The server does not trickle: send the offer with its candidates.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, 3000);
  });
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Token ${key}`;
  const resp = await fetch(`/v1/webrtc/offer?${queryString({})}`, {
    method: "POST", headers, body: JSON.stringify(pc.localDescription),
  });
  const body = await resp.json();
  if (!resp.ok) {
    finish(`HTTP ${resp.status}`);
    throw new Error(`${body.code}: ${body.message}`);
  }
  await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
  src.ended.then(stop);
  return { stop };
}

async function start(makeSource) {
  clearOutput();
  setState("connecting");
  const mode = document.querySelector('input[name="mode"]:checked').value;
  try {
    session = await (mode === "webrtc" ? startWebRtc : startWebSocket)(makeSource);
  } catch (err) {
    showError(err.message || String(err));
    setState("closed", "could not start");
  }
}

$("start-mic").addEventListener("click", () => start(micSource));
$("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) start((ctx) => fileSource(ctx, file));
  e.target.value = "";
});
$("stop").addEventListener("click", () => { if (session) session.stop(); });
setState("idle");
