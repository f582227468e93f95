// Large downloads sent by the kernel: sendfile(2) from the page cache to the client's socket, on
// one thread of this addon's own, so neither Genesis's event loop nor its memory carries the bytes.
//
// Why C: Node has no sendfile, and every way of sending a file from JavaScript copies its bytes
// through a buffer in the process (read, then write): that copy was most of the CPU and most of the
// memory of a boot storm (docs/performance.md). This file does one job: it is handed a connected
// socket (which it dup()s, so Genesis can close its own handle at once), a file, a response head
// and a byte range; it writes the head, then the range with sendfile, ends the connection, and
// reports the bytes sent or why it stopped. Which file, which range and which headers are decided
// in TypeScript (src/http/assets.ts), with the inventory at hand.
//
// JavaScript API (src/bulk/sendfile-addon.ts types it):
//   create(onDone(id, bytes, error?), stalledMs) -> handle   a sender: its own thread
//   send(handle, fd, path, head, start, length) -> id        throws when the socket or file cannot be taken
//   stop(handle)                                              ends the thread and every download it holds
// onDone runs on the JavaScript thread that created the sender, once per id (never after stop()).

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include "addon-thread.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

// Bytes one download may send per turn before the others get theirs: a fast client on loopback
// would otherwise keep the thread to itself.
#define TURN_BYTES (8 << 20)
// Bytes per sendfile call: the kernel sends what the socket's buffer takes and returns.
#define CALL_BYTES (4 << 20)
// How much lower this thread's CPU priority is than Genesis's (nice; Linux keeps it per thread):
// with both cores busy, a boot script, a config or a TFTP block goes first and a download's next
// bytes wait a little (src/bulk/bulk-sender.ts SENDER_NICE, measured for the sender process).
#define SENDER_NICE 10
// How long a connection whose bytes are all queued waits for the client's FIN before it is
// closed anyway (its bytes still go out: a close discards nothing queued, only what the client
// sent and nobody read, which is why the wait reads and drops that).
#define LINGER_MS 5000
// The thread's name (at most 15 characters).
#define THREAD_NAME "gen-sendfile"

typedef struct transfer {
  struct transfer *prev, *next;  // in the queue of new ones, then in the list of running ones
  uint32_t id;
  int sock, file;
  char *head;
  size_t head_len, head_sent;
  off_t offset;
  uint64_t remaining, sent;
  int64_t last_progress_ms;
  int64_t lingering_since_ms;  // 0 until every byte is queued and the FIN sent
  int reported;                // its report went to the main thread
  char error[160];  // empty when every byte was sent
} transfer;

// What the JavaScript side is told of a transfer, once: when its last byte is queued, or when it
// failed. The transfer itself stays with the thread (a finished one may still wait for its
// client's FIN), so this is a copy the main thread frees.
typedef struct {
  uint32_t id;
  uint64_t sent;
  char error[160];
} report;

typedef struct {
  addon_thread base;   // its thread; the reports are onDone's calls, in flight from send() to onDone
  transfer *incoming;  // handed over by send(), not yet seen by the thread (singly linked; under base.lock)
  int64_t stalled_ms;
  uint32_t next_id;
} sender;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fail(transfer *t, const char *what, int err) {
  if (t->error[0]) return;
  char reason[96] = "";
  if (err) snprintf(reason, sizeof reason, ": %s", strerror(err));
  snprintf(t->error, sizeof t->error, "%s%s", what, reason);
}

static void free_transfer(transfer *t) {
  if (t->sock >= 0) close(t->sock);
  if (t->file >= 0) close(t->file);
  free(t->head);
  free(t);
}

// After the FIN: reads and drops whatever the client still sends until it closes its side. A
// close() with unread bytes in the receive queue answers with a reset, and a reset can make the
// client's kernel drop the end of the download it has not read yet. Returns 1 when it closed.
static int drain(transfer *t) {
  char sink[4096];
  for (;;) {
    ssize_t n = recv(t->sock, sink, sizeof sink, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return 1;  // its FIN (0), or the connection is gone: either way every byte was queued
  }
}

// Sends what the socket takes now. Returns 1 when the transfer is over (sent and the client has
// closed, or failed with t->error set), 0 when it waits for the socket.
static void tell(sender *s, transfer *t);

static int advance(sender *s, transfer *t) {
  if (t->lingering_since_ms) return drain(t);
  size_t turn = 0;
  while (t->head_sent < t->head_len) {
    // MSG_MORE: the head and the first bytes of the file leave in the same segments.
    ssize_t n = send(t->sock, t->head + t->head_sent, t->head_len - t->head_sent, MSG_NOSIGNAL | MSG_DONTWAIT | MSG_MORE);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      fail(t, "the client went away", errno);
      return 1;
    }
    t->head_sent += (size_t)n;
    t->last_progress_ms = now_ms();
  }
  while (t->remaining > 0) {
    if (turn >= TURN_BYTES) return 0;  // level-triggered: the socket is reported again
    size_t want = t->remaining < CALL_BYTES ? (size_t)t->remaining : CALL_BYTES;
    ssize_t n = sendfile(t->sock, t->file, &t->offset, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EPIPE || errno == ECONNRESET) fail(t, "the client went away", errno);
      else fail(t, "sending the file failed", errno);
      return 1;
    }
    if (n == 0) {
      fail(t, "the file is shorter than the head said", 0);
      return 1;
    }
    t->remaining -= (uint64_t)n;
    t->sent += (uint64_t)n;
    turn += (size_t)n;
    t->last_progress_ms = now_ms();
  }
  // Every byte is queued: a FIN after them (the head said Connection: close), then wait for the
  // client's own. The download is reported done now: every byte is the kernel's to deliver, and
  // how soon a client closes its side is not the download's time.
  shutdown(t->sock, SHUT_WR);
  t->lingering_since_ms = now_ms();
  close(t->file);
  t->file = -1;
  tell(s, t);
  struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = t };
  if (epoll_ctl(s->base.epoll_fd, EPOLL_CTL_MOD, t->sock, &ev) != 0) return 1;
  return drain(t);
}

