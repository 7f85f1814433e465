// Shared helpers of the bpfnet addon: typed errors, argument checks, namespace threads.
// The addon offers mechanisms only; every decision is made in TypeScript.
#pragma once

#include <napi.h>

#include <functional>
#include <string>

namespace bpfnet {

// Throws the TypeScript BpfError class (registered with setErrorClass) carrying
// the errno name as `code`. Falls back to a plain Error with `code` before registration.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const std::string& message);

// Throws a TypeError (wrong argument type or size).
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);

// The symbolic name of an errno value ("ENOENT"), or "E<number>" if unknown.
std::string ErrnoName(int err);

// Argument readers: each throws a TypeError naming the argument when it does not fit.
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string ArgOptString(const Napi::CallbackInfo& info, size_t i, const char* what);
uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i, const char* what);
uint64_t ArgU64(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* what);

// Runs fn on a short-lived thread with every signal blocked. The verifier and
// BPF_PROG_TEST_RUN give up with EAGAIN when a signal is pending for the calling
// thread; Node's main thread gets SIGCHLD, SIGPROF (--cpu-prof) and more.
int RunOnQuietThread(const std::function<int()>& fn);

// Runs fn on a short-lived thread (signals blocked, as above) that has entered the network namespace at
// netnsPath (empty: the caller's own). Node's and libuv's threads never change
// namespace: a thread left in the wrong one corrupts later work. fn returns 0 or
// a negative errno; the result is returned to the caller.
int RunInNetns(const std::string& netnsPath, const std::function<int()>& fn, std::string* detail);

// rtnetlink, named namespaces and /proc/sys writes (netlink.cc).
void InitNetlink(Napi::Env env, Napi::Object exports);

// What a BPF file descriptor holds, from /proc/self/fdinfo: "map", "prog", "link" or "".
std::string FdKind(int fd);

// Collected libbpf log lines of the current call (verifier output on load failure).
void ClearLibbpfLog();
std::string TakeLibbpfLog();

}  // namespace bpfnet
