#include "gateway/interceptors/auth_interceptor.h"

#include <pthread.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "auth/api_keys.h"
#include "auth/jwa.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/jwt_requirement.h"
#include "gateway/config/config_loader.h"
#include "gateway/interceptors/deadline_interceptor.h"
#include "gateway/log.h"
#include "gateway/metadata/metadata_policy.h"
#include "gateway/interceptors/https_fetch.h"
#include "gateway/interceptors/selector.h"
#include "gateway/upstream.h"
#include "transcoder/percent_encoding.h"

namespace gateway {
namespace {

constexpr absl::Duration kDefaultRefresh = absl::Minutes(5);
constexpr absl::Duration kDefaultMinRefresh = absl::Seconds(30);
constexpr absl::Duration kFetchTimeout = absl::Seconds(5);
constexpr char kApiKey[] = "api_key";


// Where one credential is read from.
struct Source {
  std::string header;  // lower case; empty for a query parameter
  bool bearer = false;  // "authorization": "Bearer <token>"
  std::string query_parameter;

  std::string Describe() const {
    if (!query_parameter.empty()) return absl::StrCat("query parameter ", query_parameter);
    return bearer ? "Authorization: Bearer" : absl::StrCat("header ", header);
  }
};

absl::StatusOr<std::vector<Source>> CompileSources(
    const google::protobuf::RepeatedPtrField<config::v1::CredentialSource>& from,
    const std::string& key, Source default_source) {
  std::vector<Source> sources;
  for (int i = 0; i < from.size(); ++i) {
    Source s;
    if (!from[i].header().empty()) {
      s.header = absl::AsciiStrToLower(from[i].header());
      s.bearer = s.header == "authorization";
    } else if (!from[i].query_parameter().empty()) {
      s.query_parameter = from[i].query_parameter();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(key, "[", i, "]: set header or query_parameter"));
    }
    sources.push_back(std::move(s));
  }
  if (sources.empty()) sources.push_back(std::move(default_source));
  return sources;
}

// The first credential found in `sources`; empty when none. A malformed bearer header
// counts as presented (its error is reported).
absl::StatusOr<std::string> Extract(const std::vector<Source>& sources, const CallContext& ctx) {
  for (const Source& s : sources) {
    if (!s.query_parameter.empty()) {
      std::string value = QueryParameter(ctx.query, s.query_parameter);
      if (!value.empty()) return value;
      continue;
    }
    absl::string_view value = ctx.Metadata(s.header);
    if (value.empty()) continue;
    if (!s.bearer) return std::string(value);
    absl::StatusOr<absl::string_view> token = auth::ExtractBearerToken(value);
    if (!token.ok()) return token.status();
    return std::string(*token);
  }
  return std::string();
}

// How many times query parameter `name` appears in a raw query string.
int CountQueryParameter(absl::string_view query, absl::string_view name) {
  int n = 0;
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (pair.substr(0, pair.find('=')) == name) ++n;
  }
  return n;
}

}  // namespace

std::string QueryParameter(absl::string_view query, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    if (eq == absl::string_view::npos) return "";
    return transcoder::PercentDecode(pair.substr(eq + 1),
                                     transcoder::PercentDecodeMode::kQueryPlusAsSpace);
  }
  return "";
}

class AuthInterceptor::Impl {
 public:
  struct Provider {
    std::string name;
    std::shared_ptr<auth::KeySetHolder> keys;
    std::shared_ptr<const auth::JwtVerifier> verifier;
    std::vector<Source> sources;
    std::string jwks_file;  // resolved path
    std::string jwks_uri;
    std::string ca_file;
    absl::Duration refresh_interval;
    absl::Duration min_refresh_interval;
    std::string forward_header;  // lower case

    // Reload bookkeeping, guarded by Impl::mu_.
    absl::Time next_refresh;
    absl::Time last_attempt = absl::InfinitePast();
    bool refresh_requested = false;
    std::vector<std::function<void()>> waiters;
  };

  struct Credential {
    const Provider* provider = nullptr;  // nullptr: API key
  };

