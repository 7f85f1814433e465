#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <vector>

#include "common.h"
#include "handles.h"

namespace bpfnet {

namespace {
Napi::FunctionReference* g_map_ctor = nullptr;

bool IsPerCpu(uint32_t type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// Maps whose values are not readable from user space through lookup.
bool HasNoValues(uint32_t type) {
  return type == BPF_MAP_TYPE_RINGBUF || type == BPF_MAP_TYPE_PERF_EVENT_ARRAY;
}
}  // namespace

Napi::Function MapHandle::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "BpfMap",
                                    {
                                        StaticMethod("openPinned", &MapHandle::OpenPinned),
                                        InstanceAccessor("fd", &MapHandle::GetFd, nullptr),
                                        InstanceMethod("info", &MapHandle::Info),
                                        InstanceMethod("lookup", &MapHandle::Lookup),
                                        InstanceMethod("update", &MapHandle::Update),
                                        InstanceMethod("delete", &MapHandle::Delete),
                                        InstanceMethod("keys", &MapHandle::Keys),
                                        InstanceMethod("entries", &MapHandle::Entries),
                                        InstanceMethod("dump", &MapHandle::Dump),
                                        InstanceMethod("updateBatch", &MapHandle::UpdateBatch),
                                        InstanceMethod("deleteBatch", &MapHandle::DeleteBatch),
                                        InstanceMethod("pin", &MapHandle::Pin),
                                        InstanceMethod("close", &MapHandle::Close),
                                    });
  g_map_ctor = new Napi::FunctionReference(Napi::Persistent(ctor));
  return ctor;
}

Napi::Object MapHandle::Create(Napi::Env env, int fd, const std::string& name) {
  return g_map_ctor->New({Napi::External<int>::New(env, &fd), Napi::String::New(env, name)});
}

// Only reachable through Create or openPinned: the first argument is an internal token.
MapHandle::MapHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MapHandle>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsString())
    ThrowType(env, "BpfMap cannot be constructed directly: use BpfObject.map() or BpfMap.openPinned()");
  int fd = *info[0].As<Napi::External<int>>().Data();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "map \"" + name + "\": get info");
  }
  fd_ = fd;
  name_ = name.empty() ? mi.name : name;
  type_ = mi.type;
  key_size_ = mi.key_size;
  value_size_ = mi.value_size;
  max_entries_ = mi.max_entries;
  flags_ = mi.map_flags;
  id_ = mi.id;
  per_cpu_ = IsPerCpu(type_);
  value_len_ = per_cpu_ ? ((value_size_ + 7) & ~7u) * static_cast<size_t>(libbpf_num_possible_cpus()) : value_size_;
  info.This().As<Napi::Object>().TypeTag(&kMapTag);
}

MapHandle::~MapHandle() {
  if (fd_ >= 0) close(fd_);
}

Napi::Value MapHandle::OpenPinned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "pinned path");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "open pinned map \"" + path + "\"");
  // A pin can hold any BPF object: refuse a program or link here rather than misuse it later.
  if (FdKind(fd) != "map") {
    close(fd);
    ThrowErrno(env, EINVAL, "open pinned map \"" + path + "\": not a map");
  }
  return Create(env, fd, "");
}

int MapHandle::Fd(Napi::Env env, const char* op) {
  if (fd_ < 0) ThrowErrno(env, EBADF, "map \"" + name_ + "\" " + op + ": closed");
  return fd_;
}

void MapHandle::CheckKey(Napi::Env env, const char* op, size_t len) {
  if (len != key_size_)
    ThrowType(env, "map \"" + name_ + "\" " + op + ": key is " + std::to_string(len) + " bytes, expected " +
                       std::to_string(key_size_));
}

void MapHandle::CheckValue(Napi::Env env, const char* op, size_t len) {
  if (len != value_len_)
    ThrowType(env, "map \"" + name_ + "\" " + op + ": value is " + std::to_string(len) + " bytes, expected " +
                       std::to_string(value_len_) + (per_cpu_ ? " (per-CPU)" : ""));
}

Napi::Value MapHandle::GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

Napi::Value MapHandle::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Fd(env, "info");
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name_);
  o.Set("id", static_cast<double>(id_));
  o.Set("type", static_cast<double>(type_));
  o.Set("keySize", static_cast<double>(key_size_));
  o.Set("valueSize", static_cast<double>(value_size_));
  o.Set("maxEntries", static_cast<double>(max_entries_));
  o.Set("flags", static_cast<double>(flags_));
  o.Set("perCpu", per_cpu_);
  o.Set("valueBytes", static_cast<double>(value_len_));
  o.Set("cpus", static_cast<double>(per_cpu_ ? libbpf_num_possible_cpus() : 1));
  return o;
}

