// `zkit`: the command-line front end. The subcommands are registered in CMakeLists.txt
// (ZKIT_SUBCOMMANDS), which generates subcommands.inc; cli.hpp says how to add one.
#include <iostream>
#include <string_view>

#include "cli.hpp"
#include "zkit/version.hpp"

#define ZKIT_SUBCOMMAND(symbol) extern const zkit::cli::Subcommand symbol##_subcommand;
#include "subcommands.inc"
#undef ZKIT_SUBCOMMAND

int main(int argc, char** argv) {
  // Here rather than in cli.cpp: only this small file recompiles when the git description changes.
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::cout << "zkit " << ZKIT_VERSION_STRING << " (" << ZKIT_GIT_DESCRIPTION << ")\n";
    return 0;
  }
  const std::vector<const zkit::cli::Subcommand*> commands = {
#define ZKIT_SUBCOMMAND(symbol) &symbol##_subcommand,
#include "subcommands.inc"
#undef ZKIT_SUBCOMMAND
  };
  return zkit::cli::run_main(argc, argv, commands);
}
