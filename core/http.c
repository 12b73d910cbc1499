/* http.c: the HTTP side — one libsoup server on the main loop, serving
 * every `kind = http` listener, and the table of routes modules claim
 * (include/myna/http.h).
 *
 * The sockets are bound by server.c like every listener (same addresses,
 * same error messages) and handed to libsoup.  Each request passes an
 * early check once its headers are in (server stopping: 503; a declared
 * body over [global] http_max_body: 413), a running count of its body
 * while it arrives (chunked bodies over the limit: 413, the rest read and
 * dropped, not kept), then the route with the longest matching prefix.
 * A request whose handler returns without answering is paused until it
 * answers.  Each request is logged at debug level when it finishes,
 * server errors at warning. */
#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN "myna-http"

#include "private.h"

#include <myna/http.h>
#include <libsoup/soup.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

/* How long freeing the server waits for answers still being written. */
#define HTTP_DRAIN_US (2 * G_USEC_PER_SEC)

typedef struct {
  guint           id;
  char           *prefix;
  MynaHttpHandler handler;
  gpointer        data;
  GDestroyNotify  destroy;
  MynaModule     *owner;    /* the module that added it; handlers run as it */
} HttpRoute;

struct _MynaHttp {
  MynaServer *server;
  SoupServer *soup;       /* NULL until an http listener opens */
  GPtrArray  *routes;     /* HttpRoute* */
  guint       last_id;
  GHashTable *live;       /* MynaHttpRequest* handed to a handler, not finished */
  gsize       max_body;
  guint       listening;
  gboolean    stopping;
};

