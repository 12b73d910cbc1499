/* http.c: the HTTP side — one libsoup server on the main loop, serving
 * every `kind = http` listener, and the table of routes modules claim
 * (include/myna/http.h).
 *
 * The sockets are bound by server.c like every listener (same addresses,
 * same error messages); this file accepts on them itself, from the
 * server's poller, and hands each connection to libsoup
 * (soup_server_accept_iostream), keeping its own record of it:
 *
 *  - caps: connections in all ([global] http_max_connections) and per
 *    address (http_max_connections_per_ip); one over is closed at once.
 *    Out of descriptors (EMFILE, ENFILE…), accepting pauses and resumes by
 *    itself, with one log line per interval;
 *  - timeouts: the request headers must be in within http_header_timeout
 *    of the connection, a request or response body must get through
 *    within http_body_timeout; then 408 (or a plain close when the answer
 *    is what stalls);
 *  - one request per connection: every answer says `Connection: close`
 *    and the connection ends with it.  (libsoup 3.2 never closes a
 *    keep-alive connection the client closes between requests: the
 *    descriptor leaked; and without a libsoup listener it does not keep
 *    connections alive anyway.)
 *
 * Each request passes a check once its headers are in, before any of its
 * body is read (server stopping: 503; a declared body over [global]
 * http_max_body: 413; request bodies of all connections over
 * http_max_buffered: 503; then the route's own check, such as a bearer
 * token: 401).  A request refused there is answered at once by this file,
 * the body never read, and the connection closed after a short linger
 * (reading and dropping what the client still sends, so that it reads
 * the answer rather than a reset).  A chunked body over the limit gets
 * 413 the same way as soon as it passes it.  Then the route with the
 * longest matching prefix gets the request; a handler that returns
 * without answering pauses it until it answers.  Each request is logged
 * at debug level when it finishes, server errors at warning. */
#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "myna-http"

#include "private.h"

#include <myna/http.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

/* How long freeing the server waits for answers still being written. */
#define HTTP_DRAIN_US (2 * G_USEC_PER_SEC)
/* At most one log line per this interval for each kind of refusal. */
#define HTTP_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)
/* A connection answered before its body was read: how long, and how many
 * bytes, the rest of its request is read and dropped before it closes. */
#define HTTP_LINGER_MS 5000
#define HTTP_LINGER_MAX (1024 * 1024)

typedef struct {
  guint           id;
  char           *prefix;
  MynaHttpHandler handler;
  gpointer        data;
  GDestroyNotify  destroy;
  MynaModule     *owner;    /* the module that added it; handlers run as it */
  MynaHttpHandler check;    /* before the body is read, or NULL */
} HttpRoute;

/* At most one line per interval, saying how many it stands for. */
typedef struct {
  gint64 next;
  guint  count;
} HttpLogGate;

struct _MynaHttp {
  MynaServer *server;
  SoupServer *soup;       /* NULL until an http listener opens */
  GPtrArray  *routes;     /* HttpRoute* */
  guint       last_id;
  GHashTable *live;       /* MynaHttpRequest* handed to a handler, not finished */
  GPtrArray  *listeners;  /* HttpListener* */
  GHashTable *conns;      /* HttpConn* */
  GHashTable *per_ip;     /* address → connections (GUINT_TO_POINTER) */
  gsize       buffered;   /* request body bytes counted on all connections */
  gsize       max_body;
  gsize       max_buffered;
  guint       max_conns;
  guint       max_per_ip;
  guint       header_ms;
  guint       body_ms;
  HttpLogGate refused_log;
  HttpLogGate accept_log;
  guint       listening;
  gboolean    stopping;
};

typedef struct {
  MynaHttp      *http;
  char          *name;
  int            fd;
  MynaPollWatch *watch;
  MynaAcceptor   acceptor;  /* backs off when out of descriptors */
} HttpListener;

typedef enum {
  CONN_HEADERS,    /* reading the request headers */
  CONN_BODY,       /* reading the request body */
  CONN_HANDLER,    /* the route's handler has it */
  CONN_WRITING,    /* libsoup writes the answer */
  CONN_LINGER,     /* answered by this file; draining what the client sends */
} HttpConnState;

/* One accepted connection: libsoup reads and answers its request; this
 * record holds the descriptor's accounting, its timer and, once libsoup
 * let go of it, the answer still to write and the linger. */
typedef struct {
  MynaHttp          *http;
  GSocket           *socket;    /* owns the descriptor */
  int                fd;
  char              *host;      /* the client's address (per_ip key) */
  char              *peer;      /* host:port, for logs */
  HttpConnState      state;
  SoupServerMessage *msg;       /* the request libsoup reads; NULL once let go */
  MynaHttpRequest   *request;   /* made once the headers are in, or NULL */
  gsize              reserved;  /* body bytes counted in http->buffered */
  gsize              body_read;
  MynaTimer         *timer;
  MynaPollWatch     *watch;     /* linger only */
  GString           *out;       /* linger: the answer still to write */
  gsize              out_off;
  gsize              drained;
  GIOStream         *connection;  /* the socket's */
  GIOStream         *stream;    /* its two streams, as handed to libsoup */
  GSocketAddress    *remote;    /* carries the record (http_conn_of) */
} HttpConn;

static void http_conn_free (HttpConn *conn);

