// The node openai SDK's Realtime client as a user's program calls it: `node realtime.mjs` opens a
// session (OpenAIRealtimeWebSocket, on node's global WebSocket), asks for one response to a text
// message and closes once it is done. It prints one JSON object with what it saw: the event types
// in order, the text and the audio (bytes, from the base64 deltas) it put together, the usage,
// the errors the SDK reported and how the connection closed. Nothing here names a URL: the SDK
// reads OPENAI_BASE_URL, as `llmcassette record` and `serve` export it. The SDK turns it into a
// wss:// URL whatever its scheme; its `onURL` hook makes it ws:// for an http:// base URL.
//
// Node's WebSocket sends no custom header: the SDK authenticates with the
// `openai-insecure-api-key.KEY` subprotocol, as a browser does. CLIENT_TIMEOUT_MS bounds the whole
// session.
import OpenAI from "openai";
import { OpenAIRealtimeWebSocket } from "openai/realtime/websocket";

const client = new OpenAI({ apiKey: process.env.OPENAI_API_KEY ?? "sk-node-realtime-test" });
const result = { events: [], text: "", transcript: "", audio_bytes: 0, usage: null, errors: [], close: null };

const done = new Promise((resolve) => {
  const timer = setTimeout(() => {
    result.errors.push("timeout");
    resolve();
  }, Number(process.env.CLIENT_TIMEOUT_MS ?? 10000));
  // The SDK always opens wss://; the proxy on loopback speaks plain ws://, as the base URL says.
  const plain = (url) => {
    if (client.baseURL.startsWith("http:")) url.protocol = "ws:";
  };
  const rt = new OpenAIRealtimeWebSocket({ model: "gpt-realtime", onURL: plain }, client);
  rt.on("event", (event) => result.events.push(event.type));
  rt.on("error", (error) => result.errors.push(error.message));
  rt.on("response.output_text.delta", (event) => (result.text += event.delta));
  rt.on("response.output_audio_transcript.delta", (event) => (result.transcript += event.delta));
  rt.on("response.output_audio.delta", (event) => {
    result.audio_bytes += Buffer.from(event.delta, "base64").length;
  });
  rt.on("response.done", (event) => {
    result.usage = [event.response.usage?.input_tokens ?? null, event.response.usage?.output_tokens ?? null];
    rt.close({ code: 1000, reason: "done" });
  });
  rt.socket.addEventListener("open", () => {
    rt.send({ type: "session.update", session: { type: "realtime", output_modalities: ["text"] } });
    rt.send({
      type: "conversation.item.create",
      item: { type: "message", role: "user", content: [{ type: "input_text", text: "Say hello." }] },
    });
    rt.send({ type: "response.create" });
  });
  rt.socket.addEventListener("close", (event) => {
    result.close = { code: event.code, reason: event.reason, clean: event.wasClean };
    clearTimeout(timer);
    resolve();
  });
});

await done;
process.stdout.write(JSON.stringify(result));
