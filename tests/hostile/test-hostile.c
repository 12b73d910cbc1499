/* test-hostile: hostile clients against a real mynad.  Every attack runs
 * on its own server with tightened limits and must (a) trip its defence —
 * a stream error, a disconnect, throttling or a counter in `mynactl
 * stats` — while (b) a well-behaved pair of sessions on the same server
 * keeps getting its messages within GOOD_BOUND_MS.
 *
 * The good pair connects from GOOD_SRC, attackers from ATTACK_SRC (both
 * loopback addresses), so per-address defences aimed at the attacker do
 * not touch the good pair.  Attacks that last run in a thread while the
 * main thread probes the good pair; every wait is bounded. */
#include "../integration/mynad-harness.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/un.h>

#define MODULES "auth;bind;roster;presence;offline;disco;ping"
#define ATTACK_SRC "127.0.0.1"
#define OTHER_SRC "127.0.0.2"
#define GOOD_SRC "127.0.0.3"
/* A message from good A to good B must arrive within this. */
#define GOOD_BOUND_MS 2000
/* Pause between two probes of the good pair while an attack runs. */
#define PROBE_INTERVAL_MS 100

typedef struct {
  const char *globals;     /* extra [global] keys */
  const char *auth;        /* extra [module:auth] keys */
  gboolean    measure_rss; /* keep a sanitized mynad's RSS meaningful */
} Limits;

typedef struct {
  Mynad    d;
  Client  *ga, *gb;        /* the good pair: gooda/probe → goodb/probe */
  guint    seq;
  guint    probes, probes_during;
  gint64   worst_us;
  gint64   rss_max_kb;     /* highest VmRSS seen while an attack ran */
} Fixture;

/* ---- helpers -------------------------------------------------------------- */

/* Reads every complete log line mynad has written so far, so that a busy
 * server never blocks on a full stderr pipe. */
static void
log_drain (Mynad *d)
{
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (d->err));
  int fd = g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (base));

  for (;;)
    {
      if (g_buffered_input_stream_get_available (G_BUFFERED_INPUT_STREAM (d->err)) == 0)
        {
          struct pollfd p = { .fd = fd, .events = POLLIN };
          if (poll (&p, 1, 0) <= 0 || !(p.revents & POLLIN))
            return;
        }
      g_autofree char *line = g_data_input_stream_read_line (d->err, NULL, NULL, NULL);
      if (line == NULL)
        return;
      g_string_append_printf (d->log, "%s\n", line);
      if (g_getenv ("MYNA_TEST_VERBOSE") != NULL)
        g_printerr ("mynad| %s\n", line);
    }
}

static int
log_fd (Mynad *d)
{
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (d->err));
  return g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (base));
}

/* The last lines of mynad's log, for failure messages. */
static const char *
log_tail (Mynad *d, guint lines)
{
  const char *p;

  log_drain (d);
  p = d->log->str + d->log->len;
  while (p > d->log->str && lines > 0)
    {
      p--;
      if (*p == '\n' && p + 1 < d->log->str + d->log->len)
        lines--;
    }
  return p;
}

static gint64
ms_since (gint64 t0)
{
  return (g_get_monotonic_time () - t0) / 1000;
}

/* A TCP connection to mynad from the loopback address @src (NULL: the
 * kernel's choice), with SO_RCVBUF set to @rcvbuf first when positive.
 * NULL with errno when it cannot connect. */
static Client *
connect_from (Mynad *d, const char *src, int rcvbuf)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (d->port) };
  struct sockaddr_in me = { .sin_family = AF_INET };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return NULL;
  if (rcvbuf > 0)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  inet_pton (AF_INET, "127.0.0.1", &to.sin_addr);
  if (src != NULL)
    inet_pton (AF_INET, src, &me.sin_addr);
  if ((src != NULL && bind (fd, (struct sockaddr *) &me, sizeof me) < 0)
      || connect (fd, (struct sockaddr *) &to, sizeof to) < 0)
    {
      int e = errno;
      close (fd);
      errno = e;
      return NULL;
    }
  Client *c = g_new0 (Client, 1);
  c->fd = fd;
  c->in = g_string_new (NULL);
  return c;
}

static void
set_nonblocking (int fd, gboolean on)
{
  int fl = fcntl (fd, F_GETFL);
  fcntl (fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Waits up to @ms for input on @c and reads it; keeps mynad's log drained
 * meanwhile unless @d is NULL (attack threads leave the log alone).  FALSE
 * on timeout. */
static gboolean
wait_input (Mynad *d, Client *c, gint64 deadline)
{
  int lfd = d != NULL ? log_fd (d) : -1;

  for (;;)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN },
                             { .fd = lfd, .events = POLLIN } };

      if (left <= 0 || poll (p, 2, left) <= 0)
        return FALSE;
      if (p[1].revents & POLLIN)
        log_drain (d);
      else if (p[1].revents)
        lfd = -1;                 /* mynad is gone: stop watching its log */
      if (p[0].revents)
        {
          client_read (c, 0);
          return TRUE;
        }
    }
}

/* Waits up to @ms until @c's input holds @needle. */
static gboolean
expect_within (Mynad *d, Client *c, const char *needle, int ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;

  while (strstr (c->in->str, needle) == NULL && !c->eof)
    if (!wait_input (d, c, deadline))
      break;
  return strstr (c->in->str, needle) != NULL;
}

/* Waits up to @ms until the server closes @c. */
static gboolean
closed_within (Mynad *d, Client *c, int ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;

  while (!c->eof)
    if (!wait_input (d, c, deadline))
      return FALSE;
  return TRUE;
}

static char *
plain_auth (const char *user, const char *password)
{
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 2 + strlen (user) + strlen (password));
  return g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                          "mechanism='PLAIN'>%s</auth>", b64);
}

/* Opens the stream on @c and waits for the features. */
static gboolean
open_stream (Mynad *d, Client *c)
{
  client_send (c, STREAM_OPEN ("localhost"));
  return expect_within (d, c, "<stream:features", WAIT_MS)
         && (expect_within (d, c, "</stream:features>", WAIT_MS)
             || strstr (c->in->str, "<stream:features/>") != NULL);
}

/* Logs @user in over @c (SASL PLAIN) and binds @resource; the input is
 * cleared afterwards. */
static gboolean
login_on (Mynad *d, Client *c, const char *user, const char *password, const char *resource)
{
  g_autofree char *auth = plain_auth (user, password);
  g_autofree char *bind = g_strdup_printf ("<iq type='set' id='bind1'><bind "
                                           "xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                                           "<resource>%s</resource></bind></iq>", resource);

  if (!open_stream (d, c))
    return FALSE;
  client_send (c, auth);
  if (!expect_within (d, c, "<success", WAIT_MS))
    return FALSE;
  g_string_truncate (c->in, 0);
  if (!open_stream (d, c))
    return FALSE;
  client_send (c, bind);
  if (!expect_within (d, c, "</jid>", WAIT_MS))
    return FALSE;
  g_string_truncate (c->in, 0);
  return TRUE;
}

static Client *
login_from (Mynad *d, const char *src, int rcvbuf, const char *user,
            const char *password, const char *resource)
{
  Client *c = connect_from (d, src, rcvbuf);

  g_assert_nonnull (c);
  if (!login_on (d, c, user, password, resource))
    g_error ("%s could not log in from %s; got: %s\nmynad log tail:\n%s", user, src,
             c->in->str, log_tail (d, 20));
  return c;
}

/* One counter of `mynactl stats`. */
static guint64
stat_get (Mynad *d, const char *name)
{
  g_autofree char *out = NULL;
  int rc = mynactl (d, &out, "stats", NULL);
  g_auto(GStrv) lines = NULL;
  gsize nlen = strlen (name);

  log_drain (d);
  if (rc != 0)
    g_error ("mynactl stats failed (%d): %s\nmynad log tail:\n%s", rc, out, log_tail (d, 20));
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], name, nlen) == 0 && lines[i][nlen] == ' ')
      return g_ascii_strtoull (lines[i] + nlen + 1, NULL, 10);
  g_error ("no counter %s in mynactl stats:\n%s", name, out);
  return 0;
}

/* A defence's counter must have reached @min.  A shortfall is a finding
 * about the server, not a broken test: it is reported and the test goes on
 * to its teardown. */
static void
expect_counter (Mynad *d, const char *name, guint64 min)
{
  guint64 v = stat_get (d, name);

  if (v < min)
    g_test_fail_printf ("mynactl stats: %s is %" G_GUINT64_FORMAT ", expected at least %"
                        G_GUINT64_FORMAT, name, v, min);
}

/* A memory figure of mynad's /proc/PID/status ("VmRSS:", "VmHWM:") in
 * KiB, -1 when it cannot be read. */
static gint64
mynad_mem_kb (Mynad *d, const char *field)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/status", g_subprocess_get_identifier (d->proc));
  g_autofree char *text = NULL;
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (p = strstr (text, field)) == NULL)
    return -1;
  return g_ascii_strtoll (p + strlen (field), NULL, 10);
}

static gint64
mynad_rss_kb (Mynad *d)
{
  return mynad_mem_kb (d, "VmRSS:");
}

/* Sends A → B (full JIDs) and asserts it arrives within GOOD_BOUND_MS. */
static void
good_probe (Fixture *f, gboolean during)
{
  guint n = ++f->seq;
  g_autofree char *body = g_strdup_printf ("probe-%u-end", n);
  g_autofree char *msg = g_strdup_printf ("<message to='goodb@localhost/probe' type='chat' "
                                          "id='g%u'><body>%s</body></message>", n, body);
  gint64 t0 = g_get_monotonic_time ();

  client_send (f->ga, msg);
  if (!expect_within (&f->d, f->gb, body, GOOD_BOUND_MS))
    g_error ("good pair: probe %u not delivered within %d ms (B open: %d; B got: %.300s)\n"
             "mynad log tail:\n%s", n, GOOD_BOUND_MS, !f->gb->eof, f->gb->in->str,
             log_tail (&f->d, 30));
  gint64 dt = g_get_monotonic_time () - t0;
  const char *end = strstr (f->gb->in->str, body) + strlen (body);
  g_string_erase (f->gb->in, 0, end - f->gb->in->str);
  f->worst_us = MAX (f->worst_us, dt);
  f->probes++;
  if (during)
    f->probes_during++;
}

/* ---- running an attack beside the good pair ------------------------------- */

typedef struct _Attack Attack;
typedef void (*AttackFunc) (Attack *a);

struct _Attack {
  Fixture   *f;
  AttackFunc func;
  gpointer   data;
  int        done_pipe[2];
  gint64     started;
  gint64     finished;
};

