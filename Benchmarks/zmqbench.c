// Raw libzmq baseline and load driver for `make bench`.
//
//   zmqbench send FILE ENDPOINT [LOOPS]   XPUB binds ENDPOINT, waits for one subscriber, sends every NDJSON line of
//                                         FILE as a two-frame message (topic = eventType, body = line) LOOPS times,
//                                         then one one-frame sentinel "zmqbench-sentinel".
//   zmqbench recv ENDPOINT [PREFIX]       SUB connects, subscribes to everything, counts messages until the sentinel
//                                         arrives (as itself, or inside a daemon's invalid-event notice), then prints
//                                         "<messages> <epoch seconds of the sentinel>" (and, with PREFIX, the number of
//                                         messages whose topic starts with it). `send` prints "<events> <epoch
//                                         seconds of the first send>", so throughput = events / (end - start).
//   zmqbench lat FILE IN OUT RATE SECONDS Latency at a steady RATE events/s for SECONDS (the first RATE*SECONDS events
//                                         of FILE). XPUB binds IN; a receiver thread's SUB connects to OUT (a daemon's
//                                         output), or to IN itself when OUT is "-" (raw libzmq one way). Probes
//                                         (one-frame "zmqbench-probe", which a daemon answers with an invalid-event
//                                         notice) go until one comes back, so both paths are joined before timing. Raw:
//                                         the i-th message received is the i-th sent. Daemon: each "alert.raised.*"
//                                         message of a rule whose trigger is the event in hand (all but the two
//                                         overdue rules) is matched by evidence.triggerContactId/Version to the first
//                                         event with that contactId/contactVersion. Latency = receive − send on
//                                         CLOCK_MONOTONIC in one process. Prints "<samples> <p50 µs> <p99 µs> <max µs>
//                                         <events sent> <achieved ev/s>". With ZMQBENCH_LAT_TRACE=PATH it also
//                                         writes every sample in the order it arrived ("<send time, µs after the first
//                                         send> <event index> <latency µs>", after a "# start" line with the first
//                                         send on CLOCK_REALTIME and CLOCK_MONOTONIC): where in a run the slow ones
//                                         fall, to set beside `strace -ttt` or `perf record -k CLOCK_MONOTONIC`.
//   zmqbench fsync DIR N                  Appends 4 KiB to a new file in DIR and fdatasyncs it, N times (as a WAL
//                                         commit does); prints "<median µs> <p99 µs>".
//   zmqbench freeze MAX_SECONDS           Counts the moments this machine stopped running altogether (a virtual
//                                         machine's host not running its vCPUs), until SIGTERM/SIGINT or MAX_SECONDS.
//                                         One thread pinned to each CPU, SCHED_FIFO when permitted (it then preempts
//                                         every task of this machine), wakes on absolute 1 ms CLOCK_MONOTONIC
//                                         deadlines; a wake-up more than 2 ms late marks [deadline, wake-up) as late on
//                                         that CPU. A moment late on every CPU at once is a joint freeze (100 µs
//                                         resolution; counted when it lasts ≥ 1 ms). Prints "<joint freezes> <frozen
//                                         ms in all> <longest ms> <late wake-ups, all CPUs> <cpus> <fifo 1|0>". Without
//                                         SCHED_FIFO (no root or CAP_SYS_NICE) a late wake-up can also be this
//                                         machine's own scheduling, so the count is then an upper bound.
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
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdint.h>
#include <sched.h>
#include <errno.h>
#include <signal.h>

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

