/* test-stream: a real mynad driven over raw sockets — stream negotiation,
 * every kind of forbidden XML ending in the right stream error and a
 * closed connection while other connections keep working, mynactl against
 * the running server, an admin client too slow to read its answer, and the
 * signals. */
#include "mynad-harness.h"

#include <myna/storage.h>
#include <sys/stat.h>
#include <sys/un.h>

typedef struct {
  Mynad d;
} Fixture;

static void
setup (Fixture *f, gconstpointer extra)
{
  mynad_start (&f->d, extra);
}

static void
teardown (Fixture *f, gconstpointer unused)
{
  g_assert_cmpint (mynad_stop (&f->d), ==, 0);
}

/* The id of the stream header in @c's input. */
static char *
stream_id_of (Client *c)
{
  const char *h = strstr (c->in->str, "<stream:stream");
  const char *id = h != NULL ? strstr (h, " id='") : NULL;
  const char *end = id != NULL ? strchr (id + 5, '\'') : NULL;

  g_assert_nonnull (end);
  return g_strndup (id + 5, (gsize) (end - id - 5));
}

static void
test_features (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);
  g_autoptr(Client) other = client_open_stream (&f->d);
  g_autofree char *id = stream_id_of (c);
  g_autofree char *other_id = stream_id_of (other);

  /* Stream ids: 128 random bits in hex, never the same twice. */
  g_assert_cmpuint (strlen (id), ==, 32);
  g_assert_cmpuint (strspn (id, "0123456789abcdef"), ==, 32);
  g_assert_cmpstr (id, !=, other_id);

  g_assert_nonnull (strstr (c->in->str, "<stream:stream"));
  g_assert_nonnull (strstr (c->in->str, "from='localhost'"));
  g_assert_nonnull (strstr (c->in->str, "version='1.0'"));
  g_assert_nonnull (strstr (c->in->str, "xmlns='jabber:client'"));
  g_assert_nonnull (strstr (c->in->str, " id='"));
  g_assert_true (client_is_open (c));
  /* Whitespace keepalives are fine. */
  client_send (c, "  \n ");
  g_assert_true (client_is_open (c));
  /* A clean close is answered with a close. */
  client_send (c, "</stream:stream>");
  g_assert_true (client_expect (c, "</stream:stream>"));
  g_assert_true (client_expect_closed (c));
}

static void
expect_stream_error (Client *c, const char *condition)
{
  g_autofree char *needle = g_strdup_printf ("<%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
                                             condition);
  g_assert_true (client_expect (c, "<stream:error>"));
  g_assert_true (client_expect (c, needle));
  g_assert_true (client_expect (c, "</stream:stream>"));
  g_assert_true (client_expect_closed (c));
}

static void
test_host_unknown (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_connect (&f->d);

  client_send (c, STREAM_OPEN ("nowhere.example"));
  expect_stream_error (c, "host-unknown");
  /* The error still comes inside an opened stream. */
  g_assert_nonnull (strstr (c->in->str, "<stream:stream"));
}

