#pragma once

#include <string>

#include "posenc/data/token_sets.h"

namespace posenc {

// Token sets from JSON Lines, one set per line (blank lines are skipped):
//   {"positions": [[0.1, 0.2], [0.5, 0.9]],          K positions: M numbers each (G = 1), or
//                                                    G arrays of M numbers: [[[x1, y1], [x2, y2]]]
//    "content":   [[1, 0, 0], [0, 0, 1]],            K content vectors of D numbers
//    "targets":   [2, -1]}                           K classes >= 0; -1 or null: no target
// Every line must have the same G, M and D; sets may differ in size (padded to the largest).
// `classes` is one more than the largest target. Any error names the source and the line:
// invalid JSON, a missing or mistyped key, counts that disagree, a non-finite number, an empty
// set, a set without any target.
TokenSets parse_token_sets_jsonl(const std::string& text, const std::string& source_name);

// The same from a file; throws for a missing or unreadable file.
TokenSets read_token_sets_jsonl(const std::string& path);

}  // namespace posenc
