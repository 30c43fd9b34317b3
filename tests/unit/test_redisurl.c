/* test_redisurl.c - Redis URL parsing (common/redisurl.c): every accepted
 * form, every error, redaction for logs. */
#include <string.h>

#include <criterion/criterion.h>

#include "alloc.h"
#include "error.h"
#include "redisurl.h"

static struct redis_url u;

static void teardown(void)
{
    redis_url_deinit(&u);
    weft_alloc_fail_reset();
}

TestSuite(redisurl, .fini = teardown);

static void parse_ok(const char *url)
{
    struct weft_error err = {0};
    int rc = redis_url_parse(url, &u, &err);
    cr_assert_eq(rc, 0, "%s: %s", url, err.msg);
}

/* Parses url expecting code, with want somewhere in the message. */
static void parse_fails(const char *url, int code, const char *want)
{
    struct weft_error err = {0};
    redis_url_deinit(&u);
    int rc = redis_url_parse(url, &u, &err);
    cr_assert_eq(rc, code, "%s: got %d (%s)", url, rc, err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_not_null(strstr(err.msg, want), "%s: message '%s' lacks '%s'",
                       url, err.msg, want);
    cr_assert_null(u.host);
    cr_assert_null(u.unix_path);
    cr_assert_null(u.user);
    cr_assert_null(u.password);
    cr_assert_eq(u.port, 0);
    cr_assert_eq(u.db, 0);
}

Test(redisurl, host_only_gets_defaults)
{
    parse_ok("redis://localhost");
    cr_assert_str_eq(u.host, "localhost");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 0);
    cr_assert_null(u.unix_path);
    cr_assert_null(u.user);
    cr_assert_null(u.password);
}

Test(redisurl, host_port_db)
{
    parse_ok("redis://redis.example-1.com:6380/3");
    cr_assert_str_eq(u.host, "redis.example-1.com");
    cr_assert_eq(u.port, 6380);
    cr_assert_eq(u.db, 3);
}

Test(redisurl, trailing_slash_is_db_zero)
{
    parse_ok("redis://h:7000/");
    cr_assert_eq(u.db, 0);
    cr_assert_eq(u.port, 7000);
}

Test(redisurl, db_without_port)
{
    parse_ok("redis://my_host/2");
    cr_assert_str_eq(u.host, "my_host");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(u.db, 2);
}

Test(redisurl, user_and_password)
{
    parse_ok("redis://weft:s3cret@h:1/0");
    cr_assert_str_eq(u.user, "weft");
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_str_eq(u.host, "h");
}

Test(redisurl, password_only_with_colon)
{
    parse_ok("redis://:s3cret@h");
    cr_assert_null(u.user);
    cr_assert_str_eq(u.password, "s3cret");
}

Test(redisurl, userinfo_without_colon_is_password_like_redis_cli)
{
    parse_ok("redis://s3cret@h");
    cr_assert_null(u.user);
    cr_assert_str_eq(u.password, "s3cret");
}

Test(redisurl, password_keeps_later_colons_and_at_signs)
{
    parse_ok("redis://u:p:w@x@h");
    cr_assert_str_eq(u.user, "u");
    cr_assert_str_eq(u.password, "p:w@x");
    cr_assert_str_eq(u.host, "h");
}

Test(redisurl, percent_decoding_of_user_and_password)
{
    parse_ok("redis://a%3Ab:p%2f%40%25%C3%A9@h");
    cr_assert_str_eq(u.user, "a:b");
    cr_assert_str_eq(u.password, "p/@%\xc3\xa9");
}

Test(redisurl, ipv6_literal)
{
    parse_ok("redis://[::1]:6390/1");
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 6390);
    cr_assert_eq(u.db, 1);
    redis_url_deinit(&u);
    parse_ok("redis://u:p@[fe80::1:2]");
    cr_assert_str_eq(u.host, "fe80::1:2");
    cr_assert_eq(u.port, 6379);
}

Test(redisurl, port_limits)
{
    parse_ok("redis://h:1");
    cr_assert_eq(u.port, 1);
    redis_url_deinit(&u);
    parse_ok("redis://h:65535");
    cr_assert_eq(u.port, 65535);
    parse_fails("redis://h:0", WEFT_EINVAL, "port '0' is out of range");
    parse_fails("redis://h:65536", WEFT_EINVAL, "port '65536' is out of range");
    parse_fails("redis://h:99999999999999999999999", WEFT_EINVAL,
                "out of range");
}

Test(redisurl, port_errors)
{
    parse_fails("redis://h:", WEFT_EINVAL, "port is empty");
    parse_fails("redis://h:-1", WEFT_EINVAL, "port '-1' is not a number");
    parse_fails("redis://h:+1", WEFT_EINVAL, "port '+1' is not a number");
    parse_fails("redis://h:6a", WEFT_EINVAL, "port '6a' is not a number");
    parse_fails("redis://h:1:2", WEFT_EINVAL, "port '1:2' is not a number");
}

Test(redisurl, db_limits)
{
    parse_ok("redis://h/1000000");
    cr_assert_eq(u.db, 1000000);
    parse_fails("redis://h/1000001", WEFT_EINVAL, "database '1000001'");
}

