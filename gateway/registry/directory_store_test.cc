#include "gateway/registry/directory_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string FreshDirectory(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "-", ::getpid());
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  return dir;
}

void WriteRaw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

ServiceVersion Version(const std::string& service, int64_t version, const std::string& set) {
  ServiceVersion v;
  v.service = service;
  v.owner = "books-team";
  v.backend = "bookstore";
  v.version = version;
  v.descriptor_set = set;
  v.registered_at = absl::FromUnixSeconds(1700000000 + version);
  return v;
}

TEST(DirectoryStore, WhoMadeAVersionIsKept) {
  ServiceVersion v = Version("a.B", 1, "x");
  v.changed_by = "books-team (sha256:0123abcd)";
  absl::StatusOr<ServiceVersion> decoded = DecodeVersionFile(EncodeVersionFile(v));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->changed_by, "books-team (sha256:0123abcd)");
  // A file written before `changed_by` existed reads as made by nobody named.
  decoded = DecodeVersionFile(EncodeVersionFile(Version("a.B", 1, "x")));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->changed_by, "");
}

TEST(DirectoryStore, RoundTripRestoresEveryVersionExactly) {
  DirectoryStore store(FreshDirectory("roundtrip") + "/nested/registry");
  ASSERT_TRUE(store.Open().ok());
  ASSERT_TRUE(store.Write(Version("bookstore.v1.Bookstore", 1, std::string("\x0a\x01x", 3))).ok());
  ASSERT_TRUE(store.Write(Version("bookstore.v1.Bookstore", 2, "second")).ok());
  ServiceVersion removed = Version("echo.v1.Echo", 1, "echo");
  ASSERT_TRUE(store.Write(removed).ok());
  removed.version = 2;
  removed.removed = true;
  removed.descriptor_set.clear();
  ASSERT_TRUE(store.Write(removed).ok());

  absl::StatusOr<DirectoryStore::Loaded> loaded = DirectoryStore(store.directory()).Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(loaded->problems, IsEmpty());
  const std::vector<ServiceVersion>& history =
      loaded->state.History("bookstore.v1.Bookstore");
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].descriptor_set, std::string("\x0a\x01x", 3));
  EXPECT_EQ(history[1].descriptor_set, "second");
  EXPECT_EQ(history[1].owner, "books-team");
  EXPECT_EQ(history[1].backend, "bookstore");
  EXPECT_EQ(history[1].registered_at, absl::FromUnixSeconds(1700000002));
  EXPECT_EQ(loaded->state.Current("bookstore.v1.Bookstore")->version, 2);
  EXPECT_EQ(loaded->state.Current("echo.v1.Echo"), nullptr);
  EXPECT_EQ(loaded->state.History("echo.v1.Echo").size(), 2u);
}

TEST(DirectoryStore, WritingAnExistingVersionIsRefused) {
  DirectoryStore store(FreshDirectory("exists"));
  ASSERT_TRUE(store.Open().ok());
  ASSERT_TRUE(store.Write(Version("a.B", 1, "x")).ok());
  absl::Status status = store.Write(Version("a.B", 1, "y"));
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(status.message(), HasSubstr("a.B@1.version already exists"));
}

TEST(DirectoryStore, DeleteRemovesTheVersionAndToleratesAMissingOne) {
  DirectoryStore store(FreshDirectory("delete"));
  ASSERT_TRUE(store.Open().ok());
  ASSERT_TRUE(store.Write(Version("a.B", 1, "x")).ok());
  ASSERT_TRUE(store.Write(Version("a.B", 2, "y")).ok());
  ASSERT_TRUE(store.Delete("a.B", 1).ok());
  EXPECT_TRUE(store.Delete("a.B", 1).ok());
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->state.History("a.B").size(), 1u);
  EXPECT_EQ(loaded->state.History("a.B")[0].version, 2);
}

