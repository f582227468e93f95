// TFTP blocks sent by one thread of this addon's own: the lock-step and windowed exchange of
// DATA and ACK packets for files Genesis holds in memory (iPXE binaries, U-Boot and GRUB files,
// generated scripts), each transfer on its own socket (its TID), all of them in one epoll loop.
//
// Why C: a TFTP transfer is a round trip per block, and in JavaScript each one cost about 31 µs of
// Genesis's CPU (a receive, a decode, the state machine, an encode, a send, a timer), where
// tftpd-hpa's whole process spends about 22: with 50 clients and the server sharing two cores,
// that difference was the whole gap to tftpd-hpa (docs/performance.md). Here a block costs its two
// system calls and little else.
//
// What stays in TypeScript (src/tftp/server.ts): every decision about whether a transfer may start
// and what it serves (the caps, the path check, the option negotiation, the file), its slot, its
// lifetime, its log line and its event. This file only moves blocks, by the same rules as the
// state machine in src/tftp/transfer.ts, which it follows line for line (the unit tests of that
// machine run against this one too: test/unit/tftp-transfer.test.ts), and the per-transfer socket
// rules of src/tftp/transfer-engine.ts (error 5 to a foreign TID, a repeated request on the
// transfer's port). Keep the three in step.
//
// JavaScript API (src/tftp/native-pump.ts types it):
//   create(onReport) -> handle             a pump: its own thread
//   start(handle, file, oack, request, host, clientAddress, clientPort, numbers) -> id
//                                          binds the transfer's socket (throws when it cannot) and sends its first packet
//   repeated(handle, id)                   the client repeated its request on the listening port: answered
//                                          again unless the transfer has heard from its client or has ended
//   abort(handle, id, reason, tell)        ends a transfer; `tell`: send the client an ERROR first
//   stop(handle)                           ends the thread and every transfer it holds, unreported
//   onReport(id, kind, result, detail, blksize, windowsize, retransmits, bytes, flag)
//                                          on the creating thread, in the order they happened: kind 0, heard from
//                                          the client; kind 1, its end, once (flag: it never got past the OACK);
//                                          kind 2, the answer to each repeated() (flag: taken as a repeat)
// and, for the unit tests of the state machine alone (no socket, no thread):
//   machine(size, numbers) -> m, machineStart(m, now), machinePacket(m, bytes, now), machineTimeout(m, now),
//   machineRepeated(m, now) -> effects, machineStats(m) -> [blksize, windowsize, retransmits, bytes, oackUnanswered, finished],
//   packetValid(bytes) -> whether the packet decoder takes it (src/tftp/packet.ts decode() does not call it malformed)
// numbers: Float64Array [blksize, windowsize, timeoutMs (0: none named), minRtoMs, initialRtoMs,
// defaultMaxRtoMs, maxRetries, hasOack]

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include "addon-thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

// The state machine's constants (src/tftp/transfer.ts).
#define FAST_RETRANSMITS 3
#define MAX_PROBE_WINDOWS 4
#define DEFAULT_CLIENT_TIMEOUT_MS 5000.0
#define OACK_SILENT_PERIODS 3
// After an ACK that advances the transfer the timer is at most this share of the client's own (transfer.ts).
#define PROGRESS_TIMER_SHARE 8
#define THREAD_NAME "gen-tftp"

enum { OP_RRQ = 1, OP_WRQ = 2, OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5, OP_OACK = 6 };
enum { PHASE_OACK, PHASE_DATA, PHASE_DONE };
enum { END_OK, END_ABORTED, END_CLIENT_ERROR, END_TIMEOUT, END_UNCONFIRMED };
static const char *const RESULTS[] = { "ok", "aborted", "client-error", "timeout", "unconfirmed" };

// ---- The state machine (src/tftp/transfer.ts), with the file in memory: it never waits for a read.

typedef struct {
  uint64_t size, last_block;
  uint32_t blksize, windowsize, max_retries;
  double timeout_opt_ms;  // the client's `timeout` option; 0 when it named none
  int has_oack;
  // The retransmission timer's estimate (src/tftp/rto.ts).
  double rto_min, rto_initial, rto_max, rto_cap, srtt, rttvar, backoff;
  int has_srtt;
  int phase, oack_answered;
  uint64_t acked, sent, ever_sent, retransmits;
  uint32_t retries;
  double last_send_at, sample_at;
  int64_t sample_block;  // -1: no sample pending
} machine;

// What one event asks of the I/O, in this order: the OACK or the DATA blocks from..to, an ERROR,
// the timer (re)armed, the end.
typedef struct {
  int oack;
  uint64_t from, to;  // none when from > to
  int error;          // 1: send ERROR error_code error_msg
  int error_code;
  char error_msg[160];
  double timer_ms;  // < 0: the timer is left as it is
  int done, result;
  char detail[200];
} effects;

static void clear_effects(effects *e) {
  e->oack = 0;
  e->from = 1;
  e->to = 0;
  e->error = 0;
  e->timer_ms = -1;
  e->done = 0;
  e->result = END_OK;
  e->detail[0] = 0;
}

