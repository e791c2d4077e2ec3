/*
 * nccl_test.c - loom's libnccl.so.2 through the NCCL API, from C.
 *
 * Built against compat's nccl.h (and, when CUDA's is installed, once more against NVIDIA's
 * nccl.h, then run with loom's library on LD_LIBRARY_PATH: the drop-in case). Ranks are threads
 * in this process or forked processes, rendezvous on 127.0.0.1. Every exported function is
 * called, with its error paths. Host memory only: device buffers go to loom's GPU path, whose
 * tests are tests/gpu (they need a GPU).
 *
 * usage: nccl_test basic|threads|nonblocking|single|procs|env
 * Every mode sets a deadline with alarm(): a hang fails the test instead of blocking ctest.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <nccl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int gFailures = 0;
static pthread_mutex_t gPrintMu = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond)                                                                           \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      pthread_mutex_lock(&gPrintMu);                                                          \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
              ncclGetLastError(NULL));                                                        \
      ++gFailures;                                                                            \
      pthread_mutex_unlock(&gPrintMu);                                                        \
    }                                                                                         \
  } while (0)

/* Expects `call` to return `want`; on an error, also that ncclGetLastError says something. */
#define EXPECT_RESULT(call, want)                                                                  \
  do {                                                                                             \
    ncclResult_t r_ = (call);                                                                      \
    if (r_ != (want)) {                                                                            \
      pthread_mutex_lock(&gPrintMu);                                                               \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d; last error: %s\n", __FILE__, __LINE__, \
              #call, (int)r_, ncclGetErrorString(r_), (int)(want), ncclGetLastError(NULL));        \
      ++gFailures;                                                                                 \
      pthread_mutex_unlock(&gPrintMu);                                                             \
    } else if ((want) != ncclSuccess && (want) != ncclInProgress) {                                \
      CHECK(strlen(ncclGetLastError(NULL)) > 0);                                                   \
    }                                                                                              \
  } while (0)
#define OK(call) EXPECT_RESULT(call, ncclSuccess)

static double nowSeconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Polls a non-blocking communicator until it leaves ncclInProgress (deadline 60 s). */
static ncclResult_t waitComm(ncclComm_t comm) {
  double end = nowSeconds() + 60;
  ncclResult_t state = ncclInProgress;
  while (nowSeconds() < end) {
    if (ncclCommGetAsyncError(comm, &state) != ncclSuccess) return ncclInternalError;
    if (state != ncclInProgress) return state;
    usleep(200);
  }
  return ncclInProgress;
}

/* ---------------------------------------------------------------- single-process basics */

static void testVersionAndErrors(void) {
  int v = 0;
  OK(ncclGetVersion(&v));
  CHECK(v == NCCL_VERSION_CODE && v == NCCL_VERSION(2, 28, 9));
  OK(pncclGetVersion(&v));
  EXPECT_RESULT(ncclGetVersion(NULL), ncclInvalidArgument);
  for (int r = ncclSuccess; r < ncclNumResults; ++r) {
    const char* s = ncclGetErrorString((ncclResult_t)r);
    CHECK(s && strlen(s) > 0 && strcmp(s, "unknown result code") != 0);
  }
  CHECK(strcmp(ncclGetErrorString((ncclResult_t)99), "unknown result code") == 0);
  CHECK(strcmp(pncclGetErrorString(ncclInProgress), ncclGetErrorString(ncclInProgress)) == 0);
  ncclResetDebugInit();
  pncclResetDebugInit();
  CHECK(pncclGetLastError(NULL) == ncclGetLastError(NULL));
}

static void testUniqueIdAndInitErrors(void) {
  ncclUniqueId id;
  OK(ncclGetUniqueId(&id));
  EXPECT_RESULT(ncclGetUniqueId(NULL), ncclInvalidArgument);
  ncclComm_t comm = (ncclComm_t)0x1;
  EXPECT_RESULT(ncclCommInitRank(NULL, 1, id, 0), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitRank(&comm, 0, id, 0), ncclInvalidArgument);
  CHECK(comm == NULL);
  EXPECT_RESULT(ncclCommInitRank(&comm, 2, id, 2), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitRank(&comm, 2, id, -1), ncclInvalidArgument);
  ncclConfig_t bad = NCCL_CONFIG_INITIALIZER;
  bad.magic = 0;
  EXPECT_RESULT(ncclCommInitRankConfig(&comm, 1, id, 0, &bad), ncclInvalidArgument);
  ncclConfig_t badBlocking = NCCL_CONFIG_INITIALIZER;
  badBlocking.blocking = 7;
  EXPECT_RESULT(ncclCommInitRankConfig(&comm, 1, id, 0, &badBlocking), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitRankScalable(&comm, 1, 0, 0, &id, NULL), ncclInvalidArgument);
  /* An id that no ncclGetUniqueId made (bad secret and address): init fails with a message. */
  ncclUniqueId garbage;
  memset(&garbage, 0xab, sizeof(garbage));
  ncclResult_t r = ncclCommInitRank(&comm, 1, garbage, 0);
  CHECK(r != ncclSuccess && r != ncclInProgress && comm == NULL);
  CHECK(strlen(ncclGetLastError(NULL)) > 0);
  /* Stale and NULL handles. */
  int n;
  EXPECT_RESULT(ncclCommCount(NULL, &n), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommCount((ncclComm_t)&garbage, &n), ncclInvalidArgument);
  OK(ncclCommDestroy(NULL));
  OK(ncclCommAbort(NULL));
  EXPECT_RESULT(ncclGroupEnd(), ncclInvalidUsage);
  ncclSimInfo_t sim = NCCL_SIM_INFO_INITIALIZER;
  sim.magic = 1;
  EXPECT_RESULT(ncclGroupSimulateEnd(&sim), ncclInvalidArgument);
}

static void testMemory(void) {
  void* p = NULL;
  OK(ncclMemAlloc(&p, 1000));
  CHECK(p != NULL && ((uintptr_t)p % 4096) == 0);
  memset(p, 1, 1000);
  OK(ncclMemFree(p));
  EXPECT_RESULT(ncclMemFree(p), ncclInvalidArgument); /* freed already */
  EXPECT_RESULT(ncclMemAlloc(NULL, 8), ncclInvalidArgument);
  OK(pncclMemAlloc(&p, 1));
  OK(pncclMemFree(p));
  OK(ncclMemFree(NULL));
}

/* Host entry points of NCCL's device API (nccl_device.h, not part of nccl.h): declared here
 * with opaque pointers; each returns ncclInvalidUsage (loom has no device-side API). */
typedef struct {
  int nRanks, rank, stride;
} TestTeam;
ncclResult_t ncclDevCommCreate(ncclComm_t comm, const void* reqs, void* outDevComm);
ncclResult_t pncclDevCommDestroy(ncclComm_t comm, const void* devComm);
ncclResult_t ncclLsaBarrierCreateRequirement(TestTeam team, int nBarriers, void* h, void* req);
ncclResult_t ncclGinBarrierCreateRequirement(ncclComm_t comm, TestTeam team, int nBarriers, void* h,
                                             void* req);
ncclResult_t ncclLLA2ACreateRequirement(int nBlocks, int nSlots, void* h, void* req);

static void testDeviceApi(ncclComm_t comm) {
  char opaque[256] = {0};
  TestTeam world = {1, 0, 1};
  EXPECT_RESULT(ncclDevCommCreate(comm, opaque, opaque), ncclInvalidUsage);
  CHECK(strstr(ncclGetLastError(NULL), "device API") != NULL);
  EXPECT_RESULT(pncclDevCommDestroy(comm, opaque), ncclInvalidUsage);
  EXPECT_RESULT(ncclLsaBarrierCreateRequirement(world, 1, opaque, opaque), ncclInvalidUsage);
  EXPECT_RESULT(ncclGinBarrierCreateRequirement(comm, world, 1, opaque, opaque), ncclInvalidUsage);
  EXPECT_RESULT(ncclLLA2ACreateRequirement(1, 1, opaque, opaque), ncclInvalidUsage);
}

/* A one-rank communicator: queries, ops, registration, windows, PreMulSum, error paths. */
static void testOneRank(void) {
  ncclUniqueId id;
  OK(ncclGetUniqueId(&id));
  ncclComm_t comm = NULL;
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.commName = "one";
  cfg.minCTAs = 4; /* GPU tuning: accepted, no effect */
  OK(ncclCommInitRankConfig(&comm, 1, id, 0, &cfg));
  int n = -1, rank = -1, dev = -1;
  OK(ncclCommCount(comm, &n));
  OK(ncclCommUserRank(comm, &rank));
  CHECK(n == 1 && rank == 0);
  EXPECT_RESULT(ncclCommCount(comm, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommUserRank(comm, NULL), ncclInvalidArgument);
  /* No CUDA in this process: the communicator has no device. */
  EXPECT_RESULT(ncclCommCuDevice(comm, &dev), ncclInvalidUsage);
  EXPECT_RESULT(ncclCommCuDevice(comm, NULL), ncclInvalidArgument);

  float a[4] = {1, 2, 3, 4}, b[4] = {0};
  OK(ncclAllReduce(a, b, 4, ncclFloat32, ncclSum, comm, NULL));
  CHECK(b[3] == 4);
  EXPECT_RESULT(ncclAllReduce(a, b, 4, (ncclDataType_t)99, ncclSum, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(a, b, 4, ncclFloat32, (ncclRedOp_t)77, comm, NULL),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(a, NULL, 4, ncclFloat32, ncclSum, comm, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclAllReduce(a, b, 4, ncclFloat32, ncclSum, NULL, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclBroadcast(a, b, 4, ncclFloat32, 1, comm, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclSend(a, 4, ncclFloat32, 5, comm, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclRecv(b, 4, ncclFloat32, -1, comm, NULL), ncclInvalidArgument);
  /* Overlapping buffers that are not NCCL's in-place layout (loom checks this). */
  EXPECT_RESULT(ncclAllReduce(a, a + 1, 2, ncclFloat32, ncclSum, comm, NULL), ncclInvalidArgument);
  /* A non-NULL stream is accepted (opaque) on host memory. */
  OK(ncclAllReduce(a, b, 4, ncclFloat32, ncclMax, comm, (cudaStream_t)0x1234));

  void* handle = NULL;
  OK(ncclCommRegister(comm, a, sizeof(a), &handle));
  CHECK(handle != NULL);
  OK(ncclCommDeregister(comm, handle));
  EXPECT_RESULT(ncclCommDeregister(comm, handle), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommRegister(comm, NULL, 8, &handle), ncclInvalidArgument);
  OK(pncclCommRegister(comm, b, sizeof(b), &handle));
  OK(pncclCommDeregister(comm, handle));
  ncclWindow_t win = NULL;
  EXPECT_RESULT(ncclCommWindowRegister(comm, a, sizeof(a), &win, NCCL_WIN_DEFAULT),
                ncclInvalidUsage);
  CHECK(strstr(ncclGetLastError(comm), "window") != NULL);
  EXPECT_RESULT(ncclCommWindowDeregister(comm, win), ncclInvalidUsage);
  EXPECT_RESULT(pncclCommWindowRegister(comm, a, sizeof(a), &win, 0), ncclInvalidUsage);
  EXPECT_RESULT(pncclCommWindowDeregister(comm, win), ncclInvalidUsage);

  ncclRedOp_t op;
  double scale = 0.5;
  EXPECT_RESULT(ncclRedOpCreatePreMulSum(&op, NULL, ncclFloat64, ncclScalarHostImmediate, comm),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclRedOpCreatePreMulSum(&op, &scale, (ncclDataType_t)40, ncclScalarDevice, comm),
                ncclInvalidArgument);
  OK(ncclRedOpCreatePreMulSum(&op, &scale, ncclFloat64, ncclScalarHostImmediate, comm));
  EXPECT_RESULT(ncclAllReduce(a, b, 4, ncclFloat32, op, comm, NULL), ncclInvalidArgument);
  OK(ncclRedOpDestroy(op, comm));
  EXPECT_RESULT(ncclRedOpDestroy(op, comm), ncclInvalidArgument);
  EXPECT_RESULT(pncclRedOpDestroy(ncclSum, comm), ncclInvalidArgument);

  testDeviceApi(comm);
  EXPECT_RESULT(ncclCommRevoke(comm, 3), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommShrink(comm, NULL, 0, NULL, NULL, 0), ncclInvalidArgument);
  ncclComm_t child = NULL;
  int self = 0;
  EXPECT_RESULT(ncclCommShrink(comm, &self, 1, &child, NULL, NCCL_SHRINK_DEFAULT),
                ncclInvalidArgument);
  EXPECT_RESULT(ncclCommShrink(comm, NULL, 0, &child, NULL, NCCL_SHRINK_ABORT), ncclInvalidUsage);
  EXPECT_RESULT(ncclCommSplit(comm, -5, 0, &child, NULL), ncclInvalidArgument);
  OK(ncclCommFinalize(comm));
  EXPECT_RESULT(ncclAllReduce(a, b, 4, ncclFloat32, ncclSum, comm, NULL), ncclInvalidUsage);
  OK(ncclCommDestroy(comm));
  EXPECT_RESULT(ncclCommDestroy(comm), ncclInvalidArgument); /* stale handle */
}

static int runBasic(void) {
  testVersionAndErrors();
  testUniqueIdAndInitErrors();
  testMemory();
  testOneRank();
  return gFailures;
}

/* ---------------------------------------------------------------- ranks as threads */

#define NRANKS 4
#define COUNT 37 /* odd on purpose */

typedef struct {
  int rank;
  int nranks;
  ncclUniqueId ids[2];
  int blocking;
} RankArgs;

/* Value that rank r contributes at element i: small integers, so every sum is exact. */
static float valueOf(int r, int i) {
  return (float)((r + 1) * 10 + (i % 7));
}

static void checkCollectives(ncclComm_t comm, int rank, int n) {
  float send[COUNT * NRANKS], recv[COUNT * NRANKS], big[COUNT * NRANKS];
  for (int i = 0; i < COUNT * NRANKS; ++i)
    send[i] = valueOf(rank, i);
  /* AllReduce out of place and in place; Avg; PreMulSum host and device scalar. */
  OK(ncclAllReduce(send, recv, COUNT, ncclFloat32, ncclSum, comm, NULL));
  int bad = 0;
  for (int i = 0; i < COUNT; ++i) {
    float want = 0;
    for (int r = 0; r < n; ++r)
      want += valueOf(r, i);
    bad += recv[i] != want;
  }
  CHECK(bad == 0);
  memcpy(big, send, sizeof(send));
  OK(ncclAllReduce(big, big, COUNT, ncclFloat32, ncclAvg, comm, NULL));
  bad = 0;
  for (int i = 0; i < COUNT; ++i) {
    float want = 0;
    for (int r = 0; r < n; ++r)
      want += valueOf(r, i);
    bad += big[i] != want / (float)n;
  }
  CHECK(bad == 0);
  double dsend[3] = {rank + 1.0, 2.0, 4.0}, drecv[3];
  double hostScale = 2.0, deviceScale = 3.0;
  ncclRedOp_t hostOp, deviceOp;
  OK(ncclRedOpCreatePreMulSum(&hostOp, &hostScale, ncclFloat64, ncclScalarHostImmediate, comm));
  hostScale = 100.0; /* read at creation: no effect */
  OK(ncclAllReduce(dsend, drecv, 3, ncclFloat64, hostOp, comm, NULL));
  CHECK(drecv[0] == 2.0 * n * (n + 1) / 2 && drecv[2] == 2.0 * 4.0 * n);
  OK(ncclRedOpCreatePreMulSum(&deviceOp, &deviceScale, ncclFloat64, ncclScalarDevice, comm));
  OK(ncclAllReduce(dsend, drecv, 3, ncclFloat64, deviceOp, comm, NULL));
  CHECK(drecv[1] == 3.0 * 2.0 * n);
  deviceScale = 5.0; /* read at every call */
  OK(ncclAllReduce(dsend, drecv, 3, ncclFloat64, deviceOp, comm, NULL));
  CHECK(drecv[1] == 5.0 * 2.0 * n);
  OK(ncclRedOpDestroy(hostOp, comm));
  OK(pncclRedOpDestroy(deviceOp, comm));

  /* Broadcast, Bcast, Reduce with root 1 (or 0). */
  const int root = n > 1 ? 1 : 0;
  OK(ncclBroadcast(send, recv, COUNT, ncclFloat32, root, comm, NULL));
  CHECK(recv[5] == valueOf(root, 5));
  memcpy(big, send, sizeof(send));
  OK(ncclBcast(big, COUNT, ncclFloat32, root, comm, NULL));
  CHECK(big[COUNT - 1] == valueOf(root, COUNT - 1));
  memset(recv, 0, sizeof(recv));
  OK(ncclReduce(send, rank == root ? recv : NULL, COUNT, ncclFloat32, ncclMax, root, comm, NULL));
  if (rank == root) CHECK(recv[3] == valueOf(n - 1, 3));

  /* AllGather in place: sendbuff == recvbuff + rank*count. */
  for (int i = 0; i < COUNT; ++i)
    big[rank * COUNT + i] = valueOf(rank, i);
  OK(ncclAllGather(big + rank * COUNT, big, COUNT, ncclFloat32, comm, NULL));
  bad = 0;
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < COUNT; ++i)
      bad += big[r * COUNT + i] != valueOf(r, i);
  CHECK(bad == 0);
  /* ReduceScatter in place: recvbuff == sendbuff + rank*count. */
  for (int i = 0; i < COUNT * n; ++i)
    big[i] = valueOf(rank, i);
  OK(ncclReduceScatter(big, big + rank * COUNT, COUNT, ncclFloat32, ncclSum, comm, NULL));
  bad = 0;
  for (int i = 0; i < COUNT; ++i) {
    float want = 0;
    for (int r = 0; r < n; ++r)
      want += valueOf(r, rank * COUNT + i);
    bad += big[rank * COUNT + i] != want;
  }
  CHECK(bad == 0);
  /* AlltoAll: block j of rank r goes to rank j. */
  for (int i = 0; i < COUNT * n; ++i)
    send[i] = (float)(rank * 1000 + i);
  OK(ncclAlltoAll(send, recv, COUNT, ncclFloat32, comm, NULL));
  CHECK(recv[(n - 1) * COUNT + 2] == (float)((n - 1) * 1000 + rank * COUNT + 2));
  /* Gather and Scatter at root. */
  OK(ncclGather(send, recv, COUNT, ncclFloat32, root, comm, NULL));
  if (rank == root) CHECK(recv[(n - 1) * COUNT] == (float)((n - 1) * 1000));
  OK(ncclScatter(send, recv, COUNT, ncclFloat32, root, comm, NULL));
  CHECK(recv[1] == (float)(root * 1000 + rank * COUNT + 1));

  /* Send/Recv ring in a group: progresses together, no deadlock. */
  int next = (rank + 1) % n, prev = (rank + n - 1) % n;
  int64_t token = 100 + rank, got = -1;
  OK(ncclGroupStart());
  OK(ncclSend(&token, 1, ncclInt64, next, comm, NULL));
  OK(ncclRecv(&got, 1, ncclInt64, prev, comm, NULL));
  OK(ncclGroupEnd());
  CHECK(got == 100 + prev);

  /* A nested group of several collectives launches at the outermost end. */
  int32_t x = rank, y = -1, z = -1;
  OK(ncclGroupStart());
  OK(ncclGroupStart());
  OK(ncclAllReduce(&x, &y, 1, ncclInt32, ncclSum, comm, NULL));
  OK(ncclGroupEnd());
  CHECK(y == -1); /* not run yet */
  OK(ncclAllReduce(&x, &z, 1, ncclInt32, ncclMax, comm, NULL));
  OK(ncclGroupEnd());
  CHECK(y == n * (n - 1) / 2 && z == n - 1);

  /* ncclGroupSimulateEnd prices the group and runs nothing. */
  ncclSimInfo_t sim = NCCL_SIM_INFO_INITIALIZER;
  y = -1;
  OK(ncclGroupStart());
  OK(ncclAllReduce(&x, &y, 1, ncclInt32, ncclSum, comm, NULL));
  OK(ncclAllReduce(send, recv, COUNT * n, ncclFloat32, ncclSum, comm, NULL));
  OK(ncclGroupSimulateEnd(&sim));
  CHECK(y == -1);
  CHECK(n == 1 || sim.estimatedTime > 0);
}

static void* threadRank(void* p) {
  RankArgs* a = (RankArgs*)p;
  ncclComm_t comm = NULL;
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.commName = "threads";
  if (a->rank % 2) {
    OK(ncclCommInitRankConfig(&comm, a->nranks, a->ids[0], a->rank, &cfg));
  } else {
    OK(pncclCommInitRankScalable(&comm, a->nranks, a->rank, 2, a->ids, NULL));
  }
  if (!comm) return NULL;
  int n = 0;
  OK(ncclCommCount(comm, &n));
  CHECK(n == a->nranks);
  checkCollectives(comm, a->rank, n);

  /* Split by parity, ordered by descending key; one NOCOLOR rank in a 5th-rank world. */
  ncclComm_t half = NULL;
  OK(ncclCommSplit(comm, a->rank % 2, -a->rank, &half, NULL));
  int hn = 0, hr = -1;
  OK(ncclCommCount(half, &hn));
  OK(ncclCommUserRank(half, &hr));
  CHECK(hn == a->nranks / 2 && hr == (a->nranks / 2 - 1) - a->rank / 2);
  int32_t v = a->rank, s = 0;
  OK(ncclAllReduce(&v, &s, 1, ncclInt32, ncclSum, half, NULL));
  CHECK(s == (a->rank % 2 ? 1 + 3 : 0 + 2));
  ncclComm_t none = (ncclComm_t)0x1;
  ncclComm_t some = NULL;
  OK(ncclCommSplit(comm, a->rank == 0 ? NCCL_SPLIT_NOCOLOR : 0, 0, a->rank == 0 ? &none : &some,
                   NULL));
  if (a->rank == 0) CHECK(none == NULL);
  if (a->rank != 0) {
    int sn = 0;
    OK(ncclCommCount(some, &sn));
    CHECK(sn == a->nranks - 1);
    OK(ncclCommDestroy(some));
  }

  /* Shrink: drop the last rank; it does not call. */
  if (a->rank != a->nranks - 1) {
    int excl = a->nranks - 1;
    ncclComm_t small = NULL;
    OK(ncclCommShrink(comm, &excl, 1, &small, NULL, NCCL_SHRINK_DEFAULT));
    int sn = 0, sr = -1;
    OK(ncclCommCount(small, &sn));
    OK(ncclCommUserRank(small, &sr));
    CHECK(sn == a->nranks - 1 && sr == a->rank);
    int32_t one = 1, sum = 0;
    OK(ncclAllReduce(&one, &sum, 1, ncclInt32, ncclSum, small, NULL));
    CHECK(sum == a->nranks - 1);
    OK(ncclCommAbort(small)); /* abort frees it too */
  }

  /* Revoke: pending and later operations end; then destroy. */
  OK(ncclCommRevoke(half, NCCL_REVOKE_DEFAULT));
  EXPECT_RESULT(ncclAllReduce(&v, &s, 1, ncclInt32, ncclSum, half, NULL), ncclInvalidUsage);
  EXPECT_RESULT(ncclCommSplit(half, 0, 0, &none, NULL), ncclInvalidUsage);
  OK(ncclCommDestroy(half));

  ncclResult_t async = ncclInternalError;
  OK(ncclCommGetAsyncError(comm, &async));
  CHECK(async == ncclSuccess);
  OK(ncclCommFinalize(comm));
  OK(ncclCommDestroy(comm));
  return NULL;
}

static void runRankThreads(int nranks, int blocking, void* (*body)(void*)) {
  pthread_t threads[NRANKS];
  RankArgs args[NRANKS];
  ncclUniqueId ids[2];
  OK(ncclGetUniqueId(&ids[0]));
  OK(pncclGetUniqueId(&ids[1]));
  for (int r = 0; r < nranks; ++r) {
    args[r].rank = r;
    args[r].nranks = nranks;
    memcpy(args[r].ids, ids, sizeof(ids));
    args[r].blocking = blocking;
    pthread_create(&threads[r], NULL, body, &args[r]);
  }
  for (int r = 0; r < nranks; ++r)
    pthread_join(threads[r], NULL);
}

static int runThreads(void) {
  runRankThreads(NRANKS, 1, threadRank);
  return gFailures;
}

/* ---------------------------------------------------------------- non-blocking */

static void* nonBlockingRank(void* p) {
  RankArgs* a = (RankArgs*)p;
  ncclComm_t comm = NULL;
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0;
  ncclResult_t r = ncclCommInitRankConfig(&comm, a->nranks, a->ids[0], a->rank, &cfg);
  CHECK(r == ncclInProgress || r == ncclSuccess);
  CHECK(comm != NULL);
  if (!comm) return NULL;
  CHECK(waitComm(comm) == ncclSuccess);
  float x[COUNT], y[COUNT];
  for (int i = 0; i < COUNT; ++i)
    x[i] = valueOf(a->rank, i);
  r = ncclAllReduce(x, y, COUNT, ncclFloat32, ncclSum, comm, NULL);
  CHECK(r == ncclInProgress || r == ncclSuccess);
  CHECK(waitComm(comm) == ncclSuccess);
  float want = 0;
  for (int q = 0; q < a->nranks; ++q)
    want += valueOf(q, 4);
  CHECK(y[4] == want);
  /* A group on a non-blocking communicator. */
  int32_t token = a->rank, got = -1;
  OK(ncclGroupStart());
  OK(ncclSend(&token, 1, ncclInt32, (a->rank + 1) % a->nranks, comm, NULL));
  OK(ncclRecv(&got, 1, ncclInt32, (a->rank + a->nranks - 1) % a->nranks, comm, NULL));
  r = ncclGroupEnd();
  CHECK(r == ncclInProgress || r == ncclSuccess);
  CHECK(waitComm(comm) == ncclSuccess);
  CHECK(got == (a->rank + a->nranks - 1) % a->nranks);
  /* A non-blocking split inherits the mode. */
  ncclComm_t child = NULL;
  r = ncclCommSplit(comm, 0, a->rank, &child, NULL);
  CHECK(r == ncclInProgress || r == ncclSuccess);
  if (child) {
    CHECK(waitComm(child) == ncclSuccess);
    int n = 0;
    OK(ncclCommCount(child, &n));
    CHECK(n == a->nranks);
    OK(ncclCommDestroy(child));
  }
  r = ncclCommFinalize(comm);
  CHECK(r == ncclInProgress || r == ncclSuccess);
  CHECK(waitComm(comm) == ncclSuccess);
  OK(ncclCommDestroy(comm));
  return NULL;
}

static int runNonBlocking(void) {
  runRankThreads(3, 0, nonBlockingRank);
  return gFailures;
}

/* ---------------------------------------------------------------- one thread, all ranks */

static int runSingleThread(void) {
  enum { N = 3 };
  ncclComm_t comms[N];
  int devs[N] = {0, 1, -1};
  EXPECT_RESULT(ncclCommInitAll(comms, N, devs), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitAll(NULL, N, NULL), ncclInvalidArgument);
  EXPECT_RESULT(ncclCommInitAll(comms, 0, NULL), ncclInvalidArgument);
  OK(ncclCommInitAll(comms, N, NULL));
  int32_t in[N], out[N];
  OK(ncclGroupStart());
  for (int r = 0; r < N; ++r) {
    in[r] = r + 1;
    OK(ncclAllReduce(&in[r], &out[r], 1, ncclInt32, ncclProd, comms[r], NULL));
  }
  OK(ncclGroupEnd());
  for (int r = 0; r < N; ++r)
    CHECK(out[r] == 6);
  /* A split of all ranks from one thread, in a group. */
  ncclComm_t subs[N];
  OK(ncclGroupStart());
  for (int r = 0; r < N; ++r)
    OK(ncclCommSplit(comms[r], r == 2 ? NCCL_SPLIT_NOCOLOR : 7, r, &subs[r], NULL));
  OK(ncclGroupEnd());
  CHECK(subs[2] == NULL);
  int n = 0;
  OK(ncclCommCount(subs[1], &n));
  CHECK(n == 2);
  for (int r = 0; r < 2; ++r)
    OK(ncclCommDestroy(subs[r]));
  for (int r = 0; r < N; ++r)
    OK(ncclCommDestroy(comms[r]));

  /* ncclCommInitRank for every rank from one thread, inside a group. */
  ncclUniqueId id;
  OK(ncclGetUniqueId(&id));
  OK(ncclGroupStart());
  for (int r = 0; r < N; ++r)
    OK(ncclCommInitRank(&comms[r], N, id, r));
  OK(ncclGroupEnd());
  OK(ncclGroupStart());
  for (int r = 0; r < N; ++r) {
    in[r] = 10 * r;
    OK(ncclBroadcast(&in[r], &out[r], 1, ncclInt32, 2, comms[r], NULL));
  }
  OK(ncclGroupEnd());
  for (int r = 0; r < N; ++r)
    CHECK(out[r] == 20);
  for (int r = 0; r < N; ++r)
    OK(pncclCommDestroy(comms[r]));
  return gFailures;
}

/* ---------------------------------------------------------------- ranks as processes */

static int processRank(int rank, int nranks, int idPipe[][2]) {
  ncclUniqueId id;
  if (rank == 0) {
    OK(ncclGetUniqueId(&id));
    for (int r = 1; r < nranks; ++r)
      if (write(idPipe[r][1], &id, sizeof(id)) != (ssize_t)sizeof(id)) return 1;
  } else if (read(idPipe[rank][0], &id, sizeof(id)) != (ssize_t)sizeof(id)) {
    return 1;
  }
  ncclComm_t comm = NULL;
  OK(ncclCommInitRank(&comm, nranks, id, rank));
  if (!comm) return 1;
  double x = rank + 1, y = 0;
  OK(ncclAllReduce(&x, &y, 1, ncclFloat64, ncclSum, comm, NULL));
  CHECK(y == nranks * (nranks + 1) / 2.0);
  int64_t token = rank, got = -1;
  OK(ncclGroupStart());
  OK(ncclSend(&token, 1, ncclInt64, (rank + 1) % nranks, comm, NULL));
  OK(ncclRecv(&got, 1, ncclInt64, (rank + nranks - 1) % nranks, comm, NULL));
  OK(ncclGroupEnd());
  CHECK(got == (rank + nranks - 1) % nranks);
  OK(ncclCommDestroy(comm));
  return gFailures;
}

static int runProcesses(void) {
  enum { N = 3 };
  int idPipe[N][2];
  pid_t pids[N];
  for (int r = 0; r < N; ++r)
    if (pipe(idPipe[r]) != 0) return 1;
  for (int r = 0; r < N; ++r) {
    pids[r] = fork();
    if (pids[r] == 0) {
      alarm(60);
      _exit(processRank(r, N, idPipe) == 0 ? 0 : 1);
    }
  }
  int failed = 0;
  for (int r = 0; r < N; ++r) {
    int status = 0;
    waitpid(pids[r], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "rank %d (pid %d) failed: status 0x%x\n", r, (int)pids[r], status);
      ++failed;
    }
  }
  return failed;
}

/* ---------------------------------------------------------------- NCCL_* variables */

/* ctest sets NCCL_* (and one LOOM_*) variables; the library translated them at load time. */
static int runEnv(void) {
  static const char* kWant[][2] = {
      {"LOOM_ALGO",
       "allreduce:double_binary_tree;broadcast:chain;allgather:ring;reducescatter:ring"},
      {"LOOM_DEBUG", "WARN"},
      {"LOOM_DEBUG_SUBSYS", "INIT,TOPO"},
      {"LOOM_SHM_DISABLE", "1"},
      {"LOOM_SOCKET_IFNAME", "lo"}, /* set explicitly: NCCL_SOCKET_IFNAME does not override it */
  };
  for (size_t i = 0; i < sizeof(kWant) / sizeof(kWant[0]); ++i) {
    const char* got = getenv(kWant[i][0]);
    if (!got || strcmp(got, kWant[i][1]) != 0) {
      fprintf(stderr, "%s = %s, want %s\n", kWant[i][0], got ? got : "(unset)", kWant[i][1]);
      ++gFailures;
    }
  }
  /* And loom runs with them: processes over sockets, threads with the forced algorithms. */
  return gFailures + runProcesses() + runThreads();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s basic|threads|nonblocking|single|procs|env\n", argv[0]);
    return 2;
  }
  alarm(120); /* deadline: a hang fails the test */
  /* Which libnccl.so.2 the loader picked; NCCL_TEST_EXPECT_LIB (the drop-in tests) says which
   * one it must be. */
  Dl_info info;
  const char* from = dladdr((void*)ncclGetVersion, &info) && info.dli_fname ? info.dli_fname : "?";
  printf("ncclGetVersion from %s\n", from);
  const char* expect = getenv("NCCL_TEST_EXPECT_LIB");
  if (expect && strstr(from, expect) == NULL) {
    fprintf(stderr, "libnccl.so.2 was loaded from %s, expected one under %s\n", from, expect);
    return 1;
  }
  int failures;
  if (strcmp(argv[1], "basic") == 0)
    failures = runBasic();
  else if (strcmp(argv[1], "threads") == 0)
    failures = runThreads();
  else if (strcmp(argv[1], "nonblocking") == 0)
    failures = runNonBlocking();
  else if (strcmp(argv[1], "single") == 0)
    failures = runSingleThread();
  else if (strcmp(argv[1], "procs") == 0)
    failures = runProcesses();
  else if (strcmp(argv[1], "env") == 0)
    failures = runEnv();
  else
    return 2;
  printf("%s: %d failure(s)\n", argv[1], failures);
  return failures == 0 ? 0 : 1;
}
