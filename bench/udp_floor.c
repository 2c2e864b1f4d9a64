/* The kernel's share of receiving RTP: what reading N calls' UDP packets costs a
 * process before any parsing, by four ways of reading them.
 *
 * Built and run by `python bench/rtp.py --kernel-floor` (cc -O2); standalone:
 *
 *     cc -O2 -o /tmp/udp_floor bench/udp_floor.c && /tmp/udp_floor MODE CALLS PACKETS ROUNDS
 *
 * MODE is one of
 *   epoll   one socket per call; epoll_wait, then one recvmmsg per ready socket (what
 *           recorder.rtp does)
 *   sweep   one socket per call; one recvmmsg on every socket, no epoll
 *   uring   one socket per call; io_uring multishot recvmsg into a ring of provided
 *           buffers (IORING_SETUP_DEFER_TASKRUN: the receive work runs when we ask)
 *   shared  one socket for every call; recvmmsg of 64 packets at a time (a round is
 *           sent and read in parts of 2048 datagrams, which its buffer holds)
 *
 * Each of ROUNDS rounds sends PACKETS 172-byte packets to each call's socket (not timed),
 * then reads them all; the reading thread's CPU time (user + system) over the packets
 * read is printed as "MODE ns_per_packet packets".  The packets are only read, not
 * parsed: this is the floor under any receiver that uses the kernel's UDP stack.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { BATCH = 64, PKT = 1536, PAYLOAD = 172, SHARED_PART = 2048 };

static int ncalls, npackets;
static int *socks;
static struct sockaddr_in *dests;
static int sender;

static double thread_cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int open_socket(struct sockaddr_in *where)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int rcvbuf = 1 << 24;
    if (s < 0)
        die("socket");
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || getsockname(s, (struct sockaddr *)&a, &len))
        die("bind");
    /* big enough for a round of every call on the shared socket (SO_RCVBUFFORCE: root) */
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf))
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    *where = a;
    return s;
}

/* Send datagrams number [from, to) of a round (PACKETS to each call, packet-major). */
static void send_part(long from, long to)
{
    static char pkt[PAYLOAD] = {(char)0x80, 8};
    for (long k = from; k < to; k++) {
        int i = (int)(k % ncalls);
        if (sendto(sender, pkt, sizeof pkt, 0, (struct sockaddr *)&dests[i], sizeof dests[i]) < 0)
            die("sendto");
    }
}

/* ---- recvmmsg into one set of buffers (epoll, sweep, shared) ---- */

static struct mmsghdr msgs[BATCH];
static struct iovec iovs[BATCH];
static struct sockaddr_in names[BATCH];
static char bufs[BATCH][PKT];

