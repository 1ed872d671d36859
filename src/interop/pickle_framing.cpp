#include "interop/pickle_framing.h"

#include <algorithm>
#include <cstdint>

#include <c10/util/Exception.h>

namespace posenc {

void check_pickle_framing(const std::string& pickle, const std::string& name) {
  size_t position = 0;
  auto fail = [&](const char* what) {
    TORCH_CHECK(false, name, " is corrupt: ", what, " at byte ", position);
  };
  auto skip = [&](uint64_t count) {
    if (count > pickle.size() - position)
      fail("an argument runs past the end of the data");
    position += count;
  };
  auto length = [&](int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) {
      if (position >= pickle.size())
        fail("a length runs past the end of the data");
      value |= static_cast<uint64_t>(static_cast<unsigned char>(pickle[position++])) << (8 * i);
    }
    return value;
  };
  // Memo slots are numbered in order as they are filled (Python's and LibTorch's picklers both
  // do so); LibTorch's unpickler resizes its memo to whatever slot a corrupt file names (27 GB,
  // found by fuzzing), so a slot beyond the next free one is refused here.
  uint64_t memo_size = 0;
  auto memo_put = [&](uint64_t slot) {
    if (slot > memo_size)
      fail("a memo slot out of order");
    memo_size = std::max(memo_size, slot + 1);
  };
  auto memo_get = [&](uint64_t slot) {
    if (slot >= memo_size)
      fail("a memo slot that was never filled");
  };
  auto skip_line = [&] {
    const size_t end = pickle.find('\n', position);
    if (end == std::string::npos)
      fail("a line runs past the end of the data");
    position = end + 1;
  };
  while (position < pickle.size()) {
    const auto opcode = static_cast<unsigned char>(pickle[position++]);
    switch (opcode) {
      case '.':  // STOP
        return;
      // clang-format off
      case '(': case '0': case '1': case '2': case 'N': case 'Q': case 'R': case 'a': case 'b':
      case 'd': case '}': case 'e': case 'l': case ']': case 'o': case 's': case 't': case ')':
      case 'u': case 0x81: case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x8f:
      case 0x90: case 0x91: case 0x92: case 0x93: case 0x97: case 0x98:
        break;  // no argument
      case 'F': case 'I': case 'L': case 'P': case 'S': case 'V': case 'g': case 'p':
        skip_line();
        break;
      case 'c': case 'i':  // GLOBAL, INST: module and name lines
        skip_line();
        skip_line();
        break;
      case 'q': memo_put(length(1)); break;  // BINPUT
      case 'r': memo_put(length(4)); break;  // LONG_BINPUT
      case 0x94: memo_put(memo_size); break; // MEMOIZE
      case 'h': memo_get(length(1)); break;  // BINGET
      case 'j': memo_get(length(4)); break;  // LONG_BINGET
      case 'K': case 0x80: case 0x82: skip(1); break;
      case 'M': case 0x83: skip(2); break;
      case 'J': case 0x84: skip(4); break;
      case 'G': case 0x95: skip(8); break;                             // BINFLOAT, FRAME
      case 'U': case 'C': case 0x8c: case 0x8a: skip(length(1)); break; // 1-byte lengths
      case 'T': case 'X': case 'B': case 0x8b: skip(length(4)); break;  // 4-byte lengths
      case 0x8d: case 0x8e: case 0x96: skip(length(8)); break;          // 8-byte lengths
      // clang-format on
      default:
        --position;
        fail("an unknown pickle opcode");
    }
  }
  fail("the pickle has no STOP opcode");
}

}  // namespace posenc
