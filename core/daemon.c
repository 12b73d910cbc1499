/* daemon.c: the Myna daemon (mynad) — loads the configuration, starts the
 * server and runs the main loop; SIGTERM/SIGINT stop it gracefully, SIGHUP
 * reloads the configuration.  In libmyna so that mynad uses the same
 * library as the modules it opens (<myna/daemon.h>). */
#include "private.h"
#include <myna/daemon.h>

#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static gboolean
on_stop (gpointer user_data)
{
  MynaServer *server = user_data;

  if (server->stopping)
    return G_SOURCE_CONTINUE;
  g_info ("signal received: shutting down");
  myna_server_stop (server);
  g_main_loop_quit (server->loop);
  return G_SOURCE_CONTINUE;
}

static gboolean
on_hup (gpointer user_data)
{
  MynaServer *server = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) report = g_string_new (NULL);
  gboolean ok = myna_server_reload_config (server, report, &error);
  g_auto(GStrv) lines = g_strsplit (report->str, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    if (*lines[i] != '\0')
      g_warning ("SIGHUP: %s", lines[i]);
  if (!ok)
    g_warning ("SIGHUP: %s", error->message);
  return G_SOURCE_CONTINUE;
}

/* Prints every diagnostic; returns the number of errors. */
static guint
report_config (MynaConfig *config)
{
  g_autoptr(GPtrArray) diags = myna_config_check (config);
  guint errors = 0;

  for (guint i = 0; i < diags->len; i++)
    {
      MynaDiag *d = diags->pdata[i];
      if (d->level == MYNA_DIAG_ERROR)
        errors++;
      g_printerr ("%s:%u: %s: %s\n", d->file, d->line,
                  d->level == MYNA_DIAG_ERROR ? "error" : "warning", d->message);
    }
  return errors;
}

int
myna_daemon_main (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      "Configuration file (default conf/myna.conf)", "FILE" },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new ("- the Myna XMPP server");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      g_printerr ("mynad: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      printf ("mynad %s (module ABI %d)\n", MYNA_VERSION, MYNA_ABI_MAJOR);
      return 0;
    }
  /* Whatever mynad creates (database, keys, socket) is its own: the
   * modes it asks for lose group and other bits. */
  umask (umask (0) | 077);
  myna_log_init ();
  MynaConfig *config = myna_config_load (config_path ? config_path : "conf/myna.conf", &error);
  if (config == NULL)
    {
      g_printerr ("mynad: %s\n", error->message);
      return 1;
    }
  g_autofree char *level = myna_config_get_string (config, "global", "log_level");
  myna_log_set_level (level);

  MynaServer *server = myna_server_new (config, &error);
  myna_server_scan_modules (server);
  if (report_config (server->config) > 0)
    {
      g_printerr ("mynad: configuration has errors; not starting\n");
      myna_server_free (server);
      return 1;
    }
  /* Signals are handled from before the listeners open, so a SIGTERM
   * right after "started" still stops the server cleanly. */
  guint s1 = g_unix_signal_add (SIGTERM, on_stop, server);
  guint s2 = g_unix_signal_add (SIGINT, on_stop, server);
  guint s3 = g_unix_signal_add (SIGHUP, on_hup, server);
  if (!myna_server_start (server, &error))
    {
      g_printerr ("mynad: %s\n", error->message);
      g_source_remove (s1);
      g_source_remove (s2);
      g_source_remove (s3);
      myna_server_free (server);
      return 1;
    }
  g_main_loop_run (server->loop);
  /* Let the closing streams' last bytes go out; a second signal meanwhile
   * finds the handlers still there and changes nothing. */
  while (g_main_context_iteration (server->context, FALSE))
    ;
  myna_server_free (server);
  g_source_remove (s1);
  g_source_remove (s2);
  g_source_remove (s3);
  g_info ("stopped");
  return 0;
}
