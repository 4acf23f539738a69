// spool-inspect: verify and dump a spool directory through the log reader, read-only.
#include "zkit/spool/inspect.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <ostream>

#include "group_format.hpp"
#include "log.hpp"
#include "log_format.hpp"
#include "segment_files.hpp"
#include "zkit/envelope.hpp"

namespace zkit::spool {
namespace {

struct RecordAt {
  std::string file;
  std::uint64_t offset;
  std::uint64_t end;
  log::RecordView view;
};

// Calls on_record for each logical record of every segment and on_corrupt for each damaged part.
Status scan(Env& env, const std::string& dir, const std::function<void(const RecordAt&)>& on_record,
            const std::function<void(const CorruptRecord&)>& on_corrupt,
            const std::function<void(const VerifyReport::SegmentInfo&)>& on_segment) {
  auto numbers = files::list_segments(env, dir);
  if (!numbers) return numbers.status();
  std::optional<std::uint64_t> previous;
  for (std::uint64_t number : numbers.value()) {
    const std::string name = files::segment_name(number);
    if (previous && number != *previous + 1) {
      on_corrupt({files::segment_name(*previous + 1), 0, 0,
                  "segment file missing (up to " + files::segment_name(number - 1) + ")"});
    }
    previous = number;
    const std::string path = dir + "/" + name;
    VerifyReport::SegmentInfo info{name, 0, 0, 0, 0};
    auto size = env.file_size(path);
    auto file = size ? env.open_readable(path) : Result<std::unique_ptr<RandomAccessFile>>(size.status());
    if (!file) {
      on_corrupt({name, 0, 0, file.status().to_string()});
      on_segment(info);
      continue;
    }
    info.bytes = size.value();
    auto header = log::read_segment_header(*file.value());
    auto hdr = log::decode_segment_header(header ? header.value() : std::vector<std::byte>{});
    if (hdr && hdr.value() != number) {
      hdr = Status::corruption("segment header names segment " + std::to_string(hdr.value()));
    }
    if (!hdr) {
      on_corrupt({name, 0, info.bytes, hdr.status().message()});
      on_segment(info);
      continue;
    }
    std::uint64_t good_end = format::kSegmentHeaderSize;
    log::Reader reader(*file.value(), format::kSegmentHeaderSize, info.bytes,
                       [&](const log::Corruption& c) {
                         on_corrupt({name, c.offset, c.bytes, c.reason});
                       });
    std::span<const std::byte> rec;
    while (true) {
      auto got = reader.next(rec);
      if (!got) {
        on_corrupt({name, reader.record_end(), 0, got.status().to_string()});
        break;
      }
      if (!got.value()) break;
      good_end = reader.record_end();
      auto v = log::decode_record(rec);
      if (!v) {
        on_corrupt({name, reader.record_offset(), reader.record_end() - reader.record_offset(),
                    v.status().message()});
        continue;
      }
      if (v.value().is_batch()) {
        ++info.batches;
        info.messages += v.value().header.count;
      }
      on_record({name, reader.record_offset(), reader.record_end(), v.value()});
    }
    info.tail_bytes = info.bytes > good_end ? info.bytes - good_end : 0;
    on_segment(info);
  }
  return {};
}

// The PRODUCERS file's damage (a bad header, corrupt or foreign records); a torn tail is none.
void check_producers_file(Env& env, const std::string& dir,
                          const std::function<void(const CorruptRecord&)>& on_corrupt) {
  const std::string name = format::kProducersName;
  const std::string path = dir + "/" + name;
  if (!env.exists(path)) return;
  auto size = env.file_size(path);
  auto file = size ? env.open_readable(path) : Result<std::unique_ptr<RandomAccessFile>>(size.status());
  if (!file) return on_corrupt({name, 0, 0, file.status().to_string()});
  auto header = log::read_segment_header(*file.value());
  auto hdr = log::decode_segment_header(header ? header.value() : std::vector<std::byte>{});
  if (!hdr || hdr.value() != 0) {
    return on_corrupt({name, 0, size.value(), hdr ? "header names segment " +
                       std::to_string(hdr.value()) : hdr.status().message()});
  }
  log::Reader reader(*file.value(), format::kSegmentHeaderSize, size.value(),
                     [&](const log::Corruption& c) { on_corrupt({name, c.offset, c.bytes, c.reason}); });
  std::span<const std::byte> rec;
  while (true) {
    auto got = reader.next(rec);
    if (!got) return on_corrupt({name, reader.record_end(), 0, got.status().to_string()});
    if (!got.value()) return;
    auto v = log::decode_record(rec);
    if (!v || !v.value().is_producers()) {
      on_corrupt({name, reader.record_offset(), reader.record_end() - reader.record_offset(),
                  v ? "not a producers record" : v.status().message()});
    }
  }
}

std::string text_of(std::span<const std::byte> b, std::size_t max) {
  std::string s;
  std::size_t n = max == 0 ? b.size() : std::min(b.size(), max);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = std::to_integer<unsigned char>(b[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      s.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      s += buf;
    }
  }
  if (n < b.size()) s += "...";
  return s;
}

std::string hex_of(std::span<const std::byte> b, std::size_t max) {
  std::string s;
  std::size_t n = max == 0 ? b.size() : std::min(b.size(), max);
  for (std::size_t i = 0; i < n; ++i) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%02x", std::to_integer<unsigned>(b[i]));
    s += buf;
  }
  if (n < b.size()) s += "...";
  return s;
}

// A message as a JSON string when it is UTF-8, else {"hex": ...}. The JSON library decides what
// UTF-8 is (overlong forms and surrogates are not), as `zkit recv` does.
nlohmann::json payload_json(std::span<const std::byte> m) {
  nlohmann::json text = std::string(reinterpret_cast<const char*>(m.data()), m.size());
  try {
    (void)text.dump();
    return text;
  } catch (const nlohmann::json::type_error&) {  // 316: invalid UTF-8
    return {{"hex", hex_of(m, 0)}};
  }
}

// Whether dir looks like a spool: a segment file, CURSOR, PRODUCERS or LOCK (Store::open makes
// LOCK and the first segment at once). A directory with none of them is another directory given by
// mistake, not an empty spool.
Status check_spool_dir(Env& env, const std::string& dir) {
  if (!env.exists(dir)) return Status::not_found("spool directory " + dir + " does not exist");
  auto names = env.list_dir(dir);
  if (!names) return names.status();
  for (const auto& n : names.value()) {
    if (files::parse_segment_name(n) || n == format::kCursorName || n == format::kLockName ||
        n == format::kProducersName) {
      return {};
    }
  }
  return Status::invalid_argument(dir + " is not a spool directory (no segment file, " +
                                  format::kCursorName + ", " + format::kProducersName + " or " +
                                  format::kLockName + ")");
}

}  // namespace