// lookup(key) -> Buffer | null
Napi::Value MapHandle::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 0, "key");
  int fd = Fd(env, "lookup");
  CheckKey(env, "lookup", key.Length());
  if (HasNoValues(type_)) ThrowErrno(env, EOPNOTSUPP, "map \"" + name_ + "\" lookup");
  std::vector<uint8_t> value(value_len_ ? value_len_ : 1);
  if (bpf_map_lookup_elem(fd, key.Data(), value.data()) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowErrno(env, errno, "map \"" + name_ + "\" lookup");
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value_len_);
}

// update(key, value, flags = BPF_ANY)
Napi::Value MapHandle::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 0, "key");
  Napi::Buffer<uint8_t> value = ArgBuffer(info, 1, "value");
  uint64_t flags = info.Length() > 2 && !info[2].IsUndefined() ? ArgU64(info, 2, "flags") : static_cast<uint64_t>(BPF_ANY);
  int fd = Fd(env, "update");
  CheckKey(env, "update", key.Length());
  CheckValue(env, "update", value.Length());
  if (bpf_map_update_elem(fd, key.Data(), value.Data(), flags) != 0) {
    int err = errno;
    const char* why = err == EEXIST   ? " (only-new: key exists)"
                      : err == ENOENT ? " (only-existing: no such key)"
                      : err == E2BIG  ? " (map is full)"
                                      : "";
    ThrowErrno(env, err, "map \"" + name_ + "\" update" + why);
  }
  return env.Undefined();
}

// delete(key) -> true if removed, false if absent
Napi::Value MapHandle::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> key = ArgBuffer(info, 0, "key");
  int fd = Fd(env, "delete");
  CheckKey(env, "delete", key.Length());
  if (bpf_map_delete_elem(fd, key.Data()) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "map \"" + name_ + "\" delete");
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value MapHandle::Keys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env, "keys");
  Napi::Array out = Napi::Array::New(env);
  std::vector<uint8_t> cur(key_size_ ? key_size_ : 1), next(key_size_ ? key_size_ : 1);
  const void* prev = nullptr;
  uint32_t n = 0;
  // Entries deleted concurrently can restart the walk; the bound keeps it finite.
  uint64_t limit = static_cast<uint64_t>(max_entries_) * 2 + 16;
  while (n < limit) {
    if (bpf_map_get_next_key(fd, prev, next.data()) != 0) {
      if (errno == ENOENT) break;
      ThrowErrno(env, errno, "map \"" + name_ + "\" keys");
    }
    out.Set(n++, Napi::Buffer<uint8_t>::Copy(env, next.data(), key_size_));
    cur.swap(next);
    prev = cur.data();
  }
  return out;
}

// Every entry, packed back to back into keys and values: a batch walk where the map supports
// it, else key by key. Returns the number of entries.
size_t MapHandle::Collect(Napi::Env env, const char* op, std::vector<uint8_t>& keys, std::vector<uint8_t>& values) {
  int fd = Fd(env, op);
  if (HasNoValues(type_)) ThrowErrno(env, EOPNOTSUPP, "map \"" + name_ + "\" " + op);
  keys.clear();
  values.clear();
  size_t n = 0;
  bool batched = type_ == BPF_MAP_TYPE_HASH || type_ == BPF_MAP_TYPE_LRU_HASH ||
                 type_ == BPF_MAP_TYPE_PERCPU_HASH || type_ == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  if (batched) {
    uint32_t chunk = 4096;
    uint64_t in_token = 0, out_token = 0;
    bool first = true;
    for (;;) {
      uint32_t count = chunk;
      keys.resize((n + chunk) * key_size_);
      values.resize((n + chunk) * value_len_);
      LIBBPF_OPTS(bpf_map_batch_opts, opts);
      int rc = bpf_map_lookup_batch(fd, first ? nullptr : &in_token, &out_token, keys.data() + n * key_size_,
                                    values.data() + n * value_len_, &count, &opts);
      int err = rc ? errno : 0;
      if (rc != 0 && err == ENOSPC && count == 0) {
        chunk *= 2;  // one hash bucket holds more than a chunk
        continue;
      }
      if (rc != 0 && err != ENOENT) {
        if (first && (err == EINVAL || err == EOPNOTSUPP || err == 524)) {
          batched = false;
          break;
        }
        ThrowErrno(env, err, "map \"" + name_ + "\" " + op);
      }
      n += count;
      if (rc != 0) break;  // ENOENT: walk complete
      in_token = out_token;
      first = false;
    }
    if (batched) {
      keys.resize(n * key_size_);
      values.resize(n * value_len_);
      return n;
    }
    n = 0;
    keys.clear();
    values.clear();
  }
  std::vector<uint8_t> cur(key_size_ ? key_size_ : 1), next(key_size_ ? key_size_ : 1), value(value_len_ ? value_len_ : 1);
  const void* prev = nullptr;
  uint64_t limit = static_cast<uint64_t>(max_entries_) * 2 + 16;
  for (uint64_t steps = 0; steps < limit; steps++) {
    if (bpf_map_get_next_key(fd, prev, next.data()) != 0) {
      if (errno == ENOENT) break;
      ThrowErrno(env, errno, "map \"" + name_ + "\" " + op);
    }
    cur.swap(next);
    prev = cur.data();
    if (bpf_map_lookup_elem(fd, cur.data(), value.data()) != 0) {
      if (errno == ENOENT) continue;  // deleted under us
      ThrowErrno(env, errno, "map \"" + name_ + "\" " + op);
    }
    keys.insert(keys.end(), cur.begin(), cur.begin() + key_size_);
    values.insert(values.end(), value.begin(), value.begin() + value_len_);
    n++;
  }
  return n;
}

