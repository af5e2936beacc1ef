#include "gateway/upstream/cluster_worker.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/log.h"
#include "gateway/upstream/load_balancer.h"

namespace gateway::upstream {

namespace asio = boost::asio;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  return absl::ToChronoNanoseconds(std::min(d, absl::Hours(24 * 365)));
}

// How often a worker drops closed connections and closes drained ones.
constexpr absl::Duration kSweepInterval = absl::Seconds(1);
// At most one connect-failure log line per endpoint and worker in this interval.
constexpr absl::Duration kLogInterval = absl::Seconds(10);

}  // namespace

// One connection of a pool, with what the worker counts on it.
struct PooledConnection {
  std::shared_ptr<Http2Connection> conn;
  const EndpointState* endpoint = nullptr;  // the pool's key
  int64_t leases = 0;                       // Leases on it not yet finished
  bool connected = false;                   // its Connect callback said OK
  bool connect_done = false;                // its Connect callback ran
  bool holds_connection_unit = true;        // of Cluster::TryAcquireConnection
  std::vector<uint64_t> assigned;           // waiters waiting for it to connect
};

namespace {

// A call waiting for a stream.
struct Waiter {
  uint64_t id = 0;
  std::shared_ptr<EndpointState> endpoint;  // the chosen endpoint
  absl::Time deadline;
  std::function<void(absl::StatusOr<Lease>)> done;
  std::unique_ptr<asio::steady_timer> timer;
  std::shared_ptr<PooledConnection> assigned;  // the connecting connection it waits for
};

// The connections of this worker to one endpoint.
struct EndpointPool {
  std::shared_ptr<EndpointState> state;
  std::vector<std::shared_ptr<PooledConnection>> conns;
  std::deque<uint64_t> queue;  // waiter ids in arrival order (ids of gone waiters skipped)
  uint32_t failures = 0;       // consecutive connect failures in this worker
  bool in_backoff = false;
  std::unique_ptr<asio::steady_timer> backoff_timer;
  bool service_posted = false;
  absl::Time last_log = absl::InfinitePast();
  uint64_t unlogged_failures = 0;
};

// A callback to run once the worker's state is consistent again.
struct Delivery {
  std::function<void(absl::StatusOr<Lease>)> done;
  absl::StatusOr<Lease> result;
};

}  // namespace

struct ClusterWorkerImpl : std::enable_shared_from_this<ClusterWorkerImpl> {
  ClusterWorkerImpl(asio::io_context& io, std::shared_ptr<Cluster> cluster)
      : io(io), cluster(std::move(cluster)), sweep_timer(io) {
    const ClusterOptions& o = this->cluster->options();
    switch (o.lb_policy) {
      case LbPolicy::kRoundRobin:
        break;
      case LbPolicy::kLeastRequest:
        lb = LoadBalancer::LeastRequest();
        break;
      case LbPolicy::kPickFirst:
        lb = LoadBalancer::PickFirst();
        break;
    }
    if (lb == nullptr) lb = LoadBalancer::RoundRobin();
  }

  asio::io_context& io;
  const std::shared_ptr<Cluster> cluster;
  std::unique_ptr<LoadBalancer> lb;
  bool loaded = false;
  uint64_t version = 0;
  std::vector<std::unique_ptr<EndpointPool>> pools;  // in the order of cluster->endpoints()
  absl::flat_hash_map<const EndpointState*, EndpointPool*> by_state;
  // Connections that take no new calls (GOAWAY, endpoint removed) but may carry streams.
  std::vector<std::shared_ptr<PooledConnection>> retiring;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Waiter>> waiters;
  uint64_t next_waiter_id = 1;
  asio::steady_timer sweep_timer;
  bool sweep_armed = false;
  bool stopped = false;
  absl::BitGen gen;

  const std::string& name() const { return cluster->name(); }
  std::string Prefix() const { return absl::StrCat("backend \"", name(), "\": "); }

