// Text in, text out with a language-model package, in Node: streams the greedy continuation of
// a prompt (with --chat, the assistant's reply through the package's chat template).
//   node runtimes/js/examples/generate.js dist/tiny-lm.edgepack "Once upon a time" [--chat]
const { load } = require("edgepack-runtime"); // npm install ./runtimes/js

async function main(path, prompt, ...flags) {
  const pkg = await load(path); // checks every file's sha256 first
  const chat = flags.includes("--chat");
  // Tokenized by Hugging Face tokenizers; one decode step per token on the KV cache; each piece
  // is printed as it arrives. Ends at an EOS token or before one of the package's stop strings.
  for await (const piece of pkg.generate(prompt, { chat })) process.stdout.write(piece);
  process.stdout.write("\n");
}

main(...process.argv.slice(2)).catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