  struct Rule {
    bool open = false;
    std::vector<Credential> credentials;
    std::shared_ptr<const auth::JwtRequirement> requirement;  // null: none
    absl::flat_hash_set<std::string> identities;
    std::vector<std::string> identity_prefixes;
    std::string expected;  // "a bearer token (provider x) or an API key (header y)"
  };

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (refresher_.joinable()) refresher_.join();
  }

  absl::Status Compile(const config::v1::Auth& config, const std::string& base_dir,
                       const google::protobuf::DescriptorPool& pool,
                       const std::vector<std::string>& services, SelectorCheck check);
  // The rules of `config` only, over the providers and API keys of `base` (null: none).
  absl::Status CompileAdditional(std::shared_ptr<const AuthInterceptor> base,
                                 const config::v1::Auth& config,
                                 const google::protobuf::DescriptorPool& pool,
                                 const std::vector<std::string>& services);

  const void* Resolve(const google::protobuf::MethodDescriptor& method) const {
    return by_method_.Find(&method);
  }
  Result Intercept(CallContext* ctx, absl::Status* status) const;

  std::vector<std::string> ForwardHeaders() const {
    std::vector<std::string> names;
    for (const auto& p : providers_) {
      if (!p->forward_header.empty()) names.push_back(p->forward_header);
    }
    return names;
  }

 private:
  // Outcome of a verified token for `rule` (requirements, caller id, forwarding).
  absl::Status Accept(const Rule& rule, const Provider& provider, const auth::VerifiedJwt& jwt,
                      CallContext* ctx) const;
  absl::Status Unauthenticated(CallContext* ctx, absl::string_view error,
                               std::string message) const;
  // Loads `p`'s keys now (on the refresher thread, or at start). Returns the error.
  absl::Status Reload(Provider& p);
  // Asks for a reload of `p` because of an unknown key id and runs `then` once it is done.
  // False (and `then` is not kept) when a reload happened too recently.
  bool RequestReload(const Provider& p, std::function<void()> then) const;
  void RefreshLoop();
  bool RefreshDue() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Compiles `config.rules` against known_providers_ and the API keys.
  absl::Status CompileRules(const config::v1::Auth& config,
                            const google::protobuf::DescriptorPool& pool,
                            const std::vector<std::string>& services, SelectorCheck check);

  // The headers and query parameters any credential is read from (lower case / as
  // configured; Authorization always), each once: a call that sends one of them twice is
  // refused.
  void NoteCredentialSources(const std::vector<Source>& sources);
  // INVALID_ARGUMENT (with a challenge) when the call carries a credential header or query
  // parameter more than once: which one counts would be a guess.
  absl::Status CheckUnambiguous(CallContext* ctx) const;

  std::vector<std::unique_ptr<Provider>> providers_;
  std::shared_ptr<const auth::ApiKeySet> api_keys_;
  std::vector<Source> api_key_sources_;
  std::vector<std::string> credential_headers_;
  std::vector<std::string> credential_parameters_;
  std::vector<std::unique_ptr<Rule>> rules_;
  SelectorMap<Rule> by_method_;
  bool has_rules_ = false;
  // The providers rules may name: providers_, or those of `base_`.
  std::vector<const Provider*> known_providers_;
  // Additional rules (CreateAdditional): the interceptor whose providers and keys they use
  // (kept alive; it reloads the keys), and a method without a rule goes on.
  std::shared_ptr<const AuthInterceptor> base_;
  const Impl* keys_owner_ = this;
  bool additive_ = false;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread refresher_;
};

