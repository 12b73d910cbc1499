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
  gboolean       answering;
  gboolean       in_answer;   /* client_answer is on the stack */
  gboolean       finished;    /* a deferred answer was written */
  gpointer       pending;     /* the UserOp answering later, if any */
} AdminClient;

static void client_forget_op (AdminClient *c);

static void
client_free (AdminClient *c)
{
  client_forget_op (c);
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

static gboolean admin_user (AdminClient *c, const char *line, char **words, GString *out,
                            GError **error);

/* Runs one command; FALSE with @error on failure.  *@deferred is set when
 * the answer will be sent later (account commands hash off the loop). */
static gboolean
admin_run (MynaServer *server, AdminClient *c, const char *line, GString *out,
           gboolean *deferred, GError **error)
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
  else if (strcmp (cmd, "user") == 0)
    {
      *deferred = words[1] != NULL && strcmp (words[1], "list") != 0;
      gboolean ok = admin_user (c, line, words, out, error);
      if (!ok)
        *deferred = FALSE;
      return ok;
    }
  else
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "unknown command '%s' (modules, routes, stats, load, unload, "
                   "reload, reload-config, user)", cmd);
      return FALSE;
    }
  return TRUE;
}

static void
client_write (AdminClient *c, GString *out)
{
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

/* Finishes a deferred answer. */
static void
client_finish (AdminClient *c, const GError *error, const char *done)
{
  g_autoptr(GString) out = g_string_new (NULL);

  if (error == NULL)
    g_string_append_printf (out, "%s\nOK\n", done);
  else
    g_string_append_printf (out, "ERR %s\n", error->message);
  client_write (c, out);
  /* An operation may complete at once, inside client_answer: the caller
   * frees the client then. */
  if (c->in_answer)
    c->finished = TRUE;
  else
    g_ptr_array_remove (c->admin->clients, c);
}

/* Returns TRUE when the client is done with. */
static gboolean
client_answer (AdminClient *c, const char *line)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gboolean deferred = FALSE;

  g_info ("admin: %s", g_str_has_prefix (line, "user ") ? "user ..." : line);
  c->in_answer = TRUE;
  gboolean ok = admin_run (c->admin->server, c, line, out, &deferred, &error);
  c->in_answer = FALSE;
  if (ok)
    {
      if (deferred)
        return c->finished;
      g_string_append (out, "OK\n");
    }
  else
    g_string_append_printf (out, "ERR %s\n", error->message);
  client_write (c, out);
  return TRUE;
}

/* ---- accounts ------------------------------------------------------------- */

typedef struct {
  AdminClient *client;
  char        *what;
} UserOp;

static void
user_op_done (const GError *error, gpointer data)
{
  UserOp *op = data;

  /* The client (or the admin socket) may be gone by now. */
  if (op->client != NULL)
    client_finish (op->client, error, op->what);
}

static void
user_op_free (gpointer data)
{
  UserOp *op = data;

  if (op->client != NULL)
    op->client->pending = NULL;
  g_free (op->what);
  g_free (op);
}

static void
client_forget_op (AdminClient *c)
{
  UserOp *op = c->pending;

  if (op != NULL)
    op->client = NULL;
  c->pending = NULL;
}

/* "user add|passwd|del|list …": JID then, for add and passwd, the rest of
 * the line is the password. */
static gboolean
admin_user (AdminClient *c, const char *line, char **words, GString *out, GError **error)
{
  MynaServer *server = c->admin->server;
  const char *sub = words[1] != NULL ? words[1] : "";

  if (strcmp (sub, "list") == 0)
    {
      GHashTableIter it;
      gpointer key;
      g_hash_table_iter_init (&it, server->hosts);
      while (g_hash_table_iter_next (&it, &key, NULL))
        {
          if (words[2] != NULL && strcmp (words[2], key) != 0)
            continue;
          g_auto(GStrv) users = myna_account_list (server->storage, key, error);
          if (users == NULL)
            return FALSE;
          for (guint i = 0; users[i] != NULL; i++)
            g_string_append_printf (out, "%s@%s\n", users[i], (char *) key);
        }
      return TRUE;
    }
  if (words[2] == NULL || (strcmp (sub, "add") != 0 && strcmp (sub, "passwd") != 0
                           && strcmp (sub, "del") != 0))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "usage: user add|passwd JID PASSWORD, user del JID, user list [HOST]");
      return FALSE;
    }
  g_autoptr(MynaJid) jid = myna_jid_parse (words[2], error);
  if (jid == NULL)
    return FALSE;
  if (myna_jid_get_local (jid) == NULL || myna_server_get_host (server, myna_jid_get_domain (jid)) == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "%s is not an account of a host served here", words[2]);
      return FALSE;
    }
  UserOp *op = g_new0 (UserOp, 1);
  op->client = c;
  c->pending = op;
  op->what = g_strdup_printf ("%s %s", strcmp (sub, "add") == 0 ? "created"
                                       : strcmp (sub, "del") == 0 ? "deleted" : "password changed for",
                              myna_jid_bare_string (jid));
  if (strcmp (sub, "del") == 0)
    {
      /* Modules drop what they keep for the account; its sessions end. */
      MynaHost *host = myna_server_get_host (server, myna_jid_get_domain (jid));
      g_autoptr(MynaJid) bare = myna_jid_get_bare (jid);
      MynaCall *call = myna_call_new_for (host, bare);
      g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, myna_jid_get_local (jid));
      myna_host_fire_event (host, MYNA_EVENT_ACCOUNT_DELETED, call, NULL);
      myna_call_free (call);
      for (guint i = 0; i < sessions->len; i++)
        myna_session_close (sessions->pdata[i], "not-authorized", "account deleted");
      myna_account_delete (server->storage, myna_jid_get_domain (jid), myna_jid_get_local (jid),
                           user_op_done, op, user_op_free);
      return TRUE;
    }
  /* The password is everything after "user SUB JID ". */
  const char *p = line;
  for (int field = 0; field < 3 && p != NULL; field++)
    {
      p = strchr (p, ' ');
      if (p != NULL)
        p++;
    }
  if (strcmp (sub, "add") == 0)
    myna_account_create (server->storage, myna_jid_get_domain (jid), myna_jid_get_local (jid),
                         p != NULL ? p : "", user_op_done, op, user_op_free);
  else
    myna_account_set_password (server->storage, myna_jid_get_domain (jid),
                               myna_jid_get_local (jid), p != NULL ? p : "", user_op_done, op,
                               user_op_free);
  return TRUE;
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
  if (c->answering)
    return;
  if (nl != NULL)
    {
      *nl = '\0';
      c->answering = TRUE;
      if (!client_answer (c, c->in->str))
        {
          myna_poller_modify (c->watch, 0);   /* the answer comes later */
          return;
        }
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
