// The one-rank stand-in for NCCL (templates/runtime/nccl_one_rank.cuh) on the host, driven from
// test/nccl-one-rank.test.ts: the calls that copy nothing (one buffer, one stream) need no GPU, so the pairing
// of sends and receives, the groups and the refusals run here. Each mode prints the calls' results in order.
//   harness ranks      a communicator of 2 ranks (refused, with the stand-in's message)
//   harness peer       a send to rank 1
//   harness sizes      a send and a receive of different sizes in one group
//   harness pairs      sends and receives paired in and out of groups, then the communicators destroyed
//   harness unpaired   a send nobody receives, then the communicator destroyed
//   harness groups     a group ended that was never started; in-place collectives
#include <cstdio>
#include <string>

#include "nccl_one_rank.cuh"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  ncclUniqueId id;
  ncclGetUniqueId(&id);
  ncclComm_t comm = nullptr;
  float buffer[8] = {};
  auto say = [](const char* what, ncclResult_t r) { std::printf("%s %d\n", what, (int)r); };
  if (mode == "ranks") {
    say("init 1 of 2", ncclCommInitRank(&comm, 2, id, 1));
    return 0;
  }
  say("init 0 of 1", ncclCommInitRank(&comm, 1, id, 0));
  if (mode == "peer") {
    say("send to 1", ncclSend(buffer, 4, ncclFloat32, 1, comm, nullptr));
  } else if (mode == "sizes") {
    say("group", ncclGroupStart());
    say("send 4", ncclSend(buffer, 4, ncclFloat32, 0, comm, nullptr));
    say("recv 8", ncclRecv(buffer, 8, ncclFloat32, 0, comm, nullptr));
    say("end", ncclGroupEnd());
  } else if (mode == "pairs") {
    ncclComm_t split = nullptr;
    say("split", ncclCommSplit(comm, 0, 0, &split, nullptr));
    say("group", ncclGroupStart());
    say("group", ncclGroupStart());
    say("send", ncclSend(buffer, 4, ncclFloat32, 0, comm, nullptr));
    say("end inner", ncclGroupEnd());
    say("recv", ncclRecv(buffer, 2, ncclFloat64, 0, comm, nullptr));
    say("end outer", ncclGroupEnd());
    say("recv alone", ncclRecv(buffer, 8, ncclBfloat16, 0, comm, nullptr));
    say("send alone", ncclSend(buffer, 4, ncclFloat32, 0, comm, nullptr));
    say("destroy split", ncclCommDestroy(split));
  } else if (mode == "unpaired") {
    say("send", ncclSend(buffer, 4, ncclFloat32, 0, comm, nullptr));
  } else if (mode == "groups") {
    say("end without start", ncclGroupEnd());
    say("allreduce in place", ncclAllReduce(buffer, buffer, 8, ncclFloat32, ncclSum, comm, nullptr));
    say("allgather in place", ncclAllGather(buffer, buffer, 8, ncclFloat32, comm, nullptr));
    say("reducescatter in place", ncclReduceScatter(buffer, buffer, 8, ncclFloat32, ncclSum, comm, nullptr));
    say("nothing to copy", ncclAlltoAll(buffer, buffer + 4, 0, ncclFloat32, comm, nullptr));
  }
  say("destroy", ncclCommDestroy(comm));
  return 0;
}
