#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <string.h>
#include <unistd.h>

#include <vector>

#include "common.h"
#include "handles.h"

namespace bpfnet {

namespace {
Napi::FunctionReference* g_prog_ctor = nullptr;

// Not in Debian 12's uapi headers; stable kernel ABI values (linux/bpf.h, 6.6+).
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;

std::string Where(const std::string& ifname, const std::string& netns) {
  return "\"" + ifname + "\"" + (netns.empty() ? "" : " in netns \"" + netns + "\"");
}

// Attaches prog_fd as a link to the interface ifname inside netns (both resolved on a namespace thread).
int LinkToInterface(int prog_fd, const std::string& netns, const std::string& ifname, int attach_type,
                    uint32_t flags, int* link_fd, std::string* detail) {
  return RunInNetns(
      netns,
      [&]() -> int {
        unsigned int ifindex = if_nametoindex(ifname.c_str());
        if (ifindex == 0) return -ENODEV;
        LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = flags);
        int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), static_cast<enum bpf_attach_type>(attach_type),
                                 flags ? &opts : nullptr);
        if (fd < 0) return -errno;
        *link_fd = fd;
        return 0;
      },
      detail);
}
}  // namespace

Napi::Function ProgramHandle::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "BpfProgram",
                                    {
                                        StaticMethod("openPinned", &ProgramHandle::OpenPinned),
                                        InstanceAccessor("fd", &ProgramHandle::GetFd, nullptr),
                                        InstanceMethod("info", &ProgramHandle::Info),
                                        InstanceMethod("testRun", &ProgramHandle::TestRun),
                                        InstanceMethod("attachXdp", &ProgramHandle::AttachXdp),
                                        InstanceMethod("attachTcx", &ProgramHandle::AttachTcx),
                                        InstanceMethod("attachCgroup", &ProgramHandle::AttachCgroup),
                                        InstanceMethod("attachTcFilter", &ProgramHandle::AttachTcFilter),
                                        InstanceMethod("pin", &ProgramHandle::Pin),
                                        InstanceMethod("close", &ProgramHandle::Close),
                                    });
  g_prog_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
  return ctor;
}

Napi::Object ProgramHandle::Create(Napi::Env env, int fd, const std::string& name, uint32_t type) {
  return g_prog_ctor->New(
      {Napi::External<int>::New(env, &fd), Napi::String::New(env, name), Napi::Number::New(env, type)});
}

ProgramHandle::ProgramHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProgramHandle>(info) {
  if (info.Length() < 3 || !info[0].IsExternal() || !info[1].IsString() || !info[2].IsNumber())
    ThrowType(info.Env(), "BpfProgram cannot be constructed directly: use BpfObject.program() or BpfProgram.openPinned()");
  fd_ = *info[0].As<Napi::External<int>>().Data();
  name_ = info[1].As<Napi::String>().Utf8Value();
  type_ = info[2].As<Napi::Number>().Uint32Value();
  info.This().As<Napi::Object>().TypeTag(&kProgramTag);
}

ProgramHandle::~ProgramHandle() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value ProgramHandle::OpenPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "pinned path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "open pinned program \"" + path + "\"");
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  if (FdKind(fd) != "prog" || bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) {
    close(fd);
    ThrowErrno(env, EINVAL, "open pinned program \"" + path + "\": not a program");
  }
  return Create(env, fd, pi.name, pi.type);
}

int ProgramHandle::FdOf(Napi::Env env, Napi::Value value, const char* what) {
  return UnwrapArg<ProgramHandle>(env, value, kProgramTag, what, "BpfProgram")->Fd(env, what);
}

int ProgramHandle::Fd(Napi::Env env, const char* op) {
  if (fd_ < 0) ThrowErrno(env, EBADF, "program \"" + name_ + "\" " + op + ": closed");
  return fd_;
}

