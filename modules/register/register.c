/* register: in-band registration (XEP-0077, jabber:iq:register).
 *
 * Before authentication the core hands every jabber:client <iq/> to this
 * module's stream handler: a jabber:iq:register get returns the form
 * (<instructions/>, <username/>, <password/>), a set creates the account
 * through accounts.h; anything else is passed back (the core then closes
 * the stream with <not-authorized/>).  Replies carry neither `from` nor
 * `to`: the session has no JID yet.  The stream feature
 * <register xmlns='http://jabber.org/features/iq-register'/> is offered
 * before authentication when registration is open.
 *
 * Policy, all from [module:register] and read at use time:
 *  - allow_registration (false): closed, a get or set gets <not-allowed/>
 *    (cancel) and no stream feature is offered;
 *  - allow_insecure (false): registration and password changes send the
 *    password in the clear (XEP-0077 §10), so on an unencrypted stream
 *    they get <not-authorized/> (modify, as XEP-0077's password-change
 *    example) unless this is set;
 *  - min_seconds_between (60s): one registration per source address per
 *    interval, else <resource-constraint/> (wait); 0 turns it off;
 *  - min_password_length (8 characters): shorter gets <not-acceptable/>.
 * One stream registers at most one account (<not-acceptable/> after, as
 * XEP-0077 §3.1.1 allows).  Missing or empty fields: <not-acceptable/>;
 * a username that is no valid localpart: <jid-malformed/>; taken:
 * <conflict/>.
 *
 * After authentication (an IQ to the host or one's own bare JID):
 *  - get: <registered/> and the username (never a password);
 *  - set with <username/> and <password/>: changes the password, only
 *    for one's own username (else <forbidden/>); missing fields give
 *    <bad-request/>;
 *  - set with <remove/> alone: fires account/deleted (with the
 *    requester's call: its `from` is their full JID, whose bare part is
 *    the account), deletes the account, answers, then closes every
 *    session of the account with the stream error <not-authorized/>
 *    (XEP-0077 §3.2).  The event goes first, in the same main-loop turn
 *    as the deletion is queued, so no module can store anything for the
 *    account in between.
 *
 * Asynchronous account calls never keep a session pointer: before
 * authentication the session owns a plain GObject the callback holds
 * weakly (freed by GLib's own g_object_unref, so it may outlive this
 * module); after it, replies are routed to the requester's full JID.  A
 * call still pending when the module unloads keeps the module's state and
 * code until its callback has run (the core holds it). */
#include <myna/module.h>
#include <glib-object.h>

#include <string.h>

#define NS_REGISTER          "jabber:iq:register"
#define NS_REGISTER_FEATURE  "http://jabber.org/features/iq-register"
#define REGISTER_TOKEN       "register-token"
#define REGISTER_DONE        "register-done"
#define REGISTER_RECENT_MAX  1024

/* The module's typed configuration ([module:register], host overrides), read
 * afresh in each handler so a configuration reload applies at once. */
typedef struct {
  gboolean allow_registration;
  gboolean allow_insecure;
  gint64   min_seconds_between;   /* milliseconds */
  gint64   min_password_length;
} RegisterConfig;

typedef struct {
  MynaModule *mod;
  GHashTable *recent;    /* source address → gint64* (monotonic µs) */
} Register;

/* One asynchronous account call. */
typedef struct {
  Register   *self;
  MynaStanza *iq;
  GWeakRef    token;     /* before authentication: the session's token */
  char       *local;
  char       *ip;
  gint64      previous;  /* the address's record before this attempt */
  char       *user;      /* after authentication: the bare JID */
} RegisterOp;

static RegisterOp *
register_op_new (Register *self, MynaStanza *iq, const char *local)
{
  RegisterOp *op = g_new0 (RegisterOp, 1);

  op->self = self;
  op->iq = myna_stanza_ref (iq);
  op->local = g_strdup (local);
  g_weak_ref_init (&op->token, NULL);
  return op;
}

static void
register_op_free (gpointer data)
{
  RegisterOp *op = data;

  myna_stanza_unref (op->iq);
  g_weak_ref_clear (&op->token);
  g_free (op->local);
  g_free (op->ip);
  g_free (op->user);
  g_free (op);
}

static const char *
register_host_name (Register *self)
{
  return myna_host_get_name (myna_module_get_host (self->mod));
}

/* ---- sessions before authentication --------------------------------------- */

