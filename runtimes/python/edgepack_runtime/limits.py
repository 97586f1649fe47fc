"""The caps on what a package or a user's file can make the runtime read (docs/package-format.md,
"What a reader refuses" and "The memory budget"; docs/guarantees.md).

A package comes from outside the device: whatever its headers or manifest claim, the runtime
reads at most these many bytes and nesting levels, so a hostile package costs a bounded amount
of memory, disk and time before it is refused. The JS and C++ runtimes use the same numbers.
"""

import os

# manifest.json is a few KB (about 15 KB for digits); a bigger one is refused before it is read.
MAX_MANIFEST_BYTES = 16 << 20
# Any one listed file: a model is a single protobuf, which cannot exceed 2 GiB. Every file must
# also be exactly its manifest size, so nothing is ever inflated or read past that size.
MAX_FILE_BYTES = 2 << 30
# [ and { nesting in any JSON the runtime parses (a real manifest nests 7 deep); checked on the
# text before parsing, so a deeply nested document is never handed to a recursive parser.
MAX_JSON_DEPTH = 64
# manifest.sig is a raw 64-byte ed25519 signature; a bigger file is never read whole.
MAX_SIGNATURE_BYTES = 1024

# The memory budget of reading a package. Every file but the model is only streamed through
# sha256 (1 MiB at a time), except the files a reader keeps to use: the samples (.npy, .json,
# sample images), the tokenizer and the recorded generation. Together they may hold at most
# this many bytes (edgepack writes a few KB to a few MB; a 1 MB zip that inflates to 1 GiB of
# "samples" is refused from the sizes alone, before a byte is inflated).
MAX_KEPT_BYTES = 64 << 20
# A zip member over 1 MiB may inflate to at most 64 times its compressed size: real members
# deflate 1-5x (a model 1-2x), deflate's worst case is 1032x, and a member that inflates that
# far (a model.onnx of zeros) costs a reader memory no package of its size should.
MAX_INFLATE_RATIO = 64
INFLATE_RATIO_FLOOR = 1 << 20
# An .npy header (numpy's own max_header_size): read and checked before the array's data.
MAX_NPY_HEADER_BYTES = 10_000
# Decoded pixels of an image, read from its header before anything is decoded: a user's image
# (Pillow's decompression-bomb limit, now the same in the three runtimes) and a package's
# sample images (a 4096 x 4096 photo; 48 MiB as RGB).
MAX_IMAGE_PIXELS = 178_956_970
MAX_SAMPLE_IMAGE_PIXELS = 1 << 24

# Files a user names (an input .npy, an image, a public key): regular files only, refused from
# their size when over these caps, and read no further than the cap.
MAX_INPUT_BYTES = 2 << 30
MAX_IMAGE_FILE_BYTES = 256 << 20
MAX_PUBLIC_KEY_BYTES = 1 << 16

# onnxruntime's intra-op threads: at most this many per core of the machine (more only adds
# contention; 100000 threads exhaust memory or crash the thread pool).
MAX_THREADS_PER_CORE = 4


def max_threads() -> int:
    """The most intra-op threads a runtime accepts on this machine."""
    return MAX_THREADS_PER_CORE * (os.cpu_count() or 1)


# Generated tokens per call, when the package records no context length that bounds them.
MAX_NEW_TOKENS = 1 << 16
