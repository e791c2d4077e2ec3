/*
 * loom.h - the C ABI of loom, a collective-communication runtime.
 *
 * Shape and values follow NCCL (ncclResult_t, ncclDataType_t, ncclRedOp_t, groups, split),
 * so NCCL users recognise every call. Differences:
 *   - buffers may be host memory; a NULL stream means "host memory, complete before return";
 *   - every wait is bounded by a timeout (loomConfig_t.timeoutMs / LOOM_TIMEOUT_MS);
 *   - loomGroupEndAsync returns a loomWork_t handle for asynchronous completion;
 *   - loomCommInitEnv starts a rank launched by loomrun, mpirun, srun or torchrun;
 *   - loomCommGetCounters reports calls and bytes per collective.
 *
 * Errors: every function returns loomResult_t. loomGetLastError(comm) gives the message of the
 * calling thread's most recent failure (it names the argument, peer or variable involved).
 * Asynchronous failures (a peer died, a timeout) are sticky: once a communicator fails, every
 * later call on it returns the same error, and loomCommGetAsyncError reports it.
 *
 * Thread-safety: a communicator may be used by one thread at a time for issuing operations;
 * loomCommAbort and loomCommGetAsyncError may be called from any thread at any time.
 */
#ifndef LOOM_LOOM_H_
#define LOOM_LOOM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LOOM_API __attribute__((visibility("default")))
#else
#define LOOM_API
#endif

#define LOOM_MAJOR 0
#define LOOM_MINOR 1
#define LOOM_PATCH 0
#define LOOM_VERSION(X, Y, Z) ((X)*10000 + (Y)*100 + (Z))
#define LOOM_VERSION_CODE LOOM_VERSION(LOOM_MAJOR, LOOM_MINOR, LOOM_PATCH)

typedef struct loomComm* loomComm_t;
typedef struct loomWork* loomWork_t;
/* cudaStream_t for device buffers; NULL for host buffers (blocking semantics). */
typedef void* loomStream_t;

#define LOOM_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[LOOM_UNIQUE_ID_BYTES];
} loomUniqueId;

typedef enum {
  loomSuccess = 0,
  loomUnhandledCudaError = 1,
  loomSystemError = 2,
  loomInternalError = 3,
  loomInvalidArgument = 4,
  loomInvalidUsage = 5,
  loomRemoteError = 6,
  loomInProgress = 7,
  loomTimeout = 8,
  loomAborted = 9,
  loomNumResults = 10
} loomResult_t;

typedef enum {
  loomInt8 = 0,
  loomChar = 0,
  loomUint8 = 1,
  loomInt32 = 2,
  loomInt = 2,
  loomUint32 = 3,
  loomInt64 = 4,
  loomUint64 = 5,
  loomFloat16 = 6,
  loomHalf = 6,
  loomFloat32 = 7,
  loomFloat = 7,
  loomFloat64 = 8,
  loomDouble = 8,
  loomBfloat16 = 9,
  loomFloat8e4m3 = 10,
  loomFloat8e5m2 = 11,
  loomNumTypes = 12
} loomDataType_t;

/* Built-in reductions. PreMulSum ops are created with loomRedOpCreatePreMulSum and have
 * values >= loomNumOps. */
typedef enum {
  loomSum = 0,
  loomProd = 1,
  loomMax = 2,
  loomMin = 3,
  loomAvg = 4,
  loomNumOps = 5,
  loomMaxRedOp = 0x7fffffff
} loomRedOp_t;

typedef enum {
  loomScalarDevice = 0,       /* scalar points to device memory */
  loomScalarHostImmediate = 1 /* scalar is read from host memory during the create call */
} loomScalarResidence_t;

#define LOOM_SPLIT_NOCOLOR (-1)
#define LOOM_CONFIG_UNDEF_INT INT32_MIN
#define LOOM_CONFIG_UNDEF_PTR NULL

/* Per-communicator settings. Unset fields (UNDEF) take the LOOM_* environment value. */
typedef struct loomConfig_v1 {
  size_t size;           /* sizeof(loomConfig_t): set by LOOM_CONFIG_INITIALIZER */
  unsigned int magic;    /* set by LOOM_CONFIG_INITIALIZER */
  unsigned int version;  /* set by LOOM_CONFIG_INITIALIZER */
  int blocking;          /* 1: init blocks (default). 0: not yet supported (InvalidUsage). */
  int timeoutMs;         /* deadline for every wait, ms; LOOM_TIMEOUT_MS otherwise */
  const char* transport; /* "auto", "loopback", "shm", "socket"; LOOM_TRANSPORT otherwise */
  const char* commName;  /* shown in logs and errors */
  const char* hostId;    /* declared host identity (tests); LOOM_HOSTID otherwise */
  int checkMode;         /* 1: collective-mismatch check, 0: off; LOOM_CHECK otherwise */
  const char* algo;      /* algorithm overrides in LOOM_ALGO syntax; LOOM_ALGO otherwise */
} loomConfig_t;