  // --- Connections ---

  static bool Usable(const PooledConnection& c) {
    const auto st = c.conn->state();
    return st != Http2Connection::State::kDraining && st != Http2Connection::State::kClosed;
  }
  static bool Ready(const PooledConnection& c) {
    return c.connected && c.conn->state() == Http2Connection::State::kReady;
  }
  // Whether `c` may take one more lease now.
  static bool HasRoom(const PooledConnection& c) {
    return Ready(c) && c.conn->CanTakeStream() &&
           c.leases < static_cast<int64_t>(c.conn->peer_max_concurrent_streams());
  }
  static bool HasReady(const EndpointPool& p) {
    for (const auto& c : p.conns) {
      if (Ready(*c)) return true;
    }
    return false;
  }
  // Excluded unless nothing better is left: in backoff without a ready connection.
  static bool Blocked(const EndpointPool& p) { return p.in_backoff && !HasReady(p); }
  // Only connections still connecting.
  static bool ConnectingOnly(const EndpointPool& p) { return !p.conns.empty() && !HasReady(p); }

  PooledConnection* FindRoom(EndpointPool& p) {
    for (const auto& c : p.conns) {
      if (HasRoom(*c)) return c.get();
    }
    return nullptr;
  }

  std::shared_ptr<PooledConnection> Open(EndpointPool& p) {
    auto slot = std::make_shared<PooledConnection>();
    slot->endpoint = p.state.get();
    slot->conn = Http2Connection::Create(io, p.state->endpoint(), cluster->options().connection);
    p.conns.push_back(slot);
    ArmSweep();
    // Connect from the loop: its callback may run inside Connect (a bad address), and the
    // caller is in the middle of changing the pool.
    asio::post(io, [weak = weak_from_this(), wslot = std::weak_ptr<PooledConnection>(slot)] {
      auto self = weak.lock();
      auto s = wslot.lock();
      if (!self || !s || self->stopped) return;
      s->conn->Connect([weak, wslot](absl::Status status) {
        // Continue from the loop, out of nghttp2's callbacks, before anyone starts a
        // stream on the connection.
        auto self = weak.lock();
        if (!self) return;
        asio::post(self->io, [weak, wslot, status = std::move(status)] {
          auto self = weak.lock();
          auto s = wslot.lock();
          if (!self || !s || self->stopped) return;
          self->OnConnectDone(s, status);
        });
      });
    });
    return slot;
  }

  // --- Leases ---

  absl::StatusOr<Lease> MakeLease(EndpointPool& p, const std::shared_ptr<PooledConnection>& slot) {
    if (!cluster->TryAcquireRequest()) {
      return cluster->Overflow("requests", "max_requests",
                               cluster->options().circuit_breakers.max_requests);
    }
    Lease lease;
    lease.connection = slot->conn;
    lease.endpoint = p.state;
    lease.cluster_ = cluster;
    lease.slot_ = slot;
    lease.worker_ = weak_from_this();
    ++slot->leases;
    p.state->active_requests.fetch_add(1, std::memory_order_relaxed);
    return lease;
  }

  std::shared_ptr<PooledConnection> SlotOf(EndpointPool& p, PooledConnection* raw) {
    for (const auto& c : p.conns) {
      if (c.get() == raw) return c;
    }
    return nullptr;
  }

  static void Run(std::vector<Delivery>& deliveries) {
    for (auto& d : deliveries) d.done(std::move(d.result));
    deliveries.clear();
  }

  // --- Waiters ---

  // Removes the waiter from the maps (its id stays in the pool's queue, skipped later) and
  // gives back its pending unit. Returns its callback.
  std::function<void(absl::StatusOr<Lease>)> TakeWaiter(uint64_t id) {
    auto it = waiters.find(id);
    if (it == waiters.end()) return nullptr;
    std::unique_ptr<Waiter> w = std::move(it->second);
    waiters.erase(it);
    if (w->timer) w->timer->cancel();
    if (w->assigned) {
      auto& a = w->assigned->assigned;
      a.erase(std::remove(a.begin(), a.end(), id), a.end());
    }
    cluster->ReleasePending();
    return std::move(w->done);
  }

