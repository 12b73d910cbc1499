/* legacy_auth: non-SASL authentication (XEP-0078, jabber:iq:auth) for
 * clients of androidpn's era that log in with an IQ instead of SASL.
 *
 * Before authentication the stream feature <auth
 * xmlns='http://jabber.org/features/iq-auth'/> is offered; an iq get
 * answers the fields (username, password, resource: plain passwords only,
 * since passwords are stored as SCRAM keys and a digest needs the clear
 * text); an iq set checks the password (myna_account_check_password, off
 * the main loop), marks the session authenticated without a stream
 * restart (myna_session_set_authenticated_in_stream) and binds the
 * resource (a session holding that full JID is replaced, as the bind
 * module's default does).  The client then sends presence and goes on.
 *
 * Off unless listed in `modules`; outside TLS nothing is offered and
 * requests get <not-allowed/> unless `allow_insecure = true`.  Failed
 * attempts are logged (peer, username) and counted per address with the
 * auth module's failure table (modules/auth/throttle.c, this module's own
 * counts): past max_failures_per_address in failure_window the address
 * gets <policy-violation/> until the window passes. */
#include <myna/module.h>

#include "../auth/throttle.h"

#include <string.h>

#define NS_IQ_AUTH      "jabber:iq:auth"
#define NS_IQ_AUTH_FEAT "http://jabber.org/features/iq-auth"
#define ATTEMPT_KEY     "legacy-auth-attempt"

/* The module's typed configuration ([module:legacy_auth], host overrides). */
typedef struct {
  gboolean allow_insecure;
  gint64   max_failures_per_address;
  gint64   failure_window;      /* milliseconds */
} LegacyAuthConfig;

typedef struct {
  MynaModule   *mod;
  AuthThrottle *failures;       /* "a\tADDR" → failures in the window */
} LegacyAuth;

/* One password check in flight.  The session's data holds a ref, the
 * check another; `session` turns NULL when the session goes. */
typedef struct {
  int          refs;
  LegacyAuth  *self;
  MynaSession *session;
  MynaStanza  *iq;
  char        *user;
  char        *resource;
} LegacyAttempt;

static void
attempt_unref (gpointer data)
{
  LegacyAttempt *a = data;

  if (--a->refs > 0)
    return;
  myna_stanza_unref (a->iq);
  g_free (a->user);
  g_free (a->resource);
  g_free (a);
}

/* The session's data destroy notify: the session is going. */
static void
attempt_detach (gpointer data)
{
  LegacyAttempt *a = data;

  a->session = NULL;
  attempt_unref (a);
}

static const LegacyAuthConfig *
legacy_config (LegacyAuth *self)
{
  return myna_module_get_config (self->mod);
}

static gboolean
legacy_allowed (LegacyAuth *self, MynaSession *s)
{
  return myna_session_is_secure (s) || legacy_config (self)->allow_insecure;
}

static void
legacy_features (MynaSession *s, MynaStanza *features, gpointer data)
{
  if (!myna_session_is_authenticated (s) && legacy_allowed (data, s))
    myna_stanza_add_child (features, "auth", NS_IQ_AUTH_FEAT);
}

/* Answers @iq on the pre-authentication stream (no addresses). */
static void
legacy_send (MynaSession *s, MynaStanza *reply)
{
  myna_stanza_set_attr (reply, "from", NULL);
  myna_stanza_set_attr (reply, "to", NULL);
  myna_session_send (s, reply);
}

static void
legacy_error (MynaSession *s, MynaStanza *iq, MynaErrorType type, const char *condition,
              const char *text)
{
  g_autoptr(MynaStanza) err = myna_stanza_new_error (iq, type, condition, text);

  legacy_send (s, err);
}

static char *
legacy_address_key (MynaSession *s)
{
  return g_strconcat ("a\t", myna_session_get_ip (s), NULL);
}