absl::Status AuthInterceptor::Impl::Compile(const config::v1::Auth& config,
                                            const std::string& base_dir,
                                            const google::protobuf::DescriptorPool& pool,
                                            const std::vector<std::string>& services,
                                            SelectorCheck check) {
  // Authorization is a credential whatever reads it (a provider, or the backend itself).
  credential_headers_.push_back("authorization");
  absl::flat_hash_map<std::string, const Provider*> by_name;
  for (int i = 0; i < config.jwt_providers_size(); ++i) {
    const config::v1::JwtProvider& c = config.jwt_providers(i);
    const std::string key = absl::StrCat("auth.jwt_providers[", i, "]");
    if (c.name().empty()) return absl::InvalidArgumentError(absl::StrCat(key, ".name: required"));
    if (c.name() == kApiKey) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".name: \"api_key\" is reserved for API keys"));
    }
    if (by_name.contains(c.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".name: \"", c.name(), "\" is used by another provider"));
    }
    if (c.jwks_file().empty() == c.jwks_uri().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": set exactly one of jwks_file and jwks_uri"));
    }
    auto p = std::make_unique<Provider>();
    p->name = c.name();
    p->keys = std::make_shared<auth::KeySetHolder>();
    auth::JwtProviderConfig jwt;
    jwt.issuer = c.issuer();
    jwt.audiences.assign(c.audiences().begin(), c.audiences().end());
    jwt.allowed_algorithms.assign(c.algorithms().begin(), c.algorithms().end());
    if (c.has_clock_skew()) jwt.clock_skew = ToDuration(c.clock_skew());
    if (!c.caller_id_claim().empty()) jwt.caller_id_claim = c.caller_id_claim();
    if (c.cache_entries() != 0) jwt.cache_entries = c.cache_entries();
    absl::StatusOr<std::shared_ptr<const auth::JwtVerifier>> verifier =
        auth::JwtVerifier::Create(jwt, p->keys);
    if (!verifier.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", verifier.status().message()));
    }
    p->verifier = *std::move(verifier);
    Source bearer;
    bearer.header = "authorization";
    bearer.bearer = true;
    absl::StatusOr<std::vector<Source>> sources =
        CompileSources(c.from(), absl::StrCat(key, ".from"), bearer);
    if (!sources.ok()) return sources.status();
    p->sources = *std::move(sources);
    NoteCredentialSources(p->sources);
    p->refresh_interval =
        c.has_jwks_refresh_interval() ? ToDuration(c.jwks_refresh_interval()) : kDefaultRefresh;
    p->min_refresh_interval = c.has_jwks_min_refresh_interval()
                                  ? ToDuration(c.jwks_min_refresh_interval())
                                  : kDefaultMinRefresh;
    if (p->refresh_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ".jwks_refresh_interval: must be positive"));
    }
    p->forward_header = absl::AsciiStrToLower(c.forward_payload_header());
    if (!p->forward_header.empty()) {
      absl::Status name = metadata::MetadataPolicy::Create({p->forward_header}).status();
      if (!name.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ".forward_payload_header: ", name.message()));
      }
    }
    if (!c.jwks_file().empty()) {
      p->jwks_file = ResolvePath(base_dir, c.jwks_file());
      absl::Status loaded = Reload(*p);
      if (!loaded.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(key, ".jwks_file: ", loaded.message()));
      }
    } else {
      absl::StatusOr<HttpsUrl> url = ParseHttpsUrl(c.jwks_uri());
      if (!url.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(key, ".jwks_uri: ", url.status().message()));
      }
      p->jwks_uri = c.jwks_uri();
      if (!c.jwks_ca_file().empty()) p->ca_file = ResolvePath(base_dir, c.jwks_ca_file());
      absl::Status loaded = Reload(*p);
      if (!loaded.ok()) {
        LogWarn(absl::StrCat("jwt provider ", p->name, ": cannot load keys (", loaded.message(),
                         "); retrying in the background"));
        p->next_refresh = absl::Now() + p->min_refresh_interval;
      }
    }
    by_name[p->name] = p.get();
    providers_.push_back(std::move(p));
  }

  if (config.has_api_keys()) {
    const config::v1::ApiKeys& k = config.api_keys();
    if (k.keys_file().empty()) {
      return absl::InvalidArgumentError("auth.api_keys.keys_file: required");
    }
    absl::StatusOr<std::string> text = ReadFileToString(ResolvePath(base_dir, k.keys_file()));
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth.api_keys.keys_file: ", text.status().message()));
    }
    absl::StatusOr<std::shared_ptr<const auth::ApiKeySet>> keys = auth::ApiKeySet::Parse(*text);
    if (!keys.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth.api_keys.keys_file: ", k.keys_file(), ": ", keys.status().message()));
    }
    api_keys_ = *std::move(keys);
    Source header;
    header.header = "x-api-key";
    absl::StatusOr<std::vector<Source>> sources =
        CompileSources(k.from(), "auth.api_keys.from", header);
    if (!sources.ok()) return sources.status();
    api_key_sources_ = *std::move(sources);
    NoteCredentialSources(api_key_sources_);
  }

  for (const auto& p : providers_) known_providers_.push_back(p.get());
  if (absl::Status rules = CompileRules(config, pool, services, check); !rules.ok()) {
    return rules;
  }

  for (auto& p : providers_) {
    if (p->next_refresh == absl::Time()) p->next_refresh = absl::Now() + p->refresh_interval;
  }
  if (!providers_.empty()) refresher_ = std::thread([this] { RefreshLoop(); });
  return absl::OkStatus();
}

