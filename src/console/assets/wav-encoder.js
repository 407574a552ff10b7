// Turns what the microphone gave (float samples at the sound card's rate) into the WAV the village's player
// plays as it is: 16-bit PCM, mono, 16 kHz (speech loses nothing a loudspeaker horn would carry, and the upload is
// a third of 48 kHz). MediaRecorder is not used: it gives webm/opus, which neither aplay nor mpg123 plays.

window.villageWav = (() => {
  const targetRate = 16000;

  /** Resampled by the browser's own resampler (band-limited), through an offline audio graph. */
  async function resample(samples, fromRate, toRate) {
    if (fromRate === toRate || samples.length === 0) return samples;
    const length = Math.max(1, Math.round((samples.length * toRate) / fromRate));
    const offline = new OfflineAudioContext(1, length, toRate);
    const buffer = offline.createBuffer(1, samples.length, fromRate);
    buffer.copyToChannel(samples, 0);
    const source = offline.createBufferSource();
    source.buffer = buffer;
    source.connect(offline.destination);
    source.start();
    const rendered = await offline.startRendering();
    return rendered.getChannelData(0);
  }

  /** A quiet voice raised towards full scale (at most 8×, about 18 dB), so the horns carry it; never lowered. */
  function normalise(samples) {
    let peak = 0;
    for (const s of samples) peak = Math.max(peak, Math.abs(s));
    if (peak === 0) return samples;
    const gain = Math.min(8, 0.9 / peak);
    if (gain <= 1) return samples;
    return samples.map((s) => s * gain);
  }

  function encode(samples, sampleRate) {
    const dataBytes = samples.length * 2;
    const view = new DataView(new ArrayBuffer(44 + dataBytes));
    const ascii = (offset, text) => {
      for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
    };
    ascii(0, 'RIFF');
    view.setUint32(4, 36 + dataBytes, true);
    ascii(8, 'WAVE');
    ascii(12, 'fmt ');
    view.setUint32(16, 16, true);
    view.setUint16(20, 1, true); // PCM
    view.setUint16(22, 1, true); // mono
    view.setUint32(24, sampleRate, true);
    view.setUint32(28, sampleRate * 2, true); // bytes a second
    view.setUint16(32, 2, true); // bytes a frame
    view.setUint16(34, 16, true); // bits a sample
    ascii(36, 'data');
    view.setUint32(40, dataBytes, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      view.setInt16(44 + i * 2, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([view], { type: 'audio/wav' });
  }

  return { targetRate, resample, normalise, encode };
})();
