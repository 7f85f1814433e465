#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "handles.h"

namespace bpfnet {

namespace {
// The last lines of the libbpf log: on a verifier rejection they name the instruction.
std::string LogTail(const std::string& log, size_t lines) {
  size_t pos = log.size();
  size_t found = 0;
  while (pos > 0 && found <= lines) {
    pos = log.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    found++;
  }
  std::string tail = log.substr(pos);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  while (!tail.empty() && tail.front() == '\n') tail.erase(0, 1);
  return tail;
}
}  // namespace

Napi::Function ObjectHandle::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceAccessor("name", &ObjectHandle::Name, nullptr),
                         InstanceAccessor("loaded", &ObjectHandle::Loaded, nullptr),
                         InstanceMethod("setConst", &ObjectHandle::SetConst),
                         InstanceMethod("setMaxEntries", &ObjectHandle::SetMaxEntries),
                         InstanceMethod("reuseMap", &ObjectHandle::ReuseMap),
                         InstanceMethod("load", &ObjectHandle::Load),
                         InstanceMethod("programs", &ObjectHandle::Programs),
                         InstanceMethod("maps", &ObjectHandle::Maps),
                         InstanceMethod("map", &ObjectHandle::Map),
                         InstanceMethod("program", &ObjectHandle::Program),
                         InstanceMethod("close", &ObjectHandle::Close),
                     });
}

// new BpfObject(path, pinRoot?)
ObjectHandle::ObjectHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ObjectHandle>(info) {
  Napi::Env env = info.Env();
  path_ = ArgString(info, 0, "object path");
  pin_root_ = ArgOptString(info, 1, "pin root");
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root_.empty() ? nullptr : pin_root_.c_str());
  ClearLibbpfLog();
  struct bpf_object* obj = bpf_object__open_file(path_.c_str(), &opts);
  int err = libbpf_get_error(obj);
  if (err != 0 || obj == nullptr) {
    std::string log = LogTail(TakeLibbpfLog(), 5);
    ThrowErrno(env, err ? err : -EINVAL, "open object \"" + path_ + "\"" + (log.empty() ? "" : " (" + log + ")"));
  }
  obj_ = obj;
  if (pin_root_.empty()) {
    // Without a pin root nothing is pinned: libbpf would otherwise pin
    // LIBBPF_PIN_BY_NAME maps straight under /sys/fs/bpf, shared by everyone.
    struct bpf_map* map;
    bpf_object__for_each_map(map, obj_) bpf_map__set_pin_path(map, nullptr);
  }
  info.This().As<Napi::Object>().TypeTag(&kObjectTag);
}

ObjectHandle::~ObjectHandle() {
  if (obj_ != nullptr) bpf_object__close(obj_);
}

struct bpf_object* ObjectHandle::Live(Napi::Env env, const char* op) {
  if (obj_ == nullptr) ThrowErrno(env, EBADF, std::string("object \"") + path_ + "\" " + op + ": closed");
  return obj_;
}

struct bpf_map* ObjectHandle::FindMap(Napi::Env env, const std::string& name, const char* op) {
  struct bpf_map* map = bpf_object__find_map_by_name(Live(env, op), name.c_str());
  if (map == nullptr) ThrowErrno(env, ENOENT, "object \"" + path_ + "\" " + op + ": no map \"" + name + "\"");
  return map;
}

Napi::Value ObjectHandle::Name(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), obj_ ? bpf_object__name(obj_) : path_.c_str());
}

Napi::Value ObjectHandle::Loaded(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), loaded_); }

// setConst(name, buffer): writes a `const volatile` global before load.
Napi::Value ObjectHandle::SetConst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "constant name");
  Napi::Buffer<uint8_t> value = ArgBuffer(info, 1, "constant value");
  struct bpf_object* obj = Live(env, "setConst");
  if (loaded_) ThrowErrno(env, EBUSY, "constant \"" + name + "\": object \"" + path_ + "\" is already loaded");
  struct btf* btf = bpf_object__btf(obj);
  if (btf == nullptr) ThrowErrno(env, ENODATA, "constant \"" + name + "\": object \"" + path_ + "\" has no BTF");
  struct bpf_map* rodata = nullptr;
  struct bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const char* mname = bpf_map__name(map);
    size_t len = strlen(mname);
    if (bpf_map__is_internal(map) && len >= 7 && strcmp(mname + len - 7, ".rodata") == 0) rodata = map;
  }
  int sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (rodata == nullptr || sec_id < 0)
    ThrowErrno(env, ENOENT, "constant \"" + name + "\": object \"" + path_ + "\" has no .rodata");
  const struct btf_type* sec = btf__type_by_id(btf, sec_id);
  const struct btf_var_secinfo* vs = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, vs++) {
    const struct btf_type* var = btf__type_by_id(btf, vs->type);
    if (name != btf__name_by_offset(btf, var->name_off)) continue;
    if (value.Length() != vs->size)
      ThrowType(env, "constant \"" + name + "\": value is " + std::to_string(value.Length()) + " bytes, expected " +
                         std::to_string(vs->size));
    size_t size = 0;
    void* data = const_cast<void*>(bpf_map__initial_value(rodata, &size));
    if (data == nullptr || vs->offset + vs->size > size)
      ThrowErrno(env, EINVAL, "constant \"" + name + "\": .rodata image unavailable");
    memcpy(static_cast<uint8_t*>(data) + vs->offset, value.Data(), vs->size);
    return env.Undefined();
  }
  ThrowErrno(env, ENOENT, "constant \"" + name + "\": not found in object \"" + path_ + "\"");
}

