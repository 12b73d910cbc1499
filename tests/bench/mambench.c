/* mambench: a MAM page query's latency on a large archive (issue 12).
 *
 *   mambench fill DB HOST USER N      appends N messages to USER@HOST's
 *                                     archive through the storage API
 *                                     (mynad stopped), as the mam module
 *                                     stores them (archive "mam/HOST",
 *                                     1 ms apart, 20 peers, ids from the
 *                                     timestamps)
 *                                     and prints BASE=… (the first
 *                                     item's timestamp)
 *   mambench query PORT HOST USER PASSWORD N ROUNDS BASE
 *                                     logs in over XMPP (PLAIN, no TLS) and
 *                                     times ROUNDS of each page query: the
 *                                     first page, a middle page (after-id
 *                                     of item N/2), the last page (RSM
 *                                     <before/>), and a with= filter (first
 *                                     page, then a middle page of it)
 *
 *   mambench append DB HOST OWNERS N BATCH
 *                                     the writer's cost alone: appends N
 *                                     messages round-robin over OWNERS
 *                                     accounts' archives (as the
 *                                     throughput scenario's pairs do),
 *                                     flushing every BATCH appends, and
 *                                     prints appends/s and the writer
 *                                     thread's CPU per append
 *
 * Prints "RESULT scenario=mam-page query=… p50_ms=… p99_ms=… results=…".
 * Not a test: see tests/bench/mam-bench.sh. */
#include <myna/storage.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STEP_US 1000
#define PAGE    50

static const char digits[] = "0123456789abcdefghijklmnopqrstuv";

/* The mam module's id of the item stored at @ts (13 base-32 digits). */
static char *
id_from_ts (gint64 ts)
{
  char *id = g_malloc (14);
  guint64 v = (guint64) ts;

  for (int i = 12; i >= 0; i--, v >>= 5)
    id[i] = digits[v & 31];
  id[13] = '\0';
  return id;
}

/* The timestamp of item @i of an archive of @n filled now-ish: the base
 * is kept in the kv store so the query side finds the same. */
static int
fill (const char *db, const char *host, const char *user, guint n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strconcat ("sqlite:", db, NULL);
  MynaStorage *storage = myna_storage_open (uri, &error);
  g_autofree char *archive = g_strconcat ("mam/", host, NULL);
  gint64 base = g_get_real_time () - (gint64) n * STEP_US - G_USEC_PER_SEC;
  g_autofree char *base_s = g_strdup_printf ("%" G_GINT64_FORMAT, base);
  gint64 t0 = g_get_monotonic_time ();

  if (storage == NULL)
    {
      fprintf (stderr, "mambench: %s\n", error->message);
      return 1;
    }
  myna_kv_set (storage, host, user, "mambench", "base", base_s, NULL, NULL, NULL);
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *with = g_strdup_printf ("peer%u@%s", i % 20, host);
      g_autofree char *data = g_strdup_printf (
        "<message type='chat' from='%s/r' to='%s@%s' id='m%u'><body>message %u of the "
        "archive, a line of ordinary length</body><stanza-id xmlns='urn:xmpp:sid:0' "
        "by='%s@%s' id='x'/></message>", with, user, host, i, i, user, host);

      myna_archive_append (storage, host, user, archive, with, base + (gint64) i * STEP_US,
                           data, NULL, NULL, NULL);
      if (i % 20000 == 19999)
        {
          if (!myna_storage_flush (storage, &error))
            {
              fprintf (stderr, "mambench: %s\n", error->message);
              return 1;
            }
          fprintf (stderr, "\r%u", i + 1);
        }
    }
  if (!myna_storage_flush (storage, &error))
    {
      fprintf (stderr, "mambench: %s\n", error->message);
      return 1;
    }
  myna_storage_close (storage);
  printf ("BASE=%s\n", base_s);
  fprintf (stderr, "\rfilled %u messages in %.1f s\n", n,
           (g_get_monotonic_time () - t0) / 1e6);
  return 0;
}

/* The CPU time of every thread of this process but the calling one, in
 * microseconds: the storage writer's, as nothing else runs. */
static gint64
others_cpu_us (void)
{
  struct timespec proc, self;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &proc);
  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &self);
  return (proc.tv_sec - self.tv_sec) * G_USEC_PER_SEC + (proc.tv_nsec - self.tv_nsec) / 1000;
}