  // Gives the endpoint's waiters what can be given: a stream on a ready connection, a
  // place on a connection being opened, or a new connection. Collects the callbacks to
  // run in `out`.
  void Service(EndpointPool& p, std::vector<Delivery>& out) {
    const ClusterOptions& o = cluster->options();
    std::deque<uint64_t> keep;
    while (!p.queue.empty()) {
      const uint64_t id = p.queue.front();
      p.queue.pop_front();
      auto it = waiters.find(id);
      if (it == waiters.end()) continue;  // gone (deadline, delivered)
      Waiter& w = *it->second;
      if (w.assigned) {  // waits for its connection to connect
        keep.push_back(id);
        continue;
      }
      if (PooledConnection* room = FindRoom(p)) {
        auto slot = SlotOf(p, room);
        auto done = TakeWaiter(id);
        out.push_back({std::move(done), MakeLease(p, slot)});
        continue;
      }
      std::shared_ptr<PooledConnection> target;
      for (const auto& c : p.conns) {
        if (!c->connect_done && Usable(*c) &&
            c->assigned.size() < c->conn->peer_max_concurrent_streams()) {
          target = c;
          break;
        }
      }
      if (!target && !p.in_backoff && p.conns.size() < o.max_connections_per_endpoint) {
        if (cluster->TryAcquireConnection()) {
          target = Open(p);
        } else if (std::none_of(p.conns.begin(), p.conns.end(),
                                [](const auto& c) { return Usable(*c); })) {
          // No connection of this endpoint to wait for, and none may open.
          auto done = TakeWaiter(id);
          out.push_back({std::move(done),
                         cluster->Overflow("connections", "max_connections",
                                           o.circuit_breakers.max_connections)});
          continue;
        }
      }
      if (target) {
        w.assigned = target;
        target->assigned.push_back(id);
      }
      keep.push_back(id);
    }
    p.queue = std::move(keep);
  }

  void PostService(EndpointPool& p) {
    if (p.service_posted) return;
    p.service_posted = true;
    asio::post(io, [weak = weak_from_this(), key = p.state.get()] {
      auto self = weak.lock();
      if (!self || self->stopped) return;
      auto it = self->by_state.find(key);
      if (it == self->by_state.end()) return;
      it->second->service_posted = false;
      std::vector<Delivery> out;
      self->Service(*it->second, out);
      Run(out);
    });
  }

  // --- Connect results ---

  void OnConnectDone(const std::shared_ptr<PooledConnection>& slot, const absl::Status& status) {
    slot->connect_done = true;
    auto it = by_state.find(slot->endpoint);
    EndpointPool* p = it == by_state.end() ? nullptr : it->second;
    const bool in_pool =
        p != nullptr && std::find(p->conns.begin(), p->conns.end(), slot) != p->conns.end();
    std::vector<Delivery> out;
    // Connected; it may already be draining (GOAWAY right away): then the waiters look
    // for another connection, and the endpoint is not penalized.
    if (status.ok() && slot->conn->state() != Http2Connection::State::kClosed) {
      slot->connected = true;
      std::vector<uint64_t> assigned = std::move(slot->assigned);
      slot->assigned.clear();
      for (uint64_t id : assigned) {
        auto w = waiters.find(id);
        if (w == waiters.end()) continue;
        w->second->assigned = nullptr;
      }
      if (p != nullptr) {
        p->failures = 0;
        Service(*p, out);  // the ready connection takes them, or more connections open
      }
      Run(out);
      return;
    }
    // Failed (or closed before it was ready).
    if (in_pool) p->conns.erase(std::find(p->conns.begin(), p->conns.end(), slot));
    ReleaseConnectionUnit(*slot);
    std::vector<uint64_t> assigned = std::move(slot->assigned);
    slot->assigned.clear();
    for (uint64_t id : assigned) {
      auto w = waiters.find(id);
      if (w == waiters.end()) continue;
      w->second->assigned = nullptr;
      auto done = TakeWaiter(id);
      out.push_back({std::move(done), absl::UnavailableError(Prefix() + "failed to connect")});
    }
    if (p != nullptr && !stopped) {
      const absl::Time now = absl::Now();
      if (!out.empty()) {
        // Calls failed: one failure for outlier detection (it counts connect_failures_total).
        cluster->RecordOutcome(*p->state, EndpointOutcome::kConnectFailure, now);
      } else {
        // A reconnect in the background that no call waited for: counted, but not an
        // outcome of a call, so a long outage does not keep the endpoint ejected after
        // it came back.
        p->state->connect_failures_total.fetch_add(1, std::memory_order_relaxed);
      }
      LogFailure(*p, status, StartBackoff(*p), now);
    }
    Run(out);
  }

