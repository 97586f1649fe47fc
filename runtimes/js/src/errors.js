"use strict";
// Every error the runtime throws: one base class, so an app can catch them all in one place.
// The same tree as the Python runtime's (edgepack_runtime.errors), plus SignatureError.

class EdgepackRuntimeError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** Not a package, or its manifest is missing, malformed or lacks a required field. */
class InvalidPackageError extends EdgepackRuntimeError {}

/** A file is missing, unlisted, or its size or sha256 differs from the manifest. */
class IntegrityError extends EdgepackRuntimeError {}

/** The manifest's schema_version has a major this runtime does not know. */
class SchemaVersionError extends EdgepackRuntimeError {}

/** A public key was given and manifest.sig is missing or does not match manifest.json. */
class SignatureError extends EdgepackRuntimeError {}

/** A valid package that needs something this runtime or install does not provide. */
class UnsupportedPackageError extends EdgepackRuntimeError {}

/** The input passed to preprocess, run or predict does not fit the model. */
class InputError extends EdgepackRuntimeError {}

/** The model does not reproduce the outputs recorded in the package's samples. */
class SampleMismatchError extends EdgepackRuntimeError {}

module.exports = {
  EdgepackRuntimeError,
  InvalidPackageError,
  IntegrityError,
  SchemaVersionError,
  SignatureError,
  UnsupportedPackageError,
  InputError,
  SampleMismatchError,
};
