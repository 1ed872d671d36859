#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace posenc {

// Per-epoch metrics of a run as JSON lines (one object per epoch, with an "epoch" field) in
// `path`, plus a PNG plot of the curves drawn by gnuplot.
class MetricsLog {
 public:
  explicit MetricsLog(std::string path);
  // Drops entries of epochs >= `epoch`, which a resumed run is about to redo.
  void truncate_from(int64_t epoch) const;
  void append(const nlohmann::json& entry) const;
  // Draws train loss and test accuracy against epoch into `png`. Returns false (and says why
  // on stderr) when gnuplot is missing or fails; the JSONL file is the record either way.
  bool plot(const std::string& png) const;
  // What a trainer does at the end of an epoch: appends `entry` (epoch, train_loss,
  // test_accuracy, epoch_seconds), redraws `png` and prints the epoch's summary line on stderr.
  void record_epoch(const nlohmann::json& entry, int64_t epochs, const std::string& png) const;

 private:
  std::string path_;
};

}  // namespace posenc
