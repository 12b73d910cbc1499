/* auth: SASL authentication (RFC 6120 §6) — SCRAM-SHA-256, SCRAM-SHA-1
 * (RFC 5802/7677) and their -PLUS variants with tls-exporter or
 * tls-server-end-point channel binding (RFC 9266, XEP-0440), and PLAIN
 * only inside TLS.  Passwords are stored only as SCRAM keys (accounts.h);
 * PLAIN's PBKDF2 runs off the main loop.  Failed attempts are throttled per
 * account and per source address. */
#include <myna/module.h>

#include <string.h>

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define ATTEMPT_KEY "auth-attempt"

typedef struct {
  guint  count;
  gint64 since;
} Failures;

typedef struct {
  MynaModule *mod;
  GHashTable *failures;     /* "ip:…" / "user:…" → Failures* */
  char      **mechanisms;
  gboolean    allow_plain_insecure;
  guint       max_failures;
  gint64      window_us;
} Auth;

/* One SASL exchange of one session.  The session's data holds a ref; an
 * asynchronous check holds another and finds `session` NULL if the
 * session went away meanwhile. */
typedef struct {
  int           refs;
  Auth         *auth;
  MynaSession  *session;
  char         *mechanism;
  MynaScramHash hash;
  gboolean      plus;
  gboolean      waiting_initial;  /* <auth/> came without an initial response */
  gboolean      busy;             /* a password check is running */
  char         *username;
  char         *ip;               /* the client's address, kept for late results */
  char         *client_first_bare;
  char         *server_first;
  char         *gs2_header;
  char         *nonce;
  GBytes       *cb_data;
  MynaScramCredentials *creds;
} Attempt;

static Attempt *
attempt_ref (Attempt *a)
{
  a->refs++;
  return a;
}

static void
attempt_unref (Attempt *a)
{
  if (--a->refs > 0)
    return;
  g_free (a->mechanism);
  g_free (a->username);
  g_free (a->ip);
  g_free (a->client_first_bare);
  g_free (a->server_first);
  g_free (a->gs2_header);
  g_free (a->nonce);
  g_clear_pointer (&a->cb_data, g_bytes_unref);
  myna_scram_credentials_free (a->creds);
  g_free (a);
}

/* Runs when the session's data is cleared: the session is gone. */
static void
attempt_detach (gpointer data)
{
  Attempt *a = data;
  a->session = NULL;
  attempt_unref (a);
}

/* ---- replies -------------------------------------------------------------- */

/* The text of a parser's error; a parser that fails always sets one, but a
 * missing one must not take the server down. */
static const char *
auth_error_text (const GError *error)
{
  return error != NULL ? error->message : "malformed SASL message";
}

static void
auth_send (MynaSession *s, const char *name, const char *b64)
{
  g_autoptr(MynaStanza) e = myna_stanza_new (name, NS_SASL);

  if (b64 != NULL)
    myna_stanza_append_text (e, b64, -1);
  myna_session_send (s, e);
}

static void
auth_send_b64 (MynaSession *s, const char *name, const char *data, gsize len)
{
  g_autofree char *b64 = len > 0 ? g_base64_encode ((const guchar *) data, len) : g_strdup ("=");
  auth_send (s, name, b64);
}

static void
auth_failure (MynaSession *s, const char *condition, const char *text)
{
  g_autoptr(MynaStanza) f = myna_stanza_new ("failure", NS_SASL);

  myna_stanza_add_child (f, condition, NS_SASL);
  if (text != NULL)
    myna_stanza_add_text_child (f, "text", text);
  myna_session_send (s, f);
  myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);
}

/* ---- throttling ----------------------------------------------------------- */

static Failures *
auth_failures (Auth *auth, const char *kind, const char *who, gboolean create)
{
  g_autofree char *key = g_strconcat (kind, ":", who, NULL);
  Failures *f = g_hash_table_lookup (auth->failures, key);
  gint64 now = g_get_monotonic_time ();

  if (f != NULL && now - f->since > auth->window_us)
    {
      g_hash_table_remove (auth->failures, key);
      f = NULL;
    }
  if (f == NULL && create)
    {
      f = g_new0 (Failures, 1);
      f->since = now;
      g_hash_table_insert (auth->failures, g_steal_pointer (&key), f);
    }
  return f;
}