Napi::Value ProgramHandle::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value ProgramHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(Fd(env, "info"), &pi, &len) != 0) ThrowErrno(env, errno, "program \"" + name_ + "\" info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name_);
  o.Set("id", static_cast<double>(pi.id));
  o.Set("type", static_cast<double>(pi.type));
  char tag[2 * BPF_TAG_SIZE + 1];
  for (int i = 0; i < BPF_TAG_SIZE; i++) snprintf(tag + 2 * i, 3, "%02x", pi.tag[i]);
  o.Set("tag", std::string(tag));
  return o;
}

// testRun({ data, repeat?, ctx?, dataOutSize?, netns? }) -> { retval, data, duration, ctx? }  (BPF_PROG_TEST_RUN)
Napi::Value ProgramHandle::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env, "testRun");
  if (info.Length() < 1 || !info[0].IsObject()) ThrowType(env, "testRun: expected an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  Napi::Value data = o.Get("data");
  if (!data.IsBuffer()) ThrowType(env, "testRun: data must be a Buffer");
  Napi::Buffer<uint8_t> in = data.As<Napi::Buffer<uint8_t>>();
  uint32_t repeat = 1;
  if (o.Has("repeat") && !o.Get("repeat").IsUndefined()) {
    if (!o.Get("repeat").IsNumber()) ThrowType(env, "testRun: repeat must be a number");
    double r = o.Get("repeat").As<Napi::Number>().DoubleValue();
    if (!(r >= 1 && r <= 1e9)) ThrowType(env, "testRun: repeat must be between 1 and 1e9");
    repeat = static_cast<uint32_t>(r);
  }
  size_t out_size = in.Length() + 256;
  if (o.Has("dataOutSize") && o.Get("dataOutSize").IsNumber()) {
    double s = o.Get("dataOutSize").As<Napi::Number>().DoubleValue();
    if (!(s >= 0 && s <= 1 << 20)) ThrowType(env, "testRun: dataOutSize must be between 0 and 1 MiB");
    out_size = static_cast<size_t>(s);
  }
  std::vector<uint8_t> out(out_size + 1);
  std::vector<uint8_t> ctx_in, ctx_out;
  Napi::Value ctx = o.Get("ctx");
  if (!ctx.IsUndefined() && !ctx.IsNull()) {
    if (!ctx.IsBuffer()) ThrowType(env, "testRun: ctx must be a Buffer");
    Napi::Buffer<uint8_t> c = ctx.As<Napi::Buffer<uint8_t>>();
    ctx_in.assign(c.Data(), c.Data() + c.Length());
    ctx_out.resize(c.Length());
  }
  std::string netns;
  Napi::Value ns = o.Get("netns");
  if (!ns.IsUndefined() && !ns.IsNull()) {
    if (!ns.IsString()) ThrowType(env, "testRun: netns must be a string");
    netns = ns.As<Napi::String>().Utf8Value();
  }
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in.Data(), .data_out = out.data(),
              .data_size_in = static_cast<uint32_t>(in.Length()), .data_size_out = static_cast<uint32_t>(out_size),
              .ctx_in = ctx_in.empty() ? nullptr : ctx_in.data(), .ctx_out = ctx_out.empty() ? nullptr : ctx_out.data(),
              .ctx_size_in = static_cast<uint32_t>(ctx_in.size()), .ctx_size_out = static_cast<uint32_t>(ctx_out.size()),
              .repeat = static_cast<int>(repeat));
  // In a namespace, ctx.ifindex and FIB lookups refer to that namespace's devices and routes.
  std::string detail;
  int rc = RunInNetns(netns, [&]() -> int { return bpf_prog_test_run_opts(fd, &opts) == 0 ? 0 : -errno; }, &detail);
  if (rc != 0) ThrowErrno(env, rc, "program \"" + name_ + "\" testRun" + (detail.empty() ? "" : ": " + detail));
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", static_cast<double>(opts.retval));
  r.Set("duration", static_cast<double>(opts.duration));
  r.Set("data", Napi::Buffer<uint8_t>::Copy(env, out.data(), std::min<size_t>(opts.data_size_out, out_size)));
  if (!ctx_out.empty()) r.Set("ctx", Napi::Buffer<uint8_t>::Copy(env, ctx_out.data(), opts.ctx_size_out));
  return r;
}

