#!/usr/bin/env node
"use strict";
// node runtimes/js/bin/check.js PKG [--pubkey KEY.pem] [--backend node|wasm] [--threads N]
//
// Verifies a package (signature when --pubkey is given, every sha256), replays its recorded
// samples and compares with the recorded outputs. Prints `ok: ...` and exits 0, or prints ONE
// line `error: ...` on stderr and exits 1: `edgepack verify --runtime js` and scripts grep it.

const { parseArgs } = require("node:util");
const { EdgepackRuntimeError, load } = require("../src");
const { fmt } = require("../src/package");

const USAGE = "usage: check.js PKG [--pubkey KEY.pem] [--backend node|wasm] [--threads N]";

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      pubkey: { type: "string" },
      backend: { type: "string", default: "node" },
      threads: { type: "string" },
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
  const result = await pkg.verify();
  const maxDiff = Math.max(...Object.values(result.maxAbsDiff));
  const signed = pkg.signed ? ", signature ok" : "";
  console.log(
    `ok: ${result.count} samples reproduced (max abs diff ${fmt(maxDiff)}; ` +
      `backend ${pkg.backend}${signed})`,
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
