/* mynad-harness.h: runs a real mynad for integration tests — a temporary
 * data directory, an inline configuration on a free 127.0.0.1 port — and
 * raw-socket clients that wait for what they expect with a bounded
 * timeout, never a blind sleep. */
#pragma once

#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#define WAIT_MS 10000

typedef struct {
  GSubprocess *proc;
  char        *dir;
  char        *conf_path;
  guint16      port;
  GString     *log;
  GDataInputStream *err;
  const char  *modules;      /* NULL: MYNAD_DEFAULT_MODULES */
} Mynad;

/* Every built-in module the tree has; tests may set Mynad.modules. */
#ifndef MYNAD_DEFAULT_MODULES
#define MYNAD_DEFAULT_MODULES "disco;ping;version;auth;bind"
#endif
/* Appended by tests that log in: PLAIN over plain TCP on loopback. */
#define MYNAD_PLAIN_AUTH "[module:auth]\nallow_plain_insecure = true\n"

static inline void
mynad_rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        mynad_rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

static inline guint16
free_port (void)
{
  struct sockaddr_in sa = { .sin_family = AF_INET };
  socklen_t sl = sizeof sa;
  int fd = socket (AF_INET, SOCK_STREAM, 0);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  getsockname (fd, (struct sockaddr *) &sa, &sl);
  close (fd);
  return ntohs (sa.sin_port);
}

static inline char *
build_path (const char *rel)
{
  return g_build_filename (g_getenv ("MYNA_BUILD_ROOT"), rel, NULL);
}

/* Reads every complete log line mynad has written so far, without
 * waiting: a test that keeps mynad busy calls it so that mynad never
 * blocks on a full stderr pipe. */
static inline void
mynad_log_drain (Mynad *d)
{
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (d->err));
  int fd = g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (base));

  for (;;)
    {
      struct pollfd p = { .fd = fd, .events = POLLIN };

      if (g_buffered_input_stream_get_available (G_BUFFERED_INPUT_STREAM (d->err)) == 0
          && (poll (&p, 1, 0) <= 0 || !(p.revents & POLLIN)))
        return;
      g_autofree char *line = g_data_input_stream_read_line (d->err, NULL, NULL, NULL);
      if (line == NULL)
        return;
      g_string_append_printf (d->log, "%s\n", line);
      if (g_getenv ("MYNA_TEST_VERBOSE") != NULL)
        g_printerr ("mynad| %s\n", line);
    }
}

/* Reads mynad's log lines until one contains @needle or the time is up. */
static inline gboolean
mynad_wait_log (Mynad *d, const char *needle, guint ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;

  while (strstr (d->log->str, needle) == NULL)
    {
      GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (d->err));
      int fd = g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (base));
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      struct pollfd p = { .fd = fd, .events = POLLIN };

      /* The data stream may already hold buffered lines. */
      if (g_buffered_input_stream_get_available (G_BUFFERED_INPUT_STREAM (d->err)) == 0)
        {
          if (left <= 0 || poll (&p, 1, (int) left) <= 0)
            return FALSE;
        }
      g_autofree char *line = g_data_input_stream_read_line (d->err, NULL, NULL, NULL);
      if (line == NULL)
        return strstr (d->log->str, needle) != NULL;
      g_string_append_printf (d->log, "%s\n", line);
      if (g_getenv ("MYNA_TEST_VERBOSE") != NULL)
        g_printerr ("mynad| %s\n", line);
    }
  return TRUE;
}

static inline void
mynad_child_setup (gpointer unused)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Starts mynad on d->conf_path and waits until it says it started. */
static inline void
mynad_spawn (Mynad *d)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *mynad = build_path ("core/mynad");
  /* mynad dies with the test, whatever happens to the test. */
  g_autoptr(GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE);

  g_subprocess_launcher_set_child_setup (launcher, mynad_child_setup, NULL, NULL);
  d->proc = g_subprocess_launcher_spawn (launcher, &error, mynad, "-c", d->conf_path, NULL);
  g_assert_no_error (error);
  d->err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (d->proc));
  if (!mynad_wait_log (d, "started", WAIT_MS))
    g_error ("mynad did not start:\n%s", d->log->str);
}

