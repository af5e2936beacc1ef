// DirectoryStore: the registry persisted in a directory, one file per service version
// ("<service>@<version>.version"; a removal is a version too), so every change is exactly
// one new file.
//
// Each file is written atomically: a temporary file in the same directory, fsync, rename
// to its final name, fsync of the directory. A file is framed (magic, length, CRC-32 of
// the payload) so that a truncated or altered file is recognized on load; it is reported
// and skipped, never served in part.
//
// File layout: "GWREG001" | payload length (uint64, little endian) | CRC-32 (uint32, little
// endian) | payload (a gateway.admin.v1.ServiceVersion with its descriptor_set).
//
// Thread-safety: not thread-safe; the Registry serializes its calls.
//
// Example:
//   DirectoryStore store("/var/lib/gatewayd/registry");
//   RETURN_IF_ERROR(store.Open());
//   absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
//   for (const std::string& p : loaded->problems) Log(p);
//   RETURN_IF_ERROR(store.Write(version));

#ifndef GATEWAY_REGISTRY_DIRECTORY_STORE_H_
#define GATEWAY_REGISTRY_DIRECTORY_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gateway/registry/registry_state.h"

namespace gateway::registry {

// Where the registry keeps its versions (a directory, or a Redis server shared by several
// gateways). Implementations are called with the registry's mutex held.
class RegistryStore {
 public:
  virtual ~RegistryStore() = default;

  // Prepares the store (creates the directory, connects). Returns an error naming the
  // location when it cannot.
  virtual absl::Status Open() = 0;

  struct Loaded {
    RegistryState state;
    // One line per skipped entry: "<where>: <what is wrong>, skipped".
    std::vector<std::string> problems;
  };
  // Reads every stored version. Corrupt or misnamed entries are reported in `problems` and
  // skipped. Returns an error only when the store cannot be read at all.
  virtual absl::StatusOr<Loaded> Load() const = 0;

  // Stores `version` atomically. Returns ALREADY_EXISTS when that version is already
  // stored (for a shared store: another gateway took the number first), or the store's
  // error (nothing is left behind then).
  virtual absl::Status Write(const ServiceVersion& version) const = 0;

  // Deletes version `version` of `service` (pruned from the history the registry keeps).
  // A version that is not stored is no error. Returns the store's error otherwise.
  virtual absl::Status Delete(const std::string& service, int64_t version) const = 0;
};

class DirectoryStore : public RegistryStore {
 public:
  explicit DirectoryStore(std::string directory) : directory_(std::move(directory)) {}

  // Creates the directory (and its parents) when missing. Returns the file system's error
  // naming the path.
  absl::Status Open() override;

  // Reads every version file. Corrupt, truncated or misnamed files and leftover temporary
  // files are reported in `problems` ("<path>: <what is wrong>, skipped") and skipped.
  // Returns an error only when the directory cannot be listed.
  absl::StatusOr<Loaded> Load() const override;

  // Writes `version` atomically. Returns ALREADY_EXISTS when that version is already
  // stored, or the file system's error naming the path (nothing is left behind then).
  absl::Status Write(const ServiceVersion& version) const override;

  // Removes the version's file (and syncs the directory). A missing file is no error;
  // otherwise the file system's error naming the path.
  absl::Status Delete(const std::string& service, int64_t version) const override;

  // The file name of a version: "<service>@<version>.version".
  static std::string FileName(const std::string& service, int64_t version);

  const std::string& directory() const { return directory_; }

 private:
  std::string directory_;
};

// The file content for `version` (exposed for tests that corrupt it).
std::string EncodeVersionFile(const ServiceVersion& version);

// Parses a file made by EncodeVersionFile. INVALID_ARGUMENT naming what is wrong (bad magic,
// truncated, checksum mismatch, unparsable record).
absl::StatusOr<ServiceVersion> DecodeVersionFile(const std::string& bytes);

}  // namespace gateway::registry

#endif  // GATEWAY_REGISTRY_DIRECTORY_STORE_H_
