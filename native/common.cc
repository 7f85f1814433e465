#include "common.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <thread>

namespace bpfnet {

namespace {
Napi::FunctionReference* g_error_class = nullptr;

std::mutex g_log_mutex;
std::string g_log;

int CollectLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string line(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), fmt, args);
  line.resize(static_cast<size_t>(n));
  std::lock_guard<std::mutex> lock(g_log_mutex);
  // Bounded: a verifier log can be megabytes; the tail is what explains a rejection.
  g_log.append(line);
  if (g_log.size() > 64 * 1024) g_log.erase(0, g_log.size() - 64 * 1024);
  return n;
}
}  // namespace

void SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) ThrowType(info.Env(), "setErrorClass: expected a constructor");
  if (g_error_class == nullptr) g_error_class = new Napi::FunctionReference();
  *g_error_class = Napi::Persistent(info[0].As<Napi::Function>());
}

void InstallLibbpfLog() { libbpf_set_print(CollectLibbpfLog); }

void ClearLibbpfLog() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_log.clear();
}

std::string TakeLibbpfLog() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string out;
  out.swap(g_log);
  return out;
}

std::string ErrnoName(int err) {
  if (err < 0) err = -err;
  switch (err) {
#define NAME(e) \
  case e:       \
    return #e;
    NAME(EPERM) NAME(ENOENT) NAME(ESRCH) NAME(EINTR) NAME(EIO) NAME(ENXIO) NAME(E2BIG) NAME(ENOEXEC)
    NAME(EBADF) NAME(EAGAIN) NAME(ENOMEM) NAME(EACCES) NAME(EFAULT) NAME(EBUSY) NAME(EEXIST) NAME(EXDEV)
    NAME(ENODEV) NAME(ENOTDIR) NAME(EISDIR) NAME(EINVAL) NAME(ENFILE) NAME(EMFILE) NAME(ENOSPC)
    NAME(ERANGE) NAME(ENAMETOOLONG) NAME(ENOSYS) NAME(ENOTEMPTY) NAME(ELOOP) NAME(ENODATA)
    NAME(EOPNOTSUPP) NAME(EADDRINUSE) NAME(ENETDOWN) NAME(ETIMEDOUT) NAME(EALREADY) NAME(ECANCELED)
    NAME(EPROTO) NAME(EBADMSG) NAME(EOVERFLOW) NAME(EMSGSIZE)
#undef NAME
    case 524:
      return "ENOTSUPP";  // kernel-internal, leaks out of some bpf commands
    default:
      return "E" + std::to_string(err);
  }
}

void ThrowErrno(Napi::Env env, int err, const std::string& message) {
  if (err < 0) err = -err;
  std::string full = message + ": " + (err == 524 ? "Operation not supported" : strerror(err));
  std::string code = ErrnoName(err);
  Napi::Object obj;
  if (g_error_class != nullptr && !g_error_class->IsEmpty()) {
    obj = g_error_class->New({Napi::String::New(env, full), Napi::String::New(env, code),
                              Napi::Number::New(env, err)});
  } else {
    obj = Napi::Error::New(env, full).Value();
    obj.Set("code", code);
    obj.Set("errno", err);
  }
  throw Napi::Error(env, obj);
}

void ThrowType(Napi::Env env, const std::string& message) { throw Napi::TypeError::New(env, message); }

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) ThrowType(info.Env(), std::string(what) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) ThrowType(info.Env(), std::string(what) + " must not contain NUL");
  return s;
}

std::string ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return "";
  return ArgString(info, i, what);
}

uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) ThrowType(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d)))
    ThrowType(info.Env(), std::string(what) + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  uint64_t v = ArgU64(info, i, what);
  if (v > 0xffffffffULL) ThrowType(info.Env(), std::string(what) + " must fit in 32 bits");
  return static_cast<uint32_t>(v);
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) ThrowType(info.Env(), std::string(what) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

std::string FdKind(int fd) {
  std::string path = "/proc/self/fdinfo/" + std::to_string(fd);
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return "";
  char line[256];
  std::string kind;
  while (kind.empty() && fgets(line, sizeof(line), f) != nullptr) {
    if (strncmp(line, "map_type:", 9) == 0) kind = "map";
    else if (strncmp(line, "prog_type:", 10) == 0) kind = "prog";
    else if (strncmp(line, "link_type:", 10) == 0) kind = "link";
  }
  fclose(f);
  return kind;
}

int RunOnQuietThread(const std::function<int()>& fn) {
  int result = 0;
  std::thread worker([&]() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    result = fn();
  });
  worker.join();
  return result;
}

int RunInNetns(const std::string& netnsPath, const std::function<int()>& fn, std::string* detail) {
  if (netnsPath.empty()) return RunOnQuietThread(fn);
  int nsfd = open(netnsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (nsfd < 0) {
    int err = errno;
    if (detail) *detail = "open network namespace \"" + netnsPath + "\"";
    return -err;
  }
  bool entered = false;
  // A fresh thread per call: it enters the namespace, does the work and ends,
  // so no thread that outlives the call ever sits in another namespace.
  int result = RunOnQuietThread([&]() -> int {
    if (setns(nsfd, CLONE_NEWNET) != 0) return -errno;
    entered = true;
    return fn();
  });
  close(nsfd);
  if (!entered && detail) *detail = "enter network namespace \"" + netnsPath + "\"";
  return result;
}

}  // namespace bpfnet
