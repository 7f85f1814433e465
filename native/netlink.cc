// rtnetlink and named namespaces for the controller, without a process per step. Requests are
// built in TypeScript (src/system/rtnl.ts); here they are sent inside a namespace one at a time,
// each waiting for its acknowledgement, stopping at the first refusal, as `ip -batch` does.
// Named namespaces are made and removed as iproute2's `ip netns add/delete` make them, and
// /proc/sys files are written from a thread inside the namespace they belong to.
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common.h"

namespace bpfnet {

namespace {

// Where a request wants an interface index that only exists once the requests before it ran:
// the u32 at `offset` of request `index` becomes if_nametoindex(name) just before it is sent.
struct IndexPatch {
  uint32_t index;
  uint32_t offset;
  std::string name;
};

struct Outcome {
  int error = 0;          // 0, or the positive errno of the first refused request
  uint32_t failed = 0;    // its position
  std::string message;    // the kernel's extended acknowledgement, or what failed here
  std::vector<uint8_t> replies;  // the messages a dump answered with
};

int OpenSocket() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  // A kernel that never answers must not hang the daemon's event loop.
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_nl local = {};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&local), sizeof(local)) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

// The text of NLMSGERR_ATTR_MSG after an error's header, if the kernel sent one.
std::string ExtAck(const struct nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  size_t off = NLMSG_HDRLEN + sizeof(struct nlmsgerr);  // CAP_ACK: the request is not echoed
  while (off + sizeof(struct nlattr) <= h->nlmsg_len) {
    auto* a = reinterpret_cast<const struct nlattr*>(reinterpret_cast<const uint8_t*>(h) + off);
    if (a->nla_len < sizeof(struct nlattr) || off + a->nla_len > h->nlmsg_len) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* s = reinterpret_cast<const char*>(a) + sizeof(struct nlattr);
      return std::string(s, strnlen(s, a->nla_len - sizeof(struct nlattr)));
    }
    off += NLA_ALIGN(a->nla_len);
  }
  return "";
}

// Sends one request and reads until its acknowledgement (or, for a dump, NLMSG_DONE).
int Exchange(int fd, uint8_t* req, uint32_t len, Outcome* out) {
  auto* hdr = reinterpret_cast<struct nlmsghdr*>(req);
  const bool dump = hdr->nlmsg_flags & NLM_F_DUMP;
  if (send(fd, req, len, 0) != static_cast<ssize_t>(len)) return errno ? errno : EIO;
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? ETIMEDOUT : errno;
    }
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<uint32_t>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_seq != hdr->nlmsg_seq) continue;  // not ours (nothing else shares this socket)
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = reinterpret_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return 0;
        out->message = ExtAck(h);
        return -e->error;
      }
      if (dump) out->replies.insert(out->replies.end(), reinterpret_cast<uint8_t*>(h), reinterpret_cast<uint8_t*>(h) + h->nlmsg_len);
    }
  }
}

// rtnetlink(netnsPath, requests: Buffer, patches: Array<[index, offset, ifname]>)
//   -> { error: number, failed: number, message: string, text: strerror(error), replies: Buffer }
Napi::Value Rtnetlink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgOptString(info, 0, "netns path");
  Napi::Buffer<uint8_t> in = ArgBuffer(info, 1, "requests");
  std::vector<uint8_t> reqs(in.Data(), in.Data() + in.Length());
  std::vector<IndexPatch> patches;
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array list = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Array p = list.Get(i).As<Napi::Array>();
      patches.push_back({p.Get(0u).As<Napi::Number>().Uint32Value(), p.Get(1u).As<Napi::Number>().Uint32Value(), p.Get(2u).As<Napi::String>().Utf8Value()});
    }
  }
  Outcome out;
  std::string detail;
  int rc = RunInNetns(
      netns,
      [&]() -> int {
        int fd = OpenSocket();
        if (fd < 0) return fd;
        uint32_t off = 0, index = 0;
        while (off + NLMSG_HDRLEN <= reqs.size()) {
          auto* h = reinterpret_cast<struct nlmsghdr*>(reqs.data() + off);
          if (h->nlmsg_len < NLMSG_HDRLEN || off + h->nlmsg_len > reqs.size()) {
            out.error = EINVAL;
            out.message = "malformed request";
            break;
          }
          for (const auto& p : patches) {
            if (p.index != index) continue;
            unsigned int ifindex = if_nametoindex(p.name.c_str());
            if (ifindex == 0 || p.offset + 4 > h->nlmsg_len) {
              out.error = ENODEV;
              out.message = "Cannot find device \"" + p.name + "\"";
              break;
            }
            memcpy(reqs.data() + off + p.offset, &ifindex, 4);
          }
          if (out.error == 0) out.error = Exchange(fd, reqs.data() + off, h->nlmsg_len, &out);
          if (out.error != 0) {
            out.failed = index;
            break;
          }
          off += NLMSG_ALIGN(h->nlmsg_len);
          index++;
        }
        close(fd);
        return 0;
      },
      &detail);
  if (rc != 0) ThrowErrno(env, -rc, "rtnetlink" + (netns.empty() ? std::string() : " in \"" + netns + "\"") + (detail.empty() ? "" : ": " + detail));
  Napi::Object result = Napi::Object::New(env);
  result.Set("error", Napi::Number::New(env, out.error));
  result.Set("failed", Napi::Number::New(env, out.failed));
  result.Set("message", Napi::String::New(env, out.message));
  result.Set("text", Napi::String::New(env, out.error ? strerror(out.error) : ""));
  result.Set("replies", Napi::Buffer<uint8_t>::Copy(env, out.replies.data(), out.replies.size()));
  return result;
}