/* Lets @op find @session later, or learn it is gone. */
static void
register_watch (RegisterOp *op, MynaSession *session)
{
  GObject *token = myna_session_get_data (session, REGISTER_TOKEN);

  if (token == NULL)
    {
      token = g_object_new (G_TYPE_OBJECT, NULL);
      g_object_set_data (token, "session", session);
      myna_session_set_data (session, REGISTER_TOKEN, token, g_object_unref);
    }
  g_weak_ref_set (&op->token, token);
}

/* The watched session, or NULL when it is gone; *@hold keeps the token
 * (and so the session) alive meanwhile. */
static MynaSession *
register_watched (RegisterOp *op, GObject **hold)
{
  *hold = g_weak_ref_get (&op->token);
  return *hold != NULL ? g_object_get_data (*hold, "session") : NULL;
}

/* Sends @stanza to a session with no JID yet: no `from`, no `to`. */
static void
register_send_preauth (MynaSession *session, MynaStanza *stanza)
{
  myna_stanza_set_attr (stanza, "from", NULL);
  myna_stanza_set_attr (stanza, "to", NULL);
  myna_session_send (session, stanza);
}

static void
register_error_preauth (MynaSession *session, MynaStanza *iq, MynaErrorType type,
                        const char *condition, const char *text)
{
  g_autoptr(MynaStanza) error = myna_stanza_new_error (iq, type, condition, text);

  register_send_preauth (session, error);
}

/* ---- the per-address rate limit ------------------------------------------ */

/* The instance's config snapshot, valid until the handler returns. */
static const RegisterConfig *
register_config (Register *self)
{
  return myna_module_get_config (self->mod);
}

static gint64
register_interval_us (Register *self)
{
  return register_config (self)->min_seconds_between * 1000;
}

static void
register_prune (Register *self, gint64 now, gint64 interval)
{
  GHashTableIter it;
  gpointer value;

  if (g_hash_table_size (self->recent) < REGISTER_RECENT_MAX)
    return;
  g_hash_table_iter_init (&it, self->recent);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (now - *(gint64 *) value >= interval)
      g_hash_table_iter_remove (&it);
}

/* Whether @ip registered less than the interval ago. */
static gboolean
register_too_soon (Register *self, const char *ip)
{
  gint64 interval = register_interval_us (self);
  gint64 *last = g_hash_table_lookup (self->recent, ip);

  return interval > 0 && last != NULL && g_get_monotonic_time () - *last < interval;
}

/* Notes an attempt from @op->ip now, remembering the previous record. */
static void
register_note (Register *self, RegisterOp *op)
{
  gint64 now = g_get_monotonic_time ();
  gint64 *last = g_hash_table_lookup (self->recent, op->ip);

  register_prune (self, now, register_interval_us (self));
  op->previous = last != NULL ? *last : 0;
  last = g_new (gint64, 1);
  *last = now;
  g_hash_table_insert (self->recent, g_strdup (op->ip), last);
}

/* A failed attempt does not count. */
static void
register_unnote (Register *self, RegisterOp *op)
{
  gint64 *last;

  if (op->previous == 0)
    {
      g_hash_table_remove (self->recent, op->ip);
      return;
    }
  last = g_new (gint64, 1);
  *last = op->previous;
  g_hash_table_insert (self->recent, g_strdup (op->ip), last);
}

/* ---- registration --------------------------------------------------------- */

static void
register_form (Register *self, MynaSession *session, MynaStanza *iq)
{
  g_autoptr(MynaStanza) reply = myna_stanza_build_result (
      iq, "<query xmlns='" NS_REGISTER "'><instructions>Choose a username and password "
          "to register with %s.</instructions><username/><password/></query>",
      register_host_name (self));

  register_send_preauth (session, reply);
}

/* Maps an accounts.h error to a stanza error. */
static void
register_account_error (const GError *error, MynaErrorType *type, const char **condition)
{
  *type = MYNA_ERROR_TYPE_MODIFY;
  if (g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_BAD_NAME))
    *condition = "jid-malformed";
  else if (g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_BAD_PASSWORD))
    *condition = "not-acceptable";
  else
    {
      *type = MYNA_ERROR_TYPE_CANCEL;
      if (g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_EXISTS))
        *condition = "conflict";
      else if (g_error_matches (error, MYNA_ACCOUNT_ERROR, MYNA_ACCOUNT_ERROR_NOT_FOUND))
        *condition = "item-not-found";
      else
        {
          *type = MYNA_ERROR_TYPE_WAIT;
          *condition = "internal-server-error";
        }
    }
}