  void LogFailure(EndpointPool& p, const absl::Status& status, absl::Duration backoff,
                  absl::Time now) {
    if (now - p.last_log < kLogInterval) {
      ++p.unlogged_failures;
      return;
    }
    std::string more;
    if (p.unlogged_failures > 0) {
      more = absl::StrCat(" (", p.unlogged_failures, " more failures since the last line)");
    }
    LogLine(absl::StrCat(Prefix(), "connect to ", p.state->endpoint().ToString(),
                         " failed (", p.failures, " in a row): ", status.message(),
                         "; retrying in ",
                         absl::FormatDuration(absl::Trunc(backoff, absl::Milliseconds(1))),
                         more));
    p.last_log = now;
    p.unlogged_failures = 0;
  }

  // Puts the endpoint in reconnect backoff; returns its length.
  absl::Duration StartBackoff(EndpointPool& p) {
    const ClusterOptions& o = cluster->options();
    ++p.failures;
    absl::Duration d = o.reconnect_backoff_base;
    for (uint32_t i = 1; i < p.failures && d < o.reconnect_backoff_max; ++i) d *= 1.6;
    d *= absl::Uniform(gen, 0.8, 1.2);
    d = std::min(d, o.reconnect_backoff_max);
    p.in_backoff = true;
    if (!p.backoff_timer) p.backoff_timer = std::make_unique<asio::steady_timer>(io);
    p.backoff_timer->expires_after(ToChrono(d));
    p.backoff_timer->async_wait(
        [weak = weak_from_this(), key = p.state.get()](boost::system::error_code ec) {
          if (ec) return;
          auto self = weak.lock();
          if (!self || self->stopped) return;
          auto it = self->by_state.find(key);
          if (it != self->by_state.end()) self->OnBackoffEnd(*it->second);
        });
    return d;
  }

  // The backoff is over: reconnect at once (with the calls that waited for it, if any), so
  // that a backend that came back is found without a call paying for the attempt.
  void OnBackoffEnd(EndpointPool& p) {
    p.in_backoff = false;
    bool any_usable = false;
    for (const auto& c : p.conns) any_usable |= Usable(*c);
    if (!any_usable && cluster->TryAcquireConnection()) Open(p);
    std::vector<Delivery> out;
    Service(p, out);
    Run(out);
  }

  void ReleaseConnectionUnit(PooledConnection& slot) {
    if (!slot.holds_connection_unit) return;
    slot.holds_connection_unit = false;
    cluster->ReleaseConnection();
  }

  // --- Endpoint set and sweeping ---

