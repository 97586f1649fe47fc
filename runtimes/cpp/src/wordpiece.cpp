// BERT's tokenizer as Hugging Face tokenizers runs it from tokenizer.json (no C or C++ library
// on PyPI, Debian or npm does WordPiece from tokenizer.json: onnxruntime-extensions and
// onnxruntime-genai do BPE and Unigram only), step for step: special tokens matched whole in the
// raw text (leftmost, longest), BertNormalizer (clean_text, CJK spacing, NFD accent stripping,
// lowercasing), BertPreTokenizer (whitespace, punctuation), WordPiece (greedy longest match,
// "##" continuations, [UNK] for a word with an unknown piece), then the template's special
// tokens. ICU supplies the Unicode tables. tokenizers takes general categories from a crate
// with Unicode 8.0's tables, so a code point assigned after 8.0 counts as no category here too
// (tests/runtimes/test_text_runtimes.py checks the same ids as the Python runtime's).
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <map>

#include "text.hpp"

namespace edgepack::detail {

namespace {

using U32 = std::u32string;

U32 to_u32(const std::string& s) {  // s is valid UTF-8 (check_text)
  U32 out;
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int n = b < 0x80 ? 0 : b < 0xe0 ? 1 : b < 0xf0 ? 2 : 3;
    char32_t c = n == 0 ? b : n == 1 ? (b & 0x1f) : n == 2 ? (b & 0x0f) : (b & 0x07);
    for (int k = 1; k <= n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out.push_back(c);
    i += n + 1;
  }
  return out;
}

std::string to_utf8(const U32& s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x800) {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out += static_cast<char>(0xe0 | (c >> 12));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (c >> 18));
      out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out;
}

// The general category as tokenizers sees it: none for code points assigned after Unicode 8.0.
int8_t category(char32_t c) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(c), age);
  return age[0] > 8 ? static_cast<int8_t>(U_UNASSIGNED) : u_charType(static_cast<UChar32>(c));
}

bool is_whitespace(char32_t c) {  // Rust's char::is_whitespace: the White_Space property
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

bool is_control(char32_t c) {  // Cc, Cf, Co, Cs; tab and newlines count as whitespace
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const int8_t t = category(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_PRIVATE_USE_CHAR || t == U_SURROGATE;
}

bool is_punctuation(char32_t c) {  // ASCII punctuation, or a P* category
  if (c < 0x80) return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) ||
                       (c >= 0x5b && c <= 0x60) || (c >= 0x7b && c <= 0x7e);
  const int8_t t = category(c);
  return t == U_CONNECTOR_PUNCTUATION || t == U_DASH_PUNCTUATION || t == U_START_PUNCTUATION ||
         t == U_END_PUNCTUATION || t == U_INITIAL_PUNCTUATION || t == U_FINAL_PUNCTUATION ||
         t == U_OTHER_PUNCTUATION;
}

bool is_chinese(char32_t c) {  // the CJK blocks BERT spaces out, as tokenizers lists them
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

U32 nfd(const U32& text) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* norm = unorm2_getNFDInstance(&err);
  std::vector<UChar> in(text.size() * 2 + 1), out;
  int32_t n = 0;
  u_strFromUTF32(in.data(), static_cast<int32_t>(in.size()), &n,
                 reinterpret_cast<const UChar32*>(text.data()), static_cast<int32_t>(text.size()),
                 &err);
  out.resize(static_cast<size_t>(n) * 4 + 16);  // NFD expands a code point to at most 4 (UAX 15)
  const int32_t m = unorm2_normalize(norm, in.data(), n, out.data(),
                                     static_cast<int32_t>(out.size()), &err);
  std::vector<UChar32> cps(static_cast<size_t>(m) + 1);
  int32_t k = 0;
  u_strToUTF32(cps.data(), static_cast<int32_t>(cps.size()), &k, out.data(), m, &err);
  if (U_FAILURE(err)) fail(ErrorKind::kInput, std::string("text: ICU NFD failed: ") + u_errorName(err));
  return U32(cps.begin(), cps.begin() + k);
}

const Json& require(const Json& obj, const char* key, const std::string& where) {
  if (!obj.is_object() || !obj.contains(key))
    fail(ErrorKind::kInvalidPackage, where + ": tokenizer.json has no '" + key + "'");
  return obj[key];
}

void unsupported(const std::string& what) {
  fail(ErrorKind::kUnsupported,
       "tokenizer.json: " + what +
           ": the C++ runtime tokenizes WordPiece (BERT) text packages; other tokenizers run in "
           "the Python and Node runtimes");
}

}  // namespace

