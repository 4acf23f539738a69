// FaultInjectionEnv: tracks synced sizes and unsynced directory operations so a test can throw
// away exactly what a power loss would, and injects ENOSPC/EIO on demand.
#include "fault_env.hpp"

#include <algorithm>
#include <cstring>

namespace zkit::spool {
namespace {

constexpr const char* kTrashPrefix = ".faultenv-trash-";

std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

Status dead(const std::string& path) {
  return Status::io_error("file " + path + " used after simulated power loss");
}

Status off(const std::string& path) {
  return Status::io_error(path + ": the power is off (simulated power loss)");
}

}  // namespace

class FaultInjectionEnv::File final : public WritableFile {
 public:
  File(FaultInjectionEnv& env, std::string path, std::unique_ptr<WritableFile> base,
       std::shared_ptr<FileState> state)
      : env_(env), path_(std::move(path)), base_(std::move(base)), state_(std::move(state)),
        alive_(env.epoch_alive_) {}

  Status append(std::span<const std::byte> data) override {
    if (!*alive_) return dead(path_);
    auto& budget = env_.faults_.write_budget;
    if (budget && *budget < data.size()) {
      std::size_t fit = static_cast<std::size_t>(*budget);
      *budget = 0;
      if (fit > 0) (void)base_->append(data.first(fit));
      return env_.injected(env_.faults_.write_errno, "write", path_);
    }
    if (budget) *budget -= data.size();
    if (const auto& disk = env_.faults_.disk_bytes) {
      const std::uint64_t used = env_.used_bytes();
      if (used + data.size() > *disk) {
        const auto fit = static_cast<std::size_t>(*disk > used ? *disk - used : 0);
        if (fit > 0) (void)base_->append(data.first(fit));
        return env_.injected(env_.faults_.write_errno, "write", path_);
      }
    }
    return base_->append(data);
  }
  Status sync() override {
    if (!*alive_) return dead(path_);
    if (env_.faults_.fail_sync) return env_.injected(env_.faults_.sync_errno, "fdatasync", path_);
    Status s = base_->sync();
    if (s) {
      state_->synced = base_->size();
      ++env_.syncs_;
    }
    return s;
  }
  Status truncate(std::uint64_t size) override {
    if (!*alive_) return dead(path_);
    Status s = base_->truncate(size);
    // A cut below the synced size is itself unsynced metadata; power loss keeps at most this.
    if (s) state_->synced = std::min(state_->synced, size);
    return s;
  }
  std::uint64_t size() const override { return base_->size(); }
  Status close() override { return base_->close(); }

