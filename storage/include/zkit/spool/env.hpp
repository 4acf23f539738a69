// The file-system interface the spool does all its I/O through (LevelDB's Env in small), so tests
// can inject power loss and write failures. Env::posix() is the real one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zkit/status.hpp"

namespace zkit::spool {

// A file written sequentially. Not thread-safe; closes in the destructor.
// Errors: every call returns IOError with the path and strerror when the OS refuses.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of data at the current end. On error some prefix may have been written; size()
  // then still reports the bytes known written before the call.
  virtual Status append(std::span<const std::byte> data) = 0;
  // fdatasync: the written bytes survive power loss once this returns ok. (The file's directory
  // entry needs Env::sync_dir as well, after create or rename.)
  virtual Status sync() = 0;
  // Cuts the file to size bytes and continues appending there.
  virtual Status truncate(std::uint64_t size) = 0;
  virtual std::uint64_t size() const = 0;
  virtual Status close() = 0;
};

// A file read at offsets. Not thread-safe.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to out.size() bytes at offset; returns how many (fewer only at end of file).
  virtual Result<std::size_t> read(std::uint64_t offset, std::span<std::byte> out) = 0;
};

// An advisory lock on a file (flock); released when destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// File-system operations. Paths are plain strings; directories are not created implicitly.
// The posix Env is stateless and thread-safe. (The tests' FaultInjectionEnv, tests/support, wraps
// one to inject power loss and write failures.)
class Env {
 public:
  virtual ~Env() = default;
  // Creates the file, or truncates it when it exists.
  virtual Result<std::unique_ptr<WritableFile>> new_writable(const std::string& path) = 0;
  // Opens an existing file to append after its current end (NotFound when missing).
  virtual Result<std::unique_ptr<WritableFile>> reopen_writable(const std::string& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> open_readable(const std::string& path) = 0;
  virtual Status remove(const std::string& path) = 0;
  // Atomic replace of to by from (rename(2)).
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // fsync of the directory: makes creates, renames and removes in it durable.
  virtual Status sync_dir(const std::string& dir) = 0;
  virtual Status create_dir(const std::string& dir) = 0;  // ok when it exists
  virtual Status remove_dir(const std::string& dir) = 0;  // an empty directory (rmdir(2))
  virtual bool exists(const std::string& path) = 0;
  // File names (not paths) in dir, without "." and "..".
  virtual Result<std::vector<std::string>> list_dir(const std::string& dir) = 0;
  virtual Result<std::uint64_t> file_size(const std::string& path) = 0;
  // Bytes available to an unprivileged user on the file system holding path (statvfs).
  virtual Result<std::uint64_t> free_bytes(const std::string& path) = 0;
  // Takes an exclusive lock on path (created if missing) without waiting; IOError naming the
  // path when another process (or another open handle) holds it.
  virtual Result<std::unique_ptr<FileLock>> lock(const std::string& path) = 0;

  // The process-wide POSIX implementation (never destroyed).
  static Env& posix();
};

}  // namespace zkit::spool