struct _MynaHttpRequest {
  grefcount          ref;
  SoupServerMessage *msg;
  GHashTable        *query;     /* decoded, or NULL */
  char              *subpath;
  char              *peer;
  gboolean           answered;
  gboolean           finished;  /* written out, or the client is gone */
  gboolean           paused;
  HttpConn          *conn;      /* while libsoup serves it, or NULL */
};

/* ---- JSON errors ------------------------------------------------------------ */

static char *
http_error_json (const char *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *valid = g_utf8_make_valid (message, -1);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, valid);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  return json_to_string (root, FALSE);
}

static void
http_msg_respond_error (SoupServerMessage *msg, guint status, const char *message)
{
  g_autofree char *json = http_error_json (message);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    json, strlen (json));
}

/* ---- requests ---------------------------------------------------------------- */

MynaHttpRequest *
myna_http_request_ref (MynaHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  g_ref_count_inc (&request->ref);
  return request;
}

void
myna_http_request_unref (MynaHttpRequest *request)
{
  if (request == NULL || !g_ref_count_dec (&request->ref))
    return;
  g_signal_handlers_disconnect_by_data (request->msg, request);
  g_object_unref (request->msg);
  g_clear_pointer (&request->query, g_hash_table_unref);
  g_free (request->subpath);
  g_free (request->peer);
  g_free (request);
}

const char *
myna_http_request_get_method (MynaHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  return soup_server_message_get_method (request->msg);
}

const char *
myna_http_request_get_path (MynaHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  return g_uri_get_path (soup_server_message_get_uri (request->msg));
}

const char *
myna_http_request_get_subpath (MynaHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  return request->subpath;
}

const char *
myna_http_request_get_query (MynaHttpRequest *request, const char *name)
{
  g_return_val_if_fail (request != NULL && name != NULL, NULL);
  return request->query != NULL ? g_hash_table_lookup (request->query, name) : NULL;
}

const char *
myna_http_request_get_header (MynaHttpRequest *request, const char *name)
{
  g_return_val_if_fail (request != NULL && name != NULL, NULL);
  return soup_message_headers_get_one (soup_server_message_get_request_headers (request->msg),
                                       name);
}

const char *
myna_http_request_get_body (MynaHttpRequest *request, gsize *length)
{
  g_return_val_if_fail (request != NULL, NULL);

  SoupMessageBody *body = soup_server_message_get_request_body (request->msg);

  /* The server keeps the body flattened: data is NUL-terminated. */
  if (body->data == NULL)
    {
      if (length != NULL)
        *length = 0;
      return "";
    }
  if (length != NULL)
    *length = (gsize) body->length;
  return body->data;
}

const char *
myna_http_request_get_peer (MynaHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, NULL);
  return request->peer;
}

gboolean
myna_http_request_is_open (MynaHttpRequest *request)
{
  g_return_val_if_fail (request != NULL, FALSE);
  return !request->answered && !request->finished;
}

void
myna_http_request_set_header (MynaHttpRequest *request, const char *name,
                              const char *value)
{
  g_return_if_fail (request != NULL && name != NULL && value != NULL);

  if (!myna_http_request_is_open (request))
    return;
  soup_message_headers_append (soup_server_message_get_response_headers (request->msg),
                               name, value);
}

void
myna_http_request_respond (MynaHttpRequest *request, guint status,
                           const char *content_type, const char *body,
                           gssize length)
{
  g_return_if_fail (request != NULL);
  g_return_if_fail (status >= 100 && status <= 599);

  if (request->answered)
    {
      g_critical ("%s %s answered twice", myna_http_request_get_method (request),
                  myna_http_request_get_path (request));
      return;
    }
  request->answered = TRUE;
  if (request->finished)
    {
      g_debug ("%s %s: the client left before the answer (%u)",
               myna_http_request_get_method (request),
               myna_http_request_get_path (request), status);
      return;
    }
  soup_server_message_set_status (request->msg, status, NULL);
  if (body != NULL)
    soup_server_message_set_response (request->msg, content_type, SOUP_MEMORY_COPY, body,
                                      length < 0 ? strlen (body) : (gsize) length);
  if (request->paused)
    soup_server_message_unpause (request->msg);
}

void
myna_http_request_respond_error (MynaHttpRequest *request, guint status,
                                 const char *format, ...)
{
  g_return_if_fail (request != NULL && format != NULL);

  va_list ap;
  g_autofree char *message = NULL;
  g_autofree char *json = NULL;

  va_start (ap, format);
  message = g_strdup_vprintf (format, ap);
  va_end (ap);
  json = http_error_json (message);
  myna_http_request_respond (request, status, "application/json", json, -1);
}

/* ---- routes ------------------------------------------------------------------ */

static void
http_route_free (HttpRoute *route)
{
  if (route->destroy != NULL)
    route->destroy (route->data);
  g_free (route->prefix);
  g_free (route);
}

static gboolean
http_prefix_valid (const char *prefix)
{
  gsize len = strlen (prefix);

  return prefix[0] == '/' && (len == 1 || prefix[len - 1] != '/')
         && strpbrk (prefix, "?#") == NULL && strstr (prefix, "//") == NULL
         && g_utf8_validate (prefix, -1, NULL);
}