struct WordPiece::State {
  std::map<std::string, int64_t> vocab;
  std::vector<std::pair<std::string, int64_t>> added;  // matched whole in the raw text
  std::string prefix = "##", unk;
  int64_t unk_id = 0;
  size_t max_chars = 100;
  bool clean = true, chinese = true, strip = true, lower = true;
  std::vector<int64_t> head_ids, head_types, tail_ids, tail_types;
  int64_t seq_type = 0;

  std::vector<int64_t> words(const std::string& segment) const;
  void word(const std::string& w, std::vector<int64_t>& out) const;
  void read_template(const Json& post);
};

WordPiece::WordPiece(const Json& tok) : s_(std::make_unique<State>()) {
  State& s = *s_;
  const Json& model = require(tok, "model", "model");
  if (model.value("type", "") != "WordPiece") unsupported("model " + model.value("type", "?"));
  for (const auto& [piece, id] : require(model, "vocab", "model").items())
    s.vocab[piece] = id.get<int64_t>();
  s.unk = model.value("unk_token", "[UNK]");
  s.prefix = model.value("continuing_subword_prefix", "##");
  s.max_chars = model.value("max_input_chars_per_word", size_t{100});
  if (!s.vocab.count(s.unk)) fail(ErrorKind::kInvalidPackage, "tokenizer.json: unk_token not in vocab");
  s.unk_id = s.vocab.at(s.unk);
  const Json norm = tok.value("normalizer", Json());
  if (norm.is_null()) {
    s.clean = s.chinese = s.strip = s.lower = false;
  } else if (norm.value("type", "") == "BertNormalizer") {
    s.clean = norm.value("clean_text", true);
    s.chinese = norm.value("handle_chinese_chars", true);
    s.lower = norm.value("lowercase", true);
    const Json strip = norm.value("strip_accents", Json());
    s.strip = strip.is_null() ? s.lower : strip.get<bool>();
  } else {
    unsupported("normalizer " + norm.value("type", "?"));
  }
  const Json pre = tok.value("pre_tokenizer", Json());
  if (pre.is_null() || pre.value("type", "") != "BertPreTokenizer")
    unsupported("pre_tokenizer " + (pre.is_null() ? std::string("null") : pre.value("type", "?")));
  for (const Json& a : tok.value("added_tokens", Json::array())) {
    if (a.value("normalized", false) || a.value("single_word", false) || a.value("lstrip", false) ||
        a.value("rstrip", false)) {
      unsupported("added token " + a.value("content", "?") + " is normalized or stripped");
    }
    s.added.emplace_back(a.at("content").get<std::string>(), a.at("id").get<int64_t>());
  }
  s.read_template(tok.value("post_processor", Json()));
}

WordPiece::~WordPiece() = default;

void WordPiece::State::read_template(const Json& post) {
  if (post.is_null()) return;
  const std::string type = post.value("type", "");
  if (type == "BertProcessing") {
    head_ids = {post.at("cls").at(1).get<int64_t>()};
    tail_ids = {post.at("sep").at(1).get<int64_t>()};
    head_types = tail_types = {0};
    return;
  }
  if (type != "TemplateProcessing") unsupported("post_processor " + type);
  bool seen = false;
  for (const Json& piece : post.at("single")) {
    if (piece.contains("Sequence")) {
      seen = true;
      seq_type = piece["Sequence"].value("type_id", int64_t{0});
      continue;
    }
    const Json& sp = piece.at("SpecialToken");
    const Json& ids = post.at("special_tokens").at(sp.at("id").get<std::string>()).at("ids");
    for (const Json& id : ids) {
      (seen ? tail_ids : head_ids).push_back(id.get<int64_t>());
      (seen ? tail_types : head_types).push_back(sp.value("type_id", int64_t{0}));
    }
  }
}

