#include <bpf/libbpf.h>
#include <errno.h>

#include "common.h"
#include "handles.h"

namespace bpfnet {

Napi::Function RingBufferHandle::Init(Napi::Env env) {
  return DefineClass(env, "BpfRingBuffer",
                     {
                         InstanceMethod("consume", &RingBufferHandle::Consume),
                         InstanceMethod("close", &RingBufferHandle::Close),
                         InstanceMethod("ref", &RingBufferHandle::Ref),
                         InstanceMethod("unref", &RingBufferHandle::Unref),
                     });
}

// new BpfRingBuffer(map, onSample(Buffer)): starts polling at once.
RingBufferHandle::RingBufferHandle(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<RingBufferHandle>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction())
    ThrowType(env, "BpfRingBuffer: expected (map, callback)");
  // The map's own native record decides, never a JS-visible (and overridable) info().
  MapHandle* map = UnwrapArg<MapHandle>(env, info[0], kMapTag, "BpfRingBuffer: first argument", "BpfMap");
  name_ = map->MapName();
  if (map->MapType() != BPF_MAP_TYPE_RINGBUF)
    ThrowErrno(env, EINVAL, "ring buffer on map \"" + name_ + "\": not a BPF_MAP_TYPE_RINGBUF map");
  int fd = map->Fd(env, "ring buffer");
  rb_ = ring_buffer__new(fd, &RingBufferHandle::OnSample, this, nullptr);
  if (rb_ == nullptr) ThrowErrno(env, errno, "ring buffer on map \"" + name_ + "\"");
  callback_ = Napi::Persistent(info[1].As<Napi::Function>());
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  poll_ = new uv_poll_t;
  poll_->data = this;
  int rc = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
  if (rc == 0) rc = uv_poll_start(poll_, UV_READABLE, &RingBufferHandle::OnReadable);
  if (rc != 0) {
    delete poll_;
    poll_ = nullptr;
    ring_buffer__free(rb_);
    rb_ = nullptr;
    ThrowErrno(env, -rc, "ring buffer on map \"" + name_ + "\": poll");
  }
  info.This().As<Napi::Object>().TypeTag(&kRingBufferTag);
  Napi::ObjectWrap<RingBufferHandle>::Ref();  // alive while polling, even with no JS reference
}

RingBufferHandle::~RingBufferHandle() {
  // Only reached after close() (polling holds a reference); a live poll at process
  // teardown is left to the OS rather than touching a loop that may be gone.
  if (poll_ == nullptr && rb_ != nullptr) ring_buffer__free(rb_);
}

int RingBufferHandle::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingBufferHandle*>(ctx);
  if (self->failed_ || self->callback_.IsEmpty()) return -ECANCELED;
  Napi::Env env = self->env_;
  Napi::Buffer<uint8_t> sample = Napi::Buffer<uint8_t>::Copy(env, static_cast<uint8_t*>(data), size);
  try {
    self->callback_.MakeCallback(env.Global(), {sample});
  } catch (const Napi::Error& e) {
    // An exception from the JS callback stops this poll round and reaches
    // process 'uncaughtException', like any event-loop callback's would.
    self->failed_ = true;
    napi_fatal_exception(env, e.Value());
    return -ECANCELED;
  }
  return 0;
}

void RingBufferHandle::OnReadable(uv_poll_t* poll, int status, int /*events*/) {
  auto* self = static_cast<RingBufferHandle*>(poll->data);
  if (status < 0 || self->rb_ == nullptr) return;
  Napi::HandleScope scope(self->env_);
  self->failed_ = false;
  ring_buffer__consume(self->rb_);
}

void RingBufferHandle::OnClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

void RingBufferHandle::Stop() {
  if (poll_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), &RingBufferHandle::OnClosed);
    poll_ = nullptr;
    if (rb_ != nullptr) ring_buffer__free(rb_);
    rb_ = nullptr;
    callback_.Reset();
    Napi::ObjectWrap<RingBufferHandle>::Unref();
  }
}

// consume() -> number of samples delivered now (synchronous drain).
Napi::Value RingBufferHandle::Consume(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (rb_ == nullptr) ThrowErrno(env, EBADF, "ring buffer on map \"" + name_ + "\" consume: closed");
  failed_ = false;
  int n = ring_buffer__consume(rb_);
  if (n < 0 && n != -ECANCELED) ThrowErrno(env, n, "ring buffer on map \"" + name_ + "\" consume");
  return Napi::Number::New(env, n < 0 ? 0 : n);
}

Napi::Value RingBufferHandle::Close(const Napi::CallbackInfo& info) {
  Stop();
  return info.Env().Undefined();
}

// ref()/unref(): whether a live ring buffer keeps the event loop (and the process) alive.
Napi::Value RingBufferHandle::Ref(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

Napi::Value RingBufferHandle::Unref(const Napi::CallbackInfo& info) {
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return info.Env().Undefined();
}

}  // namespace bpfnet