static gpointer
attack_thread (gpointer data)
{
  Attack *a = data;

  a->func (a);
  a->finished = g_get_monotonic_time ();
  if (write (a->done_pipe[1], "x", 1) != 1)
    g_error ("cannot signal the end of the attack");
  return NULL;
}

/* Runs @func in a thread; meanwhile the good pair is probed every
 * PROBE_INTERVAL_MS and mynad's RSS is sampled.  @func must bound its own
 * duration; @limit_ms is the ceiling the test holds it to. */
static void
run_attack (Fixture *f, AttackFunc func, gpointer data, int limit_ms)
{
  Attack a = { .f = f, .func = func, .data = data };
  gboolean done = FALSE;
  gint64 deadline;

  g_assert_cmpint (pipe2 (a.done_pipe, O_CLOEXEC), ==, 0);
  a.started = g_get_monotonic_time ();
  deadline = a.started + (gint64) limit_ms * 1000;
  GThread *t = g_thread_new ("attack", attack_thread, &a);
  while (!done)
    {
      gint64 rss = mynad_rss_kb (&f->d);
      f->rss_max_kb = MAX (f->rss_max_kb, rss);
      good_probe (f, TRUE);
      /* Waits for the attack to end, for the next probe, or log lines. */
      gint64 next = g_get_monotonic_time () + PROBE_INTERVAL_MS * 1000;
      int lfd = log_fd (&f->d);
      for (;;)
        {
          int left = (int) ((next - g_get_monotonic_time ()) / 1000);
          struct pollfd p[2] = { { .fd = a.done_pipe[0], .events = POLLIN },
                                 { .fd = lfd, .events = POLLIN } };
          if (left <= 0 || poll (p, 2, left) <= 0)
            break;
          if (p[1].revents & POLLIN)
            log_drain (&f->d);
          else if (p[1].revents)
            lfd = -1;
          if (p[0].revents)
            {
              done = TRUE;
              break;
            }
        }
      if (!done && g_get_monotonic_time () > deadline)
        g_error ("the attack did not end within %d ms", limit_ms);
    }
  g_thread_join (t);
  close (a.done_pipe[0]);
  close (a.done_pipe[1]);
  g_test_message ("attack ran %" G_GINT64_FORMAT " ms; %u good probes during it, worst "
                  "latency %" G_GINT64_FORMAT " ms", (a.finished - a.started) / 1000,
                  f->probes_during, f->worst_us / 1000);
  /* The good pair still works after it, too. */
  good_probe (f, FALSE);
  g_assert_cmpuint (f->probes_during, >=, 1);
  g_assert_cmpint (f->worst_us / 1000, <, GOOD_BOUND_MS);
}

/* ---- fixture -------------------------------------------------------------- */

static void
setup (Fixture *f, gconstpointer data)
{
  const Limits *l = data;
  g_autofree char *extra = g_strconcat (l->globals != NULL ? l->globals : "", "\n",
                                        MYNAD_PLAIN_AUTH, l->auth != NULL ? l->auth : "", NULL);

  f->d.modules = MODULES;
  if (l->measure_rss)
    {
      /* Under AddressSanitizer freed memory waits in a quarantine of up to
       * 256 MB, which would hide any growth worth seeing: mynad gets a
       * small one (no effect on a mynad built without sanitizers). */
      g_autofree char *saved = g_strdup (g_getenv ("ASAN_OPTIONS"));
      g_autofree char *opts = g_strconcat (saved != NULL ? saved : "", saved != NULL ? ":" : "",
                                           "quarantine_size_mb=8", NULL);
      g_setenv ("ASAN_OPTIONS", opts, TRUE);
      mynad_start (&f->d, extra);
      if (saved != NULL)
        g_setenv ("ASAN_OPTIONS", saved, TRUE);
      else
        g_unsetenv ("ASAN_OPTIONS");
    }
  else
    mynad_start (&f->d, extra);
  mynad_add_user (&f->d, "gooda", "secret-a");
  mynad_add_user (&f->d, "goodb", "secret-b");
  mynad_add_user (&f->d, "mallory", "evil");
  f->ga = login_from (&f->d, GOOD_SRC, 0, "gooda", "secret-a", "probe");
  f->gb = login_from (&f->d, GOOD_SRC, 0, "goodb", "secret-b", "probe");
  good_probe (f, FALSE);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  /* The good pair outlived the attack. */
  g_assert_true (client_is_open (f->ga));
  g_assert_true (client_is_open (f->gb));
  g_clear_pointer (&f->ga, client_free);
  g_clear_pointer (&f->gb, client_free);
  log_drain (&f->d);
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* Sends @len bytes of @data over @c without blocking past @ms, reading what
 * comes back meanwhile; stops when the server closes or resets.  Returns
 * the bytes the kernel accepted. */
static gsize
send_bounded (Mynad *d, Client *c, const char *data, gsize len, int ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  gsize off = 0;

  set_nonblocking (c->fd, TRUE);
  while (off < len && !c->eof)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN | POLLOUT },
                             { .fd = log_fd (d), .events = POLLIN } };

      if (left <= 0 || poll (p, 2, left) <= 0)
        break;
      if (p[1].revents & POLLIN)
        log_drain (d);
      if (p[0].revents & POLLIN)
        {
          char buf[8192];
          ssize_t n = recv (c->fd, buf, sizeof buf, 0);
          if (n > 0)
            g_string_append_len (c->in, buf, n);
          else if (n == 0 || errno != EAGAIN)
            c->eof = TRUE;
          continue;
        }
      if (p[0].revents & (POLLERR | POLLHUP))
        break;
      if (p[0].revents & POLLOUT)
        {
          ssize_t n = send (c->fd, data + off, len - off, MSG_NOSIGNAL);
          if (n < 0 && errno != EAGAIN && errno != EINTR)
            break;
          if (n > 0)
            off += (gsize) n;
        }
    }
  set_nonblocking (c->fd, FALSE);
  return off;
}

/* Asserts @c got the stream error @condition (with @text in it, unless
 * NULL) and was closed. */
static void
assert_stream_error (Mynad *d, Client *c, const char *condition, const char *text)
{
  g_autofree char *needle = g_strdup_printf ("<%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
                                             condition);

  if (!expect_within (d, c, needle, WAIT_MS))
    g_error ("expected the stream error <%s/>; got: %.500s\nmynad log tail:\n%s",
             condition, c->in->str, log_tail (d, 20));
  if (text != NULL)
    g_assert_nonnull (strstr (c->in->str, text));
  g_assert_true (closed_within (d, c, WAIT_MS));
}

/* ---- 1. slowloris --------------------------------------------------------- */

#define SLOW_CLIENTS 3
#define SLOW_BYTE_MS 200

typedef struct {
  Client *c[SLOW_CLIENTS];
  gsize   sent[SLOW_CLIENTS];
  gint64  closed_ms[SLOW_CLIENTS];  /* -1: still open */
} Slow;

/* Sends the stream header one byte per SLOW_BYTE_MS on every connection
 * until the server closes them all (or 10 s). */
static void
slowloris_attack (Attack *a)
{
  Slow *s = a->data;
  const char *header = STREAM_OPEN ("localhost");
  gsize hlen = strlen (header);
  gint64 start = g_get_monotonic_time (), tick = start;
  guint open = SLOW_CLIENTS;

  while (open > 0 && ms_since (start) < 10000)
    {
      struct pollfd p[SLOW_CLIENTS];
      guint np = 0, idx[SLOW_CLIENTS];

      if (g_get_monotonic_time () >= tick)
        {
          for (guint i = 0; i < SLOW_CLIENTS; i++)
            if (s->closed_ms[i] < 0 && s->sent[i] < hlen
                && send (s->c[i]->fd, header + s->sent[i], 1, MSG_NOSIGNAL) == 1)
              s->sent[i]++;
          tick += SLOW_BYTE_MS * 1000;
        }
      for (guint i = 0; i < SLOW_CLIENTS; i++)
        if (s->closed_ms[i] < 0)
          {
            p[np] = (struct pollfd) { .fd = s->c[i]->fd, .events = POLLIN };
            idx[np++] = i;
          }
      int left = (int) MAX (0, (tick - g_get_monotonic_time ()) / 1000);
      if (poll (p, np, left) <= 0)
        continue;
      for (guint k = 0; k < np; k++)
        if (p[k].revents)
          {
            Client *c = s->c[idx[k]];
            client_read (c, 0);
            if (c->eof)
              {
                s->closed_ms[idx[k]] = ms_since (start);
                open--;
              }
          }
    }
}

