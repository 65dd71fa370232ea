/*
 * Which route a proxy request belongs to (src/proxy/routing.c), with routes
 * made the way holdfast serve makes them: YAML through the configuration
 * and the engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <holdfast/config.h>

#include "engine/engine.h"
#include "proxy/proxy_impl.h"

static const char yaml[] = "store: { path: none }\n"
                           "routes:\n"
                           "  - name: news\n"
                           "    upstream: http://127.0.0.1:1/\n"
                           "  - name: deep\n"
                           "    prefix: /news/world/\n"
                           "    upstream: http://127.0.0.1:1/w/\n"
                           "  - name: quotes\n"
                           "    prefix: /api/v1/quotes/\n"
                           "    upstream: http://127.0.0.1:1/q/\n";

static const char yaml_root[] = "store: { path: none }\n"
                                "routes:\n"
                                "  - name: all\n"
                                "    prefix: /\n"
                                "    upstream: http://127.0.0.1:1/\n"
                                "  - name: news\n"
                                "    upstream: http://127.0.0.1:1/n/\n";

struct fx {
    struct hf_config_file *cf;
    struct hf_engine *e;
};

static void open_engine(struct fx *f, const char *text)
{
    char err[256] = "";
    assert_int_equal(hf_config_parse(text, strlen(text), "t.yaml", &f->cf, err, sizeof err), HF_OK);
    assert_int_equal(hf_engine_create(hf_config_file_config(f->cf), &f->e, err, sizeof err), HF_OK);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    hf_engine_destroy(&f->e);
    hf_config_file_free(&f->cf);
    return 0;
}

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof f);
    *state = &f;
    return 0;
}

/* uri -> route name (NULL: none) and what follows the prefix */
static void expect(const struct hf_engine *e, const char *uri, const char *name, const char *rest)
{
    const char *got_rest = NULL;
    const struct hf_route *r = hf__route_match(e, uri, &got_rest);
    if (name == NULL) {
        if (r != NULL)
            fail_msg("%s: expected no route, got %s", uri, r->cfg.name);
        return;
    }
    if (r == NULL)
        fail_msg("%s: expected route %s, got none", uri, name);
    if (strcmp(r->cfg.name, name) != 0)
        fail_msg("%s: expected route %s, got %s", uri, name, r->cfg.name);
    if (strcmp(got_rest, rest) != 0)
        fail_msg("%s: expected rest \"%s\", got \"%s\"", uri, rest, got_rest);
}

static void segments_and_longest_prefix(void **state)
{
    struct fx *f = *state;
    open_engine(f, yaml);
    expect(f->e, "/news/latest", "news", "latest");
    expect(f->e, "/news/latest?a=1", "news", "latest?a=1");
    expect(f->e, "/news", "news", "");
    expect(f->e, "/news/", "news", "");
    expect(f->e, "/news?page=2", "news", "?page=2");
    expect(f->e, "/newsletter", NULL, NULL); /* whole segments only */
    expect(f->e, "/newsletter/x", NULL, NULL);
    expect(f->e, "/news/world/eu", "deep", "eu"); /* the longest prefix wins */
    expect(f->e, "/news/world", "deep", "");
    expect(f->e, "/news/worldwide", "news", "worldwide");
    expect(f->e, "/api/v1/quotes/AAPL", "quotes", "AAPL");
    expect(f->e, "/api/v1/quotes", "quotes", "");
    expect(f->e, "/api/v1", NULL, NULL);
    expect(f->e, "/", NULL, NULL);
    expect(f->e, "", NULL, NULL);
    expect(f->e, "news/latest", NULL, NULL); /* not origin-form */
}

static void root_prefix_catches_the_rest(void **state)
{
    struct fx *f = *state;
    open_engine(f, yaml_root);
    expect(f->e, "/news/a", "news", "a"); /* any longer prefix beats "/" */
    expect(f->e, "/newsletter", "all", "newsletter");
    expect(f->e, "/", "all", "");
    expect(f->e, "/x/y?z", "all", "x/y?z");
    expect(f->e, "/?q", "all", "?q");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(segments_and_longest_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(root_prefix_catches_the_rest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
