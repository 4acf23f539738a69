// Starts and stops a spool node (zkit::spool_node, over zkit::spool, zkit::patterns, zkit::core) on
// loopback in the directory argv[1], and a Pusher on inproc: the installed shared libraries and
// their private dependencies load and work together in a program built outside zkit's tree.
#include <zkit/pipeline.hpp>
#include <zkit/spool_node.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  zmq::context_t ctx;
  zkit::SpoolNodeOptions o;
  o.store.dir = argv[1];
  o.listen = "tcp://127.0.0.1:*";
  o.forward = "tcp://127.0.0.1:1";  // nobody there: the node just waits for it
  o.linger = std::chrono::milliseconds(0);
  zkit::SpoolNode node(ctx, o);
  const bool listening = node.listen_endpoint().starts_with("tcp://127.0.0.1:");
  const zkit::Status st = node.shutdown();
  const std::string stats = node.stats().to_json();

  zkit::Pusher push(ctx);
  push.bind("inproc://consumer");
  push.close();
  std::printf("spool node listened on %s, shutdown %s\n", node.listen_endpoint().c_str(),
              st ? "ok" : st.to_string().c_str());
  return listening && st && stats.starts_with("{") ? 0 : 1;
}