Result<VerifyReport> verify(const std::string& dir, Env* env_in) {
  Env& env = env_in ? *env_in : Env::posix();
  if (Status s = check_spool_dir(env, dir); !s) return s;
  VerifyReport report;
  auto cursor = files::read_cursor(env, dir);
  if (cursor) {
    report.cursor = cursor.value();
  } else if (cursor.status().code() != Code::kNotFound) {
    report.corrupt.push_back({format::kCursorName, 0, format::kCursorFileSize, cursor.status().message()});
  }
  const Position from = report.cursor.value_or(Position{});
  std::map<std::uint64_t, VerifyReport::ProducerBacklog> backlog;
  Status s = scan(
      env, dir,
      [&](const RecordAt& r) {
        const auto& h = r.view.header;
        if (!r.view.is_batch()) return;
        ++report.batches;
        report.messages += h.count;
        auto number = files::parse_segment_name(r.file).value_or(0);
        if (Position{number, r.offset} < from) return;
        auto& p = backlog[h.producer_id];
        if (p.batches == 0) p.first_seq = h.seq;
        p.producer_id = h.producer_id;
        ++p.batches;
        p.messages += h.count;
        p.bytes += r.view.body.size();
        p.last_seq = std::max(p.last_seq, h.seq);
      },
      [&](const CorruptRecord& c) { report.corrupt.push_back(c); },
      [&](const VerifyReport::SegmentInfo& i) { report.segments.push_back(i); });
  if (!s) return s;
  check_producers_file(env, dir, [&](const CorruptRecord& c) { report.corrupt.push_back(c); });
  for (auto& [id, p] : backlog) report.backlog.push_back(p);
  auto names = env.list_dir(dir);
  if (!names) return names.status();
  for (const auto& name : names.value()) {
    if (!files::parse_segment_name(name) && name != format::kCursorName &&
        name != format::kCursorTempName && name != format::kLockName &&
        name != format::kProducersName && name != format::kProducersTempName &&
        name != group_format::kGroupsDir && name != group_format::kDeadDir) {
      report.foreign.push_back(name);
    }
  }
  std::sort(report.foreign.begin(), report.foreign.end());
  if (auto groups = list_groups(dir, &env)) {
    report.groups = std::move(groups.value());
  } else {
    report.corrupt.push_back({group_format::kGroupsDir, 0, 0, groups.status().message()});
  }
  return report;
}

