// The few C functions of onnxruntime-genai's tokenizer API that the runtime calls, declared here
// because the onnxruntime-genai wheel ships libonnxruntime-genai.so without its header
// (ort_genai_c.h). Checked against onnxruntime-genai 0.18 (setup.sh fetches that version): every
// function returns an OgaResult* that is null on success and owns its error message otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {

struct OgaResult;
struct OgaTokenizer;
struct OgaSequences;

const char* OgaResultGetError(const OgaResult* result);
void OgaDestroyResult(OgaResult* result);
void OgaDestroyString(const char* text);

// A tokenizer from a folder holding tokenizer.json, tokenizer_config.json and genai_config.json.
OgaResult* OgaCreateTokenizerFromPath(const char* folder, OgaTokenizer** out);
void OgaDestroyTokenizer(OgaTokenizer* tokenizer);
// Keys "add_special_tokens" (default "false") and "skip_special_tokens" (default "true").
OgaResult* OgaUpdateTokenizerOptions(OgaTokenizer* tokenizer, const char* const* keys,
                                     const char* const* values, size_t count);

OgaResult* OgaCreateSequences(OgaSequences** out);
void OgaDestroySequences(OgaSequences* sequences);
size_t OgaSequencesGetSequenceCount(const OgaSequences* sequences, size_t index);
const int32_t* OgaSequencesGetSequenceData(const OgaSequences* sequences, size_t index);

// Appends the ids of a NUL-terminated UTF-8 string to `sequences` as a new sequence.
OgaResult* OgaTokenizerEncode(const OgaTokenizer* tokenizer, const char* text,
                              OgaSequences* sequences);
// `out` is a NUL-terminated UTF-8 string freed with OgaDestroyString.
OgaResult* OgaTokenizerDecode(const OgaTokenizer* tokenizer, const int32_t* ids, size_t count,
                              const char** out);
// Renders `messages` (a JSON list of {"role", "content"}) with `template_text` (null: the
// tokenizer's own); `out` is freed with OgaDestroyString.
OgaResult* OgaTokenizerApplyChatTemplate(const OgaTokenizer* tokenizer, const char* template_text,
                                         const char* messages, const char* tools,
                                         bool add_generation_prompt, const char** out);
}