guint
myna_http_route_add (MynaServer *server, const char *path_prefix,
                     MynaHttpHandler handler, gpointer user_data,
                     GDestroyNotify destroy)
{
  g_return_val_if_fail (server != NULL && server->http != NULL, 0);
  g_return_val_if_fail (path_prefix != NULL && handler != NULL, 0);

  MynaHttp *http = server->http;
  HttpRoute *route;

  if (!http_prefix_valid (path_prefix))
    {
      g_warning ("HTTP route '%s' refused: a prefix starts with '/' and has no "
                 "trailing '/', query or fragment", path_prefix);
      return 0;
    }
  for (guint i = 0; i < http->routes->len; i++)
    if (strcmp (((HttpRoute *) http->routes->pdata[i])->prefix, path_prefix) == 0)
      {
        g_warning ("HTTP route %s is already taken", path_prefix);
        return 0;
      }
  route = g_new0 (HttpRoute, 1);
  route->id = ++http->last_id;
  route->prefix = g_strdup (path_prefix);
  route->handler = handler;
  route->data = user_data;
  route->destroy = destroy;
  route->owner = myna_module_current ();
  g_ptr_array_add (http->routes, route);
  g_debug ("route %s added (%u)", path_prefix, route->id);
  return route->id;
}

void
myna_http_remove_owner (MynaHttp *http, MynaModule *owner)
{
  for (guint i = http->routes->len; i > 0; i--)
    {
      HttpRoute *route = http->routes->pdata[i - 1];
      if (route->owner != owner)
        continue;
      g_info ("HTTP route %s removed: its module %s unloads", route->prefix,
              myna_module_owner_name (owner));
      g_ptr_array_remove_index (http->routes, i - 1);
    }
}

void
myna_http_route_remove (MynaServer *server, guint route_id)
{
  g_return_if_fail (server != NULL && server->http != NULL);

  MynaHttp *http = server->http;

  for (guint i = 0; i < http->routes->len; i++)
    {
      HttpRoute *route = http->routes->pdata[i];
      if (route->id == route_id)
        {
          g_debug ("route %s removed (%u)", route->prefix, route->id);
          g_ptr_array_remove_index (http->routes, i);
          return;
        }
    }
  g_critical ("no HTTP route with id %u", route_id);
}

void
myna_http_route_set_check (MynaServer *server, guint route_id, MynaHttpHandler check)
{
  g_return_if_fail (server != NULL && server->http != NULL);

  MynaHttp *http = server->http;

  for (guint i = 0; i < http->routes->len; i++)
    {
      HttpRoute *route = http->routes->pdata[i];
      if (route->id == route_id)
        {
          route->check = check;
          return;
        }
    }
  g_critical ("no HTTP route with id %u", route_id);
}

gboolean
myna_http_is_listening (MynaServer *server)
{
  g_return_val_if_fail (server != NULL, FALSE);
  return server->http != NULL && server->http->listening > 0;
}

/* The route owning @path: the longest prefix that is the path or one of
 * its ancestors. */
static HttpRoute *
http_find_route (MynaHttp *http, const char *path)
{
  HttpRoute *best = NULL;
  gsize best_len = 0;

  for (guint i = 0; i < http->routes->len; i++)
    {
      HttpRoute *route = http->routes->pdata[i];
      gsize len = strlen (route->prefix);
      gboolean match = len == 1 || (strncmp (path, route->prefix, len) == 0
                                    && (path[len] == '\0' || path[len] == '/'));

      if (match && (best == NULL || len > best_len))
        {
          best = route;
          best_len = len;
        }
    }
  return best;
}

/* ---- log gates ------------------------------------------------------------------- */

/* Counts one event; TRUE (with the events since the last line in *@count)
 * when a line may be logged now. */
static gboolean
http_gate (HttpLogGate *gate, guint *count)
{
  gint64 now = g_get_monotonic_time ();

  gate->count++;
  if (now < gate->next)
    return FALSE;
  *count = gate->count;
  gate->count = 0;
  gate->next = now + HTTP_LOG_INTERVAL_US;
  return TRUE;
}

/* ---- requests, as libsoup hands them over ---------------------------------------- */

static GQuark
http_conn_quark (void)
{
  static GQuark quark;

  if (quark == 0)
    quark = g_quark_from_static_string ("myna-http-conn");
  return quark;
}

/* The connection @msg arrived on: the remote address handed to libsoup
 * carries it. */
static HttpConn *
http_conn_of (SoupServerMessage *msg)
{
  GSocketAddress *addr = soup_server_message_get_remote_address (msg);

  return addr != NULL ? g_object_get_qdata (G_OBJECT (addr), http_conn_quark ()) : NULL;
}

static void
http_request_finished (SoupServerMessage *msg, gpointer user_data)
{
  MynaHttpRequest *request = user_data;
  MynaHttp *http = g_object_get_data (G_OBJECT (msg), "myna-http");

  request->finished = TRUE;
  g_signal_handlers_disconnect_by_data (msg, request);
  /* Drops the core's reference, if it was handed to a handler. */
  if (http != NULL)
    g_hash_table_remove (http->live, request);
}

static char *
http_peer (SoupServerMessage *msg)
{
  GSocketAddress *addr = soup_server_message_get_remote_address (msg);
  const char *host = soup_server_message_get_remote_host (msg);

  if (host == NULL)
    return g_strdup ("?");
  if (G_IS_INET_SOCKET_ADDRESS (addr))
    return g_strdup_printf (strchr (host, ':') != NULL ? "[%s]:%u" : "%s:%u", host,
                            g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr)));
  return g_strdup (host);
}