// attachXdp(netns, ifname, mode: "native" | "generic" | "auto") -> BpfLink
Napi::Value ProgramHandle::AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgOptString(info, 0, "netns path");
  std::string ifname = ArgString(info, 1, "interface name");
  std::string mode = info.Length() > 2 && !info[2].IsUndefined() ? ArgString(info, 2, "xdp mode") : "auto";
  uint32_t flags;
  if (mode == "native") flags = XDP_FLAGS_DRV_MODE;
  else if (mode == "generic") flags = XDP_FLAGS_SKB_MODE;
  else if (mode == "auto") flags = 0;
  else ThrowType(env, "xdp mode must be \"native\", \"generic\" or \"auto\", not \"" + mode + "\"");
  int fd = Fd(env, "attachXdp");
  if (ifname.empty() || ifname.size() >= IF_NAMESIZE) ThrowType(env, "interface name \"" + ifname + "\" is invalid");
  int link_fd = -1;
  std::string detail;
  int rc = LinkToInterface(fd, netns, ifname, BPF_XDP, flags, &link_fd, &detail);
  std::string what = "xdp " + mode + " \"" + name_ + "\" on " + Where(ifname, netns);
  if (rc != 0) ThrowErrno(env, rc, "attach " + what + (detail.empty() ? "" : ": " + detail));
  return LinkHandle::Create(env, link_fd, what);
}

// attachTcx(netns, ifname, "ingress" | "egress") -> BpfLink
Napi::Value ProgramHandle::AttachTcx(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgOptString(info, 0, "netns path");
  std::string ifname = ArgString(info, 1, "interface name");
  std::string dir = ArgString(info, 2, "direction");
  int type;
  if (dir == "ingress") type = kBpfTcxIngress;
  else if (dir == "egress") type = kBpfTcxEgress;
  else ThrowType(env, "tc direction must be \"ingress\" or \"egress\", not \"" + dir + "\"");
  int fd = Fd(env, "attachTcx");
  if (ifname.empty() || ifname.size() >= IF_NAMESIZE) ThrowType(env, "interface name \"" + ifname + "\" is invalid");
  int link_fd = -1;
  std::string detail;
  int rc = LinkToInterface(fd, netns, ifname, type, 0, &link_fd, &detail);
  std::string what = "tcx " + dir + " \"" + name_ + "\" on " + Where(ifname, netns);
  if (rc != 0) ThrowErrno(env, rc, "attach " + what + (detail.empty() ? "" : ": " + detail));
  return LinkHandle::Create(env, link_fd, what);
}

// attachCgroup(cgroupPath, attachType) -> BpfLink (attachType: enum bpf_attach_type)
Napi::Value ProgramHandle::AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "cgroup path");
  uint32_t type = ArgU32(info, 1, "attach type");
  int fd = Fd(env, "attachCgroup");
  int cg = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  std::string what = "cgroup hook " + std::to_string(type) + " \"" + name_ + "\" on \"" + path + "\"";
  if (cg < 0) ThrowErrno(env, errno, "attach " + what + ": open cgroup");
  int link_fd = bpf_link_create(fd, cg, static_cast<enum bpf_attach_type>(type), nullptr);
  int err = errno;
  close(cg);
  if (link_fd < 0) ThrowErrno(env, err, "attach " + what);
  return LinkHandle::Create(env, link_fd, what);
}

namespace {
// (netns, ifname, direction, priority): the arguments every tc filter call takes, checked.
struct TcFilterArgs {
  std::string netns, ifname, dir;
  uint32_t priority;
};

TcFilterArgs ReadTcFilterArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TcFilterArgs a{ArgOptString(info, 0, "netns path"), ArgString(info, 1, "interface name"), ArgString(info, 2, "direction"),
                 ArgU32(info, 3, "priority")};
  if (a.dir != "ingress" && a.dir != "egress") ThrowType(env, "tc direction must be \"ingress\" or \"egress\", not \"" + a.dir + "\"");
  if (a.priority == 0 || a.priority > 0xffff) ThrowType(env, "tc filter priority must be 1-65535");
  if (a.ifname.empty() || a.ifname.size() >= IF_NAMESIZE) ThrowType(env, "interface name \"" + a.ifname + "\" is invalid");
  return a;
}

