// Tagged output: the bytes a rank writes to a pipe, cut into lines, each written to the
// launcher's own stdout or stderr behind a prefix such as "[rank3]: " (mpirun --tag-output).
//
// Thread-safety: one LineTagger per (rank, stream), used by the launcher's one thread.
#pragma once

#include <string>

namespace loom::launch {

class LineTagger {
 public:
  LineTagger(std::string prefix, int outFd) : prefix_(std::move(prefix)), outFd_(outFd) {}

  // Reads what is available from `fd` (non-blocking). Returns false at end of file or on a
  // read error (the caller stops polling fd), true otherwise.
  bool drain(int fd);
  // Writes a last unterminated line, if any (at end of file).
  void finish();

 private:
  void feed(const char* data, size_t size);
  void writeLine(const char* data, size_t size, bool addNewline);

  static constexpr size_t kMaxLineBytes = 64 * 1024;  // longer lines are cut
  std::string prefix_;
  int outFd_;
  std::string partial_;  // bytes after the last newline
};

// write(2) of all bytes, retrying on EINTR and short writes; gives up silently on other errors
// (a closed stdout must not kill the launcher: SIGPIPE is ignored there).
void writeAll(int fd, const char* data, size_t size);

}  // namespace loom::launch