static void
legacy_checked (const GError *error, gpointer data)
{
  LegacyAttempt *a = data;
  LegacyAuth *self = a->self;
  MynaSession *s = a->session;
  g_autoptr(GError) bind_error = NULL;
  g_autoptr(MynaStanza) reply = NULL;
  g_autoptr(MynaJid) full = NULL;
  MynaSession *holder;

  if (s == NULL || !myna_session_is_open (s))
    return;
  myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);   /* a next attempt may come */
  if (myna_session_is_authenticated (s))
    return;
  if (error != NULL)
    {
      g_autofree char *key = legacy_address_key (s);

      auth_throttle_add (self->failures, key, g_get_monotonic_time ());
      g_message ("%s: legacy authentication as %s@%s failed", myna_session_get_peer (s),
                 a->user, myna_host_get_name (myna_session_get_host (s)));
      legacy_error (s, a->iq, MYNA_ERROR_TYPE_AUTH, "not-authorized", NULL);
      return;
    }
  myna_session_set_authenticated_in_stream (s, a->user);
  full = myna_jid_new (a->user, myna_host_get_name (myna_session_get_host (s)), a->resource,
                       NULL);
  holder = full != NULL ? myna_host_find_session (myna_session_get_host (s), full) : NULL;
  if (holder != NULL)
    myna_session_close (holder, "conflict", "replaced by a new connection");
  if (!myna_session_bind (s, a->resource, &bind_error))
    {
      g_message ("%s: legacy authentication as %s: resource not bound: %s",
                 myna_session_get_peer (s), a->user, bind_error->message);
      legacy_error (s, a->iq, MYNA_ERROR_TYPE_CANCEL, "conflict", NULL);
      myna_session_close (s, "not-authorized", "the resource could not be bound");
      return;
    }
  g_info ("%s: logged in as %s by legacy authentication (XEP-0078)", myna_session_get_peer (s),
          myna_jid_to_string (myna_session_get_jid (s)));
  reply = myna_stanza_new_iq_result (a->iq);
  legacy_send (s, reply);
}

/* iq set: username, password and resource. */
static void
legacy_set (LegacyAuth *self, MynaSession *s, MynaStanza *iq, MynaStanza *query)
{
  const char *username = myna_stanza_get_child_text (query, "username");
  const char *password = myna_stanza_get_child_text (query, "password");
  const char *resource = myna_stanza_get_child_text (query, "resource");
  g_autofree char *local = NULL, *res = NULL, *key = legacy_address_key (s);
  LegacyAttempt *a;

  if (myna_session_get_data (s, ATTEMPT_KEY) != NULL)
    {
      legacy_error (s, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                    "a login is being checked already");
      return;
    }
  if (auth_throttle_count (self->failures, key, g_get_monotonic_time ())
      >= (guint) legacy_config (self)->max_failures_per_address)
    {
      g_message ("%s: legacy authentication refused: too many failures from %s",
                 myna_session_get_peer (s), myna_session_get_ip (s));
      legacy_error (s, iq, MYNA_ERROR_TYPE_WAIT, "policy-violation",
                    "too many failed logins: try again later");
      return;
    }
  if (username == NULL || password == NULL || resource == NULL
      || *password == '\0' || *resource == '\0')
    {
      legacy_error (s, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                    "username, password and resource are required (no digest here)");
      return;
    }
  local = myna_jid_prep_local (username, NULL);
  res = myna_jid_prep_resource (resource, NULL);
  if (local == NULL || res == NULL)
    {
      legacy_error (s, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable",
                    "the username or the resource is not valid");
      return;
    }
  a = g_new0 (LegacyAttempt, 1);
  a->refs = 2;
  a->self = self;
  a->session = s;
  a->iq = myna_stanza_ref (iq);
  a->user = g_steal_pointer (&local);
  a->resource = g_steal_pointer (&res);
  myna_session_set_data (s, ATTEMPT_KEY, a, attempt_detach);
  myna_account_check_password (myna_module_get_storage (self->mod),
                               myna_host_get_name (myna_session_get_host (s)), a->user,
                               password, legacy_checked, a, attempt_unref);
}

