"use strict";
// Unit tests of the pure-JS parts (no onnxruntime): run with `npm test` in runtimes/js, and by
// tests/runtimes/test_js_runtime.py so CI sees them.

const assert = require("node:assert/strict");
const test = require("node:test");

const { InputError, InvalidPackageError, SchemaVersionError } = require("../src/errors");
const { checkSchemaVersion, jsonDepth, parseManifest } = require("../src/manifest");
const { readNpy } = require("../src/npy");
const { checkFinite, makePostprocessor, makePreprocessor, softmax } = require("../src/processing");
const { checkMemberName } = require("../src/source");

const DIGITS = {
  inputs: [{ name: "input", dtype: "float32", shape: ["batch", 1, 8, 8] }],
  outputs: [{ name: "logits", dtype: "float32", shape: ["batch", 3] }],
  preprocessing: {
    type: "tensor",
    input: "input",
    dtype: "float32",
    sample_shape: [1, 2, 2],
    scale: 0.5,
    offset: 1,
    mean: 2,
    std: 4,
  },
  postprocessing: { type: "classification", output: "logits", labels: ["a", "b", "c"] },
};

/** A .npy file as numpy writes it (format 1.0, header padded to 64 bytes). */
function npyBytes(descr, shape, data) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const prefix = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, "latin1"), Buffer.from(data.buffer)]);
}

test("tensor preprocessing applies (raw*scale + offset - mean)/std and reshapes per sample", () => {
  const feeds = makePreprocessor(DIGITS)([0, 2, 4, 6, 8, 10, 12, 14]);
  assert.deepEqual(feeds.input.shape, [2, 1, 2, 2]);
  assert.ok(feeds.input.data instanceof Float32Array);
  assert.deepEqual([...feeds.input.data], [-0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5]);
});

test("tensor preprocessing accepts nested arrays, TypedArrays and {data, shape} alike", () => {
  const pre = makePreprocessor(DIGITS);
  const expected = [...pre([1, 2, 3, 4]).input.data];
  assert.deepEqual(
    [
      ...pre([
        [1, 2],
        [3, 4],
      ]).input.data,
    ],
    expected,
  );
  assert.deepEqual([...pre(new Float64Array([1, 2, 3, 4])).input.data], expected);
  assert.deepEqual([...pre({ data: new BigInt64Array([1n, 2n, 3n, 4n]) }).input.data], expected);
});

test("tensor preprocessing refuses a partial sample and non-numbers", () => {
  const pre = makePreprocessor(DIGITS);
  assert.throws(() => pre([1, 2, 3]), InputError);
  assert.throws(() => pre(["a", "b", "c", "d"]), InputError);
});

test("classification softmaxes each row and picks the first maximum's label", () => {
  const post = makePostprocessor(DIGITS);
  const pred = post({ logits: { shape: [2, 3], data: new Float32Array([0, 2, 1, 5, 5, 0]) } });
  assert.deepEqual(pred.labels, ["b", "a"]);
  assert.deepEqual(pred.indices, [1, 0]);
  pred.probabilities.forEach((p) => assert.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-12));
  const e = [1, Math.exp(2), Math.exp(1)];
  assert.ok(Math.abs(pred.scores[0] - e[1] / (e[0] + e[1] + e[2])) < 1e-12);
});

test("softmax stays finite for huge logits", () => {
  const p = softmax([1000, 0, -1000]);
  assert.ok(p.every(Number.isFinite));
  assert.equal(p[0], 1);
});

test("readNpy reads float32, float64 and int64 with their shapes", () => {
  const f4 = readNpy(npyBytes("<f4", [2, 2], new Float32Array([1.5, -2, 3, 4])));
  assert.deepEqual([f4.dtype, f4.shape, [...f4.data]], ["float32", [2, 2], [1.5, -2, 3, 4]]);
  const f8 = readNpy(npyBytes("<f8", [3], new Float64Array([0.1, 0.2, 0.3])));
  assert.deepEqual([...f8.data], [0.1, 0.2, 0.3]);
  const i8 = readNpy(npyBytes("<i8", [2], new BigInt64Array([-(2n ** 40n), 7n])));
  assert.deepEqual([i8.dtype, [...i8.data]], ["int64", [-(2n ** 40n), 7n]]);
});

test("readNpy refuses bad magic, truncated data and big-endian dtypes", () => {
  const good = npyBytes("<f4", [2], new Float32Array([1, 2]));
  assert.throws(() => readNpy(Buffer.from("not an npy file at all")), InvalidPackageError);
  assert.throws(() => readNpy(good.subarray(0, good.length - 1)), /needs 8 data bytes/);
  assert.throws(() => readNpy(npyBytes(">f4", [1], new Float32Array([1]))), /not supported/);
});

test("schema major 1 is accepted, any other major refused with SchemaVersionError", () => {
  checkSchemaVersion("1.7");
  assert.throws(() => checkSchemaVersion("2.0"), SchemaVersionError);
  assert.throws(() => checkSchemaVersion("1"), InvalidPackageError);
  assert.throws(() => checkSchemaVersion(1.0), InvalidPackageError);
});

test("a manifest whose model file is not listed is refused", () => {
  const manifest = { schema_version: "1.0", name: "n", version: "1", task: "t", model: "m.onnx" };
  const bytes = Buffer.from(JSON.stringify({ ...manifest, ...DIGITS, files: {} }));
  assert.throws(() => parseManifest(bytes), /m\.onnx is referenced but not listed/);
});

test("member names must be plain relative posix paths", () => {
  assert.equal(checkMemberName("samples/raw.npy", "x"), "samples/raw.npy");
  for (const bad of ["../x", "/etc/passwd", "a\\b", "a//b", "./a", "C:/x", ""]) {
    assert.throws(() => checkMemberName(bad, "x"), InvalidPackageError, bad);
  }
});

test("JSON depth is counted on the text, skipping brackets inside strings and escapes", () => {
  assert.equal(jsonDepth('{"a": [1, {"b": []}]}'), 4);
  assert.equal(jsonDepth('["[[[[", "\\"[[[", {}]'), 2);
  assert.equal(jsonDepth("7"), 0);
});

test("a manifest nested deeper than MAX_JSON_DEPTH is refused before it is parsed", () => {
  const deep = "[".repeat(100000) + "]".repeat(100000);
  const bytes = Buffer.from(`{"schema_version": "1.0", "lineage": ${deep}}`);
  assert.throws(() => parseManifest(bytes), /manifest\.json: JSON nested deeper than 64 levels/);
});

test("NaN and infinity are refused with InputError naming the input; integers pass", () => {
  const pre = makePreprocessor(DIGITS);
  assert.throws(() => pre([1, 2, NaN, 4]), /input 'input': contains NaN or infinity/);
  assert.throws(() => pre(new Float32Array([1, Infinity, 3, 4])), InputError);
  assert.throws(
    () => checkFinite("x", new Float64Array([-Infinity])),
    /input 'x'.*at flat index 0/,
  );
  const ints = new BigInt64Array([1n, 2n]);
  assert.equal(checkFinite("ids", ints), ints);
});