static void
test_slowloris (Fixture *f, gconstpointer unused)
{
  Slow s;

  for (guint i = 0; i < SLOW_CLIENTS; i++)
    {
      s.c[i] = connect_from (&f->d, ATTACK_SRC, 0);
      g_assert_nonnull (s.c[i]);
      s.sent[i] = 0;
      s.closed_ms[i] = -1;
    }
  run_attack (f, slowloris_attack, &s, 15000);
  for (guint i = 0; i < SLOW_CLIENTS; i++)
    {
      g_test_message ("slow client %u: %" G_GSIZE_FORMAT " header bytes sent, closed after %"
                      G_GINT64_FORMAT " ms", i, s.sent[i], s.closed_ms[i]);
      if (s.closed_ms[i] < 0)
        g_error ("slow client %u was never closed\nmynad log tail:\n%s", i, log_tail (&f->d, 20));
      /* auth_timeout = 2s: closed near then, never having finished the header. */
      g_assert_cmpint (s.closed_ms[i], >=, 1500);
      g_assert_cmpint (s.closed_ms[i], <, 6000);
      g_assert_cmpuint (s.sent[i], <, strlen (STREAM_OPEN ("localhost")));
      g_assert_nonnull (strstr (s.c[i]->in->str, "<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
      client_free (s.c[i]);
    }
  expect_counter (&f->d, "limit_auth_timeouts", SLOW_CLIENTS);
  expect_counter (&f->d, "stream_errors", SLOW_CLIENTS);
}

/* ---- 2. stanza flood ------------------------------------------------------ */

#define FLOOD_RATE (64 * 1024)
#define FLOOD_BURST (64 * 1024)
#define FLOOD_TOTAL ((gsize) 20 << 20)
#define FLOOD_MS 3000
#define FLOOD_TICK_MS 250
#define FLOOD_TICKS (FLOOD_MS / FLOOD_TICK_MS)
/* The flooder's send buffer, fixed small so that what the kernel accepts
 * follows what the server reads once the buffers are full. */
#define FLOOD_SNDBUF 16384
/* The rate is measured over the last second of the flood, once the socket
 * buffers on both sides are full. */
#define FLOOD_WINDOW_TICKS (1000 / FLOOD_TICK_MS)

typedef struct {
  Client  *c;
  gsize    total;
  gsize    at[FLOOD_TICKS + 1];   /* bytes accepted by each tick */
  gboolean dropped;
} Flood;

/* An authenticated client sends headline messages to the server as fast as
 * the socket takes them, for FLOOD_MS or FLOOD_TOTAL bytes. */
static void
flood_attack (Attack *a)
{
  Flood *fl = a->data;
  GString *msg = g_string_new ("<message to='localhost' type='headline'><body>");
  gint64 start = g_get_monotonic_time ();
  gsize off = 0;
  guint tick = 1;

  for (int i = 0; i < 1000; i++)
    g_string_append (msg, "flood! ");
  g_string_append (msg, "</body></message>");
  set_nonblocking (fl->c->fd, TRUE);
  while (fl->total < FLOOD_TOTAL && tick <= FLOOD_TICKS)
    {
      gint64 now = ms_since (start);
      struct pollfd p = { .fd = fl->c->fd, .events = POLLIN | POLLOUT };

      if (now >= (gint64) tick * FLOOD_TICK_MS)
        {
          fl->at[tick++] = fl->total;
          continue;
        }
      if (poll (&p, 1, (int) MAX (1, (gint64) tick * FLOOD_TICK_MS - now)) <= 0)
        continue;
      if (p.revents & POLLIN)
        {
          char buf[4096];
          ssize_t n = recv (fl->c->fd, buf, sizeof buf, 0);
          if (n > 0)
            g_string_append_len (fl->c->in, buf, n);
          else if (n == 0 || errno != EAGAIN)
            {
              fl->dropped = TRUE;
              break;
            }
        }
      if (p.revents & POLLOUT)
        {
          ssize_t n = send (fl->c->fd, msg->str + off, msg->len - off, MSG_NOSIGNAL);
          if (n < 0 && errno != EAGAIN && errno != EINTR)
            {
              fl->dropped = TRUE;
              break;
            }
          if (n > 0)
            {
              fl->total += (gsize) n;
              off = (off + (gsize) n) % msg->len;
            }
        }
    }
  for (; tick <= FLOOD_TICKS; tick++)
    fl->at[tick] = fl->total;
  set_nonblocking (fl->c->fd, FALSE);
  g_string_free (msg, TRUE);
}

static void
test_stanza_flood (Fixture *f, gconstpointer unused)
{
  Flood fl = { .c = login_from (&f->d, ATTACK_SRC, 0, "mallory", "evil", "flood") };
  int sndbuf = FLOOD_SNDBUF;
  guint64 paused0 = stat_get (&f->d, "limit_rate_paused");
  guint64 in0 = stat_get (&f->d, "stanzas_in");
  guint probes0 = f->probes;

  setsockopt (fl.c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  run_attack (f, flood_attack, &fl, 15000);
  gsize window = fl.at[FLOOD_TICKS] - fl.at[FLOOD_TICKS - FLOOD_WINDOW_TICKS];
  guint64 paused = stat_get (&f->d, "limit_rate_paused");
  guint64 in = stat_get (&f->d, "stanzas_in");
  GString *series = g_string_new (NULL);

  for (guint i = 1; i <= FLOOD_TICKS; i++)
    g_string_append_printf (series, " %" G_GSIZE_FORMAT, fl.at[i]);
  g_test_message ("flooder: bytes accepted every %d ms:%s; %" G_GSIZE_FORMAT " bytes in the "
                  "last second (rate %d, burst %d); limit_rate_paused %" G_GUINT64_FORMAT
                  " -> %" G_GUINT64_FORMAT "; stanzas_in %" G_GUINT64_FORMAT " -> %"
                  G_GUINT64_FORMAT, FLOOD_TICK_MS, series->str, window, FLOOD_RATE,
                  FLOOD_BURST, paused0, paused, in0, in);
  g_string_free (series, TRUE);
  /* Slowed down, not dropped. */
  g_assert_false (fl.dropped);
  g_assert_true (client_is_open (fl.c));
  g_assert_cmpuint (fl.total, <, FLOOD_TOTAL);
  g_assert_cmpuint (window, <, 4 * (FLOOD_RATE + FLOOD_BURST));
  g_assert_cmpuint (paused, >, paused0);
  g_assert_nonnull (strstr (f->d.log->str, "over the byte-rate limit"));
  /* Server side: the flood messages it read (the probes aside) stay within
   * what the rate allows over the flood, twice over. */
  guint64 flood_in = in - in0 - (f->probes - probes0);
  gsize msg_len = strlen ("<message to='localhost' type='headline'><body></body></message>") + 7000;
  g_test_message ("the server read %" G_GUINT64_FORMAT " flood messages (%" G_GUINT64_FORMAT
                  " bytes)", flood_in, flood_in * msg_len);
  g_assert_cmpuint (flood_in, >=, 1);
  g_assert_cmpuint (flood_in * msg_len, <=, 2 * (FLOOD_BURST + FLOOD_RATE * (FLOOD_MS / 1000 + 1)));
  client_free (fl.c);
}

/* ---- 3. a client that never reads ----------------------------------------- */

#define NOREAD_MAX_OUTPUT (64 * 1024)
#define NOREAD_RCVBUF 4096
#define NOREAD_TOTAL ((gsize) 64 << 20)
#define NOREAD_MS 15000
/* Growth of mynad's RSS allowed over the attack. */
#define NOREAD_RSS_SLACK_KB (48 * 1024)

typedef struct {
  Client  *c;
  gsize    total;
  gint64   cut_ms;     /* when the send side failed; -1: never */
  int      cut_errno;
} NoRead;

/* Sends pings to the server, whose replies it never reads, until the
 * server cuts it off (or NOREAD_MS / NOREAD_TOTAL). */
static void
noread_attack (Attack *a)
{
  NoRead *nr = a->data;
  GString *pings = g_string_new (NULL);
  gint64 start = g_get_monotonic_time ();
  gsize off = 0;

  for (int i = 0; i < 64; i++)
    g_string_append_printf (pings, "<iq type='get' id='ping-%04d-padding-to-make-the-reply-"
                            "larger' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", i);
  set_nonblocking (nr->c->fd, TRUE);
  nr->cut_ms = -1;
  while (nr->total < NOREAD_TOTAL && ms_since (start) < NOREAD_MS)
    {
      struct pollfd p = { .fd = nr->c->fd, .events = POLLOUT };
      int left = (int) MAX (1, NOREAD_MS - ms_since (start));

      if (poll (&p, 1, left) <= 0)
        continue;
      ssize_t n = send (nr->c->fd, pings->str + off, pings->len - off, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        {
          nr->cut_ms = ms_since (start);
          nr->cut_errno = errno;
          break;
        }
      if (n > 0)
        {
          nr->total += (gsize) n;
          off = (off + (gsize) n) % pings->len;
        }
    }
  set_nonblocking (nr->c->fd, FALSE);
  g_string_free (pings, TRUE);
}

static void
test_never_reading (Fixture *f, gconstpointer unused)
{
  NoRead nr = { .c = login_from (&f->d, ATTACK_SRC, NOREAD_RCVBUF, "mallory", "evil", "deaf") };
  guint64 errors0 = stat_get (&f->d, "stream_errors");
  gint64 rss0 = mynad_rss_kb (&f->d);
  gint64 hwm0 = mynad_mem_kb (&f->d, "VmHWM:");

  g_assert_cmpint (rss0, >, 0);
  f->rss_max_kb = rss0;
  run_attack (f, noread_attack, &nr, NOREAD_MS + 5000);
  gint64 rss1 = mynad_rss_kb (&f->d);
  /* The high-water mark catches a peak between two samples. */
  gint64 hwm1 = mynad_mem_kb (&f->d, "VmHWM:");
  g_test_message ("never-reading client: %" G_GSIZE_FORMAT " bytes of pings sent; cut off after "
                  "%" G_GINT64_FORMAT " ms (%s); mynad VmRSS %" G_GINT64_FORMAT " kB before, "
                  "%" G_GINT64_FORMAT " kB highest sample, %" G_GINT64_FORMAT " kB after, "
                  "VmHWM %" G_GINT64_FORMAT " kB (before: %" G_GINT64_FORMAT " kB)",
                  nr.total, nr.cut_ms, nr.cut_ms >= 0 ? g_strerror (nr.cut_errno) : "-",
                  rss0, f->rss_max_kb, rss1, hwm1, hwm0);
  if (nr.cut_ms < 0)
    g_error ("the client that never reads was not disconnected after %" G_GSIZE_FORMAT
             " bytes in %d ms\nmynad log tail:\n%s", nr.total, NOREAD_MS, log_tail (&f->d, 20));
  /* What is left to read ends in end of stream or a reset. */
  g_assert_true (closed_within (&f->d, nr.c, WAIT_MS));
  g_assert_nonnull (strstr (f->d.log->str, "client is not reading"));
  g_assert_cmpuint (stat_get (&f->d, "stream_errors"), >, errors0);
  g_assert_cmpint (f->rss_max_kb - rss0, <, NOREAD_RSS_SLACK_KB);
  g_assert_cmpint (rss1 - rss0, <, NOREAD_RSS_SLACK_KB);
  g_assert_cmpint (hwm1 - MAX (rss0, hwm0), <, NOREAD_RSS_SLACK_KB);
  client_free (nr.c);
  expect_counter (&f->d, "limit_output_overflow", 1);
}

/* ---- 3b. many clients that never read: the output budget ------------------- */

/* One account, BUDGET_DEAF resources that never read and one that does, all
 * at the same priority: every message to the bare JID goes to all of them
 * (RFC 6121 8.5.2.1.1), so each deaf queue grows by what the reader reads.
 * Each deaf queue stays under max_output_hard and output_drain_timeout is
 * longer than the attack: only max_output_total (BUDGET_TOTAL) can cut them,
 * and it must cut them all while the reader stays. */
#define BUDGET_DEAF 8
#define BUDGET_SOFT (256 * 1024)
#define BUDGET_TOTAL (2 * 1024 * 1024)
#define BUDGET_BODY 4000
/* 8 MB to every resource: each deaf queue alone could pass the budget. */
#define BUDGET_MESSAGES 2000
#define BUDGET_MS 30000
/* Growth of mynad's RSS allowed over the attack (the deaf queues add up
 * to BUDGET_DEAF x 8 MB without a total). */
#define BUDGET_RSS_SLACK_KB (24 * 1024)

static guint count_lines (const char *text, const char *needle);

typedef struct {
  Client  *sender;
  Client  *reader;
  guint    delivered;  /* messages the reader got */
  gsize    read_bytes;
  gboolean reader_error;
  gsize    sent;
} Budget;

static gpointer
budget_reader_thread (gpointer data)
{
  Budget *b = data;

  b->delivered = client_count (b->reader, "-budget-end</body>", BUDGET_MESSAGES, BUDGET_MS,
                               &b->read_bytes, &b->reader_error);
  return NULL;
}

/* Sends BUDGET_MESSAGES messages to mallory's bare JID while the reader
 * resource reads them all (bounded by BUDGET_MS). */
static void
budget_attack (Attack *a)
{
  Budget *b = a->data;
  GString *all = g_string_new (NULL);
  g_autofree char *pad = g_strnfill (BUDGET_BODY, 'x');
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < BUDGET_MESSAGES; i++)
    g_string_append_printf (all, "<message to='mallory@localhost' type='chat' id='b%u'>"
                            "<body>%s-%05u-budget-end</body></message>", i, pad, i);
  GThread *t = g_thread_new ("budget-reader", budget_reader_thread, b);
  set_nonblocking (b->sender->fd, TRUE);
  while (b->sent < all->len && ms_since (start) < BUDGET_MS)
    {
      struct pollfd p = { .fd = b->sender->fd, .events = POLLOUT };
      if (poll (&p, 1, 100) <= 0)
        continue;
      ssize_t n = send (b->sender->fd, all->str + b->sent, all->len - b->sent, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR)
        break;
      if (n > 0)
        b->sent += (gsize) n;
    }
  set_nonblocking (b->sender->fd, FALSE);
  g_thread_join (t);
  g_string_free (all, TRUE);
}

static void
test_output_budget (Fixture *f, gconstpointer unused)
{
  Client *deaf[BUDGET_DEAF];
  Budget b = { 0 };

  mynad_add_user (&f->d, "sender", "send");
  /* Every resource available at priority 0, checked with a ping. */
  for (guint i = 0; i <= BUDGET_DEAF; i++)
    {
      g_autofree char *res = g_strdup_printf ("deaf%u", i);
      Client *c = i < BUDGET_DEAF ? login_from (&f->d, ATTACK_SRC, NOREAD_RCVBUF, "mallory",
                                                "evil", res)
                                  : login_from (&f->d, OTHER_SRC, 0, "mallory", "evil", "reader");
      client_send (c, "<presence/><iq type='get' id='avail' to='localhost'>"
                      "<ping xmlns='urn:xmpp:ping'/></iq>");
      g_assert_true (expect_within (&f->d, c, "id='avail'", WAIT_MS));
      if (i < BUDGET_DEAF)
        deaf[i] = c;
      else
        b.reader = c;
    }
  b.sender = login_from (&f->d, ATTACK_SRC, 0, "sender", "send", "s");

  gint64 rss0 = mynad_rss_kb (&f->d);
  gint64 hwm0 = mynad_mem_kb (&f->d, "VmHWM:");
  f->rss_max_kb = rss0;
  run_attack (f, budget_attack, &b, BUDGET_MS + 5000);
  gint64 rss1 = mynad_rss_kb (&f->d);
  gint64 hwm1 = mynad_mem_kb (&f->d, "VmHWM:");
  g_test_message ("output budget: %" G_GSIZE_FORMAT " bytes sent, the reader got %u of %u "
                  "messages (%" G_GSIZE_FORMAT " bytes); mynad VmRSS %" G_GINT64_FORMAT " kB "
                  "before, %" G_GINT64_FORMAT " kB highest sample, %" G_GINT64_FORMAT " kB after, "
                  "VmHWM %" G_GINT64_FORMAT " kB (before: %" G_GINT64_FORMAT " kB)",
                  b.sent, b.delivered, BUDGET_MESSAGES, b.read_bytes, rss0, f->rss_max_kb, rss1,
                  hwm1, hwm0);

  /* The reader kept up and got everything; it was never cut. */
  g_assert_false (b.reader_error);
  g_assert_cmpuint (b.delivered, ==, BUDGET_MESSAGES);
  g_assert_true (client_is_open (b.reader));
  /* Every deaf resource was cut off, none by its drain time or hard cap. */
  for (guint i = 0; i < BUDGET_DEAF; i++)
    if (!closed_within (&f->d, deaf[i], WAIT_MS))
      g_error ("deaf resource %u was not cut off (%" G_GSIZE_FORMAT " bytes read from it)\n"
               "mynad log tail:\n%s", i, deaf[i]->in->len, log_tail (&f->d, 20));
  g_assert_cmpint (f->rss_max_kb - rss0, <, BUDGET_RSS_SLACK_KB);
  g_assert_cmpint (rss1 - rss0, <, BUDGET_RSS_SLACK_KB);
  /* The high-water mark catches a peak between two samples. */
  g_assert_cmpint (hwm1 - MAX (rss0, hwm0), <, BUDGET_RSS_SLACK_KB);
  g_assert_cmpuint (stat_get (&f->d, "limit_output_budget_cuts"), ==, BUDGET_DEAF);
  g_assert_cmpuint (stat_get (&f->d, "limit_output_overflow"), ==, 0);
  /* Over the budget only while no queue was over its soft limit. */
  guint64 peak = stat_get (&f->d, "output_total_peak");
  g_test_message ("output_total_peak %" G_GUINT64_FORMAT " (max_output_total %d)", peak,
                  BUDGET_TOTAL);
  g_assert_cmpuint (peak, <=, BUDGET_TOTAL + BUDGET_SOFT);
  /* A log line per interval for the cuts (the attack spans one or two),
   * not one each. */
  log_drain (&f->d);
  guint lines = count_lines (f->d.log->str, "cut off as not reading");
  g_assert_cmpuint (lines, >=, 1);
  g_assert_cmpuint (lines, <=, 3);
  g_assert_cmpuint (count_lines (f->d.log->str, "stream error <policy-violation/>"), ==, 0);
  /* Nothing is left queued once the deaf are gone and the reader is idle. */
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (stat_get (&f->d, "output_total") != 0 && g_get_monotonic_time () < deadline)
    client_read (b.reader, 50);
  g_assert_cmpuint (stat_get (&f->d, "output_total"), ==, 0);
  g_assert_cmpuint (stat_get (&f->d, "output_over_soft"), ==, 0);
  for (guint i = 0; i < BUDGET_DEAF; i++)
    client_free (deaf[i]);
  client_free (b.reader);
  client_free (b.sender);
}

/* ---- 3c. a budget cut inside another session's write ----------------------- */

/* mallory's "deaf" resource, over its soft limit, sends unavailable presence
 * carrying a large <status/> while it has directed presence out to sender's
 * resources.  The copy to itself fits the budget; the first directed copy
 * does not, and the cut picks the deaf resource (the one queue over its soft
 * limit) in the middle of the presence module's walk of its own directed
 * set.  The session/closed hook that the cut runs must not pull that set
 * out from under the walk. */
#define REENTRY_TOTAL (1024 * 1024)
#define REENTRY_STATUS (100 * 1024)
#define REENTRY_TARGETS 4

static void
test_output_budget_reentry (Fixture *f, gconstpointer unused)
{
  Client *t[REENTRY_TARGETS];
  g_autoptr(GString) directed = g_string_new ("<presence/>");
  g_autofree char *pad = g_strnfill (4000, 'x');
  g_autofree char *status = g_strnfill (REENTRY_STATUS, 's');
  g_autofree char *unavailable = NULL;
  guint64 total = 0;

  mynad_add_user (&f->d, "sender", "send");
  mynad_add_user (&f->d, "filler", "fill");
  for (guint i = 0; i < REENTRY_TARGETS; i++)
    {
      g_autofree char *res = g_strdup_printf ("t%u", i);
      t[i] = login_from (&f->d, OTHER_SRC, 0, "sender", "send", res);
      g_string_append_printf (directed, "<presence to='sender@localhost/t%u'/>", i);
    }
  Client *deaf = login_from (&f->d, ATTACK_SRC, NOREAD_RCVBUF, "mallory", "evil", "deaf");
  g_string_append (directed, "<iq type='get' id='avail' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  client_send (deaf, directed->str);
  g_assert_true (expect_within (&f->d, deaf, "id='avail'", WAIT_MS));
  Client *filler = login_from (&f->d, OTHER_SRC, 0, "filler", "fill", "f");

  /* The deaf queue up to just under the budget less one status copy. */
  for (guint round = 0; round < 2000; round++)
    {
      total = stat_get (&f->d, "output_total");
      if (total > REENTRY_TOTAL - 2 * REENTRY_STATUS + 8 * 1024)
        break;
      guint n = total + 64 * 1024 < REENTRY_TOTAL - 2 * REENTRY_STATUS ? 8 : 1;
      g_autoptr(GString) batch = g_string_new (NULL);
      for (guint i = 0; i < n; i++)
        g_string_append_printf (batch, "<message to='mallory@localhost/deaf' type='chat'>"
                                "<body>%s</body></message>", pad);
      g_autofree char *id = g_strdup_printf ("fill%u", round);
      g_string_append_printf (batch, "<iq type='get' id='%s' to='localhost'>"
                              "<ping xmlns='urn:xmpp:ping'/></iq>", id);
      client_send (filler, batch->str);
      g_assert_true (expect_within (&f->d, filler, id, WAIT_MS));
    }
  g_test_message ("output_total %" G_GUINT64_FORMAT " before the unavailable presence", total);
  g_assert_cmpuint (total, <, REENTRY_TOTAL - REENTRY_STATUS - 1024);

  unavailable = g_strdup_printf ("<presence type='unavailable'><status>%s</status></presence>",
                                 status);
  client_send (deaf, unavailable);
  g_assert_true (closed_within (&f->d, deaf, WAIT_MS));
  /* mynad is still there. */
  g_assert_cmpuint (stat_get (&f->d, "limit_output_budget_cuts"), >=, 1);
  client_free (deaf);
  client_free (filler);
  for (guint i = 0; i < REENTRY_TARGETS; i++)
    client_free (t[i]);
}

/* ---- 4. XML bombs --------------------------------------------------------- */

/* After each bomb: nothing of it reached B, and the good pair still works. */
static void
bomb_aftermath (Fixture *f)
{
  g_assert_null (strstr (f->gb->in->str, "bomb"));
  good_probe (f, FALSE);
  g_assert_null (strstr (f->gb->in->str, "bomb"));
  expect_counter (&f->d, "stream_errors", 1);
}

static void
test_billion_laughs (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = connect_from (&f->d, ATTACK_SRC, 0);
  GString *dtd = g_string_new ("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol0 'bomb'>");

  for (int i = 1; i <= 9; i++)
    {
      g_string_append_printf (dtd, "<!ENTITY lol%d '", i);
      for (int k = 0; k < 10; k++)
        g_string_append_printf (dtd, "&lol%d;", i - 1);
      g_string_append (dtd, "'>");
    }
  g_string_append (dtd, "]><stream:stream to='localhost' xmlns='jabber:client' "
                        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
                        "<message to='goodb@localhost/probe'><body>&lol9;</body></message>");
  send_bounded (&f->d, c, dtd->str, dtd->len, WAIT_MS);
  g_string_free (dtd, TRUE);
  assert_stream_error (&f->d, c, "restricted-xml", NULL);
  bomb_aftermath (f);
}

static void
test_entity_reference (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login_from (&f->d, ATTACK_SRC, 0, "mallory", "evil", "bomb");
  g_autoptr(Client) pre = connect_from (&f->d, ATTACK_SRC, 0);

  /* Authenticated: an undeclared entity in a message to B. */
  client_send (c, "<message to='goodb@localhost/probe' type='chat'><body>bomb &xxe; bomb</body></message>");
  assert_stream_error (&f->d, c, "restricted-xml", NULL);
  /* Before authentication, in an attribute. */
  g_assert_true (open_stream (&f->d, pre));
  client_send (pre, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='&lol9;'>AA==</auth>");
  assert_stream_error (&f->d, pre, "restricted-xml", NULL);
  bomb_aftermath (f);
}

static void
test_deep_nesting (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login_from (&f->d, ATTACK_SRC, 0, "mallory", "evil", "bomb");
  GString *s = g_string_new ("<message to='goodb@localhost/probe' type='chat'><body>bomb</body>");

  for (int i = 0; i < 10000; i++)
    g_string_append (s, "<a>");
  for (int i = 0; i < 10000; i++)
    g_string_append (s, "</a>");
  g_string_append (s, "</message>");
  send_bounded (&f->d, c, s->str, s->len, WAIT_MS);
  g_string_free (s, TRUE);
  assert_stream_error (&f->d, c, "policy-violation", "nested too deeply");
  bomb_aftermath (f);
}

#define HUGE_STANZA ((gsize) 10 << 20)

static void
test_huge_stanza (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login_from (&f->d, ATTACK_SRC, 0, "mallory", "evil", "bomb");
  GString *s = g_string_sized_new (HUGE_STANZA + 256);

  g_string_append (s, "<message to='goodb@localhost/probe' type='chat'><body>bomb");
  while (s->len < HUGE_STANZA)
    g_string_append (s, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  g_string_append (s, "</body></message>");
  gsize sent = send_bounded (&f->d, c, s->str, s->len, WAIT_MS);
  g_test_message ("huge stanza: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes accepted "
                  "before the server stopped reading", sent, s->len);
  /* Cut off before it was all read. */
  g_assert_cmpuint (sent, <, s->len);
  g_string_free (s, TRUE);
  assert_stream_error (&f->d, c, "policy-violation", "stanza too large");
  bomb_aftermath (f);
}

static void
test_many_attributes (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = login_from (&f->d, ATTACK_SRC, 0, "mallory", "evil", "bomb");
  GString *s = g_string_new ("<message to='goodb@localhost/probe' type='chat'");

  for (int i = 0; i < 100000; i++)
    g_string_append_printf (s, " a%d='x'", i);
  g_string_append (s, "><body>bomb</body></message>");
  gsize sent = send_bounded (&f->d, c, s->str, s->len, WAIT_MS);
  g_test_message ("100k attributes: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes accepted",
                  sent, s->len);
  g_string_free (s, TRUE);
  assert_stream_error (&f->d, c, "policy-violation", "too many attributes");
  bomb_aftermath (f);
}

/* ---- 5. thousands of connections that never authenticate ------------------ */

#define FLOOD_CONNS 2000
#define PER_IP_CAP 500

typedef struct {
  Mynad   *d;
  Client **c;
  guint    connected, connect_failed;
  guint    closed;
  gint64   connect_ms, all_closed_ms;
} ConnFlood;

/* Opens FLOOD_CONNS connections from ATTACK_SRC that send only a stream
 * header, then waits (up to 15 s) until the server has closed them all. */
static void
connflood_attack (Attack *a)
{
  ConnFlood *cf = a->data;
  gint64 start = g_get_monotonic_time ();
  struct pollfd *p = g_new (struct pollfd, FLOOD_CONNS);
  guint *idx = g_new (guint, FLOOD_CONNS);

  for (guint i = 0; i < FLOOD_CONNS; i++)
    {
      cf->c[i] = connect_from (cf->d, ATTACK_SRC, 0);
      if (cf->c[i] == NULL)
        {
          cf->connect_failed++;
          continue;
        }
      cf->connected++;
      client_send (cf->c[i], STREAM_OPEN ("localhost"));
    }
  cf->connect_ms = ms_since (start);
  while (cf->closed < cf->connected && ms_since (start) < 15000)
    {
      guint np = 0;
      for (guint i = 0; i < FLOOD_CONNS; i++)
        if (cf->c[i] != NULL && !cf->c[i]->eof)
          {
            p[np] = (struct pollfd) { .fd = cf->c[i]->fd, .events = POLLIN };
            idx[np++] = i;
          }
      if (poll (p, np, (int) MAX (1, 15000 - ms_since (start))) <= 0)
        continue;
      for (guint k = 0; k < np; k++)
        if (p[k].revents)
          {
            client_read (cf->c[idx[k]], 0);
            if (cf->c[idx[k]]->eof)
              cf->closed++;
          }
    }
  cf->all_closed_ms = ms_since (start);
  g_free (p);
  g_free (idx);
}

static void
raise_nofile (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

static void
test_connection_flood (Fixture *f, gconstpointer unused)
{
  struct rlimit rl;
  ConnFlood cf = { .d = &f->d, .c = g_new0 (Client *, FLOOD_CONNS) };
  guint refused = 0, timed_out = 0, other = 0;

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  if (rl.rlim_cur < FLOOD_CONNS + 64)
    {
      g_test_skip ("RLIMIT_NOFILE too low for the connection flood");
      g_free (cf.c);
      return;
    }
  run_attack (f, connflood_attack, &cf, 25000);
  for (guint i = 0; i < FLOOD_CONNS; i++)
    {
      Client *c = cf.c[i];
      if (c == NULL)
        continue;
      if (strstr (c->in->str, "<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"))
        refused++;
      else if (strstr (c->in->str, "<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"))
        timed_out++;
      else
        {
          if (other++ < 3)
            g_test_message ("connection %u: neither refused nor timed out (eof %d): %.300s",
                            i, c->eof, c->in->str);
        }
    }
  guint64 refused_stat = stat_get (&f->d, "limit_per_ip_refused");
  guint64 timeouts_stat = stat_get (&f->d, "limit_auth_timeouts");
  g_test_message ("connection flood: %u connected (%u failed) in %" G_GINT64_FORMAT " ms; "
                  "%u refused, %u timed out, %u other; all closed after %" G_GINT64_FORMAT
                  " ms; limit_per_ip_refused %" G_GUINT64_FORMAT ", limit_auth_timeouts %"
                  G_GUINT64_FORMAT, cf.connected, cf.connect_failed, cf.connect_ms, refused,
                  timed_out, other, cf.all_closed_ms, refused_stat, timeouts_stat);
  g_assert_cmpuint (cf.connect_failed, ==, 0);
  if (cf.closed < cf.connected)
    g_error ("%u of %u flood connections still open after 15 s\nmynad log tail:\n%s",
             cf.connected - cf.closed, cf.connected, log_tail (&f->d, 20));
  g_assert_cmpuint (refused, >=, 1);
  g_assert_cmpuint (timed_out, >=, 1);
  /* When the flood connected faster than the timeout, at most the cap
   * was admitted; all the rest were refused. */
  if (cf.connect_ms < 3000)
    g_assert_cmpuint (timed_out, <=, PER_IP_CAP);
  g_assert_cmpuint (refused + timed_out, ==, cf.connected);
  g_assert_cmpuint (refused_stat, ==, refused);
  g_assert_cmpuint (timeouts_stat, ==, timed_out);
  for (guint i = 0; i < FLOOD_CONNS; i++)
    if (cf.c[i] != NULL)
      client_free (cf.c[i]);
  g_free (cf.c);
  /* Only the good pair is left, and the address is welcome again. */
  g_assert_cmpuint (stat_get (&f->d, "connections"), ==, 2);
  g_autoptr(Client) again = connect_from (&f->d, ATTACK_SRC, 0);
  g_assert_true (open_stream (&f->d, again));
}

/* ---- 6. SASL brute force -------------------------------------------------- */

#define MAX_FAILURES 3
#define BRUTE_TRIES 20

typedef struct {
  Client *c1, *c2;
  char   *answers[BRUTE_TRIES + 1];  /* conditions on c1; the last for the right password */
  char   *c2_alice, *c2_carol;       /* conditions on c2 */
} Brute;

/* The SASL outcome in @c's input: "success" or the failure's condition;
 * the input is cleared. */
static char *
sasl_outcome (Mynad *d, Client *c)
{
  static const char *const conditions[] = {
    "not-authorized", "temporary-auth-failure", "malformed-request", "aborted",
    "account-disabled", "invalid-mechanism", "encryption-required", NULL
  };
  char *result = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  /* Either answer ends the wait. */
  while (strstr (c->in->str, "<success") == NULL && strstr (c->in->str, "</failure>") == NULL
         && !c->eof)
    if (!wait_input (d, c, deadline))
      break;
  if (strstr (c->in->str, "</failure>") == NULL && strstr (c->in->str, "<success") == NULL)
    result = g_strdup_printf ("no answer (%s)", c->eof ? "closed" : "timeout");
  else if (strstr (c->in->str, "<success") != NULL)
    result = g_strdup ("success");
  for (guint i = 0; result == NULL && conditions[i] != NULL; i++)
    {
      g_autofree char *tag = g_strdup_printf ("<%s/>", conditions[i]);
      if (strstr (c->in->str, tag) != NULL)
        result = g_strdup (conditions[i]);
    }
  if (result == NULL)
    result = g_strdup_printf ("unexpected: %.200s", c->in->str);
  g_string_truncate (c->in, 0);
  return result;
}

static char *
try_password (Mynad *d, Client *c, const char *user, const char *password)
{
  g_autofree char *auth = plain_auth (user, password);

  client_send (c, auth);
  return sasl_outcome (d, c);
}

/* try_password, also telling how long the answer took (@waited_ms). */
static char *
try_password_timed (Mynad *d, Client *c, const char *user, const char *password,
                    gint64 *waited_ms)
{
  g_autofree char *auth = plain_auth (user, password);
  gint64 t0 = g_get_monotonic_time ();

  client_send (c, auth);
  char *outcome = sasl_outcome (d, c);
  *waited_ms = ms_since (t0);
  return outcome;
}


/* One connection guesses alice's password BRUTE_TRIES times, then tries the
 * right one; a second connection from the same address tries alice's and
 * carol's right passwords. */
static void
brute_attack (Attack *a)
{
  Brute *b = a->data;

  for (int i = 0; i < BRUTE_TRIES; i++)
    {
      g_autofree char *guess = g_strdup_printf ("guess%d", i);
      b->answers[i] = try_password (NULL, b->c1, "alice", guess);
    }
  b->answers[BRUTE_TRIES] = try_password (NULL, b->c1, "alice", "wonderland");
  b->c2_alice = try_password (NULL, b->c2, "alice", "wonderland");
  b->c2_carol = try_password (NULL, b->c2, "carol", "christmas");
}

static void
test_brute_force (Fixture *f, gconstpointer unused)
{
  Brute b = { NULL };

  mynad_add_user (&f->d, "alice", "wonderland");
  mynad_add_user (&f->d, "bob", "builder");
  mynad_add_user (&f->d, "carol", "christmas");
  b.c1 = connect_from (&f->d, ATTACK_SRC, 0);
  b.c2 = connect_from (&f->d, ATTACK_SRC, 0);
  g_assert_true (open_stream (&f->d, b.c1));
  g_assert_true (open_stream (&f->d, b.c2));
  g_string_truncate (b.c1->in, 0);
  g_string_truncate (b.c2->in, 0);
  run_attack (f, brute_attack, &b, 60000);

  GString *seq = g_string_new (NULL);
  for (int i = 0; i <= BRUTE_TRIES; i++)
    g_string_append_printf (seq, "%s%s", i ? " " : "", b.answers[i]);
  g_test_message ("brute force on alice: %s; second connection: alice %s, carol %s",
                  seq->str, b.c2_alice, b.c2_carol);
  g_string_free (seq, TRUE);
  for (int i = 0; i < BRUTE_TRIES; i++)
    g_assert_cmpstr (b.answers[i], ==, i < MAX_FAILURES ? "not-authorized" : "temporary-auth-failure");
  /* Throttled: even the right password is refused now. */
  g_assert_cmpstr (b.answers[BRUTE_TRIES], ==, "temporary-auth-failure");
  /* Another connection from the same address: throttled as well, for
   * alice and (max_failures_per_address) for any other account. */
  g_assert_cmpstr (b.c2_alice, ==, "temporary-auth-failure");
  g_assert_cmpstr (b.c2_carol, ==, "temporary-auth-failure");
  /* From another address: bob logs in, and so does alice, the owner: an
   * attacker cannot lock her out (issue 10, item 7).  Her account's
   * failures only delay the answer (DELAY_BASE_MS after max_failures). */
  g_autoptr(Client) bob = login_from (&f->d, OTHER_SRC, 0, "bob", "builder", "home");
  g_autoptr(Client) alice = connect_from (&f->d, OTHER_SRC, 0);
  g_assert_true (open_stream (&f->d, alice));
  g_string_truncate (alice->in, 0);
  gint64 waited;
  g_autofree char *alice_other = try_password_timed (&f->d, alice, "alice", "wonderland",
                                                     &waited);
  g_test_message ("alice from another address: %s after %" G_GINT64_FORMAT " ms", alice_other,
                  waited);
  g_assert_cmpstr (alice_other, ==, "success");
  g_assert_cmpint (waited, >=, 500);
  g_assert_cmpint (waited, <, WAIT_MS);
  /* bob talks to the good pair. */
  client_send (bob, "<message to='goodb@localhost/probe' type='chat'><body>hello from bob</body></message>");
  g_assert_true (expect_within (&f->d, f->gb, "hello from bob", GOOD_BOUND_MS));
  g_string_truncate (f->gb->in, 0);
  for (int i = 0; i <= BRUTE_TRIES; i++)
    g_free (b.answers[i]);
  g_free (b.c2_alice);
  g_free (b.c2_carol);
  client_free (b.c1);
  client_free (b.c2);
}

/* The same guesses in parallel: PARALLEL_GUESSES connections from one
 * address each send one wrong password for alice at once.  No more than
 * max_failures of them may be checked against the password. */
#define PARALLEL_GUESSES 20

static void
test_brute_force_parallel (Fixture *f, gconstpointer unused)
{
  Client *c[PARALLEL_GUESSES];
  guint checked = 0, throttled = 0;
  GString *seq = g_string_new (NULL);

  mynad_add_user (&f->d, "alice", "wonderland");
  for (guint i = 0; i < PARALLEL_GUESSES; i++)
    {
      c[i] = connect_from (&f->d, ATTACK_SRC, 0);
      g_assert_nonnull (c[i]);
      g_assert_true (open_stream (&f->d, c[i]));
      g_string_truncate (c[i]->in, 0);
    }
  for (guint i = 0; i < PARALLEL_GUESSES; i++)
    {
      g_autofree char *guess = g_strdup_printf ("guess%u", i);
      g_autofree char *auth = plain_auth ("alice", guess);
      client_send (c[i], auth);
    }
  for (guint i = 0; i < PARALLEL_GUESSES; i++)
    {
      g_autofree char *answer = sasl_outcome (&f->d, c[i]);
      g_string_append_printf (seq, "%s%s", i ? " " : "", answer);
      if (strcmp (answer, "not-authorized") == 0)
        checked++;
      else if (strcmp (answer, "temporary-auth-failure") == 0)
        throttled++;
      client_free (c[i]);
    }
  g_test_message ("%d parallel guesses from one address: %u checked against the password "
                  "(not-authorized), %u throttled: %s", PARALLEL_GUESSES, checked, throttled,
                  seq->str);
  g_string_free (seq, TRUE);
  good_probe (f, FALSE);
  g_assert_cmpuint (checked + throttled, ==, PARALLEL_GUESSES);
  if (checked > MAX_FAILURES)
    g_test_fail_printf ("%u of %d parallel wrong passwords for one account from one address "
                        "were checked; max_failures is %d", checked, PARALLEL_GUESSES,
                        MAX_FAILURES);
}

/* Many right logins in flight at once from one address (a carrier's NAT,
 * an office reconnecting after an outage), more than
 * max_failures_per_address: none is refused, since none failed; and one
 * wrong password among them fails alone. */
#define PARALLEL_LOGINS 16

static void
test_parallel_logins (Fixture *f, gconstpointer unused)
{
  Client *c[PARALLEL_LOGINS];
  GString *seq = g_string_new (NULL);
  guint ok = 0;

  for (guint i = 0; i < PARALLEL_LOGINS; i++)
    {
      g_autofree char *user = g_strdup_printf ("phone%u", i);
      mynad_add_user (&f->d, user, "secret");
      c[i] = connect_from (&f->d, ATTACK_SRC, 0);
      g_assert_nonnull (c[i]);
      g_assert_true (open_stream (&f->d, c[i]));
      g_string_truncate (c[i]->in, 0);
    }
  for (guint i = 0; i < PARALLEL_LOGINS; i++)
    {
      g_autofree char *user = g_strdup_printf ("phone%u", i);
      g_autofree char *auth = plain_auth (user, i == 0 ? "typo" : "secret");
      client_send (c[i], auth);
    }
  for (guint i = 0; i < PARALLEL_LOGINS; i++)
    {
      g_autofree char *answer = sasl_outcome (&f->d, c[i]);
      g_string_append_printf (seq, "%s%s", i ? " " : "", answer);
      if (i == 0)
        g_assert_cmpstr (answer, ==, "not-authorized");
      else if (strcmp (answer, "success") == 0)
        ok++;
      client_free (c[i]);
    }
  g_test_message ("%d logins in flight from one address (one wrong): %s", PARALLEL_LOGINS,
                  seq->str);
  g_string_free (seq, TRUE);
  g_assert_cmpuint (ok, ==, PARALLEL_LOGINS - 1);
}

/* A guesser spread over many addresses, one wrong password each for
 * alice: none is refused (so nobody can lock alice out), but from
 * max_failures on every answer waits longer, up to account_delay_max,
 * on a timer (the good pair keeps talking meanwhile); then alice logs in
 * from another address, as slowly (issue 10, item 7). */
#define SPREAD_GUESSES 7

typedef struct {
  char  *answers[SPREAD_GUESSES];
  gint64 waited_ms[SPREAD_GUESSES];
} Spread;

static void
spread_attack (Attack *a)
{
  Spread *sp = a->data;

  for (int i = 0; i < SPREAD_GUESSES; i++)
    {
      g_autofree char *src = g_strdup_printf ("127.0.1.%d", 10 + i);
      g_autofree char *guess = g_strdup_printf ("guess%d", i);
      Client *c = connect_from (&a->f->d, src, 0);

      if (c == NULL || !open_stream (NULL, c))
        {
          sp->answers[i] = g_strdup ("no stream");
          if (c != NULL)
            client_free (c);
          continue;
        }
      g_string_truncate (c->in, 0);
      sp->answers[i] = try_password_timed (NULL, c, "alice", guess, &sp->waited_ms[i]);
      client_free (c);
    }
}

static void
test_spread_guessing (Fixture *f, gconstpointer unused)
{
  Spread sp = { { NULL } };

  mynad_add_user (&f->d, "alice", "wonderland");
  run_attack (f, spread_attack, &sp, 60000);
  for (int i = 0; i < SPREAD_GUESSES; i++)
    {
      /* 3 free, then 500 ms doubling, capped at 2 s. */
      gint64 expect = i < MAX_FAILURES ? 0 : MIN (500 << (i - MAX_FAILURES), 2000);
      g_test_message ("guess %d from its own address: %s after %" G_GINT64_FORMAT
                      " ms (at least %" G_GINT64_FORMAT ")", i, sp.answers[i], sp.waited_ms[i],
                      expect);
      g_assert_cmpstr (sp.answers[i], ==, "not-authorized");
      g_assert_cmpint (sp.waited_ms[i], >=, expect);
    }
  g_autoptr(Client) alice = connect_from (&f->d, OTHER_SRC, 0);
  g_assert_true (open_stream (&f->d, alice));
  g_string_truncate (alice->in, 0);
  gint64 waited;
  g_autofree char *answer = try_password_timed (&f->d, alice, "alice", "wonderland", &waited);
  g_test_message ("then alice: %s after %" G_GINT64_FORMAT " ms", answer, waited);
  g_assert_cmpstr (answer, ==, "success");
  g_assert_cmpint (waited, >=, 2000);
  g_assert_cmpint (waited, <, WAIT_MS);
  for (int i = 0; i < SPREAD_GUESSES; i++)
    g_free (sp.answers[i]);
}

/* Failed logins with distinct names: the failure table stays within
 * max_failure_entries (evicting, and saying so once per sweep), and
 * empties once failure_window has passed (issue 10, item 14). */
#define TABLE_NAMES 300

static void
table_attack (Attack *a)
{
  Client *c = a->data;

  for (int i = 0; i < TABLE_NAMES; i++)
    {
      g_autofree char *user = g_strdup_printf ("nobody%d", i);
      g_autofree char *answer = try_password (NULL, c, user, "guess");
      if (strcmp (answer, "not-authorized") != 0)
        g_error ("login %d as %s: %s", i, user, answer);
    }
}

static void
test_failure_table (Fixture *f, gconstpointer unused)
{
  Client *c = connect_from (&f->d, ATTACK_SRC, 0);

  g_assert_true (open_stream (&f->d, c));
  g_string_truncate (c->in, 0);
  run_attack (f, table_attack, c, 60000);
  client_free (c);
  /* 600 entries would be made (one per name, one per address and name):
   * the cap of 100 evicted most of them... */
  if (!mynad_wait_log (&f->d, "failure table full", WAIT_MS))
    g_error ("no eviction reported; log tail:\n%s", log_tail (&f->d, 20));
  /* ... and the window (3 s) empties it. */
  if (!mynad_wait_log (&f->d, "expired, 0 left", 3 * WAIT_MS))
    g_error ("the failure table did not empty; log tail:\n%s", log_tail (&f->d, 20));
}

/* ---- out of descriptors ------------------------------------------------------ */

/* Connections opened while mynad has no descriptor left. */
#define NOFD_CONNS 48
/* mynad's descriptors allowed beyond those open at the start. */
#define NOFD_SPARE 12
#define NOFD_WINDOW_MS 2000
/* CPU mynad may use over the window while every accept() fails (the
 * spinning listener took the whole window). */
#define NOFD_CPU_MS 300

/* mynad's user + system CPU time so far, in ms. */
static gint64
mynad_cpu_ms (Mynad *d)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/stat", g_subprocess_get_identifier (d->proc));
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *p;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (p = strrchr (text, ')')) == NULL)
    return -1;
  /* After "pid (comm)": state is field 3, utime 14, stime 15. */
  fields = g_strsplit (p + 2, " ", -1);
  if (g_strv_length (fields) < 13)
    return -1;
  return (g_ascii_strtoll (fields[11], NULL, 10) + g_ascii_strtoll (fields[12], NULL, 10))
         * 1000 / sysconf (_SC_CLK_TCK);
}

static guint
mynad_open_fds (Mynad *d)
{
  g_autofree char *path = g_strdup_printf ("/proc/%s/fd", g_subprocess_get_identifier (d->proc));
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* Reads mynad's log for @ms. */
static void
log_drain_for (Mynad *d, int ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  int left;

  while ((left = (int) ((deadline - g_get_monotonic_time ()) / 1000)) > 0)
    {
      struct pollfd p = { .fd = log_fd (d), .events = POLLIN };
      if (poll (&p, 1, left) > 0)
        log_drain (d);
    }
}

static guint
count_lines (const char *text, const char *needle)
{
  guint n = 0;

  for (const char *p = text; (p = strstr (p, needle)) != NULL; p += strlen (needle))
    n++;
  return n;
}

static int
connect_admin (Mynad *d)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autofree char *path = g_build_filename (d->dir, "mynad.sock", NULL);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  return fd;
}

/* mynad runs out of descriptors (a low RLIMIT_NOFILE set from outside
 * with prlimit): accept() fails with EMFILE on the c2s listener and on the
 * admin socket.  It must neither spin nor flood its log, must keep
 * serving the sessions it has, and must accept again by itself once
 * descriptors are free. */
static void
test_out_of_descriptors (Fixture *f, gconstpointer unused)
{
  pid_t pid = (pid_t) g_ascii_strtoll (g_subprocess_get_identifier (f->d.proc), NULL, 10);
  guint open0 = mynad_open_fds (&f->d);
  struct rlimit saved, low;
  Client *c[NOFD_CONNS];

  /* The soft limit only: raising a hard limit again needs a capability. */
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, NULL, &saved), ==, 0);
  low = (struct rlimit) { open0 + NOFD_SPARE, saved.rlim_max };
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &low, NULL), ==, 0);
  gsize log0 = f->d.log->len;
  for (int i = 0; i < NOFD_CONNS; i++)
    {
      c[i] = connect_from (&f->d, ATTACK_SRC, 0);
      g_assert_nonnull (c[i]);
    }
  int admin = connect_admin (&f->d);
  if (!mynad_wait_log (&f->d, "Too many open files", WAIT_MS))
    g_error ("mynad never ran out of descriptors (%u open, limit %u)\n%s",
             mynad_open_fds (&f->d), open0 + NOFD_SPARE, log_tail (&f->d, 20));

  /* The window: every pending accept() fails meanwhile. */
  gint64 cpu0 = mynad_cpu_ms (&f->d);
  log_drain_for (&f->d, NOFD_WINDOW_MS);
  gint64 cpu1 = mynad_cpu_ms (&f->d);
  good_probe (f, TRUE);
  log_drain (&f->d);
  guint lines = count_lines (f->d.log->str + log0, "accept");
  g_test_message ("out of descriptors: mynad used %" G_GINT64_FORMAT " ms of CPU in %d ms; "
                  "%u log line(s) about accept(), %" G_GSIZE_FORMAT " bytes of log",
                  cpu1 - cpu0, NOFD_WINDOW_MS, lines, f->d.log->len - log0);
  g_assert_cmpint (cpu0, >=, 0);
  g_assert_cmpint (cpu1 - cpu0, <, NOFD_CPU_MS);
  g_assert_cmpuint (lines, >=, 1);
  g_assert_cmpuint (lines, <=, 3);

  /* The connections go: descriptors come free and mynad accepts again,
   * the admin socket included, with the same low limit in force. */
  for (int i = 0; i < NOFD_CONNS; i++)
    client_free (c[i]);
  close (admin);
  g_autoptr(Client) fresh = connect_from (&f->d, OTHER_SRC, 0);
  g_assert_nonnull (fresh);
  g_assert_true (open_stream (&f->d, fresh));
  g_assert_cmpuint (stat_get (&f->d, "accept_failures"), >, 0);
  g_assert_true (mynad_wait_log (&f->d, "accepting connections again", WAIT_MS));
  g_assert_cmpint (prlimit (pid, RLIMIT_NOFILE, &saved, NULL), ==, 0);
}

/* ---- 6b. SASL: one guess per delay on an account ------------------------- */

/* Under the per-account delay (account_delay_max = 1 s here), an account's
 * attempts are evaluated one at a time, one per delay; the others wait in
 * the account's line (issue 10, item 7, review: a delay alone left a
 * guesser on many addresses its full parallel rate).  Each evaluation of
 * a wrong password logs "authentication failed for 'alice'". */
#define LINE_DELAY_MS 1000
#define LINE_QUEUE_MAX 4
#define LINE_FAILED "authentication failed for 'alice'"
#define OWNER_SRC "127.0.0.4"

/* Connects @n clients from 127.0.@net.1, .2, …, with their streams open
 * and their input cleared. */
static Client **
guessers_connect (Fixture *f, guint net, guint n)
{
  Client **c = g_new0 (Client *, n);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *src = g_strdup_printf ("127.0.%u.%u", net, i + 1);
      c[i] = connect_from (&f->d, src, 0);
      g_assert_nonnull (c[i]);
      g_assert_true (open_stream (&f->d, c[i]));
      g_string_truncate (c[i]->in, 0);
    }
  return c;
}

