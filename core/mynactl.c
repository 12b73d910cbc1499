/* mynactl.c: the admin tool.
 *
 *   mynactl [-c conf/myna.conf] check-config
 *   mynactl [-c FILE | -s SOCKET] modules | routes | stats
 *   mynactl [-c FILE | -s SOCKET] load|unload|reload MODULE [HOST]
 *   mynactl [-c FILE | -s SOCKET] unload --cascade MODULE [HOST]
 *   mynactl [-c FILE | -s SOCKET] reload-config
 *   mynactl [-c FILE | -s SOCKET] user add|passwd JID   (password: see below)
 *   mynactl [-c FILE | -s SOCKET] user del JID | user list [HOST]
 *   mynactl [-c FILE | -s SOCKET] MODULE-COMMAND [WORD|--OPTION…]
 *
 * A command it does not know is a module's (myna_module_add_admin_command,
 * e.g. `mynactl muc list`): its words, options it does not know
 * included, go to mynad as they are.
 * check-config reads the file and the module manifests without loading any
 * module; the other commands talk to a running mynad over its admin socket.
 * A password is never taken from the command line, where every local user
 * sees it: on a terminal it is asked twice with echo off, otherwise it is
 * the first line of standard input. */
#include "private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
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

/* ---- passwords ------------------------------------------------------------ */

#define MYNACTL_MAX_PASSWORD 1024       /* as core/accounts.c accepts */

static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void
tty_restore (void)
{
  if (tty_changed)
    tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved_tty);
  tty_changed = 0;
}

/* Interrupted at the prompt: the terminal gets its echo back. */
static void
tty_on_signal (int sig)
{
  tty_restore ();
  signal (sig, SIG_DFL);
  raise (sig);
}

/* One line of @in without its line end; NULL at end of input or when it
 * is longer than a password may be. */
static char *
read_line (FILE *in, GError **error)
{
  char buf[MYNACTL_MAX_PASSWORD + 3];
  size_t len;

  if (fgets (buf, sizeof buf, in) == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "no password given");
      return NULL;
    }
  len = strcspn (buf, "\r\n");
  if (len > MYNACTL_MAX_PASSWORD || (buf[len] == '\0' && !feof (in)))
    {
      memset (buf, 0, sizeof buf);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "the password is longer than %d bytes", MYNACTL_MAX_PASSWORD);
      return NULL;
    }
  buf[len] = '\0';
  char *line = g_strdup (buf);
  memset (buf, 0, sizeof buf);
  return line;
}

/* Asks for @jid's password on the terminal, with echo off, twice. */
static char *
prompt_password (const char *jid, GError **error)
{
  struct termios quiet;
  g_autofree char *first = NULL;
  char *second = NULL;

  if (tcgetattr (STDIN_FILENO, &saved_tty) < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "cannot read the terminal settings: %s", g_strerror (errno));
      return NULL;
    }
  quiet = saved_tty;
  quiet.c_lflag &= ~(tcflag_t) ECHO;
  quiet.c_lflag |= ECHONL;
  signal (SIGINT, tty_on_signal);
  signal (SIGTERM, tty_on_signal);
  signal (SIGHUP, tty_on_signal);
  tty_changed = 1;
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
  fprintf (stderr, "Password for %s: ", jid);
  fflush (stderr);
  first = read_line (stdin, error);
  if (first != NULL)
    {
      fprintf (stderr, "Again: ");
      fflush (stderr);
      second = read_line (stdin, error);
    }
  tty_restore ();
  if (second != NULL && strcmp (first, second) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the passwords do not match");
      memset (second, 0, strlen (second));
      g_clear_pointer (&second, g_free);
    }
  if (first != NULL)
    memset (first, 0, strlen (first));
  return second;
}

/* The password for "user add|passwd @jid": from the terminal, or the
 * first line of standard input. */
static char *
read_password (const char *jid, GError **error)
{
  char *password = isatty (STDIN_FILENO) ? prompt_password (jid, error)
                                         : read_line (stdin, error);

  if (password != NULL && *password == '\0')
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the password is empty");
      g_clear_pointer (&password, g_free);
    }
  return password;
}

int
main (int argc, char **argv)
{
  g_autofree char *config_path = NULL, *socket_path = NULL;
  gboolean cascade = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      "Configuration file (default conf/myna.conf)", "FILE" },
    { "socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
      "Admin socket of the running mynad", "PATH" },
    { "cascade", 0, 0, G_OPTION_ARG_NONE, &cascade,
      "With unload: unload the modules using its services first", NULL },
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
      "  unload MODULE [HOST]      unload a module (refused while others use\n"
      "                            its services; --cascade unloads them first)\n"
      "  reload MODULE [HOST]      reload a module, keeping connections\n"
      "  reload-config             reread the configuration file\n"
      "  user add JID              create an account (password at the prompt, or\n"
      "                            one line on standard input)\n"
      "  user passwd JID           change a password (as for add)\n"
      "  user del JID              delete an account and its data\n"
      "  user list [HOST]          list accounts\n"
      "  muc list [SERVICE]        list the rooms of the MUC services\n"
      "  muc create ROOM@SERVICE [--persistent] [--hidden] [--owner JID] [--name NAME]\n"
      "                            create a room (unlocked, as configured)\n"
      "  muc destroy ROOM@SERVICE [REASON]\n"
      "                            destroy a room (occupants are told why)\n"
      "  Other commands go to the modules that added them (mynad answers\n"
      "  an unknown one with the list of those it has).");
  g_autoptr(GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  /* A module's command has options of its own (muc create --persistent):
   * they stay in argv and go to mynad with the other words. */
  g_option_context_set_ignore_unknown_options (ctx, TRUE);
  if (!g_option_context_parse (ctx, &argc, &argv, &error) || argc < 2)
    {
      g_printerr ("mynactl: %s\n", error ? error->message : "no command (see --help)");
      return 2;
    }
  if (config_path == NULL)
    config_path = g_strdup ("conf/myna.conf");
  if (strcmp (argv[1], "check-config") == 0)
    return check_config (argc > 2 ? argv[2] : config_path);
  g_autoptr(GPtrArray) words = g_ptr_array_new ();
  g_autofree char *password = NULL;
  for (int i = 1; i < argc; i++)
    {
      /* The request is one line of words separated by spaces. */
      if (*argv[i] == '\0' || strpbrk (argv[i], "\r\n") != NULL)
        {
          g_printerr ("mynactl: '%s': a word may not be empty or hold a line end\n", argv[i]);
          return 2;
        }
      g_ptr_array_add (words, argv[i]);
      if (i == 1 && cascade && strcmp (argv[1], "unload") == 0)
        g_ptr_array_add (words, (char *) "--cascade");
    }
  if (argc >= 3 && strcmp (argv[1], "user") == 0
      && (strcmp (argv[2], "add") == 0 || strcmp (argv[2], "passwd") == 0))
    {
      if (argc != 4)
        {
          g_printerr (argc > 4 ? "mynactl: user %s takes no password argument: the command "
                                 "line is visible to every local user (ps, /proc); type it "
                                 "at the prompt or give it on standard input\n"
                               : "mynactl: usage: user %s JID (password at the prompt or "
                                 "on standard input)\n", argv[2]);
          return 2;
        }
      if (strpbrk (argv[3], " \t\r\n") != NULL)
        {
          g_printerr ("mynactl: '%s' is not a JID\n", argv[3]);
          return 2;
        }
      if ((password = read_password (argv[3], &error)) == NULL)
        {
          g_printerr ("mynactl: %s\n", error->message);
          return 2;
        }
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
