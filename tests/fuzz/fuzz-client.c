/* fuzz-client: whole exchanges of libmyna-client with a server that says
 * anything.  The harness is the server: it listens on 127.0.0.1, a
 * MynaClient (TLS none, a test clock) connects to it, and the input is
 * what the server sends, in chunks, each starting at the beginning of the
 * input or after "\n@"; the first byte of a chunk says what it is:
 *
 *   'w'      the main loop runs until the client is idle
 *   'x'      the server drops the connection (EOF, no </stream>)
 *   'a'      the clock jumps to its next timeout (a reconnection wait)
 *            and the server accepts the client's next connection
 *   't' N    the clock jumps: N '0' 1 s, '1' 25 s (heartbeat timeout,
 *            IQ timeouts), '2' 61 s (heartbeat interval), else 11 min
 *   's'      the app sends a chat message to bob@localhost (the rest is
 *            its body)
 *   'n' B    the app says the network is gone (B odd) or back (B even)
 *   'l'      the app logs out
 *   other    written as the server's bytes on the current connection
 *
 * The first byte of the input chooses the client's settings: bit 0
 * auto-register, bit 1 an account already stored (log in without
 * registering), bit 2 XEP-0184 receipts.  The client's ids are
 * deterministic ("myna-1", "myna-2"… per connection), so seed
 * transcripts get past bind.  What the client writes is read and dropped
 * (FUZZ_CLIENT_TRACE=1 prints both directions).
 *
 * Invariants: no crash or sanitizer report; no GLib critical (a guard
 * reached from network input is a bug); logout and unref free
 * everything. */
#include "../../client/private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static int      listen_fd = -1;
static guint16  listen_port;
static gboolean trace;

/* The listening socket, made once per process. */
static void
server_init (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET };
  socklen_t sl = sizeof sa;

  if (listen_fd >= 0)
    return;
  trace = g_getenv ("FUZZ_CLIENT_TRACE") != NULL;
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
  listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  g_assert (listen_fd >= 0);
  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  g_assert (bind (listen_fd, (struct sockaddr *) &sa, sizeof sa) == 0);
  g_assert (listen (listen_fd, 16) == 0);
  g_assert (getsockname (listen_fd, (struct sockaddr *) &sa, &sl) == 0);
  listen_port = ntohs (sa.sin_port);
}

typedef struct {
  MynaClientClock *clock;
  MynaClient      *client;
  int              fd;       /* the server's end of the current connection */
} Run;

/* Reads and drops what the client wrote. */
static void
drain (Run *r)
{
  char buf[16384];

  while (r->fd >= 0)
    {
      ssize_t n = recv (r->fd, buf, sizeof buf, MSG_DONTWAIT);

      if (n > 0)
        {
          if (trace)
            fprintf (stderr, "C: %.*s\n", (int) n, buf);
          continue;
        }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        {
          close (r->fd);
          r->fd = -1;
        }
      return;
    }
}

/* Runs the main loop until nothing happens for a few short waits (worker
 * threads — PBKDF2 — post their results back to it), bounded. */
static void
run_idle (Run *r)
{
  guint quiet = 0;

  for (guint round = 0; round < 2000 && quiet < 3; round++)
    {
      drain (r);
      if (g_main_context_iteration (NULL, FALSE))
        {
          quiet = 0;
          continue;
        }
      struct pollfd p = { .fd = r->fd, .events = POLLIN };
      if (poll (&p, r->fd >= 0 ? 1 : 0, 2) <= 0)
        quiet++;
    }
}

/* Accepts the client's next connection, running the loop meanwhile. */
static void
server_accept (Run *r)
{
  if (r->fd >= 0)
    {
      close (r->fd);
      r->fd = -1;
    }
  for (guint round = 0; round < 500; round++)
    {
      int fd = accept4 (listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd >= 0)
        {
          r->fd = fd;
          run_idle (r);
          return;
        }
      if (!g_main_context_iteration (NULL, FALSE))
        {
          struct pollfd p = { .fd = listen_fd, .events = POLLIN };
          poll (&p, 1, 2);
        }
    }
}

