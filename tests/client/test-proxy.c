/* test-proxy: the fault-injection proxy of the client tests (proxy.h) with
 * plain sockets — a target the test listens on, a client socket, and each
 * mode checked from both ends. */
#include "proxy.h"

#define WAIT_MS 5000
/* How long a test watches for something that must NOT happen (data or a
 * close through a blackholed link). */
#define QUIET_MS 200

/* The target the proxy forwards to, and one connection through it. */
typedef struct {
  int     target_fd;            /* listening */
  guint16 target_port;
  Proxy  *proxy;
  int     client;               /* the test's end at the proxy */
  int     server;               /* the target's accepted end */
} Fixture;

/* A listening socket on a free 127.0.0.1 port. */
static int
listen_any (guint16 *port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET };
  socklen_t sl = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  g_assert_cmpint (listen (fd, 16), ==, 0);
  getsockname (fd, (struct sockaddr *) &sa, &sl);
  *port = ntohs (sa.sin_port);
  return fd;
}

/* A socket connected to 127.0.0.1:@port. */
static int
connect_to (guint16 port)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  return fd;
}

/* Accepts on the target within @ms; -1 when nothing came. */
static int
target_accept (Fixture *f, int ms)
{
  struct pollfd p = { .fd = f->target_fd, .events = POLLIN };

  if (poll (&p, 1, ms) <= 0)
    return -1;
  return accept4 (f->target_fd, NULL, NULL, SOCK_CLOEXEC);
}

/* Reads into @out until it holds @want bytes, the peer closed or @ms
 * passed.  Returns what was read (-1: nothing, and no close either). */
static gssize
read_for (int fd, GString *out, gsize want, int ms, gboolean *eof)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  gssize got = -1;

  *eof = FALSE;
  while (out->len < want)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      struct pollfd p = { .fd = fd, .events = POLLIN };
      char buf[4096];

      if (left <= 0 || poll (&p, 1, left) <= 0)
        break;
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      if (n <= 0)
        {
          *eof = TRUE;
          return got < 0 ? 0 : got;
        }
      g_string_append_len (out, buf, n);
      got = (got < 0 ? 0 : got) + n;
    }
  return got;
}

/* Sends @s whole (small: one send). */
static void
send_all (int fd, const char *s)
{
  g_assert_cmpint (send (fd, s, strlen (s), MSG_NOSIGNAL), ==, (gssize) strlen (s));
}

/* Expects exactly @text on @fd within WAIT_MS. */
static void
expect_text (int fd, const char *text)
{
  g_autoptr(GString) in = g_string_new (NULL);
  gboolean eof;

  read_for (fd, in, strlen (text), WAIT_MS, &eof);
  g_assert_false (eof);
  g_assert_cmpstr (in->str, ==, text);
}

/* Expects nothing on @fd for QUIET_MS: no data, no close. */
static void
expect_quiet (int fd)
{
  g_autoptr(GString) in = g_string_new (NULL);
  gboolean eof;

  g_assert_cmpint (read_for (fd, in, 1, QUIET_MS, &eof), ==, -1);
  g_assert_false (eof);
}

/* Expects the peer's close within WAIT_MS (and no data before it). */
static void
expect_closed (int fd)
{
  g_autoptr(GString) in = g_string_new (NULL);
  gboolean eof;

  read_for (fd, in, 1, WAIT_MS, &eof);
  g_assert_true (eof);
  g_assert_cmpuint (in->len, ==, 0);
}

/* A target, a proxy to it, and one connection through it. */
static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->target_fd = listen_any (&f->target_port);
  f->proxy = proxy_new (f->target_port);
  f->client = connect_to (f->proxy->port);
  f->server = target_accept (f, WAIT_MS);
  g_assert_cmpint (f->server, >=, 0);
}

/* Closes what the fixture opened. */
static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  proxy_free (f->proxy);
  if (f->client >= 0)
    close (f->client);
  if (f->server >= 0)
    close (f->server);
  close (f->target_fd);
}

/* PASS forwards both ways and counts the connection and the bytes. */
static void
test_pass (Fixture *f, gconstpointer data)
{
  send_all (f->client, "hello");
  expect_text (f->server, "hello");
  send_all (f->server, "world!");
  expect_text (f->client, "world!");
  g_assert_cmpuint (proxy_accepted (f->proxy), ==, 1);
  g_assert_cmpuint (proxy_bytes (f->proxy, TRUE), ==, 5);
  g_assert_cmpuint (proxy_bytes (f->proxy, FALSE), ==, 6);
  g_assert_cmpuint (proxy_open_pairs (f->proxy), ==, 1);

  /* A close on one side closes the other. */
  close (f->client);
  f->client = -1;
  expect_closed (f->server);
}

/* BLACKHOLE forwards nothing either way and passes no close on; PASS
 * afterwards delivers what was held, then the close. */
static void
test_blackhole (Fixture *f, gconstpointer data)
{
  send_all (f->client, "a");
  expect_text (f->server, "a");

  proxy_set_mode (f->proxy, PROXY_BLACKHOLE, 0);
  send_all (f->client, "up");
  send_all (f->server, "down");
  expect_quiet (f->server);
  expect_quiet (f->client);
  close (f->server);
  f->server = -1;
  expect_quiet (f->client);
  g_assert_cmpuint (proxy_open_pairs (f->proxy), ==, 1);

  proxy_set_mode (f->proxy, PROXY_PASS, 0);
  expect_text (f->client, "down");
  expect_closed (f->client);
}