/* Writes the configuration and creates the data directory without
 * starting mynad (a test may seed the data directory first). */
static inline void
mynad_prepare (Mynad *d, const char *extra)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *testmods = build_path ("tests/modules");

  d->dir = g_dir_make_tmp ("mynad-test-XXXXXX", &error);
  g_assert_no_error (error);
  d->port = free_port ();
  d->log = g_string_new (NULL);
  g_autofree char *conf = g_strdup_printf (
      "[global]\n"
      "data_dir = %s\n"
      "module_path = %s\n"
      "log_level = debug\n"
      "c2s_require_encryption = false\n"
      "scram_iterations = 4096\n"
      "modules = %s\n"
      "%s\n"
      "[listener:c2s]\n"
      "address = 127.0.0.1\n"
      "port = %u\n"
      "[host:localhost]\n",
      d->dir, testmods, d->modules != NULL ? d->modules : MYNAD_DEFAULT_MODULES,
      extra != NULL ? extra : "", d->port);
  d->conf_path = g_build_filename (d->dir, "myna.conf", NULL);
  g_file_set_contents (d->conf_path, conf, -1, &error);
  g_assert_no_error (error);
}

static inline void
mynad_start (Mynad *d, const char *extra)
{
  mynad_prepare (d, extra);
  mynad_spawn (d);
}

/* Stops mynad gracefully and starts it again on the same configuration,
 * data directory and port. */
static inline void
mynad_restart (Mynad *d)
{
  char *rest;

  g_subprocess_send_signal (d->proc, SIGTERM);
  mynad_wait_log (d, "stopped", WAIT_MS);
  while ((rest = g_data_input_stream_read_line (d->err, NULL, NULL, NULL)) != NULL)
    {
      g_string_append_printf (d->log, "%s\n", rest);
      g_free (rest);
    }
  g_subprocess_wait (d->proc, NULL, NULL);
  if (!g_subprocess_get_if_exited (d->proc) || g_subprocess_get_exit_status (d->proc) != 0)
    g_error ("mynad did not stop cleanly for the restart:\n%s", d->log->str);
  g_clear_object (&d->err);
  g_clear_object (&d->proc);
  g_string_truncate (d->log, 0);
  mynad_spawn (d);
}

/* Kills mynad with SIGKILL (no flush, no shutdown: a crash), then starts
 * it again on the same configuration and data directory. */
static inline void
mynad_kill_restart (Mynad *d)
{
  g_subprocess_send_signal (d->proc, SIGKILL);
  g_subprocess_wait (d->proc, NULL, NULL);
  g_assert_true (g_subprocess_get_if_signaled (d->proc));
  g_assert_cmpint (g_subprocess_get_term_sig (d->proc), ==, SIGKILL);
  g_clear_object (&d->err);
  g_clear_object (&d->proc);
  g_string_truncate (d->log, 0);
  mynad_spawn (d);
}

/* SIGTERM, then waits for exit; returns the exit status. */
static inline int
mynad_stop (Mynad *d)
{
  int status = -1;

  if (d->proc != NULL)
    {
      g_subprocess_send_signal (d->proc, SIGTERM);
      mynad_wait_log (d, "stopped", WAIT_MS);
      /* Whatever it printed last (sanitizer reports included) goes to the log. */
      char *rest;
      while ((rest = g_data_input_stream_read_line (d->err, NULL, NULL, NULL)) != NULL)
        {
          g_string_append_printf (d->log, "%s\n", rest);
          g_free (rest);
        }
      g_subprocess_wait (d->proc, NULL, NULL);
      status = g_subprocess_get_if_exited (d->proc) ? g_subprocess_get_exit_status (d->proc) : -1;
      if (status != 0)
        g_test_message ("mynad exited with %d; its log:\n%s", status, d->log->str);
      g_clear_object (&d->err);
      g_clear_object (&d->proc);
    }
  mynad_rm_rf (d->dir);
  g_free (d->dir);
  g_free (d->conf_path);
  g_string_free (d->log, TRUE);
  return status;
}

/* Runs mynactl against the instance with @input (NULL: none) on its
 * standard input; returns its exit status, output in *@out. */
