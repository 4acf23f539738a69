// Consumer group state: a stub with the final API (the implementation follows).
#include "zkit/spool/group.hpp"

#include "zkit/json.hpp"

namespace zkit::spool {

bool valid_group_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name == "." || name == "..") return false;
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string GroupStats::to_json() const { return "{}"; }

struct Group::Impl {
  std::string name;
};

Group::Group(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Group::Group(Group&&) noexcept = default;
Group& Group::operator=(Group&&) noexcept = default;
Group::~Group() = default;

Result<Group> Group::open(Store&, std::string name, GroupOptions, Position) {
  if (!valid_group_name(name)) return Status::invalid_argument("bad group name '" + name + "'");
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(name);
  return Group(std::move(impl));
}
const std::string& Group::name() const noexcept { return impl_->name; }
bool Group::created() const noexcept { return true; }
Result<std::optional<Delivery>> Group::next(std::chrono::steady_clock::time_point) {
  return std::optional<Delivery>();
}
Status Group::ack(Position) { return Status::unsupported("not implemented yet"); }
Result<bool> Group::release(Position, std::chrono::steady_clock::time_point) {
  return Status::unsupported("not implemented yet");
}
std::optional<std::chrono::steady_clock::time_point> Group::next_due() const { return {}; }
Status Group::reset(Position) { return Status::unsupported("not implemented yet"); }
Result<std::uint64_t> Group::replay_dead_letters() { return Status::unsupported("not implemented yet"); }
Status Group::persist_if_due(std::chrono::steady_clock::time_point) { return {}; }
Status Group::persist() { return {}; }
std::optional<std::chrono::steady_clock::time_point> Group::persist_due() const { return {}; }
Position Group::floor() const noexcept { return {}; }
GroupStats Group::stats() const { return {}; }

Result<std::vector<GroupInfo>> list_groups(const std::string&, Env*) {
  return std::vector<GroupInfo>();
}
Status delete_group(const std::string&, const std::string& name, Env*) {
  return Status::not_found("no group " + name);
}
std::string dead_letter_dir(const std::string& dir, const std::string& name) {
  return dir + "/dead/" + name;
}

}  // namespace zkit::spool