static double js_round(double x) { return floor(x + 0.5); }

static void machine_init(machine *m, uint64_t size, const double *p) {
  memset(m, 0, sizeof *m);
  m->size = size;
  m->blksize = (uint32_t)p[0];
  m->windowsize = (uint32_t)p[1];
  m->timeout_opt_ms = p[2];
  m->max_retries = (uint32_t)p[6];
  m->has_oack = p[7] != 0;
  m->last_block = size / m->blksize + 1;
  double max_ms = m->timeout_opt_ms > 0 ? m->timeout_opt_ms : p[5];
  m->rto_min = fmin(p[3], max_ms);
  m->rto_initial = fmin(p[4], max_ms);
  m->rto_max = max_ms;
  m->rto_cap = 4 * max_ms;
  m->backoff = 1;
  m->phase = PHASE_DATA;
  m->sample_block = -1;
}

static double rto_base(const machine *m) {
  double estimate = m->has_srtt ? m->srtt + 4 * m->rttvar : m->rto_initial;
  return fmin(m->rto_max, fmax(m->rto_min, estimate));
}

static double rto_ms(const machine *m) {
  return js_round(fmin(m->rto_cap, rto_base(m) * m->backoff));
}

static void rto_sample(machine *m, double rtt) {
  if (!m->has_srtt) {
    m->srtt = rtt;
    m->rttvar = rtt / 2;
    m->has_srtt = 1;
  } else {
    m->rttvar = 0.75 * m->rttvar + 0.25 * fabs(m->srtt - rtt);
    m->srtt = 0.875 * m->srtt + 0.125 * rtt;
  }
  m->backoff = 1;
}

static double client_timer_ms(const machine *m) { return m->timeout_opt_ms > 0 ? m->timeout_opt_ms : DEFAULT_CLIENT_TIMEOUT_MS; }

// An ACK advanced the transfer: the stall's backoff goes on only as far as keeps the timer within cap_ms (rto.ts progress()).
static void rto_progress(machine *m, double cap_ms) {
  if (m->backoff == 1) return; // every ACK of a transfer without a loss
  double base = rto_base(m);
  while (m->backoff > 1 && base * m->backoff > cap_ms) m->backoff /= 2;
}

static double quiet_timer(const machine *m) {
  double assumed = DEFAULT_CLIENT_TIMEOUT_MS;
  double named = m->timeout_opt_ms > 0 ? m->timeout_opt_ms : assumed;
  int rounds = (int)m->retries - FAST_RETRANSMITS;
  if (rounds < 0) rounds = 0;
  if (rounds > 16) rounds = 16;
  double client = fmin(fmax(named, assumed), named * ldexp(1, rounds));
  return fmax(rto_ms(m), client + fmax(250, js_round(client / 4)));
}

static double timer_ms(const machine *m) { return m->retries >= FAST_RETRANSMITS ? quiet_timer(m) : rto_ms(m); }

static double oack_timer(const machine *m) {
  double client = fmax(m->timeout_opt_ms, DEFAULT_CLIENT_TIMEOUT_MS);
  return client + js_round(client / 4);
}

static void finish(machine *m, effects *e, int result) {
  m->phase = PHASE_DONE;
  e->done = 1;
  e->result = result;
}

static void send_oack(machine *m, effects *e) {
  e->oack = 1;
  e->timer_ms = oack_timer(m);
}

static void pump(machine *m, effects *e, double now) {
  uint64_t window_end = m->acked + m->windowsize;
  if (window_end > m->last_block) window_end = m->last_block;
  if (m->sent >= window_end) return;
  e->from = m->sent + 1;
  e->to = window_end;
  m->sent = window_end;
  m->last_send_at = now;
  if (m->sent > m->ever_sent) {
    m->sample_block = (int64_t)m->sent;
    m->sample_at = now;
    m->ever_sent = m->sent;
  }
  e->timer_ms = timer_ms(m);
}

static void resend_window(machine *m, effects *e, double now, int probe) {
  m->last_send_at = now;
  e->from = m->acked + 1;
  e->to = m->sent;
  m->retransmits += m->sent - m->acked;
  if (probe && m->windowsize > 1 && m->sent < m->last_block && m->sent - m->acked < (uint64_t)MAX_PROBE_WINDOWS * m->windowsize) {
    uint64_t end = m->sent + m->windowsize;
    if (end > m->last_block) end = m->last_block;
    m->sent = end;
    e->to = end;
    if (m->sent > m->ever_sent) m->ever_sent = m->sent;
  }
  e->timer_ms = timer_ms(m);
}

static void take_sample(machine *m, uint64_t block, double now) {
  if (m->sample_block == (int64_t)block) rto_sample(m, now - m->sample_at);
  m->sample_block = -1;
}

static void machine_start(machine *m, effects *e, double now) {
  clear_effects(e);
  if (m->has_oack) {
    m->phase = PHASE_OACK;
    m->sample_block = 0;
    m->sample_at = now;
    send_oack(m, e);
    return;
  }
  pump(m, e, now);
}