  // Takes a new endpoint set if the cluster has one, and drops connections that closed or
  // received GOAWAY (replacing the last one of an endpoint in the background).
  void Refresh(std::vector<uint64_t>& orphans, std::vector<Delivery>& out) {
    const uint64_t v = cluster->endpoints_version();
    if (!loaded || v != version) {
      loaded = true;
      version = v;
      std::shared_ptr<const EndpointSet> set = cluster->endpoints();
      std::vector<std::unique_ptr<EndpointPool>> next;
      absl::flat_hash_map<const EndpointState*, EndpointPool*> next_by_state;
      for (const auto& ep : *set) {
        std::unique_ptr<EndpointPool> pool;
        auto it = by_state.find(ep.get());
        if (it != by_state.end()) {
          for (auto& old : pools) {
            if (old.get() == it->second) pool = std::move(old);
          }
        }
        if (!pool) {
          pool = std::make_unique<EndpointPool>();
          pool->state = ep;
        }
        next_by_state[ep.get()] = pool.get();
        next.push_back(std::move(pool));
      }
      for (auto& old : pools) {
        if (!old) continue;  // moved to `next`
        if (old->backoff_timer) old->backoff_timer->cancel();
        for (auto& c : old->conns) retiring.push_back(std::move(c));
        for (uint64_t id : old->queue) {
          auto w = waiters.find(id);
          if (w == waiters.end()) continue;
          if (w->second->assigned) {
            auto& a = w->second->assigned->assigned;
            a.erase(std::remove(a.begin(), a.end(), id), a.end());
            w->second->assigned = nullptr;
          }
          orphans.push_back(id);
        }
      }
      pools = std::move(next);
      by_state = std::move(next_by_state);
    }
    for (auto& p : pools) Sweep(*p, out);
    SweepRetiring();
  }

  void Sweep(EndpointPool& p, std::vector<Delivery>& out) {
    bool lost = false;
    for (size_t i = 0; i < p.conns.size();) {
      PooledConnection& c = *p.conns[i];
      // Connections still connecting are left to their Connect callback.
      if (!c.connect_done || Usable(c)) {
        ++i;
        continue;
      }
      lost = true;
      retiring.push_back(std::move(p.conns[i]));
      p.conns.erase(p.conns.begin() + i);
    }
    if (!lost || stopped) return;
    // The backend closed or is draining its last connection: reconnect in the background,
    // so that calls find it ready (or the endpoint in backoff) instead of paying for it.
    if (p.conns.empty() && !p.in_backoff && cluster->TryAcquireConnection()) Open(p);
    if (!p.queue.empty()) Service(p, out);
  }

  void SweepRetiring() {
    for (size_t i = 0; i < retiring.size();) {
      PooledConnection& c = *retiring[i];
      const bool closed = c.conn->state() == Http2Connection::State::kClosed;
      if (!closed && (c.conn->active_streams() > 0 || c.leases > 0 || !c.connect_done)) {
        ++i;
        continue;
      }
      if (!closed) c.conn->Close();
      ReleaseConnectionUnit(c);
      retiring.erase(retiring.begin() + i);
    }
  }

