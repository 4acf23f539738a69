// Encodes and decodes one batch through the installed zkit::core.
#include <zkit/envelope.hpp>

int main() {
  zkit::envelope::Encoder enc;
  enc.begin(1);
  enc.add(std::string_view("installed"));
  auto batch = zkit::envelope::decode(enc.finish(1, 0));
  return batch.is_ok() && batch->size() == 1 ? 0 : 1;
}