static char *
http_subpath (HttpRoute *route, const char *path)
{
  return g_strdup (route->prefix[1] == '\0' ? path : path + strlen (route->prefix));
}

static MynaHttpRequest *
http_request_new (MynaHttp *http, SoupServerMessage *msg, HttpRoute *route,
                  const char *path, GHashTable *query)
{
  MynaHttpRequest *request = g_new0 (MynaHttpRequest, 1);

  g_ref_count_init (&request->ref);
  request->msg = g_object_ref (msg);
  request->query = query != NULL ? g_hash_table_ref (query) : NULL;
  request->subpath = http_subpath (route, path);
  request->peer = http_peer (msg);
  g_object_set_data (G_OBJECT (msg), "myna-http", http);
  return request;
}

/* Runs @func (a route's handler or check) as the module that added
 * @route, held meanwhile: what it starts (storage, account calls) is that
 * module's. */
static void
http_run_as (HttpRoute *route, MynaHttpHandler func, MynaHttpRequest *request)
{
  gpointer data = route->data;
  MynaModule *owner = myna_module_hold (route->owner);
  MynaModule *previous = myna_module_enter (owner);

  /* @func may remove its own route: nothing of it is used after. */
  func (request, data);
  myna_module_leave (previous);
  myna_module_release (owner);
}

static void
http_handle (SoupServer *soup, SoupServerMessage *msg, const char *path,
             GHashTable *query, gpointer user_data)
{
  MynaHttp *http = user_data;
  HttpConn *conn = http_conn_of (msg);
  HttpRoute *route = http_find_route (http, path);
  MynaHttpRequest *request;

  if (conn != NULL)
    {
      /* The body is in: what follows is the handler's time. */
      conn->state = CONN_HANDLER;
      myna_timer_stop (conn->timer);
    }
  if (route == NULL)
    {
      http_msg_respond_error (msg, SOUP_STATUS_NOT_FOUND, "no such resource");
      return;
    }
  if (conn != NULL && conn->request != NULL)
    {
      /* Made when the headers came in; the routes may have changed since. */
      request = myna_http_request_ref (conn->request);
      g_free (request->subpath);
      request->subpath = http_subpath (route, path);
    }
  else
    request = http_request_new (http, msg, route, path, query);
  /* The live table takes this reference. */
  g_hash_table_add (http->live, request);
  g_signal_connect (msg, "finished", G_CALLBACK (http_request_finished), request);
  myna_http_request_ref (request);
  http_run_as (route, route->handler, request);
  if (!request->answered && !request->finished)
    {
      request->paused = TRUE;
      soup_server_message_pause (msg);
    }
  myna_http_request_unref (request);
}

static void
http_log (MynaHttp *http, SoupServerMessage *msg, gboolean aborted)
{
  gint64 *start = g_object_get_data (G_OBJECT (msg), "myna-http-start");
  double ms = start != NULL ? (g_get_monotonic_time () - *start) / 1000.0 : 0.0;
  guint status = soup_server_message_get_status (msg);
  const char *method = soup_server_message_get_method (msg);
  GUri *uri = soup_server_message_get_uri (msg);
  const char *path = uri != NULL ? g_uri_get_path (uri) : "?";
  g_autofree char *peer = http_peer (msg);

  if (method == NULL)
    return;
  if (aborted)
    g_debug ("%s %s from %s: aborted after %.1f ms", method, path, peer, ms);
  /* A 503 while stopping or busy is the plan, not a fault. */
  else if (status >= 500 && status != SOUP_STATUS_SERVICE_UNAVAILABLE)
    g_warning ("%s %s from %s: %u %s (%.1f ms)", method, path, peer, status,
               soup_server_message_get_reason_phrase (msg) ?: "", ms);
  else
    g_debug ("%s %s from %s: %u (%.1f ms)", method, path, peer, status, ms);
}

static void
http_request_done (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  http_log (user_data, msg, FALSE);
}

static void
http_request_aborted (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  http_log (user_data, msg, TRUE);
}

/* ---- connections: answered here, lingering --------------------------------------- */

/* @conn's request is over for the core: a handler still holding it sees
 * it closed. */
static void
http_conn_drop_request (HttpConn *conn)
{
  MynaHttpRequest *request = g_steal_pointer (&conn->request);

  if (request == NULL)
    return;
  request->conn = NULL;
  if (!request->finished)
    http_request_finished (request->msg, request);
  myna_http_request_unref (request);
}

/* Takes @conn from libsoup, which forgets it without closing it. */
static void
http_conn_release (HttpConn *conn)
{
  g_autoptr(SoupServerMessage) msg = g_steal_pointer (&conn->msg);
  g_autoptr(GIOStream) stolen = NULL;

  if (msg == NULL)
    return;
  g_signal_handlers_disconnect_by_data (msg, conn);
  http_conn_drop_request (conn);
  stolen = soup_server_message_steal_connection (msg);
}

/* Closes @conn whatever its state. */
static void
http_conn_close (HttpConn *conn)
{
  http_conn_release (conn);
  http_conn_free (conn);
}

