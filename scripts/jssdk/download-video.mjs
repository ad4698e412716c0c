// Starts a Veo video generation on the URL in GEMINI_BASE_URL (the
// geminihooks simulator), follows the operation with the official Gemini JS
// SDK (@google/genai) and downloads the video with files.download to OUT.
// It prints one JSON line describing what it did. Run by
// shared/gemsim/jssdk_test.go, which checks the bytes.
//
// The operation is started with the REST call (predictLongRunning): SDK
// 3.3.0's models.generateVideos refuses the Gemini Developer API ("only
// supported by ... Vertex AI"), while operations.getVideosOperation and
// files.download support it.
//
// Environment: GEMINI_BASE_URL, GEMINI_API_KEY, PROMPT, OUT.
import { GenerateVideosOperation, GoogleGenAI } from '@google/genai';
import { stat } from 'node:fs/promises';

const { GEMINI_BASE_URL: baseUrl, GEMINI_API_KEY: apiKey, PROMPT: prompt, OUT: out } = process.env;
if (!baseUrl || !apiKey || !prompt || !out) {
  console.error('download-video.mjs: set GEMINI_BASE_URL, GEMINI_API_KEY, PROMPT and OUT');
  process.exit(2);
}

const model = 'veo-3.1-generate-preview';
const started = await fetch(`${baseUrl.replace(/\/$/, '')}/v1beta/models/${model}:predictLongRunning`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'x-goog-api-key': apiKey },
  body: JSON.stringify({ instances: [{ prompt }] }),
});
if (!started.ok) throw new Error(`predictLongRunning: HTTP ${started.status}: ${await started.text()}`);

const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl } });
let operation = new GenerateVideosOperation();
operation.name = (await started.json()).name;
const deadline = Date.now() + 30_000;
do {
  if (Date.now() > deadline) throw new Error(`operation ${operation.name} not done after 30s`);
  await new Promise((r) => setTimeout(r, 50));
  operation = await ai.operations.getVideosOperation({ operation });
} while (!operation.done);
const video = operation.response?.generatedVideos?.[0];
if (!video?.video?.uri) throw new Error(`no generated video in ${JSON.stringify(operation)}`);
await ai.files.download({ file: video, downloadPath: out });
// The Node downloader pipes the body to the file; make sure it is complete.
const { size } = await stat(out);
console.log(JSON.stringify({ operation: operation.name, uri: video.video.uri, bytes: size }));