  void ArmSweep() {
    if (sweep_armed || stopped) return;
    sweep_armed = true;
    sweep_timer.expires_after(ToChrono(kSweepInterval));
    sweep_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopped) return;
      self->sweep_armed = false;
      std::vector<uint64_t> orphans;
      std::vector<Delivery> out;
      self->Refresh(orphans, out);
      Run(out);
      self->Redispatch(orphans);
      bool any = !self->retiring.empty();
      for (const auto& p : self->pools) any |= !p->conns.empty();
      if (any) self->ArmSweep();
    });
  }

  // Waiters whose endpoint left the set choose again.
  void Redispatch(const std::vector<uint64_t>& ids) {
    for (uint64_t id : ids) {
      auto it = waiters.find(id);
      if (it == waiters.end()) continue;
      std::unique_ptr<Waiter> w = std::move(it->second);
      waiters.erase(it);
      if (w->timer) w->timer->cancel();
      cluster->ReleasePending();
      Acquire(PickOptions{}, w->deadline, std::move(w->done));
    }
  }

  // --- Choice ---

  class TierCandidates : public LoadBalancer::Candidates {
   public:
    TierCandidates(const ClusterWorkerImpl& impl, int tier, absl::Time now)
        : impl_(impl), tier_(tier), now_(now) {}
    size_t size() const override { return impl_.pools.size(); }
    uint32_t weight(size_t i) const override { return impl_.pools[i]->state->weight(); }
    int64_t load(size_t i) const override {
      return impl_.pools[i]->state->active_requests.load(std::memory_order_relaxed);
    }
    bool eligible(size_t i) const override {
      const EndpointPool& p = *impl_.pools[i];
      if (Blocked(p)) return false;
      if (tier_ >= 3) return true;
      if (!p.state->available(now_)) return false;
      return tier_ == 2 || !ConnectingOnly(p);
    }

   private:
    const ClusterWorkerImpl& impl_;
    const int tier_;
    const absl::Time now_;
  };

  // The endpoint for a new call: available endpoints with a ready or no connection first;
  // then those still connecting; then unhealthy or ejected ones; then the one whose
  // reconnect backoff ends first.
  EndpointPool* Choose(const PickOptions& pick, absl::Time now) {
    std::optional<size_t> avoid;
    if (pick.avoid != nullptr) {
      for (size_t i = 0; i < pools.size(); ++i) {
        if (pools[i]->state.get() == pick.avoid) avoid = i;
      }
    }
    for (int tier = 1; tier <= 3; ++tier) {
      TierCandidates c(*this, tier, now);
      if (auto i = lb->Pick(c, version, avoid)) return pools[*i].get();
    }
    EndpointPool* best = nullptr;
    absl::Duration best_left = absl::InfiniteDuration();
    for (auto& p : pools) {
      const absl::Duration left =
          p->backoff_timer
              ? absl::FromChrono(p->backoff_timer->expiry() - std::chrono::steady_clock::now())
              : absl::ZeroDuration();
      if (best == nullptr || left < best_left) {
        best = p.get();
        best_left = left;
      }
    }
    return best;
  }

  // --- Acquire ---

  void Acquire(const PickOptions& pick, absl::Time deadline,
               std::function<void(absl::StatusOr<Lease>)> done) {
    if (stopped) {
      done(absl::UnavailableError(Prefix() + "the worker stopped"));
      return;
    }
    auto keep_alive = shared_from_this();
    std::vector<uint64_t> orphans;
    std::vector<Delivery> out;
    Refresh(orphans, out);
    if (!out.empty() || !orphans.empty()) {
      // Rare: others' callbacks first; they may change the pools.
      Run(out);
      Redispatch(orphans);
      if (stopped) {
        done(absl::UnavailableError(Prefix() + "the worker stopped"));
        return;
      }
    }
    if (pools.empty()) {
      const absl::Status rs = cluster->resolution_status();
      absl::string_view why = rs.ok() ? "the target has no addresses" : rs.message();
      absl::ConsumePrefix(&why, Prefix());  // the resolver's message names the backend too
      done(absl::UnavailableError(absl::StrCat(Prefix(), "no endpoints (", why, ")")));
      return;
    }
    const absl::Time now = absl::Now();
    EndpointPool& p = *Choose(pick, now);
    if (PooledConnection* room = FindRoom(p)) {
      done(MakeLease(p, SlotOf(p, room)));
      return;
    }
    if (!cluster->TryAcquirePending()) {
      done(cluster->Overflow("pending requests", "max_pending_requests",
                             cluster->options().circuit_breakers.max_pending_requests));
      return;
    }
    if (deadline <= now) {
      cluster->ReleasePending();
      done(absl::DeadlineExceededError(
          Prefix() + "the deadline passed before a connection was ready"));
      return;
    }
    auto w = std::make_unique<Waiter>();
    w->id = next_waiter_id++;
    w->endpoint = p.state;
    w->deadline = deadline;
    w->done = std::move(done);
    if (deadline != absl::InfiniteFuture()) {
      w->timer = std::make_unique<asio::steady_timer>(io);
      w->timer->expires_after(ToChrono(deadline - now));
      w->timer->async_wait([weak = weak_from_this(), id = w->id](boost::system::error_code ec) {
        if (ec) return;
        auto self = weak.lock();
        if (!self || self->stopped) return;
        auto cb = self->TakeWaiter(id);
        if (cb) {
          cb(absl::DeadlineExceededError(self->Prefix() +
                                         "no connection was ready before the deadline"));
        }
      });
    }
    const uint64_t id = w->id;
    waiters[id] = std::move(w);
    p.queue.push_back(id);
    Service(p, out);
    Run(out);
  }

  void OnLeaseFinished(const PooledConnection& slot) {
    if (stopped) return;
    auto it = by_state.find(slot.endpoint);
    if (it != by_state.end() && !it->second->queue.empty()) PostService(*it->second);
  }

  void Stop() {
    auto keep_alive = shared_from_this();
    stopped = true;
    sweep_timer.cancel();
    std::vector<Delivery> out;
    std::vector<uint64_t> ids;
    for (const auto& [id, w] : waiters) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    for (uint64_t id : ids) {
      auto done = TakeWaiter(id);
      if (done) {
        out.push_back({std::move(done), absl::UnavailableError(Prefix() + "the worker stopped")});
      }
    }
    std::vector<std::shared_ptr<PooledConnection>> all = std::move(retiring);
    retiring.clear();
    for (auto& p : pools) {
      if (p->backoff_timer) p->backoff_timer->cancel();
      for (auto& c : p->conns) all.push_back(std::move(c));
      p->conns.clear();
    }
    for (auto& c : all) {
      c->conn->Close();
      ReleaseConnectionUnit(*c);
    }
    Run(out);
  }
};

