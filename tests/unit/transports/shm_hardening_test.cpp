// The shm transport against garbage: corrupted shared memory, strangers and impostors on the
// sockets, bad arguments; and resource hygiene (nothing in /dev/shm, no descriptor leaks).
// Both ranks live in this thread, driven alternately.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "shm_test_util.h"

namespace loom::transport::shm::testing {
namespace {

#define ASSERT_OK(expr)                      \
  do {                                       \
    ::loom::Status s_ = (expr);              \
    ASSERT_TRUE(s_.isOk()) << s_.toString(); \
  } while (0)

struct LocalPair {
  std::unique_ptr<RankEnv> a, b;  // ranks 0 and 1
  Connection* ca = nullptr;
  Connection* cb = nullptr;

  Status make(const ShmOptions& options, const Secret& secretB = testSecret()) {
    uint64_t hash = randomCommHash();
    LOOM_ASSIGN_OR_RETURN(a, makeRank(0, 2, hash, testSecret(), options));
    LOOM_ASSIGN_OR_RETURN(b, makeRank(1, 2, hash, secretB, options));
    a->peerAddress = b->transport->localAddress();
    b->peerAddress = a->transport->localAddress();
    LOOM_ASSIGN_OR_RETURN(ca, a->connect(0));
    LOOM_ASSIGN_OR_RETURN(cb, b->connect(0));
    return Status::ok();
  }
  // Drives both until done(); returns the first error of either.
  Status drive(const std::function<bool()>& done, int64_t timeoutMs = 5000) {
    Deadline deadline = Deadline::afterMs(timeoutMs);
    for (;;) {
      LOOM_RETURN_IF_ERROR(a->progressAll());
      LOOM_RETURN_IF_ERROR(b->progressAll());
      if (done()) return Status::ok();
      if (deadline.expired()) return timeoutError("LocalPair::drive timed out");
    }
  }
  Status connectBoth() {
    return drive([&] { return b->shm(cb)->readyForTesting() && a->shm(ca)->readyForTesting(); });
  }
};

// Rank 0 puts one 100-byte message (tag 1) in rank 1's ring; `corrupt` then damages the slot;
// rank 1's receive must fail with a RemoteError naming rank 0.
void expectCorruptionDetected(const std::function<void(SlotHeader*)>& corrupt,
                              bool singleCopy = false) {
  ShmOptions options;
  options.directCopy = singleCopy;
  LocalPair p;
  ASSERT_OK(p.make(options));
  ASSERT_OK(p.connectBoth());
  std::vector<uint8_t> out(100, 1), in(100);
  ASSERT_OK(p.ca->postSend(out.data(), out.size(), 1));
  ASSERT_OK(p.drive([&] { return p.ca->sendsCompleted() == 1; }));
  Ring* ring = p.b->shm(p.cb)->receiveRingForTesting();
  ASSERT_NE(ring, nullptr);
  corrupt(ring->slot(0));
  ASSERT_OK(p.cb->postRecv(in.data(), in.size(), 1));
  Status s = p.drive([&] { return p.cb->recvsCompleted() == 1; });
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find("rank 0"), std::string::npos) << s.message();
  EXPECT_EQ(p.cb->progress().code(), Code::kRemoteError) << "error must be sticky";
}

TEST(ShmHardeningTest, OversizedFragmentIsRemoteError) {
  expectCorruptionDetected([](SlotHeader* h) { h->fragmentBytes = 0xfffffff0u; });
}

TEST(ShmHardeningTest, FragmentLargerThanTheMessageIsRemoteError) {
  expectCorruptionDetected([](SlotHeader* h) { h->fragmentBytes = 101; });
}

TEST(ShmHardeningTest, HugeTotalSizeIsRemoteError) {
  expectCorruptionDetected([](SlotHeader* h) { h->totalBytes = uint64_t{1} << 62; });
}

TEST(ShmHardeningTest, UnknownSlotKindIsRemoteError) {
  expectCorruptionDetected([](SlotHeader* h) { h->kind = 77; });
}

TEST(ShmHardeningTest, GarbageSequenceWordIsRemoteError) {
  expectCorruptionDetected([](SlotHeader* h) { h->seq.store(0xdeadbeefcafeull); });
}

TEST(ShmHardeningTest, CmaDescriptorThatWasNotAgreedIsRemoteError) {
  expectCorruptionDetected([](SlotHeader* h) {
    h->kind = static_cast<uint32_t>(SlotKind::kCma);
    uint64_t address = 0x1000;
    std::memcpy(Ring::payload(h), &address, sizeof(address));
  });
}

// A forged direct-copy slot has no matching entry in the sender's private table: the address
// never comes from shared memory, so nothing is dereferenced.
TEST(ShmHardeningTest, ForgedDirectCopySlotIsRemoteError) {
  expectCorruptionDetected(
      [](SlotHeader* h) { h->kind = static_cast<uint32_t>(SlotKind::kDirect); },
      /*singleCopy=*/true);
}

// Also not on a later lap, where the table entry of the same index holds an earlier (and by
// now completed) direct send.
TEST(ShmHardeningTest, ForgedDirectCopySlotOnALaterLapIsRemoteError) {
  LocalPair p;
  ASSERT_OK(p.make(ShmOptions()));
  ASSERT_OK(p.connectBoth());
  uint32_t slots = ShmOptions().geometry.slotCount;
  size_t big = ShmOptions().directMinBytes;
  std::vector<uint8_t> out(big, 1), in(big);
  for (uint32_t i = 0; i < slots; ++i) {  // one direct send per slot index
    ASSERT_OK(p.ca->postSend(out.data(), big, 0));
    ASSERT_OK(p.cb->postRecv(in.data(), big, 0));
    ASSERT_OK(p.drive(
        [&] { return p.cb->recvsCompleted() == i + 1 && p.ca->sendsCompleted() == i + 1; }));
  }
  ASSERT_OK(p.ca->postSend(out.data(), 100, 0));  // a FIFO message in slot index 0 again
  ASSERT_OK(p.drive([&] { return p.ca->sendsCompleted() == slots + 1; }));
  SlotHeader* h = p.b->shm(p.cb)->receiveRingForTesting()->slot(slots);
  h->kind = static_cast<uint32_t>(SlotKind::kDirect);
  h->totalBytes = big;  // as the stale entry says
  ASSERT_OK(p.cb->postRecv(in.data(), big, 0));
  Status s = p.drive([&] { return p.cb->recvsCompleted() == slots + 1; });
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find("without a matching send"), std::string::npos) << s.message();
}

