// AudioWorklet: the microphone's float samples -> 16-bit PCM frames of ~100 ms, posted to the
// page, which sends them on the socket. Runs on the audio thread; no allocation per quantum
// beyond the outgoing frame.
class PcmCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(Math.round(sampleRate / 10));
    this.filled = 0;
    this.port.onmessage = (e) => { if (e.data === "flush") this.flush(); };
  }

  flush() {
    if (this.filled === 0) return;
    const out = this.frame.slice(0, this.filled);
    this.port.postMessage(out.buffer, [out.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const n = input[0].length;
    for (let i = 0; i < n; i++) {
      // Downmix: average the channels the browser gave us.
      let v = 0;
      for (let c = 0; c < input.length; c++) v += input[c][i];
      v /= input.length;
      v = Math.max(-1, Math.min(1, v));
      this.frame[this.filled++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.filled === this.frame.length) this.flush();
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
