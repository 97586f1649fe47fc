// The package folder's files: listed with lstat (a symlink, FIFO, socket or device is refused,
// never followed or opened), then each read to exactly its manifest size through an fd opened one
// path component at a time with O_NOFOLLOW, and hashed as it streams. Also read_file, for the
// files an app names: regular files only, checked before they are opened.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "internal.hpp"

namespace fs = std::filesystem;

namespace edgepack::detail {

namespace {

constexpr const char* kOnlyRegular = "a package holds only regular files: copy the file itself in";
constexpr size_t kChunk = 1 << 20;

// Owns a file descriptor: closed on every path out, errors included.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail_not_regular(const std::string& name, mode_t mode) {
  if (S_ISLNK(mode)) fail(ErrorKind::kInvalidPackage, name + ": is a symlink; " + kOnlyRegular);
  fail(ErrorKind::kInvalidPackage,
       name + ": not a regular file (a FIFO, socket or device); " + kOnlyRegular);
}

[[noreturn]] void fail_size(const std::string& name, uintmax_t expected, const std::string& got) {
  fail(ErrorKind::kIntegrity, name + ": size mismatch (expected " + std::to_string(expected) +
                                  " bytes, got " + got +
                                  "): the package was modified after it was built");
}

// root/name, opened one component at a time with O_NOFOLLOW, so the path cannot resolve outside
// root even if a folder is swapped for a link after the listing; O_NONBLOCK, so opening a FIFO
// returns at once (fstat then refuses it). -1 with errno set on failure.
int open_inside(const fs::path& root, const std::string& name) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t slash = name.find('/', start);
    parts.push_back(name.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  int dir = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; dir >= 0 && i + 1 < parts.size(); ++i) {
    const int child =
        ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int saved = errno;
    ::close(dir);
    errno = saved;
    dir = child;
  }
  if (dir < 0) return -1;
  const int fd =
      ::openat(dir, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  const int saved = errno;
  ::close(dir);
  errno = saved;
  return fd;
}

std::string hex(const unsigned char* md, unsigned int len) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return S_ISSOCK(mode) ? "a socket" : "not a file";
}

}  // namespace

