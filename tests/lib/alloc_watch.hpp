// Counts the largest single operator new made while an AllocationWatch is alive, so that tests can
// prove a decoder refuses a lying length without allocating for it. Replaces the global operator
// new/delete of the test program that links alloc_watch.cpp.
#pragma once

#include <cstddef>

namespace zkit::testing {

class AllocationWatch {
 public:
  AllocationWatch();
  ~AllocationWatch();
  AllocationWatch(const AllocationWatch&) = delete;
  AllocationWatch& operator=(const AllocationWatch&) = delete;
  // The largest allocation, in bytes, since construction (on any thread).
  std::size_t largest() const;
  // False when the program cannot replace operator new (under AddressSanitizer): largest() is 0.
  static bool available();
};

}  // namespace zkit::testing