/* Each of the @n clients sends one wrong password for alice, all at once. */
static void
guessers_send (Client **c, guint n, const char *tag)
{
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *guess = g_strdup_printf ("%s%u", tag, i);
      g_autofree char *auth = plain_auth ("alice", guess);
      client_send (c[i], auth);
    }
}

static void
guessers_free (Client **c, guint n)
{
  for (guint i = 0; i < n; i++)
    client_free (c[i]);
  g_free (c);
}

/* max_failures wrong passwords for alice, one after another from
 * 127.0.9.x: alice is under the delay from now on. */
static void
alice_under_delay (Fixture *f)
{
  for (guint i = 0; i < MAX_FAILURES; i++)
    {
      g_autofree char *src = g_strdup_printf ("127.0.9.%u", i + 1);
      g_autoptr(Client) c = connect_from (&f->d, src, 0);
      g_assert_true (open_stream (&f->d, c));
      g_string_truncate (c->in, 0);
      g_autofree char *answer = try_password (&f->d, c, "alice", "warm-up");
      g_assert_cmpstr (answer, ==, "not-authorized");
    }
}

/* Waits up to WAIT_MS until mynad's log since @from holds @n lines with
 * @needle. */
static gboolean
log_count_reaches (Fixture *f, gsize from, const char *needle, guint n)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  for (;;)
    {
      log_drain (&f->d);
      if (count_lines (f->d.log->str + from, needle) >= n)
        return TRUE;
      if (g_get_monotonic_time () > deadline)
        return FALSE;
      log_drain_for (&f->d, 50);
    }
}