// entries() -> [key, value][]
Napi::Value MapHandle::Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> keys, values;
  size_t n = Collect(env, "entries", keys, values);
  Napi::Array out = Napi::Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Buffer<uint8_t>::Copy(env, keys.data() + i * key_size_, key_size_));
    pair.Set(1u, Napi::Buffer<uint8_t>::Copy(env, values.data() + i * value_len_, value_len_));
    out.Set(static_cast<uint32_t>(i), pair);
  }
  return out;
}

// dump() -> { keys, values, count }: every entry packed back to back (no object per entry:
// scanning a connection table of 500,000 entries stays cheap).
Napi::Value MapHandle::Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<uint8_t> keys, values;
  size_t n = Collect(env, "dump", keys, values);
  Napi::Object o = Napi::Object::New(env);
  o.Set("keys", Napi::Buffer<uint8_t>::Copy(env, keys.data(), keys.size()));
  o.Set("values", Napi::Buffer<uint8_t>::Copy(env, values.data(), values.size()));
  o.Set("count", static_cast<double>(n));
  return o;
}

// updateBatch(keys, values, flags = BPF_ANY) -> number updated; keys and values are packed back to back.
Napi::Value MapHandle::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 0, "keys");
  Napi::Buffer<uint8_t> values = ArgBuffer(info, 1, "values");
  uint64_t flags = info.Length() > 2 && !info[2].IsUndefined() ? ArgU64(info, 2, "flags") : static_cast<uint64_t>(BPF_ANY);
  int fd = Fd(env, "updateBatch");
  if (key_size_ == 0 || keys.Length() % key_size_ != 0)
    ThrowType(env, "map \"" + name_ + "\" updateBatch: keys are " + std::to_string(keys.Length()) +
                       " bytes, not a multiple of " + std::to_string(key_size_));
  uint32_t count = static_cast<uint32_t>(keys.Length() / key_size_);
  if (values.Length() != static_cast<size_t>(count) * value_len_)
    ThrowType(env, "map \"" + name_ + "\" updateBatch: values are " + std::to_string(values.Length()) +
                       " bytes, expected " + std::to_string(static_cast<size_t>(count) * value_len_));
  if (count == 0) return Napi::Number::New(env, 0);
  LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = flags);
  uint32_t done = count;
  if (bpf_map_update_batch(fd, keys.Data(), values.Data(), &done, &opts) != 0)
    ThrowErrno(env, errno, "map \"" + name_ + "\" updateBatch of " + std::to_string(count) + " entries");
  return Napi::Number::New(env, done);
}

// deleteBatch(keys) -> number deleted
Napi::Value MapHandle::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> keys = ArgBuffer(info, 0, "keys");
  int fd = Fd(env, "deleteBatch");
  if (key_size_ == 0 || keys.Length() % key_size_ != 0)
    ThrowType(env, "map \"" + name_ + "\" deleteBatch: keys are " + std::to_string(keys.Length()) +
                       " bytes, not a multiple of " + std::to_string(key_size_));
  uint32_t count = static_cast<uint32_t>(keys.Length() / key_size_);
  if (count == 0) return Napi::Number::New(env, 0);
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  uint32_t done = count;
  if (bpf_map_delete_batch(fd, keys.Data(), &done, &opts) != 0)
    ThrowErrno(env, errno, "map \"" + name_ + "\" deleteBatch of " + std::to_string(count) + " keys");
  return Napi::Number::New(env, done);
}

Napi::Value MapHandle::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "pin path");
  if (bpf_obj_pin(Fd(env, "pin"), path.c_str()) != 0)
    ThrowErrno(env, errno, "map \"" + name_ + "\" pin \"" + path + "\"");
  return env.Undefined();
}

Napi::Value MapHandle::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace bpfnet
