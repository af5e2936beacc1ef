// gatewayctl: registers, inspects and removes services in a running gateway's descriptor
// registry through its admin API (gateway.admin.v1.Registry).
//
// Exit codes: 0 done; 1 the gateway refused the change (the message says why: invalid
// descriptors, conflicting routes, breaking changes, another owner, unknown service);
// 2 usage error or unreadable local file; 3 the gateway cannot be reached; 4 the admin
// token is missing or wrong; 5 `diff` (or `register --dry-run`) found breaking changes
// that registering would need --force for (a CI job gates on it).

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gateway/admin/v1/registry.grpc.pb.h"
#include "gateway/config/config_loader.h"
#include "gateway/openapi/openapi_config.h"
#include "tools/gatewayctl/embedded_protos.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/create_channel.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/security/credentials.h"
#include "yaml-cpp/yaml.h"

namespace gateway::ctl {
namespace {

constexpr char kUsage[] = R"(usage: gatewayctl [--admin=HOST:PORT] [--token-file=PATH] COMMAND [ARGS]

commands:
  register SERVICE --backend=NAME [--owner=TEAM] (--descriptor-set=FILE.pb | --proto=FILE.proto...
           | --from-reflection=HOST:PORT) [--proto-path=DIR]... [--force] [--dry-run]
      register SERVICE, or a new version of it; breaking changes need --force;
      --from-reflection asks a backend with gRPC server reflection for the descriptors
  diff SERVICE --backend=NAME [--owner=TEAM] (--descriptor-set=FILE.pb | --proto=FILE.proto...
       | --from-reflection=HOST:PORT) [--proto-path=DIR]... [--force]
      what registering would change (services, methods, routes, breaking changes);
      exits 5 when there are breaking changes (unless --force), 0 when the change is
      compatible or there is none
  apply -f SERVICE.yaml [--force] [--dry-run]
  diff -f SERVICE.yaml [--force]
      register (or show what registering would change) from one YAML file per service,
      kept next to the service's protos:
        service: payments.v1.Payments   # required
        owner: payments                 # optional with a team's token
        backend: payments               # a backend of the gateway config, or the
                                        # service's own: {target: "dns:///pay:50051", ...}
        descriptor_set: payments.pb     # or protos: [payments.proto] (+ proto_paths: [.])
        deadlines: {rules: [{default_timeout: 2s, max_timeout: 10s}]}  # its own methods
        retries: {rules: [{selectors: [payments.v1.Payments.Get], max_attempts: 3}]}
        auth: {rules: [{providers: [corp-jwt]}]}  # the gateway's providers, "api_key"
        quotas: {rules: [{name: per-caller, requests: 100, per: 60s}]}  # besides the config's
        force: false
      relative paths are taken from the file's directory
  list                          the registered services
  show SERVICE [--versions]     one service (and its version history)
  remove SERVICE [--owner=TEAM] [--dry-run]
  rollback SERVICE [--owner=TEAM] [--to=VERSION] [--dry-run]
      serve an earlier version again (default: the one before the current)
  (--owner may be left out with a team's token: the gateway uses the token's owner;
   an admin names the owner)
  openapi SERVICE (--descriptor-set=FILE.pb | --proto=FILE.proto... | --from-reflection=HOST:PORT)
          [--proto-path=DIR]... [--config=GATEWAY.yaml]
      print the OpenAPI 3.1 document the gateway serves for SERVICE
      (/openapi/SERVICE.json), offline; --config applies the config's
      http_listener.transcoding and auth, as the gateway does
  reload                        make the gateway read its config file again (as SIGHUP
                                does); prints what changed and what needs a restart
  config                        print the config the gateway serves (JSON, secrets redacted)

options:
  --admin=HOST:PORT   the gateway's admin listener (default 127.0.0.1:9901, or $GATEWAYCTL_ADMIN)
  --token-file=PATH   a file holding the admin bearer token (or $GATEWAYCTL_TOKEN)
  --timeout=SECONDS   per call (default 30)

--proto compiles with protoc: imports are looked up in each --proto-path (default: the
current directory), then in gatewayctl's own copies of google/api/{annotations,http,
httpbody}.proto and google/rpc/status.proto, then in /usr/include.

exit codes: 0 done, 1 refused by the gateway, 2 usage or local file error,
            3 gateway unreachable, 4 missing or wrong admin token,
            5 breaking changes found by diff or register --dry-run (without --force)
)";