/* Appends @n messages round-robin over @owners archives in batches of
 * @batch (each flushed before the next is queued). */
static int
append_bench (const char *db, const char *host, guint owners, guint n, guint batch)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strconcat ("sqlite:", db, NULL);
  MynaStorage *storage = myna_storage_open (uri, &error);
  g_autofree char *archive = g_strconcat ("mam/", host, NULL);
  gint64 t0 = g_get_monotonic_time (), cpu0 = others_cpu_us (), wall, cpu;

  if (storage == NULL)
    {
      fprintf (stderr, "mambench: %s\n", error->message);
      return 1;
    }
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *user = g_strdup_printf ("user%u", i % owners);
      g_autofree char *with = g_strdup_printf ("user%u@%s", (i + 1) % owners, host);
      g_autofree char *data = g_strdup_printf (
        "<message type='chat' from='%s/r' to='%s@%s' id='m%u'><body>message %u of the "
        "archive, a line of ordinary length</body><stanza-id xmlns='urn:xmpp:sid:0' "
        "by='%s@%s' id='x'/></message>", with, user, host, i, i, user, host);

      myna_archive_append (storage, host, user, archive, with, 0, data, NULL, NULL, NULL);
      if ((i + 1) % batch == 0 && !myna_storage_flush (storage, &error))
        {
          fprintf (stderr, "mambench: %s\n", error->message);
          return 1;
        }
    }
  if (!myna_storage_flush (storage, &error))
    {
      fprintf (stderr, "mambench: %s\n", error->message);
      return 1;
    }
  wall = g_get_monotonic_time () - t0;
  cpu = others_cpu_us () - cpu0;
  myna_storage_close (storage);
  printf ("RESULT scenario=mam-append owners=%u n=%u batch=%u appends_per_s=%.0f "
          "writer_cpu_us_per_append=%.2f\n", owners, n, batch, n / (wall / 1e6),
          (double) cpu / n);
  return 0;
}

/* ---- a minimal client ------------------------------------------------------ */

typedef struct {
  int      fd;
  GString *in;
} Conn;

static void
conn_send (Conn *c, const char *s)
{
  gsize len = strlen (s), off = 0;

  while (off < len)
    {
      ssize_t k = send (c->fd, s + off, len - off, MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR)
        continue;
      if (k <= 0)
        {
          perror ("send");
          exit (1);
        }
      off += (gsize) k;
    }
}

/* Reads until @needle, then until @end after it; returns the offset just
 * past @end and leaves the input as it is. */
static gsize
conn_wait (Conn *c, const char *needle, const char *end)
{
  char buf[65536];

  for (;;)
    {
      const char *p = strstr (c->in->str, needle);
      const char *e = p != NULL ? strstr (p, end) : NULL;
      if (e != NULL)
        return (gsize) (e - c->in->str) + strlen (end);
      struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
      if (poll (&pfd, 1, 30000) <= 0)
        {
          fprintf (stderr, "mambench: timeout waiting for %s; have %.500s\n", needle, c->in->str);
          exit (1);
        }
      ssize_t k = recv (c->fd, buf, sizeof buf, 0);
      if (k <= 0)
        {
          fprintf (stderr, "mambench: connection closed; have %.500s\n", c->in->str);
          exit (1);
        }
      g_string_append_len (c->in, buf, k);
    }
}

