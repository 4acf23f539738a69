// The tests' one temporary directory: RAII, a unique directory under $TMPDIR (else /tmp), removed
// with everything in it by the destructor. Move-only; a moved-from TempDir removes nothing.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace zkit::test {

class TempDir {
 public:
  // Creates <base>/<prefix>-XXXXXX (mkdtemp: mode 0700). base: temp_directory_path(), which is
  // $TMPDIR when set, else /tmp. Throws std::runtime_error naming the template when it fails.
  explicit TempDir(std::string_view prefix = "zkit-test",
                   const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    std::string tmpl = (base / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("TempDir: mkdtemp(" + tmpl + ") failed: " + std::strerror(errno));
    }
    path_ = std::move(tmpl);
  }
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ec;  // a destructor does not throw; what cannot be removed stays
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&& other) noexcept {
    if (this != &other) {
      TempDir gone(std::move(*this));
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const noexcept { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
  std::string ipc(std::string_view name) const { return "ipc://" + file(name); }

 private:
  std::string path_;
};

}  // namespace zkit::test