static void
test_invalid_namespace (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_connect (&f->d);

  client_send (c, "<stream:stream to='localhost' xmlns='jabber:server' "
                  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  expect_stream_error (c, "invalid-namespace");
}

static void
test_stanza_before_auth (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  client_send (c, "<message to='someone@localhost'><body>hi</body></message>");
  expect_stream_error (c, "not-authorized");
}

typedef struct {
  const char *name;
  const char *payload;
  const char *condition;
} Forbidden;

static char *
deep_nesting (guint depth)
{
  GString *s = g_string_new ("<message>");
  for (guint i = 0; i < depth; i++)
    g_string_append (s, "<a>");
  for (guint i = 0; i < depth; i++)
    g_string_append (s, "</a>");
  g_string_append (s, "</message>");
  return g_string_free (s, FALSE);
}

static char *
many_attrs (guint n)
{
  GString *s = g_string_new ("<message");
  for (guint i = 0; i < n; i++)
    g_string_append_printf (s, " a%u='x'", i);
  g_string_append (s, "/>");
  return g_string_free (s, FALSE);
}

static void
test_forbidden_xml (Fixture *f, gconstpointer unused)
{
  g_autofree char *deep = deep_nesting (200);
  g_autofree char *attrs = many_attrs (500);
  g_autofree char *big = g_strnfill (64 * 1024, 'x');
  g_autofree char *oversize = g_strdup_printf ("<message><body>%s</body></message>", big);
  const Forbidden cases[] = {
    { "comment", "<!-- hello -->", "restricted-xml" },
    { "pi", "<?evil instruction?>", "restricted-xml" },
    { "entity", "<message><body>&custom;</body></message>", "restricted-xml" },
    { "not-well-formed", "<message><body></message>", "not-well-formed" },
    { "bad-char", "<message><body>\x01</body></message>", "not-well-formed" },
    { "deep", deep, "policy-violation" },
    { "attrs", attrs, "policy-violation" },
    { "oversize", oversize, "policy-violation" },
  };
  /* A bystander opened first must keep working throughout. */
  g_autoptr(Client) bystander = client_open_stream (&f->d);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("forbidden: %s", cases[i].name);
      g_autoptr(Client) c = client_open_stream (&f->d);
      client_send (c, cases[i].payload);
      expect_stream_error (c, cases[i].condition);
      g_assert_true (client_is_open (bystander));
    }
  /* A DTD can only come before the stream header. */
  {
    g_autoptr(Client) c = client_connect (&f->d);
    client_send (c, "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]>"
                    "<stream:stream to='localhost' xmlns='jabber:client' "
                    "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    expect_stream_error (c, "restricted-xml");
  }
  /* The bystander still gets answers and a new stream still works. */
  g_assert_true (client_is_open (bystander));
  client_send (bystander, "</stream:stream>");
  g_assert_true (client_expect (bystander, "</stream:stream>"));
  g_autoptr(Client) fresh = client_open_stream (&f->d);
  g_assert_true (client_is_open (fresh));
  g_assert_true (mynad_wait_log (&f->d, "stream error <policy-violation/>", WAIT_MS));
}

static void
test_auth_timeout (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);
  expect_stream_error (c, "connection-timeout");
}

/* ---- mynactl -------------------------------------------------------------- */