#define LOOM_CONFIG_MAGIC 0x6c6f6f6du /* "loom" */
#define LOOM_CONFIG_INITIALIZER                                                        \
  {                                                                                    \
    sizeof(loomConfig_t), LOOM_CONFIG_MAGIC, LOOM_VERSION_CODE, LOOM_CONFIG_UNDEF_INT, \
        LOOM_CONFIG_UNDEF_INT, LOOM_CONFIG_UNDEF_PTR, LOOM_CONFIG_UNDEF_PTR,           \
        LOOM_CONFIG_UNDEF_PTR, LOOM_CONFIG_UNDEF_INT, LOOM_CONFIG_UNDEF_PTR            \
  }

/* Collectives, as counted by loomCommGetCounters. */
typedef enum {
  loomCollAllReduce = 0,
  loomCollBroadcast = 1,
  loomCollReduce = 2,
  loomCollAllGather = 3,
  loomCollReduceScatter = 4,
  loomCollAllToAll = 5,
  loomCollGather = 6,
  loomCollScatter = 7,
  loomCollSend = 8,
  loomCollRecv = 9,
  loomCollBarrier = 10,
  loomNumColls = 11
} loomCollective_t;

typedef struct {
  uint64_t calls[loomNumColls];     /* operations completed, per collective */
  uint64_t bytesSent[loomNumColls]; /* bytes this rank sent to peers, per collective */
  uint64_t bytesRecv[loomNumColls]; /* bytes this rank received from peers, per collective */
} loomCounters_t;

/* ---- version and errors ---- */
LOOM_API loomResult_t loomGetVersion(int* version);
LOOM_API const char* loomGetErrorString(loomResult_t result);
/* Message of the calling thread's last failure on comm (or on any call when comm is NULL). */
LOOM_API const char* loomGetLastError(loomComm_t comm);

/* ---- communicators ---- */
/* Creates a unique id (root address + port + 128-bit secret) and starts the rendezvous root in
 * this process. Share the id with every rank (e.g. MPI_Bcast). Each id serves one job. */
LOOM_API loomResult_t loomGetUniqueId(loomUniqueId* uniqueId);
LOOM_API loomResult_t loomCommInitRank(loomComm_t* comm, int nranks, loomUniqueId commId, int rank);
LOOM_API loomResult_t loomCommInitRankConfig(loomComm_t* comm, int nranks, loomUniqueId commId,
                                             int rank, loomConfig_t* config);
/* nranks communicators in this process (ranks as threads, or one thread driving all through
 * groups). devlist gives a CUDA device per rank, or NULL for host-only use. */
LOOM_API loomResult_t loomCommInitAll(loomComm_t* comms, int nranks, const int* devlist,
                                      loomConfig_t* config);
/* A rank started by loomrun, mpirun (Open MPI, MPICH), srun or torchrun: rank, size and the
 * rendezvous come from the launcher's environment (see README). */
LOOM_API loomResult_t loomCommInitEnv(loomComm_t* comm, loomConfig_t* config);
/* Collective over comm: ranks with equal color form a new communicator, ordered by (key, old
 * rank). color LOOM_SPLIT_NOCOLOR yields *newcomm = NULL. */
LOOM_API loomResult_t loomCommSplit(loomComm_t comm, int color, int key, loomComm_t* newcomm,
                                    loomConfig_t* config);
/* Waits for outstanding work (bounded by the timeout) and frees everything. */
LOOM_API loomResult_t loomCommDestroy(loomComm_t comm);
/* Stops every pending operation now (from any thread), frees the communicator without waiting
 * for peers. Peers waiting on this rank get RemoteError. */
LOOM_API loomResult_t loomCommAbort(loomComm_t comm);
/* Async-signal-safe abort for watchdogs and signal handlers: marks comm aborted and wakes its
 * waiters (an atomic store and a write() to an eventfd; no lock, no allocation). Pending and
 * later operations on comm, and a split of it, fail with loomAborted. It frees nothing: call
 * loomCommAbort or loomCommDestroy afterwards from a normal thread. comm must be live (not
 * racing with its destroy). */
LOOM_API loomResult_t loomCommAbortSignalSafe(loomComm_t comm);
LOOM_API loomResult_t loomCommGetAsyncError(loomComm_t comm, loomResult_t* asyncError);
LOOM_API loomResult_t loomCommCount(const loomComm_t comm, int* count);
LOOM_API loomResult_t loomCommUserRank(const loomComm_t comm, int* rank);
LOOM_API loomResult_t loomCommGetCounters(const loomComm_t comm, loomCounters_t* counters);

/* The cost model's predicted time, in microseconds, of one call of `collective` with `count`
 * elements of `datatype` (root for rooted collectives, peer for Send/Recv) on comm, for the
 * algorithm the planner would choose (LOOM_ALGO and loomConfig_t.algo included). Runs nothing
 * and talks to no peer. *microseconds < 0 when the model has no formula for that algorithm.
 * Out-of-place layout is assumed. */
