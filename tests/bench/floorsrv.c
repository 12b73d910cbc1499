/* floorsrv: the floor under a login on this machine.
 *
 * Answers xmppload's login exchange (stream header, SASL PLAIN, stream
 * restart, bind, presence, close) with canned replies and no XMPP work at
 * all: no parser, no hash, no storage, no session.  It makes the same
 * system calls a server must make for one login over TCP (accept, an epoll
 * registration, a recv per client step, one send per reply, shutdown,
 * close), so its CPU time per login is what the kernel and an event loop
 * cost before any server logic.  run.sh runs it pinned to CPU 0 with
 * `xmppload -s logins` on CPU 1 and prints that cost beside the PBKDF2
 * bound.  Never for anything but loopback benchmarks.
 *
 *   floorsrv PORT        listens on 127.0.0.1:PORT until SIGTERM/SIGINT
 *
 * On exit it prints "FLOOR logins=N cpu_us=T" to stdout: the logins
 * answered and the process's user+system CPU time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096

typedef struct {
  int    fd;
  int    restarted;  /* the client opened its second stream */
  size_t len;
  char   buf[BUF_SIZE];
} Conn;

static volatile sig_atomic_t stop;
static unsigned long logins;

static const char HEADER[] =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
  "xmlns:stream='http://etherx.jabber.org/streams' id='floor' from='localhost' "
  "version='1.0' xml:lang='en'>";
static const char FEATURES1[] =
  "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
  "<mechanism>PLAIN</mechanism></mechanisms></stream:features>";
static const char FEATURES2[] =
  "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
  "</stream:features>";
static const char SUCCESS[] = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
static const char BOUND[] =
  "<iq type='result' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
  "<jid>user@localhost/floor</jid></bind></iq>";
static const char CLOSE[] = "</stream:stream>";

static void
on_signal (int sig)
{
  (void) sig;
  stop = 1;
}

static void
reply (Conn *c, const char *a, size_t alen, const char *b, size_t blen)
{
  char out[1024];

  memcpy (out, a, alen);
  memcpy (out + alen, b, blen);
  /* One send per reply, as a server writes one batch of output. */
  (void) send (c->fd, out, alen + blen, MSG_NOSIGNAL);
}

static void
drop (Conn *c)
{
  close (c->fd);
  free (c);
}

/* Where in P the client's next step ends, and which step it is: the
 * earliest of a stream header, </auth>, </iq> and </stream:stream>. */
enum { STEP_NONE, STEP_HEADER, STEP_AUTH, STEP_IQ, STEP_CLOSE };

static int
next_step (char *p, char **end)
{
  static const char *const marks[] = { NULL, "<stream:stream", "</auth>", "</iq>", "</stream:stream>" };
  int step = STEP_NONE;
  char *best = NULL;

  for (int k = STEP_HEADER; k <= STEP_CLOSE; k++)
    {
      char *m = strstr (p, marks[k]);

      if (m == NULL || (best != NULL && m >= best))
        continue;
      if (k == STEP_HEADER)
        {
          char *gt = strchr (m, '>');

          if (gt == NULL)
            continue;  /* the header is not complete yet */
          *end = gt + 1;
        }
      else
        *end = m + strlen (marks[k]);
      best = m;
      step = k;
    }
  return step;
}

/* Answers the whole client steps in C's buffer and consumes them. */
static void
serve (Conn *c)
{
  for (;;)
    {
      char *end = NULL;

      c->buf[c->len] = '\0';
      switch (next_step (c->buf, &end))
        {
        case STEP_HEADER:
          if (!c->restarted)
            reply (c, HEADER, sizeof HEADER - 1, FEATURES1, sizeof FEATURES1 - 1);
          else
            reply (c, HEADER, sizeof HEADER - 1, FEATURES2, sizeof FEATURES2 - 1);
          break;
        case STEP_AUTH:
          reply (c, SUCCESS, sizeof SUCCESS - 1, "", 0);
          c->restarted = 1;
          break;
        case STEP_IQ:
          reply (c, BOUND, sizeof BOUND - 1, "", 0);
          break;
        case STEP_CLOSE:
          reply (c, CLOSE, sizeof CLOSE - 1, "", 0);
          shutdown (c->fd, SHUT_WR);
          logins++;
          break;
        default:
          return;
        }
      size_t used = (size_t) (end - c->buf);
      memmove (c->buf, c->buf + used, c->len - used);
      c->len -= used;
    }
}

int
main (int argc, char **argv)
{
  struct sockaddr_in sa = { .sin_family = AF_INET };
  struct epoll_event evs[256];
  struct rusage ru;
  int one = 1;
  int lfd, ep;

  if (argc != 2)
    {
      fprintf (stderr, "usage: floorsrv PORT\n");
      return 2;
    }
  signal (SIGTERM, on_signal);
  signal (SIGINT, on_signal);
  sa.sin_port = htons ((uint16_t) atoi (argv[1]));
  sa.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  lfd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt (lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (lfd < 0 || bind (lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen (lfd, 4096) < 0)
    {
      perror ("floorsrv: listen");
      return 1;
    }
  ep = epoll_create1 (EPOLL_CLOEXEC);
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl (ep, EPOLL_CTL_ADD, lfd, &lev);

  while (!stop)
    {
      int n = epoll_wait (ep, evs, 256, 200);

      for (int i = 0; i < n; i++)
        {
          Conn *c = evs[i].data.ptr;

          if (c == NULL)
            {
              int fd;

              while ((fd = accept4 (lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                {
                  Conn *nc = calloc (1, sizeof *nc);
                  struct epoll_event ev = { .events = EPOLLIN, .data.ptr = nc };

                  nc->fd = fd;
                  epoll_ctl (ep, EPOLL_CTL_ADD, fd, &ev);
                }
              continue;
            }
          ssize_t r = recv (c->fd, c->buf + c->len, BUF_SIZE - 1 - c->len, 0);
          if (r <= 0)
            {
              if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
              drop (c);  /* EOF after our close, or an error */
              continue;
            }
          c->len += (size_t) r;
          serve (c);
          if (c->len >= BUF_SIZE - 1)
            drop (c);  /* not the login exchange */
        }
    }
  getrusage (RUSAGE_SELF, &ru);
  printf ("FLOOR logins=%lu cpu_us=%ld\n", logins,
          (long) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L
            + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return 0;
}