/* The answer @msg holds, as bytes on the wire, closing the connection. */
static GString *
http_answer_bytes (SoupServerMessage *msg)
{
  guint status = soup_server_message_get_status (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_response_body (msg));
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *date = soup_date_time_to_string (now, SOUP_DATE_HTTP);
  const char *reason = soup_server_message_get_reason_phrase (msg);
  gboolean head = g_strcmp0 (soup_server_message_get_method (msg), "HEAD") == 0;
  GString *out = g_string_new (NULL);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  gsize len;
  const char *data = g_bytes_get_data (body, &len);

  soup_message_headers_replace (headers, "Date", date);
  soup_message_headers_replace (headers, "Connection", "close");
  soup_message_headers_remove (headers, "Transfer-Encoding");
  soup_message_headers_set_content_length (headers, (goffset) len);
  /* The highest version the server speaks (RFC 9110, 6.2). */
  g_string_append_printf (out, "HTTP/1.1 %u %s\r\n", status,
                          reason != NULL ? reason : soup_status_get_phrase (status));
  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    g_string_append_printf (out, "%s: %s\r\n", name, value);
  g_string_append (out, "\r\n");
  if (!head && len > 0)
    g_string_append_len (out, data, (gssize) len);
  return out;
}

/* Writes what is left of @conn's answer; once it is out, half-closes.
 * FALSE when the connection is gone. */