static void
test_mynactl (Fixture *f, gconstpointer unused)
{
  g_autofree char *out = NULL, *out2 = NULL, *out3 = NULL, *out4 = NULL, *out5 = NULL;
  g_autoptr(Client) c = client_open_stream (&f->d);
  g_autofree char *sock = g_build_filename (f->d.dir, "mynad.sock", NULL);
  struct stat st;

  g_assert_cmpint (stat (sock, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  g_assert_cmpint (mynactl (&f->d, &out, "modules", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "version 1.0 lazy (not loaded)"));
  g_assert_nonnull (strstr (out, "disco 1.0 eager localhost"));
  g_assert_cmpint (mynactl (&f->d, &out2, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (out2, "ns localhost jabber:iq:version -> version (lazy, not loaded)"));
  g_assert_nonnull (strstr (out2, "iq localhost get http://jabber.org/protocol/disco#info query -> disco"));

  g_assert_cmpint (mynactl (&f->d, &out3, "load", "version", NULL), ==, 0);
  g_assert_cmpint (mynactl (&f->d, &out4, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (out4, "iq localhost get jabber:iq:version query -> version"));
  g_clear_pointer (&out3, g_free);
  g_assert_cmpint (mynactl (&f->d, &out3, "reload", "version", NULL), ==, 0);
  g_clear_pointer (&out3, g_free);
  g_assert_cmpint (mynactl (&f->d, &out3, "unload", "version", NULL), ==, 0);
  g_clear_pointer (&out3, g_free);
  g_assert_cmpint (mynactl (&f->d, &out3, "unload", "version", NULL), ==, 1);
  g_assert_nonnull (strstr (out3, "ERR"));
  g_clear_pointer (&out3, g_free);
  g_assert_cmpint (mynactl (&f->d, &out3, "load", "nosuch", NULL), ==, 1);
  g_assert_nonnull (strstr (out3, "no module named 'nosuch'"));
  g_clear_pointer (&out3, g_free);
  g_assert_cmpint (mynactl (&f->d, &out3, "load", "badabi", NULL), ==, 1);
  g_assert_nonnull (strstr (out3, "ABI"));
  g_assert_cmpint (mynactl (&f->d, &out5, "stats", NULL), ==, 0);
  g_assert_nonnull (strstr (out5, "connections 1"));
  /* The connection lived through all of it. */
  g_assert_true (client_is_open (c));
  client_send (c, "</stream:stream>");
  g_assert_true (client_expect (c, "</stream:stream>"));
}

/* Enough accounts that `user list` answers over a megabyte: more than a
 * UNIX socket buffers, so the server must wait for the reader. */
#define SLOW_USERS 50000

/* Seeds the account index of a server not started yet (the layout is
 * accounts.c's: (host, "", "accounts", user) → "1"). */
static void
seed_account_index (const char *dir, guint n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = g_strdup_printf ("sqlite:%s/myna.db", dir);
  g_autoptr(MynaStorage) st = myna_storage_open (uri, &error);

  g_assert_no_error (error);
  for (guint i = 0; i < n; i++)
    {
      char user[32];
      g_snprintf (user, sizeof user, "user%05u", i);
      myna_kv_set (st, "localhost", "", "accounts", user, "1", NULL, NULL, NULL);
    }
  g_assert_true (myna_storage_flush (st, &error));
}

static int
admin_connect (Mynad *d)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  g_autofree char *path = g_build_filename (d->dir, "mynad.sock", NULL);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

  g_strlcpy (sa.sun_path, path, sizeof sa.sun_path);
  g_assert_cmpint (connect (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  return fd;
}

/* Reads @fd to its end, within WAIT_MS. */
static GString *
admin_read_all (int fd)
{
  GString *all = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  char buf[65536];

  for (;;)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || poll (&p, 1, left) <= 0)
        g_error ("the admin answer did not end in time (%" G_GSIZE_FORMAT " bytes)", all->len);
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      if (n <= 0)
        return all;
      g_string_append_len (all, buf, n);
    }
}

/* A client that sends `user list` and does not read: the server queues the
 * answer instead of waiting for the socket, so an XMPP session is served
 * meanwhile; the whole answer arrives once the client reads. */
static void
test_admin_slow_reader (void)
{
  Mynad d = { 0 };

  mynad_prepare (&d, MYNAD_PLAIN_AUTH);
  seed_account_index (d.dir, SLOW_USERS);
  mynad_spawn (&d);
  mynad_add_user (&d, "alice", "wonderland");
  g_autoptr(Client) c = client_login (&d, "alice", "wonderland", "r");
  g_assert_nonnull (c);

  int fd = admin_connect (&d);
  g_assert_cmpint (send (fd, "user list\n", 10, MSG_NOSIGNAL), ==, 10);
  g_assert_true (mynad_wait_log (&d, "bytes of the answer wait for the client", WAIT_MS));
  /* The admin client reads nothing yet; the session is answered. */
  client_send (c, "<iq type='get' id='ping1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (c, "id='ping1'"));
  g_assert_nonnull (strstr (c->in->str, "type='result'"));

  g_autoptr(GString) answer = admin_read_all (fd);
  close (fd);
  g_assert_true (g_str_has_suffix (answer->str, "\nOK\n"));
  g_assert_true (g_str_has_prefix (answer->str, "alice@localhost\nuser00000@localhost\n"));
  g_assert_nonnull (strstr (answer->str, "\nuser49999@localhost\n"));
  guint lines = 0;
  for (const char *p = answer->str; (p = strchr (p, '\n')) != NULL; p++)
    lines++;
  g_assert_cmpuint (lines, ==, SLOW_USERS + 2);   /* the users, alice, OK */
  /* The session is still fine after the answer went out. */
  client_send (c, "<iq type='get' id='ping2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
  g_assert_true (client_expect (c, "id='ping2'"));
  g_assert_cmpint (mynad_stop (&d), ==, 0);
}

static void
test_check_config (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("mynactl-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "bad.conf", NULL);
  g_autofree char *tool = build_path ("core/mynactl");
  g_autofree char *out = NULL;

  g_file_set_contents (path, "[global]\nmax_depth = many\nfrobnicate = 1\n"
                             "[host:localhost]\n", -1, &error);
  g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, tool,
                                               "check-config", path, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, &error);
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 1);
  g_autofree char *l2 = g_strdup_printf ("%s:2: error:", path);
  g_autofree char *l3 = g_strdup_printf ("%s:3: warning: unknown key 'frobnicate'", path);
  g_assert_nonnull (strstr (out, l2));
  g_assert_nonnull (strstr (out, l3));
  mynad_rm_rf (dir);
}

/* check-config checks every module the file enables from its manifest
 * alone, lazy ones included: values set for their keys, and the defaults
 * they declare. */
static void
test_check_config_lazy_modules (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("mynactl-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "lazy.conf", NULL);
  g_autofree char *manifest = g_build_filename (dir, "lazybad.module", NULL);
  g_autofree char *tool = build_path ("core/mynactl");
  g_autofree char *conf = g_strdup_printf ("[global]\nmodule_path = %s\n"
                                           "modules = lazytest;lazybad\n"
                                           "[host:localhost]\n"
                                           "[module:lazytest]\nlimit = many\n", dir);
  g_autofree char *out = NULL;

  /* A lazy module's manifest only (nothing is opened): its key's default
   * is no integer. */
  g_file_set_contents (manifest, "[module]\nname=lazybad\nabi=2\nserves=urn:lazybad;\n"
                                 "mode=lazy\n[config:depth]\ntype=int\ndefault=deep\n",
                       -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (path, conf, -1, &error);
  g_assert_no_error (error);
  g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, tool,
                                               "check-config", path, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, &error);
  g_test_message ("%s", out);
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 1);
  g_autofree char *l3 = g_strdup_printf ("%s:3: error: [global] modules: module 'lazybad' "
                                         "declares key 'depth' with an invalid default", path);
  g_autofree char *l6 = g_strdup_printf ("%s:6: error: [module:lazytest] limit: 'many'", path);
  g_assert_nonnull (strstr (out, l3));
  g_assert_nonnull (strstr (out, l6));
  mynad_rm_rf (dir);
}

static void
test_shipped_config_checks (void)
{
  g_autofree char *tool = build_path ("core/mynactl");
  g_autofree char *conf = g_build_filename (g_getenv ("MYNA_SOURCE_ROOT"), "conf", "myna.conf", NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, tool,
                                               "check-config", conf, NULL);
  g_subprocess_communicate_utf8 (p, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 0);
  g_assert_nonnull (strstr (out, "0 error(s), 0 warning(s)"));
}

/* ---- signals -------------------------------------------------------------- */

static void
test_sighup_reloads (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  g_autofree char *conf = NULL, *routes = NULL, *routes2 = NULL;
  g_autoptr(GError) error = NULL;

  /* Enable one module and disable another, then SIGHUP. */
  g_file_get_contents (f->d.conf_path, &conf, NULL, &error);
  g_assert_no_error (error);
  g_autoptr(GString) edited = g_string_new (conf);
  g_assert_cmpuint (g_string_replace (edited, "modules = disco;ping;version;auth;bind",
                                      "modules = disco;ping;auth;bind;lazytest", 1), ==, 1);
  g_file_set_contents (f->d.conf_path, edited->str, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (mynactl (&f->d, &routes, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (routes, "jabber:iq:version -> version"));
  g_subprocess_send_signal (f->d.proc, SIGHUP);
  g_assert_true (mynad_wait_log (&f->d, "configuration reloaded", WAIT_MS));
  g_assert_true (client_is_open (c));
  g_assert_cmpint (mynactl (&f->d, &routes2, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (routes2, "urn:myna:test:lazy -> lazytest"));
  g_assert_null (strstr (routes2, "jabber:iq:version"));
}

/* Writes the instance's config with its module list @from replaced by
 * @to and @tail appended; returns the line @tail starts on. */
static guint
edit_config (Fixture *f, const char *from, const char *to, const char *tail)
{
  g_autofree char *conf = NULL;
  g_autoptr(GError) error = NULL;
  guint line = 1;

  g_file_get_contents (f->d.conf_path, &conf, NULL, &error);
  g_assert_no_error (error);
  g_autoptr(GString) edited = g_string_new (conf);
  g_assert_cmpuint (g_string_replace (edited, from, to, 1), ==, 1);
  if (edited->str[edited->len - 1] != '\n')
    g_string_append_c (edited, '\n');
  for (const char *p = edited->str; *p != '\0'; p++)
    line += *p == '\n';
  g_string_append (edited, tail);
  g_file_set_contents (f->d.conf_path, edited->str, -1, &error);
  g_assert_no_error (error);
  return line;
}

/* mynactl reload-config refuses a file with errors as a whole: the answer
 * lists each error with file:line, and the running configuration stays
 * (version is still routed, the lazytest module still absent). */
static void
test_reload_config_refuses_bad_file (Fixture *f, gconstpointer unused)
{
  g_autofree char *answer = NULL, *routes = NULL, *routes2 = NULL;
  guint line = edit_config (f, "modules = disco;ping;version;auth;bind",
                            "modules = disco;ping;auth;bind;lazytest",
                            "[module:ping]\nkeepalive_interval = forever\n");
  g_autofree char *needle = g_strdup_printf ("%s:%u: error: [module:ping] keepalive_interval",
                                             f->d.conf_path, line + 1);

  g_assert_cmpint (mynactl (&f->d, &answer, "reload-config", NULL), ==, 1);
  g_test_message ("%s", answer);
  g_assert_nonnull (strstr (answer, needle));
  g_assert_nonnull (strstr (answer, "\nERR "));
  g_assert_nonnull (strstr (answer, "configuration not reloaded"));
  g_assert_cmpint (mynactl (&f->d, &routes, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (routes, "jabber:iq:version -> version"));
  g_assert_null (strstr (routes, "lazytest"));

  /* Fixed, the same edit is accepted. */
  edit_config (f, "keepalive_interval = forever", "keepalive_interval = 10m", "");
  g_clear_pointer (&answer, g_free);
  g_assert_cmpint (mynactl (&f->d, &answer, "reload-config", NULL), ==, 0);
  g_assert_cmpint (mynactl (&f->d, &routes2, "routes", NULL), ==, 0);
  g_assert_null (strstr (routes2, "jabber:iq:version"));
  g_assert_nonnull (strstr (routes2, "urn:myna:test:lazy -> lazytest"));
}

/* SIGHUP with a bad file: each error is logged with file:line, and the
 * running configuration stays. */
static void
test_sighup_refuses_bad_file (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);
  g_autofree char *routes = NULL, *conf = NULL;
  guint line = 1;

  edit_config (f, "modules = disco;ping;version;auth;bind",
               "modules = disco;ping;auth;bind;lazytest;nosuch", "");
  g_file_get_contents (f->d.conf_path, &conf, NULL, NULL);
  for (const char *p = conf; p < strstr (conf, "modules = "); p++)
    line += *p == '\n';
  g_autofree char *needle = g_strdup_printf ("SIGHUP: %s:%u: error: [global] modules: no module "
                                             "named 'nosuch'", f->d.conf_path, line);

  g_subprocess_send_signal (f->d.proc, SIGHUP);
  g_assert_true (mynad_wait_log (&f->d, "configuration not reloaded", WAIT_MS));
  g_assert_nonnull (strstr (f->d.log->str, needle));
  g_assert_true (client_is_open (c));
  g_assert_cmpint (mynactl (&f->d, &routes, "routes", NULL), ==, 0);
  g_assert_nonnull (strstr (routes, "jabber:iq:version -> version"));
  g_assert_null (strstr (routes, "lazytest"));
}

static void
test_sigterm_graceful (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) c = client_open_stream (&f->d);

  g_subprocess_send_signal (f->d.proc, SIGTERM);
  expect_stream_error (c, "system-shutdown");
  /* teardown checks the exit status is 0 */
}

/* One counter of `mynactl stats`. */
static guint64
stats_counter (Mynad *d, const char *name)
{
  g_autofree char *out = NULL;
  g_autofree char *needle = g_strdup_printf ("\n%s ", name);
  const char *at;

  g_assert_cmpint (mynactl (d, &out, "stats", NULL), ==, 0);
  at = strstr (out, needle);
  g_assert_nonnull (at);
  return g_ascii_strtoull (at + strlen (needle), NULL, 10);
}

/* A stream silent for a second loses its parser to the sweep, and takes
 * up where it was on its next bytes; a busy one keeps its parser. */
static void
test_idle_parser_released (Fixture *f, gconstpointer unused)
{
  g_autoptr(Client) idle = client_open_stream (&f->d);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;

  g_assert_cmpuint (stats_counter (&f->d, "parsers_released"), ==, 0);
  while (stats_counter (&f->d, "parsers_released") == 0
         && g_get_monotonic_time () < deadline)
    client_read (idle, 200);
  g_assert_cmpuint (stats_counter (&f->d, "parsers_released"), ==, 1);

  /* The stream goes on from where it was: a stanza before authentication
   * is still refused the same way. */
  client_send (idle, "<message to='someone@localhost'><body>hi</body></message>");
  expect_stream_error (idle, "not-authorized");
}

#define ADD(path, func, extra) \
  g_test_add (path, Fixture, extra, setup, func, teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ADD ("/stream/features", test_features, NULL);
  ADD ("/stream/host-unknown", test_host_unknown, NULL);
  ADD ("/stream/invalid-namespace", test_invalid_namespace, NULL);
  ADD ("/stream/stanza-before-auth", test_stanza_before_auth, NULL);
  ADD ("/stream/forbidden-xml", test_forbidden_xml, NULL);
  ADD ("/stream/auth-timeout", test_auth_timeout, "auth_timeout = 1s\n");
  ADD ("/admin/mynactl", test_mynactl, NULL);
  ADD ("/stream/idle-parser-released", test_idle_parser_released, NULL);
  ADD ("/signals/sighup", test_sighup_reloads, NULL);
  ADD ("/signals/sigterm", test_sigterm_graceful, NULL);
  ADD ("/signals/sighup-refuses-bad-file", test_sighup_refuses_bad_file, NULL);
  ADD ("/admin/reload-config-refuses-bad-file", test_reload_config_refuses_bad_file, NULL);
  g_test_add_func ("/admin/check-config-lazy-modules", test_check_config_lazy_modules);
  g_test_add_func ("/admin/check-config", test_check_config);
  g_test_add_func ("/admin/slow-reader", test_admin_slow_reader);
  g_test_add_func ("/admin/shipped-config", test_shipped_config_checks);
  return g_test_run ();
}
