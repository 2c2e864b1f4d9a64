/* System interfaces of the RTP receiver: epoll and recvmmsg (Linux).  Elsewhere they are
 * stubs that fail with ENOSYS, so the package still builds (recorder.rtp then says the
 * receiver needs Linux). */
#ifndef CR_RTP_SYS_H
#define CR_RTP_SYS_H
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>

#ifdef __linux__
#include <sys/epoll.h>
#define CR_RTP_SUPPORTED 1
#else
#define CR_RTP_SUPPORTED 0
typedef union epoll_data { void *ptr; int fd; uint32_t u32; uint64_t u64; } epoll_data_t;
struct epoll_event { uint32_t events; epoll_data_t data; };
struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; };
#define EPOLL_CTL_ADD 1
#define EPOLL_CTL_DEL 2
#define EPOLLIN 1
#define EPOLL_CLOEXEC 0
static inline int epoll_create1(int f) { (void)f; errno = ENOSYS; return -1; }
static inline int epoll_ctl(int e, int o, int fd, struct epoll_event *ev)
{ (void)e; (void)o; (void)fd; (void)ev; errno = ENOSYS; return -1; }
static inline int epoll_wait(int e, struct epoll_event *ev, int m, int t)
{ (void)e; (void)ev; (void)m; (void)t; errno = ENOSYS; return -1; }
static inline int recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int f, void *t)
{ (void)fd; (void)v; (void)n; (void)f; (void)t; errno = ENOSYS; return -1; }
#endif
#endif
