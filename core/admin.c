/* admin.c: the admin socket mynactl talks to.
 *
 * A UNIX stream socket, mode 0600, in the data directory.  One request per
 * connection: a line of words ("modules", "routes", "stats", "load NAME
 * [HOST]", "unload [--cascade] NAME [HOST]", "reload NAME [HOST]"); the
 * answer is text lines ending with a line "OK" or "ERR <reason>", then the
 * server closes.
 *
 * Any other first word names a module's command
 * (myna_module_add_admin_command: `mynactl muc list`, say): the words go
 * to its handler, whose text comes back the same way.
 *
 * Answers never block the main loop: what the socket does not take at once
 * waits in the client's output buffer (at most ADMIN_MAX_OUTPUT bytes) and
 * goes out as the socket becomes writable; the client is closed once its
 * answer is out. */
#include "private.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define ADMIN_MAX_REQUEST 4096
/* Output waiting for a slow reader: a user list of 100,000 accounts fits. */
#define ADMIN_MAX_OUTPUT (8 * 1024 * 1024)

typedef struct {
  MynaServer    *server;
  int            fd;
  char          *path;
  MynaPollWatch *watch;
  MynaAcceptor   acceptor;
  GPtrArray     *clients;
} Admin;

typedef struct {
  Admin         *admin;
  int            fd;
  MynaPollWatch *watch;
  GString       *in;
  GString       *out;         /* answer bytes not yet sent, from out_off */
  gsize          out_off;
  gboolean       answering;   /* the request is read; no more input */
  gboolean       in_answer;   /* client_answer is on the stack */
  gboolean       closing;     /* close once the output is out */
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
  g_string_free (c->out, TRUE);
  g_free (c);
}

/* Runs one command on every host named, or on all hosts. */
typedef gboolean (*HostOp) (MynaModuleRegistry *, MynaHost *, const char *, GError **);

