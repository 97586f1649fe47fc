"use strict";
// ed25519 signatures: manifest.sig holds the raw 64-byte signature over the exact bytes of
// manifest.json. The manifest lists every other file's sha256, so a valid signature covers the
// whole package. The key is a PEM SubjectPublicKeyInfo (what `edgepack keygen` writes).

const crypto = require("node:crypto");
const { SignatureError } = require("./errors");
const { MAX_PUBLIC_KEY_BYTES } = require("./limits");
const { readRegularFile } = require("./source");

const SIGNATURE = "manifest.sig";
const SIGNATURE_BYTES = 64;

/** A KeyObject from a PEM string/Buffer, a KeyObject, or a path to a .pem file. */
function loadPublicKey(key) {
  let pem = key;
  let where = "public key";
  if (key instanceof crypto.KeyObject) {
    pem = null;
  } else if (typeof key === "string" && !key.includes("-----BEGIN")) {
    where = key;
    try {
      // a FIFO or device: refused, not waited on; a PEM public key is a few hundred bytes
      pem = readRegularFile(key, MAX_PUBLIC_KEY_BYTES);
    } catch (err) {
      throw new SignatureError(`${key}: cannot read the public key (${err.code ?? err.message})`);
    }
  }
  let publicKey = key;
  if (pem !== null && String(pem).includes("PRIVATE KEY-----")) {
    // createPublicKey would quietly derive the public half; a private key on a device is a leak.
    throw new SignatureError(
      `${where}: this is a private key; pass the public key (.pub) ` +
        "and keep the private one off devices",
    );
  }
  if (pem !== null) {
    try {
      publicKey = crypto.createPublicKey({ key: pem, format: "pem" });
    } catch (err) {
      throw new SignatureError(`${where}: not a PEM public key (${err.message})`);
    }
  }
  if (publicKey.type !== "public" || publicKey.asymmetricKeyType !== "ed25519") {
    throw new SignatureError(
      `${where}: expected an ed25519 public key, got ${publicKey.asymmetricKeyType ?? "?"} ` +
        `${publicKey.type}`,
    );
  }
  return publicKey;
}

/** Throw SignatureError unless `signature` is a valid ed25519 signature of `manifestBytes`. */
function verifySignature(manifestBytes, signature, publicKey) {
  if (signature === null) {
    throw new SignatureError(
      `${SIGNATURE}: the package is not signed, but a public key was given to verify it`,
    );
  }
  if (signature.length !== SIGNATURE_BYTES) {
    throw new SignatureError(
      `${SIGNATURE}: expected a raw ${SIGNATURE_BYTES}-byte ed25519 signature, ` +
        `got ${signature.length} bytes`,
    );
  }
  if (!crypto.verify(null, manifestBytes, publicKey, signature)) {
    throw new SignatureError(
      `${SIGNATURE}: signature does not match manifest.json for this public key ` +
        "(wrong key, or the package was modified after it was signed)",
    );
  }
}

module.exports = { SIGNATURE, loadPublicKey, verifySignature };