static void on_ack(machine *m, effects *e, uint16_t wire, double now) {
  if (m->phase == PHASE_OACK) {
    if (wire != 0) return;
    m->oack_answered = 1;
    take_sample(m, 0, now);
    m->phase = PHASE_DATA;
    m->retries = 0;
    pump(m, e, now);
    return;
  }
  // The one block in (acked, sent] whose number the 16-bit wire value is (transfer.ts ack()).
  uint64_t n = m->acked + (uint16_t)(wire - (uint16_t)(m->acked & 0xffff));
  if (n == m->acked && m->sent > m->acked && (m->retries >= FAST_RETRANSMITS || now - m->last_send_at >= client_timer_ms(m))) {
    resend_window(m, e, now, 0);
    return;
  }
  if (n <= m->acked || n > m->sent) return;
  take_sample(m, n, now);
  m->acked = n;
  m->retries = 0;
  rto_progress(m, client_timer_ms(m) / PROGRESS_TIMER_SHARE);
  if (n == m->last_block) {
    finish(m, e, END_OK);
    return;
  }
  if (n < m->sent) {
    m->retransmits += m->sent - n;
    m->sent = n;
    m->sample_block = -1;
  }
  pump(m, e, now);
}

// Whether decode() in src/tftp/packet.ts would accept these strings: a run of NUL-terminated
// strings after the opcode; for a `request`, a filename (not empty) and a mode first; then option
// names and values in pairs, no name empty.
static int strings_valid(const uint8_t *b, size_t len, int request) {
  size_t count = 0, pos = 2;
  while (pos < len) {
    const uint8_t *end = memchr(b + pos, 0, len - pos);
    if (!end) return 0;
    size_t at = (size_t)(end - b);
    size_t index = request ? count : count + 2;  // options counted from 2 either way
    if (request && count == 0 && at == pos) return 0;                       // empty filename
    if (index >= 2 && (index - 2) % 2 == 0 && at == pos) return 0;          // empty option name
    count++;
    pos = at + 1;
  }
  if (request && count < 2) return 0;
  size_t options = request ? count - 2 : count;
  return options % 2 == 0;
}

static int packet_valid(const uint8_t *b, size_t len) {
  if (len < 2) return 0;
  unsigned op = (unsigned)b[0] << 8 | b[1];
  switch (op) {
    case OP_RRQ:
    case OP_WRQ: return strings_valid(b, len, 1);
    case OP_DATA:
    case OP_ACK:
    case OP_ERROR: return len >= 4;
    case OP_OACK: return strings_valid(b, len, 0);
    default: return 0;
  }
}

// A packet from the client's TID, already known not to be malformed.
static void machine_packet(machine *m, effects *e, const uint8_t *b, size_t len, double now) {
  clear_effects(e);
  if (m->phase == PHASE_DONE || len < 4) return;
  unsigned op = (unsigned)b[0] << 8 | b[1];
  uint16_t second = (uint16_t)(b[2] << 8 | b[3]);
  if (op == OP_ACK) {
    on_ack(m, e, second, now);
  } else if (op == OP_ERROR) {
    const uint8_t *nul = memchr(b + 4, 0, len - 4);
    size_t text = nul ? (size_t)(nul - (b + 4)) : len - 4;
    // latin1, as the TypeScript side reads it: every byte one character (cut at about 118 bytes:
    // a detail for a log line, where the TypeScript engine keeps the whole message).
    char message[120];
    size_t w = 0;
    for (size_t i = 0; i < text && w + 2 < sizeof message; i++) {
      uint8_t c = b[4 + i];
      if (c < 0x80) message[w++] = (char)c;
      else {
        message[w++] = (char)(0xc0 | c >> 6);
        message[w++] = (char)(0x80 | (c & 0x3f));
      }
    }
    message[w] = 0;
    snprintf(e->detail, sizeof e->detail, "client error %u: %s", second, message);
    finish(m, e, m->phase == PHASE_OACK ? END_ABORTED : END_CLIENT_ERROR);
  }
  // Anything else from the client's TID is not part of a read: dropped.
}

static void machine_repeated(machine *m, effects *e) {
  clear_effects(e);
  if (m->phase == PHASE_OACK) {
    m->retransmits++;
    m->sample_block = -1;
    send_oack(m, e);
  } else if (m->phase == PHASE_DATA && m->acked == 0 && m->sent >= 1) {
    m->retransmits++;
    m->sample_block = -1;
    e->from = e->to = 1;
    e->timer_ms = timer_ms(m);
  }
}

