#include "posenc/distributed/communicator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <c10/util/Exception.h>
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "distributed/peer_heartbeat.h"

namespace posenc {
namespace {

using Clock = std::chrono::steady_clock;

// The message of an exception from c10d or Gloo, without a final period (posenc's sentence
// goes on after it).
std::string gloo_message_of(const std::exception& error) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&error);
  std::string message =
      torch_error != nullptr ? torch_error->what_without_backtrace() : error.what();
  while (!message.empty() && (message.back() == '.' || message.back() == '\n'))
    message.pop_back();
  return message;
}

int64_t integer_from_environment(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0')
    return fallback;
  char* end = nullptr;
  const long long parsed = std::strtoll(value, &end, 10);
  TORCH_CHECK(*end == '\0', "environment variable ", name, "='", value,
              "' is not an integer; unset it or give a number");
  return parsed;
}

std::string this_host() {
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

std::vector<uint8_t> as_bytes(const std::string& text) {
  return {text.begin(), text.end()};
}

std::string ranks_phrase(const std::vector<int64_t>& ranks) {
  std::string phrase = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    phrase += (i > 0 ? ", " : "") + std::to_string(ranks[i]);
  return phrase;
}

bool is_loopback(const std::string& address) {
  return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

// The network interface Gloo binds: loopback for a run on one machine; otherwise the one named
// by GLOO_SOCKET_IFNAME (as in PyTorch), or the one the host name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"))
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  if (is_loopback(master_addr))
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

int64_t unused_local_port() {
  const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  TORCH_CHECK(socket >= 0, "cannot open a socket to find a free port (", std::strerror(errno), ")");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool found = ::bind(socket, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(socket, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(socket);
  TORCH_CHECK(found, "cannot find a free port on 127.0.0.1; choose one with --master-port");
  return ntohs(address.sin_port);
}

RendezvousOptions RendezvousOptions::from_environment() {
  RendezvousOptions options;
  if (const char* address = std::getenv("MASTER_ADDR"); address != nullptr && *address != '\0')
    options.master_addr = address;
  options.master_port = integer_from_environment("MASTER_PORT", options.master_port);
  options.rank = integer_from_environment("RANK", options.rank);
  options.world_size = integer_from_environment("WORLD_SIZE", options.world_size);
  return options;
}

void RendezvousOptions::validate() const {
  TORCH_CHECK(world_size >= 1, "--world-size must be >= 1, got ", world_size);
  TORCH_CHECK(rank >= 0 && rank < world_size, "--rank must be in [0, ", world_size - 1,
              "] for --world-size ", world_size, ", got ", rank);
  TORCH_CHECK(master_port >= 1 && master_port <= 65535, "--master-port must be in [1, 65535], got ",
              master_port);
  TORCH_CHECK(!master_addr.empty(), "--master-addr must not be empty");
  // c10d's store counts its connection timeout in whole seconds
  TORCH_CHECK(timeout_seconds >= 1.0, "--timeout must be at least 1 s, got ", timeout_seconds,
              " s");
}

struct Communicator::Connection {
  RendezvousOptions options;
  c10::intrusive_ptr<c10d::TCPStore> store;
  std::unique_ptr<PeerHeartbeat> heartbeat;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

Communicator::Communicator() = default;

Communicator::Communicator(const RendezvousOptions& options)
    : rank_(options.rank), world_size_(options.world_size) {
  options.validate();
  if (world_size_ == 1)
    return;
  auto connection = std::make_unique<Connection>();
  connection->options = options;
  const auto timeout =
      std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1e3));
  const std::string where = options.master_addr + ":" + std::to_string(options.master_port);

  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(options.master_port);
  store_options.isServer = rank_ == 0;
  store_options.numWorkers = static_cast<size_t>(world_size_);
  store_options.waitWorkers = false;  // joining is checked below, naming who is missing
  store_options.timeout = timeout;
  try {
    connection->store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store_options);
  } catch (const std::exception& error) {
    TORCH_CHECK(rank_ != 0, "rank 0 cannot host the rendezvous at ", where, ": ", gloo_message_of(error),
                ". Is the port in use? Choose another --master-port");
    TORCH_CHECK(false, "rank ", rank_, " could not reach the rendezvous of rank 0 at ", where,
                " within ", options.timeout_seconds, " s: ", gloo_message_of(error),
                ". Check that rank 0 runs and that --master-addr and --master-port (MASTER_ADDR, "
                "MASTER_PORT) name its machine and port");
  }
  auto& store = *connection->store;

  const std::string rank_key = "posenc/rank/" + std::to_string(rank_);
  TORCH_CHECK(store.add(rank_key + "/claims", 1) == 1, "two processes claim rank ", rank_,
              " of the run at ", where, "; give each process its own --rank");
  store.set(rank_key + "/world_size", as_bytes(std::to_string(world_size_)));
  store.set(rank_key + "/host", as_bytes(this_host()));

  // Wait for every rank, listing the missing ones if some never come.
  const auto joining_since = Clock::now();
  const auto deadline = joining_since + timeout;
  bool announced = false;
  std::vector<int64_t> missing;
  for (;;) {
    missing.clear();
    for (int64_t r = 0; r < world_size_; ++r) {
      if (!store.check({"posenc/rank/" + std::to_string(r) + "/host"}))
        missing.push_back(r);
    }
    if (missing.empty())
      break;
    TORCH_CHECK(Clock::now() < deadline, "rank ", rank_, ": ", ranks_phrase(missing),
                " did not join the run at ", where, " within ", options.timeout_seconds,
                " s. Start every rank with the same --world-size, --master-addr and "
                "--master-port, or raise --timeout");
    if (!announced && rank_ == 0 && Clock::now() > joining_since + std::chrono::seconds(5)) {
      std::fprintf(stderr, "rank 0: waiting for %s to join at %s (timeout %.0f s)\n",
                   ranks_phrase(missing).c_str(), where.c_str(), options.timeout_seconds);
      announced = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string host = this_host();
  ranks_on_this_host_ = 0;
  for (int64_t r = 0; r < world_size_; ++r) {
    const auto peer = store.get("posenc/rank/" + std::to_string(r) + "/world_size");
    const std::string peer_world(peer.begin(), peer.end());
    TORCH_CHECK(peer_world == std::to_string(world_size_), "rank ", r,
                " was started with --world-size ", peer_world, " but rank ", rank_, " with ",
                world_size_, "; give every rank the same --world-size");
    const auto peer_host = store.get("posenc/rank/" + std::to_string(r) + "/host");
    ranks_on_this_host_ += std::string(peer_host.begin(), peer_host.end()) == host ? 1 : 0;
  }

  connection->heartbeat =
      std::make_unique<PeerHeartbeat>(options.master_addr, options.master_port, rank_, world_size_);
  auto group_options = c10d::ProcessGroupGloo::Options::create();
  group_options->timeout = timeout;
  group_options->devices.push_back(gloo_device(options.master_addr));
  connection_ = std::move(connection);
  try {
    connection_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(
        c10::make_intrusive<c10d::PrefixStore>("gloo", connection_->store), rank_, world_size_,
        group_options);
  } catch (const std::exception& error) {
    report_failure("connecting the Gloo process group", error);
  }
}

Communicator::~Communicator() {
  if (connection_ && connection_->heartbeat)
    connection_->heartbeat->stop();
}

template <typename StartWork>
void Communicator::run_collective(const char* purpose, StartWork&& start) {
  ++collective_calls_;
  if (world_size_ == 1)
    return;
  try {
    start(*connection_->group)->wait();
  } catch (const std::exception& error) {
    report_failure(purpose, error);
  }
}

void Communicator::report_failure(const char* purpose, const std::exception& error) {
  std::string cause;
  try {
    const auto silent = connection_->heartbeat->silent_peers();
    cause = silent.empty()
                ? "every rank still answers, so one may be busy for longer than the timeout (" +
                      std::to_string(connection_->options.timeout_seconds) +
                      " s); raise --timeout if steps or checkpoints take that long"
                : ranks_phrase(silent) + " stopped answering (died, was killed or hangs)";
  } catch (const std::exception&) {
    cause = "rank 0, which hosts the rendezvous at " + connection_->options.master_addr + ":" +
            std::to_string(connection_->options.master_port) + ", is gone";
  }
  TORCH_CHECK(false, "rank ", rank_, ": ", purpose, " failed: ", cause,
              " (Gloo: ", gloo_message_of(error),
              "). This rank stops too; checkpoints are written only between steps, so the last "
              "one stays valid and --resume continues from it");
}

void Communicator::all_reduce_sum(torch::Tensor& tensor, const char* purpose) {
  TORCH_CHECK(tensor.is_contiguous() && tensor.device().is_cpu(), purpose,
              ": all-reduce needs a contiguous CPU tensor");
  run_collective(purpose, [&](c10d::ProcessGroupGloo& group) {
    std::vector<at::Tensor> tensors{tensor};
    return group.allreduce(tensors);
  });
}

void Communicator::broadcast_from_leader(torch::Tensor& tensor, const char* purpose) {
  TORCH_CHECK(tensor.is_contiguous() && tensor.device().is_cpu(), purpose,
              ": broadcast needs a contiguous CPU tensor");
  run_collective(purpose, [&](c10d::ProcessGroupGloo& group) {
    std::vector<at::Tensor> tensors{tensor};
    return group.broadcast(tensors, c10d::BroadcastOptions{0});
  });
}

std::vector<torch::Tensor> Communicator::all_gather(const torch::Tensor& tensor,
                                                    const char* purpose) {
  TORCH_CHECK(tensor.is_contiguous() && tensor.device().is_cpu(), purpose,
              ": all-gather needs a contiguous CPU tensor");
  std::vector<std::vector<at::Tensor>> gathered(1);
  for (int64_t r = 0; r < world_size_; ++r)
    gathered[0].push_back(r == rank_ ? tensor.clone() : torch::empty_like(tensor));
  run_collective(purpose, [&](c10d::ProcessGroupGloo& group) {
    std::vector<at::Tensor> inputs{tensor};
    return group.allgather(gathered, inputs);
  });
  return gathered[0];
}

void Communicator::broadcast_bytes_from_leader(std::string& bytes, const char* purpose) {
  if (world_size_ == 1)
    return;
  auto length = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong);
  broadcast_from_leader(length, purpose);
  auto buffer = torch::empty({length.item<int64_t>()}, torch::kUInt8);
  if (rank_ == 0)
    std::copy(bytes.begin(), bytes.end(), buffer.data_ptr<uint8_t>());
  if (buffer.numel() > 0)
    broadcast_from_leader(buffer, purpose);
  const auto* data = buffer.data_ptr<uint8_t>();
  bytes.assign(data, data + buffer.numel());
}

void Communicator::barrier(const char* purpose) {
  run_collective(purpose, [&](c10d::ProcessGroupGloo& group) { return group.barrier(); });
}

void Communicator::finish() {
  barrier("the final barrier");
  if (connection_ && connection_->heartbeat)
    connection_->heartbeat->stop();
}

}  // namespace posenc
