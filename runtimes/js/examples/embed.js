// Text in, vectors out with a sentence-embedding package (e.g. all-MiniLM-L6-v2), in Node: one
// vector per text, tokenized by the package's own tokenizer.json.
//   node runtimes/js/examples/embed.js dist/minilm-l6.edgepack "first text" "second text"
const { load } = require("edgepack-runtime"); // npm install ./runtimes/js

async function main(path, ...texts) {
  const pkg = await load(path); // checks every file's sha256 first
  const { embeddings } = await pkg.predict(texts); // one batch, padded to its longest text
  embeddings.forEach((e, i) => {
    const norm = Math.hypot(...e);
    const head = Array.from(e.slice(0, 8), (v) => (v < 0 ? "" : "+") + v.toFixed(4)).join(", ");
    console.log(`${i}: dim ${e.length}, norm ${norm.toFixed(4)}, [${head}, ...]`);
  });
}

main(...process.argv.slice(2)).catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
