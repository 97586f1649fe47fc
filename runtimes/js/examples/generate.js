// Greedy decoding with a language-model package's KV cache, in Node: replays the package's
// recorded sample generation (samples/generation.json) and prints each continuation's ids.
//   node runtimes/js/examples/generate.js dist/tiny-lm.edgepack
// (Token ids in and out: the JS runtime has no tokenizer; the Python runtime turns text into ids.)
const { Decoder, load } = require("edgepack-runtime"); // npm install ./runtimes/js

async function main(path = "dist/tiny-lm.edgepack") {
  const pkg = await load(path); // checks every file's sha256 first
  const sample = JSON.parse(Buffer.from(pkg._files.get(pkg.manifest.generation.sample)).toString());
  const decoder = new Decoder(pkg);
  for (const [i, prompt] of sample.prompt_ids.entries()) {
    // Prefill once, then one step a token; the recording runs through EOS (stops_at_eos false).
    const ids = await decoder.greedy(prompt, sample.max_new_tokens, sample.stops_at_eos ?? true);
    const same = ids.join() === sample.generated_ids[i].join() ? "matches the recording" : "DIFFERS";
    console.log(`${i}: ${ids.join(" ")} (${same})`);
  }
}

main(...process.argv.slice(2)).catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