// addNamedNetns(path): a new network namespace kept alive by a bind mount at path (an empty file
// made here), as `ip netns add` does once its directory is a shared mount.
Napi::Value AddNamedNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "namespace path");
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "create namespace file \"" + path + "\"");
  close(fd);
  std::string step;
  int rc = RunOnQuietThread([&]() -> int {
    // The thread alone moves to the new namespace, then ends; the mount keeps the namespace.
    if (unshare(CLONE_NEWNET) != 0) {
      step = "unshare";
      return -errno;
    }
    if (mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      step = "bind-mount";
      return -errno;
    }
    return 0;
  });
  if (rc != 0) {
    unlink(path.c_str());
    ThrowErrno(env, -rc, "create network namespace \"" + path + "\": " + step);
  }
  return env.Undefined();
}

// deleteNamedNetns(path): what `ip netns delete` does: detach the mount, remove the file.
Napi::Value DeleteNamedNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgString(info, 0, "namespace path");
  if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    ThrowErrno(env, errno, "unmount network namespace \"" + path + "\"");
  if (unlink(path.c_str()) != 0 && errno != ENOENT) ThrowErrno(env, errno, "remove network namespace \"" + path + "\"");
  return env.Undefined();
}

// writeProcSys(netnsPath, paths: string[], values: string[]): each /proc/sys/<path> written
// from inside the namespace (net.* files are the reading thread's namespace's).
Napi::Value WriteProcSys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = ArgOptString(info, 0, "netns path");
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray()) ThrowType(env, "writeProcSys(netns, paths[], values[])");
  Napi::Array ps = info[1].As<Napi::Array>();
  Napi::Array vs = info[2].As<Napi::Array>();
  std::vector<std::pair<std::string, std::string>> writes;
  for (uint32_t i = 0; i < ps.Length(); i++) {
    std::string p = ps.Get(i).As<Napi::String>().Utf8Value();
    if (p.find("..") != std::string::npos) ThrowType(env, "sysctl path \"" + p + "\" is invalid");
    writes.emplace_back("/proc/sys/" + p, vs.Get(i).As<Napi::String>().Utf8Value());
  }
  std::string failed, detail;
  int rc = RunInNetns(
      netns,
      [&]() -> int {
        // /proc/sys/net is looked up once per call, the keys below it relative to it: the
        // dentries named "net" of every namespace share one dcache hash chain, walked twice per
        // lookup (RCU, then ref-walk), so each lookup costs in proportion to the host's namespaces.
        const std::string net = "/proc/sys/net/";
        int netfd = -1;
        for (const auto& [path, value] : writes) {
          bool below = path.compare(0, net.size(), net) == 0;
          if (below && netfd < 0) {
            netfd = open("/proc/sys/net", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (netfd < 0) {
              failed = "/proc/sys/net";
              return -errno;
            }
          }
          int fd = below ? openat(netfd, path.c_str() + net.size(), O_WRONLY | O_CLOEXEC) : open(path.c_str(), O_WRONLY | O_CLOEXEC);
          if (fd < 0 || write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
            int err = errno;
            if (fd >= 0) close(fd);
            if (netfd >= 0) close(netfd);
            failed = path;
            return -err;
          }
          close(fd);
        }
        if (netfd >= 0) close(netfd);
        return 0;
      },
      &detail);
  if (rc != 0) ThrowErrno(env, -rc, "write " + (failed.empty() ? detail : failed) + (netns.empty() ? "" : " in \"" + netns + "\""));
  return env.Undefined();
}

}  // namespace

void InitNetlink(Napi::Env env, Napi::Object exports) {
  exports.Set("rtnetlink", Napi::Function::New(env, Rtnetlink));
  exports.Set("addNamedNetns", Napi::Function::New(env, AddNamedNetns));
  exports.Set("deleteNamedNetns", Napi::Function::New(env, DeleteNamedNetns));
  exports.Set("writeProcSys", Napi::Function::New(env, WriteProcSys));
}

}  // namespace bpfnet
