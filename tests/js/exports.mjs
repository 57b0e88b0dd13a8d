// The JavaScript SDK with nothing but what `quickstart emulator` printed: GoogleGenAI()
// reads GEMINI_API_KEY and GOOGLE_GEMINI_BASE_URL, and Node trusts the emulator's
// certificate authority through NODE_EXTRA_CA_CERTS. Run by tests/test_emulator_command.py
// as `node exports.mjs MODEL PROMPT`; prints the text of each streamed chunk, one JSON
// string a line.
import { GoogleGenAI } from '@google/genai';

const [model, prompt] = process.argv.slice(2);
const ai = new GoogleGenAI({});
for await (const chunk of await ai.models.generateContentStream({ model, contents: prompt })) {
  const parts = chunk.candidates?.[0]?.content?.parts ?? [];
  console.log(JSON.stringify(parts.filter((p) => !p.thought).map((p) => p.text ?? '').join('')));
}