/* (a) LINE_GUESSERS guessers on distinct addresses send a wrong password
 * for alice at once: within LINE_WINDOW_MS at most one per delay is
 * evaluated (plus one: the first takes the free slot).  Without the line
 * all of them are evaluated at once and only their answers wait. */
#define LINE_GUESSERS 16
#define LINE_WINDOW_MS 4000

static void
test_account_line_rate (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "alice", "wonderland");
  alice_under_delay (f);
  Client **c = guessers_connect (f, 3, LINE_GUESSERS);
  log_drain (&f->d);
  gsize log0 = f->d.log->len;

  guessers_send (c, LINE_GUESSERS, "parallel");
  log_drain_for (&f->d, LINE_WINDOW_MS);
  guint evaluated = count_lines (f->d.log->str + log0, LINE_FAILED);
  guint bound = LINE_WINDOW_MS / LINE_DELAY_MS + 2;
  g_test_message ("%d parallel guesses on alice from distinct addresses under the delay: "
                  "%u evaluated in %d ms (bound %u: one per %d ms, plus slack)",
                  LINE_GUESSERS, evaluated, LINE_WINDOW_MS, bound, LINE_DELAY_MS);
  g_assert_cmpuint (evaluated, >=, 1);
  if (evaluated > bound)
    g_test_fail_printf ("%u of %d parallel guesses on one account were evaluated within %d ms "
                        "(at most %u expected: one per account delay)", evaluated,
                        LINE_GUESSERS, LINE_WINDOW_MS, bound);
  guessers_free (c, LINE_GUESSERS);
  good_probe (f, FALSE);
}

