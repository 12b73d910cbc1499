/* rest: an administration API over HTTP — status, sessions, accounts and
 * sending messages — on the server's `kind = http` listeners, under
 * /api/v1 (docs/HTTP-API.md).
 *
 * Every request needs `Authorization: Bearer TOKEN` with the token of
 * [module:rest] (or `rest.token` in a [host:…] section); with no token set
 * the API refuses everything with 401, and says so once at load.  Tokens
 * are compared through their SHA-256 digests, in constant time.
 *
 * The route is server-wide, the module per host: the first instance to
 * load claims /api/v1, the last to unload gives it back, and each request
 * acts on one host — `?host=DOMAIN` (or "host" in a user creation body),
 * or the only host with this module when there is just one.  The token
 * must be that host's.
 *
 *   GET    /api/v1/status          {"version", "host", "sessions"}
 *   GET    /api/v1/sessions        {"host", "sessions": [full JIDs]}
 *   GET    /api/v1/users           {"host", "users": [usernames]}
 *   POST   /api/v1/users           {"user", "password", "host"?} → 201, 409 if taken
 *   DELETE /api/v1/users/NAME      204, 404 if unknown
 *   POST   /api/v1/message         {"to", "body", "from"?, "type"?, "subject"?} → 202
 *
 * Bodies are parsed by <myna/api.h>.  A message goes through
 * myna_server_route(), as if its sender had sent it: online resources get
 * it, the offline module stores it for an account with none; the 202
 * comes once that storage is durable.  Account changes go through
 * <myna/accounts.h> as mynactl's do, answered once durable; deleting one
 * fires account/deleted and closes its sessions first, as mynactl does. */
#include <myna/module.h>
#include <myna/http.h>
#include <myna/api.h>
#include <myna/rest.h>
#include <json-glib/json-glib.h>

#include <string.h>

#define REST_PREFIX    MYNA_REST_PREFIX
#define REST_DRAIN_US  (5 * G_USEC_PER_SEC)

/* The module's typed configuration ([module:rest], host overrides), read
 * afresh in each handler so a configuration reload applies at once. */
typedef struct {
  char   *token;
  gint64  min_password_length;
} RestConfig;

typedef struct {
  MynaModule *mod;
  guint       inflight;   /* storage callbacks pending (accounts, messages) */
} Rest;

/* What the instances share: the one route, and who serves which host. */
static GPtrArray *rest_instances;   /* Rest* */
static guint      rest_route;

/* ---- answers ---------------------------------------------------------------- */

static void
rest_respond_json (MynaHttpRequest *req, guint status, JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  g_autofree char *text = json_to_string (root, FALSE);

  myna_http_request_respond (req, status, "application/json", text, -1);
}

static void
rest_method_not_allowed (MynaHttpRequest *req, const char *allow)
{
  myna_http_request_set_header (req, "Allow", allow);
  myna_http_request_respond_error (req, 405, "%s is not allowed here (allowed: %s)",
                                   myna_http_request_get_method (req), allow);
}

static const char *
rest_host_name (Rest *self)
{
  return myna_host_get_name (myna_module_get_host (self->mod));
}

/* ---- authorization ----------------------------------------------------------- */

/* The bearer token of the request, or NULL. */
static const char *
rest_bearer (MynaHttpRequest *req)
{
  const char *auth = myna_http_request_get_header (req, "Authorization");

  if (auth == NULL || g_ascii_strncasecmp (auth, "Bearer ", 7) != 0)
    return NULL;
  auth += 7;
  while (*auth == ' ')
    auth++;
  return *auth != '\0' ? auth : NULL;
}

static void
rest_digest (const char *text, guint8 out[32])
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  gsize len = 32;

  g_checksum_update (sum, (const guchar *) text, (gssize) strlen (text));
  g_checksum_get_digest (sum, out, &len);
}

/* The instance's config snapshot, valid until the handler returns. */
static const RestConfig *
rest_config (Rest *self)
{
  return myna_module_get_config (self->mod);
}

/* Whether @presented is @self's token.  The digests are compared in full
 * whatever they hold, so the time taken says nothing about the token. */
