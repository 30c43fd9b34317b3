/* rconn_int.h - internals of rconn exposed to its own tests only.
 *
 * Daemons and the CLI use rconn.h; nothing here is a stable contract.
 */
#ifndef WEFT_COMMON_RCONN_INT_H
#define WEFT_COMMON_RCONN_INT_H

#include "rconn.h"

/* How many connections this rconn has started (the first one included),
 * so tests can check the backoff without watching the network. */
unsigned long rconn_connect_attempts(const struct rconn *c);

/* rconn_eval for any script: sha is its lowercase hex SHA-1 (40 chars),
 * text its source. sha and text are borrowed and must stay valid until
 * cb has run (rconn_eval passes static storage from scripts.h). label
 * names the script in logs. Same returns and callback rules as
 * rconn_eval. */
int rconn_eval_script(struct rconn *c, const char *label, const char *sha,
                      const char *text, size_t text_len, rconn_reply_cb cb,
                      void *ud, int nkeys, int argc, const char **argv,
                      const size_t *argvlen);

#endif
