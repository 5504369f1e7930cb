// Socket options Node cannot read (it has no getsockopt), read from the fd by this small Node-API
// addon: SO_ORIGINAL_DST, the address a connection was sent to before an nftables/iptables REDIRECT
// rewrote it; and SO_PEERCRED, the uid of the process at the other end of a Unix socket.

// struct ucred (SO_PEERCRED) is a GNU extension in glibc's headers.
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>, whose other definitions
// clash with the libc headers; the values are kernel ABI and never change.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = err == ENOENT ? "ENOENT" : err == EBADF ? "EBADF" : err == ENOTSOCK ? "ENOTSOCK" : "EIO";
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, key, v);
  return obj;
}

// getOriginalDst(fd) -> { address, port, family }; throws with code ENOENT when the connection
// was not redirected (there is no NAT entry for it).
static napi_value get_original_dst(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getOriginalDst(fd): fd must be a non-negative integer");
    return NULL;
  }

  struct sockaddr_storage dst;
  socklen_t len = sizeof dst;
  memset(&dst, 0, sizeof dst);
  int rc = getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len);
  if (rc != 0) {
    int first = errno;
    len = sizeof dst;
    rc = getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len);
    if (rc != 0) return throw_errno(env, first, "getsockopt(SO_ORIGINAL_DST)");
  }

  char text[INET6_ADDRSTRLEN];
  int port;
  const char *family;
  if (dst.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&dst;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    port = ntohs(in->sin_port);
    family = "IPv4";
  } else if (dst.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&dst;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
    family = "IPv6";
  } else {
    return throw_errno(env, EAFNOSUPPORT, "getsockopt(SO_ORIGINAL_DST) returned an unknown family");
  }

  napi_value result, port_value;
  napi_create_object(env, &result);
  set_string(env, result, "address", text);
  napi_create_int32(env, port, &port_value);
  napi_set_named_property(env, result, "port", port_value);
  set_string(env, result, "family", family);
  return result;
}

// getPeerUid(fd) -> the uid of the peer of a connected Unix socket, as the kernel recorded it at
// connect() time (it cannot be forged by the peer).
static napi_value get_peer_uid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "getPeerUid(fd): fd must be a non-negative integer");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, errno, "getsockopt(SO_PEERCRED)");
  napi_value uid;
  napi_create_uint32(env, (uint32_t)cred.uid, &uid);
  return uid;
}

// trimMemory() -> whether the C allocator gave memory back to the system. glibc keeps the memory that
// TLS and HTTP/2 sessions freed in its arenas, and returns the top of the heap only; after a burst of
// connections a proxy would hold that peak for good. malloc_trim(0) releases every free page.
static napi_value trim_memory(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef __GLIBC__
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}

// mallocInfo() -> { arena, inUse, free, mmapped } in bytes from glibc's mallinfo2(): how much of the C
// heap is live and how much is free but still held (undefined elsewhere).
static napi_value malloc_usage(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  napi_value v;
  napi_create_object(env, &result);
  napi_create_double(env, (double)mi.arena + (double)mi.hblkhd, &v);
  napi_set_named_property(env, result, "arena", v);
  napi_create_double(env, (double)mi.uordblks + (double)mi.hblkhd, &v);
  napi_set_named_property(env, result, "inUse", v);
  napi_create_double(env, (double)mi.fordblks, &v);
  napi_set_named_property(env, result, "free", v);
  napi_create_double(env, (double)mi.hblkhd, &v);
  napi_set_named_property(env, result, "mmapped", v);
#else
  napi_get_undefined(env, &result);
#endif
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "getOriginalDst", NAPI_AUTO_LENGTH, get_original_dst, NULL, &fn);
  napi_set_named_property(env, exports, "getOriginalDst", fn);
  napi_create_function(env, "getPeerUid", NAPI_AUTO_LENGTH, get_peer_uid, NULL, &fn);
  napi_set_named_property(env, exports, "getPeerUid", fn);
  napi_create_function(env, "trimMemory", NAPI_AUTO_LENGTH, trim_memory, NULL, &fn);
  napi_set_named_property(env, exports, "trimMemory", fn);
  napi_create_function(env, "mallocInfo", NAPI_AUTO_LENGTH, malloc_usage, NULL, &fn);
  napi_set_named_property(env, exports, "mallocInfo", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
