// The global operator new/delete replacement behind AllocationWatch (its own translation unit, so
// that the compiler never pairs an inlined free() with a std::allocator's operator new).
#include "alloc_watch.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> g_watching{false};
std::atomic<std::size_t> g_largest{0};
}  // namespace

namespace zkit::testing {
AllocationWatch::AllocationWatch() {
  g_largest = 0;
  g_watching = true;
}
AllocationWatch::~AllocationWatch() { g_watching = false; }
std::size_t AllocationWatch::largest() const { return g_largest.load(); }
}  // namespace zkit::testing

void* operator new(std::size_t n) {
  if (g_watching.load(std::memory_order_relaxed)) {
    std::size_t cur = g_largest.load(std::memory_order_relaxed);
    while (n > cur && !g_largest.compare_exchange_weak(cur, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