static gboolean
rest_token_ok (Rest *self, const char *presented)
{
  const char *token = rest_config (self)->token;
  guint8 a[32], b[32];
  guint8 diff = 0;

  if (presented == NULL || token == NULL || *token == '\0')
    return FALSE;
  rest_digest (token, a);
  rest_digest (presented, b);
  for (guint i = 0; i < sizeof a; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

static void
rest_unauthorized (MynaHttpRequest *req)
{
  g_debug ("%s %s from %s: no valid token", myna_http_request_get_method (req),
           myna_http_request_get_path (req), myna_http_request_get_peer (req));
  myna_http_request_set_header (req, "WWW-Authenticate", "Bearer realm=\"myna\"");
  myna_http_request_respond_error (req, 401, "a valid bearer token is required");
}

/* Whether the token is any host's: checked before a body is read. */
static gboolean
rest_token_known (MynaHttpRequest *req)
{
  const char *presented = rest_bearer (req);

  for (guint i = 0; rest_instances != NULL && i < rest_instances->len; i++)
    if (rest_token_ok (rest_instances->pdata[i], presented))
      return TRUE;
  return FALSE;
}

/* The instance serving @host, or NULL. */
static Rest *
rest_for_host (MynaHost *host)
{
  for (guint i = 0; rest_instances != NULL && i < rest_instances->len; i++)
    if (myna_module_get_host (((Rest *) rest_instances->pdata[i])->mod) == host)
      return rest_instances->pdata[i];
  return NULL;
}

/* rest/1 token_ok: @host's token (NULL: any host's), answering nothing. */
static gboolean
rest_service_token_ok (MynaHost *host, MynaHttpRequest *req)
{
  Rest *self;

  if (host == NULL)
    return rest_token_known (req);
  self = rest_for_host (host);
  return self != NULL && rest_token_ok (self, rest_bearer (req));
}

/* rest/1 authorize: as token_ok, answering 401 when wrong. */
static gboolean
rest_service_authorize (MynaHost *host, MynaHttpRequest *req)
{
  if (rest_service_token_ok (host, req))
    return TRUE;
  rest_unauthorized (req);
  return FALSE;
}

static const MynaRestService rest_service = {
  .size      = sizeof (MynaRestService),
  .token_ok  = rest_service_token_ok,
  .authorize = rest_service_authorize,
};

/* The instance a request acts on: @named (from a body) or ?host=, else the
 * only one.  NULL once the request has been answered with the reason. */
static Rest *
rest_target (MynaHttpRequest *req, const char *named)
{
  const char *query = myna_http_request_get_query (req, "host");
  g_autofree char *domain = NULL;
  Rest *found = NULL;

  if (named != NULL && query != NULL)
    {
      g_autofree char *q = myna_jid_prep_domain (query, NULL);
      if (g_strcmp0 (q, named) != 0)
        {
          myna_http_request_respond_error (req, 400, "the host in the body and in the URL differ");
          return NULL;
        }
    }
  if (named == NULL && query == NULL)
    {
      if (rest_instances->len == 1)
        found = rest_instances->pdata[0];
      else
        myna_http_request_respond_error (req, 400, "several hosts serve this API: "
                                         "name one with ?host=DOMAIN");
    }
  else
    {
      domain = named != NULL ? g_strdup (named) : myna_jid_prep_domain (query, NULL);
      for (guint i = 0; domain != NULL && i < rest_instances->len; i++)
        if (strcmp (rest_host_name (rest_instances->pdata[i]), domain) == 0)
          found = rest_instances->pdata[i];
      if (found == NULL)
        myna_http_request_respond_error (req, 404, "no host here serves this API under that name");
    }
  if (found != NULL && !rest_token_ok (found, rest_bearer (req)))
    {
      rest_unauthorized (req);
      return NULL;
    }
  return found;
}

/* ---- status and sessions ----------------------------------------------------- */

static void
rest_status (MynaHttpRequest *req)
{
  Rest *self = rest_target (req, NULL);
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(GPtrArray) sessions = NULL;

  if (self == NULL)
    return;
  sessions = myna_host_list_sessions (myna_module_get_host (self->mod));
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, MYNA_VERSION_STRING);
  json_builder_set_member_name (b, "host");
  json_builder_add_string_value (b, rest_host_name (self));
  json_builder_set_member_name (b, "sessions");
  json_builder_add_int_value (b, sessions->len);
  json_builder_end_object (b);
  rest_respond_json (req, 200, b);
}

static int
rest_compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
rest_sessions (MynaHttpRequest *req)
{
  Rest *self = rest_target (req, NULL);
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(GPtrArray) sessions = NULL;
  g_autoptr(GPtrArray) jids = g_ptr_array_new ();

  if (self == NULL)
    return;
  sessions = myna_host_list_sessions (myna_module_get_host (self->mod));
  for (guint i = 0; i < sessions->len; i++)
    {
      MynaJid *jid = myna_session_get_jid (sessions->pdata[i]);
      if (jid != NULL)
        g_ptr_array_add (jids, (gpointer) myna_jid_to_string (jid));
    }
  g_ptr_array_sort (jids, rest_compare_strings);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "host");
  json_builder_add_string_value (b, rest_host_name (self));
  json_builder_set_member_name (b, "sessions");
  json_builder_begin_array (b);
  for (guint i = 0; i < jids->len; i++)
    json_builder_add_string_value (b, jids->pdata[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  rest_respond_json (req, 200, b);
}

/* ---- messages ----------------------------------------------------------------- */

/* The recipient's resources that would take a message now: available,
 * with a non-negative priority. */
static guint
rest_online (MynaHost *host, MynaJid *to)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, myna_jid_get_local (to));
  guint n = 0;

  for (guint i = 0; i < sessions->len; i++)
    if (myna_session_is_available (sessions->pdata[i])
        && myna_session_get_priority (sessions->pdata[i]) >= 0)
      n++;
  return n;
}