TEST(DirectoryStore, TruncatedFileIsReportedAndTheOlderVersionServed) {
  DirectoryStore store(FreshDirectory("truncated"));
  ASSERT_TRUE(store.Open().ok());
  ASSERT_TRUE(store.Write(Version("a.B", 1, "first")).ok());
  std::string content = EncodeVersionFile(Version("a.B", 2, "second version"));
  const std::string path = absl::StrCat(store.directory(), "/a.B@2.version");
  WriteRaw(path, content.substr(0, content.size() - 4));

  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded->problems,
              ElementsAre(absl::StrCat(path, ": truncated: payload is ",
                                       content.size() - 20 - 4, " bytes, header says ",
                                       content.size() - 20, ", skipped")));
  EXPECT_EQ(loaded->state.Current("a.B")->descriptor_set, "first");
}

TEST(DirectoryStore, FlippedByteIsAChecksumMismatch) {
  DirectoryStore store(FreshDirectory("flipped"));
  ASSERT_TRUE(store.Open().ok());
  std::string content = EncodeVersionFile(Version("a.B", 1, "payload"));
  content[content.size() - 2] ^= 0x20;
  const std::string path = absl::StrCat(store.directory(), "/a.B@1.version");
  WriteRaw(path, content);
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded->problems, ElementsAre(absl::StrCat(path, ": checksum mismatch, skipped")));
  EXPECT_EQ(loaded->state.Current("a.B"), nullptr);
}

TEST(DirectoryStore, ForeignAndShortFilesAreReported) {
  DirectoryStore store(FreshDirectory("foreign"));
  ASSERT_TRUE(store.Open().ok());
  WriteRaw(absl::StrCat(store.directory(), "/a.B@1.version"), "NOTMAGIC-and-more-bytes-here");
  WriteRaw(absl::StrCat(store.directory(), "/a.B@2.version"), "GWREG");
  WriteRaw(absl::StrCat(store.directory(), "/notes.txt"), "hello");
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  const std::string d = store.directory();
  EXPECT_THAT(
      loaded->problems,
      ElementsAre(
          absl::StrCat(d, "/a.B@1.version: not a registry version file (bad magic), skipped"),
          absl::StrCat(d, "/a.B@2.version: truncated: 5 bytes, shorter than the header, skipped"),
          absl::StrCat(d, "/notes.txt: not a registry file name (<service>@<version>.version), "
                          "skipped")));
}

TEST(DirectoryStore, FileWhoseContentDisagreesWithItsNameIsSkipped) {
  DirectoryStore store(FreshDirectory("misnamed"));
  ASSERT_TRUE(store.Open().ok());
  const std::string path = absl::StrCat(store.directory(), "/a.B@3.version");
  WriteRaw(path, EncodeVersionFile(Version("a.B", 1, "x")));
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded->problems,
              ElementsAre(absl::StrCat(path, ": holds a.B v1, not what its name says, skipped")));
}

TEST(DirectoryStore, LeftoverTemporaryFileIsReportedNotLoaded) {
  DirectoryStore store(FreshDirectory("leftover"));
  ASSERT_TRUE(store.Open().ok());
  const std::string path = absl::StrCat(store.directory(), "/.tmp-a.B@1.version.99.0");
  WriteRaw(path, EncodeVersionFile(Version("a.B", 1, "x")));
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded->problems,
              ElementsAre(absl::StrCat(
                  path, ": leftover temporary file of an interrupted write, skipped")));
  EXPECT_EQ(loaded->state.Current("a.B"), nullptr);
}

TEST(DirectoryStore, WriteLeavesNoTemporaryFile) {
  DirectoryStore store(FreshDirectory("clean"));
  ASSERT_TRUE(store.Open().ok());
  ASSERT_TRUE(store.Write(Version("a.B", 1, "x")).ok());
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_THAT(loaded->problems, IsEmpty());
  EXPECT_EQ(loaded->state.History("a.B").size(), 1u);
}

TEST(DirectoryStore, UnlistableDirectoryIsAnError) {
  DirectoryStore store(FreshDirectory("missing"));
  absl::StatusOr<DirectoryStore::Loaded> loaded = store.Load();
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(loaded.status().message(), HasSubstr("cannot list"));
}

}  // namespace
}  // namespace gateway::registry