// ---------------------------------------------------------------------------------------
// Lease

Lease::Lease(Lease&& other) noexcept { *this = std::move(other); }

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Finish(EndpointOutcome::kLocal);
    connection = std::move(other.connection);
    endpoint = std::move(other.endpoint);
    cluster_ = std::move(other.cluster_);
    slot_ = std::move(other.slot_);
    worker_ = std::move(other.worker_);
    other.connection = nullptr;
    other.endpoint = nullptr;
    other.cluster_ = nullptr;
    other.slot_ = nullptr;
    other.worker_.reset();
  }
  return *this;
}

Lease::~Lease() { Finish(EndpointOutcome::kLocal); }

void Lease::Finish(EndpointOutcome outcome) {
  if (cluster_ == nullptr) return;
  std::shared_ptr<Cluster> cluster = std::move(cluster_);
  cluster_ = nullptr;
  endpoint->active_requests.fetch_sub(1, std::memory_order_relaxed);
  cluster->ReleaseRequest();
  cluster->RecordOutcome(*endpoint, outcome, absl::Now());
  if (slot_ != nullptr) {
    --slot_->leases;
    if (auto worker = worker_.lock()) worker->OnLeaseFinished(*slot_);
  }
  slot_ = nullptr;
  worker_.reset();
}

// ---------------------------------------------------------------------------------------
// ClusterWorker

ClusterWorker::ClusterWorker(asio::io_context& io, std::shared_ptr<Cluster> cluster)
    : io_(io), cluster_(cluster), impl_(std::make_shared<ClusterWorkerImpl>(io, cluster)) {}

ClusterWorker::~ClusterWorker() { impl_->Stop(); }

void ClusterWorker::Acquire(const PickOptions& pick, absl::Time deadline,
                            std::function<void(absl::StatusOr<Lease>)> done) {
  impl_->Acquire(pick, deadline, std::move(done));
}

}  // namespace gateway::upstream