/* Why @msg cannot be sent by @self: answered, and FALSE. */
static gboolean
rest_message_check (Rest *self, MynaHttpRequest *req, MynaApiMessage *msg, MynaHost **dest)
{
  MynaServer *server = myna_module_get_server (self->mod);
  const char *domain = myna_jid_get_domain (msg->to);

  *dest = myna_server_get_host (server, domain);
  if (*dest == NULL)
    {
      myna_http_request_respond_error (req, 404, "%s is not served here (no federation)", domain);
      return FALSE;
    }
  if (myna_jid_get_local (msg->to) == NULL)
    {
      myna_http_request_respond_error (req, 400, "\"to\" must be the JID of an account");
      return FALSE;
    }
  if (!myna_account_exists (myna_module_get_storage (self->mod), domain,
                            myna_jid_get_local (msg->to)))
    {
      myna_http_request_respond_error (req, 404, "no account %s",
                                       myna_jid_bare_string (msg->to));
      return FALSE;
    }
  if (msg->from != NULL && strcmp (myna_jid_get_domain (msg->from), rest_host_name (self)) != 0)
    {
      myna_http_request_respond_error (req, 400, "\"from\" must be a JID of %s",
                                       rest_host_name (self));
      return FALSE;
    }
  return TRUE;
}

/* A message's 202, sent once what routing it wrote is durable: the
 * offline module counts the recipient's archive before it appends (one
 * storage round trip), so its append is queued from a callback that runs
 * before the first barrier's; the second barrier covers it. */
#define REST_MESSAGE_BARRIERS 2

typedef struct {
  Rest            *self;
  MynaHttpRequest *req;
  char            *json;
  guint            barriers_left;
} RestSent;

static void
rest_sent_durable (const GError *error, gpointer data)
{
  RestSent *sent = data;

  if (--sent->barriers_left > 0)
    {
      myna_storage_after_writes (myna_module_get_storage (sent->self->mod), rest_sent_durable,
                                 sent, NULL);
      return;
    }
  myna_http_request_respond (sent->req, 202, "application/json", sent->json, -1);
  sent->self->inflight--;
  myna_http_request_unref (sent->req);
  g_free (sent->json);
  g_free (sent);
}

static void
rest_message_accepted (Rest *self, MynaHttpRequest *req, JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root (b);
  RestSent *sent = g_new0 (RestSent, 1);

  sent->self = self;
  sent->req = myna_http_request_ref (req);
  sent->json = json_to_string (root, FALSE);
  sent->barriers_left = REST_MESSAGE_BARRIERS;
  self->inflight++;
  myna_storage_after_writes (myna_module_get_storage (self->mod), rest_sent_durable, sent, NULL);
}