constexpr int kOk = 0;
constexpr int kRefused = 1;
constexpr int kUsageError = 2;
constexpr int kUnreachable = 3;
constexpr int kUnauthenticated = 4;
constexpr int kBreaking = 5;

struct Args {
  std::string admin = "127.0.0.1:9901";
  std::string token;
  int timeout_seconds = 30;
  std::string command;
  std::vector<std::string> positional;
  std::string backend, owner, descriptor_set_file, from_reflection, config_file;
  std::string service_file;  // -f: a service's YAML file (apply, diff)
  std::vector<std::string> protos, proto_paths;
  // -f: the backend the service file defines (`backend:` as a map).
  std::optional<config::v1::Backend> backend_config;
  // -f: the service's own rules (`deadlines:`, `retries:`, `auth:`, `quotas:`).
  config::v1::Deadlines deadlines;
  config::v1::Retries retries;
  config::v1::Auth auth;
  config::v1::Quotas quotas;
  bool force = false, dry_run = false, versions = false;
  int64_t to_version = 0;
};

int UsageError(absl::string_view message) {
  std::cerr << "gatewayctl: " << message << "\n(gatewayctl --help for usage)\n";
  return kUsageError;
}

// Shell-quotes `s` for /bin/sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Writes the embedded google/api and google/rpc protos under `dir` (their import paths).
bool WriteEmbeddedProtos(const std::string& dir) {
  for (const EmbeddedProto& file : EmbeddedProtos()) {
    const std::filesystem::path path = std::filesystem::path(dir) / std::string(file.path);
    std::error_code error;
    std::filesystem::create_directories(path.parent_path(), error);
    std::ofstream stream(path, std::ios::binary);
    stream << file.content;
    if (error || !stream.good()) {
      std::cerr << "gatewayctl: cannot write " << path.string() << "\n";
      return false;
    }
  }
  return true;
}

// Runs protoc to build a descriptor set with every import. Imports are looked up in the
// --proto-path directories (default "."), then in the embedded google/api and google/rpc
// protos, then in /usr/include (google/protobuf/*.proto).
int CompileProtos(const Args& args, std::string* out) {
  std::string protoc = "protoc";
  if (std::system("command -v protoc >/dev/null 2>&1") != 0) {
    std::cerr << "gatewayctl: --proto needs protoc, which is not installed (install "
                 "protobuf-compiler, or build a .pb with protoc --include_imports "
                 "--descriptor_set_out and pass --descriptor-set)\n";
    return kUsageError;
  }
  char dir_template[] = "/tmp/gatewayctl.XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    std::cerr << "gatewayctl: cannot create a temporary directory\n";
    return kUsageError;
  }
  const std::string set_path = absl::StrCat(dir_template, "/set.pb");
  const std::string embedded_dir = absl::StrCat(dir_template, "/embedded");
  if (!WriteEmbeddedProtos(embedded_dir)) {
    std::filesystem::remove_all(dir_template);
    return kUsageError;
  }
  std::string command = absl::StrCat(protoc, " --include_imports --descriptor_set_out=",
                                     Quote(set_path));
  std::vector<std::string> paths = args.proto_paths;
  if (paths.empty()) paths.push_back(".");
  for (const std::string& p : paths) absl::StrAppend(&command, " -I", Quote(p));
  absl::StrAppend(&command, " -I", Quote(embedded_dir), " -I/usr/include");
  for (const std::string& f : args.protos) absl::StrAppend(&command, " ", Quote(f));
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    std::cerr << "gatewayctl: protoc failed (" << command << ")\n";
    std::filesystem::remove_all(dir_template);
    return kUsageError;
  }
  absl::StatusOr<std::string> bytes = ReadFileToString(set_path);
  std::filesystem::remove_all(dir_template);
  if (!bytes.ok()) {
    std::cerr << "gatewayctl: " << bytes.status().message() << "\n";
    return kUsageError;
  }
  *out = *std::move(bytes);
  return kOk;
}

