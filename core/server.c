/* server.c: the server object — configuration, virtual hosts, listeners,
 * storage and modules — and its start, reload and graceful stop. */
#include "private.h"
#include "storage-guard.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

struct _MynaListener {
  MynaServer    *server;
  MynaLimits     limits;      /* [global] with this listener's overrides */
  char          *name;
  char          *kind;
  int            fd;
  guint16        port;
  MynaPollWatch *watch;
  MynaAcceptor   acceptor;
};

static void
listener_free (MynaListener *l)
{
  myna_acceptor_clear (&l->acceptor);
  myna_poller_remove (l->watch);
  if (l->fd >= 0)
    close (l->fd);
  g_free (l->name);
  g_free (l->kind);
  g_free (l);
}

static void
host_free (MynaHost *host)
{
  g_hash_table_unref (host->features);
  g_hash_table_unref (host->account_features);
  g_hash_table_unref (host->accounts);
  g_ptr_array_unref (host->stream_features);
  myna_host_disco_clear (host);
  g_strfreev (host->modules);
  g_free (host->component_module);
  g_free (host->name);
  g_free (host);
}

static void
features_entry_free (MynaFeaturesEntry *e)
{
  if (e->destroy != NULL)
    e->destroy (e->data);
  g_free (e);
}

MynaHost *
myna_server_add_host (MynaServer *server, const char *name)
{
  MynaHost *host = g_new0 (MynaHost, 1);

  host->server = server;
  host->name = g_strdup (name);
  host->service_host = host;
  host->features = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  host->account_features = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  host->accounts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) g_ptr_array_unref);
  host->stream_features = g_ptr_array_new_with_free_func ((GDestroyNotify) features_entry_free);
  myna_host_disco_init (host);
  g_hash_table_insert (server->hosts, host->name, host);
  return host;
}

/* Whether @sub is a subdomain of @domain ("conference.example.org" of
 * "example.org"). */
static gboolean
is_subdomain (const char *sub, const char *domain)
{
  gsize ls = strlen (sub), ld = strlen (domain);

  return ls > ld + 1 && sub[ls - ld - 1] == '.' && strcmp (sub + ls - ld, domain) == 0;
}

/* Adds component @name served by @module, and lists it in the disco#items
 * of the main hosts it is a subdomain of; one under none of them is
 * listed by every main host (XEP-0030 §4, as Prosody and ejabberd do). */
