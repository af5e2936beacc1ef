#include "gateway/registry/directory_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gateway/admin/v1/registry.pb.h"
#include "gateway/config/config_loader.h"

namespace gateway::registry {
namespace {

constexpr char kMagic[] = "GWREG001";
constexpr std::size_t kMagicSize = 8;
constexpr std::size_t kHeaderSize = kMagicSize + 8 + 4;
constexpr char kSuffix[] = ".version";
constexpr char kTempPrefix[] = ".tmp-";

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

void PutLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return value;
}

uint32_t Crc32(const std::string& data, std::size_t offset) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(data.data() + offset),
            static_cast<uInt>(data.size() - offset)));
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    done += static_cast<std::size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FsyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("cannot open directory", dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("cannot fsync directory", dir);
  return absl::OkStatus();
}

absl::Status MakeDirectories(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("registry directory: empty path");
  std::string prefix;
  for (std::size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      prefix = path.substr(0, i);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        return Errno("cannot create directory", prefix);
      }
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  }
  return absl::OkStatus();
}

// Parses "<service>@<version>.version".
bool ParseFileName(const std::string& name, std::string* service, int64_t* version) {
  if (!absl::EndsWith(name, kSuffix)) return false;
  const std::string stem = name.substr(0, name.size() - std::strlen(kSuffix));
  const std::size_t at = stem.rfind('@');
  if (at == std::string::npos || at == 0) return false;
  *service = stem.substr(0, at);
  return absl::SimpleAtoi(stem.substr(at + 1), version) && *version > 0;
}

}  // namespace

std::string EncodeVersionFile(const ServiceVersion& version) {
  admin::v1::ServiceVersion record;
  record.set_service(version.service);
  record.set_owner(version.owner);
  record.set_backend(version.backend);
  record.set_version(version.version);
  record.set_registered_at_unix_seconds(absl::ToUnixSeconds(version.registered_at));
  record.set_descriptor_set(version.descriptor_set);
  record.set_removed(version.removed);
  record.set_changed_by(version.changed_by);
  if (version.backend_config.has_value()) {
    *record.mutable_backend_config() = *version.backend_config;
  }
  if (version.deadlines.rules_size() > 0) *record.mutable_deadlines() = version.deadlines;
  if (version.retries.rules_size() > 0) *record.mutable_retries() = version.retries;
  if (version.auth.rules_size() > 0) *record.mutable_auth() = version.auth;
  if (version.quotas.rules_size() > 0) *record.mutable_quotas() = version.quotas;
  const std::string payload = record.SerializeAsString();
  std::string out(kMagic, kMagicSize);
  PutLittleEndian(payload.size(), 8, &out);
  PutLittleEndian(static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(payload.data()),
                                              static_cast<uInt>(payload.size()))),
                  4, &out);
  out += payload;
  return out;
}

absl::StatusOr<ServiceVersion> DecodeVersionFile(const std::string& bytes) {
  if (bytes.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("truncated: ", bytes.size(), " bytes, shorter than the header"));
  }
  if (bytes.compare(0, kMagicSize, kMagic) != 0) {
    return absl::InvalidArgumentError("not a registry version file (bad magic)");
  }
  const uint64_t length = GetLittleEndian(bytes.data() + kMagicSize, 8);
  const uint32_t crc = static_cast<uint32_t>(GetLittleEndian(bytes.data() + kMagicSize + 8, 4));
  if (bytes.size() - kHeaderSize != length) {
    return absl::InvalidArgumentError(absl::StrCat("truncated: payload is ",
                                                   bytes.size() - kHeaderSize,
                                                   " bytes, header says ", length));
  }
  if (Crc32(bytes, kHeaderSize) != crc) {
    return absl::InvalidArgumentError("checksum mismatch");
  }
  admin::v1::ServiceVersion record;
  if (!record.ParseFromArray(bytes.data() + kHeaderSize, static_cast<int>(length))) {
    return absl::InvalidArgumentError("the record does not parse");
  }
  ServiceVersion v;
  v.service = record.service();
  v.owner = record.owner();
  v.backend = record.backend();
  v.version = record.version();
  v.registered_at = absl::FromUnixSeconds(record.registered_at_unix_seconds());
  v.descriptor_set = record.descriptor_set();
  v.removed = record.removed();
  v.changed_by = record.changed_by();
  if (record.has_backend_config()) v.backend_config = record.backend_config();
  v.deadlines = record.deadlines();
  v.retries = record.retries();
  v.auth = record.auth();
  v.quotas = record.quotas();
  return v;
}

std::string DirectoryStore::FileName(const std::string& service, int64_t version) {
  return absl::StrCat(service, "@", version, kSuffix);
}

absl::Status DirectoryStore::Open() { return MakeDirectories(directory_); }

absl::StatusOr<DirectoryStore::Loaded> DirectoryStore::Load() const {
  Loaded loaded;
  DIR* dir = ::opendir(directory_.c_str());
  if (dir == nullptr) return Errno("cannot list", directory_);
  std::vector<std::string> names;
  while (struct dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string path = absl::StrCat(directory_, "/", name);
    if (absl::StartsWith(name, kTempPrefix)) {
      loaded.problems.push_back(
          absl::StrCat(path, ": leftover temporary file of an interrupted write, skipped"));
      continue;
    }
    std::string service;
    int64_t version = 0;
    if (!ParseFileName(name, &service, &version)) {
      loaded.problems.push_back(
          absl::StrCat(path, ": not a registry file name (<service>@<version>.version), "
                             "skipped"));
      continue;
    }
    absl::StatusOr<std::string> bytes = ReadFileToString(path);
    if (!bytes.ok()) {
      loaded.problems.push_back(absl::StrCat(path, ": ", bytes.status().message(), ", skipped"));
      continue;
    }
    absl::StatusOr<ServiceVersion> v = DecodeVersionFile(*bytes);
    if (!v.ok()) {
      loaded.problems.push_back(absl::StrCat(path, ": ", v.status().message(), ", skipped"));
      continue;
    }
    if (v->service != service || v->version != version) {
      loaded.problems.push_back(absl::StrCat(path, ": holds ", v->service, " v", v->version,
                                             ", not what its name says, skipped"));
      continue;
    }
    loaded.state.Restore(*std::move(v));
  }
  return loaded;
}

absl::Status DirectoryStore::Write(const ServiceVersion& version) const {
  static std::atomic<uint64_t> counter{0};
  const std::string name = FileName(version.service, version.version);
  const std::string final_path = absl::StrCat(directory_, "/", name);
  const std::string temp_path =
      absl::StrCat(directory_, "/", kTempPrefix, name, ".", ::getpid(), ".", counter++);
  if (::access(final_path.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(final_path, " already exists"));
  }
  const std::string content = EncodeVersionFile(version);
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", temp_path);
  absl::Status status = WriteAll(fd, content, temp_path);
  if (status.ok() && ::fsync(fd) != 0) status = Errno("cannot fsync", temp_path);
  if (::close(fd) != 0 && status.ok()) status = Errno("cannot close", temp_path);
  if (status.ok() && ::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    status = Errno("cannot rename to", final_path);
  }
  if (!status.ok()) {
    ::unlink(temp_path.c_str());
    return status;
  }
  return FsyncDirectory(directory_);
}

absl::Status DirectoryStore::Delete(const std::string& service, int64_t version) const {
  const std::string path = absl::StrCat(directory_, "/", FileName(service, version));
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno("cannot delete", path);
  }
  return FsyncDirectory(directory_);
}

}  // namespace gateway::registry