static void machine_timeout(machine *m, effects *e, double now) {
  clear_effects(e);
  if (m->phase == PHASE_DONE) return;
  if (m->phase == PHASE_DATA && m->sent == m->acked) {
    pump(m, e, now);
    return;
  }
  m->retries++;
  if (m->retries > m->max_retries) {
    char what[64];
    snprintf(what, sizeof what, "no answer after %u retransmissions", m->max_retries);
    if (m->phase == PHASE_DATA && m->sent == m->last_block) {
      snprintf(e->detail, sizeof e->detail,
               "the last block went out and was never acknowledged (%s); the client most likely has the file and its final ACK was lost", what);
      finish(m, e, END_UNCONFIRMED);
    } else {
      snprintf(e->detail, sizeof e->detail, "%s", what);
      e->error = 1;
      e->error_code = 0;
      snprintf(e->error_msg, sizeof e->error_msg, "transfer timed out");
      finish(m, e, END_TIMEOUT);
    }
    return;
  }
  m->backoff = fmin(m->backoff * 2, 65536);
  m->sample_block = -1;
  if (m->phase == PHASE_OACK) {
    if (m->retries < OACK_SILENT_PERIODS) {
      e->timer_ms = oack_timer(m);
      return;
    }
    m->retransmits++;
    send_oack(m, e);
    return;
  }
  resend_window(m, e, now, 1);
}

static uint64_t machine_bytes(const machine *m) {
  uint64_t bytes = m->acked * m->blksize;
  return bytes < m->size ? bytes : m->size;
}

// ---- The thread: transfers' sockets, timers and reports.

typedef struct transfer {
  struct transfer *prev, *next;
  uint32_t id;
  int sock;
  struct sockaddr_storage client;
  socklen_t client_len;
  const uint8_t *file;  // the file's bytes, held by `file_ref` on the JavaScript side until the end is reported
  napi_ref file_ref;
  uint8_t *oack;
  size_t oack_len;
  uint8_t *request;
  size_t request_len;
  machine m;
  double deadline;  // when its timer fires; 0: not armed
  int heard;
} transfer;

typedef struct command {
  struct command *next;
  int type;  // CMD_START, CMD_REPEATED, CMD_ABORT
  uint32_t id;
  transfer *t;
  int tell;
  char reason[160];
} command;
enum { CMD_START, CMD_REPEATED, CMD_ABORT };

// What the JavaScript side is told: heard from the client, the end with its figures, or whether a
// repeated request was taken as one.
enum { REPORT_HEARD, REPORT_ENDED, REPORT_REPEAT };
typedef struct {
  uint32_t id;
  int kind, result, flag;
  uint32_t blksize, windowsize;
  uint64_t retransmits, bytes;
  napi_ref file_ref;
  char detail[200];
} report;

typedef struct {
  addon_thread base;  // its thread; in flight: a transfer from start() to its end's report
  command *commands, *commands_tail;  // under base.lock
  uint32_t next_id;
} pump_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000 + (double)ts.tv_nsec / 1e6;
}

// A report with no figures: heard from the client, or the answer to a repeated().
static void tell(pump_t *p, uint32_t id, int kind, int flag) {
  report *r = calloc(1, sizeof *r);
  if (!r) return;
  r->id = id;
  r->kind = kind;
  r->flag = flag;
  addon_thread_report(&p->base, r);
}