static MynaHost *
server_add_component (MynaServer *server, const char *name, const char *module)
{
  g_autoptr(GPtrArray) mains = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;
  gboolean under_one = FALSE;

  g_hash_table_iter_init (&it, server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (!((MynaHost *) value)->component)
      {
        g_ptr_array_add (mains, value);
        under_one |= is_subdomain (name, ((MynaHost *) value)->name);
      }
  MynaHost *parent = NULL;
  for (guint i = 0; i < mains->len; i++)
    {
      MynaHost *h = mains->pdata[i];
      if (!under_one || is_subdomain (name, h->name))
        myna_host_add_disco_item (h, NULL, name, NULL, NULL);
      /* Its services come from the host it is under, else from the first
       * main host by name (stable from start to start). */
      if (under_one ? is_subdomain (name, h->name)
                    : parent == NULL || strcmp (h->name, parent->name) < 0)
        parent = h;
    }

  MynaHost *host = myna_server_add_host (server, name);
  host->component = TRUE;
  host->component_module = g_strdup (module);
  host->service_host = parent != NULL ? parent : host;
  return host;
}

/* The server's limits with @l's overrides on top. */
static void
listener_read_limits (MynaServer *server, MynaListener *l)
{
  MynaConfig *c = server->config;

  l->limits = server->limits;
  l->limits.max_connections_per_ip =
    (guint) myna_config_get_listener_limit (c, l->name, "max_connections_per_ip");
  l->limits.rate = (gsize) myna_config_get_listener_limit (c, l->name, "c2s_rate");
  l->limits.burst = (gsize) myna_config_get_listener_limit (c, l->name, "c2s_burst");
  l->limits.max_stanza_size_preauth =
    (gsize) myna_config_get_listener_limit (c, l->name, "max_stanza_size_preauth");
  l->limits.max_stanza_size = (gsize) myna_config_get_listener_limit (c, l->name, "max_stanza_size");
  l->limits.auth_timeout_ms = (guint) myna_config_get_listener_limit (c, l->name, "auth_timeout");
  l->limits.max_output = (gsize) myna_config_get_listener_limit (c, l->name, "max_output");
  l->limits.max_output_hard =
    MAX (l->limits.max_output,
         (gsize) myna_config_get_listener_limit (c, l->name, "max_output_hard"));
  l->limits.output_drain_ms =
    (guint) myna_config_get_listener_limit (c, l->name, "output_drain_timeout");
}

const MynaLimits *
myna_listener_get_limits (MynaListener *listener, MynaServer *server)
{
  return listener != NULL ? &listener->limits : &server->limits;
}

/* Applies [global] storage_backlog_high and storage_backlog_high_bytes;
 * the low watermarks are half of them. */
static void
server_apply_backlog_limits (MynaServer *server)
{
  MynaConfig *c = server->config;

  if (server->storage == NULL)
    return;
  myna_storage_set_backlog_limits (server->storage,
                                   (guint) myna_config_get_int (c, "global", "storage_backlog_high"),
                                   (guint64) myna_config_get_int (c, "global", "storage_backlog_high_bytes"),
                                   myna_connections_storage_backlog, server);
}

static void
server_read_limits (MynaServer *server)
{
  MynaConfig *c = server->config;
  MynaLimits *l = &server->limits;

  l->max_stanza_size = (gsize) myna_config_get_int (c, "global", "max_stanza_size");
  l->max_stanza_size_preauth = (gsize) myna_config_get_int (c, "global", "max_stanza_size_preauth");
  l->max_depth = (guint) myna_config_get_int (c, "global", "max_depth");
  l->max_attrs = (guint) myna_config_get_int (c, "global", "max_attrs");
  l->max_output = (gsize) myna_config_get_int (c, "global", "max_output");
  l->max_output_hard = MAX (l->max_output,
                            (gsize) myna_config_get_int (c, "global", "max_output_hard"));
  l->output_drain_ms = (guint) myna_config_get_int (c, "global", "output_drain_timeout");
  server->max_output_total = (gsize) myna_config_get_int (c, "global", "max_output_total");
  l->auth_timeout_ms = (guint) myna_config_get_int (c, "global", "auth_timeout");
  server->require_encryption = myna_config_get_bool (c, "global", "c2s_require_encryption");
  l->max_connections_per_ip = (guint) myna_config_get_int (c, "global", "max_connections_per_ip");
  l->rate = (gsize) myna_config_get_int (c, "global", "c2s_rate");
  l->burst = (gsize) myna_config_get_int (c, "global", "c2s_burst");
  myna_accounts_set_iterations ((guint) myna_config_get_int (c, "global", "scram_iterations"));
  if (server->storage != NULL)
    myna_storage_set_cache_size (server->storage,
                                 (guint) myna_config_get_int (c, "global", "storage_cache"));
  server_apply_backlog_limits (server);
  if (server->poller != NULL)
    myna_poller_set_spin (server->poller, myna_config_get_int (c, "global", "poll_spin_us"));
#ifdef MYNA_HAVE_HTTP
  myna_http_configure (server->http, c);
#endif
}

MynaServer *
myna_server_new (MynaConfig *config, GError **error)
{
  g_return_val_if_fail (config != NULL, NULL);

  MynaServer *server = g_new0 (MynaServer, 1);
  g_autofree char *data_dir = myna_config_get_string (config, "global", "data_dir");

  server->context = g_main_context_ref_thread_default ();
  server->loop = g_main_loop_new (server->context, FALSE);
  server->config = config;
  server->data_dir = myna_config_resolve_path (config, data_dir);
  server->hosts = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) host_free);
  server->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  server->connections = g_hash_table_new (NULL, NULL);
  server->per_ip = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  server->flush_queue = g_ptr_array_new ();
  server->output_over_soft = g_ptr_array_new ();
  g_queue_init (&server->read_order);
  server->router = myna_router_new (server);
  server->modules = myna_module_registry_new (server);
#ifdef MYNA_HAVE_HTTP
  server->http = myna_http_new (server);
#endif
  server_read_limits (server);
  return server;
}

/* ---- accept() with back-off ---------------------------------------------- */

#define ACCEPT_BACKOFF_MIN_MS 100
#define ACCEPT_BACKOFF_MAX_MS 1000
#define ACCEPT_REPORT_S       10
/* Connections aborted in the queue that one call skips at most. */
#define ACCEPT_MAX_RETRIES    64

static void
acceptor_resume (gpointer data)
{
  MynaAcceptor *a = data;

  if (a->watch != NULL)
    myna_poller_modify (a->watch, EPOLLIN);
}

void
myna_acceptor_init (MynaAcceptor *a, const char *what, int fd, MynaPollWatch *watch)
{
  *a = (MynaAcceptor) { .what = g_strdup (what), .fd = fd, .watch = watch };
  a->timer = myna_timer_new_owned (acceptor_resume, a, NULL);
}