static int do_recv(const char *endpoint, const char *prefix) {
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_SUB);
    curve_from_env(s);
    int hwm = 0, linger = 0, timeout = 120000;
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(s, endpoint) != 0) { fprintf(stderr, "connect %s: %s\n", endpoint, zmq_strerror(zmq_errno())); return 69; }
    long count = 0, matching = 0;
    int first_frame = 1;
    double t0 = 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (;;) {
        if (zmq_msg_recv(&m, s, 0) < 0) { fprintf(stderr, "no sentinel within 120 s (%ld messages)\n", count); return 1; }
        if (count == 0 && t0 == 0) t0 = now();
        if (prefix && first_frame && zmq_msg_size(&m) >= strlen(prefix)
            && memcmp(zmq_msg_data(&m), prefix, strlen(prefix)) == 0) matching++;
        first_frame = !zmq_msg_more(&m);
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
    if (prefix) printf("%ld %.6f %ld\n", count, t1, matching);
    else printf("%ld %.6f\n", count, t1);
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

// ---------------------------------------------------------------- latency

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *probe = "zmqbench-probe";

// Reads the unsigned integer after `key` in [p, p+len); 0 when absent.
static uint64_t number_after(const char *p, size_t len, const char *key) {
    const char *q = memmem(p, len, key, strlen(key));
    if (!q) return 0;
    q += strlen(key);
    const char *end = p + len;
    while (q < end && *q == ' ') q++;
    uint64_t v = 0;
    while (q < end && *q >= '0' && *q <= '9') v = v * 10 + (uint64_t)(*q++ - '0');
    return v;
}

// (contactId, contactVersion) -> first event index, open addressing.
typedef struct { uint64_t id, version; long index; } slot_t;
typedef struct { slot_t *slots; size_t mask; } table_t;
static size_t slot_of(const table_t *t, uint64_t id, uint64_t version) {
    uint64_t h = (id * 0x9E3779B97F4A7C15ull) ^ (version * 0xC2B2AE3D27D4EB4Full);
    size_t i = (size_t)(h ^ (h >> 29)) & t->mask;
    while (t->slots[i].index >= 0 && !(t->slots[i].id == id && t->slots[i].version == version)) i = (i + 1) & t->mask;
    return i;
}

typedef struct {
    void *ctx;
    const char *endpoint;
    int raw;
    const table_t *table;
    const uint64_t *sent_ns;   // per event; 0 until sent
    long events;
    uint64_t *lat_ns;          // samples
    long *lat_index;           // each sample's event, for ZMQBENCH_LAT_TRACE
    long samples, unmatched;
    volatile int joined;       // a probe came back
    volatile int ready;        // the SUB socket is connected and subscribed
    int failed;
} receiver_t;

static void *receive_loop(void *arg) {
    receiver_t *r = arg;
    void *s = zmq_socket(r->ctx, ZMQ_SUB);
    int hwm = 0, linger = 0, timeout = 120000;
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    if (zmq_connect(s, r->endpoint) != 0) {
        fprintf(stderr, "connect %s: %s\n", r->endpoint, zmq_strerror(zmq_errno()));
        r->failed = 1; r->ready = 1;
        zmq_close(s);
        return NULL;
    }
    r->ready = 1;
    zmq_msg_t topic, body;
    zmq_msg_init(&topic);
    zmq_msg_init(&body);
    long next_raw = 0;
    for (;;) {
        if (zmq_msg_recv(&topic, s, 0) < 0) { fprintf(stderr, "lat: no sentinel within 120 s\n"); r->failed = 1; break; }
        uint64_t t = mono_ns();
        int two = zmq_msg_more(&topic);
        zmq_msg_t *last = &topic;
        if (two) {
            if (zmq_msg_recv(&body, s, 0) < 0) { r->failed = 1; break; }
            while (zmq_msg_more(&body)) zmq_msg_recv(&body, s, 0);
            last = &body;
        }
        const char *b = zmq_msg_data(last);
        size_t blen = zmq_msg_size(last);
        if (memmem(b, blen, probe, strlen(probe))) { r->joined = 1; continue; }
        if (memmem(b, blen, sentinel, strlen(sentinel))) break;
        if (!r->joined) continue;
        long index = -1;
        if (r->raw) {
            index = next_raw++;
        } else {
            const char *tp = zmq_msg_data(&topic);
            size_t tl = zmq_msg_size(&topic);
            const char *raised = "alert.raised.";
            if (!two || tl < strlen(raised) || memcmp(tp, raised, strlen(raised)) != 0) continue;
            if (memmem(tp, tl, "overdue", 7)) continue;  // R6 and R7 rise on the watermark, not on their trigger
            uint64_t id = number_after(b, blen, "\"triggerContactId\":");
            uint64_t version = number_after(b, blen, "\"triggerContactVersion\":");
            const slot_t *sl = &r->table->slots[slot_of(r->table, id, version)];
            index = sl->index;
        }
        if (index < 0 || index >= r->events || r->sent_ns[index] == 0 || r->sent_ns[index] > t) { r->unmatched++; continue; }
        r->lat_index[r->samples] = index;
        r->lat_ns[r->samples++] = t - r->sent_ns[index];
    }
    zmq_msg_close(&topic);
    zmq_msg_close(&body);
    zmq_close(s);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int do_lat(const char *file, const char *in, const char *out, long rate, double seconds) {
    FILE *f = fopen(file, "rb");
    if (!f) { perror(file); return 66; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)size + 1);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) { perror("read"); return 66; }
    fclose(f);
    long want = (long)(rate * seconds);
    if (rate <= 0 || want <= 0) { fprintf(stderr, "lat: RATE and SECONDS must be positive\n"); return 64; }
    // The events: line start, length, topic.
    typedef struct { const char *p; size_t len; const char *t; size_t tlen; } event_t;
    event_t *ev = calloc((size_t)want, sizeof *ev);
    long n = 0;
    for (char *p = data, *end = data + size; p < end && n < want;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *t; size_t tlen;
        if (len > 0 && p[0] != '#' && topic_of(p, len, &t, &tlen)) ev[n++] = (event_t){p, len, t, tlen};
        p += len + 1;
    }
    table_t table;
    table.mask = 1;
    while (table.mask < (size_t)n * 2) table.mask <<= 1;
    table.slots = malloc(table.mask * sizeof(slot_t));
    for (size_t i = 0; i < table.mask; i++) table.slots[i].index = -1;
    table.mask -= 1;
    for (long i = 0; i < n; i++) {
        uint64_t id = number_after(ev[i].p, ev[i].len, "\"contactId\":");
        if (id == 0) continue;
        uint64_t version = number_after(ev[i].p, ev[i].len, "\"contactVersion\":");
        if (version == 0) version = 1;
        slot_t *sl = &table.slots[slot_of(&table, id, version)];
        if (sl->index < 0) *sl = (slot_t){id, version, i};
    }
    uint64_t *sent_ns = calloc((size_t)n + 1, sizeof *sent_ns);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_XPUB);
    int hwm = 0, linger = 10000;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(s, in) != 0) { fprintf(stderr, "bind %s: %s\n", in, zmq_strerror(zmq_errno())); return 69; }
    int raw = strcmp(out, "-") == 0;
    receiver_t r = { .ctx = ctx, .endpoint = raw ? in : out, .raw = raw, .table = &table, .sent_ns = sent_ns,
                     .events = n, .lat_ns = calloc((size_t)n + 1, sizeof(uint64_t)),
                     .lat_index = calloc((size_t)n + 1, sizeof(long)) };
    pthread_t thread;
    pthread_create(&thread, NULL, receive_loop, &r);
    while (!r.ready) usleep(1000);
    if (r.failed) return 69;
    // One subscription (the daemon's input, or our own SUB) must reach the XPUB before anything is sent.
    char sub[256];
    int timeout = 30000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    if (zmq_recv(s, sub, sizeof sub, 0) < 0) { fprintf(stderr, "lat: no subscriber joined in 30 s\n"); return 69; }
    // Probes until one comes back through the whole path.
    uint64_t give_up = mono_ns() + 30000000000ull;
    while (!r.joined) {
        if (mono_ns() > give_up || r.failed) { fprintf(stderr, "lat: no probe came back within 30 s\n"); return 69; }
        zmq_send(s, probe, strlen(probe), 0);
        usleep(20000);
    }
    usleep(100000);  // let the last probes' answers pass before timing
    uint64_t start = mono_ns();
    double interval = 1e9 / (double)rate;
    for (long i = 0; i < n; i++) {
        uint64_t due = start + (uint64_t)(interval * (double)i);
        uint64_t t = mono_ns();
        if (t < due) {
            struct timespec ts = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
            t = mono_ns();
        }
        sent_ns[i] = t;
        zmq_send(s, ev[i].t, ev[i].tlen, ZMQ_SNDMORE);
        zmq_send(s, ev[i].p, ev[i].len, 0);
    }
    uint64_t finish = mono_ns();
    zmq_send(s, sentinel, strlen(sentinel), 0);
    pthread_join(thread, NULL);
    if (r.failed) return 1;
    // ZMQBENCH_LAT_TRACE=FILE: every sample in the order it arrived: the event's send time (µs after the first send),
    // its index and its latency (µs) — where in the run the slow ones fall.
    const char *trace = getenv("ZMQBENCH_LAT_TRACE");
    if (trace) {
        FILE *tf = fopen(trace, "w");
        if (!tf) { perror(trace); return 73; }
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        uint64_t now = mono_ns(), rt_ns = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
        fprintf(tf, "# start %.6f (CLOCK_REALTIME s of the first send) %.6f (CLOCK_MONOTONIC)\n", (rt_ns - (now - start)) / 1e9, start / 1e9);
        for (long i = 0; i < r.samples; i++)
            fprintf(tf, "%.1f %ld %.1f\n", (sent_ns[r.lat_index[i]] - start) / 1e3, r.lat_index[i], r.lat_ns[i] / 1e3);
        fclose(tf);
    }
    qsort(r.lat_ns, (size_t)r.samples, sizeof(uint64_t), cmp_u64);
    double p50 = 0, p99 = 0, mx = 0;
    if (r.samples > 0) {
        p50 = r.lat_ns[(r.samples - 1) / 2] / 1e3;
        long k = (long)((r.samples - 1) * 0.99 + 0.999999);
        p99 = r.lat_ns[k < r.samples ? k : r.samples - 1] / 1e3;
        mx = r.lat_ns[r.samples - 1] / 1e3;
    }
    double achieved = n / ((finish - start) / 1e9);
    fprintf(stderr, "lat: %ld events at %.0f ev/s (asked %ld), %ld samples, %ld unmatched\n", n, achieved, rate, r.samples, r.unmatched);
    printf("%ld %.0f %.0f %.0f %ld %.0f\n", r.samples, p50, p99, mx, n, achieved);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

