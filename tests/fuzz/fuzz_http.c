/* fuzz_http.c - libFuzzer target for the scheduler's HTTP server.
 *
 * Each input is sent as raw bytes over a real TCP connection to the
 * server http_start() runs (scheduler/http.c), the way any client on the
 * network can: libevent's request parser first, then everything of ours
 * behind it (routing, the token and loopback rules, query strings, body
 * limits and checks). Redis is unreachable, so a request that gets past
 * its checks meets the server's "Redis is down" paths. The input is
 * written whole and the loop run until the server closes the connection,
 * or its answer has stopped coming for 3 rounds (of at most 1 ms of
 * waiting each), or none came in 5; then the client resets the
 * connection. A crash, a sanitizer
 * report or a leak is a finding; the answer itself is not checked. The server
 * has a token, FUZZ_TOKEN, so that requests carrying it reach the handlers
 * behind the authentication (the corpus's requests do). With FUZZ_HTTP_ECHO
 * set, the answers go to stderr, to see what an input reaches.
 */
#include <stdio.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "alloc.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "redisurl.h"
#include "sched.h"

#define FUZZ_TOKEN "fuzz-token-0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static uint16_t port;
static bool echo; /* FUZZ_HTTP_ECHO is set */

/* One server for the whole run: starting one per input would measure
 * listen() more than parsing. */
static void setup(void)
{
    static struct redis_url url;
    static struct sched_config cfg;
    struct weft_error err;
    weft_alloc_init();
    echo = getenv("FUZZ_HTTP_ECHO") != NULL;
    signal(SIGPIPE, SIG_IGN);
    log_init("fuzz_http");
    log_set_level("error");
    base = event_base_new();
    if (base == NULL ||
        redis_url_parse("unix:///nonexistent/weft-fuzz-http.sock", &url,
                        NULL) != 0 ||
        keys_init(&cfg.keys, "weft") != 0)
        abort();
    cfg.url = url;
    cfg.name = "fuzz";
    struct sched *s = sched_new(base, &cfg);
    struct http_config hc = {.addr = "127.0.0.1:0",
                             .url = &url,
                             .keys = &cfg.keys,
                             .token = FUZZ_TOKEN,
                             .name = "fuzz"};
    struct http *h = s ? http_start(base, &hc, s, &err) : NULL;
    if (h == NULL)
        abort();
    port = http_port(h);
}

/* Runs what is ready in the loop, waits up to 1 ms for events on fd,
 * and runs the loop again; returns poll's answer (1: fd is ready). */
static int spin(int fd, short events)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, 1);
    event_base_loop(base, EVLOOP_NONBLOCK);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (base == NULL)
        setup();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* The client never sends a FIN and closes with a reset, so neither
     * side is left in TIME_WAIT: at some 700 inputs a second those would
     * use up the ephemeral ports within a minute. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        abort();
    /* Non-blocking, with the server's loop running meanwhile: a blocking
     * connect waits when the accept queue is full, and libFuzzer's
     * SIGALRM then interrupts it. A server that stops accepting for 2 s
     * is a finding. */
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (rc != 0 && errno == EINPROGRESS) {
        int e = ETIMEDOUT;
        for (int round = 0; round < 2000; round++) {
            if (spin(fd, POLLOUT) == 1) {
                socklen_t elen = sizeof(e);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
                    e = errno;
                rc = e == 0 ? 0 : -1;
                break;
            }
        }
        errno = e;
    }
    if (rc != 0) {
        perror("fuzz_http: cannot connect to the server");
        abort();
    }
    size_t sent = 0;
    char buf[4096];
    bool closed = false;
    int idle = 0; /* rounds since the last answer bytes */
    bool answered = false;
    for (int round = 0; round < 100 && !closed && !(answered && idle >= 3);
         round++) {
        while (sent < size) {
            ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            sent += (size_t)n;
        }
        spin(fd, POLLIN);
        bool got = false;
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0 && echo)
                fwrite(buf, 1, (size_t)n, stderr);
            if (n > 0) {
                got = answered = true;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                closed = true;
            break;
        }
        /* A kept-alive connection waits for the next request, and an
         * incomplete request for the rest of it: once the answer has
         * stopped coming, or none came (the server answers a complete
         * request within a round or two), this input is done. */
        idle = got ? 0 : idle + 1;
        if (!answered && sent == size && idle >= 5)
            break;
    }
    close(fd);
    spin(-1, 0); /* the server sees the reset and frees the connection */
    return 0;
}