void
myna_acceptor_clear (MynaAcceptor *a)
{
  g_clear_pointer (&a->timer, myna_timer_free);
  g_clear_pointer (&a->what, g_free);
  a->watch = NULL;
}

/* Out of descriptors or memory: retrying at once would fail the same way
 * (the pending connection keeps the socket readable), so the socket is
 * left alone for a while. */
static void
acceptor_back_off (MynaAcceptor *a, int err)
{
  gint64 now = g_get_monotonic_time ();

  a->failed++;
  a->total_failed++;
  a->delay_ms = a->delay_ms == 0 ? ACCEPT_BACKOFF_MIN_MS
                                 : MIN (a->delay_ms * 2, ACCEPT_BACKOFF_MAX_MS);
  if (a->reported_at == 0 || now - a->reported_at >= ACCEPT_REPORT_S * G_USEC_PER_SEC)
    {
      g_warning ("%s: accept: %s: %" G_GUINT64_FORMAT " failure(s) in the last %d s; "
                 "retrying every %d ms at most", a->what, g_strerror (err), a->failed,
                 ACCEPT_REPORT_S, ACCEPT_BACKOFF_MAX_MS);
      a->failed = 0;
      a->reported_at = now;
      a->trouble = TRUE;
    }
  if (a->watch != NULL && a->timer != NULL)
    {
      myna_poller_modify (a->watch, 0);
      myna_timer_start (a->timer, a->delay_ms);
    }
}

static void
acceptor_recovered (MynaAcceptor *a)
{
  a->delay_ms = 0;
  if (!a->trouble)
    return;
  a->trouble = FALSE;
  g_message ("%s: accepting connections again (%" G_GUINT64_FORMAT " more failure(s) "
             "since the last report)", a->what, a->failed);
  a->failed = 0;
}

int
myna_acceptor_accept (MynaAcceptor *a, struct sockaddr *sa, socklen_t *sl)
{
  socklen_t room = sl != NULL ? *sl : 0;

  for (int i = 0; i < ACCEPT_MAX_RETRIES; i++)
    {
      if (sl != NULL)
        *sl = room;
      int fd = accept4 (a->fd, sa, sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0)
        {
          if (a->delay_ms != 0 || a->trouble)
            acceptor_recovered (a);
          return fd;
        }
      switch (errno)
        {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
          return -1;
        /* One connection's trouble (accept(2), "Error handling"): the
         * next one may be fine. */
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case ETIMEDOUT:
          continue;
        default:
          /* EMFILE, ENFILE, ENOBUFS, ENOMEM, and what should never be. */
          acceptor_back_off (a, errno);
          return -1;
        }
    }
  return -1;
}

/* ---- listeners ----------------------------------------------------------- */

static void
listener_accept (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  MynaListener *l = user_data;

  /* Accept a bounded batch per wakeup; level-triggered epoll brings us back. */
  for (int i = 0; i < 64; i++)
    {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      int fd = myna_acceptor_accept (&l->acceptor, (struct sockaddr *) &ss, &sl);
      char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";

      if (fd < 0)
        return;
      getnameinfo ((struct sockaddr *) &ss, sl, host, sizeof host, serv,
                   sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
      /* TCP_NODELAY and the keepalive options come from the listening
       * socket (listener_open): Linux copies them to accepted sockets. */
      g_autofree char *peer = g_strdup_printf (strchr (host, ':') ? "[%s]:%s" : "%s:%s",
                                               host, serv);
      myna_connection_new (l->server, l, fd, peer, host);
    }
}

static gboolean
listener_open (MynaServer *server, const char *name, GError **error)
{
  g_autofree char *group = g_strdup_printf ("listener:%s", name);
  g_autofree char *address = myna_config_get_string (server->config, group, "address");
  g_autofree char *kind = myna_config_get_string (server->config, group, "kind");
  gint64 port = myna_config_get_int (server->config, group, "port");
  gint64 backlog = myna_config_get_int (server->config, group, "backlog");
  g_autofree char *port_s = g_strdup_printf ("%" G_GINT64_FORMAT, port);
  struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
                            .ai_socktype = SOCK_STREAM };
  struct addrinfo *res = NULL;
  int rc = getaddrinfo (address, port_s, &hints, &res);

  if (rc != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "listener %s: bad address '%s': %s", name, address, gai_strerror (rc));
      return FALSE;
    }
  int fd = socket (res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1, idle = 300, interval = 30, count = 4;

  if (fd >= 0)
    {
      setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      /* Inherited by every accepted socket.  A link that vanished without
       * a FIN (a phone out of coverage) is found by TCP keepalives even
       * when no XMPP ping is configured. */
      setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
      setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
      setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
    }
  if (fd < 0 || bind (fd, res->ai_addr, res->ai_addrlen) < 0 || listen (fd, (int) backlog) < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e),
                   "listener %s: cannot listen on %s port %s: %s", name, address,
                   port_s, g_strerror (e));
      if (fd >= 0)
        close (fd);
      freeaddrinfo (res);
      return FALSE;
    }
  freeaddrinfo (res);

  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname (fd, (struct sockaddr *) &ss, &sl);
  guint16 bound = ntohs (ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                                  : ((struct sockaddr_in *) &ss)->sin_port);
  gboolean http = strcmp (kind, "http") == 0;
