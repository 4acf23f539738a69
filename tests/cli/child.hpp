// `zkit args...` as a child process for the command tests: stdin from a file, stdout and stderr to
// files in a TempDir named after the child.
#pragma once

#include "process.hpp"

namespace zkit::test {

class Zkit : public Process {
 public:
  Zkit(const TempDir& dir, const std::string& name, std::vector<std::string> args,
       const std::string& in = "/dev/null", const std::string& program = ZKIT_EXE)
      : Process(with_program(program, std::move(args)), dir.file(name + ".out"),
                dir.file(name + ".err"), in) {}

 private:
  static std::vector<std::string> with_program(const std::string& program,
                                               std::vector<std::string> args) {
    args.insert(args.begin(), program);
    return args;
  }
};

}  // namespace zkit::test
