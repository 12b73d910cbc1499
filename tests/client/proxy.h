/* proxy.h: a TCP proxy for fault-injection tests — it listens on a free
 * 127.0.0.1 port and forwards each connection to a target port, and a test
 * switches it between modes to break the link in the ways a phone's
 * network does:
 *   PROXY_PASS       forward both ways as data comes;
 *   PROXY_BLACKHOLE  keep both sockets of every pair open, forward nothing
 *                    and read nothing further (neither side sees a FIN or
 *                    an RST: a link that silently stopped);
 *   PROXY_CUT        close every current pair now (both sides see the
 *                    close), then go on as PROXY_PASS for new connections;
 *   PROXY_DELAY      forward each chunk read @delay_ms after it was read
 *                    (order kept);
 *   PROXY_REFUSE     close each new connection at once (current pairs go on
 *                    as in PROXY_PASS; proxy_cut() closes them and keeps
 *                    the mode).
 * The proxy runs in its own thread with its own poll() loop, so it keeps
 * forwarding while the test's main loop is busy or blocked.  A connection
 * the target refuses is closed at once, as if the proxy refused it.
 * Mode changes are synchronous: when proxy_set_mode() returns, the proxy
 * thread has applied the mode (a cut has closed its pairs).  The counters
 * may be read from any thread. */
#pragma once

#include <glib.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

typedef enum {
  PROXY_PASS,
  PROXY_BLACKHOLE,
  PROXY_CUT,
  PROXY_DELAY,
  PROXY_REFUSE,
} ProxyMode;

/* Bytes read from one side and not yet written to the other. */
typedef struct {
  gint64 due;                   /* monotonic µs: not written before */
  gsize  len;
  gsize  off;                   /* written so far */
  char   data[];
} ProxyChunk;

/* One forwarded connection: fd[0] the accepted (client) side, fd[1] the
 * target side; q[i] holds what was read from fd[i] for fd[1 - i]. */
typedef struct {
  int      fd[2];
  GQueue   q[2];
  gsize    queued[2];
  gboolean eof[2];
} ProxyPair;

/* The proxy: the listening socket, its thread and the state the test sets
 * and reads (under lock). */
typedef struct {
  int        listen_fd;
  int        wake[2];           /* a pipe: wakes the thread's poll() */
  guint16    port;
  guint16    target_port;
  GThread   *thread;
  GPtrArray *pairs;             /* ProxyPair*: the thread's alone */

  GMutex     lock;
  GCond      cond;
  ProxyMode  mode;
  guint      delay_ms;
  guint64    seq;               /* mode changes asked … */
  guint64    applied;           /* … and applied by the thread */
  gboolean   stop;
  gboolean   cut;               /* close every pair at the next turn */
  guint      accepted;          /* connections accepted (refused ones too) */
  guint      refused;           /* of them, closed at once */
  guint      open_pairs;
  guint64    bytes_up;          /* client → target, written */
  guint64    bytes_down;        /* target → client, written */
} Proxy;

/* Holds more than this for one direction: stop reading that side. */
#define PROXY_MAX_QUEUED (1 << 20)

/* Frees every chunk of @q. */
static inline void
proxy_chunks_free (GQueue *q)
{
  ProxyChunk *c;

  while ((c = g_queue_pop_head (q)) != NULL)
    g_free (c);
}

/* Closes a pair's sockets and frees what it held. */
static inline void
proxy_pair_free (gpointer data)
{
  ProxyPair *pair = data;

  close (pair->fd[0]);
  close (pair->fd[1]);
  proxy_chunks_free (&pair->q[0]);
  proxy_chunks_free (&pair->q[1]);
  g_free (pair);
}

/* O_NONBLOCK on @fd. */
static inline void
proxy_set_nonblock (int fd)
{
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
}

/* Connects to the target; -1 when it refuses. */
static inline int
proxy_connect_target (Proxy *p)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (p->target_port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    {
      close (fd);
      return -1;
    }
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  proxy_set_nonblock (fd);
  return fd;
}