#ifdef MYNA_HAVE_HTTP
  /* http.c accepts on this socket; it owns the descriptor from here on. */
  g_autoptr(GError) local = NULL;
  if (http && !myna_http_listen_fd (server->http, name, fd, &local))
    {
      g_set_error (error, local->domain, local->code,
                   "listener %s: cannot serve HTTP on %s port %u: %s", name, address,
                   bound, local->message);
      return FALSE;
    }
#else
  if (http)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "listener %s: this build has no HTTP support", name);
      close (fd);
      return FALSE;
    }
#endif

  MynaListener *l = g_new0 (MynaListener, 1);
  l->port = bound;
  l->server = server;
  l->name = g_strdup (name);
  listener_read_limits (server, l);
  l->kind = g_steal_pointer (&kind);
  l->fd = http ? -1 : fd;
  if (!http)
    {
      g_autofree char *what = g_strdup_printf ("listener %s", name);
      l->watch = myna_poller_add (server->poller, fd, EPOLLIN, listener_accept, l);
      if (l->watch == NULL)
        {
          int e = errno;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e),
                       "listener %s: cannot watch its socket: %s", name, g_strerror (e));
          listener_free (l);
          return FALSE;
        }
      myna_acceptor_init (&l->acceptor, what, fd, l->watch);
    }
  g_ptr_array_add (server->listeners, l);
  g_info ("listening for %s on %s port %u (%s)", l->kind, address, l->port, name);
  return TRUE;
}

const char *
myna_listener_get_kind (MynaListener *listener)
{
  return listener != NULL ? listener->kind : "c2s";
}

guint16
myna_server_get_listener_port (MynaServer *server, const char *name)
{
  for (guint i = 0; i < server->listeners->len; i++)
    {
      MynaListener *l = server->listeners->pdata[i];
      if (g_strcmp0 (l->name, name) == 0)
        return l->port;
    }
  return 0;
}

/* ---- start / stop -------------------------------------------------------- */

/* The data directory holds the database (SCRAM keys), the development
 * keys and the admin socket.  Files in it are created private (mode 0600)
 * whatever its mode; one other users may enter or list is still worth a
 * word to the operator (`mkdir /var/lib/myna` makes it 0755). */
static void
server_check_data_dir (const char *dir)
{
  struct stat st;

  if (stat (dir, &st) == 0 && (st.st_mode & (S_IRWXO | S_IWGRP)) != 0)
    g_warning ("data directory %s is open to other users (mode %04o): "
               "chmod 0750 (or 0700) it", dir, (unsigned) (st.st_mode & 07777));
}

static gboolean
server_open_storage (MynaServer *server, GError **error)
{
  g_autofree char *uri = myna_config_get_string (server->config, "global", "storage");

  if (g_mkdir_with_parents (server->data_dir, 0750) < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e),
                   "cannot create data directory %s: %s", server->data_dir, g_strerror (e));
      return FALSE;
    }
  server_check_data_dir (server->data_dir);
  if (g_str_has_prefix (uri, "sqlite:") && !g_path_is_absolute (uri + 7))
    {
      g_autofree char *path = g_build_filename (server->data_dir, uri + 7, NULL);
      g_free (uri);
      uri = g_strdup_printf ("sqlite:%s", path);
    }
  server->storage = myna_storage_open (uri, error);
  if (server->storage == NULL)
    return FALSE;
  myna_storage_set_cache_size (server->storage,
                               (guint) myna_config_get_int (server->config, "global", "storage_cache"));
  myna_module_registry_set_storage (server->modules, server->storage);
  server_apply_backlog_limits (server);
  return TRUE;
}

/* The directories searched for manifests under @config. */
static char **
server_module_dirs (MynaConfig *config)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  g_auto(GStrv) extra = myna_config_get_list (config, "global", "module_path");
  const char *env = g_getenv ("MYNA_MODULE_PATH");

  for (guint i = 0; extra[i] != NULL; i++)
    {
      g_autofree char *dir = myna_config_resolve_path (config, extra[i]);
      g_strv_builder_add (b, dir);
    }
  if (env != NULL)
    {
      g_auto(GStrv) parts = g_strsplit (env, ":", -1);
      g_strv_builder_addv (b, (const char **) parts);
    }
  /* An uninstalled mynad (run from the build tree) finds the modules built
   * beside it; an installed one only looks in the installed module dir. */
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *build_root = g_path_get_dirname (MYNA_BUILD_MODULEDIR);
  if (exe != NULL && g_str_has_prefix (exe, build_root))
    g_strv_builder_add (b, MYNA_BUILD_MODULEDIR);
  g_strv_builder_add (b, MYNA_MODULEDIR);
  return g_strv_builder_end (b);
}