static gboolean
http_conn_flush (HttpConn *conn)
{
  while (conn->out_off < conn->out->len)
    {
      ssize_t n = send (conn->fd, conn->out->str + conn->out_off,
                        conn->out->len - conn->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return TRUE;
      if (n <= 0)
        return FALSE;
      conn->out_off += (gsize) n;
    }
  g_string_free (g_steal_pointer (&conn->out), TRUE);
  shutdown (conn->fd, SHUT_WR);
  myna_poller_modify (conn->watch, EPOLLIN | EPOLLRDHUP);
  return TRUE;
}

/* Lingering: the answer goes out, what the client still sends is read and
 * dropped until it closes, or too much came, or the time is up. */
static void
http_conn_linger_io (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  HttpConn *conn = user_data;
  char buf[16384];

  if (conn->out != NULL && !http_conn_flush (conn))
    {
      http_conn_free (conn);
      return;
    }
  if (events & EPOLLERR)
    {
      http_conn_free (conn);
      return;
    }
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
    return;
  for (int i = 0; i < 4; i++)
    {
      ssize_t n = recv (conn->fd, buf, sizeof buf, MSG_DONTWAIT);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
      if (n <= 0 || (conn->drained += (gsize) n) > HTTP_LINGER_MAX)
        {
          http_conn_free (conn);
          return;
        }
    }
}

/* From here on @conn is this file's alone: what is left of its answer
 * goes out, then what the client still sends is read and dropped until it
 * closes (bounded in time and bytes).  Closing with unread bytes would
 * send a reset, which may cost the client the answer it has not read. */
static void
http_conn_linger (HttpConn *conn)
{
  conn->state = CONN_LINGER;
  conn->watch = myna_poller_add (conn->http->server->poller, conn->fd,
                                 EPOLLIN | EPOLLRDHUP | (conn->out != NULL ? EPOLLOUT : 0),
                                 http_conn_linger_io, conn);
  if (conn->watch == NULL)
    {
      http_conn_free (conn);
      return;
    }
  if (conn->out == NULL)
    shutdown (conn->fd, SHUT_WR);
  else if (!http_conn_flush (conn))
    {
      http_conn_free (conn);
      return;
    }
  myna_timer_start (conn->timer, HTTP_LINGER_MS);
}

/* Answers @conn's request now with what its message holds (status,
 * headers, body), without reading any more of the request: libsoup lets go
 * of the connection and the answer is written here. */
static void
http_conn_answer_now (HttpConn *conn)
{
  SoupServerMessage *msg = conn->msg;
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  guint status = soup_server_message_get_status (msg);

  if (body->length == 0 && status >= 400)
    http_msg_respond_error (msg, status, soup_server_message_get_reason_phrase (msg)
                                         ?: soup_status_get_phrase (status));
  conn->out = http_answer_bytes (msg);
  conn->out_off = 0;
  http_log (conn->http, msg, FALSE);
  http_conn_release (conn);
  http_conn_linger (conn);
}

/* Refuses @conn's request with @status at once. */
static void
http_conn_refuse (HttpConn *conn, guint status, const char *message)
{
  soup_message_body_truncate (soup_server_message_get_request_body (conn->msg));
  http_msg_respond_error (conn->msg, status, message);
  http_conn_answer_now (conn);
}

static void
http_conn_timeout (gpointer user_data)
{
  HttpConn *conn = user_data;

  switch (conn->state)
    {
    case CONN_HEADERS:
      g_debug ("%s: no complete request headers within %u ms: closed", conn->peer,
               conn->http->header_ms);
      http_conn_refuse (conn, SOUP_STATUS_REQUEST_TIMEOUT,
                        "the request headers took too long");
      break;
    case CONN_BODY:
      g_debug ("%s: the request body did not arrive within %u ms: closed", conn->peer,
               conn->http->body_ms);
      http_conn_refuse (conn, SOUP_STATUS_REQUEST_TIMEOUT, "the request body took too long");
      break;
    case CONN_WRITING:
      g_debug ("%s: the answer was not read within %u ms: closed", conn->peer,
               conn->http->body_ms);
      http_conn_close (conn);
      break;
    case CONN_HANDLER:
    case CONN_LINGER:
      http_conn_close (conn);
      break;
    }
}

/* ---- connections: the request's stages ------------------------------------------- */

/* The route's check, before the body.  FALSE when it answered (the
 * request is then answered at once) or there is no route. */
static gboolean
http_conn_check (HttpConn *conn, SoupServerMessage *msg)
{
  MynaHttp *http = conn->http;
  GUri *uri = soup_server_message_get_uri (msg);
  const char *path = g_uri_get_path (uri);
  HttpRoute *route = http_find_route (http, path);
  const char *q = g_uri_get_query (uri);
  g_autoptr(GHashTable) query = q != NULL ? soup_form_decode (q) : NULL;

  if (route == NULL)
    {
      http_conn_refuse (conn, SOUP_STATUS_NOT_FOUND, "no such resource");
      return FALSE;
    }
  conn->request = http_request_new (http, msg, route, path, query);
  conn->request->conn = conn;
  if (route->check == NULL)
    return TRUE;
  http_run_as (route, route->check, conn->request);
  if (!conn->request->answered)
    return TRUE;
  soup_message_body_truncate (soup_server_message_get_request_body (msg));
  http_conn_answer_now (conn);
  return FALSE;
}

/* Counts @bytes more of @conn's body against the bytes buffered in all;
 * FALSE (and 503) when that is over the limit. */
static gboolean
http_conn_reserve (HttpConn *conn, gsize bytes)
{
  MynaHttp *http = conn->http;

  if (bytes > http->max_buffered - MIN (http->buffered, http->max_buffered))
    {
      guint count;
      if (http_gate (&http->refused_log, &count))
        g_message ("HTTP request bodies in progress reached http_max_buffered (%"
                   G_GSIZE_FORMAT " bytes): %s refused with 503 (%u refusal(s) in the "
                   "last %d s)", http->max_buffered, conn->peer, count,
                   (int) (HTTP_LOG_INTERVAL_US / G_USEC_PER_SEC));
      http_conn_refuse (conn, SOUP_STATUS_SERVICE_UNAVAILABLE,
                        "the server is busy receiving other requests: try again later");
      return FALSE;
    }
  conn->reserved += bytes;
  http->buffered += bytes;
  return TRUE;
}

/* 413: a body declared, or read, over http_max_body. */
static void
http_conn_too_large (HttpConn *conn)
{
  g_autofree char *text = g_strdup_printf ("the request body is over the limit of %"
                                           G_GSIZE_FORMAT " bytes", conn->http->max_body);
  http_conn_refuse (conn, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, text);
}

/* After the headers, before any of the body. */
static void
http_got_headers (SoupServerMessage *msg, gpointer user_data)
{
  HttpConn *conn = user_data;
  MynaHttp *http = conn->http;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupEncoding encoding = soup_message_headers_get_encoding (headers);
  guint64 declared = encoding == SOUP_ENCODING_CONTENT_LENGTH
                     ? (guint64) soup_message_headers_get_content_length (headers) : 0;
  gint64 *start = g_new (gint64, 1);

  *start = g_get_monotonic_time ();
  g_object_set_data_full (G_OBJECT (msg), "myna-http-start", start, g_free);
  myna_timer_stop (conn->timer);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
  /* Refused by libsoup already (a malformed request): no body is read. */
  if (soup_server_message_get_status (msg) != 0)
    http_conn_answer_now (conn);
  else if (http->stopping)
    http_conn_refuse (conn, SOUP_STATUS_SERVICE_UNAVAILABLE, "the server is stopping");
  else if (declared > http->max_body)
    http_conn_too_large (conn);
  else if (http_conn_check (conn, msg) && http_conn_reserve (conn, (gsize) declared))
    {
      if (declared == 0 && encoding != SOUP_ENCODING_CHUNKED)
        return;
      conn->state = CONN_BODY;
      myna_timer_start (conn->timer, http->body_ms);
    }
}

static void
http_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
  HttpConn *conn = user_data;
  MynaHttp *http = conn->http;

  conn->body_read += g_bytes_get_size (chunk);
  if (conn->body_read > http->max_body)
    http_conn_too_large (conn);
  else if (conn->body_read > conn->reserved)
    http_conn_reserve (conn, conn->body_read - conn->reserved);
}

static void
http_wrote_headers (SoupServerMessage *msg, gpointer user_data)
{
  HttpConn *conn = user_data;

  conn->state = CONN_WRITING;
  myna_timer_start (conn->timer, conn->http->body_ms);
}

/* libsoup is done with the connection (the answer is out, or it failed);
 * the descriptor is still open (the stream it was given does not close
 * it). */
