/* rconn.h - one Redis connection on a libevent loop (hiredis async), with
 * reconnect, AUTH/SELECT, and script calls that survive a flushed Redis.
 *
 * The only module that talks to hiredis' async API, so the transport can
 * change (TLS through bufferevent_openssl, FIELD-NOTES) without touching
 * callers. hiredis 0.14 has no reconnect and no timeouts: this module
 * reconnects with exponential backoff (RCONN_BACKOFF_MIN_MS doubling to
 * RCONN_BACKOFF_MAX_MS), re-sends AUTH and SELECT on every new connection
 * (queued ahead of anything else), and tells its owner through the
 * state callback so it can re-issue blocking reads.
 *
 * A blocking command (XREADGROUP BLOCK) holds up everything behind it on
 * the same connection: give each its own rconn. Pub/sub is not offered
 * here (its callbacks run once per message, see rconn_argv).
 *
 * All calls and callbacks run on the loop thread. The process must ignore
 * SIGPIPE (the daemons' main.c does): a write to a connection Redis has
 * closed would otherwise kill it.
 */
#ifndef WEFT_COMMON_RCONN_H
#define WEFT_COMMON_RCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "error.h"
#include "redisurl.h"
#include "scripts.h"

#define RCONN_BACKOFF_MIN_MS 50
#define RCONN_BACKOFF_MAX_MS 2000
/* A connect that takes longer than this is retried. */
#define RCONN_CONNECT_TIMEOUT_MS 2000

struct rconn;

/* An event loop suited to hiredis' libevent adapter, which adds a write
 * event for each command and deletes it once the command is written: with
 * libevent's epoll changelist those pairs cost no system call. NULL when
 * libevent cannot make one. */
struct event_base *rconn_event_base_new(void);

/* reply is owned by hiredis and valid only during the callback; NULL when
 * the connection dropped before the reply came (the command may or may
 * not have run) or when the rconn is being freed. Called exactly once per
 * accepted command. */
typedef void (*rconn_reply_cb)(struct rconn *c, redisReply *reply, void *ud);

/* Called with up = true after each successful (re)connect, once AUTH,
 * SELECT and CLIENT SETNAME have been answered (a failed AUTH or SELECT
 * counts as a failed connect), and up = false when an established
 * connection is lost. Failed attempts and rconn_free call nothing. The
 * callback may send commands and may call rconn_free. */
typedef void (*rconn_state_cb)(struct rconn *c, bool up, void *ud);

/* Creates the connection and starts connecting. url is copied. name is
 * used in logs and as CLIENT SETNAME (NULL: none). NULL on OOM or when url
 * has neither or both of host and unix_path. */
struct rconn *rconn_new(struct event_base *base, const struct redis_url *url,
                        const char *name, rconn_state_cb state_cb, void *ud);

/* Disconnects; pending callbacks run with reply == NULL (at once, or
 * when the running callback of this connection returns). Safe inside any
 * reply or state callback of this connection (release is deferred); the
 * state callback is not called. NULL: no-op. */
void rconn_free(struct rconn *c);

bool rconn_is_up(const struct rconn *c);

/* Sends one command built from argv (argvlen NULL: strlen of each).
 * Returns 0 (cb will run exactly once) or WEFT_EREDIS when not connected /
 * WEFT_ENOMEM / WEFT_EINVAL (cb never runs). cb may be NULL to ignore the
 * reply. Refused with WEFT_EINVAL: AUTH, HELLO, SELECT, RESET (the URL
 * sets user and db, re-sent on every connection; a command could not
 * survive a reconnect), MONITOR and [P|S][UN]SUBSCRIBE (more than one
 * reply per command). */
int rconn_argv(struct rconn *c, rconn_reply_cb cb, void *ud, int argc,
               const char **argv, const size_t *argvlen);

/* printf-style (hiredis' %s %b %d ... formats; %b takes a size_t). */
int rconn_cmd(struct rconn *c, rconn_reply_cb cb, void *ud, const char *fmt,
              ...);

/* Calls a transition or script from scripts.h with nkeys keys then the
 * args (argv/argvlen hold keys first, then args; copied): FCALL of a
 * function of the library, EVALSHA of a script. When Redis does not have
 * it ("ERR Function not found", NOSCRIPT) the module sends FUNCTION LOAD
 * (SCRIPT LOAD) and the call again before calling cb, so callers do not
 * see it; the retried call then runs after commands sent in the meantime.
 * Recovery happens once per call: a second miss (a flush racing the
 * reload) reaches cb, and a failed load hands cb that error reply (a
 * library another process loaded first is not a failure). Same returns as
 * rconn_argv; WEFT_EINVAL for an unknown id or nkeys outside 0..argc. */
int rconn_eval(struct rconn *c, enum script_id id, rconn_reply_cb cb, void *ud,
               int nkeys, int argc, const char **argv, const size_t *argvlen);

/* Whether r, the answer to a FUNCTION LOAD, means the library is in
 * Redis: loaded now, or loaded before by another process ("already
 * exists"), which is the same code, as a library's name carries a hash
 * of it (scripts.h). False for NULL (no answer). */
bool rconn_library_loaded(const redisReply *r);

/* Called with each message published on the subscribed channel; payload
 * is borrowed for the duration of the call. */
typedef void (*rconn_message_cb)(struct rconn *c, const char *payload,
                                 size_t len, void *ud);

/* Turns c into a subscriber of channel: from now on, and again after
 * every reconnect (pub/sub is not durable: messages published while the
 * connection is down are lost, so callers keep a durable fallback), each
 * message calls cb. The connection then carries only the subscription:
 * other commands are refused and no RTT PING is sent. Call once, before
 * or after the connection is up. 0, or WEFT_EINVAL (already subscribed)
 * / WEFT_ENOMEM. */
int rconn_subscribe(struct rconn *c, const char *channel, rconn_message_cb cb,
                    void *ud);

/* Round-trip time of the last PING this module sent, in microseconds
 * (0 = none yet). The module pings once on connect, then every second
 * while connected, never with a PING outstanding; on a connection that
 * carries a blocking read the PING waits behind it and the figure
 * includes that wait. */
long rconn_rtt_us(const struct rconn *c);

/* Synchronous client for the CLI and tests: connects, authenticates and
 * selects the db, each bounded by timeout_ms (<= 0: no limit); later
 * commands have no time limit (redisSetTimeout sets one). NULL with err
 * filled on failure: WEFT_ETIMEOUT, WEFT_EIO (unreachable, dropped),
 * WEFT_EAUTH (AUTH refused), WEFT_EREDIS (SELECT refused), WEFT_EINVAL,
 * WEFT_ENOMEM. The caller owns the context: free it with redisFree. */
redisContext *rconn_connect_sync(const struct redis_url *url, int timeout_ms,
                                 struct weft_error *err);

#endif
