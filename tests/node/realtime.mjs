// A Realtime session from node, as a user's program has it: `node realtime.mjs sdk` uses the openai
// SDK's OpenAIRealtimeWebSocket, `node realtime.mjs plain` node's own global WebSocket. Either way
// it sends session.update, a user message and response.create, reads the response to its
// response.done and closes (1000). It prints one JSON object with what it saw: the event types in
// order, the text and audio bytes it put together from the deltas, the usage, the `error` events
// and failures, and how the connection closed. Nothing here names a URL: both read
// OPENAI_BASE_URL, as `llmcassette record` and `serve` export it.
//
// - The SDK authenticates with the `openai-insecure-api-key.KEY` subprotocol (node's WebSocket
//   sends no custom header), and always opens wss://; its `onURL` hook makes it ws:// for an
//   http:// base URL, such as the proxy's.
// - The plain client sends `Authorization: Bearer KEY` (node's WebSocket takes `headers`), and
//   CLIENT_FAULT as the x-llmcassette-fault header, so that `serve` answers with that fault.
//
// CLIENT_TIMEOUT_MS bounds the whole session.
import OpenAI from "openai";
import { OpenAIRealtimeWebSocket } from "openai/realtime/websocket";

const mode = process.argv[2] ?? "sdk";
const key = process.env.OPENAI_API_KEY ?? "sk-node-realtime-test-0123456789";
const base = process.env.OPENAI_BASE_URL ?? "https://api.openai.com/v1";
const result = { events: [], text: "", audio_bytes: 0, usage: null, errors: [], close: null };
const CLIENT_EVENTS = [
  { type: "session.update", session: { type: "realtime", output_modalities: ["audio"] } },
  {
    type: "conversation.item.create",
    item: { type: "message", role: "user", content: [{ type: "input_text", text: "Say hello." }] },
  },
  { type: "response.create" },
];

function seen(event, close) {
  result.events.push(event.type);
  if (event.type === "error") result.errors.push(`error event: ${event.error?.message}`);
  if (event.type === "response.output_audio_transcript.delta" || event.type === "response.output_text.delta") {
    result.text += event.delta;
  }
  if (event.type === "response.output_audio.delta") result.audio_bytes += Buffer.from(event.delta, "base64").length;
  if (event.type === "response.done") {
    const usage = event.response.usage;
    result.usage = usage ? [usage.input_tokens, usage.output_tokens] : null;
    close();
  }
}

function sdk(resolve) {
  const client = new OpenAI({ apiKey: key, baseURL: base });
  const plain = (url) => {
    if (base.startsWith("http:")) url.protocol = "ws:";
  };
  const rt = new OpenAIRealtimeWebSocket({ model: "gpt-realtime", onURL: plain }, client);
  rt.on("event", (event) => seen(event, () => rt.close({ code: 1000, reason: "done" })));
  rt.on("error", (error) => result.errors.push(error.message));
  rt.socket.addEventListener("open", () => CLIENT_EVENTS.forEach((event) => rt.send(event)));
  return rt.socket;
}

function plainSocket() {
  const url = new URL(base.replace(/\/$/, "") + "/realtime");
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("model", "gpt-realtime");
  const headers = { Authorization: `Bearer ${key}` };
  if (process.env.CLIENT_FAULT) headers["x-llmcassette-fault"] = process.env.CLIENT_FAULT;
  const socket = new WebSocket(url, { headers });
  socket.addEventListener("open", () => CLIENT_EVENTS.forEach((event) => socket.send(JSON.stringify(event))));
  socket.addEventListener("message", (message) => {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      result.errors.push(`not JSON: ${String(message.data).slice(0, 40)}`);
      return;
    }
    seen(event, () => socket.close(1000, "done"));
  });
  socket.addEventListener("error", (error) => result.errors.push(error.message ?? "error"));
  return socket;
}

await new Promise((resolve) => {
  const timer = setTimeout(() => {
    result.errors.push("timeout");
    resolve();
  }, Number(process.env.CLIENT_TIMEOUT_MS ?? 10000));
  const socket = mode === "sdk" ? sdk() : plainSocket();
  socket.addEventListener("close", (event) => {
    result.close = { code: event.code, reason: event.reason, clean: event.wasClean };
    clearTimeout(timer);
    resolve();
  });
});
process.stdout.write(JSON.stringify(result));
