// The announce page: records a voice in the browser, sends the announcement without a reload, follows it to its
// end (polling once a second) and stops it or anything else playing. Every word shown comes from the page's
// data-messages, in the page's language. Without this script the form still sends a text announcement.

(() => {
  const root = document.getElementById('announce');
  if (root === null) return;
  const messages = JSON.parse(root.dataset.messages);
  const maxSeconds = Number(root.dataset.maxSeconds);
  const endStates = new Set(['finished', 'stopped', 'failed', 'rejected', 'preempted']);

  const $ = (id) => document.getElementById(id);
  const form = $('announce-form');
  const textPart = $('announce-text-part');
  const recorder = $('announce-recorder');
  const recordStart = $('record-start');
  const recordStop = $('record-stop');
  const level = $('record-level');
  const recordTime = $('record-time');
  const playback = $('record-playback');
  const recordDiscard = $('record-discard');
  const send = $('announce-send');
  const errorBox = $('announce-error');
  const progress = $('announce-progress');
  const stopForm = $('announce-stop-form');
  const activeList = $('announce-active');

  for (const el of document.querySelectorAll('[data-without-script]')) el.hidden = true;
  form.querySelector('input[name="kind"][value="recording"]').disabled = false;

  const csrfHeaders = () => ({ 'x-csrf-token': window.villageConsole.csrfToken(), accept: 'application/json' });
  const showError = (text) => {
    errorBox.textContent = text;
  };

  function showKind() {
    const recording = form.elements.kind.value === 'recording';
    textPart.hidden = recording;
    recorder.hidden = !recording;
  }
  form.addEventListener('change', (event) => {
    if (event.target.name === 'kind') showKind();
  });
  showKind();

  // --- Recording -------------------------------------------------------------------------------------------
  let capture = null;
  let recorded = null;

  const canRecord = () =>
    window.isSecureContext &&
    navigator.mediaDevices?.getUserMedia !== undefined &&
    typeof AudioContext === 'function' &&
    typeof OfflineAudioContext === 'function';

  function showSeconds(label, seconds) {
    recordTime.dataset.seconds = seconds.toFixed(1);
    recordTime.textContent = `${label} ${seconds.toFixed(1)} s / ${maxSeconds} s`;
  }

  function discard() {
    if (recorded !== null) URL.revokeObjectURL(recorded.url);
    recorded = null;
    playback.removeAttribute('src');
    playback.load();
    recordDiscard.disabled = true;
    delete recordTime.dataset.seconds;
  }

  recordStart.addEventListener('click', async () => {
    showError('');
    if (!canRecord()) return showError(messages.noMicrophoneSupport);
    discard();
    recordStart.disabled = true;
    let stream;
    try {
      // The raw voice: echo cancelling and noise suppression treat a steady voice or tone as noise.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      recordStart.disabled = false;
      return showError(messages.noMicrophone + (error.message || error.name));
    }
    const context = new AudioContext();
    const source = context.createMediaStreamSource(stream);
    // ScriptProcessor rather than an AudioWorklet: older office browsers have it, and 4096 frames a call is calm.
    const processor = context.createScriptProcessor(4096, 1, 1);
    const silence = context.createGain();
    silence.gain.value = 0;
    const c = { stream, context, source, processor, chunks: [], frames: 0, rate: context.sampleRate };
    processor.addEventListener('audioprocess', (event) => {
      if (capture !== c) return;
      const input = event.inputBuffer.getChannelData(0);
      c.chunks.push(new Float32Array(input));
      c.frames += input.length;
      let peak = 0;
      for (const s of input) peak = Math.max(peak, Math.abs(s));
      level.value = Math.max(peak, level.value * 0.6);
      showSeconds(messages.recording, c.frames / c.rate);
      if (c.frames / c.rate >= maxSeconds) {
        showError(messages.tooLongStopped);
        stopRecording().catch((error) => showError(messages.failed + error.message));
      }
    });
    source.connect(processor);
    processor.connect(silence);
    silence.connect(context.destination);
    capture = c;
    recordStop.disabled = false;
    recordStop.focus();
  });

  async function stopRecording() {
    const c = capture;
    if (c === null) return;
    capture = null;
    recordStop.disabled = true;
    c.source.disconnect();
    c.processor.disconnect();
    for (const track of c.stream.getTracks()) track.stop();
    await c.context.close();
    level.value = 0;
    const samples = new Float32Array(Math.min(c.frames, Math.floor(maxSeconds * c.rate)));
    let at = 0;
    for (const chunk of c.chunks) {
      const part = chunk.subarray(0, samples.length - at);
      samples.set(part, at);
      at += part.length;
    }
    recordStart.disabled = false;
    if (samples.length === 0) return showError(messages.noRecording);
    const wav = window.villageWav;
    const pcm = wav.normalise(await wav.resample(samples, c.rate, wav.targetRate));
    const blob = wav.encode(pcm, wav.targetRate);
    recorded = { blob, url: URL.createObjectURL(blob) };
    playback.src = recorded.url;
    recordDiscard.disabled = false;
    showSeconds(messages.recorded, pcm.length / wav.targetRate);
  }
  recordStop.addEventListener('click', () => {
    stopRecording().catch((error) => showError(messages.failed + error.message));
  });
  recordDiscard.addEventListener('click', () => {
    discard();
    recordTime.textContent = '';
    recordStart.focus();
  });

  // --- Sending ---------------------------------------------------------------------------------------------
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError('');
    const data = new FormData(form);
    data.delete('_csrf');
    if (data.get('kind') === 'recording') {
      if (recorded === null) return showError(messages.noRecording);
      data.delete('text');
      data.set('recording', recorded.blob, 'recording.wav');
    }
    send.disabled = true;
    progress.querySelector('.progress-state').textContent = messages.sending;
    try {
      const response = await fetch('/api/announce', { method: 'POST', body: data, headers: csrfHeaders(), credentials: 'same-origin' });
      const body = await response.json().catch(() => ({}));
      if (response.ok && typeof body.id === 'string') follow(body.id);
      else if (typeof body.refused === 'string') {
        showError(body.refused);
        showState(null, 'rejected', body.refused);
      } else {
        showError(messages.failed + (body.error ?? `HTTP ${response.status}`));
        showState(null, null);
      }
    } catch (error) {
      showError(messages.failed + error.message);
      showState(null, null);
    } finally {
      send.disabled = false;
    }
  });

  // --- Following -------------------------------------------------------------------------------------------
  let followed = null;
  let pollTimer;

  function describe(view) {
    const zones = view.zones.map((z) => messages.zones[z] ?? z).join(', ');
    const by = view.by === null ? '' : ` (${messages.by} ${view.by})`;
    return `${messages.priorities[view.priority] ?? view.priority}${by} · ${zones}`;
  }

  function showState(id, state, reason, what) {
    if (id === null) delete progress.dataset.broadcast;
    else progress.dataset.broadcast = id;
    if (state === null) delete progress.dataset.state;
    else progress.dataset.state = state;
    // Changed only when it changes: the region is live, and a screen reader would repeat it every second.
    const text = `${messages.states[state ?? 'none'] ?? state}${reason ? ` ${reason}` : ''}`;
    const stateLine = progress.querySelector('.progress-state');
    if (stateLine.textContent !== text) stateLine.textContent = text;
    let whatLine = progress.querySelector('.progress-what');
    if (what !== undefined) {
      if (whatLine === null) {
        whatLine = document.createElement('p');
        whatLine.className = 'progress-what';
        progress.append(whatLine);
      }
      if (whatLine.textContent !== what) whatLine.textContent = what;
    } else whatLine?.remove();
    const playing = id !== null && state !== null && !endStates.has(state);
    stopForm.hidden = !playing;
    stopForm.elements.id.value = id ?? '';
  }

  function follow(id) {
    followed = id;
    showState(id, 'accepted');
    void poll();
  }

  /** Never rejects: a failed poll says so in the progress line and tries again. */
  async function poll() {
    clearTimeout(pollTimer);
    const id = followed;
    if (id === null) return;
    try {
      const response = await fetch(`/api/broadcasts/${encodeURIComponent(id)}`, {
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
      });
      if (id !== followed) return;
      if (response.status === 404) {
        followed = null;
        showState(id, null);
        progress.querySelector('.progress-state').textContent = messages.forgotten;
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const view = await response.json();
      const last = view.steps.at(-1);
      showState(id, last?.event ?? 'accepted', last?.reason, describe(view));
      if (!view.active) {
        followed = null;
        void refreshActive();
        return;
      }
    } catch {
      if (id !== followed) return;
      progress.querySelector('.progress-state').textContent = messages.connectionLost;
    }
    pollTimer = setTimeout(poll, 1000);
  }

  // --- What plays now, each with a stop ------------------------------------------------------------------------
  function activeItem(view) {
    const item = document.createElement('li');
    item.dataset.activeBroadcast = view.id;
    const what = describe(view);
    const state = view.steps.at(-1)?.event ?? 'accepted';
    const text = document.createElement('span');
    text.className = 'active-what';
    text.textContent = `${what} — ${messages.states[state] ?? state}`;
    const stop = document.createElement('form');
    stop.className = 'stop-form';
    stop.method = 'post';
    stop.action = '/announce/stop';
    const id = document.createElement('input');
    id.type = 'hidden';
    id.name = 'id';
    id.value = view.id;
    const button = document.createElement('button');
    button.type = 'submit';
    button.className = 'danger';
    button.textContent = messages.stop;
    button.setAttribute('aria-label', `${messages.stop}: ${what}`);
    stop.append(id, button);
    item.append(text, stop);
    return item;
  }

  /** Never rejects. */
  async function refreshActive() {
    try {
      const response = await fetch('/api/broadcasts', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (!response.ok) return;
      const views = await response.json();
      if (views.length === 0) {
        const none = document.createElement('li');
        none.className = 'none';
        none.textContent = messages.noneActive;
        activeList.replaceChildren(none);
      } else activeList.replaceChildren(...views.map(activeItem));
    } catch {
      // The next refresh tries again; the progress line already says when the unit is out of reach.
    }
  }
  setInterval(refreshActive, 3000);

  document.addEventListener('submit', async (event) => {
    const stop = event.target;
    if (!stop.classList.contains('stop-form')) return;
    event.preventDefault();
    const id = stop.elements.id.value;
    if (id === '') return;
    const button = stop.querySelector('button');
    button.disabled = true;
    try {
      const response = await fetch(`/api/broadcasts/${encodeURIComponent(id)}/stop`, {
        method: 'POST',
        headers: csrfHeaders(),
        credentials: 'same-origin',
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) showError(messages.failed + (body.error ?? `HTTP ${response.status}`));
      else if (body.stopped !== true) showError(messages.stopFailed);
    } catch (error) {
      showError(messages.failed + error.message);
    } finally {
      button.disabled = false;
    }
    if (id === followed) void poll();
    void refreshActive();
  });

  // A page opened on `?follow=` (after the form without script, or a reload) goes on following.
  if (progress.dataset.broadcast !== undefined && !endStates.has(progress.dataset.state)) {
    followed = progress.dataset.broadcast;
    void poll();
  }
})();
