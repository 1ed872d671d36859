#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace posenc {

// Tells which ranks are alive after a collective failed. Each rank increments its counter in
// rank 0's store every half second, over a connection of its own, from a background thread;
// a rank whose counter stops moving has died or hangs.
class PeerHeartbeat {
 public:
  PeerHeartbeat(const std::string& master_addr, int64_t master_port, int64_t rank,
                int64_t world_size);
  ~PeerHeartbeat();
  PeerHeartbeat(const PeerHeartbeat&) = delete;
  PeerHeartbeat& operator=(const PeerHeartbeat&) = delete;

  // The other ranks whose counters did not move over a few heartbeat periods (this call takes
  // that long). Throws when the store itself cannot be reached: then rank 0, its host, is gone.
  std::vector<int64_t> silent_peers();
  void stop();

 private:
  void beat();
  int64_t read_counter(int64_t rank);

  int64_t rank_;
  int64_t world_size_;
  c10::intrusive_ptr<c10d::TCPStore> store_;
  std::mutex store_mutex_;  // the store client is used by the thread and by silent_peers()
  std::mutex stop_mutex_;
  std::condition_variable stop_requested_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace posenc