static void
conn_login (Conn *c, int port, const char *host, const char *user, const char *password)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (port) };
  int one = 1;
  g_autofree char *open = g_strdup_printf (
    "<?xml version='1.0'?><stream:stream to='%s' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", host);
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, 2 + strlen (user) + strlen (password));
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  c->fd = socket (AF_INET, SOCK_STREAM, 0);
  if (connect (c->fd, (struct sockaddr *) &sa, sizeof sa) != 0)
    {
      perror ("connect");
      exit (1);
    }
  setsockopt (c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->in = g_string_new (NULL);
  conn_send (c, open);
  conn_wait (c, "<stream:features", "</stream:features>");
  g_string_truncate (c->in, 0);
  conn_send (c, auth);
  conn_wait (c, "<success", ">");
  g_string_truncate (c->in, 0);
  conn_send (c, open);
  conn_wait (c, "<stream:features", "</stream:features>");
  g_string_truncate (c->in, 0);
  conn_send (c, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<resource>bench</resource></bind></iq>");
  conn_wait (c, "id='b'", "</iq>");
  g_string_truncate (c->in, 0);
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* Times @rounds of one query (@fields: form fields; @rsm: <set/> children). */
static void
time_query (Conn *c, const char *name, const char *fields, const char *rsm, guint rounds)
{
  g_autofree double *ms = g_new (double, rounds);
  guint results = 0;

  for (guint r = 0; r < rounds; r++)
    {
      static guint serial;
      g_autofree char *id = g_strdup_printf ("q%u", ++serial);
      g_autofree char *iq = g_strdup_printf (
        "<iq type='set' id='%s'><query xmlns='urn:xmpp:mam:2' queryid='%s'>"
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
        "<value>urn:xmpp:mam:2</value></field>%s</x>"
        "<set xmlns='http://jabber.org/protocol/rsm'>%s</set></query></iq>", id, id, fields, rsm);
      g_autofree char *needle = g_strdup_printf ("<fin xmlns='urn:xmpp:mam:2' queryid='%s'", id);
      gint64 t0 = g_get_monotonic_time ();
      gsize end;

      conn_send (c, iq);
      end = conn_wait (c, needle, "</iq>");
      ms[r] = (g_get_monotonic_time () - t0) / 1000.0;
      if (strstr (c->in->str, "type='error'") != NULL)
        {
          fprintf (stderr, "mambench: %s: error: %.500s\n", name, c->in->str);
          exit (1);
        }
      results = 0;
      for (const char *p = c->in->str; (p = strstr (p, "<result ")) != NULL; p++)
        results++;
      g_string_erase (c->in, 0, (gssize) end);
    }
  qsort (ms, rounds, sizeof *ms, cmp_double);
  printf ("RESULT scenario=mam-page query=%s rounds=%u results=%u p50_ms=%.2f p99_ms=%.2f "
          "max_ms=%.2f\n", name, rounds, results, ms[rounds / 2],
          ms[MIN (rounds - 1, (guint) (rounds * 0.99))], ms[rounds - 1]);
  fflush (stdout);
}

static int
query (int port, const char *host, const char *user, const char *password, guint n,
       guint rounds, const char *base_s)
{
  Conn c = { 0 };
  gint64 base = g_ascii_strtoll (base_s, NULL, 10);
  g_autofree char *mid = id_from_ts (base + (gint64) (n / 2) * STEP_US);
  g_autofree char *after_mid = g_strdup_printf ("<max>%d</max><after>%s</after>", PAGE, mid);
  g_autofree char *before_mid = g_strdup_printf ("<max>%d</max><before>%s</before>", PAGE, mid);
  g_autofree char *with = g_strdup_printf ("<field var='with'><value>peer7@%s</value></field>",
                                           host);
  g_autofree char *max = g_strdup_printf ("<max>%d</max>", PAGE);
  g_autofree char *last = g_strdup_printf ("<max>%d</max><before/>", PAGE);

  conn_login (&c, port, host, user, password);
  time_query (&c, "first-page", "", max, rounds);
  time_query (&c, "middle-page-after-id", "", after_mid, rounds);
  time_query (&c, "middle-page-before-id", "", before_mid, rounds);
  time_query (&c, "last-page", "", last, rounds);
  time_query (&c, "with-first-page", with, max, rounds);
  time_query (&c, "with-middle-page", with, after_mid, rounds);
  close (c.fd);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 6 && strcmp (argv[1], "fill") == 0)
    return fill (argv[2], argv[3], argv[4], (guint) strtoul (argv[5], NULL, 10));
  if (argc == 7 && strcmp (argv[1], "append") == 0)
    return append_bench (argv[2], argv[3], (guint) strtoul (argv[4], NULL, 10),
                         (guint) strtoul (argv[5], NULL, 10), (guint) strtoul (argv[6], NULL, 10));
  if (argc == 9 && strcmp (argv[1], "query") == 0)
    return query (atoi (argv[2]), argv[3], argv[4], argv[5], (guint) strtoul (argv[6], NULL, 10),
                  (guint) strtoul (argv[7], NULL, 10), argv[8]);
  fprintf (stderr, "usage: mambench fill DB HOST USER N\n"
                   "       mambench append DB HOST OWNERS N BATCH\n"
                   "       mambench query PORT HOST USER PASSWORD N ROUNDS BASE\n");
  return 2;
}
