// bpfnet's native addon: libbpf mechanisms for the TypeScript controller (src/datapath/bpf/).
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>

#include "common.h"
#include "handles.h"

namespace bpfnet {
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