static void send_to_client(transfer *t, const void *a, size_t a_len, const void *b, size_t b_len) {
  struct iovec iov[2] = { { (void *)a, a_len }, { (void *)b, b_len } };
  struct msghdr msg = { .msg_name = &t->client, .msg_namelen = t->client_len, .msg_iov = iov, .msg_iovlen = b_len ? 2 : 1 };
  // A send that fails (a full buffer, a vanished client) is a lost packet: the timer deals with it.
  while (sendmsg(t->sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

static size_t encode_error(uint8_t *out, size_t cap, int code, const char *message) {
  size_t text = strlen(message);
  if (text + 5 > cap) text = cap - 5;
  out[0] = 0;
  out[1] = OP_ERROR;
  out[2] = (uint8_t)(code >> 8);
  out[3] = (uint8_t)code;
  memcpy(out + 4, message, text);
  out[4 + text] = 0;
  return text + 5;
}

static void send_error(transfer *t, int code, const char *message) {
  uint8_t packet[200];
  send_to_client(t, packet, encode_error(packet, sizeof packet, code, message), NULL, 0);
}

static void end_transfer(pump_t *p, transfer *t, transfer **running, int result, const char *detail);

// Carries out a machine's effects for a transfer; an armed timer may bring the next deadline
// forward. Returns 1 when the transfer ended: it is freed, and `t` must not be touched again.
static int apply(pump_t *p, transfer *t, transfer **running, effects *e, double now, double *next_deadline) {
  if (e->oack) send_to_client(t, t->oack, t->oack_len, NULL, 0);
  for (uint64_t n = e->from; n <= e->to; n++) {
    uint8_t head[4] = { 0, OP_DATA, (uint8_t)(n >> 8), (uint8_t)n };
    uint64_t offset = (n - 1) * t->m.blksize;
    size_t length = offset >= t->m.size ? 0 : (size_t)(t->m.size - offset < t->m.blksize ? t->m.size - offset : t->m.blksize);
    send_to_client(t, head, 4, length ? t->file + offset : NULL, length);
  }
  if (e->error) send_error(t, e->error_code, e->error_msg);
  if (e->timer_ms >= 0) {
    t->deadline = now + e->timer_ms;
    if (*next_deadline == 0 || t->deadline < *next_deadline) *next_deadline = t->deadline;
  }
  if (!e->done) return 0;
  end_transfer(p, t, running, e->result, e->detail);
  return 1;
}

static void end_transfer(pump_t *p, transfer *t, transfer **running, int result, const char *detail) {
  t->m.phase = PHASE_DONE;
  if (t->prev) t->prev->next = t->next;
  else *running = t->next;
  if (t->next) t->next->prev = t->prev;
  // Closing drops nothing already sent: the last DATA or ERROR is the kernel's to deliver.
  close(t->sock);
  report *r = calloc(1, sizeof *r);
  if (r) {
    r->id = t->id;
    r->kind = REPORT_ENDED;
    r->result = result;
    r->blksize = t->m.blksize;
    r->windowsize = t->m.windowsize;
    r->retransmits = t->m.retransmits;
    r->bytes = machine_bytes(&t->m);
    r->flag = t->m.has_oack && !t->m.oack_answered;
    r->file_ref = t->file_ref;
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
    addon_thread_report(&p->base, r);
  }
  free(t->oack);
  free(t->request);
  free(t);
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
}

// Every packet waiting on a transfer's socket (transfer-engine.ts onPacket()).
static void receive(pump_t *p, transfer *t, transfer **running, double *next_deadline) {
  uint8_t buf[65536];
  effects e;
  for (;;) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(t->sock, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: nothing more now; anything else (an ICMP error): the timer deals with it
    }
    double now = now_ms();
    if (!same_address(&from, &t->client)) {
      // RFC 1350: a packet from a foreign TID gets error 5 and must not disturb this transfer.
      uint8_t packet[64];
      size_t len = encode_error(packet, sizeof packet, 5, "unknown transfer ID");
      while (sendto(t->sock, packet, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&from, from_len) < 0 && errno == EINTR) {
      }
      continue;
    }
    if (!packet_valid(buf, (size_t)n)) continue;
    unsigned op = (unsigned)buf[0] << 8 | buf[1];
    // The same request again, on this transfer's port (a NAT mapping the client to the port we
    // answered from): our first answer was lost. A client repeats its request byte for byte.
    if (op == OP_RRQ && !t->heard && (size_t)n == t->request_len && memcmp(buf, t->request, t->request_len) == 0) {
      machine_repeated(&t->m, &e);
      if (apply(p, t, running, &e, now, next_deadline)) return;
      continue;
    }
    if (!t->heard) {
      t->heard = 1;
      tell(p, t->id, REPORT_HEARD, 0);
    }
    machine_packet(&t->m, &e, buf, (size_t)n, now);
    if (apply(p, t, running, &e, now, next_deadline)) return;
  }
}

static transfer *find(transfer *running, uint32_t id) {
  for (transfer *t = running; t; t = t->next)
    if (t->id == id) return t;
  return NULL;
}

static void *run(void *arg) {
  pump_t *p = arg;
  transfer *running = NULL;
  double next_deadline = 0;
  pthread_setname_np(pthread_self(), THREAD_NAME);
  struct epoll_event events[64];
  effects e;
  for (;;) {
    int wait = -1;
    if (next_deadline > 0) {
      double left = ceil(next_deadline - now_ms());
      wait = left < 0 ? 0 : left > 60000 ? 60000 : (int)left;
    }
    int n = epoll_wait(p->base.epoll_fd, events, 64, wait);
    pthread_mutex_lock(&p->base.lock);
    command *commands = p->commands;
    p->commands = p->commands_tail = NULL;
    int stopping = p->base.stopping;
    pthread_mutex_unlock(&p->base.lock);
    if (stopping) {
      // Genesis is going away: every transfer still held is cut off, reported to nobody.
      while (commands) {
        command *next = commands->next;
        if (commands->t) {
          close(commands->t->sock);
          free(commands->t->oack);
          free(commands->t->request);
          free(commands->t);
        }
        free(commands);
        commands = next;
      }
      while (running) {
        transfer *next = running->next;
        close(running->sock);
        free(running->oack);
        free(running->request);
        free(running);
        running = next;
      }
      return NULL;
    }
    for (int i = 0; i < n; i++) {
      transfer *t = events[i].data.ptr;
      if (t == NULL) {
        addon_thread_drain_wake(&p->base);
        continue;
      }
      receive(p, t, &running, &next_deadline);
    }
    while (commands) {
      command *c = commands;
      commands = c->next;
      double now = now_ms();
      if (c->type == CMD_START) {
        transfer *t = c->t;
        t->prev = NULL;
        t->next = running;
        if (running) running->prev = t;
        running = t;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };
        if (epoll_ctl(p->base.epoll_fd, EPOLL_CTL_ADD, t->sock, &ev) != 0) {
          char detail[120];
          snprintf(detail, sizeof detail, "aborted by server: could not watch the transfer's socket: %s", strerror(errno));
          end_transfer(p, t, &running, END_ABORTED, detail);
        } else {
          machine_start(&t->m, &e, now);
          apply(p, t, &running, &e, now, &next_deadline);
        }
      } else {
        // An id no longer here has ended: its report is on its way.
        transfer *t = find(running, c->id);
        if (c->type == CMD_REPEATED) {
          // Sent when the JavaScript side had not yet been told the client was heard or the
          // transfer ended; if either happened first, the request is a new one, and the answer
          // (after those reports) says so, so that it is started as one.
          int taken = t && !t->heard;
          tell(p, c->id, REPORT_REPEAT, taken);
          if (taken) {
            machine_repeated(&t->m, &e);
            apply(p, t, &running, &e, now, &next_deadline);
          }
        } else if (t && c->type == CMD_ABORT) {
          if (c->tell) send_error(t, 0, c->reason);
          char detail[200];
          snprintf(detail, sizeof detail, "aborted by server: %s", c->reason);
          end_transfer(p, t, &running, END_ABORTED, detail);
        }
      }
      free(c);
    }
    // Timers: the earliest deadline is remembered; a deadline moved later (every ACK) leaves it
    // early, so this finds nothing due, and takes the new earliest.
    double now = now_ms();
    if (next_deadline > 0 && now >= next_deadline) {
      next_deadline = 0;
      for (transfer *t = running; t;) {
        transfer *next = t->next;
        if (t->deadline > 0 && now >= t->deadline) {
          t->deadline = 0;
          machine_timeout(&t->m, &e, now);
          apply(p, t, &running, &e, now, &next_deadline);
        } else if (t->deadline > 0 && (next_deadline == 0 || t->deadline < next_deadline)) {
          next_deadline = t->deadline;
        }
        t = next;
      }
    }
  }
}

// On the JavaScript thread: onReport(...) for what the thread reported.
static void call_report(napi_env env, napi_value on_report, void *context, void *data) {
  pump_t *p = context;
  report *r = data;
  if (env != NULL && on_report != NULL) {
    napi_value args[9], undefined;
    napi_get_undefined(env, &undefined);
    napi_create_uint32(env, r->id, &args[0]);
    napi_create_uint32(env, (uint32_t)r->kind, &args[1]);
    napi_create_string_utf8(env, RESULTS[r->result], NAPI_AUTO_LENGTH, &args[2]);
    if (r->detail[0]) napi_create_string_utf8(env, r->detail, NAPI_AUTO_LENGTH, &args[3]);
    else args[3] = undefined;
    napi_create_uint32(env, r->blksize, &args[4]);
    napi_create_uint32(env, r->windowsize, &args[5]);
    napi_create_double(env, (double)r->retransmits, &args[6]);
    napi_create_double(env, (double)r->bytes, &args[7]);
    napi_get_boolean(env, r->flag, &args[8]);
    if (r->kind == REPORT_ENDED) {
      if (r->file_ref) napi_delete_reference(env, r->file_ref);
      addon_thread_release(env, &p->base);
    }
    napi_call_function(env, undefined, on_report, 9, args, NULL);
  }
  free(r);
}

// The handle went away unreferenced (its pump was never stopped): stop it now.
static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  pump_t *p = data;
  addon_thread_destroy(env, &p->base);
  free(p);
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) return throw_error(env, "create(onReport) takes a function");
  pump_t *p = calloc(1, sizeof *p);
  if (!p) return throw_error(env, "out of memory");
  const char *failed = addon_thread_start(env, &p->base, argv[0], "genesis-tftp-pump", call_report, p, run, p);
  if (failed) {
    free(p);
    return throw_error(env, failed);
  }
  napi_value handle;
  if (napi_create_external(env, p, finalize, NULL, &handle) != napi_ok) {
    addon_thread_destroy(env, &p->base);
    free(p);
    return throw_error(env, "could not create the pump's handle");
  }
  return handle;
}