struct _MynaHttpRequest {
  grefcount          ref;
  SoupServerMessage *msg;
  GHashTable        *query;     /* decoded, or NULL */
  char              *subpath;
  char              *peer;
  gboolean           answered;
  gboolean           finished;  /* written out, or the client is gone */
  gboolean           paused;
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

/* ---- the soup server ---------------------------------------------------------- */

static void
http_request_finished (SoupServerMessage *msg, gpointer user_data)
{
  MynaHttpRequest *request = user_data;
  MynaHttp *http = g_object_get_data (G_OBJECT (msg), "myna-http");

  request->finished = TRUE;
  g_signal_handlers_disconnect_by_data (msg, request);
  /* Drops the core's reference. */
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

static void
http_handle (SoupServer *soup, SoupServerMessage *msg, const char *path,
             GHashTable *query, gpointer user_data)
{
  MynaHttp *http = user_data;
  HttpRoute *route = http_find_route (http, path);
  MynaHttpRequest *request;
  MynaHttpHandler handler;
  gpointer data;

  if (route == NULL)
    {
      http_msg_respond_error (msg, SOUP_STATUS_NOT_FOUND, "no such resource");
      return;
    }
  request = g_new0 (MynaHttpRequest, 1);
  g_ref_count_init (&request->ref);
  request->msg = g_object_ref (msg);
  request->query = query != NULL ? g_hash_table_ref (query) : NULL;
  request->subpath = g_strdup (route->prefix[1] == '\0' ? path : path + strlen (route->prefix));
  request->peer = http_peer (msg);
  g_object_set_data (G_OBJECT (msg), "myna-http", http);
  g_hash_table_add (http->live, request);
  g_signal_connect (msg, "finished", G_CALLBACK (http_request_finished), request);
  /* The handler may remove its own route: nothing of it is used after. */
  handler = route->handler;
  data = route->data;
  myna_http_request_ref (request);
  /* As the module that added the route, held meanwhile: what the handler
   * starts (storage, account calls) is that module's. */
  MynaModule *owner = myna_module_hold (route->owner);
  MynaModule *previous = myna_module_enter (owner);
  handler (request, data);
  myna_module_leave (previous);
  myna_module_release (owner);
  if (!request->answered && !request->finished)
    {
      request->paused = TRUE;
      soup_server_message_pause (msg);
    }
  myna_http_request_unref (request);
}

/* Refuses @msg's body: answered with 413, its bytes read and dropped. */
static void
http_refuse_body (MynaHttp *http, SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autofree char *text = g_strdup_printf ("the request body is over the limit of %"
                                           G_GSIZE_FORMAT " bytes", http->max_body);

  soup_message_body_set_accumulate (body, FALSE);
  soup_message_body_truncate (body);
  http_msg_respond_error (msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, text);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Connection", "close");
}

static void
http_got_chunk (SoupServerMessage *msg, GBytes *chunk, gpointer user_data)
{
  MynaHttp *http = user_data;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  if (soup_server_message_get_status (msg) == 0 && (gsize) body->length > http->max_body)
    http_refuse_body (http, msg);
}

/* After the headers, before the body. */
static void
http_early (SoupServer *soup, SoupServerMessage *msg, const char *path,
            GHashTable *query, gpointer user_data)
{
  MynaHttp *http = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  gint64 *start = g_new (gint64, 1);

  *start = g_get_monotonic_time ();
  g_object_set_data_full (G_OBJECT (msg), "myna-http-start", start, g_free);
  if (http->stopping)
    {
      http_msg_respond_error (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "the server is stopping");
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Connection", "close");
      soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);
      return;
    }
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH
      && (guint64) soup_message_headers_get_content_length (headers) > http->max_body)
    {
      http_refuse_body (http, msg);
      return;
    }
  g_signal_connect (msg, "got-chunk", G_CALLBACK (http_got_chunk), http);
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
  /* A 503 while stopping is the plan, not a fault. */
  else if (status >= 500 && !(http->stopping && status == SOUP_STATUS_SERVICE_UNAVAILABLE))
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

/* ---- life cycle --------------------------------------------------------------- */

MynaHttp *
myna_http_new (MynaServer *server)
{
  MynaHttp *http = g_new0 (MynaHttp, 1);

  http->server = server;
  http->routes = g_ptr_array_new_with_free_func ((GDestroyNotify) http_route_free);
  http->live = g_hash_table_new_full (NULL, NULL, (GDestroyNotify) myna_http_request_unref,
                                      NULL);
  http->max_body = 64 * 1024;
  return http;
}

void
myna_http_set_max_body (MynaHttp *http, gsize max_body)
{
  http->max_body = max_body;
}

static void
http_create_soup (MynaHttp *http)
{
  http->soup = soup_server_new ("server-header", "Myna", NULL);
  soup_server_add_early_handler (http->soup, NULL, http_early, http, NULL);
  soup_server_add_handler (http->soup, NULL, http_handle, http, NULL);
  g_signal_connect (http->soup, "request-finished", G_CALLBACK (http_request_done), http);
  g_signal_connect (http->soup, "request-aborted", G_CALLBACK (http_request_aborted), http);
}

gboolean
myna_http_listen_fd (MynaHttp *http, int fd, GError **error)
{
  g_autoptr(GSocket) socket = g_socket_new_from_fd (fd, error);

  if (socket == NULL)
    {
      close (fd);
      return FALSE;
    }
  if (http->soup == NULL)
    http_create_soup (http);
  if (!soup_server_listen_socket (http->soup, socket, 0, error))
    return FALSE;
  http->listening++;
  return TRUE;
}

void
myna_http_stop (MynaHttp *http)
{
  if (http == NULL || http->stopping)
    return;
  http->stopping = TRUE;
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
    {
      http_drain (http);
      soup_server_disconnect (http->soup);
      g_clear_object (&http->soup);
    }
  /* Whatever is left can no longer be answered. */
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
  for (guint i = 0; i < http->routes->len; i++)
    g_warning ("HTTP route %s was never removed",
               ((HttpRoute *) http->routes->pdata[i])->prefix);
  g_ptr_array_unref (http->routes);
  g_free (http);
}