// setMaxEntries(map, n): resizes a map before load.
Napi::Value ObjectHandle::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  uint32_t n = ArgU32(info, 1, "max entries");
  struct bpf_map* map = FindMap(env, name, "setMaxEntries");
  if (loaded_) ThrowErrno(env, EBUSY, "map \"" + name + "\" setMaxEntries: object is already loaded");
  int err = bpf_map__set_max_entries(map, n);
  if (err) ThrowErrno(env, err, "map \"" + name + "\" setMaxEntries");
  return env.Undefined();
}

// reuseMap(name, pinnedPath): the object uses an existing pinned map instead of creating one.
Napi::Value ObjectHandle::ReuseMap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  std::string path = ArgString(info, 1, "pinned path");
  struct bpf_map* map = FindMap(env, name, "reuseMap");
  if (loaded_) ThrowErrno(env, EBUSY, "map \"" + name + "\" reuseMap: object is already loaded");
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "map \"" + name + "\" reuseMap: open pin \"" + path + "\"");
  int err = bpf_map__reuse_fd(map, fd);
  close(fd);  // reuse_fd dups it
  if (err) ThrowErrno(env, err, "map \"" + name + "\" reuseMap \"" + path + "\"");
  return env.Undefined();
}

Napi::Value ObjectHandle::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Live(env, "load");
  if (loaded_) ThrowErrno(env, EALREADY, "load object \"" + path_ + "\"");
  ClearLibbpfLog();
  int err = RunOnQuietThread([&]() { return bpf_object__load(obj); });
  if (err) {
    std::string log = LogTail(TakeLibbpfLog(), 24);
    ThrowErrno(env, err, "load object \"" + path_ + "\"" + (log.empty() ? "" : "\n" + log + "\n"));
  }
  TakeLibbpfLog();
  loaded_ = true;
  return env.Undefined();
}

Napi::Value ObjectHandle::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Live(env, "programs");
  Napi::Array out = Napi::Array::New(env);
  struct bpf_program* prog;
  uint32_t i = 0;
  bpf_object__for_each_program(prog, obj) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("name", bpf_program__name(prog));
    p.Set("section", bpf_program__section_name(prog));
    p.Set("type", static_cast<double>(bpf_program__type(prog)));
    out.Set(i++, p);
  }
  return out;
}

Napi::Value ObjectHandle::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct bpf_object* obj = Live(env, "maps");
  Napi::Array out = Napi::Array::New(env);
  struct bpf_map* map;
  uint32_t i = 0;
  bpf_object__for_each_map(map, obj) {
    Napi::Object m = Napi::Object::New(env);
    m.Set("name", bpf_map__name(map));
    m.Set("type", static_cast<double>(bpf_map__type(map)));
    m.Set("keySize", static_cast<double>(bpf_map__key_size(map)));
    m.Set("valueSize", static_cast<double>(bpf_map__value_size(map)));
    m.Set("maxEntries", static_cast<double>(bpf_map__max_entries(map)));
    m.Set("flags", static_cast<double>(bpf_map__map_flags(map)));
    m.Set("internal", bpf_map__is_internal(map));
    const char* pin = bpf_map__pin_path(map);
    if (pin != nullptr) m.Set("pinPath", pin);
    out.Set(i++, m);
  }
  return out;
}

Napi::Value ObjectHandle::Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "map name");
  struct bpf_map* map = FindMap(env, name, "map");
  if (!loaded_) ThrowErrno(env, EINVAL, "map \"" + name + "\": object \"" + path_ + "\" is not loaded");
  int fd = fcntl(bpf_map__fd(map), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) ThrowErrno(env, errno, "map \"" + name + "\": dup");
  return MapHandle::Create(env, fd, name);
}

Napi::Value ObjectHandle::Program(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgString(info, 0, "program name");
  struct bpf_program* prog = bpf_object__find_program_by_name(Live(env, "program"), name.c_str());
  if (prog == nullptr) ThrowErrno(env, ENOENT, "object \"" + path_ + "\": no program \"" + name + "\"");
  if (!loaded_) ThrowErrno(env, EINVAL, "program \"" + name + "\": object \"" + path_ + "\" is not loaded");
  int fd = fcntl(bpf_program__fd(prog), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) ThrowErrno(env, errno, "program \"" + name + "\": dup");
  return ProgramHandle::Create(env, fd, name, bpf_program__type(prog));
}

Napi::Value ObjectHandle::Close(const Napi::CallbackInfo& info) {
  if (obj_ != nullptr) bpf_object__close(obj_);
  obj_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace bpfnet