/* The stream handler of {jabber:iq:auth}query in a pre-auth <iq/>. */
static MynaResult
legacy_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  LegacyAuth *self = data;
  MynaSession *s = myna_call_get_session (call);
  MynaStanza *query = myna_stanza_first_element (iq);
  const char *type = myna_stanza_get_type (iq);

  if (s == NULL || myna_session_is_authenticated (s)
      || g_strcmp0 (myna_stanza_get_name (iq), "iq") != 0 || query == NULL
      || g_strcmp0 (myna_stanza_get_ns (query), NS_IQ_AUTH) != 0
      || myna_stanza_get_id (iq) == NULL
      || (g_strcmp0 (type, "get") != 0 && g_strcmp0 (type, "set") != 0))
    return MYNA_PASS;
  if (!legacy_allowed (self, s))
    {
      g_message ("%s: legacy authentication refused outside TLS", myna_session_get_peer (s));
      legacy_error (s, iq, MYNA_ERROR_TYPE_CANCEL, "not-allowed",
                    "legacy authentication needs TLS: use STARTTLS first");
      return MYNA_HANDLED;
    }
  if (strcmp (type, "get") == 0)
    {
      g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);
      MynaStanza *q = myna_stanza_add_child (reply, "query", NS_IQ_AUTH);
      const char *username = myna_stanza_get_child_text (query, "username");

      myna_stanza_add_text_child (q, "username", username != NULL ? username : "");
      myna_stanza_add_child (q, "password", NULL);
      myna_stanza_add_child (q, "resource", NULL);
      legacy_send (s, reply);
    }
  else
    legacy_set (self, s, iq, query);
  return MYNA_HANDLED;
}

static gboolean
legacy_sweep (MynaModule *mod, gpointer data)
{
  LegacyAuth *self = data;

  auth_throttle_sweep (self->failures, g_get_monotonic_time ());
  return TRUE;
}

static void
legacy_free (gpointer data)
{
  LegacyAuth *self = data;

  auth_throttle_free (self->failures);
  g_free (self);
}

static gboolean
legacy_load (MynaModule *mod, GError **error)
{
  LegacyAuth *self = g_new0 (LegacyAuth, 1);
  const LegacyAuthConfig *cfg = myna_module_get_config (mod);

  self->mod = mod;
  self->failures = auth_throttle_new (cfg->failure_window * 1000, 100000);
  myna_module_set_data (mod, self, legacy_free);
  myna_module_route_stream (mod, NS_IQ_AUTH, "query", legacy_iq, self, NULL);
  myna_module_add_stream_features (mod, legacy_features, self, NULL);
  myna_module_add_timer (mod, (guint) MIN (cfg->failure_window, 60000), legacy_sweep, self, NULL);
  if (cfg->allow_insecure)
    g_message ("host %s: legacy authentication (XEP-0078) is allowed without TLS: "
               "passwords cross the network in the clear",
               myna_host_get_name (myna_module_get_host (mod)));
  return TRUE;
}

static const MynaConfigKey legacy_config_keys[] = {
  MYNA_CONFIG_BOOL (LegacyAuthConfig, allow_insecure, "false",
                    "offer and accept jabber:iq:auth on unencrypted streams "
                    "(the password travels in the clear: tests only)"),
  MYNA_CONFIG_INT (LegacyAuthConfig, max_failures_per_address, "10", 1, 100000,
                   "failed logins one address may make in failure_window; "
                   "then it is refused (policy-violation)"),
  MYNA_CONFIG_DURATION (LegacyAuthConfig, failure_window, "5m", 1000, 86400000,
                        "how long a failed login counts"),
  MYNA_CONFIG_END,
};

/* Eager: it offers a stream feature and handles pre-authentication IQs. */
MYNA_MODULE_DEFINE (legacy_auth,
  .version = "1.0",
  .description = "non-SASL authentication (XEP-0078 jabber:iq:auth) for old "
                 "clients; TLS only unless allow_insecure",
  .mode    = MYNA_MODULE_EAGER,
  .config  = legacy_config_keys,
  .config_size = sizeof (LegacyAuthConfig),
  .load    = legacy_load);
