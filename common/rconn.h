/* rconn.h - one Redis connection on a libevent loop (hiredis async), with
 * reconnect, AUTH/SELECT, and script calls that survive NOSCRIPT.
 *
 * The only module that talks to hiredis' async API, so the transport can
 * change (TLS through bufferevent_openssl, FIELD-NOTES) without touching
 * callers. hiredis 0.14 has no reconnect and no timeouts: this module
 * reconnects with exponential backoff (RCONN_BACKOFF_MIN_MS doubling to
 * RCONN_BACKOFF_MAX_MS), re-sends AUTH and SELECT on every new connection
 * (queued ahead of anything else), and tells its owner through the
 * state callback so it can re-issue blocking reads and subscriptions.
 *
 * A blocking command (XREADGROUP BLOCK, SUBSCRIBE) holds up everything
 * behind it on the same connection: give each its own rconn.
 *
 * All calls and callbacks run on the loop thread.
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

/* reply is owned by hiredis and valid only during the callback; NULL when
 * the connection dropped before the reply came (the command may or may
 * not have run) or when the rconn is being freed. Called exactly once per
 * accepted command. */
typedef void (*rconn_reply_cb)(struct rconn *c, redisReply *reply, void *ud);

/* Called with up = true after each successful (re)connect (AUTH and
 * SELECT already sent), up = false when the connection is lost. */
typedef void (*rconn_state_cb)(struct rconn *c, bool up, void *ud);

/* Creates the connection and starts connecting. url is copied. name is
 * used in logs and as CLIENT SETNAME. NULL on OOM. */
struct rconn *rconn_new(struct event_base *base, const struct redis_url *url,
                        const char *name, rconn_state_cb state_cb, void *ud);

/* Disconnects; pending callbacks run with reply == NULL. Safe inside a
 * reply callback of this connection (release is deferred). NULL: no-op. */
void rconn_free(struct rconn *c);

bool rconn_is_up(const struct rconn *c);

/* Sends one command built from argv. Returns 0 (cb will run exactly
 * once) or WEFT_EREDIS when not connected / WEFT_ENOMEM (cb never runs).
 * cb may be NULL to ignore the reply. */
int rconn_argv(struct rconn *c, rconn_reply_cb cb, void *ud, int argc,
               const char **argv, const size_t *argvlen);

/* printf-style (hiredis' %s %b %d ... formats; %b takes a size_t). */
int rconn_cmd(struct rconn *c, rconn_reply_cb cb, void *ud, const char *fmt,
              ...);

/* EVALSHA of a script from scripts.h with nkeys keys then the args
 * (argv/argvlen hold keys first, then args). On a NOSCRIPT reply the
 * module sends SCRIPT LOAD and the EVALSHA again before calling cb, so
 * callers never see NOSCRIPT. */
int rconn_eval(struct rconn *c, enum script_id id, rconn_reply_cb cb,
               void *ud, int nkeys, int argc, const char **argv,
               const size_t *argvlen);

/* Round-trip time of the last PING this module sent, in microseconds
 * (0 = none yet). The module pings every second while connected. */
long rconn_rtt_us(const struct rconn *c);

/* Synchronous client for the CLI and tests: connects (timeout_ms),
 * authenticates and selects the db. NULL with err filled on failure.
 * Free with redisFree. */
redisContext *rconn_connect_sync(const struct redis_url *url, int timeout_ms,
                                 struct weft_error *err);

#endif