TEST(ShmHardeningTest, CorruptedFreeCounterIsRemoteErrorForTheSender) {
  LocalPair p;
  ASSERT_OK(p.make(ShmOptions()));
  ASSERT_OK(p.connectBoth());
  p.a->shm(p.ca)->sendRingForTesting()->control()->tail.store(uint64_t{1} << 40);
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 20; ++i)
    ASSERT_OK(p.ca->postSend(out.data(), out.size(), i));
  Status s = p.drive([&] { return p.ca->sendsCompleted() == 20; });
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find("corrupted"), std::string::npos) << s.message();
}

TEST(ShmHardeningTest, ConnectorWithoutTheSecretIsRejectedAndTheRealPeerStillConnects) {
  Secret wrong = testSecret();
  wrong[3] ^= 1;
  uint64_t hash = randomCommHash();
  auto real1 = makeRank(1, 2, hash, testSecret(), ShmOptions());
  auto stranger0 = makeRank(0, 2, hash, wrong, ShmOptions());
  auto real0 = makeRank(0, 2, hash, testSecret(), ShmOptions());
  ASSERT_OK(real1.status());
  ASSERT_OK(stranger0.status());
  ASSERT_OK(real0.status());
  std::string address1 = (*real1)->transport->localAddress();
  auto bad = (*stranger0)->transport->connect(1, 0, address1);
  ASSERT_OK(bad.status());
  auto good1 = (*real1)->transport->connect(0, 0, (*real0)->transport->localAddress());
  ASSERT_OK(good1.status());
  Deadline deadline = Deadline::afterMs(5000);
  Status s;
  while (s.isOk() && !deadline.expired()) {
    s = (*bad)->progress();
    ASSERT_OK((*good1)->progress());
  }
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  auto good0 = (*real0)->transport->connect(1, 0, address1);
  ASSERT_OK(good0.status());
  std::vector<uint8_t> out(10, 3), in(10);
  ASSERT_OK((*good0)->postSend(out.data(), 10, 0));
  ASSERT_OK((*good1)->postRecv(in.data(), 10, 0));
  while ((*good1)->recvsCompleted() == 0 && !deadline.expired()) {
    ASSERT_OK((*good0)->progress());
    ASSERT_OK((*good1)->progress());
  }
  EXPECT_EQ(in, out);
}