/* (b) alice logged in from OWNER_SRC before; guessers on fresh addresses
 * then fill her line.  From OWNER_SRC she skips the line: her answer waits
 * only the delay, not one delay per guesser ahead. */
#define KNOWN_GUESSERS 10

static void
test_account_line_known (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "alice", "wonderland");
  client_free (login_from (&f->d, OWNER_SRC, 0, "alice", "wonderland", "home"));
  alice_under_delay (f);
  Client **c = guessers_connect (f, 4, KNOWN_GUESSERS);
  log_drain (&f->d);
  gsize log0 = f->d.log->len;

  guessers_send (c, KNOWN_GUESSERS, "fill");
  g_assert_true (log_count_reaches (f, log0, "waits in the account's line",
                                    KNOWN_GUESSERS - 1));
  g_autoptr(Client) alice = connect_from (&f->d, OWNER_SRC, 0);
  g_assert_true (open_stream (&f->d, alice));
  g_string_truncate (alice->in, 0);
  gint64 waited;
  g_autofree char *answer = try_password_timed (&f->d, alice, "alice", "wonderland", &waited);
  guint evaluated = count_lines (f->d.log->str + log0, LINE_FAILED);
  g_test_message ("alice from a known address, %d guessers waiting: %s after %" G_GINT64_FORMAT
                  " ms; %u guesses evaluated meanwhile", KNOWN_GUESSERS - 1, answer, waited,
                  evaluated);
  g_assert_cmpstr (answer, ==, "success");
  g_assert_cmpint (waited, >=, LINE_DELAY_MS);          /* slowed all the same */
  g_assert_cmpint (waited, <, 2 * LINE_DELAY_MS);       /* not behind the line */
  g_assert_cmpuint (evaluated, <=, 3);                  /* the line was still full */
  guessers_free (c, KNOWN_GUESSERS);
}

