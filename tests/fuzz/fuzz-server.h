/* fuzz-server.h: what the fuzz targets that run a whole in-process
 * MynaServer share: a log writer that turns criticals into crashes, a
 * data directory of their own (in /dev/shm when it can) removed at exit,
 * with those of crashed runs swept first, and a server started on a
 * configuration; and the input, read a byte at a time. */
#pragma once

#include "../../core/private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the input ------------------------------------------------------------ */

typedef struct {
  const guint8 *p;
  gsize         left;
} Input;

/* The next byte, 0 at the end. */
static inline guint
take (Input *in)
{
  if (in->left == 0)
    return 0;
  in->left--;
  return *in->p++;
}

/* A length byte, then that many bytes (fewer at the end of the input). */
static inline const char *
take_payload (Input *in, gsize *len)
{
  gsize want = take (in);
  gsize n = MIN (want, in->left);
  const char *p = (const char *) in->p;

  in->p += n;
  in->left -= n;
  *len = n;
  return p;
}

/* ---- a client's socket ------------------------------------------------------ */

/* Writes @len bytes of @data to @fd as far as the server takes them (it
 * may have closed, or its buffer be full); printed when the environment
 * variable @trace (nullable) is set. */
static inline void
fuzz_write (int fd, const char *data, gsize len, const char *trace)
{
  if (trace != NULL && g_getenv (trace) != NULL)
    fprintf (stderr, "client: %.*s\n", (int) len, data);
  while (len > 0)
    {
      ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      data += n;
      len -= (gsize) n;
    }
}

/* Appends what @fd has now to @in, keeping only its tail past 64K (the
 * last answers are what matter: memory stays flat); TRUE if anything came. */
static inline gboolean
fuzz_read (int fd, GString *in)
{
  char buf[16384];
  gboolean any = FALSE;
  ssize_t n;

  while (fd >= 0 && (n = recv (fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    {
      if (in->len > 65536)
        g_string_erase (in, 0, in->len - 4096);
      g_string_append_len (in, buf, n);
      any = TRUE;
    }
  return any;
}

/* ---- the server ------------------------------------------------------------ */

/* Every log line printed, not only warnings (a target's trace mode). */
static gboolean fuzz_log_all;

/* Criticals are bugs (network input reached an API-misuse guard): crash
 * so the fuzzer reports the input, unless FUZZ_NONFATAL_CRITICALS is set
 * (to see what the guard does next, as in mynad).  Warnings are printed;
 * the rest is dropped to keep the run fast. */
static GLogWriterOutput
fuzz_quiet_writer (GLogLevelFlags level, const GLogField *fields, gsize n, gpointer unused)
{
  static int fatal = -1;

  if (fatal < 0)
    fatal = g_getenv ("FUZZ_NONFATAL_CRITICALS") == NULL;
  if ((level & G_LOG_LEVEL_ERROR) || ((level & G_LOG_LEVEL_CRITICAL) && fatal))
    {
      g_log_writer_standard_streams (level, fields, n, NULL);
      abort ();
    }
  if ((level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) || fuzz_log_all)
    return g_log_writer_standard_streams (level, fields, n, NULL);
  return G_LOG_WRITER_HANDLED;
}

static char *fuzz_data_dir;

/* At exit (libFuzzer's too): the data directory goes. */
static void
fuzz_remove_data_dir (void)
{
  g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", fuzz_data_dir);

  if (system (rm) != 0)
    fprintf (stderr, "fuzz: could not remove %s\n", fuzz_data_dir);
}

/* A data directory "myna-fuzz-@name-PID-XXXXXX" for this process; those
 * of processes that are gone (a crash skips atexit) are removed first.
 * Returns: (transfer none) its path */
static const char *
fuzz_make_data_dir (const char *name)
{
  const char *base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) && access ("/dev/shm", W_OK) == 0
                       ? "/dev/shm" : g_get_tmp_dir ();
  g_autofree char *prefix = g_strdup_printf ("myna-fuzz-%s-", name);
  g_autoptr(GDir) d = g_dir_open (base, 0, NULL);
  const char *entry;

  while (d != NULL && (entry = g_dir_read_name (d)) != NULL)
    {
      int pid = 0;

      if (!g_str_has_prefix (entry, prefix)
          || sscanf (entry + strlen (prefix), "%d-", &pid) != 1 || pid <= 0
          || kill (pid, 0) == 0 || errno != ESRCH)
        continue;
      g_autofree char *rm = g_strdup_printf ("rm -rf '%s/%s'", base, entry);
      if (system (rm) != 0)
        fprintf (stderr, "fuzz: could not remove %s/%s\n", base, entry);
    }
  g_autofree char *tmpl = g_strdup_printf ("%s/%s%d-XXXXXX", base, prefix, (int) getpid ());
  if (g_mkdtemp (tmpl) == NULL)
    g_error ("fuzz: cannot make a data directory under %s", base);
  fuzz_data_dir = g_steal_pointer (&tmpl);
  atexit (fuzz_remove_data_dir);
  return fuzz_data_dir;
}

/* Writes @conf to the data directory and starts a server on it. */
static MynaServer *
fuzz_server_start (const char *conf)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (fuzz_data_dir, "fuzz.conf", NULL);
  MynaConfig *config;
  MynaServer *server = NULL;

  if (!g_file_set_contents (path, conf, -1, &error))
    g_error ("fuzz: %s", error->message);
  config = myna_config_load (path, &error);
  if (config == NULL || (server = myna_server_new (config, &error)) == NULL
      || !myna_server_start (server, &error))
    g_error ("fuzz: server: %s", error != NULL ? error->message : "?");
  return server;
}
