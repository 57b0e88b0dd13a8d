// The official JavaScript SDK (@google/genai) against the emulator.
// Run by tests/test_js_sdk.py, which installs the SDK into build/js-sdk/, copies this
// file there and passes the cases as JSON in CASES (prompts and expectations come from
// the cassettes). The emulator's certificate is trusted through NODE_EXTRA_CA_CERTS.
// Prints one JSON object: what each case received.
import { readFileSync, writeFileSync } from 'node:fs';
import { GoogleGenAI, Modality } from '@google/genai';

const cases = JSON.parse(process.env.CASES);
const ai = new GoogleGenAI({
  apiKey: 'js-conformance-key',
  httpOptions: { baseUrl: process.env.BASE_URL },
});
const textOf = (chunk) =>
  (chunk.candidates?.[0]?.content?.parts ?? [])
    .filter((p) => !p.thought)
    .map((p) => p.text ?? '')
    .join('');
const out = {};

// generateContentStream
out.stream = [];
for await (const chunk of await ai.models.generateContentStream({
  model: cases.text.model,
  contents: cases.text.prompt,
})) {
  out.stream.push(textOf(chunk));
}

// chats.create + sendMessageStream, two turns
const chat = ai.chats.create({
  model: cases.chat.model,
  config: { systemInstruction: cases.chat.system },
});
out.chat = [];
for (const message of cases.chat.prompts) {
  const texts = [];
  for await (const chunk of await chat.sendMessageStream({ message })) texts.push(textOf(chunk));
  out.chat.push(texts);
}

// models.list (paged) and countTokens
out.models = [];
for await (const model of await ai.models.list({ config: { pageSize: 1 } })) {
  out.models.push(model.name);
}
out.tokens = (await ai.models.countTokens({ model: cases.text.model, contents: cases.text.prompt }))
  .totalTokens;
try {
  await ai.models.countTokens({ model: cases.text.model, contents: 'never recorded' });
  out.countError = null;
} catch (error) {
  out.countError = { status: error.status, message: String(error.message) };
}

// live.connect: one turn, its PCM written to a WAV file
const pcm = [];
let done;
const turnComplete = new Promise((resolve) => (done = resolve));
const session = await ai.live.connect({
  model: cases.live.model,
  config: { responseModalities: [Modality.AUDIO], systemInstruction: cases.live.system },
  callbacks: {
    onmessage: (message) => {
      for (const part of message.serverContent?.modelTurn?.parts ?? []) {
        if (part.inlineData) pcm.push(Buffer.from(part.inlineData.data, 'base64'));
      }
      if (message.serverContent?.turnComplete) done();
    },
    onerror: (e) => done(e),
    onclose: (e) => done(e),
  },
});
session.sendRealtimeInput({ text: cases.live.prompt }); // text during a conversation
const ended = await turnComplete;
session.close();
out.liveEnd = ended ? String(ended.reason ?? ended.message ?? ended) : null;
const data = Buffer.concat(pcm);
const header = Buffer.alloc(44);
header.write('RIFF', 0);
header.writeUInt32LE(36 + data.length, 4);
header.write('WAVEfmt ', 8);
header.writeUInt32LE(16, 16);
header.writeUInt16LE(1, 20); // PCM
header.writeUInt16LE(1, 22); // mono
header.writeUInt32LE(24000, 24);
header.writeUInt32LE(48000, 28);
header.writeUInt16LE(2, 32);
header.writeUInt16LE(16, 34);
header.write('data', 36);
header.writeUInt32LE(data.length, 40);
writeFileSync(cases.live.wav, Buffer.concat([header, data]));

// live.connect: a spoken question streamed in 100 ms chunks of 16 kHz PCM, then audioStreamEnd
if (cases.spoken) {
  const reply = [];
  const heard = [];
  let answered;
  const spokenTurn = new Promise((resolve) => (answered = resolve));
  const spoken = await ai.live.connect({
    model: cases.spoken.model,
    config: { responseModalities: [Modality.AUDIO], inputAudioTranscription: {} },
    callbacks: {
      onmessage: (message) => {
        const content = message.serverContent;
        if (content?.inputTranscription?.text) heard.push(content.inputTranscription.text);
        for (const part of content?.modelTurn?.parts ?? []) {
          if (part.inlineData) reply.push(Buffer.from(part.inlineData.data, 'base64'));
        }
        if (content?.turnComplete) answered();
      },
      onerror: (e) => answered(e),
      onclose: (e) => answered(e),
    },
  });
  const question = readFileSync(cases.spoken.pcm);
  for (let start = 0; start < question.length; start += 3200) {
    const data = question.subarray(start, start + 3200).toString('base64');
    spoken.sendRealtimeInput({ audio: { data, mimeType: 'audio/pcm;rate=16000' } });
  }
  spoken.sendRealtimeInput({ audioStreamEnd: true });
  const spokenEnd = await spokenTurn;
  spoken.close();
  out.spoken = { heard: heard.join(''), end: spokenEnd ? String(spokenEnd.reason ?? spokenEnd) : null };
  writeFileSync(cases.spoken.reply, Buffer.concat(reply));
}

console.log(JSON.stringify(out));