// Reports a transfer to the main thread, once (call_done frees the copy there).
static void tell(sender *s, transfer *t) {
  if (t->reported) return;
  t->reported = 1;
  report *r = malloc(sizeof *r);
  if (!r) return;
  r->id = t->id;
  r->sent = t->sent;
  memcpy(r->error, t->error, sizeof r->error);
  addon_thread_report(&s->base, r);
}

// Ends a transfer: its descriptors closed, reported if it was not yet, freed.
static void finish(sender *s, transfer *t, transfer **running) {
  if (t->prev) t->prev->next = t->next;
  else *running = t->next;
  if (t->next) t->next->prev = t->prev;
  epoll_ctl(s->base.epoll_fd, EPOLL_CTL_DEL, t->sock, NULL);
  tell(s, t);
  free_transfer(t);
}

static void *run(void *arg) {
  sender *s = arg;
  transfer *running = NULL;
  int64_t last_scan_ms = 0;
  // Named, so it can be told apart in /proc/<pid>/task and top -H.
  pthread_setname_np(pthread_self(), THREAD_NAME);
  // Refused under some seccomp profiles: the thread then runs at Genesis's own priority.
  pid_t tid = (pid_t)syscall(SYS_gettid);
  errno = 0;
  int nice_now = getpriority(PRIO_PROCESS, (id_t)tid);
  if (errno == 0) setpriority(PRIO_PROCESS, (id_t)tid, nice_now + SENDER_NICE > 19 ? 19 : nice_now + SENDER_NICE);
  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(s->base.epoll_fd, events, 64, 1000);
    pthread_mutex_lock(&s->base.lock);
    transfer *fresh = s->incoming;
    s->incoming = NULL;
    int stopping = s->base.stopping;
    pthread_mutex_unlock(&s->base.lock);
    if (stopping) {
      // Genesis is going away: every download still held is cut off, reported to nobody.
      for (transfer *t = fresh; t;) {
        transfer *next = t->next;
        free_transfer(t);
        t = next;
      }
      for (transfer *t = running; t;) {
        transfer *next = t->next;
        free_transfer(t);
        t = next;
      }
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      transfer *t = events[i].data.ptr;
      if (t == NULL) {
        addon_thread_drain_wake(&s->base);
        continue;
      }
      if (advance(s, t)) finish(s, t, &running);
    }
    for (transfer *t = fresh; t;) {
      transfer *next = t->next;
      t->prev = NULL;
      t->next = running;
      if (running) running->prev = t;
      running = t;
      t->last_progress_ms = now_ms();
      struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = t };
      if (epoll_ctl(s->base.epoll_fd, EPOLL_CTL_ADD, t->sock, &ev) != 0) {
        fail(t, "could not watch the connection", errno);
        finish(s, t, &running);
      } else if (advance(s, t)) {
        finish(s, t, &running);
      }
      t = next;
    }
    // A client that takes nothing for this long is dropped, as the HTTP server drops an idle one.
    // Looked for once a second at most: a storm wakes this loop thousands of times a second.
    int64_t now = now_ms();
    if (now - last_scan_ms < 1000) continue;
    last_scan_ms = now;
    for (transfer *t = running; t;) {
      transfer *next = t->next;
      if (t->lingering_since_ms) {
        // Every byte was queued: done, whether or not the client closed its side in time.
        if (now - t->lingering_since_ms >= LINGER_MS) finish(s, t, &running);
      } else if (now - t->last_progress_ms >= s->stalled_ms) {
        char what[80];
        snprintf(what, sizeof what, "the client took nothing for %g s", (double)s->stalled_ms / 1000);
        fail(t, what, 0);
        finish(s, t, &running);
      }
      t = next;
    }
  }
}