absl::Status AuthInterceptor::Impl::CompileRules(const config::v1::Auth& config,
                                                 const google::protobuf::DescriptorPool& pool,
                                                 const std::vector<std::string>& services,
                                                 SelectorCheck check) {
  SelectorMap<Rule>::Builder builder;
  for (int i = 0; i < config.rules_size(); ++i) {
    const config::v1::AuthRule& c = config.rules(i);
    const std::string key = absl::StrCat("auth.rules[", i, "]");
    if (c.selectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ".selectors: at least one"));
    }
    auto rule = std::make_unique<Rule>();
    rule->open = c.allow_unauthenticated();
    const bool requires_jwt = !c.required_scopes().empty() || !c.required_claims().empty();
    if (rule->open && (!c.providers().empty() || requires_jwt || !c.identities().empty())) {
      return absl::InvalidArgumentError(absl::StrCat(
          key, ": allow_unauthenticated excludes providers, requirements and identities"));
    }
    if (additive_ && rule->open) {
      return absl::InvalidArgumentError(absl::StrCat(
          key, ".allow_unauthenticated: these rules only add requirements (whether a method "
          "is open is decided by the gateway config's auth rules)"));
    }
    if (!rule->open && c.providers().empty() && c.identities().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          key, ": name the accepted providers or identities, or set allow_unauthenticated"));
    }
    std::vector<std::string> expected;
    for (int j = 0; j < c.providers_size(); ++j) {
      const std::string& name = c.providers(j);
      if (name == kApiKey) {
        if (api_keys_ == nullptr) {
          return absl::InvalidArgumentError(absl::StrCat(
              key, ".providers[", j, "]: \"api_key\" needs auth.api_keys.keys_file"));
        }
        if (requires_jwt) {
          return absl::InvalidArgumentError(absl::StrCat(
              key, ".providers[", j,
              "]: API keys carry no scopes or claims; this rule requires some"));
        }
        rule->credentials.push_back({nullptr});
        expected.push_back(absl::StrCat("an API key (", api_key_sources_[0].Describe(), ")"));
        continue;
      }
      const Provider* provider = nullptr;
      for (const Provider* p : known_providers_) {
        if (p->name == name) provider = p;
      }
      if (provider == nullptr) {
        std::vector<std::string> known;
        for (const Provider* p : known_providers_) known.push_back(p->name);
        if (api_keys_ != nullptr) known.push_back(kApiKey);
        return absl::InvalidArgumentError(absl::StrCat(
            key, ".providers[", j, "]: unknown provider \"", name, "\" (known: ",
            known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
      }
      rule->credentials.push_back({provider});
      expected.push_back(absl::StrCat("a bearer token of ", name, " (",
                                      provider->sources[0].Describe(), ")"));
    }
    rule->expected = absl::StrJoin(expected, " or ");
    if (requires_jwt) {
      auth::JwtRequirementConfig req;
      req.scopes.assign(c.required_scopes().begin(), c.required_scopes().end());
      for (const auto& claim : c.required_claims()) req.claims.push_back({claim.name(), claim.value()});
      absl::StatusOr<std::shared_ptr<const auth::JwtRequirement>> requirement =
          auth::JwtRequirement::Create(req);
      if (!requirement.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(key, ": ", requirement.status().message()));
      }
      rule->requirement = *std::move(requirement);
    }
    for (const std::string& id : c.identities()) {
      if (absl::EndsWith(id, "*")) {
        rule->identity_prefixes.push_back(id.substr(0, id.size() - 1));
      } else {
        rule->identities.insert(id);
      }
    }
    for (int s = 0; s < c.selectors_size(); ++s) {
      absl::Status added =
          builder.Add(c.selectors(s), rule.get(), absl::StrCat(key, ".selectors[", s, "]"));
      if (!added.ok()) return added;
    }
    rules_.push_back(std::move(rule));
  }
  has_rules_ = !rules_.empty();
  absl::StatusOr<SelectorMap<Rule>> map = std::move(builder).Build(pool, services, check);
  if (!map.ok()) return map.status();
  by_method_ = *std::move(map);
  return absl::OkStatus();
}

