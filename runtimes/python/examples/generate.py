"""Text in, text out with a language-model package, run by tests/runtimes/test_chat_runtimes.py:
python runtimes/python/examples/generate.py PKG "Once upon a time" [--chat]"""

import sys

import edgepack_runtime  # pip install './runtimes/python[text]'

pkg = edgepack_runtime.load(sys.argv[1])  # checks every file's sha256 first
chat = "--chat" in sys.argv[3:]
# Tokenized by Hugging Face tokenizers; one decode step per token on the KV cache; each piece
# is printed as it arrives. Ends at an EOS token or before one of the package's stop strings.
for piece in pkg.generate(sys.argv[2], chat=chat, temperature=0):
    print(piece, end="", flush=True)
print()