/* Writes the server's bytes; a client that does not read (it may have
 * closed) only loses them. */
static void
server_write (Run *r, const char *data, gsize len)
{
  if (trace)
    fprintf (stderr, "S: %.*s\n", (int) len, data);
  while (r->fd >= 0 && len > 0)
    {
      ssize_t n = send (r->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);

      if (n > 0)
        {
          data += n;
          len -= n;
          continue;
        }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        {
          run_idle (r);
          struct pollfd p = { .fd = r->fd, .events = POLLOUT };
          if (poll (&p, 1, 20) <= 0)
            return;
          continue;
        }
      close (r->fd);
      r->fd = -1;
    }
}

static void
advance (Run *r, guint ms)
{
  myna_client_test_clock_advance (MYNA_CLIENT_TEST_CLOCK (r->clock), ms);
  run_idle (r);
}

static void
chunk (Run *r, const char *c, gsize len)
{
  switch (c[0])
    {
    case 'w':
      run_idle (r);
      return;
    case 'x':
      if (r->fd >= 0)
        {
          close (r->fd);
          r->fd = -1;
        }
      run_idle (r);
      return;
    case 'a':
      {
        /* to the next timeout (the reconnection wait) and no further:
         * the connect step's own timeout must not fall due with it */
        gint64 next = myna_client_test_clock_next (MYNA_CLIENT_TEST_CLOCK (r->clock));

        if (next >= 0)
          advance (r, (guint) MIN (next, 11 * 60 * 1000));
        server_accept (r);
        return;
      }
    case 't':
      {
        char n = len > 1 ? c[1] : '0';
        advance (r, n == '0' ? 1000 : n == '1' ? 25000 : n == '2' ? 61000 : 11 * 60 * 1000);
        return;
      }
    case 's':
      {
        g_autofree char *body = g_strndup (c + 1, len - 1);
        g_autoptr(GError) error = NULL;
        g_free (myna_client_send_message (r->client, "bob@localhost", body, &error));
        run_idle (r);
        return;
      }
    case 'n':
      myna_client_set_network_available (r->client, len > 1 ? (c[1] & 1) == 0 : TRUE);
      run_idle (r);
      return;
    case 'l':
      myna_client_logout (r->client);
      run_idle (r);
      return;
    default:
      server_write (r, c, len);
      return;
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr(MynaClientStore) store = NULL;
  Run r = { .fd = -1 };
  const char *p, *end;
  guint8 settings;

  if (size < 1 || size > 64 * 1024)
    return 0;
  server_init ();
  settings = data[0];
  store = myna_client_store_new (":memory:", NULL);
  g_assert (store != NULL);
  if (settings & 2)
    g_assert (myna_client_store_set_account (store, "fuzz@localhost", "pw", NULL));
  r.clock = myna_client_test_clock_new ();
  r.client = myna_client_new_with_clock (store, r.clock);
  g_object_set (r.client, "jid", "fuzz@localhost", "password", "pw", "server", "127.0.0.1",
                "port", (guint) listen_port, "tls", MYNA_CLIENT_TLS_NONE,
                "auto-register", (gboolean) (settings & 1), "receipts", (gboolean) ((settings & 4) != 0),
                NULL);
  myna_client_start (r.client);
  server_accept (&r);

  p = (const char *) data + 1;
  end = (const char *) data + size;
  while (p < end)
    {
      const char *next = memmem (p, end - p, "\n@", 2);
      const char *stop = next != NULL ? next : end;

      if (stop > p)
        chunk (&r, p, stop - p);
      p = next != NULL ? next + 2 : end;
    }
  run_idle (&r);

  myna_client_logout (r.client);
  advance (&r, 5000);
  if (r.fd >= 0)
    close (r.fd);
  r.fd = -1;
  run_idle (&r);
  g_object_unref (r.client);
  /* Freed connections may still have completions queued. */
  run_idle (&r);
  g_object_unref (r.clock);
  return 0;
}
