# Varnish as a caching reverse proxy in front of the bench origin: its best
# equivalent of holdfast serve's configuration in bench/holdfast.yaml.
# bench/run fills in @ORIGIN_PORT@ and runs
#   varnishd -F -n DIR -a 127.0.0.1:PORT -f DIR/varnish.vcl -s malloc,256m
vcl 4.1;

backend origin {
    .host = "127.0.0.1";
    .port = "@ORIGIN_PORT@";
    # The same time limits as holdfast's timeout: 5s.
    .connect_timeout = 5s;
    .first_byte_timeout = 5s;
    .between_bytes_timeout = 5s;
    .max_connections = 1000;
}

sub vcl_recv {
    # The bench's clients send no cookies or credentials; the URL is the key.
    unset req.http.Cookie;
}

sub vcl_backend_response {
    # Freshness follows the origin's Cache-Control (beresp.ttl, as holdfast's
    # fresh_for: auto); past it, grace serves the stale copy while one
    # background fetch refreshes it, for as long as holdfast's stale_for (7d).
    set beresp.grace = 7d;
    # stale-if-error: a failed refresh (5xx, 429) is dropped, so the stale
    # copy stays and keeps being served.
    if (beresp.status >= 500 || beresp.status == 429) {
        if (bereq.is_bgfetch) {
            return (abandon);
        }
        # No copy to fall back on: pass the error on without caching it.
        set beresp.ttl = 0s;
        set beresp.grace = 0s;
        set beresp.uncacheable = true;
        return (deliver);
    }
}

sub vcl_backend_error {
    # Timeouts and connection failures of a refresh: keep the stale copy.
    if (bereq.is_bgfetch) {
        return (abandon);
    }
}
