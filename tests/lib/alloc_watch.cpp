// The global operator new/delete replacement behind AllocationWatch (its own translation unit, so
// that the compiler never pairs an inlined free() with a std::allocator's operator new).
#include "alloc_watch.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

// AddressSanitizer owns operator new/delete (it checks that they pair up); under it the watch is off.
#if defined(__SANITIZE_ADDRESS__)
#define ZKIT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZKIT_UNDER_ASAN 1
#endif
#endif
#ifndef ZKIT_UNDER_ASAN
#define ZKIT_UNDER_ASAN 0
#endif

namespace {
constexpr bool kReplaced = !ZKIT_UNDER_ASAN;
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
bool AllocationWatch::available() { return kReplaced; }
}  // namespace zkit::testing

#if !ZKIT_UNDER_ASAN

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
#endif  // !ZKIT_UNDER_ASAN