static gboolean
auth_throttled (Auth *auth, MynaSession *s, const char *user)
{
  Failures *by_ip = auth_failures (auth, "ip", myna_session_get_ip (s), FALSE);
  Failures *by_user = user != NULL ? auth_failures (auth, "user", user, FALSE) : NULL;

  return (by_ip != NULL && by_ip->count >= auth->max_failures)
         || (by_user != NULL && by_user->count >= auth->max_failures);
}

static void
auth_record_failure (Auth *auth, MynaSession *s, const char *user)
{
  auth_failures (auth, "ip", myna_session_get_ip (s), TRUE)->count++;
  if (user != NULL)
    auth_failures (auth, "user", user, TRUE)->count++;
  g_message ("%s: authentication failed for '%s'", myna_session_get_peer (s),
             user != NULL ? user : "?");
}

/* Counts an attempt against the address and the account up front. */
static void
auth_record_attempt (Auth *auth, MynaSession *s, const char *user)
{
  auth_failures (auth, "ip", myna_session_get_ip (s), TRUE)->count++;
  if (user != NULL)
    auth_failures (auth, "user", user, TRUE)->count++;
}

/* Takes back the counts of an attempt that turned out right. */
static void
auth_forget_attempt (Auth *auth, const char *ip, const char *user)
{
  Failures *f = auth_failures (auth, "ip", ip, FALSE);

  if (f != NULL && f->count > 0)
    f->count--;
  f = user != NULL ? auth_failures (auth, "user", user, FALSE) : NULL;
  if (f != NULL && f->count > 0)
    f->count--;
}

static void
auth_succeed (Auth *auth, MynaSession *s, const char *user, const char *b64_data)
{
  /* @user may belong to the attempt, which the session data frees. */
  g_autofree char *name = g_strdup (user);
  g_autofree char *key = g_strconcat ("user:", name, NULL);

  g_hash_table_remove (auth->failures, key);
  auth_send (s, "success", b64_data);
  myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);
  myna_session_set_authenticated (s, name);
}

/* ---- mechanisms offered ----------------------------------------------------- */

static const char *const cb_types[] = { "tls-exporter", "tls-server-end-point", "tls-unique", NULL };

static gboolean
auth_mechanism_offered (Auth *auth, MynaSession *s, const char *mech)
{
  if (mech == NULL || !g_strv_contains ((const char *const *) auth->mechanisms, mech))
    return FALSE;
  if (strcmp (mech, "PLAIN") == 0)
    return myna_session_is_secure (s) || auth->allow_plain_insecure;
  if (g_str_has_suffix (mech, "-PLUS"))
    {
      for (guint i = 0; cb_types[i] != NULL; i++)
        {
          g_autoptr(GBytes) cb = myna_session_get_channel_binding (s, cb_types[i]);
          if (cb != NULL)
            return TRUE;
        }
      return FALSE;
    }
  return g_str_has_prefix (mech, "SCRAM-SHA-");
}

static void
auth_features (MynaSession *s, MynaStanza *features, gpointer data)
{
  Auth *auth = data;

  if (myna_session_is_authenticated (s))
    return;
  MynaStanza *mechs = myna_stanza_add_child (features, "mechanisms", NS_SASL);
  for (guint i = 0; auth->mechanisms[i] != NULL; i++)
    if (auth_mechanism_offered (auth, s, auth->mechanisms[i]))
      myna_stanza_add_text_child (mechs, "mechanism", auth->mechanisms[i]);
  /* XEP-0440: which channel binding types this stream supports. */
  MynaStanza *cbs = NULL;
  for (guint i = 0; cb_types[i] != NULL; i++)
    {
      g_autoptr(GBytes) cb = myna_session_get_channel_binding (s, cb_types[i]);
      if (cb == NULL)
        continue;
      if (cbs == NULL)
        cbs = myna_stanza_add_child (features, "sasl-channel-binding", NS_SASL_CB);
      myna_stanza_set_attr (myna_stanza_add_child (cbs, "channel-binding", NULL), "type",
                            cb_types[i]);
    }
}

/* ---- PLAIN ----------------------------------------------------------------- */

static void
plain_checked (const GError *error, gpointer user_data)
{
  Attempt *a = user_data;

  a->busy = FALSE;
  if (error == NULL)
    auth_forget_attempt (a->auth, a->ip, a->username);
  if (a->session == NULL || !myna_session_is_open (a->session))
    return;                         /* the client left meanwhile */
  if (error != NULL)
    {
      g_message ("%s: authentication failed for '%s'", myna_session_get_peer (a->session),
                 a->username);
      auth_failure (a->session, "not-authorized", NULL);
      return;
    }
  auth_succeed (a->auth, a->session, a->username, NULL);
}