/* Scans module manifests and declares their configuration keys. */
void
myna_server_scan_modules (MynaServer *server)
{
  g_auto(GStrv) dirs = server_module_dirs (server->config);
  myna_module_registry_scan (server->modules, (const char *const *) dirs);
}

/* The modules of component @host: disco, its serving module, then the
 * section's `modules`.  A section gone since start keeps what it had
 * (components, like hosts, change with a restart). */
static char **
server_component_modules (MynaServer *server, MynaHost *host)
{
  g_autofree char *group = g_strdup_printf ("component:%s", host->name);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();

  if (!g_key_file_has_group (myna_config_get_keyfile (server->config), group))
    return g_strdupv (host->modules);
  g_auto(GStrv) extra = myna_config_get_list (server->config, group, "modules");
  g_strv_builder_add (b, "disco");
  if (strcmp (host->component_module, "disco") != 0)
    g_strv_builder_add (b, host->component_module);
  for (guint i = 0; extra[i] != NULL; i++)
    if (strcmp (extra[i], "disco") != 0 && strcmp (extra[i], host->component_module) != 0)
      g_strv_builder_add (b, extra[i]);
  return g_strv_builder_end (b);
}

/* The module list that applies to @host in the current configuration. */
static char **
server_host_modules (MynaServer *server, MynaHost *host)
{
  g_autofree char *group = g_strdup_printf ("host:%s", host->name);

  if (host->component)
    return server_component_modules (server, host);
  if (g_key_file_has_key (myna_config_get_keyfile (server->config), group, "modules", NULL))
    return myna_config_get_list (server->config, group, "modules");
  return myna_config_get_list (server->config, "global", "modules");
}

/* Brings @host's enabled modules in line with the configuration: enables
 * the new ones, disables those no longer listed.  A module that fails is
 * logged and skipped; the server keeps going. */
static void
server_sync_modules (MynaServer *server, MynaHost *host)
{
  g_auto(GStrv) wanted = server_host_modules (server, host);

  for (guint i = 0; host->modules != NULL && host->modules[i] != NULL; i++)
    if (!g_strv_contains ((const char *const *) wanted, host->modules[i]))
      myna_module_disable (server->modules, host, host->modules[i]);
  /* A provider kept loaded for a user that was disabled after it goes now. */
  for (guint i = 0; host->modules != NULL && host->modules[i] != NULL; i++)
    if (!g_strv_contains ((const char *const *) wanted, host->modules[i])
        && myna_module_is_loaded (server->modules, host, host->modules[i]))
      myna_module_disable (server->modules, host, host->modules[i]);
  for (guint i = 0; wanted[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      if (host->modules != NULL && g_strv_contains ((const char *const *) host->modules, wanted[i]))
        continue;
      gboolean ok = myna_module_enable (server->modules, host, wanted[i], &error);
      /* A component's serving module opens at start, whatever its mode. */
      if (ok && host->component && strcmp (wanted[i], host->component_module) == 0)
        ok = myna_module_load (server->modules, host, wanted[i], &error) != NULL;
      if (!ok)
        g_warning ("host %s: module %s not enabled: %s", host->name, wanted[i],
                   error->message);
    }
  g_strfreev (host->modules);
  host->modules = g_steal_pointer (&wanted);
}

/* One timer for all connections: idle parsers are released in a sweep. */
#define SWEEP_SECONDS 1

static gboolean
server_sweep (gpointer data)
{
  MynaServer *server = data;
  guint released = myna_connections_sweep (server, SWEEP_SECONDS * G_USEC_PER_SEC);

  server->counters.parsers_released += released;
  myna_connections_log_budget (server);

  guint now = g_hash_table_size (server->connections);

  /* Freed parser contexts, and the sessions of a wave that left, leave
   * holes glibc keeps: give them back, or RSS stays at its busiest level
   * (measured: 14.8 → 7.9 KiB per idle session; 50.7 → 27.1 MB after two
   * waves of 8,500 sessions came and went). */
  if (released >= 32 || server->conn_high_water >= now + 256)
    {
      malloc_trim (0);
      server->conn_high_water = now;
    }
  return G_SOURCE_CONTINUE;
}

/* Adds the [component:DOMAIN] sections, after the hosts (their disco
 * items list the components).  A component needs its module and a domain
 * no host has. */
static gboolean
server_start_components (MynaServer *server, GError **error)
{
  g_auto(GStrv) components = myna_config_get_sections (server->config, "component:");

  for (guint i = 0; components[i] != NULL; i++)
    {
      g_autofree char *group = g_strdup_printf ("component:%s", components[i]);
      g_autoptr(GError) local = NULL;
      g_autofree char *domain = myna_jid_prep_domain (components[i], &local);
      g_autofree char *module = myna_config_get_string (server->config, group, "module");

      if (domain == NULL)
        {
          g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_INVALID,
                       "[%s]: %s", group, local->message);
          return FALSE;
        }
      if (myna_server_get_host (server, domain) != NULL)
        {
          g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_INVALID,
                       "[%s]: %s is also a host", group, domain);
          return FALSE;
        }
      if (*module == '\0')
        {
          g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_MISSING,
                       "[%s]: no module (module = NAME)", group);
          return FALSE;
        }
      server_sync_modules (server, server_add_component (server, domain, module));
    }
  return TRUE;
}