// ---------------------------------------------------------------- fsync

static int do_fsync(const char *dir, int count) {
    char path[4096];
    snprintf(path, sizeof path, "%s/zmqbench-fsync.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) { perror(path); return 73; }
    unlink(path);
    char block[4096];
    memset(block, 'x', sizeof block);
    uint64_t *t = calloc((size_t)count, sizeof *t);
    for (int i = 0; i < count; i++) {
        uint64_t t0 = mono_ns();
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fdatasync(fd) != 0) { perror("write/fdatasync"); return 74; }
        t[i] = mono_ns() - t0;
    }
    close(fd);
    qsort(t, (size_t)count, sizeof *t, cmp_u64);
    long k = (long)((count - 1) * 0.99 + 0.999999);
    printf("%.0f %.0f\n", t[(count - 1) / 2] / 1e3, t[k < count ? k : count - 1] / 1e3);
    return 0;
}

// ---------------------------------------------------------------- freeze

#define FREEZE_MAX_CPUS 64
#define FREEZE_MAX_LATE 100000
static volatile sig_atomic_t freeze_stop = 0;
static void freeze_on_signal(int sig) { (void)sig; freeze_stop = 1; }

typedef struct {
    int cpu, fifo;
    uint64_t origin, until;           // CLOCK_MONOTONIC ns
    uint64_t (*late)[2];              // [deadline, wake-up) of each late wake-up
    size_t nlate;
} freeze_probe_t;

