#include "distributed/peer_heartbeat.h"

#include <chrono>

namespace posenc {
namespace {

constexpr std::chrono::milliseconds kPeriod{500};
// Long enough for a live rank to beat several times even on a busy machine.
constexpr std::chrono::milliseconds kObservation{2500};

std::string counter_key(int64_t rank) {
  return "posenc/heartbeat/" + std::to_string(rank);
}

}  // namespace

PeerHeartbeat::PeerHeartbeat(const std::string& master_addr, int64_t master_port, int64_t rank,
                             int64_t world_size)
    : rank_(rank), world_size_(world_size) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(master_port);
  options.isServer = false;
  options.waitWorkers = false;
  // a store that does not answer within this long is taken as gone
  options.timeout = std::chrono::seconds(5);
  store_ = c10::make_intrusive<c10d::TCPStore>(master_addr, options);
  thread_ = std::thread([this] { beat(); });
}

PeerHeartbeat::~PeerHeartbeat() {
  stop();
}

void PeerHeartbeat::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    stopping_ = true;
  }
  stop_requested_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void PeerHeartbeat::beat() {
  std::unique_lock<std::mutex> lock(stop_mutex_);
  while (!stopping_) {
    try {
      std::lock_guard<std::mutex> store_lock(store_mutex_);
      store_->add(counter_key(rank_), 1);
    } catch (const std::exception&) {
      return;  // the store is gone; the next collective reports it
    }
    stop_requested_.wait_for(lock, kPeriod, [this] { return stopping_; });
  }
}

int64_t PeerHeartbeat::read_counter(int64_t rank) {
  std::lock_guard<std::mutex> lock(store_mutex_);
  return store_->add(counter_key(rank), 0);
}

std::vector<int64_t> PeerHeartbeat::silent_peers() {
  std::vector<int64_t> before(world_size_);
  for (int64_t r = 0; r < world_size_; ++r)
    before[r] = read_counter(r);
  std::this_thread::sleep_for(kObservation);
  std::vector<int64_t> silent;
  for (int64_t r = 0; r < world_size_; ++r) {
    if (r != rank_ && read_counter(r) == before[r])
      silent.push_back(r);
  }
  return silent;
}

}  // namespace posenc
