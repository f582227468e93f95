// The plumbing both native addons share (sendfile.c, tftp-pump.c): a thread of the addon's own
// that waits in epoll, an eventfd that wakes it, a thread-safe function that carries its reports
// to JavaScript (referenced only while work is in flight, so an idle addon keeps no event loop
// alive), the environment's cleanup hook (the thread must not outlive the environment it reports
// to), and the handle JavaScript holds. Static functions in a header: each addon is one .c file
// compiled on its own (scripts/build-native.sh), so the two share no symbols.

#ifndef GENESIS_ADDON_THREAD_H
#define GENESIS_ADDON_THREAD_H

#include <node_api.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
  pthread_mutex_t lock;  // guards `stopping` and whatever queue the addon hands its thread
  pthread_t thread;
  int running;  // started and not yet stopped
  int epoll_fd, wake_fd;
  int stopping;
  napi_threadsafe_function reports;
  uint32_t in_flight;  // JavaScript thread only: work handed over whose last report has not run
  int hooked;          // the environment's cleanup hook is registered
} addon_thread;

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

// Wakes the thread: its epoll sees the eventfd readable (an event whose data pointer is NULL).
static void addon_thread_wake(addon_thread *a) {
  uint64_t one = 1;
  if (write(a->wake_fd, &one, sizeof one) < 0) { /* already signalled: the counter is set */ }
}

// On the thread, for the wake's event.
static void addon_thread_drain_wake(addon_thread *a) {
  uint64_t count;
  if (read(a->wake_fd, &count, sizeof count) < 0) { /* drained by an earlier wake */ }
}

// Asks the thread to end and waits for it; its descriptors are closed.
static void addon_thread_join(addon_thread *a) {
  if (!a->running) return;
  pthread_mutex_lock(&a->lock);
  a->stopping = 1;
  pthread_mutex_unlock(&a->lock);
  addon_thread_wake(a);
  pthread_join(a->thread, NULL);
  a->running = 0;
  close(a->epoll_fd);
  close(a->wake_fd);
}

// The environment's cleanup (a worker thread or the process ending).
static void addon_thread_cleanup(void *arg) {
  addon_thread *a = arg;
  a->hooked = 0;
  addon_thread_join(a);
}

// Stops the thread for good (stop(), or the handle collected unstopped): reports not yet run are dropped.
static void addon_thread_stop(napi_env env, addon_thread *a) {
  if (a->hooked) {
    napi_remove_env_cleanup_hook(env, addon_thread_cleanup, a);
    a->hooked = 0;
  }
  if (a->running) {
    addon_thread_join(a);
    napi_release_threadsafe_function(a->reports, napi_tsfn_abort);
  }
}

// Starts the thread, `run(arg)`, whose reports reach `callback` through `call_js(…, context, …)`.
// NULL when it runs; otherwise what failed, with nothing left to undo.
static const char *addon_thread_start(napi_env env, addon_thread *a, napi_value callback, const char *name, napi_threadsafe_function_call_js call_js,
                                      void *context, void *(*run)(void *), void *arg) {
  pthread_mutex_init(&a->lock, NULL);
  a->epoll_fd = a->wake_fd = -1;
  napi_value resource_name;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name);
  if (napi_create_threadsafe_function(env, callback, NULL, resource_name, 0, 1, NULL, NULL, context, call_js, &a->reports) != napi_ok) {
    pthread_mutex_destroy(&a->lock);
    return "could not create the report callback";
  }
  // Nothing in flight: the addon alone keeps no event loop alive.
  napi_unref_threadsafe_function(env, a->reports);
  a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
  if (a->epoll_fd < 0 || a->wake_fd < 0 || epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->wake_fd, &ev) != 0 || pthread_create(&a->thread, NULL, run, arg) != 0) {
    if (a->epoll_fd >= 0) close(a->epoll_fd);
    if (a->wake_fd >= 0) close(a->wake_fd);
    napi_release_threadsafe_function(a->reports, napi_tsfn_abort);
    pthread_mutex_destroy(&a->lock);
    return "could not start the thread";
  }
  a->running = 1;
  napi_add_env_cleanup_hook(env, addon_thread_cleanup, a);
  a->hooked = 1;
  return NULL;
}

// Stopped, and its lock gone: for the handle's finalizer, before the addon frees its state.
static void addon_thread_destroy(napi_env env, addon_thread *a) {
  addon_thread_stop(env, a);
  pthread_mutex_destroy(&a->lock);
}

// Work handed over, and its last report run: the reports keep the event loop alive meanwhile only.
static void addon_thread_hold(napi_env env, addon_thread *a) {
  if (a->in_flight++ == 0) napi_ref_threadsafe_function(env, a->reports);
}

static void addon_thread_release(napi_env env, addon_thread *a) {
  if (a->in_flight > 0 && --a->in_flight == 0) napi_unref_threadsafe_function(env, a->reports);
}

// On the thread: queues a report (malloc'd) for JavaScript, or frees it when the addon is stopping.
static void addon_thread_report(addon_thread *a, void *report) {
  if (napi_call_threadsafe_function(a->reports, report, napi_tsfn_nonblocking) != napi_ok) free(report);
}

// What a handle (an external) wraps, or NULL for anything else.
static void *addon_unwrap(napi_env env, napi_value handle) {
  void *v = NULL;
  napi_valuetype type;
  if (napi_typeof(env, handle, &type) != napi_ok || type != napi_external || napi_get_value_external(env, handle, &v) != napi_ok) return NULL;
  return v;
}

#endif