static void enqueue(pump_t *p, command *c) {
  pthread_mutex_lock(&p->base.lock);
  if (p->commands_tail) p->commands_tail->next = c;
  else p->commands = c;
  p->commands_tail = c;
  pthread_mutex_unlock(&p->base.lock);
  addon_thread_wake(&p->base);
}

// The bytes of a Buffer or any Uint8Array (the directory's shared copies are views of shared memory).
static int bytes_of(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t offset;
  return napi_get_typedarray_info(env, v, &type, len, (void **)data, &ab, &offset) == napi_ok && type == napi_uint8_array;
}

static int parse_address(const char *text, int port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (void *)out;
  struct sockaddr_in6 *v6 = (void *)out;
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof *v4;
    return 1;
  }
  if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof *v6;
    return 1;
  }
  return 0;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pump_t *p = argc ? addon_unwrap(env, argv[0]) : NULL;
  if (!p) return throw_error(env, "start() takes a pump's handle first");
  if (!p->base.running) return throw_error(env, "the pump is stopped");
  uint8_t *file, *oack, *request;
  size_t file_len, oack_len, request_len;
  char host[64], client[64];
  int32_t port;
  uint8_t *numbers_raw;
  size_t numbers_len;
  napi_typedarray_type ntype;
  napi_value ab;
  size_t offset;
  if (argc < 8 || !bytes_of(env, argv[1], &file, &file_len) || !bytes_of(env, argv[2], &oack, &oack_len) || !bytes_of(env, argv[3], &request, &request_len) ||
      napi_get_value_string_utf8(env, argv[4], host, sizeof host, NULL) != napi_ok ||
      napi_get_value_string_utf8(env, argv[5], client, sizeof client, NULL) != napi_ok || napi_get_value_int32(env, argv[6], &port) != napi_ok ||
      napi_get_typedarray_info(env, argv[7], &ntype, &numbers_len, (void **)&numbers_raw, &ab, &offset) != napi_ok || ntype != napi_float64_array || numbers_len < 8)
    return throw_error(env, "start(handle, file, oack, request, host, clientAddress, clientPort, numbers) takes three Uint8Arrays, two strings, a number and a Float64Array(8)");
  const double *numbers = (const double *)numbers_raw;
  if (numbers[0] < 8 || numbers[0] > 65464 || numbers[1] < 1 || numbers[1] > 65535) return throw_error(env, "start(): blksize or windowsize out of range");
  struct sockaddr_storage to, local;
  socklen_t to_len, local_len;
  if (!parse_address(client, port, &to, &to_len)) return throw_error(env, "start(): the client's address is not an IP address");
  if (!parse_address(host, 0, &local, &local_len) || local.ss_family != to.ss_family) return throw_error(env, "start(): the host is not an IP address of the client's family");
  int sock = socket(to.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock < 0) {
    char message[160];
    snprintf(message, sizeof message, "could not open the transfer's socket: %s", strerror(errno));
    return throw_error(env, message);
  }
  if (bind(sock, (struct sockaddr *)&local, local_len) != 0) {
    char message[160];
    snprintf(message, sizeof message, "could not bind the transfer's socket: %s", strerror(errno));
    close(sock);
    return throw_error(env, message);
  }
  transfer *t = calloc(1, sizeof *t);
  command *c = calloc(1, sizeof *c);
  uint8_t *oack_copy = malloc(oack_len ? oack_len : 1), *request_copy = malloc(request_len ? request_len : 1);
  if (!t || !c || !oack_copy || !request_copy || napi_create_reference(env, argv[1], 1, &t->file_ref) != napi_ok) {
    free(t);
    free(c);
    free(oack_copy);
    free(request_copy);
    close(sock);
    return throw_error(env, "out of memory");
  }
  memcpy(oack_copy, oack, oack_len);
  memcpy(request_copy, request, request_len);
  t->id = ++p->next_id;
  t->sock = sock;
  t->client = to;
  t->client_len = to_len;
  t->file = file;
  t->oack = oack_copy;
  t->oack_len = oack_len;
  t->request = request_copy;
  t->request_len = request_len;
  machine_init(&t->m, file_len, numbers);
  c->type = CMD_START;
  c->t = t;
  c->id = t->id;
  addon_thread_hold(env, &p->base);
  napi_value id;
  napi_create_uint32(env, t->id, &id);
  enqueue(p, c);
  return id;
}