static gboolean
admin_load_op (MynaModuleRegistry *r, MynaHost *h, const char *name, GError **error)
{
  return myna_module_load_fresh (r, h, name, error) != NULL;
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
      /* A component takes only the modules its section names (it has no
       * accounts); `load NAME HOST` still reaches it explicitly. */
      if (op == admin_load_op && h->component
          && (h->modules == NULL || !g_strv_contains ((const char *const *) h->modules, argv[1])))
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

/* ---- modules' commands ------------------------------------------------------ */

/* The commands the socket answers itself: no module may take their names. */
static const char *const admin_builtins[] = {
  "modules", "routes", "stats", "load", "unload", "reload", "reload-config", "user", NULL
};

/* One module instance's registration of a command. */
typedef struct {
  char                *name;
  char                *usage;    /* nullable */
  MynaModule          *owner;
  MynaAdminCommandFunc func;
  gpointer             data;
  GDestroyNotify       destroy;
} AdminCommand;

static void
admin_command_free (gpointer p)
{
  AdminCommand *cmd = p;

  if (cmd->destroy != NULL)
    {
      MynaModule *previous = myna_module_enter (cmd->owner);
      cmd->destroy (cmd->data);
      myna_module_leave (previous);
    }
  g_free (cmd->name);
  g_free (cmd->usage);
  g_free (cmd);
}

/* The registration answering @name: the earliest one, or NULL. */
static AdminCommand *
admin_command_find (MynaServer *server, const char *name)
{
  for (guint i = 0; server->admin_commands != NULL && i < server->admin_commands->len; i++)
    {
      AdminCommand *cmd = server->admin_commands->pdata[i];
      if (strcmp (cmd->name, name) == 0)
        return cmd;
    }
  return NULL;
}

/* Whether @name is one word of [a-z0-9_-]. */
static gboolean
admin_command_name_ok (const char *name)
{
  if (*name == '\0' || strlen (name) > 64)
    return FALSE;
  for (const char *p = name; *p != '\0'; p++)
    if (!g_ascii_islower (*p) && !g_ascii_isdigit (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

gboolean
myna_admin_add_command (MynaServer *server, MynaModule *owner, const char *name,
                        const char *usage, MynaAdminCommandFunc func, gpointer user_data,
                        GDestroyNotify destroy)
{
  AdminCommand *taken = admin_command_find (server, name);
  g_autofree char *refusal = NULL;

  if (!admin_command_name_ok (name))
    refusal = g_strdup ("not a command name (one word of a-z, 0-9, _ and -)");
  else if (g_strv_contains (admin_builtins, name))
    refusal = g_strdup ("a built-in command has that name");
  else if (taken != NULL
           && strcmp (myna_module_get_name (taken->owner), myna_module_get_name (owner)) != 0)
    refusal = g_strdup_printf ("module %s has it", myna_module_get_name (taken->owner));
  if (refusal != NULL)
    {
      g_warning ("host %s: module %s: admin command '%s' not added: %s",
                 myna_host_get_name (myna_module_get_host (owner)),
                 myna_module_get_name (owner), name, refusal);
      if (destroy != NULL)
        destroy (user_data);
      return FALSE;
    }
  AdminCommand *cmd = g_new0 (AdminCommand, 1);
  cmd->name = g_strdup (name);
  cmd->usage = g_strdup (usage);
  cmd->owner = owner;
  cmd->func = func;
  cmd->data = user_data;
  cmd->destroy = destroy;
  if (server->admin_commands == NULL)
    server->admin_commands = g_ptr_array_new_with_free_func (admin_command_free);
  g_ptr_array_add (server->admin_commands, cmd);
  return TRUE;
}

void
myna_admin_remove_owner (MynaServer *server, MynaModule *owner)
{
  if (server->admin_commands == NULL)
    return;
  for (guint i = server->admin_commands->len; i > 0; i--)
    if (((AdminCommand *) server->admin_commands->pdata[i - 1])->owner == owner)
      g_ptr_array_remove_index (server->admin_commands, i - 1);
  if (server->admin_commands->len == 0)
    g_clear_pointer (&server->admin_commands, g_ptr_array_unref);
}

/* Runs a module's command: its handler gets the words. */
static gboolean
admin_module_command (AdminCommand *cmd, char **words, GString *out, GError **error)
{
  /* The handler may unload its own module: the entry goes with it. */
  MynaModule *owner = myna_module_hold (cmd->owner);
  MynaAdminCommandFunc func = cmd->func;
  gpointer data = cmd->data;
  g_autoptr(GError) local = NULL;
  MynaModule *previous = myna_module_enter (owner);
  gboolean ok = func (owner, (const char *const *) words, out, data, &local);

  myna_module_leave (previous);
  myna_module_release (owner);
  if (!ok)
    {
      if (local == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed", words[0]);
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  /* An answer ends with a line end, so that OK is a line of its own. */
  if (out->len > 0 && out->str[out->len - 1] != '\n')
    g_string_append_c (out, '\n');
  return TRUE;
}

/* "unknown command" with the list of what there is. */
static void
admin_unknown (MynaServer *server, const char *cmd, GError **error)
{
  g_autoptr(GString) known = g_string_new ("modules, routes, stats, load, unload, reload, "
                                           "reload-config, user");

  for (guint i = 0; server->admin_commands != NULL && i < server->admin_commands->len; i++)
    {
      AdminCommand *c = server->admin_commands->pdata[i];
      if (admin_command_find (server, c->name) == c)
        g_string_append_printf (known, ", %s", c->usage != NULL ? c->usage : c->name);
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown command '%s' (%s)",
               cmd, known->str);
}

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
  else if (strcmp (cmd, "unload") == 0 && g_strcmp0 (words[1], "--cascade") == 0)
    {
      /* "unload --cascade NAME [HOST]": the modules using NAME's services
       * go first. */
      char *rest[] = { words[0], words[2], words[2] != NULL ? words[3] : NULL, NULL };
      return admin_each_host (server, rest, myna_module_unload_cascade, out, error);
    }
  else if (strcmp (cmd, "unload") == 0)
    return admin_each_host (server, words, myna_module_unload, out, error);
  else if (strcmp (cmd, "reload") == 0)
    return admin_reload (server, words, out, error);
  else if (strcmp (cmd, "reload-config") == 0)
    return myna_server_reload_config (server, out, error);
  else if (strcmp (cmd, "user") == 0)
    {
      *deferred = words[1] != NULL && strcmp (words[1], "list") != 0;
      gboolean ok = admin_user (c, line, words, out, error);
      if (!ok)
        *deferred = FALSE;
      return ok;
    }
  else if (admin_command_find (server, cmd) != NULL)
    return admin_module_command (admin_command_find (server, cmd), words, out, error);
  else
    {
      admin_unknown (server, cmd, error);
      return FALSE;
    }
  return TRUE;
}

/* Sends what the socket takes now; a peer gone drops the rest. */
static void
client_flush (AdminClient *c)
{
  while (c->out_off < c->out->len)
    {
      ssize_t n = send (c->fd, c->out->str + c->out_off, c->out->len - c->out_off,
                        MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        {
          g_debug ("admin: client gone before its answer was out: %s",
                   n < 0 ? g_strerror (errno) : "closed");
          break;
        }
      c->out_off += (gsize) n;
    }
  g_string_truncate (c->out, 0);
  c->out_off = 0;
}

/* Queues the final answer @out; the client closes once it is sent. */
static void
client_reply (AdminClient *c, GString *out)
{
  g_string_append_len (c->out, out->str, (gssize) out->len);
  c->closing = TRUE;
  client_flush (c);
  if (c->out->len - c->out_off > ADMIN_MAX_OUTPUT)
    {
      g_warning ("admin: answer too large for a client not reading (%" G_GSIZE_FORMAT
                 " bytes waiting, at most %d): client dropped",
                 c->out->len - c->out_off, ADMIN_MAX_OUTPUT);
      g_string_truncate (c->out, 0);
      c->out_off = 0;
    }
  else if (c->out_off < c->out->len)
    g_debug ("admin: %" G_GSIZE_FORMAT " bytes of the answer wait for the client",
             c->out->len - c->out_off);
}

/* After any event: closes the client when it is done with, else watches
 * for what it waits for.  Frees @c when done. */
static void
client_settle (AdminClient *c)
{
  gboolean queued = c->out_off < c->out->len;

  if (c->closing && !queued)
    {
      g_ptr_array_remove (c->admin->clients, c);
      return;
    }
  /* A deferred answer waits for nothing from the socket but a hang-up,
   * which epoll reports regardless. */
  myna_poller_modify (c->watch, queued ? EPOLLOUT : c->answering ? 0 : EPOLLIN);
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
  client_reply (c, out);
  /* An operation may complete at once, inside client_answer: client_io
   * settles the client then. */
  if (!c->in_answer)
    client_settle (c);
}

/* Runs the request; the answer is queued now or, deferred, later. */
static void
client_answer (AdminClient *c, const char *line)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gboolean deferred = FALSE;

  g_info ("admin: %s", g_str_has_prefix (line, "user ") ? "user ..." : line);
  c->in_answer = TRUE;
  gboolean ok = admin_run (c->admin->server, c, line, out, &deferred, &error);
  c->in_answer = FALSE;
  if (ok && deferred)
    return;
  if (ok)
    g_string_append (out, "OK\n");
  else
    g_string_append_printf (out, "ERR %s\n", error->message);
  client_reply (c, out);
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
  MynaHost *account_host = myna_server_get_host (server, myna_jid_get_domain (jid));
  /* A component's domain has no accounts. */
  if (myna_jid_get_local (jid) == NULL || account_host == NULL || account_host->component)
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
      g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, myna_jid_get_local (jid));
      myna_host_account_deleted (host, jid);
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

/* Reads the request line and answers it. */
static void
client_read (AdminClient *c)
{
  char buf[1024];
  ssize_t n = recv (c->fd, buf, sizeof buf, 0);

  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n > 0)
    g_string_append_len (c->in, buf, n);
  char *nl = memchr (c->in->str, '\n', c->in->len);
  if (nl != NULL)
    {
      *nl = '\0';
      c->answering = TRUE;
      client_answer (c, c->in->str);
    }
  else if (n <= 0 || c->in->len >= ADMIN_MAX_REQUEST)
    c->closing = TRUE;          /* no request, or too long: no answer */
}

static void
client_io (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  AdminClient *c = user_data;

  if (events & EPOLLOUT)
    client_flush (c);
  else if (c->answering && (events & (EPOLLHUP | EPOLLERR)))
    {
      /* Gone while its answer was being prepared. */
      g_string_truncate (c->out, 0);
      c->out_off = 0;
      c->closing = TRUE;
    }
  if (!c->answering && !c->closing && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    client_read (c);
  client_settle (c);
}

static void
admin_accept (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  Admin *a = user_data;
  int fd = myna_acceptor_accept (&a->acceptor, NULL, NULL);

  /* Out of descriptors, the acceptor stops watching the socket for a while
   * (the connection waits in the backlog) and logs it once per interval. */
  if (fd < 0)
    return;
  AdminClient *c = g_new0 (AdminClient, 1);
  c->admin = a;
  c->fd = fd;
  c->in = g_string_new (NULL);
  c->out = g_string_new (NULL);
  c->watch = myna_poller_add (a->server->poller, fd, EPOLLIN, client_io, c);
  if (c->watch == NULL)
    {
      client_free (c);
      return;
    }
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
  if (a->watch == NULL)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e),
                   "admin socket %s: cannot watch it: %s", path, g_strerror (e));
      g_ptr_array_unref (a->clients);
      close (fd);
      unlink (path);
      g_free (a->path);
      g_free (a);
      return FALSE;
    }
  myna_acceptor_init (&a->acceptor, "admin socket", fd, a->watch);
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
  myna_acceptor_clear (&a->acceptor);
  myna_poller_remove (a->watch);
  close (a->fd);
  unlink (a->path);
  g_free (a->path);
  g_free (a);
}