// Asks the server at args.from_reflection (gRPC server reflection, v1alpha) for the file
// that defines `service` and every file it imports, and returns them as a serialized
// FileDescriptorSet.
int FetchByReflection(const Args& args, const std::string& service, std::string* out) {
  using grpc::reflection::v1alpha::ServerReflection;
  using grpc::reflection::v1alpha::ServerReflectionRequest;
  using grpc::reflection::v1alpha::ServerReflectionResponse;
  const std::string& target = args.from_reflection;
  std::unique_ptr<ServerReflection::Stub> stub =
      ServerReflection::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(args.timeout_seconds));
  auto stream = stub->ServerReflectionInfo(&context);
  std::map<std::string, google::protobuf::FileDescriptorProto> files;
  std::vector<std::string> wanted;
  auto ask = [&](const ServerReflectionRequest& request, absl::string_view what) -> int {
    ServerReflectionResponse response;
    if (!stream->Write(request) || !stream->Read(&response)) {
      grpc::Status status = stream->Finish();
      std::cerr << "gatewayctl: reflection at " << target << ": "
                << (status.ok() ? "the stream ended" : status.error_message()) << "\n";
      return status.error_code() == grpc::StatusCode::UNIMPLEMENTED ? kRefused : kUnreachable;
    }
    if (response.has_error_response()) {
      std::cerr << "gatewayctl: reflection at " << target << " has no " << what << ": "
                << response.error_response().error_message() << "\n";
      return kRefused;
    }
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      if (!file.ParseFromString(bytes)) {
        std::cerr << "gatewayctl: reflection at " << target
                  << " sent a file descriptor that does not parse\n";
        return kRefused;
      }
      for (const std::string& dep : file.dependency()) wanted.push_back(dep);
      std::string name = file.name();
      files.emplace(std::move(name), std::move(file));
    }
    return kOk;
  };
  ServerReflectionRequest request;
  request.set_file_containing_symbol(service);
  if (int rc = ask(request, absl::StrCat("service ", service)); rc != kOk) return rc;
  while (!wanted.empty()) {
    const std::string name = wanted.back();
    wanted.pop_back();
    if (files.count(name) > 0) continue;
    request.set_file_by_filename(name);
    if (int rc = ask(request, absl::StrCat("file ", name)); rc != kOk) return rc;
    if (files.count(name) == 0) {
      std::cerr << "gatewayctl: reflection at " << target << " did not send " << name << "\n";
      return kRefused;
    }
  }
  stream->WritesDone();
  stream->Finish();
  google::protobuf::FileDescriptorSet set;
  for (auto& [name, file] : files) *set.add_file() = std::move(file);
  *out = set.SerializeAsString();
  std::cerr << "gatewayctl: " << files.size() << " files from reflection at " << target << "\n";
  return kOk;
}

int Fail(absl::string_view what, const grpc::Status& status) {
  std::cerr << "gatewayctl: " << what << ": " << status.error_message() << "\n";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kUnreachable;
    case grpc::StatusCode::UNAUTHENTICATED:
      return kUnauthenticated;
    default:
      return kRefused;
  }
}

std::string TimeText(int64_t seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(seconds),
                          absl::UTCTimeZone());
}

void PrintChanges(const admin::v1::ChangeSummary& c) {
  auto print = [](absl::string_view prefix, const auto& list) {
    for (const std::string& item : list) std::cout << "  " << prefix << item << "\n";
  };
  print("+ service ", c.services_added());
  print("- service ", c.services_removed());
  print("+ method ", c.methods_added());
  print("- method ", c.methods_removed());
  print("+ route ", c.routes_added());
  print("- route ", c.routes_removed());
  print("~ ", c.settings_changes());
  if (c.breaking_changes_size() > 0) {
    std::cout << "breaking changes:\n";
    print("! ", c.breaking_changes());
  }
  if (c.services_added_size() + c.services_removed_size() + c.methods_added_size() +
          c.methods_removed_size() + c.routes_added_size() + c.routes_removed_size() +
          c.breaking_changes_size() + c.settings_changes_size() ==
      0) {
    std::cout << "  no changes to the served routes\n";
  }
}

void PrintVersionLine(const admin::v1::RegisterResponse& r, absl::string_view verb) {
  const admin::v1::ServiceVersion& v = r.version();
  for (const std::string& w : r.warnings()) std::cerr << "gatewayctl: warning: " << w << "\n";
  if (r.unchanged()) {
    std::cout << v.service() << ": unchanged, v" << v.version()
              << " is already served with this descriptor set, backend and owner "
                 "(no new version)\n";
    return;
  }
  if (r.dry_run()) {
    std::cout << "dry run (the gateway was not changed): " << v.service() << " would "
              << verb << " v" << v.version() << "\n";
  } else {
    std::cout << v.service() << ": " << verb << " v" << v.version() << " (backend "
              << v.backend() << ", owner " << v.owner() << ")\n";
  }
  PrintChanges(r.changes());
}