static napi_value js_command(napi_env env, napi_callback_info info, int type) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pump_t *p = argc ? addon_unwrap(env, argv[0]) : NULL;
  uint32_t id;
  if (!p || argc < 2 || napi_get_value_uint32(env, argv[1], &id) != napi_ok) return throw_error(env, "takes a pump's handle and a transfer's id");
  if (!p->base.running) return NULL;
  command *c = calloc(1, sizeof *c);
  if (!c) return throw_error(env, "out of memory");
  c->type = type;
  c->id = id;
  if (type == CMD_ABORT) {
    bool tell_client = false;
    if (argc < 4 || napi_get_value_string_latin1(env, argv[2], c->reason, sizeof c->reason, NULL) != napi_ok || napi_get_value_bool(env, argv[3], &tell_client) != napi_ok) {
      free(c);
      return throw_error(env, "abort(handle, id, reason, tell) takes a string and a boolean");
    }
    c->tell = tell_client;
  }
  enqueue(p, c);
  return NULL;
}

static napi_value js_repeated(napi_env env, napi_callback_info info) { return js_command(env, info, CMD_REPEATED); }
static napi_value js_abort(napi_env env, napi_callback_info info) { return js_command(env, info, CMD_ABORT); }

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pump_t *p = argc ? addon_unwrap(env, argv[0]) : NULL;
  if (!p) return throw_error(env, "stop() takes a pump's handle");
  addon_thread_stop(env, &p->base);
  return NULL;
}

// ---- The state machine alone, for its unit tests.

static void free_machine(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static machine *machine_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc) {
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  return *argc ? addon_unwrap(env, argv[0]) : NULL;
}

