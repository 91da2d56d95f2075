// The node SDKs as a user's program calls them: `node clients.mjs CALL...` runs each CALL
// (openai-json, openai-stream, anthropic-json, anthropic-stream) in turn and prints one JSON
// object with what each parsed, or the error it raised, under the CALL as given. Nothing here
// names a URL: the SDKs read OPENAI_BASE_URL and ANTHROPIC_BASE_URL, as `llmcassette record` and
// `serve` export them.
//
// CLIENT_MAX_RETRIES and CLIENT_TIMEOUT_MS set the clients' options. `CALL@SPEC` sends SPEC as
// the x-llmcassette-fault header, so that `serve` answers that call with a fault. Every attempt
// the SDK makes goes through `fetch` below, which notes when it started, so the test sees the
// retries and the waits between them.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const PROMPT = "What is the weather in Paris?";
const SCHEMA = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string" } },
  required: ["city"],
};
const MESSAGES = [{ role: "user", content: PROMPT }];
const started = performance.now();
let attempts = [];

function options(fault) {
  const env = process.env;
  return {
    maxRetries: Number(env.CLIENT_MAX_RETRIES ?? 0),
    timeout: Number(env.CLIENT_TIMEOUT_MS ?? 10000),
    defaultHeaders: fault ? { "x-llmcassette-fault": fault } : {},
    fetch: (url, init) => {
      attempts.push(Math.round(performance.now() - started));
      return fetch(url, init);
    },
  };
}

const OPENAI_REQUEST = {
  model: "gpt-test",
  messages: MESSAGES,
  tools: [
    {
      type: "function",
      function: { name: "get_weather", description: "Weather now", parameters: SCHEMA },
    },
  ],
};

async function openaiJson(client) {
  const completion = await client.chat.completions.create(OPENAI_REQUEST);
  const message = completion.choices[0].message;
  return {
    text: message.content,
    tool_calls: message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
    usage: [completion.usage.prompt_tokens, completion.usage.completion_tokens],
    finish: completion.choices[0].finish_reason,
    chunks: 1,
  };
}

async function openaiStream(client) {
  const stream = await client.chat.completions.create({
    ...OPENAI_REQUEST,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let chunks = 0;
  let finish = null;
  let usage = null;
  const calls = new Map();
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.choices.length === 0) {
      usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens];
      continue;
    }
    const choice = chunk.choices[0];
    text += choice.delta.content ?? "";
    for (const call of choice.delta.tool_calls ?? []) {
      const parts = calls.get(call.index) ?? ["", ""];
      parts[0] += call.function?.name ?? "";
      parts[1] += call.function?.arguments ?? "";
      calls.set(call.index, parts);
    }
    finish = choice.finish_reason ?? finish;
  }
  const toolCalls = [...calls.values()].map(([name, args]) => [name, JSON.parse(args)]);
  return { text, tool_calls: toolCalls, usage, finish, chunks };
}

const ANTHROPIC_REQUEST = {
  model: "claude-test",
  max_tokens: 256,
  messages: MESSAGES,
  tools: [{ name: "get_weather", description: "Weather now", input_schema: SCHEMA }],
};

function anthropicSummary(message, chunks) {
  const blocks = message.content;
  return {
    text: blocks
      .filter((b) => b.type === "text")
      .map((b) => b.text)
      .join(""),
    tool_calls: blocks.filter((b) => b.type === "tool_use").map((b) => [b.name, b.input]),
    usage: [message.usage.input_tokens, message.usage.output_tokens],
    finish: message.stop_reason,
    chunks,
  };
}

async function anthropicJson(client) {
  return anthropicSummary(await client.messages.create(ANTHROPIC_REQUEST), 1);
}

async function anthropicStream(client) {
  // The SDK's own stream helper assembles text blocks and tool input from the events.
  const stream = client.messages.stream(ANTHROPIC_REQUEST);
  let chunks = 0;
  for await (const _event of stream) {
    chunks += 1;
  }
  return anthropicSummary(await stream.finalMessage(), chunks);
}

const openai = (fault) => new OpenAI({ apiKey: "sk-test-node-openai", ...options(fault) });
const anthropic = (fault) => new Anthropic({ apiKey: "sk-test-node-anthropic", ...options(fault) });
const CALLS = {
  "openai-json": (fault) => openaiJson(openai(fault)),
  "openai-stream": (fault) => openaiStream(openai(fault)),
  "anthropic-json": (fault) => anthropicJson(anthropic(fault)),
  "anthropic-stream": (fault) => anthropicStream(anthropic(fault)),
};

const results = {};
for (const arg of process.argv.slice(2)) {
  const at = arg.indexOf("@");
  const [name, fault] = at < 0 ? [arg, null] : [arg.slice(0, at), arg.slice(at + 1)];
  const call = CALLS[name];
  if (call === undefined) {
    console.error(`clients.mjs: unknown call ${JSON.stringify(name)}`);
    process.exit(2);
  }
  attempts = [];
  const begun = performance.now();
  try {
    results[arg] = await call(fault);
  } catch (error) {
    results[arg] = {
      error: error.constructor.name,
      status: error.status ?? null,
      message: String(error.message),
      cause: error.cause ? String(error.cause.message ?? error.cause) : null,
    };
  }
  results[arg].attempts_ms = attempts;
  results[arg].elapsed_ms = Math.round(performance.now() - begun);
}
console.log(JSON.stringify(results));
