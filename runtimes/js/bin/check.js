#!/usr/bin/env node
"use strict";
// node runtimes/js/bin/check.js PKG [--pubkey KEY.pem] [--backend node|wasm] [--threads N]
//                                    [--input RAW.npy] [--image FILE [--tensor]]
//                                    [--text T | --text-file F]... [--tokens]
//                                    [--prompt T | --prompt-file F] [--chat] [--max-new-tokens N]
//
// Verifies a package (signature when --pubkey is given, every sha256), replays its recorded
// samples and compares with the recorded outputs. Prints `ok: ...` and exits 0, or prints ONE
// line `error: ...` on stderr and exits 1: `edgepack verify --runtime js` and scripts grep it.
// With --input, predicts on RAW.npy instead of replaying the samples and prints the prediction
// as one JSON line (as `python -m edgepack_runtime PKG --input RAW.npy` does). With --text (or
// --text-file, a file's bytes as one text), predicts on the texts (--tokens: prints the feeds);
// with --prompt, prints {"prompt_ids", "generated_ids", "text"} of the greedy continuation.

const { parseArgs } = require("node:util");
const { EdgepackRuntimeError, InputError, decodeUtf8, load, readNpy } = require("../src");
const { fmt } = require("../src/package");
const { readRegularFile } = require("../src/source");

const USAGE =
  "usage: check.js PKG [--pubkey KEY.pem] [--backend node|wasm] [--threads N] [--input RAW.npy] " +
  "[--image FILE [--tensor]] [--text T | --text-file F]... [--tokens] " +
  "[--prompt T | --prompt-file F] [--chat] [--max-new-tokens N]";

function readBytes(file) {
  try {
    return readRegularFile(file); // a FIFO or device: refused, not waited on
  } catch (err) {
    throw new InputError(`${file}: cannot read the input (${err.code ?? err.message})`);
  }
}

function readInput(file) {
  return readNpy(readBytes(file), file);
}

/** --text values and --text-file contents (each file's bytes, checked as UTF-8), in order. */
function texts(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--text") out.push(argv[++i]);
    if (argv[i] === "--text-file") out.push(decodeUtf8(readBytes(argv[++i]), `text ${out.length}`));
  }
  return out;
}

function jsonFeeds(feeds) {
  const rows = {};
  for (const [name, { shape, data }] of Object.entries(feeds)) {
    const flat = Array.from(data, Number);
    rows[name] = Array.from({ length: shape[0] }, (_, r) => flat.slice(r * shape[1], (r + 1) * shape[1]));
  }
  return rows;
}

async function generate(pkg, values) {
  const prompt =
    values["prompt-file"] === undefined
      ? values.prompt
      : decodeUtf8(readBytes(values["prompt-file"]), "prompt");
  const options = { chat: values.chat ?? false };
  if (values["max-new-tokens"] !== undefined) options.maxNewTokens = Number(values["max-new-tokens"]);
  const promptIds = await pkg.lm.promptIds(prompt, options.chat);
  let text = "";
  for await (const piece of pkg.generate(prompt, options)) text += piece;
  return { prompt_ids: promptIds, generated_ids: pkg.lm.generated, text };
}

/** Print a line and wait until it is flushed: process.exit would cut a long line on a pipe. */
function print(text) {
  return new Promise((resolve) => process.stdout.write(`${text}\n`, resolve));
}

function predictionJson(pred) {
  if (pred.labels !== undefined) {
    const rows = pred.labels.map((label, i) => ({
      label,
      index: pred.indices[i],
      score: pred.scores[i],
    }));
    return { predictions: rows };
  }
  if (pred.embeddings !== undefined) return { embeddings: pred.embeddings.map((e) => Array.from(e)) };
  const outputs = {};
  for (const [name, { data }] of Object.entries(pred.outputs))
    outputs[name] = Array.from(data, Number);
  return { outputs };
}

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pubkey: { type: "string" },
      backend: { type: "string", default: "node" },
      threads: { type: "string" },
      input: { type: "string" },
      image: { type: "string" },
      tensor: { type: "boolean" },
      text: { type: "string", multiple: true },
      "text-file": { type: "string", multiple: true },
      tokens: { type: "boolean" },
      prompt: { type: "string" },
      "prompt-file": { type: "string" },
      chat: { type: "boolean" },
      "max-new-tokens": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (positionals.length !== 1) throw new TypeError(`expected one package path (${USAGE})`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  const pkg = await load(positionals[0], {
    backend: values.backend,
    publicKey: values.pubkey,
    threads,
  });
  if (values.image !== undefined && values.tensor) {
    const x = Object.values(pkg.preprocess(values.image))[0];
    await print(JSON.stringify({ shape: x.shape, data: Array.from(x.data, Number) }));
    return;
  }
  if (values.image !== undefined) {
    await print(JSON.stringify(predictionJson(await pkg.predict(values.image))));
    return;
  }
  if (values.text !== undefined || values["text-file"] !== undefined) {
    const raw = texts(argv);
    const out = values.tokens ? jsonFeeds(await pkg.preprocess(raw)) : predictionJson(await pkg.predict(raw));
    await print(JSON.stringify(out));
    return;
  }
  if (values.prompt !== undefined || values["prompt-file"] !== undefined) {
    await print(JSON.stringify(await generate(pkg, values)));
    return;
  }
  if (values.input !== undefined) {
    await print(JSON.stringify(predictionJson(await pkg.predict(readInput(values.input)))));
    return;
  }
  const result = await pkg.verify();
  const maxDiff = Math.max(...Object.values(result.maxAbsDiff));
  const signed = pkg.signed ? ", signature ok" : "";
  const generated = result.generated ? `, generation ${result.generated.slice(14)}` : "";
  console.log(
    `ok: ${result.count} samples reproduced (max abs diff ${fmt(maxDiff)}; ` +
      `backend ${pkg.backend}${signed})${generated}`,
  );
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    // Package problems and bad options are one line; anything else is a bug: show the stack.
    const expected = err instanceof EdgepackRuntimeError || err instanceof TypeError;
    const message = expected ? err.message.split(/\s+/).join(" ") : err.stack;
    process.stderr.write(`error: ${message}\n`);
    process.exit(1);
  },
);