static void
rest_message (MynaHttpRequest *req)
{
  g_auto(MynaApiMessage) msg = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaJid) host_jid = NULL;
  g_autoptr(MynaStanza) stanza = NULL;
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autofree char *uuid = NULL, *id = NULL;
  MynaHost *dest;
  gsize len;
  const char *body = myna_http_request_get_body (req, &len);
  Rest *self;
  guint online;

  if (!myna_api_parse_message (body, len, &msg, &error))
    {
      myna_http_request_respond_error (req, len > MYNA_API_MAX_BODY ? 413 : 400, "%s",
                                       error->message);
      return;
    }
  self = rest_target (req, NULL);
  if (self == NULL || !rest_message_check (self, req, &msg, &dest))
    return;
  host_jid = myna_jid_new (NULL, rest_host_name (self), NULL, NULL);
  uuid = g_uuid_string_random ();
  id = g_strconcat ("rest-", uuid, NULL);
  stanza = myna_api_message_to_stanza (&msg, host_jid, id);
  online = rest_online (dest, msg.to);
  g_debug ("message %s from %s to %s (%u online) via %s", id, myna_stanza_get_from (stanza),
           myna_jid_to_string (msg.to), online, myna_http_request_get_peer (req));
  myna_server_route (myna_module_get_server (self->mod), stanza);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "to");
  json_builder_add_string_value (b, myna_jid_to_string (msg.to));
  json_builder_set_member_name (b, "online");
  json_builder_add_int_value (b, online);
  json_builder_end_object (b);
  rest_message_accepted (self, req, b);
}

/* ---- accounts ----------------------------------------------------------------- */

/* One asynchronous account call answering @req. */
typedef struct {
  Rest            *self;
  MynaHttpRequest *req;
  char            *user;
} RestOp;

static RestOp *
rest_op_new (Rest *self, MynaHttpRequest *req, const char *user)
{
  RestOp *op = g_new0 (RestOp, 1);

  op->self = self;
  op->req = myna_http_request_ref (req);
  op->user = g_strdup (user);
  self->inflight++;
  return op;
}

static void
rest_op_free (gpointer data)
{
  RestOp *op = data;

  op->self->inflight--;
  myna_http_request_unref (op->req);
  g_free (op->user);
  g_free (op);
}

static void
rest_users_list (MynaHttpRequest *req)
{
  Rest *self = rest_target (req, NULL);
  g_autoptr(JsonBuilder) b = json_builder_new_immutable ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) users = NULL;

  if (self == NULL)
    return;
  users = myna_account_list (myna_module_get_storage (self->mod), rest_host_name (self), &error);
  if (users == NULL)
    {
      g_warning ("accounts of %s not listed: %s", rest_host_name (self), error->message);
      myna_http_request_respond_error (req, 500, "the accounts could not be read");
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "host");
  json_builder_add_string_value (b, rest_host_name (self));
  json_builder_set_member_name (b, "users");
  json_builder_begin_array (b);
  for (guint i = 0; users[i] != NULL; i++)
    json_builder_add_string_value (b, users[i]);
  json_builder_end_array (b);
  json_builder_end_object (b);
  rest_respond_json (req, 200, b);
}

static void
rest_user_created (const GError *error, gpointer data)
{
  RestOp *op = data;
  const char *host = rest_host_name (op->self);
  g_autoptr(JsonBuilder) b = NULL;
  g_autofree char *jid = NULL, *location = NULL, *escaped = NULL;

  if (error != NULL)
    {
      guint status = g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_EXISTS) ? 409
                     : g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_BAD_NAME)
                       || g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_BAD_PASSWORD)
                       ? 400 : 500;
      if (status == 500)
        g_warning ("account %s@%s not created: %s", op->user, host, error->message);
      myna_http_request_respond_error (op->req, status, "%s", status == 500
                                       ? "the account could not be created" : error->message);
      return;
    }
  g_info ("account %s@%s created over HTTP from %s", op->user, host,
          myna_http_request_get_peer (op->req));
  jid = g_strdup_printf ("%s@%s", op->user, host);
  escaped = g_uri_escape_string (op->user, NULL, FALSE);
  location = g_strdup_printf (REST_PREFIX "/users/%s", escaped);
  b = json_builder_new_immutable ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "user");
  json_builder_add_string_value (b, op->user);
  json_builder_set_member_name (b, "host");
  json_builder_add_string_value (b, host);
  json_builder_set_member_name (b, "jid");
  json_builder_add_string_value (b, jid);
  json_builder_end_object (b);
  myna_http_request_set_header (op->req, "Location", location);
  rest_respond_json (op->req, 201, b);
}

