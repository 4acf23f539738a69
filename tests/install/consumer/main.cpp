// Encodes and decodes one batch through the installed zkit::core, and prints the installed
// version header's figures (tests/install/run.cmake compares them with the build's).
#include <zkit/envelope.hpp>
#include <zkit/version.hpp>

#include <cstdio>

static_assert(ZKIT_VERSION == ZKIT_VERSION_MAJOR * 10000 + ZKIT_VERSION_MINOR * 100 + ZKIT_VERSION_PATCH);

int main() {
  zkit::envelope::Encoder enc;
  enc.begin(1);
  enc.add(std::string_view("installed"));
  auto batch = zkit::envelope::decode(enc.finish(1, 0));
  if (!batch.is_ok() || batch->size() != 1) return 1;
  std::printf("version %s (%s)\n", ZKIT_VERSION_STRING, ZKIT_GIT_DESCRIPTION);
  return 0;
}