static void
http_disconnected (SoupServerMessage *msg, gpointer user_data)
{
  HttpConn *conn = user_data;
  char byte;

  g_signal_handlers_disconnect_by_data (msg, conn);
  g_clear_object (&conn->msg);
  http_conn_drop_request (conn);
  if (recv (conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
    http_conn_linger (conn);
  else
    http_conn_free (conn);
}

static void
http_request_started (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  HttpConn *conn = http_conn_of (msg);

  /* One request per connection: libsoup starts none after the first. */
  if (conn == NULL || conn->msg != NULL)
    return;
  conn->msg = g_object_ref (msg);
  g_signal_connect (msg, "got-headers", G_CALLBACK (http_got_headers), conn);
  g_signal_connect (msg, "got-chunk", G_CALLBACK (http_got_chunk), conn);
  g_signal_connect (msg, "wrote-headers", G_CALLBACK (http_wrote_headers), conn);
  g_signal_connect (msg, "disconnected", G_CALLBACK (http_disconnected), conn);
}

/* ---- connections: accepted, freed ------------------------------------------------- */

static void
http_conn_free (HttpConn *conn)
{
  MynaHttp *http = conn->http;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (http->per_ip, conn->host));

  g_hash_table_remove (http->conns, conn);
  if (n > 1)
    g_hash_table_insert (http->per_ip, g_strdup (conn->host), GUINT_TO_POINTER (n - 1));
  else
    g_hash_table_remove (http->per_ip, conn->host);
  http->buffered -= MIN (conn->reserved, http->buffered);
  if (conn->msg != NULL)
    {
      g_signal_handlers_disconnect_by_data (conn->msg, conn);
      g_clear_object (&conn->msg);
    }
  http_conn_drop_request (conn);
  myna_timer_free (conn->timer);
  myna_poller_remove (conn->watch);
  g_object_set_qdata (G_OBJECT (conn->remote), http_conn_quark (), NULL);
  g_object_unref (conn->remote);
  g_socket_close (conn->socket, NULL);
  g_object_unref (conn->stream);
  g_object_unref (conn->connection);
  g_object_unref (conn->socket);
  if (conn->out != NULL)
    g_string_free (conn->out, TRUE);
  g_free (conn->host);
  g_free (conn->peer);
  g_free (conn);
}

/* Whether one more connection from @host fits under the caps; logs (at
 * most once per interval) when not. */
static gboolean
http_conn_admit (HttpListener *l, const char *host)
{
  MynaHttp *http = l->http;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (http->per_ip, host));
  const char *why = NULL;
  guint count;

  if (g_hash_table_size (http->conns) >= http->max_conns)
    why = "http_max_connections";
  else if (http->max_per_ip > 0 && n >= http->max_per_ip)
    why = "http_max_connections_per_ip";
  if (why == NULL)
    return TRUE;
  if (http_gate (&http->refused_log, &count))
    g_message ("listener %s: refused a connection from %s (%s); %u refusal(s) in the last %d s",
               l->name, host, why, count, (int) (HTTP_LOG_INTERVAL_US / G_USEC_PER_SEC));
  return FALSE;
}

static void
http_conn_new (HttpListener *l, int fd, struct sockaddr_storage *ss, socklen_t sl)
{
  MynaHttp *http = l->http;
  char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  GSocket *socket;
  HttpConn *conn;

  getnameinfo ((struct sockaddr *) ss, sl, host, sizeof host, serv, sizeof serv,
               NI_NUMERICHOST | NI_NUMERICSERV);
  if (!http_conn_admit (l, host))
    {
      close (fd);
      return;
    }
  socket = g_socket_new_from_fd (fd, &error);
  if (socket != NULL)
    local = g_socket_get_local_address (socket, &error);
  if (local == NULL)
    {
      guint count;
      if (http_gate (&http->accept_log, &count))
        g_warning ("listener %s: connection from %s: %s (%u time(s) in the last %d s)",
                   l->name, host, error->message, count,
                   (int) (HTTP_LOG_INTERVAL_US / G_USEC_PER_SEC));
      if (socket != NULL)
        g_object_unref (socket);   /* closes the descriptor */
      else
        close (fd);
      return;
    }
  conn = g_new0 (HttpConn, 1);
  conn->http = http;
  conn->socket = socket;
  conn->fd = fd;
  conn->host = g_strdup (host);
  conn->peer = g_strdup_printf (strchr (host, ':') != NULL ? "[%s]:%s" : "%s:%s", host, serv);
  conn->state = CONN_HEADERS;
  conn->connection = G_IO_STREAM (g_socket_connection_factory_create_connection (socket));
  /* Closing this stream (libsoup does when it is done) leaves the socket
   * open: closing it is this file's business. */
  conn->stream = g_simple_io_stream_new (g_io_stream_get_input_stream (conn->connection),
                                         g_io_stream_get_output_stream (conn->connection));
  conn->remote = g_socket_address_new_from_native (ss, sl);
  conn->timer = myna_timer_new_owned (http_conn_timeout, conn, NULL);
  g_object_set_qdata (G_OBJECT (conn->remote), http_conn_quark (), conn);
  g_hash_table_add (http->conns, conn);
  g_hash_table_insert (http->per_ip, g_strdup (host),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (http->per_ip,
                                                                                host)) + 1));
  myna_timer_start (conn->timer, http->header_ms);
  /* Starts the first (and only) request: http_request_started runs now. */
  soup_server_accept_iostream (http->soup, conn->stream, local, conn->remote, NULL);
}

/* ---- listeners -------------------------------------------------------------------- */

static void
http_accept (MynaPollWatch *watch, guint32 events, gpointer user_data)
{
  HttpListener *l = user_data;

  /* A bounded batch per wakeup; level-triggered epoll brings us back.
   * Out of descriptors, the acceptor stops watching the socket for a
   * while and logs it once per interval (server.c). */
  for (int i = 0; i < 64; i++)
    {
      struct sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      int fd = myna_acceptor_accept (&l->acceptor, (struct sockaddr *) &ss, &sl);

      if (fd < 0)
        return;
      http_conn_new (l, fd, &ss, sl);
    }
}