Test(redisurl, db_errors)
{
    parse_fails("redis://h/abc", WEFT_EINVAL, "database 'abc'");
    parse_fails("redis://h/-1", WEFT_EINVAL, "database '-1'");
    parse_fails("redis://h/+1", WEFT_EINVAL, "database '+1'");
    parse_fails("redis://h/1/2", WEFT_EINVAL, "database '1/2'");
}

Test(redisurl, unix_socket)
{
    parse_ok("unix:///var/run/redis.sock");
    cr_assert_str_eq(u.unix_path, "/var/run/redis.sock");
    cr_assert_null(u.host);
    cr_assert_eq(u.port, 0);
    cr_assert_eq(u.db, 0);
}

Test(redisurl, unix_socket_with_db_and_password)
{
    parse_ok("unix://weft:pw@/tmp/r.sock?db=5");
    cr_assert_str_eq(u.unix_path, "/tmp/r.sock");
    cr_assert_str_eq(u.user, "weft");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_eq(u.db, 5);
}

Test(redisurl, unix_errors)
{
    parse_fails("unix://", WEFT_EINVAL, "unix socket path is empty");
    parse_fails("unix:///", WEFT_EINVAL, "unix socket path is empty");
    parse_fails("unix:///?db=1", WEFT_EINVAL, "unix socket path is empty");
    parse_fails("unix://host/tmp/r.sock", WEFT_EINVAL, "must be absolute");
    parse_fails("unix://relative", WEFT_EINVAL, "must be absolute");
    parse_fails("unix:///r.sock?", WEFT_EINVAL, "query after '?' is empty");
    parse_fails("unix:///r.sock?db=x", WEFT_EINVAL, "database 'x'");
    parse_fails("unix:///r.sock?db", WEFT_EINVAL, "database ''");
    parse_fails("unix:///r.sock?db=", WEFT_EINVAL, "database ''");
    parse_fails("unix:///r.sock?password=x", WEFT_EINVAL,
                "unknown parameter 'password'");
    parse_fails("unix:///r.sock?db=1&db=2", WEFT_EINVAL,
                "parameter 'db' given twice");
    parse_fails("unix:///r.sock?db=1&", WEFT_EINVAL, "ends with '&'");
    parse_fails("unix:///r.sock?db=1000001", WEFT_EINVAL, "database '1000001'");
}

Test(redisurl, empty_and_null)
{
    parse_fails(NULL, WEFT_EINVAL, "empty");
    parse_fails("", WEFT_EINVAL, "empty");
}

Test(redisurl, scheme_errors)
{
    parse_fails("http://h", WEFT_EINVAL, "scheme must be");
    parse_fails("localhost:6379", WEFT_EINVAL, "scheme must be");
    parse_fails("REDIS://h", WEFT_EINVAL, "scheme must be");
    parse_fails("redis:/h", WEFT_EINVAL, "scheme must be");
    parse_fails("rediss://h", WEFT_EINVAL, "TLS");
}

Test(redisurl, host_errors)
{
    parse_fails("redis://", WEFT_EINVAL, "host is empty");
    parse_fails("redis://:6379", WEFT_EINVAL, "host is empty");
    parse_fails("redis:///0", WEFT_EINVAL, "host is empty");
    parse_fails("redis://u:p@", WEFT_EINVAL, "host is empty");
    parse_fails("redis://ho$t", WEFT_EINVAL, "invalid character '$'");
    parse_fails("redis://[::1", WEFT_EINVAL, "no closing ']'");
    parse_fails("redis://[]", WEFT_EINVAL, "host is empty");
    parse_fails("redis://[::1]x", WEFT_EINVAL, "unexpected 'x' after host");
    parse_fails("redis://[::g]", WEFT_EINVAL, "invalid character 'g'");
}

Test(redisurl, host_length_at_limit_and_one_past)
{
    char url[300];
    memcpy(url, "redis://", 8);
    memset(url + 8, 'a', 253);
    url[8 + 253] = '\0';
    parse_ok(url);
    cr_assert_eq(strlen(u.host), 253);
    url[8 + 253] = 'a';
    url[8 + 254] = '\0';
    parse_fails(url, WEFT_EINVAL, "host is longer than 253");
}

Test(redisurl, query_fragment_and_whitespace_errors)
{
    parse_fails("redis://h?db=1", WEFT_EINVAL, "query '?db=1'");
    parse_fails("redis://h/0#x", WEFT_EINVAL, "fragment");
    parse_fails("redis://h /0", WEFT_EINVAL, "offset 9");
    parse_fails("redis://h\t", WEFT_EINVAL, "control character");
    parse_fails("redis://h\x7f", WEFT_EINVAL, "control character");
}

