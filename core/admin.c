/* admin.c: the admin socket mynactl talks to.
 *
 * A UNIX stream socket, mode 0600, in the data directory.  One request per
 * connection: a line of words ("modules", "routes", "stats", "load NAME
 * [HOST]", "unload NAME [HOST]", "reload NAME [HOST]"); the answer is text
 * lines ending with a line "OK" or "ERR <reason>". */
#include "private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define ADMIN_MAX_REQUEST 4096

typedef struct {
  MynaServer    *server;
  int            fd;
  char          *path;
  MynaPollWatch *watch;
  GPtrArray     *clients;
} Admin;

typedef struct {
  Admin         *admin;
  int            fd;
  MynaPollWatch *watch;
  GString       *in;
} AdminClient;

static void
client_free (AdminClient *c)
{
  myna_poller_remove (c->watch);
  close (c->fd);
  g_string_free (c->in, TRUE);
  g_free (c);
}

/* Runs one command on every host named, or on all hosts. */
typedef gboolean (*HostOp) (MynaModuleRegistry *, MynaHost *, const char *, GError **);

static gboolean
admin_load_op (MynaModuleRegistry *r, MynaHost *h, const char *name, GError **error)
{
  return myna_module_load (r, h, name, error) != NULL;
}

static gboolean
admin_each_host (MynaServer *server, char **argv, HostOp op, GString *out, GError **error)
{
  if (argv[1] == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s needs a module name",
                   argv[0]);
      return FALSE;
    }
  if (argv[2] != NULL)
    {
      MynaHost *h = myna_server_get_host (server, argv[2]);
      if (h == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no host %s", argv[2]);
          return FALSE;
        }
      if (!op (server->modules, h, argv[1], error))
        return FALSE;
      g_string_append_printf (out, "%s %s on %s\n", argv[0], argv[1], h->name);
      return TRUE;
    }
  GHashTableIter it;
  gpointer value;
  guint done = 0;
  g_hash_table_iter_init (&it, server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    {
      MynaHost *h = value;
      /* unload and reload act where the module is loaded; load everywhere. */
      if (op != admin_load_op && !myna_module_is_loaded (server->modules, h, argv[1]))
        continue;
      if (!op (server->modules, h, argv[1], error))
        return FALSE;
      g_string_append_printf (out, "%s %s on %s\n", argv[0], argv[1], h->name);
      done++;
    }
  if (done == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "module %s is not loaded", argv[1]);
      return FALSE;
    }
  return TRUE;
}

/* A reload replaces the module's code on every host at once. */
static gboolean
admin_reload (MynaServer *server, char **argv, GString *out, GError **error)
{
  GHashTableIter it;
  gpointer value;

  if (argv[1] == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "reload needs a module name");
      return FALSE;
    }
  g_hash_table_iter_init (&it, server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (myna_module_is_loaded (server->modules, value, argv[1]))
      {
        if (!myna_module_reload (server->modules, value, argv[1], error))
          return FALSE;
        g_string_append_printf (out, "reloaded %s\n", argv[1]);
        return TRUE;
      }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "module %s is not loaded", argv[1]);
  return FALSE;
}

static gboolean
admin_run (MynaServer *server, const char *line, GString *out, GError **error)
{
  g_auto(GStrv) argv = g_strsplit_set (line, " \t", -1);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  for (guint i = 0; argv[i] != NULL; i++)
    if (*argv[i] != '\0')
      g_strv_builder_add (b, argv[i]);
  g_auto(GStrv) words = g_strv_builder_end (b);
  const char *cmd = words[0] != NULL ? words[0] : "";

  if (strcmp (cmd, "modules") == 0)
    myna_module_registry_describe (server->modules, out);
  else if (strcmp (cmd, "routes") == 0)
    myna_router_describe (server->router, out);
  else if (strcmp (cmd, "stats") == 0)
    myna_server_describe_stats (server, out);
  else if (strcmp (cmd, "load") == 0)
    return admin_each_host (server, words, admin_load_op, out, error);
  else if (strcmp (cmd, "unload") == 0)
    return admin_each_host (server, words, myna_module_unload, out, error);
  else if (strcmp (cmd, "reload") == 0)
    return admin_reload (server, words, out, error);
  else if (strcmp (cmd, "reload-config") == 0)
    return myna_server_reload_config (server, error);
  else
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "unknown command '%s' (modules, routes, stats, load, unload, "
                   "reload, reload-config)", cmd);
      return FALSE;
    }
  return TRUE;
}

static void
client_answer (AdminClient *c, const char *line)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  g_info ("admin: %s", line);
  if (admin_run (c->admin->server, line, out, &error))
    g_string_append (out, "OK\n");
  else
    g_string_append_printf (out, "ERR %s\n", error->message);
  /* Local and small: write it all, blocking briefly if need be. */
  gsize off = 0;
  while (off < out->len)
    {
      ssize_t n = send (c->fd, out->str + off, out->len - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN)
        {
          g_usleep (1000);
          continue;
        }
      if (n <= 0)
        break;
      off += (gsize) n;
    }
}

static void
client_io (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  AdminClient *c = user_data;
  char buf[1024];
  ssize_t n = recv (c->fd, buf, sizeof buf, 0);

  if (n < 0 && errno == EAGAIN)
    return;
  if (n > 0)
    g_string_append_len (c->in, buf, n);
  char *nl = memchr (c->in->str, '\n', c->in->len);
  if (nl != NULL)
    {
      *nl = '\0';
      client_answer (c, c->in->str);
    }
  else if (n > 0 && c->in->len < ADMIN_MAX_REQUEST)
    return;
  g_ptr_array_remove (c->admin->clients, c);
}

static void
admin_accept (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  Admin *a = user_data;
  int fd = accept4 (a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

  if (fd < 0)
    return;
  AdminClient *c = g_new0 (AdminClient, 1);
  c->admin = a;
  c->fd = fd;
  c->in = g_string_new (NULL);
  c->watch = myna_poller_add (a->server->poller, fd, EPOLLIN, client_io, c);
  g_ptr_array_add (a->clients, c);
}

gboolean
myna_admin_start (MynaServer *server, const char *path, GError **error)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };

  if (strlen (path) >= sizeof sa.sun_path)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FILENAME_TOO_LONG,
                   "admin socket path too long: %s", path);
      return FALSE;
    }
  strcpy (sa.sun_path, path);
  unlink (path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  mode_t old = umask (0177);
  int rc = fd < 0 ? -1 : bind (fd, (struct sockaddr *) &sa, sizeof sa);
  umask (old);
  if (rc < 0 || chmod (path, 0600) < 0 || listen (fd, 16) < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e),
                   "admin socket %s: %s", path, g_strerror (e));
      if (fd >= 0)
        close (fd);
      return FALSE;
    }
  Admin *a = g_new0 (Admin, 1);
  a->server = server;
  a->fd = fd;
  a->path = g_strdup (path);
  a->clients = g_ptr_array_new_with_free_func ((GDestroyNotify) client_free);
  a->watch = myna_poller_add (server->poller, fd, EPOLLIN, admin_accept, a);
  server->admin = a;
  g_info ("admin socket %s", path);
  return TRUE;
}

void
myna_admin_stop (MynaServer *server)
{
  Admin *a = server->admin;

  if (a == NULL)
    return;
  server->admin = NULL;
  g_ptr_array_unref (a->clients);
  myna_poller_remove (a->watch);
  close (a->fd);
  unlink (a->path);
  g_free (a->path);
  g_free (a);
}
