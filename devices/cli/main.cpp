// `zkit`: the command-line front end. The subcommands are registered in CMakeLists.txt
// (ZKIT_SUBCOMMANDS), which generates subcommands.inc; cli.hpp says how to add one.
#include "cli.hpp"

#define ZKIT_SUBCOMMAND(symbol) extern const zkit::cli::Subcommand symbol##_subcommand;
#include "subcommands.inc"
#undef ZKIT_SUBCOMMAND

int main(int argc, char** argv) {
  const std::vector<const zkit::cli::Subcommand*> commands = {
#define ZKIT_SUBCOMMAND(symbol) &symbol##_subcommand,
#include "subcommands.inc"
#undef ZKIT_SUBCOMMAND
  };
  return zkit::cli::run_main(argc, argv, commands);
}
