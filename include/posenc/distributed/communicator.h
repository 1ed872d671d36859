#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace posenc {

// Where and how the ranks of a data-parallel run meet: rank 0 hosts a TCP store at
// master_addr:master_port, every rank connects to it, then they form a Gloo process group.
// These are the variables torchrun uses (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE).
struct RendezvousOptions {
  int64_t world_size = 1;
  int64_t rank = 0;
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  // How long to wait for the other ranks: to join, and in any collective. A rank that dies is
  // noticed at once (its connections close); one that hangs is noticed after this long.
  double timeout_seconds = 300.0;

  // The defaults above, overridden by MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE where set.
  // Throws for a value that is not a number.
  static RendezvousOptions from_environment();
  void validate() const;
};

// A TCP port on 127.0.0.1 that nothing listens on now (chosen by the kernel), for a run on one
// machine. Another program could take it before rank 0 binds it; rank 0 then says so.
int64_t unused_local_port();

// The ranks of one data-parallel run and the collectives between them (PyTorch's c10d
// ProcessGroupGloo). Every rank must call the same collectives in the same order.
//
// A failed collective (a peer died, hangs, or cannot be reached) throws a message naming the
// peer: each rank bumps a counter in the store from a heartbeat thread, and the ranks whose
// counters stopped are the ones named.
class Communicator {
 public:
  // A world of one rank: every collective is the identity and costs nothing.
  Communicator();
  // Joins the run described by `options` (a world of one needs no network). Throws, naming the
  // missing ranks, when not all of them join within the timeout, and when two processes claim
  // the same rank or disagree on the world size.
  explicit Communicator(const RendezvousOptions& options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int64_t rank() const { return rank_; }
  int64_t world_size() const { return world_size_; }
  bool is_leader() const { return rank_ == 0; }
  // Ranks of this run on this machine (this one included), to share the cores between them.
  int64_t ranks_on_this_host() const { return ranks_on_this_host_; }
  // Collectives issued so far (tests check that gradients take one call per bucket).
  int64_t collective_calls() const { return collective_calls_; }

  // Collectives. `purpose` names the operation in error messages ("gradient all-reduce").
  // Tensors must be contiguous CPU tensors of the same shape and dtype on every rank.
  void all_reduce_sum(torch::Tensor& tensor, const char* purpose);
  void broadcast_from_leader(torch::Tensor& tensor, const char* purpose);
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor, const char* purpose);
  // Rank 0's `bytes` replace every other rank's (any length).
  void broadcast_bytes_from_leader(std::string& bytes, const char* purpose);
  void barrier(const char* purpose);
  // Waits for every rank to get here, then stops the heartbeat: call once at the end of a
  // successful run, so no rank leaves while another still needs the store on rank 0.
  void finish();

 private:
  struct Connection;
  template <typename StartWork>
  void run_collective(const char* purpose, StartWork&& start);
  [[noreturn]] void report_failure(const char* purpose, const std::exception& error);

  int64_t rank_ = 0;
  int64_t world_size_ = 1;
  int64_t ranks_on_this_host_ = 1;
  int64_t collective_calls_ = 0;
  std::unique_ptr<Connection> connection_;
};

}  // namespace posenc
