"""Provenance a reviewer can trust: where a package's model came from, in the manifest and in
the formats reviewers' tools read.

    licenses    the license and terms table (licenses.yaml, data) and the gate
    detect      what a teacher's and the data's own files say (license, terms, revision, hashes)
    lineage     the manifest's `provenance` block (teacher, student_init, data, method, accepted)
    card        Hugging Face-style model cards: front matter in, README.md out
    bom         the CycloneDX 1.6 ML-BOM (bom.cdx.json), checked by cyclonedx-python-lib
    onnx_meta   the lineage in every shipped .onnx's metadata_props
    write       what the package stage calls: stamp the model, write the card and the BOM

Mechanisms: plain arguments in, plain values out. Informational, not legal advice.
"""