static void init_msgs(void)
{
    for (int j = 0; j < BATCH; j++) {
        iovs[j].iov_base = bufs[j];
        iovs[j].iov_len = PKT;
        msgs[j].msg_hdr.msg_iov = &iovs[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
        msgs[j].msg_hdr.msg_name = &names[j];
    }
}

static long read_socket(int fd)
{
    long total = 0;
    for (;;) {
        for (int j = 0; j < BATCH; j++)
            msgs[j].msg_hdr.msg_namelen = sizeof names[j];
        int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
            return total;
        total += got;
        if (got < BATCH)
            return total;
    }
}

static long read_epoll(int ep)
{
    struct epoll_event evs[256];
    long total = 0;
    int n = epoll_wait(ep, evs, 256, 0);
    while (n > 0) {
        for (int i = 0; i < n; i++)
            total += read_socket(socks[evs[i].data.u32]);
        n = n == 256 ? epoll_wait(ep, evs, 256, 0) : 0;
    }
    return total;
}

static long read_sweep(void)
{
    long total = 0;
    for (int i = 0; i < ncalls; i++)
        total += read_socket(socks[i]);
    return total;
}

/* ---- io_uring: multishot recvmsg, provided buffer ring ---- */

enum { NBUF = 16384, BUFSZ = 2048 };

static int ring;
static unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static struct io_uring_buf_ring *bring;
static char *bufmem;
static uint16_t btail;
static struct msghdr recv_hdr = {.msg_namelen = sizeof(struct sockaddr_in)};

static void give_buffer(unsigned bid)
{
    struct io_uring_buf *b = &bring->bufs[btail & (NBUF - 1)];
    b->addr = (uint64_t)(uintptr_t)(bufmem + (size_t)bid * BUFSZ);
    b->len = BUFSZ;
    b->bid = (uint16_t)bid;
    btail++;
}

static void publish_buffers(void)
{
    __atomic_store_n(&bring->tail, btail, __ATOMIC_RELEASE);
}

static void arm(int call)
{
    unsigned t = *sq_tail, i = t & *sq_mask;
    struct io_uring_sqe *s = &sqes[i];
    memset(s, 0, sizeof *s);
    s->opcode = IORING_OP_RECVMSG;
    s->fd = socks[call];
    s->addr = (uint64_t)(uintptr_t)&recv_hdr;
    s->len = 1;
    s->ioprio = IORING_RECV_MULTISHOT;
    s->flags = IOSQE_BUFFER_SELECT;
    s->buf_group = 1;
    s->user_data = (uint64_t)call;
    sq_array[i] = i;
    __atomic_store_n(sq_tail, t + 1, __ATOMIC_RELEASE);
}

static int enter(unsigned submit, unsigned flags)
{
    return (int)syscall(__NR_io_uring_enter, ring, submit, 0, flags, NULL, 0);
}

static void setup_uring(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = 65536;
    ring = (int)syscall(__NR_io_uring_setup, 4096, &p);
    if (ring < 0)
        die("io_uring_setup");
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *sq = mmap(0, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                    IORING_OFF_SQ_RING);
    char *cq = mmap(0, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
                    IORING_OFF_CQ_RING);
    sqes = mmap(0, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                ring, IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
        die("mmap ring");
    sq_tail = (unsigned *)(sq + p.sq_off.tail);
    sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    sq_array = (unsigned *)(sq + p.sq_off.array);
    cq_head = (unsigned *)(cq + p.cq_off.head);
    cq_tail = (unsigned *)(cq + p.cq_off.tail);
    cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);

    bring = mmap(0, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bufmem = mmap(0, (size_t)NBUF * BUFSZ, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (bring == MAP_FAILED || bufmem == MAP_FAILED)
        die("mmap buffers");
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)bring;
    reg.ring_entries = NBUF;
    reg.bgid = 1;
    if (syscall(__NR_io_uring_register, ring, IORING_REGISTER_PBUF_RING, &reg, 1) < 0)
        die("IORING_REGISTER_PBUF_RING");
    for (unsigned b = 0; b < NBUF; b++)
        give_buffer(b);
    publish_buffers();
    for (int i = 0; i < ncalls; i++)
        arm(i);
    if (enter((unsigned)ncalls, 0) < 0)
        die("io_uring_enter");
}

/* Take the completions: each is one datagram in a provided buffer, given back at once;
 * a receive that ended (no IORING_CQE_F_MORE, e.g. no buffer left) is armed again. */
static long reap(void)
{
    long total = 0;
    unsigned h = *cq_head, t = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE), rearm = 0;
    for (; h != t; h++) {
        struct io_uring_cqe *c = &cqes[h & *cq_mask];
        if (c->res >= 0 && (c->flags & IORING_CQE_F_BUFFER)) {
            unsigned bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
            const struct io_uring_recvmsg_out *o =
                (const void *)(bufmem + (size_t)bid * BUFSZ);
            total += o->payloadlen > 0;
            give_buffer(bid);
        }
        if (!(c->flags & IORING_CQE_F_MORE)) {
            arm((int)c->user_data);
            rearm++;
        }
    }
    __atomic_store_n(cq_head, h, __ATOMIC_RELEASE);
    publish_buffers();
    if (rearm && enter(rearm, 0) < 0)
        die("io_uring_enter");
    return total;
}

/* The kernel runs a bounded amount of deferred receive work per io_uring_enter, so ask
 * until a call brings nothing new. */
static long read_uring(void)
{
    long total = 0;
    for (;;) {
        unsigned before = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
        if (enter(0, IORING_ENTER_GETEVENTS) < 0)
            die("io_uring_enter");
        total += reap();
        if (__atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) == before)
            return total;
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s epoll|sweep|uring|shared CALLS PACKETS ROUNDS\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    ncalls = atoi(argv[2]);
    npackets = atoi(argv[3]);
    int rounds = atoi(argv[4]);
    int shared = !strcmp(mode, "shared");
    if (ncalls < 1 || npackets < 1 || rounds < 1 ||
        (!shared && strcmp(mode, "epoll") && strcmp(mode, "sweep") && strcmp(mode, "uring"))) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    socks = calloc((size_t)ncalls, sizeof *socks);
    dests = calloc((size_t)ncalls, sizeof *dests);
    sender = socket(AF_INET, SOCK_DGRAM, 0);
    int ep = epoll_create1(0);
    if (!socks || !dests || sender < 0 || ep < 0)
        die("setup");
    init_msgs();
    for (int i = 0; i < ncalls; i++) {
        if (shared && i > 0) {
            socks[i] = socks[0];
            dests[i] = dests[0];
            continue;
        }
        socks[i] = open_socket(&dests[i]);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, socks[i], &e))
            die("epoll_ctl");
    }
    if (!strcmp(mode, "uring"))
        setup_uring();

    double cpu = 0;
    long total = 0;
    /* The shared socket gets a round in parts of SHARED_PART datagrams, read after each:
     * a whole round of many calls would overflow its receive buffer. */
    long per_round = (long)ncalls * npackets;
    long part = shared ? SHARED_PART : per_round;
    for (int r = 0; r < rounds; r++) {
        for (long from = 0; from < per_round; from += part) {
            send_part(from, from + part < per_round ? from + part : per_round);
            double t0 = thread_cpu();
            long got = !strcmp(mode, "epoll") ? read_epoll(ep)
                       : !strcmp(mode, "uring") ? read_uring()
                       : shared ? read_socket(socks[0])
                                : read_sweep();
            cpu += thread_cpu() - t0;
            total += got;
        }
    }
    long sent = (long)ncalls * npackets * rounds;
    if (total != sent)
        fprintf(stderr, "%s: read %ld of %ld packets\n", mode, total, sent);
    printf("%s %.1f %ld\n", mode, total ? cpu / total * 1e9 : 0.0, total);
    return total == sent ? 0 : 1;
}
