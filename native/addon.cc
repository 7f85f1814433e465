// bpfnet's native addon: libbpf mechanisms for the TypeScript controller (src/datapath/bpf/).
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>

#include "common.h"
#include "handles.h"

namespace bpfnet {

// Random 128-bit values, one per class (only their distinctness matters).
const napi_type_tag kObjectTag = {0x5b1f0c2e9a7d4e61ULL, 0x8c03b7f2a1d94e55ULL};
const napi_type_tag kMapTag = {0x2f6a91d4c8e03b17ULL, 0xa4d75e0c19b26f83ULL};
const napi_type_tag kProgramTag = {0xd07e3c5a6b1f9248ULL, 0x3e9b04c7f2a8d615ULL};
const napi_type_tag kLinkTag = {0x71c4e9b2035d8fa6ULL, 0xf58a2d6e0b3c9174ULL};
const napi_type_tag kRingBufferTag = {0x9e2b57f3a4c06d18ULL, 0x46f1c83d7e92a0b5ULL};

namespace {

// ifindex(netns, ifname) -> number: the interface index inside a namespace.
Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgOptString(info, 0, "netns path");
  std::string ifname = ArgString(info, 1, "interface name");
  if (ifname.empty() || ifname.size() >= IF_NAMESIZE) ThrowType(env, "interface name \"" + ifname + "\" is invalid");
  unsigned int index = 0;
  std::string detail;
  int rc = RunInNetns(
      netns,
      [&]() -> int {
        index = if_nametoindex(ifname.c_str());
        return index == 0 ? -ENODEV : 0;
      },
      &detail);
  if (rc != 0)
    ThrowErrno(env, rc, "interface \"" + ifname + "\"" + (netns.empty() ? "" : " in netns \"" + netns + "\"") +
                            (detail.empty() ? "" : ": " + detail));
  return Napi::Number::New(env, index);
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfLog();
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  exports.Set("ifindex", Napi::Function::New(env, IfIndex));
  exports.Set("detachTcFilter", Napi::Function::New(env, DetachTcFilter));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  InitNetlink(env, exports);
  exports.Set("BpfObject", ObjectHandle::Init(env));
  exports.Set("BpfMap", MapHandle::Init(env));
  exports.Set("BpfProgram", ProgramHandle::Init(env));
  exports.Set("BpfLink", LinkHandle::Init(env));
  exports.Set("BpfRingBuffer", RingBufferHandle::Init(env));
  return exports;
}

}  // namespace bpfnet

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return bpfnet::Init(env, exports); }

NODE_API_MODULE(bpfnet, InitAddon)
