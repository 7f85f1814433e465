// One ObjectWrap class per kernel handle: object, program, map, link, ring buffer.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>
#include <uv.h>

#include "common.h"

#include <string>
#include <vector>

namespace bpfnet {

void SetErrorClass(const Napi::CallbackInfo& info);

// One type tag per handle class, set on each instance by its constructor. An argument is
// checked against the tag before it is unwrapped: napi_unwrap alone accepts any wrapped
// object, and instanceof follows a prototype chain that JS can forge (Object.setPrototypeOf).
extern const napi_type_tag kObjectTag, kMapTag, kProgramTag, kLinkTag, kRingBufferTag;

// The native handle behind value if it is an instance of T (carries T's tag); otherwise throws a
// TypeError "<what> must be a <cls>" and nothing reaches native code as the wrong type.
template <class T>
T* UnwrapArg(Napi::Env env, Napi::Value value, const napi_type_tag& tag, const std::string& what, const char* cls) {
  if (!value.IsObject() || !value.As<Napi::Object>().CheckTypeTag(&tag)) ThrowType(env, what + " must be a " + cls);
  napi_value raw = value;
  void* native = nullptr;
  if (napi_unwrap(env, raw, &native) != napi_ok || native == nullptr) ThrowType(env, what + " must be a " + cls);
  return static_cast<T*>(native);
}
Napi::Value DetachTcFilter(const Napi::CallbackInfo& info);
void InstallLibbpfLog();

// An open (and later loaded) ELF object file.
class ObjectHandle : public Napi::ObjectWrap<ObjectHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit ObjectHandle(const Napi::CallbackInfo& info);
  ~ObjectHandle() override;

 private:
  struct bpf_object* Live(Napi::Env env, const char* op);
  struct bpf_map* FindMap(Napi::Env env, const std::string& name, const char* op);
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value Loaded(const Napi::CallbackInfo& info);
  Napi::Value SetConst(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value ReuseMap(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Map(const Napi::CallbackInfo& info);
  Napi::Value Program(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  struct bpf_object* obj_ = nullptr;
  std::string path_;
  std::string pin_root_;
  bool loaded_ = false;
};

// A map file descriptor (owned: dup'ed from an object or opened from a pin).
class MapHandle : public Napi::ObjectWrap<MapHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Create(Napi::Env env, int fd, const std::string& name);
  explicit MapHandle(const Napi::CallbackInfo& info);
  ~MapHandle() override;
  int Fd(Napi::Env env, const char* op);
  const std::string& MapName() const { return name_; }
  uint32_t MapType() const { return type_; }

 private:
  static Napi::Value OpenPinned(const Napi::CallbackInfo& info);
  void CheckKey(Napi::Env env, const char* op, size_t len);
  void CheckValue(Napi::Env env, const char* op, size_t len);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value Keys(const Napi::CallbackInfo& info);
  Napi::Value Entries(const Napi::CallbackInfo& info);
  Napi::Value Dump(const Napi::CallbackInfo& info);
  size_t Collect(Napi::Env env, const char* op, std::vector<uint8_t>& keys, std::vector<uint8_t>& values);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);

  int fd_ = -1;
  std::string name_;
  uint32_t type_ = 0, key_size_ = 0, value_size_ = 0, max_entries_ = 0, flags_ = 0, id_ = 0;
  size_t value_len_ = 0;  // bytes a syscall reads or writes per value (per-CPU: rounded x CPUs)
  bool per_cpu_ = false;
};

// A program file descriptor (owned).
class ProgramHandle : public Napi::ObjectWrap<ProgramHandle> {
 public:
  /** The program fd behind a JS BpfProgram object, or -1 (with a TypeError thrown) if it is not one. */
  static int FdOf(Napi::Env env, Napi::Value value, const char* what);
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Create(Napi::Env env, int fd, const std::string& name, uint32_t type);
  explicit ProgramHandle(const Napi::CallbackInfo& info);
  ~ProgramHandle() override;

 private:
  static Napi::Value OpenPinned(const Napi::CallbackInfo& info);
  int Fd(Napi::Env env, const char* op);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  Napi::Value AttachTcx(const Napi::CallbackInfo& info);
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info);
  Napi::Value AttachTcFilter(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);

  int fd_ = -1;
  std::string name_;
  uint32_t type_ = 0;
};

// A BPF link (an attachment): pinnable, detachable.
class LinkHandle : public Napi::ObjectWrap<LinkHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Create(Napi::Env env, int fd, const std::string& what);
  explicit LinkHandle(const Napi::CallbackInfo& info);
  ~LinkHandle() override;

 private:
  static Napi::Value OpenPinned(const Napi::CallbackInfo& info);
  int Fd(Napi::Env env, const char* op);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
  std::string what_;
};

// A BPF ring buffer consumed on the Node event loop (uv_poll on libbpf's epoll fd).
class RingBufferHandle : public Napi::ObjectWrap<RingBufferHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RingBufferHandle(const Napi::CallbackInfo& info);
  ~RingBufferHandle() override;

 private:
  static int OnSample(void* ctx, void* data, size_t size);
  static void OnReadable(uv_poll_t* poll, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  void Stop();
  Napi::Value Consume(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);

  Napi::Env env_;
  struct ring_buffer* rb_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  std::string name_;
  bool failed_ = false;
};

}  // namespace bpfnet
