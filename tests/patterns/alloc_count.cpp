// The operator new/delete replacement behind AllocationCount (its own translation unit, so that
// the compiler never pairs an inlined free() with a std::allocator's operator new).
#include "alloc_count.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define ZKIT_COUNT_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZKIT_COUNT_UNDER_ASAN 1
#endif
#endif
#ifndef ZKIT_COUNT_UNDER_ASAN
#define ZKIT_COUNT_UNDER_ASAN 0
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::size_t> g_count{0};
}  // namespace

namespace zkit::testing {
AllocationCount::AllocationCount() {
  g_count = 0;
  g_counting = true;
}
AllocationCount::~AllocationCount() { g_counting = false; }
std::size_t AllocationCount::count() const { return g_count.load(); }
bool AllocationCount::available() { return !ZKIT_COUNT_UNDER_ASAN; }
}  // namespace zkit::testing

#if !ZKIT_COUNT_UNDER_ASAN
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif
