"use strict";
// What is shown on a terminal: control characters (C0, DEL, C1), bidi overrides and lone
// surrogates shown escaped (\x1b, \u202e), so nothing a package or a file names can move the
// cursor, recolour the terminal, forge an output line or reorder what is shown. The same
// characters as the Python and C++ runtimes.

const UNPRINTABLE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;

function escape(ch) {
  const code = ch.codePointAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
}

/** `text` as a string that is safe to print on a terminal, escapes shown. */
function printable(text) {
  return String(text).replace(UNPRINTABLE, escape);
}

/** JSON text safe to print: JSON.stringify escapes C0 only; the rest become \uXXXX escapes. */
function printableJson(value) {
  return JSON.stringify(value).replace(
    /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu,
    (ch) => `\\u${ch.codePointAt(0).toString(16).padStart(4, "0")}`,
  );
}

module.exports = { printable, printableJson };
