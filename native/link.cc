#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "handles.h"

namespace bpfnet {

namespace {
Napi::FunctionReference* g_link_ctor = nullptr;
}

Napi::Function LinkHandle::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "BpfLink",
                                    {
                                        StaticMethod("openPinned", &LinkHandle::OpenPinned),
                                        InstanceMethod("info", &LinkHandle::Info),
                                        InstanceMethod("pin", &LinkHandle::Pin),
                                        InstanceMethod("update", &LinkHandle::Update),
                                        InstanceMethod("detach", &LinkHandle::Detach),
                                        InstanceMethod("close", &LinkHandle::Close),
                                    });
  g_link_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
  return ctor;
}

Napi::Object LinkHandle::Create(Napi::Env env, int fd, const std::string& what) {
  return g_link_ctor->New({Napi::External<int>::New(env, &fd), Napi::String::New(env, what)});
}

LinkHandle::LinkHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LinkHandle>(info) {
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsString())
    ThrowType(info.Env(), "BpfLink cannot be constructed directly: use a program's attach methods or BpfLink.openPinned()");
  fd_ = *info[0].As<Napi::External<int>>().Data();
  what_ = info[1].As<Napi::String>().Utf8Value();
  info.This().As<Napi::Object>().TypeTag(&kLinkTag);
}

// Closing a link's last fd detaches it unless it is pinned: that is how an unpinned
// attachment dies with its process, and a pinned one outlives the daemon.
LinkHandle::~LinkHandle() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value LinkHandle::OpenPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "pinned path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "open pinned link \"" + path + "\"");
  if (FdKind(fd) != "link") {
    close(fd);
    ThrowErrno(env, EINVAL, "open pinned link \"" + path + "\": not a link");
  }
  return Create(env, fd, "link \"" + path + "\"");
}

int LinkHandle::Fd(Napi::Env env, const char* op) {
  if (fd_ < 0) ThrowErrno(env, EBADF, what_ + " " + op + ": closed");
  return fd_;
}

// info() -> { id, type, progId, ifindex? }: ifindex for XDP and tcx links (same union slot).
Napi::Value LinkHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_link_info li;
  memset(&li, 0, sizeof(li));
  uint32_t len = sizeof(li);
  if (bpf_obj_get_info_by_fd(Fd(env, "info"), &li, &len) != 0) ThrowErrno(env, errno, what_ + " info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("id", static_cast<double>(li.id));
  o.Set("type", static_cast<double>(li.type));
  o.Set("progId", static_cast<double>(li.prog_id));
  constexpr uint32_t kLinkTypeTcx = 11;
  if (li.type == BPF_LINK_TYPE_XDP || li.type == kLinkTypeTcx) o.Set("ifindex", static_cast<double>(li.xdp.ifindex));
  o.Set("description", what_);
  return o;
}

Napi::Value LinkHandle::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "pin path");
  if (bpf_obj_pin(Fd(env, "pin"), path.c_str()) != 0) ThrowErrno(env, errno, what_ + " pin \"" + path + "\"");
  return env.Undefined();
}

// update(program): swaps the attached program atomically (a restarted daemon installs its new code).
Napi::Value LinkHandle::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) ThrowType(env, "update: expected a BpfProgram");
  int prog_fd = ProgramHandle::FdOf(env, info[0], "update: program");
  if (bpf_link_update(Fd(env, "update"), prog_fd, nullptr) != 0) ThrowErrno(env, errno, what_ + " update");
  return env.Undefined();
}

// detach(): the attachment ends now, even if the link is pinned elsewhere.
Napi::Value LinkHandle::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (bpf_link_detach(Fd(env, "detach")) != 0) ThrowErrno(env, errno, what_ + " detach");
  close(fd_);
  fd_ = -1;
  return env.Undefined();
}

Napi::Value LinkHandle::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace bpfnet