class Client {
 public:
  explicit Client(const Args& args) : args_(args) {
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);
    channel_args.SetMaxSendMessageSize(64 << 20);
    stub_ = admin::v1::Registry::NewStub(grpc::CreateCustomChannel(
        args.admin, grpc::InsecureChannelCredentials(), channel_args));
  }

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(args_.timeout_seconds));
    if (!args_.token.empty()) context->AddMetadata("authorization", "Bearer " + args_.token);
  }

  admin::v1::Registry::Stub& stub() { return *stub_; }

 private:
  const Args& args_;
  std::unique_ptr<admin::v1::Registry::Stub> stub_;
};

// The descriptor set of `service` from the one source the arguments name
// (--descriptor-set, --proto or --from-reflection).
int ReadDescriptorSet(const Args& args, const std::string& service, std::string* out) {
  const int sources = !args.descriptor_set_file.empty() + !args.protos.empty() +
                      !args.from_reflection.empty();
  if (sources != 1) {
    return UsageError(
        "give one of --descriptor-set=FILE.pb, --proto=FILE.proto, --from-reflection=HOST:PORT");
  }
  if (!args.descriptor_set_file.empty()) {
    absl::StatusOr<std::string> bytes = ReadFileToString(args.descriptor_set_file);
    if (!bytes.ok()) {
      std::cerr << "gatewayctl: " << bytes.status().message() << "\n";
      return kUsageError;
    }
    *out = *std::move(bytes);
    return kOk;
  }
  if (!args.from_reflection.empty()) return FetchByReflection(args, service, out);
  return CompileProtos(args, out);
}

