/* A user's program built against an installed loom (pkg-config and find_package both build
 * it): two ranks as threads in one process, one AllReduce, checked. */
#include <loom/loom.h>
#include <pthread.h>
#include <stdio.h>

static loomComm_t comms[2];
static float data[2][4];

static void* run(void* arg) {
  int r = (int)(long)arg;
  for (int i = 0; i < 4; ++i)
    data[r][i] = (float)(r + i);
  loomResult_t res = loomAllReduce(data[r], data[r], 4, loomFloat32, loomSum, comms[r], NULL);
  return (void*)(long)res;
}

int main(void) {
  int version = 0;
  loomGetVersion(&version);
  if (loomCommInitAll(comms, 2, NULL, NULL) != loomSuccess) {
    fprintf(stderr, "init: %s\n", loomGetLastError(NULL));
    return 1;
  }
  pthread_t t[2];
  for (long r = 0; r < 2; ++r)
    pthread_create(&t[r], NULL, run, (void*)r);
  int bad = 0;
  for (int r = 0; r < 2; ++r) {
    void* res;
    pthread_join(t[r], &res);
    bad |= res != (void*)(long)loomSuccess;
    for (int i = 0; i < 4; ++i)
      bad |= data[r][i] != (float)(1 + 2 * i);
  }
  for (int r = 0; r < 2; ++r)
    loomCommDestroy(comms[r]);
  printf("loom %d: allreduce %s\n", version, bad ? "WRONG" : "ok");
  return bad;
}