/* CUT closes both ends of the current pair; a new connection goes
 * through. */
static void
test_cut (Fixture *f, gconstpointer data)
{
  proxy_set_mode (f->proxy, PROXY_CUT, 0);
  g_assert_cmpuint (proxy_open_pairs (f->proxy), ==, 0);
  expect_closed (f->client);
  expect_closed (f->server);
  close (f->client);
  close (f->server);

  f->client = connect_to (f->proxy->port);
  f->server = target_accept (f, WAIT_MS);
  g_assert_cmpint (f->server, >=, 0);
  send_all (f->client, "again");
  expect_text (f->server, "again");
  g_assert_cmpuint (proxy_accepted (f->proxy), ==, 2);
}

/* DELAY holds each chunk for the delay and keeps the order. */
static void
test_delay (Fixture *f, gconstpointer data)
{
  g_autoptr(GString) in = g_string_new (NULL);
  gboolean eof;

  proxy_set_mode (f->proxy, PROXY_DELAY, 300);
  gint64 t0 = g_get_monotonic_time ();
  send_all (f->client, "one ");
  send_all (f->client, "two ");
  send_all (f->client, "three");
  read_for (f->server, in, strlen ("one two three"), WAIT_MS, &eof);
  gint64 elapsed_ms = (g_get_monotonic_time () - t0) / 1000;
  g_assert_cmpstr (in->str, ==, "one two three");
  g_assert_cmpint (elapsed_ms, >=, 300);

  /* The other way too. */
  t0 = g_get_monotonic_time ();
  send_all (f->server, "back");
  expect_text (f->client, "back");
  g_assert_cmpint ((g_get_monotonic_time () - t0) / 1000, >=, 300);

  proxy_set_mode (f->proxy, PROXY_PASS, 0);
  t0 = g_get_monotonic_time ();
  send_all (f->client, "fast");
  expect_text (f->server, "fast");
  g_assert_cmpint ((g_get_monotonic_time () - t0) / 1000, <, 300);
}

/* REFUSE closes new connections at once and leaves the current one up. */
static void
test_refuse (Fixture *f, gconstpointer data)
{
  proxy_set_mode (f->proxy, PROXY_REFUSE, 0);
  int c = connect_to (f->proxy->port);
  expect_closed (c);
  close (c);
  g_assert_cmpint (target_accept (f, QUIET_MS), ==, -1);
  g_assert_cmpuint (proxy_accepted (f->proxy), ==, 2);
  g_assert_cmpuint (proxy_refused (f->proxy), ==, 1);

  send_all (f->client, "still");
  expect_text (f->server, "still");

  /* proxy_cut() closes the current pair and keeps refusing. */
  proxy_cut (f->proxy);
  expect_closed (f->client);
  expect_closed (f->server);
  c = connect_to (f->proxy->port);
  expect_closed (c);
  close (c);
  g_assert_cmpuint (proxy_refused (f->proxy), ==, 2);

  proxy_set_mode (f->proxy, PROXY_PASS, 0);
  c = connect_to (f->proxy->port);
  int s = target_accept (f, WAIT_MS);
  g_assert_cmpint (s, >=, 0);
  close (s);
  close (c);
}

/* A target that is down: the connection is closed at once. */
static void
test_target_down (void)
{
  guint16 port;
  int fd = listen_any (&port);

  close (fd);
  g_autoptr(Proxy) proxy = proxy_new (port);
  int c = connect_to (proxy->port);
  expect_closed (c);
  close (c);
  g_assert_cmpuint (proxy_refused (proxy), ==, 1);
}

/* A bulk transfer larger than the socket buffers arrives whole and in
 * order, through the proxy's own queue. */
static void
test_bulk (Fixture *f, gconstpointer data)
{
  gsize total = 4 << 20;
  g_autoptr(GString) in = g_string_new (NULL);
  g_autofree char *out = g_malloc (total);
  gsize sent = 0;

  for (gsize i = 0; i < total; i++)
    out[i] = (char) ('a' + i % 23);
  proxy_set_nonblock (f->client);
  gint64 deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while ((sent < total || in->len < total) && g_get_monotonic_time () < deadline)
    {
      struct pollfd p[2] = { { .fd = f->client, .events = sent < total ? POLLOUT : 0 },
                             { .fd = f->server, .events = POLLIN } };
      char buf[65536];

      poll (p, 2, 100);
      if (p[0].revents & POLLOUT)
        {
          ssize_t n = send (f->client, out + sent, MIN (total - sent, 65536), MSG_NOSIGNAL);
          if (n > 0)
            sent += (gsize) n;
        }
      if (p[1].revents & POLLIN)
        {
          ssize_t n = recv (f->server, buf, sizeof buf, 0);
          g_assert_cmpint (n, >, 0);
          g_string_append_len (in, buf, n);
        }
    }
  g_assert_cmpuint (in->len, ==, total);
  g_assert_true (memcmp (in->str, out, total) == 0);
  g_assert_cmpuint (proxy_bytes (f->proxy, TRUE), ==, total);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, fn) \
  g_test_add (path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("/proxy/pass", test_pass);
  ADD ("/proxy/blackhole", test_blackhole);
  ADD ("/proxy/cut", test_cut);
  ADD ("/proxy/delay", test_delay);
  ADD ("/proxy/refuse", test_refuse);
  ADD ("/proxy/bulk", test_bulk);
#undef ADD
  g_test_add_func ("/proxy/target-down", test_target_down);
  return g_test_run ();
}