absl::Status AuthInterceptor::Impl::CompileAdditional(
    std::shared_ptr<const AuthInterceptor> base, const config::v1::Auth& config,
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services) {
  additive_ = true;
  if (config.jwt_providers_size() > 0) {
    return absl::InvalidArgumentError(
        "auth.jwt_providers: set in the gateway config only (these rules name its providers)");
  }
  if (config.has_api_keys()) {
    return absl::InvalidArgumentError(
        "auth.api_keys: set in the gateway config only (these rules name \"api_key\")");
  }
  if (base != nullptr) {
    const Impl& owner = *base->impl_;
    keys_owner_ = &owner;
    known_providers_ = owner.known_providers_;
    api_keys_ = owner.api_keys_;
    api_key_sources_ = owner.api_key_sources_;
    credential_headers_ = owner.credential_headers_;
    credential_parameters_ = owner.credential_parameters_;
  } else {
    credential_headers_.push_back("authorization");
  }
  base_ = std::move(base);
  return CompileRules(config, pool, services, SelectorCheck::kStrict);
}

absl::Status AuthInterceptor::Impl::Reload(Provider& p) {
  absl::StatusOr<std::string> document =
      p.jwks_file.empty() ? HttpsGet(p.jwks_uri, p.ca_file, kFetchTimeout)
                          : ReadFileToString(p.jwks_file);
  if (!document.ok()) return document.status();
  const uint64_t generation = p.keys->generation();
  if (absl::Status replaced = p.keys->Replace(*document); !replaced.ok()) return replaced;
  if (p.keys->generation() != generation) {
    // Keys the gateway cannot use are left out of the set; say so once per new document.
    for (const std::string& skipped : p.keys->Current().keys->skipped()) {
      LogWarn(absl::StrCat("jwt provider ", p.name, ": JWKS key skipped, not used: ", skipped));
    }
    // A new key set (a first load, or a document that changed), once per change.
    LogInfo(absl::StrCat("jwt provider ", p.name, ": JWKS keys loaded (generation ",
                         p.keys->generation(), ")"));
  }
  return absl::OkStatus();
}

bool AuthInterceptor::Impl::RefreshDue() const {
  if (stopping_) return true;
  const absl::Time now = absl::Now();
  for (const auto& p : providers_) {
    if (p->refresh_requested || now >= p->next_refresh) return true;
  }
  return false;
}

void AuthInterceptor::Impl::RefreshLoop() {
  pthread_setname_np(pthread_self(), "gw-jwks");
  while (true) {
    Provider* due = nullptr;
    std::vector<std::function<void()>> waiters;
    {
      absl::MutexLock lock(&mu_);
      absl::Time wake = absl::InfiniteFuture();
      for (const auto& p : providers_) wake = std::min(wake, p->next_refresh);
      mu_.AwaitWithDeadline(absl::Condition(this, &Impl::RefreshDue), wake);
      if (stopping_) break;
      const absl::Time now = absl::Now();
      for (const auto& p : providers_) {
        if (p->refresh_requested || now >= p->next_refresh) {
          due = p.get();
          break;
        }
      }
      if (due == nullptr) continue;
      due->refresh_requested = false;
      due->last_attempt = now;
      due->next_refresh = now + due->refresh_interval;
      waiters.swap(due->waiters);
    }
    const absl::Status status = Reload(*due);
    if (!status.ok()) {
      LogWarn(absl::StrCat("jwt provider ", due->name, ": key reload failed (", status.message(),
                       "); keeping the last good keys"));
      absl::MutexLock lock(&mu_);
      due->next_refresh = std::min(due->next_refresh, absl::Now() + due->min_refresh_interval);
    }
    for (auto& waiter : waiters) waiter();
  }
  // Calls still waiting for a reload go on with the keys there are.
  std::vector<std::function<void()>> left;
  {
    absl::MutexLock lock(&mu_);
    for (auto& p : providers_) {
      for (auto& w : p->waiters) left.push_back(std::move(w));
      p->waiters.clear();
    }
  }
  for (auto& w : left) w();
}

bool AuthInterceptor::Impl::RequestReload(const Provider& p, std::function<void()> then) const {
  absl::MutexLock lock(&mu_);
  Provider& mutable_p = const_cast<Provider&>(p);
  if (stopping_) return false;
  if (!mutable_p.refresh_requested &&
      absl::Now() - mutable_p.last_attempt < mutable_p.min_refresh_interval) {
    return false;
  }
  mutable_p.refresh_requested = true;
  mutable_p.waiters.push_back(std::move(then));
  return true;
}