// On the main thread: onDone(id, bytes, error?) for a transfer the thread reported.
static void call_done(napi_env env, napi_value on_done, void *context, void *data) {
  sender *s = context;
  report *r = data;
  if (env != NULL && on_done != NULL) {
    napi_value args[3], undefined;
    napi_get_undefined(env, &undefined);
    napi_create_uint32(env, r->id, &args[0]);
    napi_create_double(env, (double)r->sent, &args[1]);
    if (r->error[0]) napi_create_string_utf8(env, r->error, NAPI_AUTO_LENGTH, &args[2]);
    else args[2] = undefined;
    addon_thread_release(env, &s->base);
    napi_call_function(env, undefined, on_done, 3, args, NULL);
  }
  free(r);
}

// "<what>: <the system's reason for err>".
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  return throw_error(env, message);
}

// The handle went away unreferenced (its sender was never stopped): stop it now.
static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  sender *s = data;
  addon_thread_destroy(env, &s->base);
  free(s);
}

static sender *unwrap(napi_env env, napi_value handle) { return addon_unwrap(env, handle); }

// The sender a call names first, and up to `wanted` arguments after it (in argv; *argc says how many came).
static sender *sender_call(napi_env env, napi_callback_info info, napi_value *argv, size_t wanted, size_t *argc) {
  napi_value all[8];
  size_t n = wanted + 1 < 8 ? wanted + 1 : 8;
  napi_get_cb_info(env, info, &n, all, NULL, NULL);
  *argc = n > 0 ? n - 1 : 0;
  if (*argc > wanted) *argc = wanted;
  for (size_t i = 0; i < *argc; i++) argv[i] = all[i + 1];
  return n > 0 ? unwrap(env, all[0]) : NULL;
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double stalled = 0;
  napi_valuetype type;
  if (argc < 2 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function || napi_get_value_double(env, argv[1], &stalled) != napi_ok || stalled < 1)
    return throw_error(env, "create(onDone, stalledMs) takes a function and a positive number");
  sender *s = calloc(1, sizeof *s);
  if (!s) return throw_error(env, "out of memory");
  s->stalled_ms = (int64_t)stalled;
  const char *failed = addon_thread_start(env, &s->base, argv[0], "genesis-sendfile", call_done, s, run, s);
  if (failed) {
    free(s);
    return throw_error(env, failed);
  }
  napi_value handle;
  if (napi_create_external(env, s, finalize, NULL, &handle) != napi_ok) {
    addon_thread_destroy(env, &s->base);
    free(s);
    return throw_error(env, "could not create the sender's handle");
  }
  return handle;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[5];
  sender *s = sender_call(env, info, argv, 5, &argc);
  if (!s) return throw_error(env, "send() takes a sender's handle first");
  if (!s->base.running) return throw_error(env, "the sender is stopped");
  int32_t fd;
  double start, length;
  char path[4096];
  size_t path_len;
  void *head;
  size_t head_len;
  if (argc < 5 || napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], path, sizeof path, &path_len) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &head, &head_len) != napi_ok ||
      napi_get_value_double(env, argv[3], &start) != napi_ok || napi_get_value_double(env, argv[4], &length) != napi_ok)
    return throw_error(env, "send(handle, fd, path, head, start, length) takes a number, a string, a Buffer and two numbers");
  if (fd < 0 || start < 0 || length < 0 || path_len >= sizeof path - 1) return throw_error(env, "send(): a negative fd or range, or a path too long");
  int file = open(path, O_RDONLY | O_CLOEXEC);
  if (file < 0) return throw_errno(env, "could not open the file", errno);
  // Our own reference to the connection: the caller closes its handle once this returns, and the
  // connection stays open until this thread closes its copy.
  int sock = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (sock < 0) {
    int err = errno;
    close(file);
    return throw_errno(env, "could not take the connection", err);
  }
  int flags = fcntl(sock, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(sock, F_SETFL, flags | O_NONBLOCK);
  transfer *t = calloc(1, sizeof *t);
  char *head_copy = malloc(head_len ? head_len : 1);
  if (!t || !head_copy) {
    free(t);
    free(head_copy);
    close(sock);
    close(file);
    return throw_error(env, "out of memory");
  }
  memcpy(head_copy, head, head_len);
  t->id = ++s->next_id;
  t->sock = sock;
  t->file = file;
  t->head = head_copy;
  t->head_len = head_len;
  t->offset = (off_t)start;
  t->remaining = (uint64_t)length;
  addon_thread_hold(env, &s->base);
  pthread_mutex_lock(&s->base.lock);
  t->next = s->incoming;
  s->incoming = t;
  pthread_mutex_unlock(&s->base.lock);
  addon_thread_wake(&s->base);
  napi_value id;
  napi_create_uint32(env, t->id, &id);
  return id;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc;
  sender *s = sender_call(env, info, NULL, 0, &argc);
  if (!s) return throw_error(env, "stop() takes a sender's handle");
  addon_thread_stop(env, &s->base);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "create", NULL, js_create, NULL, NULL, NULL, napi_enumerable, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "stop", NULL, js_stop, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