static void
register_created (const GError *error, gpointer user_data)
{
  RegisterOp *op = user_data;
  g_autoptr(GObject) hold = NULL;
  MynaSession *session = register_watched (op, &hold);
  g_autoptr(MynaStanza) reply = NULL;

  if (error != NULL)
    {
      MynaErrorType type;
      const char *condition;

      register_unnote (op->self, op);
      register_account_error (error, &type, &condition);
      if (strcmp (condition, "internal-server-error") == 0)
        g_warning ("account %s@%s not created: %s", op->local,
                   register_host_name (op->self), error->message);
      if (session != NULL)
        register_error_preauth (session, op->iq, type, condition, NULL);
      return;
    }
  g_info ("account %s@%s registered in-band from %s", op->local,
          register_host_name (op->self), op->ip);
  if (session == NULL)
    return;
  myna_session_set_data (session, REGISTER_DONE, GINT_TO_POINTER (1), NULL);
  reply = myna_stanza_new_iq_result (op->iq);
  register_send_preauth (session, reply);
}

/* The text of child @name of @query, or NULL when absent or empty. */
static const char *
register_field (MynaStanza *query, const char *name)
{
  const char *text = myna_stanza_get_child_text (query, name);

  return text != NULL && *text != '\0' ? text : NULL;
}

static gboolean
register_password_ok (Register *self, const char *password)
{
  return g_utf8_validate (password, -1, NULL)
         && (gint64) g_utf8_strlen (password, -1)
              >= register_config (self)->min_password_length;
}

/* Why the registration in @query cannot be tried: the condition (and
 * *@type, *@text), or NULL when it can; *@local gets the username. */
static const char *
register_check_new (Register *self, MynaSession *session, MynaStanza *query,
                    const char *ip, char **local, MynaErrorType *type, const char **text)
{
  const char *username = register_field (query, "username");
  const char *password = register_field (query, "password");

  *type = MYNA_ERROR_TYPE_MODIFY;
  *text = NULL;
  if (myna_stanza_get_child (query, "remove", NULL) != NULL)
    {
      *type = MYNA_ERROR_TYPE_WAIT;
      *text = "authenticate before removing an account";
      return "unexpected-request";
    }
  if (myna_session_get_data (session, REGISTER_DONE) != NULL)
    {
      *text = "one account per stream: authenticate now";
      return "not-acceptable";
    }
  if (username == NULL || password == NULL)
    {
      *text = "a username and a password are required";
      return "not-acceptable";
    }
  *local = myna_jid_prep_local (username, NULL);
  if (*local == NULL)
    {
      *text = "that username is not valid";
      return "jid-malformed";
    }
  if (!register_password_ok (self, password))
    {
      *text = "the password is too short";
      return "not-acceptable";
    }
  if (register_too_soon (self, ip))
    {
      g_message ("registration from %s refused: too soon after the last one", ip);
      *type = MYNA_ERROR_TYPE_WAIT;
      *text = "too many registrations from your address; try again later";
      return "resource-constraint";
    }
  if (myna_account_exists (myna_module_get_storage (self->mod), register_host_name (self),
                           *local))
    {
      *type = MYNA_ERROR_TYPE_CANCEL;
      return "conflict";
    }
  return NULL;
}

static void
register_create (Register *self, MynaSession *session, MynaStanza *iq, MynaStanza *query)
{
  g_autofree char *local = NULL;
  g_autofree char *ip = g_strdup (myna_session_get_ip (session) ?: "");
  MynaErrorType type;
  const char *text;
  const char *condition = register_check_new (self, session, query, ip, &local, &type, &text);
  RegisterOp *op;

  if (condition != NULL)
    {
      register_error_preauth (session, iq, type, condition, text);
      return;
    }
  op = register_op_new (self, iq, local);
  op->ip = g_steal_pointer (&ip);
  register_watch (op, session);
  register_note (self, op);
  myna_account_create (myna_module_get_storage (self->mod), register_host_name (self),
                       local, register_field (query, "password"), register_created, op,
                       register_op_free);
}

/* Whether registration is possible on @session now: NULL, or the
 * condition to refuse with (and *@type). */
static const char *
register_refusal (Register *self, MynaSession *session, MynaErrorType *type)
{
  if (!register_config (self)->allow_registration)
    {
      *type = MYNA_ERROR_TYPE_CANCEL;
      return "not-allowed";
    }
  if (!myna_session_is_secure (session)
      && !register_config (self)->allow_insecure)
    {
      *type = MYNA_ERROR_TYPE_MODIFY;
      return "not-authorized";
    }
  return NULL;
}