absl::Status AuthInterceptor::Impl::Unauthenticated(CallContext* ctx, absl::string_view error,
                                                    std::string message) const {
  std::string challenge = "Bearer realm=\"gateway\"";
  if (!error.empty()) {
    // The message may quote token contents (an issuer, a key id): keep the header value
    // valid metadata (printable ASCII) and a valid quoted string.
    std::string description = message;
    for (char& c : description) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\' || u < 0x20 || u > 0x7e) c = '\'';
    }
    absl::StrAppend(&challenge, ", error=\"", error, "\", error_description=\"", description,
                    "\"");
  }
  ctx->response_headers.emplace_back("www-authenticate", std::move(challenge));
  return absl::UnauthenticatedError(std::move(message));
}

void AuthInterceptor::Impl::NoteCredentialSources(const std::vector<Source>& sources) {
  for (const Source& s : sources) {
    std::vector<std::string>& list = s.header.empty() ? credential_parameters_
                                                       : credential_headers_;
    const std::string& name = s.header.empty() ? s.query_parameter : s.header;
    if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
  }
}

absl::Status AuthInterceptor::Impl::CheckUnambiguous(CallContext* ctx) const {
  std::string problem;
  for (const std::string& header : credential_headers_) {
    int n = 0;
    for (const auto& [key, value] : ctx->request_metadata) {
      if (key == header) ++n;
    }
    if (n > 1) {
      problem = header == "authorization"
                    ? absl::StrCat(n == 2 ? "two" : absl::StrCat(n),
                                   " Authorization headers were sent")
                    : absl::StrCat("header ", header, " was sent ", n, " times");
      break;
    }
  }
  if (problem.empty() && !ctx->query.empty()) {
    for (const std::string& parameter : credential_parameters_) {
      const int n = CountQueryParameter(ctx->query, parameter);
      if (n > 1) {
        problem = absl::StrCat("query parameter ", parameter, " was sent ", n, " times");
        break;
      }
    }
  }
  if (problem.empty()) return absl::OkStatus();
  const std::string message =
      absl::StrCat("ambiguous credentials: ", problem, "; send exactly one credential");
  ctx->response_headers.emplace_back(
      "www-authenticate", absl::StrCat("Bearer realm=\"gateway\", error=\"invalid_request\", "
                                       "error_description=\"", message, "\""));
  return absl::InvalidArgumentError(message);
}

absl::Status AuthInterceptor::Impl::Accept(const Rule& rule, const Provider& provider,
                                           const auth::VerifiedJwt& jwt,
                                           CallContext* ctx) const {
  if (rule.requirement != nullptr) {
    absl::Status allowed = rule.requirement->Check(jwt);
    if (!allowed.ok()) return allowed;
  }
  ctx->caller_id = jwt.caller_id.empty() ? jwt.subject : jwt.caller_id;
  if (!provider.forward_header.empty()) {
    // Set, not add: the client's copy of the header (removed by the metadata policy as
    // well) never goes along with the verified one.
    ctx->backend_metadata.Set(provider.forward_header, jwt.payload_base64url);
  }
  return absl::OkStatus();
}