Test(redisurl, userinfo_errors)
{
    parse_fails("redis://@h", WEFT_EINVAL, "nothing before '@'");
    parse_fails("redis://u:@h", WEFT_EINVAL, "password is empty");
    parse_fails("redis://:@h", WEFT_EINVAL, "password is empty");
    parse_fails("redis://u:p%4@h", WEFT_EINVAL,
                "password has an invalid percent-escape");
    parse_fails("redis://u:p%@h", WEFT_EINVAL,
                "password has an invalid percent-escape");
    parse_fails("redis://u:p%zz@h", WEFT_EINVAL,
                "password has an invalid percent-escape");
    parse_fails("redis://u:p%00@h", WEFT_EINVAL,
                "password must not contain %00");
    parse_fails("redis://u%g0:p@h", WEFT_EINVAL,
                "user has an invalid percent-escape");
}

Test(redisurl, errors_never_repeat_the_password)
{
    struct weft_error err;
    cr_assert_eq(redis_url_parse("redis://u:hunter2%zz@h", &u, &err),
                 WEFT_EINVAL);
    cr_assert_null(strstr(err.msg, "hunter2"));
    cr_assert_eq(redis_url_parse("redis://u:hunter2@h:0", &u, &err),
                 WEFT_EINVAL);
    cr_assert_null(strstr(err.msg, "hunter2"));
}

Test(redisurl, length_at_limit_and_one_past)
{
    static char url[REDIS_URL_MAX + 2];
    memcpy(url, "unix:///", 8);
    memset(url + 8, 'p', REDIS_URL_MAX - 8);
    url[REDIS_URL_MAX] = '\0';
    parse_ok(url);
    cr_assert_eq(strlen(u.unix_path), REDIS_URL_MAX - 7);
    url[REDIS_URL_MAX] = 'p';
    url[REDIS_URL_MAX + 1] = '\0';
    parse_fails(url, WEFT_ELIMIT, "longer than 2048");
}

Test(redisurl, failure_zeroes_previous_output)
{
    struct redis_url junk;
    memset(&junk, 0x5a, sizeof(junk));
    cr_assert_eq(redis_url_parse("redis://h:0", &junk, NULL), WEFT_EINVAL);
    cr_assert_null(junk.host);
    cr_assert_null(junk.password);
    cr_assert_eq(junk.port, 0);
}

Test(redisurl, deinit_is_idempotent_and_null_safe)
{
    parse_ok("redis://u:p@h");
    redis_url_deinit(&u);
    redis_url_deinit(&u);
    redis_url_deinit(NULL);
    cr_assert_null(u.host);
}

Test(redisurl, out_of_memory_at_every_allocation)
{
    const char *url = "unix://weft%21:p%40ss@/tmp/r.sock?db=2";
    for (unsigned long n = 1;; n++) {
        struct weft_error err;
        weft_alloc_fail_after(n);
        int rc = redis_url_parse(url, &u, &err);
        weft_alloc_fail_reset();
        if (rc == 0)
            break;
        cr_assert_eq(rc, WEFT_ENOMEM, "allocation %lu: %d", n, rc);
        cr_assert_null(u.unix_path);
        cr_assert_lt(n, 100);
    }
    cr_assert_str_eq(u.user, "weft!");
    cr_assert_str_eq(u.password, "p@ss");
}

static void redact(const char *url, const char *want)
{
    char out[256];
    redis_url_deinit(&u);
    parse_ok(url);
    cr_assert_eq(redis_url_redacted(&u, out, sizeof(out)), 0);
    cr_assert_str_eq(out, want);
}

Test(redisurl, redacted_hides_password)
{
    redact("redis://weft:s3cret@h:1/2", "redis://weft:***@h:1/2");
    redact("redis://h", "redis://h:6379/0");
    redact("redis://:s3cret@h", "redis://:***@h:6379/0");
    redact("redis://[::1]:7/1", "redis://[::1]:7/1");
    redact("redis://a%40b:x@h", "redis://a%40b:***@h:6379/0");
    redact("unix:///tmp/r.sock?db=3", "unix:///tmp/r.sock?db=3");
    redact("unix://:pw@/tmp/r.sock", "unix://:***@/tmp/r.sock?db=0");
}

Test(redisurl, redacted_output_parses_back)
{
    char out[256];
    parse_ok("redis://a%3Ab:x@[::1]:9/4");
    cr_assert_eq(redis_url_redacted(&u, out, sizeof(out)), 0);
    redis_url_deinit(&u);
    parse_ok(out);
    cr_assert_str_eq(u.user, "a:b");
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 9);
    cr_assert_eq(u.db, 4);
}

Test(redisurl, redacted_buffer_exact_and_one_short)
{
    const char *want = "redis://h:6379/0";
    char out[64];
    parse_ok("redis://h");
    cr_assert_eq(redis_url_redacted(&u, out, strlen(want) + 1), 0);
    cr_assert_str_eq(out, want);
    cr_assert_eq(redis_url_redacted(&u, out, strlen(want)), WEFT_ELIMIT);
    cr_assert_eq(strlen(out), strlen(want) - 1);
    cr_assert_eq(redis_url_redacted(&u, out, 0), WEFT_ELIMIT);
}

Test(redisurl, redacted_rejects_struct_without_endpoint)
{
    char out[64];
    struct redis_url empty = {0};
    cr_assert_eq(redis_url_redacted(&empty, out, sizeof(out)), WEFT_EINVAL);
}
