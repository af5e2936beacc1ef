#include "gateway/registry/registry_state.h"

#include <algorithm>
#include <utility>

namespace gateway::registry {

const ServiceVersion* RegistryState::Current(const std::string& service) const {
  auto it = services_.find(service);
  if (it == services_.end() || it->second.empty() || it->second.back().removed) {
    return nullptr;
  }
  return &it->second.back();
}

const std::vector<ServiceVersion>& RegistryState::History(const std::string& service) const {
  static const std::vector<ServiceVersion>* const kEmpty = new std::vector<ServiceVersion>();
  auto it = services_.find(service);
  return it == services_.end() ? *kEmpty : it->second;
}

const ServiceVersion* RegistryState::Find(const std::string& service,
                                          int64_t version) const {
  for (const ServiceVersion& v : History(service)) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

int64_t RegistryState::Append(ServiceVersion v) {
  std::vector<ServiceVersion>& history = services_[v.service];
  v.version = history.empty() ? 1 : history.back().version + 1;
  history.push_back(std::move(v));
  return history.back().version;
}

void RegistryState::Restore(ServiceVersion v) {
  std::vector<ServiceVersion>& history = services_[v.service];
  auto at = std::lower_bound(
      history.begin(), history.end(), v.version,
      [](const ServiceVersion& a, int64_t version) { return a.version < version; });
  history.insert(at, std::move(v));
}

std::vector<int64_t> RegistryState::Prune(const std::string& service, std::size_t keep) {
  std::vector<int64_t> dropped;
  auto it = services_.find(service);
  if (it == services_.end()) return dropped;
  std::vector<ServiceVersion>& history = it->second;
  keep = std::max<std::size_t>(keep, 1);
  if (history.size() <= keep) return dropped;
  const std::size_t drop = history.size() - keep;
  for (std::size_t i = 0; i < drop; ++i) dropped.push_back(history[i].version);
  history.erase(history.begin(), history.begin() + static_cast<std::ptrdiff_t>(drop));
  return dropped;
}

std::vector<const ServiceVersion*> RegistryState::Served() const {
  std::vector<const ServiceVersion*> out;
  for (const auto& [name, history] : services_) {
    if (!history.empty() && !history.back().removed) out.push_back(&history.back());
  }
  return out;
}

std::vector<std::string> RegistryState::Names() const {
  std::vector<std::string> out;
  for (const auto& [name, history] : services_) out.push_back(name);
  return out;
}

}  // namespace gateway::registry