Interceptor::Result AuthInterceptor::Impl::Intercept(CallContext* ctx,
                                                     absl::Status* status) const {
  if (!has_rules_) return Result::kContinue;
  // Additional rules leave the methods they do not name to the gateway's rules.
  if (additive_ && ctx->rule() == nullptr) return Result::kContinue;
  // Before any rule, open ones included: the backend may read the credential as well.
  if (absl::Status unambiguous = CheckUnambiguous(ctx); !unambiguous.ok()) {
    *status = std::move(unambiguous);
    return Result::kReject;
  }
  const Rule* rule = static_cast<const Rule*>(ctx->rule());
  if (rule == nullptr) {
    *status = absl::PermissionDeniedError(
        absl::StrCat("no auth rule allows ", ctx->path, " (methods without a rule are closed)"));
    return Result::kReject;
  }
  if (rule->open) return Result::kContinue;

  if (!rule->identities.empty() || !rule->identity_prefixes.empty()) {
    if (ctx->peer_identity.empty()) {
      *status = absl::UnauthenticatedError(
          absl::StrCat(ctx->path, " requires a client certificate (mutual TLS)"));
      return Result::kReject;
    }
    bool allowed = rule->identities.contains(ctx->peer_identity);
    for (const std::string& prefix : rule->identity_prefixes) {
      if (absl::StartsWith(ctx->peer_identity, prefix)) allowed = true;
    }
    if (!allowed) {
      *status = absl::PermissionDeniedError(absl::StrCat(
          "client identity \"", ctx->peer_identity, "\" may not call ", ctx->path));
      return Result::kReject;
    }
    if (rule->credentials.empty()) {
      ctx->caller_id = ctx->peer_identity;
      return Result::kContinue;
    }
  }

  for (const Credential& credential : rule->credentials) {
    if (credential.provider == nullptr) {
      absl::StatusOr<std::string> key = Extract(api_key_sources_, *ctx);
      if (!key.ok() || key->empty()) continue;
      absl::StatusOr<const auth::ApiKey*> found = api_keys_->Authenticate(*key);
      if (!found.ok()) {
        *status = Unauthenticated(ctx, "", std::string(found.status().message()));
        return Result::kReject;
      }
      ctx->caller_id = (*found)->id;
      return Result::kContinue;
    }
    const Provider& provider = *credential.provider;
    absl::StatusOr<std::string> token = Extract(provider.sources, *ctx);
    if (!token.ok()) {
      *status = Unauthenticated(ctx, "invalid_request", std::string(token.status().message()));
      return Result::kReject;
    }
    if (token->empty()) continue;
    absl::StatusOr<std::shared_ptr<const auth::VerifiedJwt>> jwt = provider.verifier->Verify(*token);
    if (jwt.ok()) {
      *status = Accept(*rule, provider, **jwt, ctx);
      return status->ok() ? Result::kContinue : Result::kReject;
    }
    if (auth::IsUnknownKeyId(jwt.status())) {
      // The provider may have rotated its keys: reload them, then check the token again.
      auto retry = [this, rule, &provider, ctx, token = *std::move(token)] {
        absl::StatusOr<std::shared_ptr<const auth::VerifiedJwt>> again =
            provider.verifier->Verify(token);
        absl::Status outcome;
        if (again.ok()) {
          outcome = Accept(*rule, provider, **again, ctx);
        } else {
          outcome = Unauthenticated(ctx, "invalid_token", std::string(again.status().message()));
        }
        ctx->Resume(std::move(outcome));
      };
      if (keys_owner_->RequestReload(provider, std::move(retry))) return Result::kPending;
    }
    *status = Unauthenticated(ctx, "invalid_token", std::string(jwt.status().message()));
    return Result::kReject;
  }
  *status = Unauthenticated(ctx, "", absl::StrCat("missing credentials: ", ctx->path,
                                                  " needs ", rule->expected));
  return Result::kReject;
}

AuthInterceptor::AuthInterceptor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuthInterceptor::~AuthInterceptor() = default;

absl::StatusOr<std::shared_ptr<const AuthInterceptor>> AuthInterceptor::Create(
    const config::v1::Auth& config, const std::string& base_dir,
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services,
    SelectorCheck check) {
  auto impl = std::make_unique<Impl>();
  absl::Status status = impl->Compile(config, base_dir, pool, services, check);
  if (!status.ok()) return status;
  return std::shared_ptr<const AuthInterceptor>(new AuthInterceptor(std::move(impl)));
}

absl::StatusOr<std::shared_ptr<const AuthInterceptor>> AuthInterceptor::CreateAdditional(
    std::shared_ptr<const AuthInterceptor> base, const config::v1::Auth& rules,
    const google::protobuf::DescriptorPool& pool, const std::vector<std::string>& services) {
  auto impl = std::make_unique<Impl>();
  absl::Status status = impl->CompileAdditional(std::move(base), rules, pool, services);
  if (!status.ok()) return status;
  return std::shared_ptr<const AuthInterceptor>(new AuthInterceptor(std::move(impl)));
}

std::shared_ptr<const void> AuthInterceptor::Resolve(
    const google::protobuf::MethodDescriptor& method) const {
  return Borrowed(impl_->Resolve(method));
}

Interceptor::Result AuthInterceptor::Intercept(CallContext* ctx, absl::Status* status) const {
  return impl_->Intercept(ctx, status);
}

std::vector<std::string> AuthInterceptor::OwnedMetadata() const { return impl_->ForwardHeaders(); }

}  // namespace gateway
