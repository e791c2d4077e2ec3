#include "runtime/testing.h"

#include <mutex>

namespace loom::runtime {

namespace {
std::mutex& mu() {
  static auto* m = new std::mutex();
  return *m;
}
TransportDecorator& decorator() {
  static auto* d = new TransportDecorator();
  return *d;
}
}  // namespace

void setTransportDecoratorForTesting(TransportDecorator d) {
  std::lock_guard<std::mutex> lock(mu());
  decorator() = std::move(d);
}

TransportDecorator transportDecoratorForTesting() {
  std::lock_guard<std::mutex> lock(mu());
  return decorator();
}

}  // namespace loom::runtime