/* The stream handler: every jabber:client <iq/> before authentication. */
static MynaResult
register_preauth (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Register *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaStanza *query = myna_stanza_first_element (iq);
  const char *type = myna_stanza_get_type (iq);
  MynaErrorType error_type;
  const char *refusal;

  if (session == NULL || myna_session_is_authenticated (session)
      || g_strcmp0 (myna_stanza_get_name (iq), "iq") != 0 || query == NULL
      || g_strcmp0 (myna_stanza_get_name (query), "query") != 0
      || g_strcmp0 (myna_stanza_get_ns (query), NS_REGISTER) != 0
      || myna_stanza_get_id (iq) == NULL
      || (g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0))
    return MYNA_PASS;
  refusal = register_refusal (self, session, &error_type);
  if (refusal != NULL)
    register_error_preauth (session, iq, error_type, refusal, NULL);
  else if (strcmp (type, "get") == 0)
    register_form (self, session, iq);
  else
    register_create (self, session, iq, query);
  return MYNA_HANDLED;
}

static void
register_features (MynaSession *session, MynaStanza *features, gpointer data)
{
  MynaErrorType unused;

  if (!myna_session_is_authenticated (session)
      && register_refusal (data, session, &unused) == NULL)
    myna_stanza_add_child (features, "register", NS_REGISTER_FEATURE);
}

/* ---- after authentication ------------------------------------------------- */

/* A reply to an authenticated requester, routed to their full JID (a
 * session gone meanwhile simply misses it); from their bare JID when the
 * request had no `to`. */
static void
register_route_reply (RegisterOp *op, MynaStanza *reply)
{
  if (myna_stanza_get_from (reply) == NULL)
    myna_stanza_set_attr (reply, "from", op->user);
  myna_server_route (myna_module_get_server (op->self->mod), reply);
}

static void
register_route_result (RegisterOp *op, const GError *error)
{
  g_autoptr(MynaStanza) reply = NULL;

  if (error != NULL)
    {
      MynaErrorType type;
      const char *condition;

      register_account_error (error, &type, &condition);
      reply = myna_stanza_new_error (op->iq, type, condition, NULL);
    }
  else
    reply = myna_stanza_new_iq_result (op->iq);
  register_route_reply (op, reply);
}

static void
register_password_changed (const GError *error, gpointer user_data)
{
  RegisterOp *op = user_data;

  if (error != NULL)
    g_warning ("password of %s not changed: %s", op->user, error->message);
  else
    g_info ("password of %s changed in-band", op->user);
  register_route_result (op, error);
}

/* Why the password change in @query cannot be done: the condition (and
 * *@type, *@text), or NULL when it can. */
static const char *
register_check_change (Register *self, MynaCall *call, MynaStanza *query,
                       MynaErrorType *type, const char **text)
{
  MynaSession *session = myna_call_get_session (call);
  const char *username = register_field (query, "username");
  const char *password = register_field (query, "password");
  g_autofree char *local = NULL;

  *type = MYNA_ERROR_TYPE_MODIFY;
  if (session != NULL && !myna_session_is_secure (session)
      && !register_config (self)->allow_insecure)
    {
      *text = "change passwords over an encrypted stream";
      return "not-authorized";
    }
  if (username == NULL || password == NULL)
    {
      *text = "a username and a new password are required";
      return "bad-request";
    }
  local = myna_jid_prep_local (username, NULL);
  if (g_strcmp0 (local, myna_jid_get_local (myna_call_get_from (call))) != 0)
    {
      *type = MYNA_ERROR_TYPE_AUTH;
      *text = "you can only change your own password";
      return "forbidden";
    }
  if (!register_password_ok (self, password))
    {
      *text = "the password is too short";
      return "not-acceptable";
    }
  return NULL;
}

static void
register_change_password (Register *self, MynaCall *call, MynaStanza *iq, MynaStanza *query)
{
  MynaJid *from = myna_call_get_from (call);
  MynaErrorType type;
  const char *text = NULL;
  const char *condition = register_check_change (self, call, query, &type, &text);
  RegisterOp *op;

  if (condition != NULL)
    {
      myna_call_reply_error (call, iq, type, condition, text);
      return;
    }
  op = register_op_new (self, iq, myna_jid_get_local (from));
  op->user = g_strdup (myna_jid_bare_string (from));
  myna_account_set_password (myna_module_get_storage (self->mod), register_host_name (self),
                             op->local, register_field (query, "password"),
                             register_password_changed, op, register_op_free);
}