void print(const VerifyReport& r, std::ostream& out) {
  out << "segments: " << r.segments.size() << "\n";
  for (const auto& s : r.segments) {
    out << "  " << s.file << "  " << s.bytes << " bytes  " << s.batches << " batches  "
        << s.messages << " messages";
    if (s.tail_bytes > 0) out << "  torn tail " << s.tail_bytes << " bytes";
    out << "\n";
  }
  out << "cursor: " << (r.cursor ? r.cursor->to_string() : std::string("none (start of log)"))
      << "\n";
  out << "records: " << r.batches << " batches, " << r.messages << " messages\n";
  out << "backlog by producer: " << r.backlog.size() << "\n";
  for (const auto& p : r.backlog) {
    out << "  producer " << p.producer_id << ": " << p.batches << " batches, " << p.messages
        << " messages, " << p.bytes << " bytes, seq " << p.first_seq << ".." << p.last_seq << "\n";
  }
  if (!r.groups.empty()) {
    out << "groups: " << r.groups.size() << "\n";
    for (const auto& g : r.groups) {
      out << "  " << g.name << ": floor " << g.floor.to_string() << ", " << g.pending
          << " pending, " << g.acked_above_floor << " acked above the floor, "
          << g.stats.redelivered << " redelivered, " << g.stats.dead_lettered << " dead-lettered\n";
    }
  }
  out << "foreign files: " << r.foreign.size() << "\n";
  for (const auto& f : r.foreign) out << "  " << f << " (not a spool file; ignored)\n";
  out << "corrupt: " << r.corrupt.size() << "\n";
  for (const auto& c : r.corrupt) {
    out << "  " << c.file << " offset " << c.offset << " (" << c.bytes << " bytes): " << c.reason
        << "\n";
  }
}

Status dump(const std::string& dir, std::ostream& out, const DumpOptions& opt, Env* env_in) {
  Env& env = env_in ? *env_in : Env::posix();
  if (Status s = check_spool_dir(env, dir); !s) return s;
  using P = DumpOptions::Payloads;
  return scan(
      env, dir,
      [&](const RecordAt& r) {
        const auto& h = r.view.header;
        if (opt.producer_id && (!r.view.is_batch() || h.producer_id != *opt.producer_id)) {
          return;
        }
        if (opt.payloads == P::kJson) {
          nlohmann::json j;
          j["file"] = r.file;
          j["offset"] = r.offset;
          if (r.view.is_producers()) {
            j["kind"] = "producers";
            nlohmann::json list = nlohmann::json::array();
            for (std::uint32_t i = 0; i < h.count; ++i) {
              const log::ProducerEntry e = log::producer_entry(r.view, i);
              list.push_back({{"scope", e.scope}, {"producer_id", e.producer},
                              {"highest_seq", e.seq}});
            }
            j["producers"] = list;
          } else {
            j["kind"] = "batch";
            j["producer_id"] = h.producer_id;
            j["seq"] = h.seq;
            j["scope"] = r.view.scope;
            j["arrival_ns"] = h.arrival_ns;
            j["messages"] = h.count;
            j["frame_bytes"] = r.view.body.size();
            auto batch = envelope::decode(r.view.body);
            if (!batch) {
              j["error"] = batch.status().to_string();
            } else {
              nlohmann::json list = nlohmann::json::array();
              for (auto m : batch.value()) list.push_back(payload_json(m));
              j["payloads"] = list;
            }
          }
          // Every string in j is UTF-8 by now; replace guards the line against one that is not.
          out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
          return;
        }
        out << r.file << "@" << r.offset;
        if (r.view.is_producers()) {
          out << " producers-snapshot entries=" << h.count << "\n";
          return;
        }
        out << " batch producer=" << h.producer_id << " seq=" << h.seq;
        if (r.view.scope != 0) out << " scope=" << r.view.scope;
        out
            << " arrival_ns=" << h.arrival_ns << " messages=" << h.count
            << " frame_bytes=" << r.view.body.size() << "\n";
        if (opt.payloads == P::kNone) return;
        auto batch = envelope::decode(r.view.body);
        if (!batch) {
          out << "  undecodable batch: " << batch.status().to_string() << "\n";
          return;
        }
        std::size_t i = 0;
        for (auto m : batch.value()) {
          out << "  [" << i++ << "] " << m.size() << " bytes: "
              << (opt.payloads == P::kHex ? hex_of(m, opt.max_payload_bytes)
                                          : text_of(m, opt.max_payload_bytes))
              << "\n";
        }
      },
      [&](const CorruptRecord& c) {
        if (opt.payloads == P::kJson) {
          out << nlohmann::json{{"file", c.file}, {"offset", c.offset}, {"corrupt_bytes", c.bytes},
                                {"reason", c.reason}}
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
        } else {
          out << c.file << "@" << c.offset << " CORRUPT " << c.bytes << " bytes: " << c.reason << "\n";
        }
      },
      [](const VerifyReport::SegmentInfo&) {});
}

}  // namespace zkit::spool
