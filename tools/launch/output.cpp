#include "output.h"

#include <errno.h>
#include <unistd.h>

#include <cstring>

namespace loom::launch {

void writeAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

bool LineTagger::drain(int fd) {
  char buf[16384];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      feed(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;  // 0: end of file; < 0: error
  }
}

void LineTagger::finish() {
  if (!partial_.empty()) writeLine(partial_.data(), partial_.size(), true);
  partial_.clear();
}

void LineTagger::feed(const char* data, size_t size) {
  while (size > 0) {
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', size));
    if (nl == nullptr) {
      partial_.append(data, size);
      if (partial_.size() >= kMaxLineBytes) finish();
      return;
    }
    const size_t len = static_cast<size_t>(nl - data) + 1;
    if (partial_.empty()) {
      writeLine(data, len, false);
    } else {
      partial_.append(data, len);
      writeLine(partial_.data(), partial_.size(), false);
      partial_.clear();
    }
    data += len;
    size -= len;
  }
}

void LineTagger::writeLine(const char* data, size_t size, bool addNewline) {
  // One write per line, so lines of different ranks never interleave mid-line.
  std::string line;
  line.reserve(prefix_.size() + size + 1);
  line.append(prefix_).append(data, size);
  if (addNewline) line.push_back('\n');
  writeAll(outFd_, line.data(), line.size());
}

}  // namespace loom::launch