static void
plain_start (Attempt *a, GBytes *msg)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *authzid = NULL, *authcid = NULL, *password = NULL;
  gsize len;
  const char *data = g_bytes_get_data (msg, &len);
  MynaSession *s = a->session;

  if (!myna_sasl_parse_plain (data, len, &authzid, &authcid, &password, &error))
    {
      auth_failure (s, "malformed-request", auth_error_text (error));
      return;
    }
  a->username = myna_jid_prep_local (authcid, NULL);
  if (a->username == NULL)
    {
      auth_record_failure (a->auth, s, NULL);
      auth_failure (s, "not-authorized", NULL);
      return;
    }
  if (authzid != NULL && g_strcmp0 (authzid, a->username) != 0)
    {
      g_autofree char *self = g_strdup_printf ("%s@%s", a->username,
                                               myna_host_get_name (myna_session_get_host (s)));
      if (g_strcmp0 (authzid, self) != 0)
        {
          auth_failure (s, "invalid-authzid", NULL);
          return;
        }
    }
  if (auth_throttled (a->auth, s, a->username))
    {
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  /* Counted as a failure until it succeeds, so that guesses sent in
   * parallel cannot all get past the throttle. */
  auth_record_attempt (a->auth, s, a->username);
  a->busy = TRUE;
  myna_account_check_password (myna_host_get_storage (myna_session_get_host (s)),
                               myna_host_get_name (myna_session_get_host (s)), a->username,
                               password, plain_checked, attempt_ref (a),
                               (GDestroyNotify) attempt_unref);
  memset (password, 0, strlen (password));
}

/* ---- SCRAM ----------------------------------------------------------------- */

/* Checks the gs2 channel-binding flag against the mechanism. */
static const char *
scram_check_cbind (Attempt *a, MynaScramClientFirst *cf)
{
  if (a->plus)
    {
      if (cf->cbind_flag != 'p' || !g_strv_contains (cb_types, cf->cbind_name))
        return "a -PLUS mechanism needs p=tls-exporter, p=tls-server-end-point or (TLS 1.2) p=tls-unique";
      a->cb_data = myna_session_get_channel_binding (a->session, cf->cbind_name);
      if (a->cb_data == NULL)
        return "that channel binding type is not available on this stream";
      return NULL;
    }
  if (cf->cbind_flag == 'p')
    return "channel binding requested with a mechanism without -PLUS";
  /* 'y': the client could bind but thinks we can't; if we offer -PLUS that
   * is a downgrade (RFC 5802 §6). */
  if (cf->cbind_flag == 'y' && auth_mechanism_offered (a->auth, a->session,
                                                       a->hash == MYNA_SCRAM_SHA1
                                                         ? "SCRAM-SHA-1-PLUS"
                                                         : "SCRAM-SHA-256-PLUS"))
    return "channel binding downgrade detected";
  return NULL;
}

