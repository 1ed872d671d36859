#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace posenc::cli {

// The value of `option` ("--epochs 10"): the whole text must be the number; the error names the
// option and what it takes.
int64_t parse_integer_value(const std::string& text, const std::string& option);
uint64_t parse_non_negative_integer_value(const std::string& text, const std::string& option);
double parse_finite_number_value(const std::string& text, const std::string& option);

// "64,14,192" -> {64, 14, 192}: plain comma-separated integers, no ranges.
std::vector<int64_t> parse_integer_list(const std::string& text);

// "0.485,0.456,0.406" -> {0.485, 0.456, 0.406}: comma-separated numbers.
std::vector<double> parse_number_list(const std::string& text);

// "0-5" -> {0..5}; "0,3,5" -> {0, 3, 5}; "-1" -> {-1}; ranges and items mix: "-1,2-3".
std::vector<int64_t> parse_index_list(const std::string& text);

// "28,40,56" -> {{28, 28}, {40, 40}, {56, 56}}; items may be HxW: "28x36".
std::vector<std::pair<int64_t, int64_t>> parse_resolutions(const std::string& text);

// One size for an option such as --resolution: "36" -> {36, 36}, "28x40" -> {28, 40}; "" -> the
// fallback (the trained size). A list is an error naming `option`, not its first item silently.
std::pair<int64_t, int64_t> parse_single_resolution(const std::string& text,
                                                    std::pair<int64_t, int64_t> fallback,
                                                    const std::string& option);

// "90", "90s", "15m", "2h" -> seconds.
double parse_duration(const std::string& text);

}  // namespace posenc::cli