static void
http_listener_close (HttpListener *l)
{
  myna_acceptor_clear (&l->acceptor);
  myna_poller_remove (l->watch);
  l->watch = NULL;
  if (l->fd >= 0)
    close (l->fd);
  l->fd = -1;
}

static void
http_listener_free (HttpListener *l)
{
  http_listener_close (l);
  g_free (l->name);
  g_free (l);
}

/* ---- life cycle --------------------------------------------------------------- */

MynaHttp *
myna_http_new (MynaServer *server)
{
  MynaHttp *http = g_new0 (MynaHttp, 1);

  http->server = server;
  http->routes = g_ptr_array_new_with_free_func ((GDestroyNotify) http_route_free);
  http->live = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) myna_http_request_unref,
                                      NULL);
  http->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) http_listener_free);
  http->conns = g_hash_table_new (NULL, NULL);
  http->per_ip = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  http->max_body = 64 * 1024;
  http->max_buffered = 16 * 1024 * 1024;
  http->max_conns = 512;
  http->max_per_ip = 64;
  http->header_ms = 10 * 1000;
  http->body_ms = 60 * 1000;
  return http;
}

void
myna_http_configure (MynaHttp *http, MynaConfig *config)
{
  http->max_body = (gsize) myna_config_get_int (config, "global", "http_max_body");
  http->max_buffered = (gsize) myna_config_get_int (config, "global", "http_max_buffered");
  http->max_conns = (guint) myna_config_get_int (config, "global", "http_max_connections");
  http->max_per_ip = (guint) myna_config_get_int (config, "global",
                                                  "http_max_connections_per_ip");
  http->header_ms = (guint) myna_config_get_int (config, "global", "http_header_timeout");
  http->body_ms = (guint) myna_config_get_int (config, "global", "http_body_timeout");
}

static void
http_create_soup (MynaHttp *http)
{
  http->soup = soup_server_new ("server-header", "Myna", NULL);
  soup_server_add_handler (http->soup, NULL, http_handle, http, NULL);
  g_signal_connect (http->soup, "request-started", G_CALLBACK (http_request_started), http);
  g_signal_connect (http->soup, "request-finished", G_CALLBACK (http_request_done), http);
  g_signal_connect (http->soup, "request-aborted", G_CALLBACK (http_request_aborted), http);
}

gboolean
myna_http_listen_fd (MynaHttp *http, const char *name, int fd, GError **error)
{
  HttpListener *l = g_new0 (HttpListener, 1);

  l->http = http;
  l->name = g_strdup (name);
  l->fd = fd;
  l->watch = myna_poller_add (http->server->poller, fd, EPOLLIN, http_accept, l);
  if (l->watch == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot watch the listening socket");
      http_listener_free (l);
      return FALSE;
    }
  g_autofree char *what = g_strdup_printf ("listener %s", name);
  myna_acceptor_init (&l->acceptor, what, fd, l->watch);
  if (http->soup == NULL)
    http_create_soup (http);
  g_ptr_array_add (http->listeners, l);
  http->listening++;
  return TRUE;
}

void
myna_http_stop (MynaHttp *http)
{
  if (http == NULL || http->stopping)
    return;
  http->stopping = TRUE;
  for (guint i = 0; i < http->listeners->len; i++)
    http_listener_close (http->listeners->pdata[i]);
  if (http->soup != NULL)
    g_info ("stopping: refusing new requests; %u in progress", g_hash_table_size (http->live));
}

static gboolean
http_tick (gpointer unused)
{
  return G_SOURCE_CONTINUE;
}

/* Runs the main context until the answers in progress are written or the
 * time is up. */
static void
http_drain (MynaHttp *http)
{
  gint64 deadline = g_get_monotonic_time () + HTTP_DRAIN_US;
  GMainContext *context = g_main_context_get_thread_default ();
  GSource *tick;

  if (g_hash_table_size (http->live) == 0)
    return;
  tick = g_timeout_source_new (50);
  g_source_set_callback (tick, http_tick, NULL, NULL);
  g_source_attach (tick, context);
  while (g_hash_table_size (http->live) > 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
}

void
myna_http_free (MynaHttp *http)
{
  if (http == NULL)
    return;
  myna_http_stop (http);
  if (http->soup != NULL)
    http_drain (http);
  /* Whatever is left can no longer be answered. */
  GList *conns = g_hash_table_get_keys (http->conns);
  for (GList *l = conns; l != NULL; l = l->next)
    http_conn_close (l->data);
  g_list_free (conns);
  if (http->soup != NULL)
    {
      soup_server_disconnect (http->soup);
      g_clear_object (&http->soup);
    }
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, http->live);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      MynaHttpRequest *request = key;
      request->finished = TRUE;
      g_signal_handlers_disconnect_by_data (request->msg, request);
      g_object_set_data (G_OBJECT (request->msg), "myna-http", NULL);
    }
  g_hash_table_unref (http->live);
  g_ptr_array_unref (http->listeners);
  g_hash_table_unref (http->conns);
  g_hash_table_unref (http->per_ip);
  for (guint i = 0; i < http->routes->len; i++)
    g_warning ("HTTP route %s was never removed",
               ((HttpRoute *) http->routes->pdata[i])->prefix);
  g_ptr_array_unref (http->routes);
  g_free (http);
}