static inline int
mynactl_va (Mynad *d, const char *input, char **out, const char *first, va_list ap)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tool = build_path ("core/mynactl");
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();

  g_ptr_array_add (argv, tool);
  g_ptr_array_add (argv, (char *) "-c");
  g_ptr_array_add (argv, d->conf_path);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (char *) a);
  g_ptr_array_add (argv, NULL);
  g_autoptr(GSubprocess) p = g_subprocess_newv ((const char *const *) argv->pdata,
                                                G_SUBPROCESS_FLAGS_STDIN_PIPE
                                                | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (p, input != NULL ? input : "", NULL, out, NULL, &error);
  g_assert_no_error (error);
  return g_subprocess_get_exit_status (p);
}

static inline int
mynactl (Mynad *d, char **out, const char *first, ...)
{
  va_list ap;

  va_start (ap, first);
  int rc = mynactl_va (d, NULL, out, first, ap);
  va_end (ap);
  return rc;
}

/* mynactl with @input on its standard input (a password, say). */
static inline int
mynactl_stdin (Mynad *d, const char *input, char **out, const char *first, ...)
{
  va_list ap;

  va_start (ap, first);
  int rc = mynactl_va (d, input, out, first, ap);
  va_end (ap);
  return rc;
}

/* ---- raw clients ---------------------------------------------------------- */

typedef struct {
  int      fd;
  GString *in;
  gboolean eof;
} Client;

#define STREAM_OPEN(to) \
  "<?xml version='1.0'?><stream:stream to='" to "' xmlns='jabber:client' " \
  "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

static inline Client *
client_connect (Mynad *d)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (d->port) };
  Client *c = g_new0 (Client, 1);

  inet_pton (AF_INET, "127.0.0.1", &sa.sin_addr);
  c->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (connect (c->fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
  c->in = g_string_new (NULL);
  return c;
}

static inline void
client_free (Client *c)
{
  close (c->fd);
  g_string_free (c->in, TRUE);
  g_free (c);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Client, client_free)

static inline void
client_send (Client *c, const char *data)
{
  gsize len = strlen (data), off = 0;

  while (off < len)
    {
      ssize_t n = send (c->fd, data + off, len - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;                 /* the server may have closed: fine */
      off += (gsize) n;
    }
}

/* Reads once, waiting up to @ms; FALSE on timeout. */
static inline gboolean
client_read (Client *c, int ms)
{
  struct pollfd p = { .fd = c->fd, .events = POLLIN };
  char buf[8192];

  if (poll (&p, 1, ms) <= 0)
    return FALSE;
  ssize_t n = recv (c->fd, buf, sizeof buf, 0);
  if (n <= 0)
    c->eof = TRUE;
  else
    g_string_append_len (c->in, buf, n);
  return TRUE;
}

/* Waits until the input holds @needle. */
static inline gboolean
client_expect (Client *c, const char *needle)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (strstr (c->in->str, needle) == NULL && !c->eof)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || !client_read (c, left))
        break;
    }
  if (strstr (c->in->str, needle) == NULL)
    {
      g_test_message ("expected %s; got: %s", needle, c->in->str);
      return FALSE;
    }
  return TRUE;
}

/* Reads @c as fast as it can, without keeping what it reads, until
 * @marker was seen @want times, the server closed, or @ms passed; for
 * bulk deliveries too large to search as one buffer.  Returns how many;
 * adds the bytes read to *@bytes and sets *@stream_error when one came. */
static inline guint
client_count (Client *c, const char *marker, guint want, int ms, gsize *bytes,
              gboolean *stream_error)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  gsize keep = MAX (strlen (marker), strlen ("<stream:error")) - 1;
  char buf[65536 + 64];
  gsize carry = 0;
  guint got = 0;

  g_assert_cmpuint (keep, <, 64);
  while (got < want && g_get_monotonic_time () < deadline)
    {
      struct pollfd p = { .fd = c->fd, .events = POLLIN };
      if (poll (&p, 1, 100) <= 0)
        continue;
      ssize_t n = recv (c->fd, buf + carry, sizeof buf - carry - 1, 0);
      if (n <= 0)
        {
          c->eof = TRUE;
          break;
        }
      *bytes += (gsize) n;
      gsize len = carry + (gsize) n;
      buf[len] = '\0';
      /* A marker cut between two reads is found in the next one; one
       * already counted is not within the kept tail. */
      for (const char *q = buf; (q = strstr (q, marker)) != NULL; q += strlen (marker))
        if ((gsize) (q - buf) + strlen (marker) > carry)
          got++;
      if (strstr (buf, "<stream:error") != NULL)
        *stream_error = TRUE;
      carry = MIN (len, keep);
      memmove (buf, buf + len - carry, carry);
    }
  return got;
}