/* The account is gone: answer, then end every session of it. */
static void
register_removed (const GError *error, gpointer user_data)
{
  RegisterOp *op = user_data;
  g_autoptr(GPtrArray) sessions = NULL;

  if (error != NULL)
    {
      g_warning ("account %s not removed: %s", op->user, error->message);
      register_route_result (op, error);
      return;
    }
  g_info ("account %s removed in-band", op->user);
  register_route_result (op, NULL);
  sessions = myna_host_get_sessions (myna_module_get_host (op->self->mod), op->local);
  for (guint i = 0; i < sessions->len; i++)
    myna_session_close (sessions->pdata[i], "not-authorized", "the account was removed");
}

static guint
register_count_elements (MynaStanza *parent)
{
  guint n = 0;

  for (guint i = 0; i < myna_stanza_get_n_children (parent); i++)
    if (!myna_stanza_is_text (myna_stanza_get_child_nth (parent, i)))
      n++;
  return n;
}

static void
register_remove (Register *self, MynaCall *call, MynaStanza *iq, MynaStanza *query)
{
  MynaJid *from = myna_call_get_from (call);
  RegisterOp *op;

  if (register_count_elements (query) != 1)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request",
                             "<remove/> must be alone");
      return;
    }
  op = register_op_new (self, iq, myna_jid_get_local (from));
  op->user = g_strdup (myna_jid_bare_string (from));
  myna_host_account_deleted (myna_call_get_host (call), from);
  myna_account_delete (myna_module_get_storage (self->mod), register_host_name (self),
                       op->local, register_removed, op, register_op_free);
}

static void
register_registered (MynaCall *call, MynaStanza *iq)
{
  myna_call_reply (call, iq, "<query xmlns='" NS_REGISTER "'><registered/>"
                             "<username>%s</username></query>",
                   myna_jid_get_local (myna_call_get_from (call)));
}

/* jabber:iq:register to the host or one's own bare JID, authenticated. */
static MynaResult
register_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Register *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  MynaStanza *query = myna_stanza_get_child (iq, "query", NS_REGISTER);

  if (from == NULL || myna_jid_get_local (from) == NULL
      || strcmp (myna_jid_get_domain (from), register_host_name (self)) != 0
      || (myna_jid_get_local (to) != NULL && !myna_jid_bare_equal (to, from)))
    return MYNA_PASS;             /* someone else's account: not ours to answer */
  if (g_strcmp0 (myna_stanza_get_type (iq), "get") == 0)
    register_registered (call, iq);
  else if (myna_stanza_get_child (query, "remove", NULL) != NULL)
    register_remove (self, call, iq, query);
  else
    register_change_password (self, call, iq, query);
  return MYNA_HANDLED;
}

/* ---- module --------------------------------------------------------------- */

static void
register_free (gpointer data)
{
  Register *self = data;

  g_hash_table_unref (self->recent);
  g_free (self);
}

static gboolean
register_load (MynaModule *mod, GError **error)
{
  Register *self = g_new0 (Register, 1);

  self->mod = mod;
  self->recent = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  myna_module_set_data (mod, self, register_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_REGISTER, "query",
                             register_iq, self, NULL))
    {
      g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                           "{" NS_REGISTER "}query is already routed to another module");
      return FALSE;
    }
  myna_module_route_stream (mod, MYNA_NS_CLIENT, "iq", register_preauth, self, NULL);
  myna_module_add_stream_features (mod, register_features, self, NULL);
  return TRUE;
}

static const MynaConfigKey register_config_keys[] = {
  MYNA_CONFIG_BOOL (RegisterConfig, allow_registration, "false",
                    "let anyone create an account in-band; closed, requests "
                    "get not-allowed and no stream feature is offered"),
  MYNA_CONFIG_BOOL (RegisterConfig, allow_insecure, "false",
                    "allow registration and password changes on unencrypted "
                    "streams (tests only)"),
  MYNA_CONFIG_DURATION (RegisterConfig, min_seconds_between, "60s", 0, 86400000,
                        "least time between two registrations from one "
                        "address; 0 turns the limit off"),
  MYNA_CONFIG_INT (RegisterConfig, min_password_length, "8", 1, 1024,
                   "shortest password accepted, in characters"),
  MYNA_CONFIG_END,
};

/* Eager: it offers a stream feature and handles pre-authentication IQs. */
MYNA_MODULE_DEFINE (register,
  .version = "1.0",
  .description = "in-band registration (XEP-0077)",
  .serves  = MYNA_STRV (NS_REGISTER),
  .features = MYNA_STRV (NS_REGISTER),
  .mode    = MYNA_MODULE_EAGER,
  .config  = register_config_keys,
  .config_size = sizeof (RegisterConfig),
  .load    = register_load);
