#include "gateway/registry/redis_store.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace gateway::registry {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string FreshDirectory(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, "-", ::getpid());
  std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  return dir;
}

// "127.0.0.1:PORT" of a port that was free a moment ago (nothing listens there).
std::string DeadAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
}

ServiceVersion Version(const std::string& service, int64_t version) {
  ServiceVersion v;
  v.service = service;
  v.owner = "books-team";
  v.backend = "bookstore";
  v.version = version;
  v.descriptor_set = "not parsed by the store";
  v.registered_at = absl::FromUnixSeconds(1700000000);
  return v;
}

TEST(RedisStore, RedisDownAtStartServesTheCacheAndRefusesWrites) {
  const std::string cache = FreshDirectory("redis-cache");
  // A cache as a previous run left it: the versions and when they were synced.
  DirectoryStore versions(cache + "/versions");
  ASSERT_TRUE(versions.Open().ok());
  ASSERT_TRUE(versions.Write(Version("bookstore.v1.Bookstore", 1)).ok());
  ASSERT_TRUE(versions.Write(Version("bookstore.v1.Bookstore", 2)).ok());
  std::ofstream(cache + "/synced_at") << "1764950400\n";  // 2025-12-05T16:00:00Z

  const std::string address = DeadAddress();
  auto status = std::make_shared<RedisRegistryStatus>(address);
  RedisStore store(address, "gatewayd:registry", cache, status);
  ASSERT_TRUE(store.Open().ok());
  absl::StatusOr<RegistryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_THAT(loaded->state.History("bookstore.v1.Bookstore"), SizeIs(2));
  ASSERT_THAT(loaded->problems, SizeIs(1));
  EXPECT_THAT(loaded->problems[0],
              HasSubstr(absl::StrCat("redis ", address, " unavailable at start (")));
  EXPECT_THAT(loaded->problems[0], HasSubstr("): serving the cached state from "
                                             "2025-12-05T16:00:00Z ("));
  const RedisRegistryStatus::Report report = status->Get();
  EXPECT_TRUE(report.ready);
  EXPECT_THAT(report.detail, StartsWith(absl::StrCat("degraded: registry: redis ", address,
                                                     " unavailable (")));
  EXPECT_THAT(report.detail, HasSubstr("serving cached state from 2025-12-05T16:00:00Z"));

  absl::Status write = store.Write(Version("bookstore.v1.Bookstore", 3));
  EXPECT_EQ(write.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(write.message(), HasSubstr("changes need Redis"));
}

TEST(RedisStore, RedisDownWithoutACacheStartsEmptyAndNotReady) {
  const std::string address = DeadAddress();
  auto status = std::make_shared<RedisRegistryStatus>(address);
  RedisStore store(address, "gatewayd:registry", "", status);
  ASSERT_TRUE(store.Open().ok());
  absl::StatusOr<RegistryStore::Loaded> loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->state.Names().empty());
  ASSERT_THAT(loaded->problems, SizeIs(1));
  EXPECT_THAT(loaded->problems[0],
              HasSubstr("no cached state (admin_listener.registry_redis_cache_directory is "
                        "not set), registered services are not served until it answers"));
  const RedisRegistryStatus::Report report = status->Get();
  EXPECT_FALSE(report.ready);
  EXPECT_THAT(report.detail, HasSubstr("no cached state: registered services are not served"));
  EXPECT_THAT(report.detail, StartsWith("registry: redis "));  // not ready, not "degraded"
}

TEST(RedisRegistryStatus, SaysWhichStateIsServed) {
  RedisRegistryStatus status("127.0.0.1:6379");
  EXPECT_TRUE(status.Get().ready);
  EXPECT_EQ(status.Get().detail, "");
  status.Synced(absl::FromUnixSeconds(1764950400));
  EXPECT_EQ(status.Get().detail, "");
  EXPECT_TRUE(status.Unavailable("Connection refused"));
  EXPECT_FALSE(status.Unavailable("Connection refused"));
  EXPECT_TRUE(status.Get().ready);
  EXPECT_EQ(status.Get().detail,
            "degraded: registry: redis 127.0.0.1:6379 unavailable (Connection refused), "
            "serving the state loaded at 2025-12-05T16:00:00Z");
  EXPECT_TRUE(status.Available());
  EXPECT_EQ(status.Get().detail, "");
  status.ServingCache(absl::FromUnixSeconds(1764950400));
  status.Available();
  EXPECT_EQ(status.Get().detail,
            "degraded: registry: redis 127.0.0.1:6379 answers again, loading the shared "
            "state, serving cached state from 2025-12-05T16:00:00Z");
}

}  // namespace
}  // namespace gateway::registry