std::string read_file(const fs::path& path, const std::string& label, ErrorKind kind,
                      size_t max_bytes) {
  const auto refuse = [&](mode_t mode) {
    fail(kind, label + ": cannot read " + path.string() + " (" + file_kind(mode) +
                   ", not a regular file)");
  };
  struct stat st{};
  // stat, not lstat: a link to a regular file is that file. Checked before open, which would
  // wait forever on a FIFO with no writer; then O_NONBLOCK and fstat, for a path swapped since.
  if (::stat(path.c_str(), &st) != 0) {
    fail(kind, label + ": cannot read " + path.string() + " (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) refuse(st.st_mode);
  const Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
    fail(kind, label + ": cannot read " + path.string() + " (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) refuse(st.st_mode);
  const auto size = static_cast<uintmax_t>(st.st_size);
  if (size > max_bytes) {
    fail(kind, label + ": cannot read " + path.string() + " (too large (" + std::to_string(size) +
                   " bytes, over " + std::to_string(max_bytes) + "))");
  }
  std::string bytes;
  bytes.reserve(static_cast<size_t>(size));
  std::vector<char> buffer(kChunk);
  // Its size and one byte more at most: a file that changes while it is read is refused.
  while (bytes.size() <= size) {
    const auto want = static_cast<size_t>(std::min<uintmax_t>(kChunk, size + 1 - bytes.size()));
    const ssize_t n = ::read(fd.get(), buffer.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fail(kind, label + ": read error on " + path.string() + " (" + std::strerror(errno) + ")");
    }
    if (n == 0) break;
    bytes.append(buffer.data(), static_cast<size_t>(n));
  }
  if (bytes.size() != size) {
    fail(kind, label + ": cannot read " + path.string() + " (changed while it was read)");
  }
  return bytes;
}

std::string read_head(const fs::path& root, const std::string& name, size_t n) {
  const Fd fd(open_inside(root, name));
  struct stat st{};
  if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
    fail(ErrorKind::kIntegrity, name + ": cannot read (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) fail_not_regular(name, st.st_mode);
  std::string head(n, '\0');
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd.get(), head.data() + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(ErrorKind::kIntegrity, name + ": read error (" + std::strerror(errno) + ")");
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  head.resize(got);
  return head;
}

std::map<std::string, uintmax_t> list_files(const fs::path& root) {
  std::map<std::string, uintmax_t> files;
  std::vector<std::string> pending{""};  // an explicit stack: deep folders cannot recurse us
  while (!pending.empty()) {
    const std::string rel = pending.back();
    pending.pop_back();
    std::error_code ec;
    for (fs::directory_iterator it(rel.empty() ? root : root / rel, ec), end; !ec && it != end;
         it.increment(ec)) {
      const std::string name = (rel.empty() ? "" : rel + "/") + it->path().filename().string();
      struct stat st{};
      if (::lstat(it->path().c_str(), &st) != 0) {
        fail(ErrorKind::kIntegrity, name + ": cannot read (" + std::strerror(errno) + ")");
      }
      if (S_ISDIR(st.st_mode)) {
        pending.push_back(name);
      } else if (S_ISREG(st.st_mode)) {
        files[name] = static_cast<uintmax_t>(st.st_size);
      } else {
        fail_not_regular(name, st.st_mode);
      }
    }
    if (ec) {
      fail(ErrorKind::kInvalidPackage, root.string() + ": cannot list " +
                                           (rel.empty() ? "." : rel) + " (" + ec.message() + ")");
    }
  }
  return files;
}

std::optional<uintmax_t> regular_size(const fs::path& root, const std::string& name) {
  struct stat st{};
  if (::lstat((root / name).c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;
    fail(ErrorKind::kIntegrity, name + ": cannot read (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) fail_not_regular(name, st.st_mode);
  return static_cast<uintmax_t>(st.st_size);
}

Member read_member(const fs::path& root, const std::string& name, uintmax_t size, bool keep) {
  const Fd fd(open_inside(root, name));
  if (fd.get() < 0) {
    if (errno == ELOOP || errno == ENOTDIR || errno == EMLINK) {
      fail(ErrorKind::kInvalidPackage, name + ": is a symlink or under one; " + kOnlyRegular);
    }
    fail(ErrorKind::kIntegrity, name + ": cannot read (" + std::strerror(errno) + ")");
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    fail(ErrorKind::kIntegrity, name + ": cannot read (" + std::strerror(errno) + ")");
  }
  if (!S_ISREG(st.st_mode)) fail_not_regular(name, st.st_mode);  // swapped since the listing
  if (static_cast<uintmax_t>(st.st_size) != size) fail_size(name, size, std::to_string(st.st_size));

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    fail(ErrorKind::kIntegrity, "OpenSSL could not compute a sha256");
  }
  Member member;
  if (keep) member.bytes.reserve(size);
  std::vector<char> buffer(static_cast<size_t>(std::min<uintmax_t>(kChunk, size + 1)));
  uintmax_t got = 0;
  // Read one byte more than expected at most: enough to notice a file that grew since fstat.
  while (got <= size) {
    const auto want = static_cast<size_t>(std::min<uintmax_t>(buffer.size(), size + 1 - got));
    const ssize_t n = ::read(fd.get(), buffer.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(ErrorKind::kIntegrity, name + ": read error (" + std::strerror(errno) + ")");
    if (n == 0) break;
    got += static_cast<uintmax_t>(n);
    if (got > size) fail_size(name, size, "more");
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n));
    if (keep) member.bytes.append(buffer.data(), static_cast<size_t>(n));
  }
  if (got != size) fail_size(name, size, std::to_string(got));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) {
    fail(ErrorKind::kIntegrity, "OpenSSL could not compute a sha256");
  }
  member.sha256 = hex(md, len);
  return member;
}

Files verify_files(const fs::path& root, const Json& manifest, const std::set<std::string>& keep) {
  const Json& listed = manifest.at("files");
  const std::map<std::string, uintmax_t> present = list_files(root);
  for (const auto& [name, size] : present) {
    if (name != kManifest && name != kSignature && !listed.contains(name)) {
      fail(ErrorKind::kIntegrity,
           name +
               ": not listed in manifest.json (every file but manifest.json and manifest.sig "
               "must be listed)");
    }
  }
  // Every size before any read: a size is free, and a wrong one is refused unread.
  for (const auto& [name, entry] : listed.items()) {
    const auto found = present.find(name);
    if (found == present.end()) {
      fail(ErrorKind::kIntegrity, name + ": listed in manifest.json but missing");
    }
    const auto expected = entry.at("size").get<uintmax_t>();
    if (found->second != expected) fail_size(name, expected, std::to_string(found->second));
  }
  check_budget(root, manifest, keep);  // only .npy headers are read
  Files kept;
  for (const auto& [name, entry] : listed.items()) {
    Member member =
        read_member(root, name, entry.at("size").get<uintmax_t>(), keep.count(name) > 0);
    const std::string expected = entry.at("sha256").get<std::string>();
    if (member.sha256 != expected) {
      fail(ErrorKind::kIntegrity,
           name + ": sha256 mismatch (expected " + expected + ", got " + member.sha256 + ")");
    }
    if (keep.count(name)) kept.emplace(name, std::move(member.bytes));
  }
  return kept;
}

}  // namespace edgepack::detail
