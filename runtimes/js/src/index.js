"use strict";
// edgepack-runtime for JavaScript: load, verify and run `.edgepack` packages.
//
//   const { load } = require("edgepack-runtime");
//   const pkg = await load("digits.edgepack");          // verifies every sha256 first
//   const pred = await pkg.predict(pixels);              // 64 values 0..16 per image
//   console.log(pred.labels, pred.scores);
//   const emb = await (await load("minilm.edgepack")).predict(["a text", "another"]);
//   for await (const piece of lm.generate("Once upon a time")) process.stdout.write(piece);
//
// The same contract as the Python runtime (runtimes/python): docs/package-format.md.

const errors = require("./errors");
const { BACKENDS } = require("./backend");
const { SUPPORTED_MAJOR } = require("./manifest");
const { Decoder, replayGeneration } = require("./generation");
const { LanguageModel } = require("./lm");
const { checkText, decodeUtf8 } = require("./text");
const { readNpy } = require("./npy");
const { Package, load } = require("./package");
const { softmax } = require("./processing");
const { version } = require("../package.json");

module.exports = {
  BACKENDS: Object.keys(BACKENDS),
  Decoder,
  LanguageModel,
  Package,
  SUPPORTED_MAJOR,
  load,
  checkText,
  decodeUtf8,
  readNpy,
  replayGeneration,
  softmax,
  version,
  ...errors,
};