static void
rest_users_create (MynaHttpRequest *req)
{
  g_auto(MynaApiUser) user = { 0 };
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *body = myna_http_request_get_body (req, &len);
  MynaStorage *storage;
  Rest *self;

  if (!myna_api_parse_user (body, len, &user, &error))
    {
      myna_http_request_respond_error (req, len > MYNA_API_MAX_BODY ? 413 : 400, "%s",
                                       error->message);
      return;
    }
  self = rest_target (req, user.host);
  if (self == NULL)
    return;
  if ((gint64) g_utf8_strlen (user.password, -1)
      < rest_config (self)->min_password_length)
    {
      myna_http_request_respond_error (req, 400, "the password is too short");
      return;
    }
  storage = myna_module_get_storage (self->mod);
  if (myna_account_exists (storage, rest_host_name (self), user.user))
    {
      myna_http_request_respond_error (req, 409, "the account %s@%s exists", user.user,
                                       rest_host_name (self));
      return;
    }
  g_debug ("creating account %s@%s for %s", user.user, rest_host_name (self),
           myna_http_request_get_peer (req));
  myna_account_create (storage, rest_host_name (self), user.user, user.password,
                       rest_user_created, rest_op_new (self, req, user.user), rest_op_free);
}

static void
rest_user_deleted (const GError *error, gpointer data)
{
  RestOp *op = data;

  if (error != NULL && !g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_NOT_FOUND))
    {
      g_warning ("account %s@%s not deleted: %s", op->user, rest_host_name (op->self),
                 error->message);
      myna_http_request_respond_error (op->req, 500, "the account could not be deleted");
      return;
    }
  g_info ("account %s@%s deleted over HTTP from %s", op->user, rest_host_name (op->self),
          myna_http_request_get_peer (op->req));
  myna_http_request_respond (op->req, 204, NULL, NULL, 0);
}

/* DELETE /users/@segment (still percent-encoded). */
static void
rest_user_delete (MynaHttpRequest *req, const char *segment)
{
  g_autofree char *raw = g_uri_unescape_string (segment, "/");
  g_autofree char *local = raw != NULL ? myna_jid_prep_local (raw, NULL) : NULL;
  g_autoptr(MynaJid) bare = NULL;
  g_autoptr(GPtrArray) sessions = NULL;
  MynaHost *host;
  Rest *self;

  if (local == NULL)
    {
      myna_http_request_respond_error (req, 400, "not a valid username");
      return;
    }
  self = rest_target (req, NULL);
  if (self == NULL)
    return;
  host = myna_module_get_host (self->mod);
  if (!myna_account_exists (myna_module_get_storage (self->mod), rest_host_name (self), local))
    {
      myna_http_request_respond_error (req, 404, "no account %s@%s", local, rest_host_name (self));
      return;
    }
  /* As mynactl does: modules forget the account, its sessions end. */
  bare = myna_jid_new (local, rest_host_name (self), NULL, NULL);
  myna_host_account_deleted (host, bare);
  sessions = myna_host_get_sessions (host, local);
  for (guint i = 0; i < sessions->len; i++)
    myna_session_close (sessions->pdata[i], "not-authorized", "account deleted");
  myna_account_delete (myna_module_get_storage (self->mod), rest_host_name (self), local,
                       rest_user_deleted, rest_op_new (self, req, local), rest_op_free);
}

/* ---- dispatch ----------------------------------------------------------------- */

/* Runs @func when the request's method is @method, else answers 405. */
static void
rest_only (MynaHttpRequest *req, const char *method, void (*func) (MynaHttpRequest *))
{
  if (g_strcmp0 (myna_http_request_get_method (req), method) == 0)
    func (req);
  else
    rest_method_not_allowed (req, method);
}

static void
rest_users (MynaHttpRequest *req)
{
  const char *method = myna_http_request_get_method (req);

  if (g_strcmp0 (method, "GET") == 0)
    rest_users_list (req);
  else if (g_strcmp0 (method, "POST") == 0)
    rest_users_create (req);
  else
    rest_method_not_allowed (req, "GET, POST");
}

/* Before the body is read: no body is read, nor kept, for a client that
 * cannot use the API. */
static void
rest_check (MynaHttpRequest *req, gpointer unused)
{
  if (!rest_token_known (req))
    rest_unauthorized (req);
}