static void
scram_first (Attempt *a, GBytes *msg)
{
  g_autoptr(GError) error = NULL;
  MynaScramClientFirst cf;
  gsize len;
  const char *data = g_bytes_get_data (msg, &len);
  MynaSession *s = a->session;
  MynaHost *host = myna_session_get_host (s);

  if (!myna_scram_parse_client_first (data, len, &cf, &error))
    {
      auth_failure (s, "malformed-request", auth_error_text (error));
      return;
    }
  const char *problem = scram_check_cbind (a, &cf);
  if (problem != NULL)
    {
      myna_scram_client_first_clear (&cf);
      auth_failure (s, "not-authorized", problem);
      return;
    }
  a->username = myna_jid_prep_local (cf.username, NULL);
  if (a->username != NULL && auth_throttled (a->auth, s, a->username))
    {
      myna_scram_client_first_clear (&cf);
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  a->creds = a->username != NULL
               ? myna_account_get_scram (myna_host_get_storage (host), myna_host_get_name (host),
                                         a->username, a->hash)
               : NULL;
  /* An unknown user gets a plausible challenge and fails at the end, so
   * that accounts cannot be enumerated. */
  g_autofree char *snonce = myna_scram_nonce (18);
  g_autofree char *salt64 = NULL;
  if (a->creds != NULL)
    salt64 = g_base64_encode (g_bytes_get_data (a->creds->salt, NULL),
                              g_bytes_get_size (a->creds->salt));
  else
    salt64 = myna_scram_nonce (16);
  a->nonce = g_strconcat (cf.nonce, snonce, NULL);
  a->server_first = g_strdup_printf ("r=%s,s=%s,i=%u", a->nonce, salt64,
                                     a->creds != NULL ? a->creds->iterations
                                                      : myna_accounts_get_iterations ());
  a->client_first_bare = g_strdup (cf.bare);
  a->gs2_header = g_strdup (cf.gs2_header);
  myna_scram_client_first_clear (&cf);
  auth_send_b64 (s, "challenge", a->server_first, strlen (a->server_first));
}

/* c= must be base64(gs2-header [+ channel binding data]). */
static gboolean
scram_binding_matches (Attempt *a, GBytes *c)
{
  g_autoptr(GByteArray) expect = g_byte_array_new ();

  g_byte_array_append (expect, (const guint8 *) a->gs2_header, (guint) strlen (a->gs2_header));
  if (a->cb_data != NULL)
    g_byte_array_append (expect, g_bytes_get_data (a->cb_data, NULL),
                         (guint) g_bytes_get_size (a->cb_data));
  return g_bytes_get_size (c) == expect->len
         && memcmp (g_bytes_get_data (c, NULL), expect->data, expect->len) == 0;
}

static void
scram_final (Attempt *a, GBytes *msg)
{
  g_autoptr(GError) error = NULL;
  MynaScramClientFinal cf;
  gsize len;
  const char *data = g_bytes_get_data (msg, &len);
  MynaSession *s = a->session;

  if (!myna_scram_parse_client_final (data, len, &cf, &error))
    {
      auth_failure (s, "malformed-request", auth_error_text (error));
      return;
    }
  if (auth_throttled (a->auth, s, a->username))
    {
      myna_scram_client_final_clear (&cf);
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  if (g_strcmp0 (cf.nonce, a->nonce) != 0)
    {
      myna_scram_client_final_clear (&cf);
      auth_record_failure (a->auth, s, a->username);
      auth_failure (s, "not-authorized", "nonce mismatch");
      return;
    }
  if (!scram_binding_matches (a, cf.channel_binding))
    {
      myna_scram_client_final_clear (&cf);
      auth_record_failure (a->auth, s, a->username);
      auth_failure (s, "not-authorized", "channel binding mismatch");
      return;
    }
  g_autofree char *auth_message = g_strconcat (a->client_first_bare, ",", a->server_first, ",",
                                               cf.without_proof, NULL);
  gboolean ok = a->creds != NULL
                && myna_scram_verify_proof (a->hash, a->creds->stored_key, auth_message, cf.proof);
  myna_scram_client_final_clear (&cf);
  if (!ok)
    {
      auth_record_failure (a->auth, s, a->username);
      auth_failure (s, "not-authorized", NULL);
      return;
    }
  g_autoptr(GBytes) sig = myna_scram_server_signature (a->hash, a->creds->server_key, auth_message);
  g_autofree char *sig64 = g_base64_encode (g_bytes_get_data (sig, NULL), g_bytes_get_size (sig));
  g_autofree char *v = g_strconcat ("v=", sig64, NULL);
  g_autofree char *v64 = g_base64_encode ((const guchar *) v, strlen (v));
  auth_succeed (a->auth, s, a->username, v64);
}

/* ---- the element handler --------------------------------------------------- */

static GBytes *
auth_decode (MynaSession *s, MynaStanza *el)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strstrip (g_strdup (myna_stanza_get_text (el)));
  GBytes *b = myna_sasl_base64_decode (text, &error);

  if (b == NULL)
    auth_failure (s, "incorrect-encoding", auth_error_text (error));
  return b;
}

/* TRUE when @el carries no text but white space. */
static gboolean
auth_text_is_empty (MynaStanza *el)
{
  for (const char *p = myna_stanza_get_text (el); *p != '\0'; p++)
    if (!g_ascii_isspace (*p))
      return FALSE;
  return TRUE;
}

/* Feeds one client message to the attempt's mechanism.  Every message of
 * PLAIN and SCRAM carries data: an empty one (an empty <response/>, or
 * "=", RFC 6120 §6.4.2) is malformed. */
static void
auth_step (Attempt *a, GBytes *msg)
{
  if (g_bytes_get_size (msg) == 0)
    {
      g_info ("%s: empty SASL %s message", myna_session_get_peer (a->session), a->mechanism);
      auth_failure (a->session, "malformed-request", "empty SASL message");
      return;
    }
  if (strcmp (a->mechanism, "PLAIN") == 0)
    plain_start (a, msg);
  else if (a->server_first == NULL)
    scram_first (a, msg);
  else
    scram_final (a, msg);
}

static void
auth_start (Auth *auth, MynaSession *s, MynaStanza *el)
{
  const char *mech = myna_stanza_get_attr (el, "mechanism");

  if (!auth_mechanism_offered (auth, s, mech))
    {
      if (mech != NULL && strcmp (mech, "PLAIN") == 0 && !myna_session_is_secure (s))
        auth_failure (s, "encryption-required", NULL);
      else
        auth_failure (s, "invalid-mechanism", NULL);
      return;
    }
  if (auth_throttled (auth, s, NULL))
    {
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  Attempt *a = g_new0 (Attempt, 1);
  a->refs = 1;
  a->auth = auth;
  a->session = s;
  a->mechanism = g_strdup (mech);
  a->ip = g_strdup (myna_session_get_ip (s));
  a->hash = g_str_has_prefix (mech, "SCRAM-SHA-1") ? MYNA_SCRAM_SHA1 : MYNA_SCRAM_SHA256;
  a->plus = g_str_has_suffix (mech, "-PLUS");
  myna_session_set_data (s, ATTEMPT_KEY, a, attempt_detach);

  /* No initial response (empty <auth/>): an empty challenge asks for it.
   * "=" is a zero-length initial response (RFC 6120 §6.4.2), which goes
   * to the mechanism like any other. */
  if (auth_text_is_empty (el))
    {
      a->waiting_initial = TRUE;
      auth_send (s, "challenge", NULL);
      return;
    }
  g_autoptr(GBytes) msg = auth_decode (s, el);
  if (msg == NULL)
    return;
  auth_step (a, msg);
}

static MynaResult
auth_element (MynaCall *call, MynaStanza *el, gpointer data)
{
  Auth *auth = data;
  MynaSession *s = myna_call_get_session (call);
  const char *name = myna_stanza_get_name (el);
  Attempt *a = s != NULL ? myna_session_get_data (s, ATTEMPT_KEY) : NULL;

  if (s == NULL)
    return MYNA_PASS;
  if (myna_session_is_authenticated (s))
    {
      myna_session_close (s, "policy-violation", "already authenticated");
      return MYNA_HANDLED;
    }
  if (a != NULL && a->busy)
    {
      myna_session_close (s, "policy-violation", "SASL message during a check");
      return MYNA_HANDLED;
    }
  if (strcmp (name, "auth") == 0)
    auth_start (auth, s, el);
  else if (strcmp (name, "response") == 0 && a != NULL)
    {
      g_autoptr(GBytes) msg = auth_decode (s, el);
      if (msg == NULL)
        return MYNA_HANDLED;
      a->waiting_initial = FALSE;
      auth_step (a, msg);
    }
  else if (strcmp (name, "abort") == 0)
    auth_failure (s, "aborted", NULL);
  else
    auth_failure (s, "malformed-request", "unexpected SASL element");
  return MYNA_HANDLED;
}

/* ---- load ------------------------------------------------------------------- */

static void
auth_free (gpointer data)
{
  Auth *auth = data;

  g_hash_table_unref (auth->failures);
  g_strfreev (auth->mechanisms);
  g_free (auth);
}

static gboolean
auth_load (MynaModule *mod, GError **error)
{
  Auth *auth = g_new0 (Auth, 1);

  auth->mod = mod;
  auth->failures = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  auth->mechanisms = myna_module_config_list (mod, "mechanisms");
  auth->allow_plain_insecure = myna_module_config_bool (mod, "allow_plain_insecure");
  auth->max_failures = (guint) myna_module_config_int (mod, "max_failures");
  auth->window_us = myna_module_config_int (mod, "failure_window") * 1000;
  myna_module_set_data (mod, auth, auth_free);
  myna_module_add_stream_features (mod, auth_features, auth, NULL);
  myna_module_route_stream (mod, NS_SASL, NULL, auth_element, auth, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (auth,
  .version = "1.0",
  .serves  = MYNA_STRV (NS_SASL),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      { "mechanisms", MYNA_CONFIG_LIST, "SCRAM-SHA-256-PLUS;SCRAM-SHA-1-PLUS;SCRAM-SHA-256;SCRAM-SHA-1;PLAIN", 0, 0, "" },
      { "allow_plain_insecure", MYNA_CONFIG_BOOL, "false", 0, 0, "" },
      { "max_failures", MYNA_CONFIG_INT, "5", 1, 1000, "" },
      { "failure_window", MYNA_CONFIG_DURATION, "5m", 1000, 86400000, "" }),
  .load    = auth_load);
