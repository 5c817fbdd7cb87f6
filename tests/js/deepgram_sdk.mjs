// The official Deepgram JavaScript SDK against a local Earmark, as a Node app uses it: a file
// through the pre-recorded API, then the same speech streamed live in real time with a
// Finalize in the pause between its two sentences and one at the end, then CloseStream.
// Prints one JSON object: {prerecorded, messages} (run by tests/e2e/test_js_sdk.py).
//
//   node deepgram_sdk.mjs HTTP_BASE WS_BASE file.wav speech.pcm FINALIZE_AT_S
import { readFileSync } from "node:fs";
import { DeepgramClient } from "@deepgram/sdk";

const [http, ws, wavPath, pcmPath, finalizeAt] = process.argv.slice(2);
const client = new DeepgramClient({
  apiKey: "unused-on-loopback",
  environment: { base: http, production: ws, agent: ws, agentRest: http },
});
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const prerecorded = await client.listen.v1.media.transcribeFile(readFileSync(wavPath), {
  model: "nova-3",
  smart_format: true,
  utterances: true,
});

const connection = await client.listen.v1.connect({
  model: "nova-3",
  encoding: "linear16",
  sample_rate: "16000",
  interim_results: "true",
  punctuate: "true",
});
connection.connect();
await connection.waitForOpen();
const messages = [];
const reading = (async () => {
  for await (const message of connection) messages.push(message);
})();
const pcm = readFileSync(pcmPath);
const step = 3200; // 100 ms of 16 kHz 16-bit mono
const finalizeByte = Math.floor(Number(finalizeAt) * 16000) * 2;
let finalized = false;
const t0 = Date.now();
for (let i = 0; i < pcm.length; i += step) {
  await sleep(Math.max(0, t0 + (i / 32000) * 1000 - Date.now()));
  connection.sendMedia(pcm.subarray(i, i + step));
  if (!finalized && i + step >= finalizeByte) {
    finalized = true;
    connection.sendFinalize({ type: "Finalize" });
  }
}
connection.sendFinalize({ type: "Finalize" });
await sleep(1500);
connection.sendCloseStream({ type: "CloseStream" });
await reading;
console.log(JSON.stringify({ prerecorded, messages }));
