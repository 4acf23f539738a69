// Counts operator new calls while an AllocationCount is alive, so that a test can show a hot path
// allocates nothing per item. Replaces the global operator new/delete of the program that links
// alloc_count.cpp (off under AddressSanitizer, which owns them).
#pragma once

#include <cstddef>

namespace zkit::testing {

class AllocationCount {
 public:
  AllocationCount();
  ~AllocationCount();
  AllocationCount(const AllocationCount&) = delete;
  AllocationCount& operator=(const AllocationCount&) = delete;
  std::size_t count() const;  // operator new calls since construction (any thread)
  static bool available();    // false under AddressSanitizer: count() is 0
};

}  // namespace zkit::testing