gboolean
myna_server_start (MynaServer *server, GError **error)
{
  g_return_val_if_fail (server != NULL, FALSE);

  g_auto(GStrv) hosts = myna_config_get_sections (server->config, "host:");
  g_auto(GStrv) listeners = myna_config_get_sections (server->config, "listener:");
  g_autofree char *admin = myna_config_get_string (server->config, "global", "admin_socket");
  g_autofree char *admin_path = NULL;

  if (hosts[0] == NULL)
    {
      g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_MISSING,
                   "%s: no [host:DOMAIN] section", myna_config_get_path (server->config));
      return FALSE;
    }
  if (!server_open_storage (server, error))
    return FALSE;
  server->poller = myna_poller_new (server->context);
  myna_poller_set_spin (server->poller, myna_config_get_int (server->config, "global", "poll_spin_us"));
  myna_poller_set_after_batch (server->poller, myna_connections_flush_queued, server);
  /* What storage completions send (replies once durable, PEP and pubsub
   * fan-outs) leaves as one write per peer too: 3.3 times the PEP
   * deliveries/s of one send() per notification (docs/PERFORMANCE.md). */
  myna_storage_set_dispatch_batch (server->storage, myna_poller_batch_begin,
                                   myna_poller_batch_end, server->poller);
  myna_server_scan_modules (server);
  for (guint i = 0; hosts[i] != NULL; i++)
    {
      g_autofree char *group = g_strdup_printf ("host:%s", hosts[i]);
      g_autoptr(GError) local = NULL;
      g_autofree char *domain = myna_jid_prep_domain (hosts[i], &local);

      if (domain == NULL)
        {
          g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_INVALID,
                       "[%s]: %s", group, local->message);
          return FALSE;
        }
      if (!myna_config_get_bool (server->config, group, "enabled"))
        continue;
      server_sync_modules (server, myna_server_add_host (server, domain));
      myna_accounts_prepare_host (server->storage, domain);
    }
  server->tls = myna_tls_new (server, error);
  if (server->tls == NULL)
    return FALSE;
  /* After TLS: no client connects to a component, so none has a
   * certificate. */
  if (!server_start_components (server, error))
    return FALSE;
  for (guint i = 0; listeners[i] != NULL; i++)
    if (!listener_open (server, listeners[i], error))
      return FALSE;
  admin_path = g_path_is_absolute (admin) ? g_strdup (admin)
                                          : g_build_filename (server->data_dir, admin, NULL);
  if (*admin != '\0' && !myna_admin_start (server, admin_path, error))
    return FALSE;
  server->sweep_id = g_timeout_add_seconds (SWEEP_SECONDS, server_sweep, server);
  g_info ("mynad %s started: %u host(s), %u listener(s)", MYNA_VERSION,
          g_hash_table_size (server->hosts), server->listeners->len);
  return TRUE;
}

void
myna_server_stop (MynaServer *server)
{
  g_return_if_fail (server != NULL);

  if (server->stopping)
    return;
  server->stopping = TRUE;
  if (server->sweep_id != 0)
    g_source_remove (server->sweep_id);
  server->sweep_id = 0;
  g_info ("stopping: closing %u connection(s)", g_hash_table_size (server->connections));
  /* Stop listening, but keep the listener structures: sessions still
   * read their limits from them until the sessions are freed. */
  for (guint i = 0; i < server->listeners->len; i++)
    {
      MynaListener *l = server->listeners->pdata[i];
      myna_acceptor_clear (&l->acceptor);
      myna_poller_remove (l->watch);
      l->watch = NULL;
      if (l->fd >= 0)
        close (l->fd);
      l->fd = -1;
    }
  myna_admin_stop (server);
#ifdef MYNA_HAVE_HTTP
  myna_http_stop (server->http);
#endif

  GList *sessions = g_hash_table_get_keys (server->connections);
  for (GList *l = sessions; l != NULL; l = l->next)
    myna_session_close (l->data, "system-shutdown", NULL);
  g_list_free (sessions);
}