static napi_value effects_value(napi_env env, const effects *e) {
  napi_value out, v;
  napi_create_array_with_length(env, 9, &out);
  napi_create_uint32(env, (uint32_t)e->oack, &v);
  napi_set_element(env, out, 0, v);
  napi_create_double(env, (double)e->from, &v);
  napi_set_element(env, out, 1, v);
  napi_create_double(env, (double)e->to, &v);
  napi_set_element(env, out, 2, v);
  napi_create_int32(env, e->error ? e->error_code : -1, &v);
  napi_set_element(env, out, 3, v);
  napi_create_string_utf8(env, e->error ? e->error_msg : "", NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, out, 4, v);
  napi_create_double(env, e->timer_ms, &v);
  napi_set_element(env, out, 5, v);
  napi_get_boolean(env, e->done, &v);
  napi_set_element(env, out, 6, v);
  napi_create_string_utf8(env, RESULTS[e->result], NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, out, 7, v);
  napi_create_string_utf8(env, e->detail, NAPI_AUTO_LENGTH, &v);
  napi_set_element(env, out, 8, v);
  return out;
}

static napi_value js_machine(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  double size;
  double *numbers;
  size_t len, offset;
  napi_typedarray_type type;
  napi_value ab, handle;
  if (argc < 2 || napi_get_value_double(env, argv[0], &size) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &len, (void **)&numbers, &ab, &offset) != napi_ok || type != napi_float64_array || len < 8 || numbers[0] < 8)
    return throw_error(env, "machine(size, numbers) takes a number and a Float64Array(8)");
  machine *m = malloc(sizeof *m);
  if (!m) return throw_error(env, "out of memory");
  machine_init(m, (uint64_t)size, numbers);
  napi_create_external(env, m, free_machine, NULL, &handle);
  return handle;
}

static napi_value js_machine_event(napi_env env, napi_callback_info info, int which) {
  size_t argc = 3;
  napi_value argv[3];
  machine *m = machine_arg(env, info, argv, &argc);
  double now = 0;
  if (!m || argc < 2 || napi_get_value_double(env, argv[argc - 1], &now) != napi_ok) return throw_error(env, "takes a machine and the time");
  effects e;
  if (which == 0) machine_start(m, &e, now);
  else if (which == 1) machine_timeout(m, &e, now);
  else if (which == 2) machine_repeated(m, &e);
  else {
    uint8_t *bytes;
    size_t len;
    if (argc < 3 || !bytes_of(env, argv[1], &bytes, &len)) return throw_error(env, "machinePacket(m, bytes, now)");
    clear_effects(&e);
    if (packet_valid(bytes, len)) machine_packet(m, &e, bytes, len, now);
  }
  return effects_value(env, &e);
}

static napi_value js_machine_start(napi_env env, napi_callback_info info) { return js_machine_event(env, info, 0); }
static napi_value js_machine_timeout(napi_env env, napi_callback_info info) { return js_machine_event(env, info, 1); }
static napi_value js_machine_repeated(napi_env env, napi_callback_info info) { return js_machine_event(env, info, 2); }
static napi_value js_machine_packet(napi_env env, napi_callback_info info) { return js_machine_event(env, info, 3); }

static napi_value js_packet_valid(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *bytes;
  size_t len;
  if (argc < 1 || !bytes_of(env, argv[0], &bytes, &len)) return throw_error(env, "packetValid(bytes) takes a Uint8Array");
  napi_get_boolean(env, packet_valid(bytes, len), &out);
  return out;
}

static napi_value js_machine_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  machine *m = machine_arg(env, info, argv, &argc);
  if (!m) return throw_error(env, "machineStats(m)");
  double values[6] = { m->blksize, m->windowsize, (double)m->retransmits, (double)machine_bytes(m), m->has_oack && !m->oack_answered, m->phase == PHASE_DONE };
  napi_create_array_with_length(env, 6, &out);
  for (uint32_t i = 0; i < 6; i++) {
    napi_create_double(env, values[i], &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
    { "create", NULL, js_create, NULL, NULL, NULL, napi_enumerable, NULL },
    { "start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL },
    { "repeated", NULL, js_repeated, NULL, NULL, NULL, napi_enumerable, NULL },
    { "abort", NULL, js_abort, NULL, NULL, NULL, napi_enumerable, NULL },
    { "stop", NULL, js_stop, NULL, NULL, NULL, napi_enumerable, NULL },
    { "machine", NULL, js_machine, NULL, NULL, NULL, napi_enumerable, NULL },
    { "machineStart", NULL, js_machine_start, NULL, NULL, NULL, napi_enumerable, NULL },
    { "machinePacket", NULL, js_machine_packet, NULL, NULL, NULL, napi_enumerable, NULL },
    { "machineTimeout", NULL, js_machine_timeout, NULL, NULL, NULL, napi_enumerable, NULL },
    { "machineRepeated", NULL, js_machine_repeated, NULL, NULL, NULL, napi_enumerable, NULL },
    { "machineStats", NULL, js_machine_stats, NULL, NULL, NULL, napi_enumerable, NULL },
    { "packetValid", NULL, js_packet_valid, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