/* Waits until the server closes the connection. */
static inline gboolean
client_expect_closed (Client *c)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;

  while (!c->eof)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || !client_read (c, left))
        return FALSE;
    }
  return TRUE;
}

/* TRUE when the connection is still open and quiet: reading finds neither
 * data nor end of stream right now. */
static inline gboolean
client_is_open (Client *c)
{
  client_read (c, 0);
  return !c->eof;
}

/* Waits for the stream features, in either of their two forms. */
static inline gboolean
client_expect_features (Client *c)
{
  if (!client_expect (c, "<stream:features"))
    return FALSE;
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (strstr (c->in->str, "</stream:features>") == NULL
         && strstr (c->in->str, "<stream:features/>") == NULL && !c->eof)
    {
      int left = (int) ((deadline - g_get_monotonic_time ()) / 1000);
      if (left <= 0 || !client_read (c, left))
        return FALSE;
    }
  return strstr (c->in->str, "</stream:features>") != NULL
         || strstr (c->in->str, "<stream:features/>") != NULL;
}

/* Connects and opens a stream to localhost, up to the features. */
static inline Client *
client_open_stream (Mynad *d)
{
  Client *c = client_connect (d);

  client_send (c, STREAM_OPEN ("localhost"));
  g_assert_true (client_expect_features (c));
  return c;
}

/* ---- accounts and logging in ---------------------------------------------- */

/* Creates an account through mynactl. */
static inline void
mynad_add_user (Mynad *d, const char *user, const char *password)
{
  g_autofree char *out = NULL;
  g_autofree char *jid = g_strdup_printf ("%s@localhost", user);
  g_autofree char *input = g_strconcat (password, "\n", NULL);
  int rc = mynactl_stdin (d, input, &out, "user", "add", jid, NULL);

  if (rc != 0)
    g_error ("mynactl user add %s failed: %s", jid, out);
}

/* Logs @user in with SASL PLAIN (the instance needs MYNAD_PLAIN_AUTH) and
 * binds @resource; the input buffer is cleared afterwards.  Returns NULL
 * when any step fails. */
static inline Client *
client_login (Mynad *d, const char *user, const char *password, const char *resource)
{
  g_autoptr(Client) c = client_connect (d);
  g_autofree char *raw = g_strdup_printf ("%c%s%c%s", 0, user, 0, password);
  gsize rawlen = 2 + strlen (user) + strlen (password);
  g_autofree char *b64 = g_base64_encode ((const guchar *) raw, rawlen);
  g_autofree char *auth = g_strdup_printf ("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                           "mechanism='PLAIN'>%s</auth>", b64);
  g_autofree char *bind = g_strdup_printf ("<iq type='set' id='bind1'><bind "
                                           "xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                                           "<resource>%s</resource></bind></iq>", resource);

  client_send (c, STREAM_OPEN ("localhost"));
  if (!client_expect_features (c))
    return NULL;
  client_send (c, auth);
  /* Either answer ends the wait: a refusal need not run out the clock. */
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (strstr (c->in->str, "<success") == NULL && strstr (c->in->str, "<failure") == NULL
         && !c->eof && g_get_monotonic_time () < deadline)
    client_read (c, (int) ((deadline - g_get_monotonic_time ()) / 1000));
  if (strstr (c->in->str, "<success") == NULL)
    return NULL;
  g_string_truncate (c->in, 0);
  client_send (c, STREAM_OPEN ("localhost"));
  if (!client_expect_features (c))
    return NULL;
  client_send (c, bind);
  if (!client_expect (c, "</jid>"))
    return NULL;
  g_string_truncate (c->in, 0);
  return g_steal_pointer (&c);
}