void
myna_server_free (MynaServer *server)
{
  if (server == NULL)
    return;
  myna_server_stop (server);
  /* Whatever is still open is torn down now. */
  GList *sessions = g_hash_table_get_keys (server->connections);
  for (GList *l = sessions; l != NULL; l = l->next)
    myna_connection_free (l->data);
  g_list_free (sessions);
  myna_module_registry_unload_all (server->modules);
  myna_iq_requests_free (server);
#ifdef MYNA_HAVE_HTTP
  /* After the modules: their answers in progress go out first. */
  myna_http_free (server->http);
  server->http = NULL;
#endif
  /* What close still calls back is not batched: the poller goes below. */
  if (server->storage != NULL)
    myna_storage_set_dispatch_batch (server->storage, NULL, NULL, NULL);
  myna_storage_close (server->storage);
  myna_router_free (server->router);
  myna_module_registry_free (server->modules);
  g_hash_table_unref (server->hosts);
  g_ptr_array_unref (server->listeners);
  g_hash_table_unref (server->connections);
  g_hash_table_unref (server->per_ip);
  g_ptr_array_unref (server->flush_queue);
  /* Every session's queue left the total when it was freed. */
  g_warn_if_fail (server->output_total == 0 && server->output_over_soft->len == 0);
  g_ptr_array_unref (server->output_over_soft);
  myna_poller_free (server->poller);
  myna_tls_free (server->tls);
  myna_config_free (server->config);
  g_main_loop_unref (server->loop);
  g_main_context_unref (server->context);
  g_free (server->data_dir);
  g_free (server);
}

void
myna_server_swap_config (MynaServer *server, MynaConfig **fresh)
{
  MynaConfig *old = server->config;

  myna_module_registry_declare_all (server->modules, *fresh);
  server->config = *fresh;
  *fresh = old;
}

gboolean
myna_server_reload_config (MynaServer *server, GString *report, GError **error)
{
  g_autoptr(MynaConfig) fresh = myna_config_load (myna_config_get_path (server->config), error);
  guint errors = 0;

  if (fresh == NULL)
    return FALSE;
  /* The fresh file's module path is scanned, and the file checked against
   * the modules it would find, as at start; nothing changes until both
   * pass. */
  g_auto(GStrv) dirs = server_module_dirs (fresh);
  g_autoptr(MynaModuleScan) scan = myna_module_registry_rescan (server->modules,
                                                                (const char *const *) dirs);
  myna_module_scan_declare (server->modules, scan, fresh);
  g_autoptr(GPtrArray) diags = myna_config_check (fresh);
  for (guint i = 0; i < diags->len; i++)
    {
      MynaDiag *d = diags->pdata[i];
      errors += d->level == MYNA_DIAG_ERROR;
      if (report != NULL)
        g_string_append_printf (report, "%s:%u: %s: %s\n", d->file, d->line,
                                d->level == MYNA_DIAG_ERROR ? "error" : "warning", d->message);
    }
  if (errors > 0)
    {
      g_set_error (error, MYNA_CONFIG_ERROR, MYNA_CONFIG_ERROR_INVALID,
                   "%s has %u error(s): configuration not reloaded; the running "
                   "configuration stays", myna_config_get_path (fresh), errors);
      return FALSE;
    }
  myna_module_scan_apply (server->modules, scan);
  myna_server_swap_config (server, &fresh);
  myna_module_registry_config_changed (server->modules);
  server_read_limits (server);
  for (guint i = 0; i < server->listeners->len; i++)
    listener_read_limits (server, server->listeners->pdata[i]);
  /* Modules follow the new lists; hosts and listeners need a restart. */
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, server->hosts);
  while (g_hash_table_iter_next (&it, NULL, &value))
    server_sync_modules (server, value);
  g_info ("configuration reloaded from %s", myna_config_get_path (server->config));
  return TRUE;
}

guint
myna_server_count_sessions (MynaServer *server)
{
  return g_hash_table_size (server->connections);
}