/* (c) Guessers that failed on alice before (dirty addresses) fill her
 * line past account_queue_max: the ones past it are refused.  alice from
 * a new address (no failures, never logged in) is not refused, and waits
 * ahead of them: one slot, then the delay. */
#define DIRTY_GUESSERS 8

static void
test_account_line_new_address (Fixture *f, gconstpointer unused)
{
  guint refused = 0, denied = 0;
  GString *seq = g_string_new (NULL);

  mynad_add_user (&f->d, "alice", "wonderland");
  /* max_failures is DIRTY_GUESSERS here: one free guess each, in
   * parallel, and alice is under the delay. */
  Client **c = guessers_connect (f, 5, DIRTY_GUESSERS);
  guessers_send (c, DIRTY_GUESSERS, "first");
  for (guint i = 0; i < DIRTY_GUESSERS; i++)
    {
      g_autofree char *answer = sasl_outcome (&f->d, c[i]);
      g_assert_cmpstr (answer, ==, "not-authorized");
    }
  log_drain (&f->d);
  gsize log0 = f->d.log->len;
  guessers_send (c, DIRTY_GUESSERS, "second");
  g_assert_true (log_count_reaches (f, log0, "waits in the account's line", LINE_QUEUE_MAX));
  g_autoptr(Client) alice = connect_from (&f->d, OTHER_SRC, 0);
  g_assert_true (open_stream (&f->d, alice));
  g_string_truncate (alice->in, 0);
  gint64 waited;
  g_autofree char *answer = try_password_timed (&f->d, alice, "alice", "wonderland", &waited);
  g_test_message ("alice from a new address behind %d dirty guessers: %s after %"
                  G_GINT64_FORMAT " ms", DIRTY_GUESSERS, answer, waited);
  for (guint i = 0; i < DIRTY_GUESSERS; i++)
    {
      g_autofree char *outcome = sasl_outcome (&f->d, c[i]);
      g_string_append_printf (seq, "%s%s", i ? " " : "", outcome);
      refused += strcmp (outcome, "temporary-auth-failure") == 0;
      denied += strcmp (outcome, "not-authorized") == 0;
    }
  g_test_message ("the guessers' second guesses: %s", seq->str);
  g_string_free (seq, TRUE);
  g_assert_cmpstr (answer, ==, "success");
  g_assert_cmpint (waited, >=, LINE_DELAY_MS);
  /* One slot (500 ms, the first delay) and her own delay; behind the
   * line it would be 4 more. */
  g_assert_cmpint (waited, <, 2 * LINE_DELAY_MS + LINE_DELAY_MS / 2);
  /* One took the free slot, LINE_QUEUE_MAX waited, the rest were refused. */
  g_assert_cmpuint (denied, ==, 1 + LINE_QUEUE_MAX);
  g_assert_cmpuint (refused, ==, DIRTY_GUESSERS - 1 - LINE_QUEUE_MAX);
  guessers_free (c, DIRTY_GUESSERS);
}

