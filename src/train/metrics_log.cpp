#include "train/metrics_log.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <c10/util/Exception.h>

#include "train/progress_bar.h"

namespace posenc {

MetricsLog::MetricsLog(std::string path) : path_(std::move(path)) {}

void MetricsLog::truncate_from(int64_t epoch) const {
  std::ifstream in(path_);
  if (!in)
    return;
  std::vector<std::string> kept;
  for (std::string line; std::getline(in, line);) {
    if (line.empty())
      continue;
    try {
      if (nlohmann::json::parse(line).value("epoch", int64_t{0}) <= epoch)
        kept.push_back(line);
    } catch (const nlohmann::json::exception&) {
      // a line cut by a kill is dropped
    }
  }
  in.close();
  // rewritten beside the log and renamed over it, so a kill now cannot lose the kept epochs
  const std::string temporary = path_ + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    for (const auto& line : kept)
      out << line << "\n";
    out.flush();
    TORCH_CHECK(out.good(), "cannot rewrite ", path_, "; is the disk full?");
  }
  std::filesystem::rename(temporary, path_);
}

void MetricsLog::record_epoch(const nlohmann::json& entry, int64_t epochs,
                              const std::string& png) const {
  append(entry);
  plot(png);
  std::fprintf(stderr,
               "epoch %lld/%lld: train loss %.4f, test accuracy %.2f%% (train %s, test %s)\n",
               static_cast<long long>(entry.at("epoch").get<int64_t>()),
               static_cast<long long>(epochs), entry.at("train_loss").get<double>(),
               100.0 * entry.at("test_accuracy").get<double>(),
               format_duration(entry.at("epoch_seconds").get<double>()).c_str(),
               format_duration(entry.value("test_seconds", 0.0)).c_str());
}

void MetricsLog::append(const nlohmann::json& entry) const {
  std::ofstream out(path_, std::ios::app);
  out << entry.dump() << "\n";
  out.flush();
  TORCH_CHECK(out.good(), "cannot append to ", path_, "; is the disk full?");
}

bool MetricsLog::plot(const std::string& png) const {
  std::ifstream in(path_);
  std::ostringstream data;
  for (std::string line; std::getline(in, line);) {
    try {
      const auto entry = nlohmann::json::parse(line);
      data << entry.at("epoch").get<int64_t>() << " " << entry.at("train_loss").get<double>() << " "
           << 100.0 * entry.at("test_accuracy").get<double>() << "\n";
    } catch (const nlohmann::json::exception&) {
    }
  }
  FILE* gnuplot = popen("gnuplot 2>/dev/null", "w");
  if (gnuplot == nullptr) {
    std::cerr << "note: gnuplot not available, no plot written (metrics are in " << path_ << ")\n";
    return false;
  }
  std::fprintf(gnuplot,
               "set terminal pngcairo size 900,500\nset output '%s'\n"
               "set xlabel 'epoch'\nset ylabel 'train loss'\nset y2label 'test accuracy (%%)'\n"
               "set y2tics\nset ytics nomirror\nset grid\nset key center right\n"
               "plot '-' using 1:2 with linespoints title 'train loss' axes x1y1, "
               "'-' using 1:3 with linespoints title 'test accuracy' axes x1y2\n%se\n%se\n",
               png.c_str(), data.str().c_str(), data.str().c_str());
  const int status = pclose(gnuplot);
  if (status != 0) {
    std::cerr << "note: gnuplot failed (status " << status << "), no plot written; metrics are in "
              << path_ << "\n";
    return false;
  }
  return true;
}

}  // namespace posenc
