"use strict";
// edgepack-runtime for JavaScript: load, verify and run `.edgepack` packages.
//
//   const { load } = require("edgepack-runtime");
//   const pkg = await load("digits.edgepack");          // verifies every sha256 first
//   const pred = await pkg.predict(pixels);              // 64 values 0..16 per image
//   console.log(pred.labels, pred.scores);
//
// The same contract as the Python runtime (runtimes/python): docs/package-format.md.

const errors = require("./errors");
const { BACKENDS } = require("./backend");
const { SUPPORTED_MAJOR } = require("./manifest");
const { Decoder, replayGeneration } = require("./generation");
const { readNpy } = require("./npy");
const { Package, load } = require("./package");
const { softmax } = require("./processing");
const { version } = require("../package.json");

module.exports = {
  BACKENDS: Object.keys(BACKENDS),
  Decoder,
  Package,
  SUPPORTED_MAJOR,
  load,
  readNpy,
  replayGeneration,
  softmax,
  version,
  ...errors,
};
