// The shortest app: load a package (every file's sha256 is checked first) and print the top
// label of each image in the package's own samples/raw.npy. The README's snippet is this file.
// Usage: node runtimes/js/examples/predict.js [dist/digits.edgepack] [node|wasm]
const { load } = require("edgepack-runtime"); // npm install ./runtimes/js

async function main(path = "dist/digits.edgepack", backend = "node") {
  const pkg = await load(path, { backend });
  const raw = pkg.npy("samples/raw.npy"); // 64 pixel values 0..16 per image
  const pred = await pkg.predict(raw); // or pkg.predict([0, 0, 5, 13, ...]) for one image
  pred.labels.forEach((label, i) => console.log(`${i}: ${label} (${pred.scores[i].toFixed(3)})`));
}

main(...process.argv.slice(2));