TEST(ShmHardeningTest, ListenerWithoutTheSecretIsNotGivenMemory) {
  Secret wrong = testSecret();
  wrong[0] ^= 0x80;
  LocalPair p;
  ASSERT_OK(p.make(ShmOptions(), wrong));  // rank 1 (the accepter) is the impostor
  Status s = p.drive([] { return false; }, 5000);
  EXPECT_EQ(s.code(), Code::kRemoteError) << s.toString();
  EXPECT_NE(s.message().find("failed to prove"), std::string::npos) << s.message();
  EXPECT_EQ(p.b->shm(p.cb)->sendRingForTesting(), nullptr);
}

TEST(ShmHardeningTest, GarbageOnTheListeningSocketIsDropped) {
  LocalPair p;
  ASSERT_OK(p.make(ShmOptions()));
  std::string name = p.b->transport->localAddress();
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a),
                      offsetof(sockaddr_un, sun_path) + 1 + name.size()),
            0);
  ASSERT_EQ(::send(fd, "garbage", 7, 0), 7);
  ASSERT_OK(p.connectBoth());
  char byte;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "the stranger's socket must be closed";
  ::close(fd);
}

TEST(ShmHardeningTest, BadArgumentsAreInvalidArgument) {
  auto env = makeRank(0, 2, randomCommHash(), testSecret(), ShmOptions());
  ASSERT_OK(env.status());
  Transport& t = *(*env)->transport;
  EXPECT_EQ(t.connect(2, 0, "loom-shm-1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(0, 0, t.localAddress()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(1, -1, "loom-shm-1").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(1, 0, "/etc/passwd").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(t.connect(1, 0, std::string("loom-shm-\0x", 11)).status().code(),
            Code::kInvalidArgument);
  ShmOptions bad;
  bad.geometry.slotBytes = 1000;
  EXPECT_EQ(makeRank(0, 2, 1, testSecret(), bad).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE((RingGeometry{65536, 8}.validate(true).isOk()));
  EXPECT_EQ((RingGeometry{65536, 1u << 20}.validate(true).code()), Code::kRemoteError);
  EXPECT_EQ((RingGeometry{1u << 31, 8}.validate(true).code()), Code::kRemoteError);
}

// Entries of dir, leaving out the named segments a host window (runtime/direct.h) has while a
// communicator initialises: another test running beside this one (ctest -j) may be doing that,
// and this test is about the shm transport, which names nothing.
size_t countEntries(const char* dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir)) {
    while (dirent* e = ::readdir(d))
      n += std::string(e->d_name).rfind("loom-w-", 0) != 0;
    ::closedir(d);
  }
  return n;
}

TEST(ShmHardeningTest, NothingLeftInDevShmAndNoDescriptorsLeaked) {
  size_t shmBefore = countEntries("/dev/shm");
  size_t fdsBefore = countEntries("/proc/self/fd");
  {
    LocalPair p;
    ASSERT_OK(p.make(ShmOptions()));
    std::vector<uint8_t> out(1 << 20, 1), in(1 << 20);
    ASSERT_OK(p.ca->postSend(out.data(), out.size(), 0));
    ASSERT_OK(p.cb->postRecv(in.data(), in.size(), 0));
    ASSERT_OK(p.drive([&] { return p.cb->recvsCompleted() == 1 && p.ca->sendsCompleted() == 1; }));
    EXPECT_EQ(countEntries("/dev/shm"), shmBefore);
    ASSERT_OK(p.ca->close(Deadline::afterMs(1000)));
  }
  EXPECT_EQ(countEntries("/dev/shm"), shmBefore);
  EXPECT_EQ(countEntries("/proc/self/fd"), fdsBefore);
}

}  // namespace
}  // namespace loom::transport::shm::testing
