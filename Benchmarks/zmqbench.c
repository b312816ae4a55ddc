// Raw libzmq baseline and load driver for `make bench`.
//
//   zmqbench send FILE ENDPOINT [LOOPS]   XPUB binds ENDPOINT, waits for one subscriber, sends every NDJSON line of
//                                         FILE as a two-frame message (topic = eventType, body = line) LOOPS times,
//                                         then one one-frame sentinel "zmqbench-sentinel".
//   zmqbench recv ENDPOINT                SUB connects, subscribes to everything, counts messages until the sentinel
//                                         arrives (as itself, or inside a daemon's invalid-event notice), then prints
//                                         "<messages> <epoch seconds of the sentinel>". `send` prints "<events> <epoch
//                                         seconds of the first send>", so throughput = events / (end - start).
//
// Everything stays on this machine (ipc:// or tcp://127.0.0.1) and stops by itself.
//
// CURVE (the CURVE end-to-end run): ZMQBENCH_CURVE_SECRET is this side's secret key (Z85). With
// ZMQBENCH_CURVE_SERVERKEY (and ZMQBENCH_CURVE_PUBLIC) this side is a CURVE client of that server; without it, a
// CURVE server (no ZAP handler in zmqbench: any client key is accepted).
#define _GNU_SOURCE
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *sentinel = "zmqbench-sentinel";

static void curve_from_env(void *s) {
    const char *secret = getenv("ZMQBENCH_CURVE_SECRET");
    if (!secret) return;
    const char *server = getenv("ZMQBENCH_CURVE_SERVERKEY");
    if (server) {
        const char *pub = getenv("ZMQBENCH_CURVE_PUBLIC");
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, strlen(server));
        if (pub) zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, strlen(pub));
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, strlen(secret));
    } else {
        int one = 1;
        zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, strlen(secret));
    }
}

static int topic_of(const char *line, size_t len, const char **start, size_t *tlen) {
    const char *key = "\"eventType\":\"";
    const char *p = memmem(line, len, key, strlen(key));
    if (!p) return 0;
    p += strlen(key);
    const char *q = memchr(p, '"', len - (size_t)(p - line));
    if (!q) return 0;
    *start = p;
    *tlen = (size_t)(q - p);
    return 1;
}

static int do_send(const char *file, const char *endpoint, int loops) {
    FILE *f = fopen(file, "rb");
    if (!f) { perror(file); return 66; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) { perror("read"); return 66; }
    fclose(f);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_XPUB);
    curve_from_env(s);
    int hwm = 0, linger = 10000;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s, endpoint) != 0) { fprintf(stderr, "bind %s: %s\n", endpoint, zmq_strerror(zmq_errno())); return 69; }
    char sub[256];
    int timeout = 30000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_recv(s, sub, sizeof sub, 0) < 0) { fprintf(stderr, "no subscriber joined in 30 s\n"); return 69; }
    long sent = 0;
    double t0 = now();
    for (int l = 0; l < loops; l++) {
        char *p = data, *end = data + size;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
            const char *t; size_t tlen;
            if (len > 0 && p[0] != '#' && topic_of(p, len, &t, &tlen)) {
                zmq_send(s, t, tlen, ZMQ_SNDMORE);
                zmq_send(s, p, len, 0);
                sent++;
            }
            p += len + 1;
        }
    }
    zmq_send(s, sentinel, strlen(sentinel), 0);
    double t1 = now();
    fprintf(stderr, "sent %ld messages in %.3f s (%.0f msg/s)\n", sent, t1 - t0, sent / (t1 - t0));
    printf("%ld %.6f\n", sent, t0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    free(data);
    return 0;
}

static int do_recv(const char *endpoint) {
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_SUB);
    curve_from_env(s);
    int hwm = 0, linger = 0, timeout = 120000;
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(s, endpoint) != 0) { fprintf(stderr, "connect %s: %s\n", endpoint, zmq_strerror(zmq_errno())); return 69; }
    long count = 0;
    double t0 = 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        if (zmq_msg_recv(&m, s, 0) < 0) { fprintf(stderr, "no sentinel within 120 s (%ld messages)\n", count); return 1; }
        if (count == 0 && t0 == 0) t0 = now();
        int done = memmem(zmq_msg_data(&m), zmq_msg_size(&m), sentinel, strlen(sentinel)) != NULL;
        if (!zmq_msg_more(&m)) count++;
        if (done && !zmq_msg_more(&m)) break;
        if (done) {
            while (zmq_msg_more(&m)) zmq_msg_recv(&m, s, 0);
            count++;
            break;
        }
    }
    double t1 = now();
    printf("%ld %.6f\n", count, t1);
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "send") == 0) return do_send(argv[2], argv[3], argc >= 5 ? atoi(argv[4]) : 1);
    if (argc >= 3 && strcmp(argv[1], "recv") == 0) return do_recv(argv[2]);
    fprintf(stderr, "usage: zmqbench send FILE ENDPOINT [LOOPS] | zmqbench recv ENDPOINT\n");
    return 64;
}