 private:
  FaultInjectionEnv& env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
  std::shared_ptr<FileState> state_;
  std::shared_ptr<bool> alive_;
};

FaultInjectionEnv::FaultInjectionEnv(Env& base)
    : base_(base), epoch_alive_(std::make_shared<bool>(true)) {}

FaultInjectionEnv::~FaultInjectionEnv() { *epoch_alive_ = false; }

Status FaultInjectionEnv::injected(int err, const std::string& what, const std::string& path) {
  ++failed_;
  return Status::io_error(what + " " + path + ": " + std::strerror(err) + " (injected)");
}

std::uint64_t FaultInjectionEnv::used_bytes() {
  std::uint64_t used = 0;
  for (const auto& [path, state] : files_) {
    if (path.find(kTrashPrefix) != std::string::npos) continue;
    if (auto n = base_.file_size(path)) used += n.value();
  }
  return used;
}

std::string FaultInjectionEnv::trash_path(const std::string& dir) {
  return dir + "/" + kTrashPrefix + std::to_string(++trash_counter_);
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::new_writable(const std::string& path) {
  if (down_) return off(path);
  if (faults_.fail_create) return injected(faults_.create_errno, "create", path);
  bool existed = base_.exists(path);
  if (existed) {
    // Truncating an existing file: model it as remove + create so power loss restores the old one.
    if (Status s = remove(path); !s) return s;
  }
  auto f = base_.new_writable(path);
  if (!f) return f.status();
  ops_.push_back({DirOp::kCreate, dir_of(path), path, {}, {}});
  auto state = std::make_shared<FileState>();
  files_[path] = state;
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(*this, path, std::move(f.value()), state));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::reopen_writable(const std::string& path) {
  if (down_) return off(path);
  auto f = base_.reopen_writable(path);
  if (!f) return f.status();
  auto& state = files_[path];
  if (!state) state = std::make_shared<FileState>(FileState{f.value()->size()});
  return std::unique_ptr<WritableFile>(
      std::make_unique<File>(*this, path, std::move(f.value()), state));
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::open_readable(
    const std::string& path) {
  if (down_) return off(path);
  return base_.open_readable(path);
}

Status FaultInjectionEnv::remove(const std::string& path) {
  if (down_) return off(path);
  std::string dir = dir_of(path);
  std::string trash = trash_path(dir);
  if (Status s = base_.rename(path, trash); !s) return s;
  if (auto it = files_.find(path); it != files_.end()) {
    files_[trash] = it->second;
    files_.erase(it);
  }
  ops_.push_back({DirOp::kRemove, dir, path, {}, trash});
  return {};
}

Status FaultInjectionEnv::rename(const std::string& from, const std::string& to) {
  if (down_) return off(from);
  std::string dir = dir_of(to);
  std::string displaced;
  if (base_.exists(to)) {
    displaced = trash_path(dir);
    if (Status s = base_.rename(to, displaced); !s) return s;
    if (auto it = files_.find(to); it != files_.end()) {
      files_[displaced] = it->second;
      files_.erase(it);
    }
  }
  if (Status s = base_.rename(from, to); !s) return s;
  if (auto it = files_.find(from); it != files_.end()) {
    files_[to] = it->second;
    files_.erase(it);
  }
  ops_.push_back({DirOp::kRename, dir, to, from, displaced});
  return {};
}

Status FaultInjectionEnv::sync_dir(const std::string& dir) {
  if (down_) return off(dir);
  if (faults_.fail_sync) return injected(faults_.sync_errno, "fsync directory", dir);
  if (Status s = base_.sync_dir(dir); !s) return s;
  ++syncs_;
  std::vector<DirOp> keep;
  for (auto& op : ops_) {
    if (op.dir != dir) {
      keep.push_back(std::move(op));
      continue;
    }
    if (!op.trash.empty()) {
      (void)base_.remove(op.trash);
      files_.erase(op.trash);
    }
  }
  ops_ = std::move(keep);
  return {};
}

Status FaultInjectionEnv::simulate_power_loss() {
  *epoch_alive_ = false;
  epoch_alive_ = std::make_shared<bool>(true);
  Status result;
  for (auto& [path, state] : files_) {
    if (!base_.exists(path)) continue;
    auto f = base_.reopen_writable(path);
    if (!f) {
      result = f.status();
      continue;
    }
    if (f.value()->size() > state->synced) {
      if (Status s = f.value()->truncate(state->synced); !s) result = s;
    }
  }
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) {
    Status s;
    switch (it->kind) {
      case DirOp::kCreate:
        s = base_.remove(it->path);
        break;
      case DirOp::kRename:
        s = base_.rename(it->path, it->other);
        if (s && !it->trash.empty()) s = base_.rename(it->trash, it->path);
        break;
      case DirOp::kRemove:
        s = base_.rename(it->trash, it->path);
        break;
    }
    if (!s && s.code() != Code::kNotFound) result = s;
  }
  ops_.clear();
  files_.clear();
  down_ = true;
  return result;
}

Status FaultInjectionEnv::create_dir(const std::string& dir) {
  if (down_) return off(dir);
  return base_.create_dir(dir);
}
Status FaultInjectionEnv::remove_dir(const std::string& dir) {
  if (down_) return off(dir);
  return base_.remove_dir(dir);
}
bool FaultInjectionEnv::exists(const std::string& path) { return base_.exists(path); }

Result<std::vector<std::string>> FaultInjectionEnv::list_dir(const std::string& dir) {
  auto names = base_.list_dir(dir);
  if (!names) return names;
  std::erase_if(names.value(), [](const std::string& n) { return n.starts_with(kTrashPrefix); });
  return names;
}

Result<std::uint64_t> FaultInjectionEnv::file_size(const std::string& path) {
  return base_.file_size(path);
}
Result<std::uint64_t> FaultInjectionEnv::free_bytes(const std::string& path) {
  return base_.free_bytes(path);
}
Result<std::unique_ptr<FileLock>> FaultInjectionEnv::lock(const std::string& path) {
  if (down_) return off(path);
  return base_.lock(path);
}

}  // namespace zkit::spool