// Fills `args` from the service file `args->service_file` (see kUsage). Returns kOk, or
// kUsageError after printing what is wrong (naming the file and the key).
int LoadServiceFile(Args* args) {
  const std::string& path = args->service_file;
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return UsageError(absl::StrCat("-f: ", text.status().message()));
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  auto resolve = [&dir](const std::string& p) {
    return p.empty() || p[0] == '/' || dir.empty() ? p : (dir / p).string();
  };
  auto bad = [&path](absl::string_view key, absl::string_view what) {
    return UsageError(absl::StrCat(path, ": ", key, ": ", what));
  };
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return UsageError(absl::StrCat(path, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  if (!root.IsMap()) return bad("(top level)", "expected a map (service, owner, backend, ...)");
  if (!args->positional.empty()) {
    return UsageError("-f names the service in the file; give no SERVICE argument");
  }
  // The service's own settings, in the gateway config's schema: read by the config's own
  // parser, as the `backends` entry of a config.
  YAML::Node settings(YAML::NodeType::Map);
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& value = kv.second;
      if (key == "backend" && value.IsMap()) {
        settings["backends"].push_back(value);
      } else if (key == "deadlines" || key == "retries" || key == "auth" || key == "quotas") {
        settings[key] = value;
      } else if (key == "service" || key == "owner" || key == "backend" ||
                 key == "descriptor_set") {
        if (!value.IsScalar()) {
          return bad(key, key == "backend" ? "expected the name of a backend of the gateway "
                                             "config, or a map defining the service's own "
                                             "backend (target, tls, load_balancing, ...)"
                                           : "expected a string");
        }
        const std::string v = value.as<std::string>();
        if (key == "service") args->positional.push_back(v);
        if (key == "owner" && args->owner.empty()) args->owner = v;
        if (key == "backend" && args->backend.empty()) args->backend = v;
        if (key == "descriptor_set") args->descriptor_set_file = resolve(v);
      } else if (key == "protos" || key == "proto_paths") {
        if (!value.IsSequence()) return bad(key, "expected a list of paths");
        for (const YAML::Node& item : value) {
          if (!item.IsScalar()) return bad(key, "expected a list of paths");
          (key == "protos" ? args->protos : args->proto_paths)
              .push_back(resolve(item.as<std::string>()));
        }
      } else if (key == "force") {
        if (!value.IsScalar()) return bad(key, "expected true or false");
        args->force = args->force || value.as<bool>();
      } else {
        return bad(key,
                   "unknown key (known: service, owner, backend, descriptor_set, protos, "
                   "proto_paths, deadlines, retries, auth, quotas, force)");
      }
    }
  } catch (const YAML::Exception& e) {
    return UsageError(absl::StrCat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (args->positional.empty()) return bad("service", "required");
  if (settings.size() > 0) {
    YAML::Emitter out;
    out << YAML::Flow << settings;
    absl::StatusOr<config::v1::Config> parsed = ParseConfigText(out.c_str(), path);
    if (!parsed.ok()) {
      // The config's key names the service file's: "backends[0].target" is "backend.target".
      std::string message(parsed.status().message());
      for (std::size_t at = message.find("backends[0]"); at != std::string::npos;
           at = message.find("backends[0]", at)) {
        message.replace(at, std::strlen("backends[0]"), "backend");
      }
      return UsageError(message);
    }
    if (parsed->backends_size() > 0) args->backend_config = parsed->backends(0);
    args->deadlines = parsed->deadlines();
    args->retries = parsed->retries();
    args->auth = parsed->auth();
    args->quotas = parsed->quotas();
  }
  if (!args->protos.empty() && args->proto_paths.empty()) {
    args->proto_paths.push_back(dir.empty() ? "." : dir.string());
  }
  return kOk;
}

int Register(const Args& args, Client& client, bool dry_run) {
  if (args.positional.size() != 1) return UsageError("register needs one SERVICE");
  if (args.backend.empty() && !args.backend_config.has_value()) {
    return UsageError("--backend=NAME is required");
  }
  admin::v1::RegisterRequest request;
  request.set_service(args.positional[0]);
  request.set_backend(args.backend);
  if (args.backend_config.has_value()) *request.mutable_backend_config() = *args.backend_config;
  *request.mutable_deadlines() = args.deadlines;
  *request.mutable_retries() = args.retries;
  *request.mutable_auth() = args.auth;
  *request.mutable_quotas() = args.quotas;
  request.set_owner(args.owner);
  request.set_force(args.force);
  request.set_dry_run(dry_run);
  std::string bytes;
  if (int rc = ReadDescriptorSet(args, args.positional[0], &bytes); rc != kOk) return rc;
  request.set_descriptor_set(std::move(bytes));
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::RegisterResponse response;
  grpc::Status status = client.stub().Register(&context, request, &response);
  if (!status.ok()) return Fail(dry_run ? "diff refused" : "register refused", status);
  PrintVersionLine(response, dry_run ? "become" : "registered");
  const int breaking = response.changes().breaking_changes_size();
  if (dry_run && breaking > 0 && !args.force) {
    std::cerr << "gatewayctl: " << breaking << " breaking change" << (breaking == 1 ? "" : "s")
              << ": registering this needs --force (exit code " << kBreaking << ")\n";
    return kBreaking;
  }
  return kOk;
}

int List(Client& client) {
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::ListServicesResponse response;
  grpc::Status status =
      client.stub().ListServices(&context, admin::v1::ListServicesRequest(), &response);
  if (!status.ok()) return Fail("list failed", status);
  if (response.services_size() == 0) {
    std::cout << "no registered services\n";
    return kOk;
  }
  std::printf("%-40s %7s %-16s %-16s %7s %6s  %s\n", "SERVICE", "VERSION", "OWNER", "BACKEND",
              "METHODS", "ROUTES", "REGISTERED");
  for (const admin::v1::ServiceVersion& v : response.services()) {
    std::printf("%-40s %7lld %-16s %-16s %7d %6d  %s\n", v.service().c_str(),
                static_cast<long long>(v.version()), v.owner().c_str(), v.backend().c_str(),
                v.method_count(), v.route_count(),
                TimeText(v.registered_at_unix_seconds()).c_str());
  }
  return kOk;
}

int Reload(Client& client) {
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::ReloadResponse response;
  grpc::Status status = client.stub().Reload(&context, admin::v1::ReloadRequest(), &response);
  if (!status.ok()) return Fail("reload failed", status);
  std::cout << response.summary() << "\n";
  for (const std::string& p : response.problems()) std::cout << "problem: " << p << "\n";
  return kOk;
}

int Config(Client& client) {
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::GetConfigResponse response;
  grpc::Status status =
      client.stub().GetConfig(&context, admin::v1::GetConfigRequest(), &response);
  if (!status.ok()) return Fail("config failed", status);
  std::cout << "# " << response.config_path() << ", loaded "
            << TimeText(response.loaded_at_unix_seconds()) << "\n"
            << response.config_json() << "\n";
  return kOk;
}

int Show(const Args& args, Client& client) {
  if (args.positional.size() != 1) return UsageError("show needs one SERVICE");
  if (args.versions) {
    grpc::ClientContext context;
    client.Prepare(&context);
    admin::v1::ListVersionsRequest request;
    request.set_service(args.positional[0]);
    admin::v1::ListVersionsResponse response;
    grpc::Status status = client.stub().ListVersions(&context, request, &response);
    if (!status.ok()) return Fail("show failed", status);
    for (const admin::v1::ServiceVersion& v : response.versions()) {
      std::cout << "v" << v.version() << "  " << TimeText(v.registered_at_unix_seconds())
                << "  owner " << v.owner() << "  backend " << v.backend()
                << (v.removed() ? "  (removed)" : "")
                << (v.changed_by().empty() ? "" : "  by " + v.changed_by()) << "\n";
    }
    return kOk;
  }
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::GetServiceRequest request;
  request.set_service(args.positional[0]);
  admin::v1::ServiceVersion v;
  grpc::Status status = client.stub().GetService(&context, request, &v);
  if (!status.ok()) return Fail("show failed", status);
  std::cout << "service:    " << v.service() << "\n"
            << "version:    " << v.version() << "\n"
            << "owner:      " << v.owner() << "\n"
            << "backend:    " << v.backend()
            << (v.has_backend_config()
                    ? absl::StrCat(" (its own: ", v.backend_config().ShortDebugString(), ")")
                    : "")
            << "\n";
  if (v.has_deadlines()) std::cout << "deadlines:  " << v.deadlines().ShortDebugString() << "\n";
  if (v.has_retries()) std::cout << "retries:    " << v.retries().ShortDebugString() << "\n";
  if (v.has_auth()) std::cout << "auth:       " << v.auth().ShortDebugString() << "\n";
  if (v.has_quotas()) std::cout << "quotas:     " << v.quotas().ShortDebugString() << "\n";
  std::cout << "methods:    " << v.method_count() << "\n"
            << "routes:     " << v.route_count() << "\n"
            << "registered: " << TimeText(v.registered_at_unix_seconds()) << "\n";
  return kOk;
}

int Remove(const Args& args, Client& client) {
  if (args.positional.size() != 1) return UsageError("remove needs one SERVICE");
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::RemoveServiceRequest request;
  request.set_service(args.positional[0]);
  request.set_owner(args.owner);
  request.set_dry_run(args.dry_run);
  admin::v1::RemoveServiceResponse response;
  grpc::Status status = client.stub().RemoveService(&context, request, &response);
  if (!status.ok()) return Fail("remove refused", status);
  if (response.dry_run()) {
    std::cout << "dry run (the gateway was not changed): " << request.service()
              << " would be removed\n";
  } else {
    std::cout << request.service() << ": removed (recorded as v" << response.version().version()
              << ")\n";
  }
  PrintChanges(response.changes());
  return kOk;
}

int Rollback(const Args& args, Client& client) {
  if (args.positional.size() != 1) return UsageError("rollback needs one SERVICE");
  grpc::ClientContext context;
  client.Prepare(&context);
  admin::v1::RollbackRequest request;
  request.set_service(args.positional[0]);
  request.set_owner(args.owner);
  request.set_to_version(args.to_version);
  request.set_dry_run(args.dry_run);
  admin::v1::RegisterResponse response;
  grpc::Status status = client.stub().Rollback(&context, request, &response);
  if (!status.ok()) return Fail("rollback refused", status);
  PrintVersionLine(response, response.dry_run() ? "become" : "rolled back as");
  return kOk;
}

// Prints the OpenAPI document the gateway serves for SERVICE, from local descriptors
// (offline); --config takes the JSON naming, stream format and auth rules from a gateway
// config.
int OpenApi(const Args& args) {
  if (args.positional.size() != 1) return UsageError("openapi needs one SERVICE");
  openapi::OpenApiSettings settings;
  if (!args.config_file.empty()) {
    absl::StatusOr<config::v1::Config> config = LoadConfigFile(args.config_file);
    if (!config.ok()) {
      std::cerr << "gatewayctl: --config: " << config.status().message() << "\n";
      return kUsageError;
    }
    absl::StatusOr<openapi::OpenApiSettings> s = openapi::OpenApiSettingsFromConfig(*config);
    if (!s.ok()) {
      std::cerr << "gatewayctl: --config: " << s.status().message() << "\n";
      return kUsageError;
    }
    settings = *std::move(s);
  }
  std::string bytes;
  if (int rc = ReadDescriptorSet(args, args.positional[0], &bytes); rc != kOk) return rc;
  absl::StatusOr<std::string> doc =
      openapi::OpenApiFromDescriptorSet(bytes, args.positional[0], settings);
  if (!doc.ok()) {
    std::cerr << "gatewayctl: openapi: " << doc.status().message() << "\n";
    return kUsageError;
  }
  std::cout << *doc;
  return kOk;
}

int Run(int argc, char** argv) {
  Args args;
  if (const char* admin = std::getenv("GATEWAYCTL_ADMIN")) args.admin = admin;
  if (const char* token = std::getenv("GATEWAYCTL_TOKEN")) args.token = token;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    auto value = [&](absl::string_view name, std::string* out) {
      if (absl::ConsumePrefix(&arg, name)) {
        *out = std::string(arg);
        return true;
      }
      return false;
    };
    std::string v;
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return kOk;
    } else if (value("--admin=", &args.admin)) {
    } else if (value("--token-file=", &v)) {
      absl::StatusOr<std::string> token = ReadFileToString(v);
      if (!token.ok()) {
        std::cerr << "gatewayctl: --token-file: " << token.status().message() << "\n";
        return kUsageError;
      }
      args.token = std::string(absl::StripAsciiWhitespace(*token));
    } else if (value("--timeout=", &v)) {
      if (!absl::SimpleAtoi(v, &args.timeout_seconds) || args.timeout_seconds <= 0) {
        return UsageError("--timeout: a positive number of seconds");
      }
    } else if (value("--backend=", &args.backend) || value("--owner=", &args.owner) ||
               value("--descriptor-set=", &args.descriptor_set_file) ||
               value("--descriptor_set=", &args.descriptor_set_file) ||
               value("--config=", &args.config_file) ||
               value("--file=", &args.service_file) ||
               value("--from-reflection=", &args.from_reflection)) {
    } else if (value("--proto=", &v)) {
      args.protos.push_back(v);
    } else if (value("--proto-path=", &v)) {
      args.proto_paths.push_back(v);
    } else if (value("--to=", &v)) {
      if (!absl::SimpleAtoi(v, &args.to_version) || args.to_version <= 0) {
        return UsageError("--to: a version number (1, 2, ...)");
      }
    } else if (arg == "-f") {
      if (i + 1 >= argc) return UsageError("-f needs a FILE");
      args.service_file = argv[++i];
    } else if (arg == "--force") {
      args.force = true;
    } else if (arg == "--dry-run") {
      args.dry_run = true;
    } else if (arg == "--versions") {
      args.versions = true;
    } else if (absl::StartsWith(arg, "-")) {
      return UsageError(absl::StrCat("unknown option ", arg));
    } else if (args.command.empty()) {
      args.command = std::string(arg);
    } else {
      args.positional.push_back(std::string(arg));
    }
  }
  if (args.command.empty()) return UsageError("a COMMAND is required");
  if (args.command == "apply" && args.service_file.empty()) {
    return UsageError("apply needs -f SERVICE.yaml");
  }
  if (!args.service_file.empty()) {
    if (args.command != "apply" && args.command != "diff") {
      return UsageError("-f is for apply and diff");
    }
    if (int rc = LoadServiceFile(&args); rc != kOk) return rc;
  }
  if (args.command == "openapi") return OpenApi(args);
  Client client(args);
  if (args.command == "register") return Register(args, client, args.dry_run);
  if (args.command == "diff") return Register(args, client, /*dry_run=*/true);
  if (args.command == "apply") return Register(args, client, args.dry_run);
  if (args.command == "list") return List(client);
  if (args.command == "show") return Show(args, client);
  if (args.command == "remove") return Remove(args, client);
  if (args.command == "rollback") return Rollback(args, client);
  if (args.command == "reload") return Reload(client);
  if (args.command == "config") return Config(client);
  return UsageError(absl::StrCat("unknown command \"", args.command, "\""));
}

}  // namespace
}  // namespace gateway::ctl

int main(int argc, char** argv) { return gateway::ctl::Run(argc, argv); }