void
myna_server_describe_stats (MynaServer *server, GString *out)
{
  MynaStorageStats st = { 0 };
  guint cache_entries = 0;
  guint64 cache_hits = 0, cache_misses = 0;

  if (server->storage != NULL)
    {
      myna_storage_get_stats (server->storage, &st);
      myna_storage_get_cache_stats (server->storage, &cache_entries, &cache_hits, &cache_misses);
    }
  /* A hibernated session (stream management) has no connection. */
  g_string_append_printf (out, "connections %u\n",
                          g_hash_table_size (server->connections) - server->sessions_hibernated);
  g_string_append_printf (out, "sessions_hibernated %u\n", server->sessions_hibernated);
  g_string_append_printf (out, "hosts %u\n", g_hash_table_size (server->hosts));
  g_string_append_printf (out, "gsources %u\n", myna_main_context_count_sources (server->context));
  g_string_append_printf (out, "timers %u\n", myna_timer_count_active ());
  g_string_append_printf (out, "stanzas_in %" G_GUINT64_FORMAT "\n", server->stanzas_in);
  g_string_append_printf (out, "stanzas_out %" G_GUINT64_FORMAT "\n", server->stanzas_out);
  g_string_append_printf (out, "stream_errors %" G_GUINT64_FORMAT "\n", server->streams_errored);
  g_string_append_printf (out, "storage_pending %u\n", st.pending);
  g_string_append_printf (out, "storage_backlog %u\n", st.pending);
  g_string_append_printf (out, "storage_backlog_bytes %" G_GUINT64_FORMAT "\n",
                          myna_storage_get_pending_bytes (server->storage));
  g_string_append_printf (out, "storage_backpressure %d\n", server->storage_paused ? 1 : 0);
  g_string_append_printf (out, "storage_backpressure_pauses %" G_GUINT64_FORMAT "\n",
                          server->counters.storage_backpressure_pauses);
  g_string_append_printf (out, "storage_backpressure_sessions %u\n", server->storage_paused_sessions);
  g_string_append_printf (out, "storage_cache_entries %u\n", cache_entries);
  g_string_append_printf (out, "storage_cache_hits %" G_GUINT64_FORMAT "\n", cache_hits);
  g_string_append_printf (out, "storage_cache_misses %" G_GUINT64_FORMAT "\n", cache_misses);
  g_string_append_printf (out, "limit_per_ip_refused %" G_GUINT64_FORMAT "\n", server->counters.per_ip_refused);
  g_string_append_printf (out, "limit_rate_paused %" G_GUINT64_FORMAT "\n", server->counters.rate_paused);
  g_string_append_printf (out, "limit_output_overflow %" G_GUINT64_FORMAT "\n", server->counters.output_overflow);
  g_string_append_printf (out, "limit_output_budget_cuts %" G_GUINT64_FORMAT "\n", server->counters.output_budget_cuts);
  g_string_append_printf (out, "output_total %" G_GSIZE_FORMAT "\n", server->output_total);
  g_string_append_printf (out, "output_total_peak %" G_GSIZE_FORMAT "\n", server->output_total_peak);
  g_string_append_printf (out, "output_over_soft %u\n", server->output_over_soft->len);
  g_string_append_printf (out, "limit_auth_timeouts %" G_GUINT64_FORMAT "\n", server->counters.auth_timeouts);
  g_string_append_printf (out, "parsers_released %" G_GUINT64_FORMAT "\n", server->counters.parsers_released);
  guint64 accept_failures = 0;
  for (guint i = 0; i < server->listeners->len; i++)
    accept_failures += ((MynaListener *) server->listeners->pdata[i])->acceptor.total_failed;
  g_string_append_printf (out, "accept_failures %" G_GUINT64_FORMAT "\n", accept_failures);
}

/* ---- hosts --------------------------------------------------------------- */

MynaHost *
myna_server_get_host (MynaServer *server, const char *domain)
{
  g_return_val_if_fail (server != NULL, NULL);
  return domain != NULL ? g_hash_table_lookup (server->hosts, domain) : NULL;
}

const char *
myna_host_get_name (MynaHost *host)
{
  return host->name;
}

MynaServer *
myna_host_get_server (MynaHost *host)
{
  return host->server;
}

MynaStorage *
myna_host_get_storage (MynaHost *host)
{
  return host->server->storage;
}

static GPtrArray *
sorted_keys (GHashTable *table)
{
  GPtrArray *out = g_ptr_array_new ();
  GHashTableIter it;
  gpointer key;

  g_hash_table_iter_init (&it, table);
  while (g_hash_table_iter_next (&it, &key, NULL))
    g_ptr_array_add (out, key);
  myna_ptr_array_sort_strings (out);
  return out;
}

GPtrArray *
myna_host_get_features (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);
  return sorted_keys (host->features);
}

GPtrArray *
myna_host_get_account_features (MynaHost *host)
{
  g_return_val_if_fail (host != NULL, NULL);
  return sorted_keys (host->account_features);
}