// Greedy longest-match-first pieces of one word; [UNK] alone when a piece is missing.
void WordPiece::State::word(const std::string& w, std::vector<int64_t>& out) const {
  if (to_u32(w).size() > max_chars) {
    out.push_back(unk_id);
    return;
  }
  std::vector<int64_t> pieces;
  for (size_t start = 0; start < w.size();) {
    size_t end = w.size();
    bool found = false;
    while (start < end) {
      const std::string sub = (start > 0 ? prefix : "") + w.substr(start, end - start);
      const auto it = vocab.find(sub);
      if (it != vocab.end()) {
        pieces.push_back(it->second);
        found = true;
        break;
      }
      do --end;  // back one code point (UTF-8 continuation bytes are 10xxxxxx)
      while (end > start && (static_cast<unsigned char>(w[end]) & 0xc0) == 0x80);
    }
    if (!found) {
      out.push_back(unk_id);
      return;
    }
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

// One stretch of text between special tokens: normalise, pre-tokenize, WordPiece.
std::vector<int64_t> WordPiece::State::words(const std::string& segment) const {
  U32 text = to_u32(segment), t;
  if (clean) {
    for (char32_t c : text)
      if (c != 0 && c != 0xfffd && !is_control(c)) t.push_back(is_whitespace(c) ? U' ' : c);
    text.swap(t);
  }
  if (chinese) {
    t.clear();
    for (char32_t c : text) is_chinese(c) ? (t += U' ', t += c, t += U' ') : t += c;
    text.swap(t);
  }
  if (strip) {
    t.clear();
    for (char32_t c : nfd(text))
      if (category(c) != U_NON_SPACING_MARK) t.push_back(c);
    text.swap(t);
  }
  if (lower) {  // Rust's char::to_lowercase: simple mappings, and U+0130 to "i" + U+0307
    t.clear();
    for (char32_t c : text)
      c == 0x130 ? (t += U'i', t += char32_t{0x307}) : t += static_cast<char32_t>(u_tolower(c));
    text.swap(t);
  }
  std::vector<int64_t> ids;
  U32 current;
  auto flush = [&] {
    if (!current.empty()) word(to_utf8(current), ids);
    current.clear();
  };
  for (char32_t c : text) {
    if (is_whitespace(c)) {
      flush();
    } else if (is_punctuation(c)) {
      flush();
      word(to_utf8(U32(1, c)), ids);
    } else {
      current.push_back(c);
    }
  }
  flush();
  return ids;
}

Encoding WordPiece::encode(const std::string& text, int64_t max_length) const {
  const State& s = *s_;
  std::vector<int64_t> body;
  size_t done = 0;
  while (done <= text.size()) {  // the leftmost special token, the longest at that place
    size_t at = std::string::npos, len = 0;
    int64_t id = 0;
    for (const auto& [content, tid] : s.added) {
      const size_t p = content.empty() ? std::string::npos : text.find(content, done);
      if (p != std::string::npos && (p < at || (p == at && content.size() > len))) {
        at = p, len = content.size(), id = tid;
      }
    }
    const auto part = s.words(text.substr(done, at == std::string::npos ? std::string::npos : at - done));
    body.insert(body.end(), part.begin(), part.end());
    if (at == std::string::npos) break;
    body.push_back(id);
    done = at + len;
  }
  const auto special = static_cast<int64_t>(s.head_ids.size() + s.tail_ids.size());
  if (max_length > 0 && static_cast<int64_t>(body.size()) + special > max_length)
    body.resize(static_cast<size_t>(std::max<int64_t>(0, max_length - special)));
  Encoding e;
  e.ids = s.head_ids;
  e.type_ids = s.head_types;
  e.ids.insert(e.ids.end(), body.begin(), body.end());
  e.type_ids.insert(e.type_ids.end(), body.size(), s.seq_type);
  e.ids.insert(e.ids.end(), s.tail_ids.begin(), s.tail_ids.end());
  e.type_ids.insert(e.type_ids.end(), s.tail_types.begin(), s.tail_types.end());
  return e;
}

}  // namespace edgepack::detail