static void
rest_handle (MynaHttpRequest *req, gpointer unused)
{
  const char *sub = myna_http_request_get_subpath (req);

  if (!rest_token_known (req))
    rest_unauthorized (req);
  else if (strcmp (sub, "/status") == 0)
    rest_only (req, "GET", rest_status);
  else if (strcmp (sub, "/sessions") == 0)
    rest_only (req, "GET", rest_sessions);
  else if (strcmp (sub, "/message") == 0)
    rest_only (req, "POST", rest_message);
  else if (strcmp (sub, "/users") == 0)
    rest_users (req);
  else if (g_str_has_prefix (sub, "/users/") && sub[7] != '\0' && strchr (sub + 7, '/') == NULL)
    {
      if (g_strcmp0 (myna_http_request_get_method (req), "DELETE") == 0)
        rest_user_delete (req, sub + 7);
      else
        rest_method_not_allowed (req, "DELETE");
    }
  else
    myna_http_request_respond_error (req, 404, "no such resource");
}

/* ---- module ------------------------------------------------------------------- */

static gboolean
rest_load (MynaModule *mod, GError **error)
{
  Rest *self = g_new0 (Rest, 1);
  const RestConfig *cfg = myna_module_get_config (mod);

  self->mod = mod;
  myna_module_set_data (mod, self, g_free);
  if (!myna_module_provide (mod, MYNA_REST_SERVICE, 1, &rest_service, error))
    return FALSE;
  if (rest_instances == NULL)
    {
      rest_route = myna_http_route_add (myna_module_get_server (mod), REST_PREFIX,
                                        rest_handle, NULL, NULL);
      if (rest_route == 0)
        {
          g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                               "the HTTP route " REST_PREFIX " is taken");
          return FALSE;
        }
      myna_http_route_set_check (myna_module_get_server (mod), rest_route, rest_check);
      rest_instances = g_ptr_array_new ();
    }
  g_ptr_array_add (rest_instances, self);
  if (*cfg->token == '\0')
    g_message ("host %s: the REST API is disabled (every request gets 401) until "
               "[module:rest] token is set", rest_host_name (self));
  return TRUE;
}

static gboolean
rest_tick (gpointer unused)
{
  return G_SOURCE_CONTINUE;
}

/* Account calls hash off the main loop and call back on it: the main
 * context runs until they are done, bounded by REST_DRAIN_US. */
static void
rest_drain (Rest *self)
{
  gint64 deadline = g_get_monotonic_time () + REST_DRAIN_US;
  g_autoptr(GMainContext) context = NULL;
  GSource *tick;

  if (self->inflight == 0)
    return;
  context = g_main_context_ref_thread_default ();
  tick = g_timeout_source_new (50);
  g_source_set_callback (tick, rest_tick, NULL, NULL);
  g_source_attach (tick, context);
  while (self->inflight > 0 && g_get_monotonic_time () < deadline)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (tick);
  g_source_unref (tick);
  if (self->inflight > 0)
    g_critical ("rest: %u storage call(s) still pending at unload", self->inflight);
}

static void
rest_unload (MynaModule *mod)
{
  Rest *self = myna_module_get_data (mod);

  /* No new request reaches this host's instance while it drains. */
  g_ptr_array_remove (rest_instances, self);
  rest_drain (self);
  if (rest_instances->len == 0)
    {
      myna_http_route_remove (myna_module_get_server (mod), rest_route);
      rest_route = 0;
      g_clear_pointer (&rest_instances, g_ptr_array_unref);
    }
}

static const MynaConfigKey rest_config_keys[] = {
  MYNA_CONFIG_STRING (RestConfig, token, "",
                      "bearer token every request must carry; empty: the API "
                      "refuses every request with 401"),
  MYNA_CONFIG_INT (RestConfig, min_password_length, "8", 1, 1024,
                   "shortest password accepted for new accounts, in characters"),
  MYNA_CONFIG_END,
};

/* Eager: nothing in XMPP would ever load it. */
MYNA_MODULE_DEFINE (rest,
  .version = "1.0",
  .description = "the HTTP administration API under /api/v1 (needs an http "
                 "listener and a token)",
  .mode    = MYNA_MODULE_EAGER,
  .config  = rest_config_keys,
  .config_size = sizeof (RestConfig),
  .provides = MYNA_STRV ("rest/1"),
  .load    = rest_load,
  .unload  = rest_unload);