/* (d) Guessers waiting in alice's line disconnect: they leave it (no
 * use-after-free under ASan), and the next attempt is not kept behind
 * them. */
#define LEAVING_GUESSERS 10

static void
test_account_line_leave (Fixture *f, gconstpointer unused)
{
  mynad_add_user (&f->d, "alice", "wonderland");
  alice_under_delay (f);
  Client **c = guessers_connect (f, 6, LEAVING_GUESSERS);
  log_drain (&f->d);
  gsize log0 = f->d.log->len;

  guessers_send (c, LEAVING_GUESSERS, "leaving");
  g_assert_true (log_count_reaches (f, log0, "waits in the account's line",
                                    LEAVING_GUESSERS - 1));
  guessers_free (c, LEAVING_GUESSERS);
  g_assert_true (log_count_reaches (f, log0, "left the line before its turn",
                                    LEAVING_GUESSERS - 1));
  /* alice from a new address: at most the rest of the slot and her delay. */
  g_autoptr(Client) alice = connect_from (&f->d, OTHER_SRC, 0);
  g_assert_true (open_stream (&f->d, alice));
  g_string_truncate (alice->in, 0);
  gint64 waited;
  g_autofree char *answer = try_password_timed (&f->d, alice, "alice", "wonderland", &waited);
  g_test_message ("%d guessers left alice's line; then alice: %s after %" G_GINT64_FORMAT " ms",
                  LEAVING_GUESSERS - 1, answer, waited);
  g_assert_cmpstr (answer, ==, "success");
  g_assert_cmpint (waited, <, 2 * LINE_DELAY_MS + LINE_DELAY_MS / 2);
  g_assert_cmpuint (count_lines (f->d.log->str + log0, LINE_FAILED), <=, 1);
  good_probe (f, FALSE);
}

/* ---- main ------------------------------------------------------------------ */

static const Limits slowloris_limits = { "auth_timeout = 2s\n", NULL };
static const Limits flood_limits = { "c2s_rate = 64K\nc2s_burst = 64K\n", NULL };
static const Limits noread_limits = { "max_output = 64K\nmax_output_hard = 4M\noutput_drain_timeout = 2s\n"
                                      "c2s_rate = 16M\nc2s_burst = 16M\n", NULL, TRUE };
static const Limits budget_limits = { "max_output = 256K\nmax_output_total = 2M\n"
                                      "output_drain_timeout = 10m\n"
                                      "c2s_rate = 16M\nc2s_burst = 16M\n", NULL, TRUE };
static const Limits reentry_limits = { "max_output = 64K\nmax_output_hard = 8M\nmax_output_total = 1M\n"
                                       "output_drain_timeout = 10m\n"
                                       "c2s_rate = 16M\nc2s_burst = 16M\n", NULL };
static const Limits bomb_limits = { "max_stanza_size = 64K\n", NULL };
static const Limits connflood_limits = { "max_connections_per_ip = 500\nauth_timeout = 3s\n", NULL };
static const Limits brute_limits = { NULL, "max_failures = 3\nmax_failures_per_address = 3\n"
                                           "failure_window = 5m\naccount_delay_max = 2s\n" };
static const Limits table_limits = { NULL, "max_failures = 1000\nmax_failures_per_address = 100000\n"
                                           "failure_window = 3s\nmax_failure_entries = 100\n" };
static const Limits nofd_limits = { NULL, NULL };
static const Limits line_limits = { NULL, "max_failures = 3\nmax_failures_per_address = 3\n"
                                          "failure_window = 5m\naccount_delay_max = 1s\n"
                                          "account_queue_max = 4\n" };
static const Limits dirty_limits = { NULL, "max_failures = 8\nmax_failures_per_address = 8\n"
                                           "failure_window = 5m\naccount_delay_max = 1s\n"
                                           "account_queue_max = 4\n" };

int
main (int argc, char **argv)
{
  raise_nofile ();
  g_test_init (&argc, &argv, NULL);
#define ADD(path, limits, func) \
  g_test_add (path, Fixture, &limits, setup, func, teardown)
  ADD ("/hostile/slowloris", slowloris_limits, test_slowloris);
  ADD ("/hostile/stanza-flood", flood_limits, test_stanza_flood);
  ADD ("/hostile/never-reading", noread_limits, test_never_reading);
  ADD ("/hostile/output-budget", budget_limits, test_output_budget);
  ADD ("/hostile/output-budget-reentry", reentry_limits, test_output_budget_reentry);
  ADD ("/hostile/xml/billion-laughs", bomb_limits, test_billion_laughs);
  ADD ("/hostile/xml/entity-reference", bomb_limits, test_entity_reference);
  ADD ("/hostile/xml/deep-nesting", bomb_limits, test_deep_nesting);
  ADD ("/hostile/xml/huge-stanza", bomb_limits, test_huge_stanza);
  ADD ("/hostile/xml/many-attributes", bomb_limits, test_many_attributes);
  ADD ("/hostile/connection-flood", connflood_limits, test_connection_flood);
  ADD ("/hostile/out-of-descriptors", nofd_limits, test_out_of_descriptors);
  ADD ("/hostile/sasl/brute-force", brute_limits, test_brute_force);
  ADD ("/hostile/sasl/brute-force-parallel", brute_limits, test_brute_force_parallel);
  ADD ("/hostile/sasl/parallel-logins", brute_limits, test_parallel_logins);
  ADD ("/hostile/sasl/spread-guessing", brute_limits, test_spread_guessing);
  ADD ("/hostile/sasl/failure-table", table_limits, test_failure_table);
  ADD ("/hostile/sasl/account-line-rate", line_limits, test_account_line_rate);
  ADD ("/hostile/sasl/account-line-known", line_limits, test_account_line_known);
  ADD ("/hostile/sasl/account-line-new-address", dirty_limits, test_account_line_new_address);
  ADD ("/hostile/sasl/account-line-leave", line_limits, test_account_line_leave);
#undef ADD
  return g_test_run ();
}
