// An Env for tests that wraps a real one and can (a) simulate power loss: every byte written but
// not synced, and every create, rename and remove not yet synced in its directory, is undone; and
// (b) fail writes, syncs and creates with an errno (ENOSPC, EIO) on demand. After LevelDB's
// fault_injection_test.cc. One thread; files opened through it must not outlive it.
// Test-only: built as the static library zkit_test_fault_env (tests/support), never installed.
#pragma once

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zkit/spool/env.hpp"

namespace zkit::spool {

class FaultInjectionEnv final : public Env {
 public:
  struct Faults {
    // Writes succeed for this many more bytes; the write that crosses it writes the part that
    // fits and fails with write_errno, as do all later writes. Empty: writes never fail.
    std::optional<std::uint64_t> write_budget;
    int write_errno = ENOSPC;
    // A disk of this many bytes: a write that would take the files written through this Env past
    // it writes the part that fits and fails with write_errno; truncating or removing a file frees
    // its bytes at once. Empty: no such limit.
    std::optional<std::uint64_t> disk_bytes;
    bool fail_sync = false;    // file and directory syncs fail with sync_errno (nothing synced)
    int sync_errno = EIO;
    bool fail_create = false;  // new_writable fails with create_errno
    int create_errno = ENOSPC;
  };

  explicit FaultInjectionEnv(Env& base = Env::posix());
  ~FaultInjectionEnv() override;
  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  void set_faults(const Faults& faults) { faults_ = faults; }
  void clear_faults() { faults_ = Faults{}; }

  // The crash: files written through this Env are cut back to their last synced size, unsynced
  // directory operations are undone (created files deleted, renames reversed, removed files
  // restored), and every file handle opened before becomes dead. Afterwards the directory looks
  // as a machine would find it after losing power, and the power stays off: every call fails
  // (so the crashed Store's destructor changes nothing) until power_on().
  Status simulate_power_loss();
  void power_on() noexcept { down_ = false; }

  std::uint64_t syncs() const noexcept { return syncs_; }
  std::uint64_t failed_calls() const noexcept { return failed_; }

  Result<std::unique_ptr<WritableFile>> new_writable(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> reopen_writable(const std::string& path) override;
  Result<std::unique_ptr<RandomAccessFile>> open_readable(const std::string& path) override;
  Status remove(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status sync_dir(const std::string& dir) override;
  Status create_dir(const std::string& dir) override;
  Status remove_dir(const std::string& dir) override;  // passed through (not undone by a crash)
  bool exists(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& dir) override;
  Result<std::uint64_t> file_size(const std::string& path) override;
  Result<std::uint64_t> free_bytes(const std::string& path) override;
  Result<std::unique_ptr<FileLock>> lock(const std::string& path) override;

 private:
  class File;
  friend class File;
  struct FileState {
    std::uint64_t synced = 0;  // bytes that survive power loss
  };
  struct DirOp {
    enum Kind { kCreate, kRename, kRemove } kind;
    std::string dir, path, other, trash;  // rename: path = to, other = from; trash: displaced file
  };
  std::string trash_path(const std::string& dir);
  std::uint64_t used_bytes();  // live files written through this Env (not the removed ones)
  Status injected(int err, const std::string& what, const std::string& path);

  Env& base_;
  Faults faults_;
  std::map<std::string, std::shared_ptr<FileState>> files_;
  std::vector<DirOp> ops_;
  std::shared_ptr<bool> epoch_alive_;
  bool down_ = false;
  std::uint64_t trash_counter_ = 0;
  std::uint64_t syncs_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace zkit::spool
