/* mynactl.c: the admin tool.
 *
 *   mynactl [-c conf/myna.conf] check-config
 *   mynactl [-c FILE | -s SOCKET] modules | routes | stats
 *   mynactl [-c FILE | -s SOCKET] load|unload|reload MODULE [HOST]
 *   mynactl [-c FILE | -s SOCKET] reload-config
 *
 * check-config reads the file and the module manifests without loading any
 * module; the other commands talk to a running mynad over its admin socket. */
#include "private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

static int
check_config (const char *path)
{
  g_autoptr(GError) error = NULL;
  MynaConfig *config = myna_config_load (path, &error);

  if (config == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  MynaServer *server = myna_server_new (config, &error);
  myna_server_scan_modules (server);
  g_autoptr(GPtrArray) diags = myna_config_check (server->config);
  guint errors = 0, warnings = 0;

  for (guint i = 0; i < diags->len; i++)
    {
      MynaDiag *d = diags->pdata[i];
      gboolean is_error = d->level == MYNA_DIAG_ERROR;
      errors += is_error;
      warnings += !is_error;
      printf ("%s:%u: %s: %s\n", d->file, d->line, is_error ? "error" : "warning", d->message);
    }
  printf ("%s: %u error(s), %u warning(s)\n", path, errors, warnings);
  myna_server_free (server);
  return errors > 0 ? 1 : 0;
}

static char *
socket_from_config (const char *path, GError **error)
{
  g_autoptr(MynaConfig) config = myna_config_load (path, error);

  if (config == NULL)
    return NULL;
  g_autofree char *data_dir = myna_config_get_string (config, "global", "data_dir");
  g_autofree char *sock = myna_config_get_string (config, "global", "admin_socket");
  g_autofree char *dir = myna_config_resolve_path (config, data_dir);
  return g_path_is_absolute (sock) ? g_strdup (sock) : g_build_filename (dir, sock, NULL);
}

static int
admin_request (const char *sock_path, char **words)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_autofree char *line = g_strjoinv (" ", words);
  g_autoptr(GString) reply = g_string_new (NULL);
  char buf[4096];
  ssize_t n;

  g_strlcpy (sa.sun_path, sock_path, sizeof sa.sun_path);
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      g_printerr ("mynactl: cannot reach mynad at %s: %s\n", sock_path, g_strerror (errno));
      close (fd);
      return 1;
    }
  g_autofree char *req = g_strconcat (line, "\n", NULL);
  if (write (fd, req, strlen (req)) < 0)
    {
      close (fd);
      return 1;
    }
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (reply, buf, n);
  close (fd);
  fputs (reply->str, stdout);
  /* The last line says how it went. */
  g_strchomp (reply->str);
  const char *last = strrchr (reply->str, '\n');
  last = last != NULL ? last + 1 : reply->str;
  return g_str_has_prefix (last, "OK") ? 0 : 1;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL, *socket_path = NULL;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      "Configuration file (default conf/myna.conf)", "FILE" },
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
      "Admin socket of the running mynad", "PATH" },
    { NULL }
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new (
      "COMMAND - administer Myna\n\n"
      "Commands:\n"
      "  check-config              check the configuration file\n"
      "  modules                   list modules and where they are loaded\n"
      "  routes                    show the routing table and hooks\n"
      "  stats                     show server counters\n"
      "  load MODULE [HOST]        load a module\n"
      "  unload MODULE [HOST]      unload a module\n"
      "  reload MODULE [HOST]      reload a module, keeping connections\n"
      "  reload-config             reread the configuration file\n"
      "  user add JID [PASSWORD]   create an account (password from stdin if omitted)\n"
      "  user passwd JID [PASSWORD] change a password\n"
      "  user del JID              delete an account and its data\n"
      "  user list [HOST]          list accounts");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc < 2)
    {
      g_printerr ("mynactl: %s\n", error ? error->message : "no command (see --help)");
      return 2;
    }
  if (config_path == NULL)
    config_path = g_strdup ("conf/myna.conf");
  if (strcmp (argv[1], "check-config") == 0)
    return check_config (argc > 2 ? argv[2] : config_path);
  /* "user add|passwd JID" without a password reads it from standard input. */
  g_autofree char *password = NULL;
  g_autoptr(GPtrArray) words = g_ptr_array_new ();
  for (int i = 1; i < argc; i++)
    g_ptr_array_add (words, argv[i]);
  if (argc == 4 && strcmp (argv[1], "user") == 0
      && (strcmp (argv[2], "add") == 0 || strcmp (argv[2], "passwd") == 0))
    {
      char buf[1100];
      if (isatty (0))
        fprintf (stderr, "Password for %s: ", argv[3]);
      if (fgets (buf, sizeof buf, stdin) == NULL)
        {
          g_printerr ("mynactl: no password given\n");
          return 2;
        }
      buf[strcspn (buf, "\r\n")] = '\0';
      password = g_strdup (buf);
      g_ptr_array_add (words, password);
    }
  g_ptr_array_add (words, NULL);
  if (socket_path == NULL && (socket_path = socket_from_config (config_path, &error)) == NULL)
    {
      g_printerr ("mynactl: %s\n", error->message);
      return 1;
    }
  return admin_request (socket_path, (char **) words->pdata);
}