LOOM_API loomResult_t loomCommPredictTime(const loomComm_t comm, loomCollective_t collective,
                                          size_t count, loomDataType_t datatype, int root,
                                          double* microseconds);

/* The name of the algorithm the planner would choose for that call ("ring", "pairwise", ...;
 * LOOM_ALGO and loomConfig_t.algo included), as a NUL-terminated string with static storage.
 * Out-of-place layout is assumed; runs nothing and talks to no peer. */
LOOM_API loomResult_t loomCommChosenAlgorithm(const loomComm_t comm, loomCollective_t collective,
                                              size_t count, loomDataType_t datatype, int root,
                                              const char** algorithm);

/* The algorithms loom has for `collective`, in the planner's order of preference on ties: *count
 * names (the names LOOM_ALGO and loomConfig_t.algo take), each a NUL-terminated string with
 * static storage, in an array with static storage. Needs no communicator. */
LOOM_API loomResult_t loomGetAlgorithms(loomCollective_t collective, const char* const** names,
                                        int* count);

/* ---- reduction operators ---- */
LOOM_API loomResult_t loomRedOpCreatePreMulSum(loomRedOp_t* op, void* scalar,
                                               loomDataType_t datatype,
                                               loomScalarResidence_t residence, loomComm_t comm);
LOOM_API loomResult_t loomRedOpDestroy(loomRedOp_t op, loomComm_t comm);

/* ---- collectives (count is in elements of datatype) ---- */
LOOM_API loomResult_t loomAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                    loomDataType_t datatype, loomRedOp_t op, loomComm_t comm,
                                    loomStream_t stream);
LOOM_API loomResult_t loomBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                    loomDataType_t datatype, int root, loomComm_t comm,
                                    loomStream_t stream);
/* recvbuff is used on root only. */
LOOM_API loomResult_t loomReduce(const void* sendbuff, void* recvbuff, size_t count,
                                 loomDataType_t datatype, loomRedOp_t op, int root, loomComm_t comm,
                                 loomStream_t stream);
/* recvbuff holds nranks*sendcount; in place when sendbuff == recvbuff + rank*sendcount. */
LOOM_API loomResult_t loomAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                    loomDataType_t datatype, loomComm_t comm, loomStream_t stream);
/* sendbuff holds nranks*recvcount; in place when recvbuff == sendbuff + rank*recvcount. */
LOOM_API loomResult_t loomReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                        loomDataType_t datatype, loomRedOp_t op, loomComm_t comm,
                                        loomStream_t stream);
/* count elements go to each peer: sendbuff and recvbuff hold nranks*count. */
LOOM_API loomResult_t loomAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                                   loomDataType_t datatype, loomComm_t comm, loomStream_t stream);
/* recvbuff (root only) holds nranks*sendcount. */
LOOM_API loomResult_t loomGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                 loomDataType_t datatype, int root, loomComm_t comm,
                                 loomStream_t stream);
/* sendbuff (root only) holds nranks*recvcount. */
LOOM_API loomResult_t loomScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                  loomDataType_t datatype, int root, loomComm_t comm,
                                  loomStream_t stream);
LOOM_API loomResult_t loomSend(const void* sendbuff, size_t count, loomDataType_t datatype,
                               int peer, loomComm_t comm, loomStream_t stream);
LOOM_API loomResult_t loomRecv(void* recvbuff, size_t count, loomDataType_t datatype, int peer,
                               loomComm_t comm, loomStream_t stream);
LOOM_API loomResult_t loomBarrier(loomComm_t comm, loomStream_t stream);

/* ---- groups ----
 * Between loomGroupStart and loomGroupEnd, operations are recorded, not run; the outermost
 * loomGroupEnd runs them all together (Send/Recv pairs progress concurrently, so a ring
 * exchange cannot deadlock; one thread may drive several communicators). Groups nest.
 * A Send whose buffer a Recv of the same group overwrites sends the contents the buffer had when
 * the group started (loom snapshots it); two Recvs into overlapping memory are
 * loomInvalidArgument. */
LOOM_API loomResult_t loomGroupStart(void);
LOOM_API loomResult_t loomGroupEnd(void);
/* Like loomGroupEnd, but returns at once; *work completes when every operation has. */
LOOM_API loomResult_t loomGroupEndAsync(loomWork_t* work);

/* ---- asynchronous work ---- */
/* Waits until done or timeoutMs (< 0: no deadline of its own; every operation is still bounded
 * by its communicator's timeout, so the wait ends). Returns the operations' first error, or
 * loomTimeout when timeoutMs passed first (the work is still pending; wait again). */
LOOM_API loomResult_t loomWorkWait(loomWork_t work, int64_t timeoutMs);
/* *done = 1 when finished; returns the operation's result once done. */
LOOM_API loomResult_t loomWorkTest(loomWork_t work, int* done);
/* Frees the handle; waits for the work first if it is still pending. */
LOOM_API loomResult_t loomWorkFree(loomWork_t work);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOOM_LOOM_H_ */