/* Accepts every waiting connection and pairs it (or closes it). */
static inline void
proxy_accept (Proxy *p, ProxyMode mode)
{
  for (;;)
    {
      int fd = accept4 (p->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      int one = 1;

      if (fd < 0)
        return;
      g_mutex_lock (&p->lock);
      p->accepted++;
      g_mutex_unlock (&p->lock);
      int target = mode == PROXY_REFUSE ? -1 : proxy_connect_target (p);
      if (target < 0)
        {
          g_mutex_lock (&p->lock);
          p->refused++;
          g_mutex_unlock (&p->lock);
          close (fd);
          continue;
        }
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ProxyPair *pair = g_new0 (ProxyPair, 1);
      pair->fd[0] = fd;
      pair->fd[1] = target;
      g_queue_init (&pair->q[0]);
      g_queue_init (&pair->q[1]);
      g_ptr_array_add (p->pairs, pair);
    }
}

/* Reads what fd[i] has into q[i], due @delay_ms from now.  FALSE when the
 * pair failed (a socket error). */
static inline gboolean
proxy_pair_read (ProxyPair *pair, int i, guint delay_ms)
{
  char buf[65536];
  ssize_t n = recv (pair->fd[i], buf, sizeof buf, 0);

  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  if (n == 0)
    {
      pair->eof[i] = TRUE;
      return TRUE;
    }
  ProxyChunk *c = g_malloc (sizeof *c + (gsize) n);
  c->due = g_get_monotonic_time () + (gint64) delay_ms * 1000;
  c->len = (gsize) n;
  c->off = 0;
  memcpy (c->data, buf, (gsize) n);
  g_queue_push_tail (&pair->q[i], c);
  pair->queued[i] += (gsize) n;
  return TRUE;
}

/* Writes what is due from q[i] to fd[1 - i].  FALSE when the pair failed. */
static inline gboolean
proxy_pair_write (Proxy *p, ProxyPair *pair, int i, gint64 now)
{
  ProxyChunk *c;

  while ((c = g_queue_peek_head (&pair->q[i])) != NULL && c->due <= now)
    {
      /* Counted under the lock the send is made in: a test that got the
       * bytes reads a count that has them. */
      g_mutex_lock (&p->lock);
      ssize_t n = send (pair->fd[1 - i], c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
      if (n > 0 && i == 0)
        p->bytes_up += (guint64) n;
      else if (n > 0)
        p->bytes_down += (guint64) n;
      g_mutex_unlock (&p->lock);
      if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      c->off += (gsize) n;
      pair->queued[i] -= (gsize) n;
      if (c->off < c->len)
        return TRUE;
      g_free (g_queue_pop_head (&pair->q[i]));
    }
  return TRUE;
}

/* The proxy thread: one poll() loop over the wake pipe, the listening
 * socket and every pair. */
static inline gpointer
proxy_thread (gpointer data)
{
  Proxy *p = data;
  g_autoptr(GArray) fds = g_array_new (FALSE, FALSE, sizeof (struct pollfd));

  for (;;)
    {
      g_mutex_lock (&p->lock);
      if (p->stop)
        {
          g_mutex_unlock (&p->lock);
          break;
        }
      if (p->mode == PROXY_CUT || p->cut)
        {
          g_ptr_array_set_size (p->pairs, 0);
          if (p->mode == PROXY_CUT)
            p->mode = PROXY_PASS;
          p->cut = FALSE;
        }
      ProxyMode mode = p->mode;
      guint delay_ms = mode == PROXY_DELAY ? p->delay_ms : 0;
      p->open_pairs = p->pairs->len;
      if (p->applied != p->seq)
        {
          p->applied = p->seq;
          g_cond_broadcast (&p->cond);
        }
      g_mutex_unlock (&p->lock);

      gboolean forward = mode != PROXY_BLACKHOLE;
      gint64 now = g_get_monotonic_time ();
      gint64 next_due = G_MAXINT64;

      g_array_set_size (fds, 0);
      struct pollfd w = { .fd = p->wake[0], .events = POLLIN };
      struct pollfd l = { .fd = p->listen_fd, .events = POLLIN };
      g_array_append_val (fds, w);
      g_array_append_val (fds, l);
      for (guint k = 0; k < p->pairs->len; k++)
        {
          ProxyPair *pair = g_ptr_array_index (p->pairs, k);
          for (int i = 0; i < 2; i++)
            {
              struct pollfd e = { .fd = pair->fd[i] };
              ProxyChunk *out = g_queue_peek_head (&pair->q[1 - i]);

              if (forward && !pair->eof[i] && pair->queued[i] < PROXY_MAX_QUEUED)
                e.events |= POLLIN;
              if (forward && out != NULL)
                {
                  if (out->due <= now)
                    e.events |= POLLOUT;
                  else
                    next_due = MIN (next_due, out->due);
                }
              /* A socket nobody waits on stays out of poll(): its hang-up
               * would wake the loop without end. */
              if (e.events == 0)
                e.fd = -1;
              g_array_append_val (fds, e);
            }
        }
      int timeout = next_due == G_MAXINT64 ? -1 : (int) ((next_due - now + 999) / 1000);
      if (poll ((struct pollfd *) fds->data, fds->len, timeout) < 0 && errno != EINTR)
        g_error ("proxy: poll: %s", g_strerror (errno));

      struct pollfd *pf = (struct pollfd *) fds->data;
      if (pf[0].revents & POLLIN)
        {
          char drain[64];
          while (read (p->wake[0], drain, sizeof drain) > 0)
            ;
        }
      if (pf[1].revents & POLLIN)
        proxy_accept (p, mode);
      /* Pairs accepted just now have no pollfd yet: they are polled next
       * turn. */
      guint polled = (fds->len - 2) / 2;
      now = g_get_monotonic_time ();
      for (guint k = polled; k-- > 0;)
        {
          ProxyPair *pair = g_ptr_array_index (p->pairs, k);
          gboolean ok = TRUE;

          for (int i = 0; i < 2 && ok; i++)
            if (pf[2 + 2 * k + i].revents & (POLLIN | POLLHUP | POLLERR))
              ok = proxy_pair_read (pair, i, delay_ms);
          for (int i = 0; i < 2 && ok && forward; i++)
            ok = proxy_pair_write (p, pair, i, now);
          /* A side that closed ends the pair once what it sent is through. */
          for (int i = 0; i < 2 && ok; i++)
            if (pair->eof[i] && g_queue_is_empty (&pair->q[i]))
              ok = FALSE;
          if (!ok)
            g_ptr_array_remove_index (p->pairs, k);
        }
      g_mutex_lock (&p->lock);
      p->open_pairs = p->pairs->len;
      g_mutex_unlock (&p->lock);
    }
  return NULL;
}

/* Wakes the proxy thread's poll(). */
static inline void
proxy_wake (Proxy *p)
{
  char b = 1;
  ssize_t rc G_GNUC_UNUSED = write (p->wake[1], &b, 1);
}

/* Starts a proxy in PASS mode on a free 127.0.0.1 port, forwarding to
 * 127.0.0.1:@target_port. */
static inline Proxy *
proxy_new (guint16 target_port)
{
  Proxy *p = g_new0 (Proxy, 1);
  struct sockaddr_in sa = { .sin_family = AF_INET };
  socklen_t sl = sizeof sa;
  int one = 1;

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  p->target_port = target_port;
  p->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  setsockopt (p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  g_assert_cmpint (bind (p->listen_fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (listen (p->listen_fd, 64), ==, 0);
  getsockname (p->listen_fd, (struct sockaddr *) &sa, &sl);
  p->port = ntohs (sa.sin_port);
  g_assert_cmpint (pipe2 (p->wake, O_CLOEXEC | O_NONBLOCK), ==, 0);
  p->pairs = g_ptr_array_new_with_free_func (proxy_pair_free);
  g_mutex_init (&p->lock);
  g_cond_init (&p->cond);
  p->mode = PROXY_PASS;
  p->thread = g_thread_new ("proxy", proxy_thread, p);
  return p;
}

/* Switches the mode (@delay_ms for PROXY_DELAY) and returns once the proxy
 * thread has applied it. */
static inline void
proxy_set_mode (Proxy *p, ProxyMode mode, guint delay_ms)
{
  g_mutex_lock (&p->lock);
  p->mode = mode;
  p->delay_ms = delay_ms;
  guint64 want = ++p->seq;
  proxy_wake (p);
  while (p->applied < want)
    g_cond_wait (&p->cond, &p->lock);
  g_mutex_unlock (&p->lock);
}

/* Closes every current pair and keeps the mode (PROXY_REFUSE then
 * proxy_cut(): the link is down and stays down). */
static inline void
proxy_cut (Proxy *p)
{
  g_mutex_lock (&p->lock);
  p->cut = TRUE;
  guint64 want = ++p->seq;
  proxy_wake (p);
  while (p->applied < want)
    g_cond_wait (&p->cond, &p->lock);
  g_mutex_unlock (&p->lock);
}

/* Connections accepted so far (those closed at once included). */
static inline guint
proxy_accepted (Proxy *p)
{
  g_mutex_lock (&p->lock);
  guint n = p->accepted;
  g_mutex_unlock (&p->lock);
  return n;
}

/* Connections closed at once (REFUSE mode, or the target refused). */
static inline guint
proxy_refused (Proxy *p)
{
  g_mutex_lock (&p->lock);
  guint n = p->refused;
  g_mutex_unlock (&p->lock);
  return n;
}

/* Pairs open when the thread last went round its loop. */
static inline guint
proxy_open_pairs (Proxy *p)
{
  g_mutex_lock (&p->lock);
  guint n = p->open_pairs;
  g_mutex_unlock (&p->lock);
  return n;
}

/* Bytes forwarded client → target (@up) or target → client. */
static inline guint64
proxy_bytes (Proxy *p, gboolean up)
{
  g_mutex_lock (&p->lock);
  guint64 n = up ? p->bytes_up : p->bytes_down;
  g_mutex_unlock (&p->lock);
  return n;
}

/* Stops the thread and closes every socket. */
static inline void
proxy_free (Proxy *p)
{
  g_mutex_lock (&p->lock);
  p->stop = TRUE;
  proxy_wake (p);
  g_mutex_unlock (&p->lock);
  g_thread_join (p->thread);
  g_ptr_array_unref (p->pairs);
  close (p->listen_fd);
  close (p->wake[0]);
  close (p->wake[1]);
  g_mutex_clear (&p->lock);
  g_cond_clear (&p->cond);
  g_free (p);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Proxy, proxy_free)