// A clsact hook (created if missing) of ifname in netns; fills the hook's ifindex.
int TcHook(const std::string& ifname, const std::string& dir, struct bpf_tc_hook* hook) {
  unsigned int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) return -ENODEV;
  hook->ifindex = static_cast<int>(ifindex);
  hook->attach_point = dir == "ingress" ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  int err = bpf_tc_hook_create(hook);
  return err == -EEXIST ? 0 : err;
}
}  // namespace

// attachTcFilter(netns, ifname, "ingress" | "egress", priority) -> { ifindex, handle, priority }
// A classic clsact cls_bpf filter (direct action): it lives with the device, needs no pin to
// outlive the process, and replacing it at the same priority swaps the program atomically.
// Unlike a tcx link its attach and detach do not wait for an RCU grace period.
Napi::Value ProgramHandle::AttachTcFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TcFilterArgs args = ReadTcFilterArgs(info);
  const std::string &netns = args.netns, &ifname = args.ifname, &dir = args.dir;
  const uint32_t priority = args.priority;
  int fd = Fd(env, "attachTcFilter");
  LIBBPF_OPTS(bpf_tc_hook, hook);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = fd, .flags = BPF_TC_F_REPLACE, .handle = 1, .priority = priority);
  std::string detail;
  int rc = RunInNetns(
      netns,
      [&]() -> int {
        int err = TcHook(ifname, dir, &hook);
        return err ? err : bpf_tc_attach(&hook, &opts);
      },
      &detail);
  std::string what = "tc " + dir + " filter \"" + name_ + "\" on " + Where(ifname, netns);
  if (rc != 0) ThrowErrno(env, rc, "attach " + what + (detail.empty() ? "" : ": " + detail));
  Napi::Object o = Napi::Object::New(env);
  o.Set("ifindex", static_cast<double>(hook.ifindex));
  o.Set("handle", static_cast<double>(opts.handle));
  o.Set("priority", static_cast<double>(opts.priority));
  o.Set("progId", static_cast<double>(opts.prog_id));
  return o;
}

// detachTcFilter(netns, ifname, direction, priority): removes the filter; absent is fine.
Napi::Value DetachTcFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TcFilterArgs args = ReadTcFilterArgs(info);
  const std::string &netns = args.netns, &ifname = args.ifname, &dir = args.dir;
  const uint32_t priority = args.priority;
  bool removed = false;
  std::string detail;
  int rc = RunInNetns(
      netns,
      [&]() -> int {
        unsigned int ifindex = if_nametoindex(ifname.c_str());
        if (ifindex == 0) return 0;  // the device is gone, and its filters with it
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = static_cast<int>(ifindex),
                    .attach_point = dir == "ingress" ? BPF_TC_INGRESS : BPF_TC_EGRESS);
        LIBBPF_OPTS(bpf_tc_opts, opts, .handle = 1, .priority = priority);
        int err = bpf_tc_detach(&hook, &opts);
        if (err == -ENOENT || err == -EINVAL) return 0;  // no such filter (or no clsact at all)
        removed = err == 0;
        return err;
      },
      &detail);
  if (rc != 0) ThrowErrno(env, rc, "detach tc " + dir + " filter on " + Where(ifname, netns) + (detail.empty() ? "" : ": " + detail));
  return Napi::Boolean::New(env, removed);
}

Napi::Value ProgramHandle::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "pin path");
  if (bpf_obj_pin(Fd(env, "pin"), path.c_str()) != 0)
    ThrowErrno(env, errno, "program \"" + name_ + "\" pin \"" + path + "\"");
  return env.Undefined();
}

Napi::Value ProgramHandle::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace bpfnet