static void *freeze_loop(void *arg) {
    freeze_probe_t *p = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    struct sched_param sp = { .sched_priority = sched_get_priority_max(SCHED_FIFO) };
    p->fifo = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    uint64_t deadline = p->origin;
    while (!freeze_stop && deadline < p->until) {
        deadline += 1000000;
        struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000u), .tv_nsec = (long)(deadline % 1000000000u) };
        int rc;
        while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR && !freeze_stop) {}
        if (rc != 0 && rc != EINTR) break;  // never spin at real-time priority
        uint64_t t = mono_ns();
        if (t > deadline + 2000000 && p->nlate < FREEZE_MAX_LATE) {
            p->late[p->nlate][0] = deadline;
            p->late[p->nlate][1] = t;
            p->nlate++;
        }
        if (t > deadline + 1000000) deadline = t - t % 1000000;  // skip the deadlines missed
    }
    return NULL;
}

static int do_freeze(double max_seconds) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > FREEZE_MAX_CPUS) n = FREEZE_MAX_CPUS;
    signal(SIGTERM, freeze_on_signal);
    signal(SIGINT, freeze_on_signal);
    freeze_probe_t probes[FREEZE_MAX_CPUS];
    pthread_t threads[FREEZE_MAX_CPUS];
    uint64_t origin = mono_ns();
    origin -= origin % 1000000;
    uint64_t until = origin + (uint64_t)(max_seconds * 1e9);
    for (long c = 0; c < n; c++) {
        probes[c] = (freeze_probe_t){ .cpu = (int)c, .origin = origin, .until = until,
                                      .late = calloc(FREEZE_MAX_LATE, sizeof(uint64_t[2])) };
        if (!probes[c].late || pthread_create(&threads[c], NULL, freeze_loop, &probes[c]) != 0) {
            perror("freeze"); return 71;
        }
    }
    int fifo = 1;
    size_t late = 0;
    for (long c = 0; c < n; c++) {
        pthread_join(threads[c], NULL);
        fifo &= probes[c].fifo;
        late += probes[c].nlate;
    }
    // Joint moments: 100 µs bins of the run, each counting the CPUs late in it.
    uint64_t end = mono_ns();
    size_t bins = (size_t)((end - origin) / 100000) + 1;
    unsigned char *count = calloc(bins, 1);
    if (!count) { perror("freeze"); return 71; }
    for (long c = 0; c < n; c++) {
        for (size_t i = 0; i < probes[c].nlate; i++) {
            size_t a = (size_t)((probes[c].late[i][0] - origin) / 100000);
            size_t b = (size_t)((probes[c].late[i][1] - origin) / 100000);
            for (size_t k = a; k < b && k < bins; k++) count[k]++;
        }
    }
    size_t freezes = 0, frozen = 0, longest = 0, run = 0;
    for (size_t k = 0; k <= bins; k++) {
        if (k < bins && count[k] >= n) { run++; continue; }
        if (run >= 10) { freezes++; frozen += run; if (run > longest) longest = run; }
        run = 0;
    }
    printf("%zu %.1f %.1f %zu %ld %d\n", freezes, frozen / 10.0, longest / 10.0, late, n, fifo);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "send") == 0) return do_send(argv[2], argv[3], argc >= 5 ? atoi(argv[4]) : 1);
    if (argc >= 3 && strcmp(argv[1], "recv") == 0) return do_recv(argv[2], argc >= 4 ? argv[3] : NULL);
    if (argc >= 7 && strcmp(argv[1], "lat") == 0) return do_lat(argv[2], argv[3], argv[4], atol(argv[5]), atof(argv[6]));
    if (argc >= 4 && strcmp(argv[1], "fsync") == 0) return do_fsync(argv[2], atoi(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "freeze") == 0) return do_freeze(atof(argv[2]));
    fprintf(stderr, "usage: zmqbench send FILE ENDPOINT [LOOPS] | zmqbench recv ENDPOINT [PREFIX]\n"
                    "       zmqbench lat FILE IN OUT|- RATE SECONDS | zmqbench fsync DIR N | zmqbench freeze MAX_SECONDS\n");
    return 64;
}
