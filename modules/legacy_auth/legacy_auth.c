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
 * attempts are logged (peer, username) and throttled as the auth module
 * throttles SASL (modules/auth/auth.c "throttling", with its failure
 * table and account lines from throttle.c; this module's own counts), so
 * that jabber:iq:auth is no way around SASL's throttle.  Each count lasts
 * failure_window from its first failure:
 *  - per address: past max_failures_per_address the address gets
 *    <policy-violation/> for everything;
 *  - per (address, account): past max_failures that address gets
 *    <policy-violation/> for that account (the right password too); the
 *    owner elsewhere is not concerned;
 *  - per account, from all addresses: never refuses, but from
 *    max_failures on, the answer on the account waits 0.5 s, doubling with
 *    each failure up to account_delay_max, and its attempts are evaluated
 *    one at a time, one per delay: others wait in the account's line
 *    (those from addresses without failures on it first; past
 *    account_queue_max waiting, those from addresses with failures get
 *    <resource-constraint/>).  A guesser spread over many addresses gets
 *    one guess per delay.
 * An attempt counts against its pair and its account from its admission
 * (parallel guesses cannot all pass), against its address once it
 * failed; a correct one takes its counts back and clears its pair.  What
 * SASL's auth does beyond this (known addresses skipping the line, IPv6
 * counted per /64) it does not. */
#include <myna/module.h>

#include "../auth/throttle.h"

#include <string.h>

#define NS_IQ_AUTH      "jabber:iq:auth"
#define NS_IQ_AUTH_FEAT "http://jabber.org/features/iq-auth"
#define ATTEMPT_KEY     "legacy-auth-attempt"
/* The first delayed answer on a guessed-at account waits this long; each
 * further failure doubles it, up to account_delay_max (as auth's). */
#define DELAY_BASE_MS   500

/* The module's typed configuration ([module:legacy_auth], host overrides). */
typedef struct {
  gboolean allow_insecure;
  gint64   max_failures_per_address;
  gint64   max_failures;
  gint64   account_delay_max;   /* milliseconds */
  gint64   account_queue_max;
  gint64   failure_window;      /* milliseconds */
} LegacyAuthConfig;

typedef struct {
  MynaModule   *mod;
  AuthThrottle *failures;       /* "a\tADDR", "p\tADDR\tUSER", "u\tUSER" → failures */
  AuthLines    *lines;          /* accounts under the delay: the slot, who waits */
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
  char        *password;        /* until evaluated (it may wait in a line) */
  char        *ip;
  gint64       not_before;      /* the answer waits until then (monotonic µs) */
  gboolean     ok;              /* the verdict, once evaluated */
  MynaTimer   *delay;           /* holds the verdict until not_before */
} LegacyAttempt;

static void
attempt_unref (gpointer data)
{
  LegacyAttempt *a = data;

  if (--a->refs > 0)
    return;
  myna_timer_free (a->delay);
  myna_stanza_unref (a->iq);
  g_free (a->user);
  g_free (a->resource);
  if (a->password != NULL)
    memset (a->password, 0, strlen (a->password));
  g_free (a->password);
  g_free (a->ip);
  g_free (a);
}

/* attempt_unref() as a GFunc, for the attempts left in lines. */
static void
attempt_unref_item (gpointer item, gpointer unused)
{
  attempt_unref (item);
}

static LegacyAttempt *
attempt_ref (LegacyAttempt *a)
{
  a->refs++;
  return a;
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

/* ---- throttling (see the top of the file) ------------------------------------ */

/* @kind's count now: 'a' of @ip, 'p' of (@ip, @user), 'u' of @user. */
static guint
legacy_count (LegacyAuth *self, char kind, const char *ip, const char *user)
{
  g_autofree char *key = kind == 'a' ? g_strconcat ("a\t", ip, NULL)
                         : kind == 'p' ? g_strconcat ("p\t", ip, "\t", user, NULL)
                                       : g_strconcat ("u\t", user, NULL);

  return auth_throttle_count (self->failures, key, g_get_monotonic_time ());
}

/* Adds one to (@by > 0) or takes one back from (@by < 0) the counts
 * named in @kinds ("a", "p", "u"). */
static void
legacy_bump (LegacyAuth *self, const char *ip, const char *user, const char *kinds, int by)
{
  gint64 now = g_get_monotonic_time ();

  for (const char *k = kinds; *k != '\0'; k++)
    {
      g_autofree char *key = *k == 'a' ? g_strconcat ("a\t", ip, NULL)
                             : *k == 'p' ? g_strconcat ("p\t", ip, "\t", user, NULL)
                                         : g_strconcat ("u\t", user, NULL);
      if (by > 0)
        auth_throttle_add (self->failures, key, now);
      else
        auth_throttle_take_back (self->failures, key, now);
    }
}

/* How long the answer to an attempt on @user waits (ms). */
static guint
legacy_delay_ms (LegacyAuth *self, const char *user)
{
  const LegacyAuthConfig *cfg = legacy_config (self);
  guint n = legacy_count (self, 'u', NULL, user);

  if (n < cfg->max_failures || cfg->account_delay_max == 0)
    return 0;
  return MIN ((guint64) DELAY_BASE_MS << MIN (n - cfg->max_failures, 20),
              (guint64) cfg->account_delay_max);
}

/* Sends @a's verdict (its session is open): bound, or not-authorized. */
static void
legacy_verdict (LegacyAttempt *a)
{
  LegacyAuth *self = a->self;
  MynaSession *s = a->session;
  g_autoptr(GError) bind_error = NULL;
  g_autoptr(MynaStanza) reply = NULL;
  g_autoptr(MynaJid) full = NULL;
  MynaSession *holder;

  if (!a->ok)
    {
      legacy_bump (self, a->ip, a->user, "a", 1);     /* pair and account: counted already */
      g_message ("%s: legacy authentication as %s@%s failed", myna_session_get_peer (s),
                 a->user, myna_host_get_name (myna_session_get_host (s)));
      legacy_error (s, a->iq, MYNA_ERROR_TYPE_AUTH, "not-authorized", NULL);
      myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);   /* a next attempt may come */
      return;
    }
  /* Right: its own counts go back, its pair is cleared; the account's
   * other failures stay. */
  {
    g_autofree char *pair = g_strconcat ("p\t", a->ip, "\t", a->user, NULL);
    legacy_bump (self, a->ip, a->user, "u", -1);
    auth_throttle_forget (self->failures, pair);
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
      myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);
      myna_session_close (s, "not-authorized", "the resource could not be bound");
      return;
    }
  g_info ("%s: logged in as %s by legacy authentication (XEP-0078)", myna_session_get_peer (s),
          myna_jid_to_string (myna_session_get_jid (s)));
  reply = myna_stanza_new_iq_result (a->iq);
  legacy_send (s, reply);
  myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);       /* may free @a: last */
}

/* @a's delay is over. */
static void
legacy_verdict_due (gpointer data)
{
  LegacyAttempt *a = attempt_ref (data);

  if (a->session != NULL && myna_session_is_open (a->session))
    legacy_verdict (a);
  attempt_unref (a);
}

/* The password check is done: the verdict goes at once, or once the
 * account's delay is over. */
static void
legacy_checked (const GError *error, gpointer data)
{
  LegacyAttempt *a = data;
  gint64 wait = a->not_before - g_get_monotonic_time ();

  a->ok = error == NULL;
  if (a->session == NULL || !myna_session_is_open (a->session)
      || myna_session_is_authenticated (a->session))
    return;
  if (wait <= 0)
    {
      legacy_verdict (a);
      return;
    }
  if (a->delay == NULL)
    a->delay = myna_timer_new (legacy_verdict_due, a);
  myna_timer_start (a->delay, (guint) ((wait + 999) / 1000));
}

/* Checks @a's password now (off the main loop), its answer due at
 * a->not_before. */
static void
legacy_evaluate (LegacyAttempt *a)
{
  g_autofree char *password = g_steal_pointer (&a->password);

  myna_account_check_password (myna_module_get_storage (a->self->mod),
                               myna_host_get_name (myna_session_get_host (a->session)),
                               a->user, password, legacy_checked, attempt_ref (a),
                               attempt_unref);
  memset (password, 0, strlen (password));
}

/* Gives @line's slot to @a, evaluated now and answered after @ms. */
static void
legacy_take_slot (AuthLine *line, LegacyAttempt *a, guint ms)
{
  line->free_at = g_get_monotonic_time () + (gint64) ms * 1000;
  myna_timer_start (line->timer, MAX (ms, 1));
  a->not_before = line->free_at;
  legacy_evaluate (a);
}

/* The slot of @data (an AuthLine) is free: the next attempt still
 * waiting takes it, or the line goes.  One whose session went guessed
 * nothing: its up-front counts go back. */
static void
legacy_line_due (gpointer data)
{
  AuthLine *line = data;
  LegacyAuth *self = line->owner;
  LegacyAttempt *a;

  while ((a = auth_line_pop (line)) != NULL
         && (a->session == NULL || !myna_session_is_open (a->session)))
    {
      legacy_bump (self, a->ip, a->user, "pu", -1);
      attempt_unref (a);                      /* the line's */
    }
  if (a == NULL)
    {
      auth_lines_drop (self->lines, line);    /* frees the running timer: allowed */
      return;
    }
  legacy_take_slot (line, a, legacy_delay_ms (self, a->user));
  attempt_unref (a);                          /* the line's */
}

/* Admits @a, which passed the refusals: counts it against its pair and
 * its account, then evaluates it now (answered after the account's
 * delay), or queues it in the account's line, or refuses it when the line
 * is full and its address failed on the account.  FALSE when refused. */
static gboolean
legacy_admit (LegacyAuth *self, LegacyAttempt *a)
{
  gint64 now = g_get_monotonic_time ();
  guint ms = legacy_delay_ms (self, a->user);
  AuthLine *line = auth_lines_get (self->lines, a->user, FALSE);
  gboolean idle = line == NULL || (line->free_at <= now && auth_line_waiting (line) == 0);
  gboolean clean;
  guint waiting;

  a->not_before = now + (gint64) ms * 1000;
  if (idle && ms == 0)
    {
      legacy_bump (self, a->ip, a->user, "pu", 1);
      legacy_evaluate (a);
      return TRUE;
    }
  if (idle)
    {
      if (line == NULL)
        {
          line = auth_lines_get (self->lines, a->user, TRUE);
          line->owner = self;
          line->timer = myna_timer_new (legacy_line_due, line);
        }
      g_debug ("%s: legacy answer on '%s' delayed %u ms (failures on the account)", a->ip,
               a->user, ms);
      legacy_bump (self, a->ip, a->user, "pu", 1);
      legacy_take_slot (line, a, ms);
      return TRUE;
    }
  clean = legacy_count (self, 'p', a->ip, a->user) == 0;
  waiting = auth_line_waiting (line);
  if (waiting >= (guint) legacy_config (self)->account_queue_max && !clean)
    return FALSE;
  legacy_bump (self, a->ip, a->user, "pu", 1);
  auth_line_push (line, attempt_ref (a), clean);
  g_debug ("%s: legacy attempt on '%s' waits in the account's line (%u ahead)", a->ip,
           a->user, waiting);
  return TRUE;
}

/* iq set: username, password and resource. */
static void
legacy_set (LegacyAuth *self, MynaSession *s, MynaStanza *iq, MynaStanza *query)
{
  const LegacyAuthConfig *cfg = legacy_config (self);
  const char *username = myna_stanza_get_child_text (query, "username");
  const char *password = myna_stanza_get_child_text (query, "password");
  const char *resource = myna_stanza_get_child_text (query, "resource");
  const char *ip = myna_session_get_ip (s) != NULL ? myna_session_get_ip (s) : "?";
  g_autofree char *local = NULL, *res = NULL;
  LegacyAttempt *a;

  if (myna_session_get_data (s, ATTEMPT_KEY) != NULL)
    {
      legacy_error (s, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                    "a login is being checked already");
      return;
    }
  if (legacy_count (self, 'a', ip, NULL) >= (guint) cfg->max_failures_per_address)
    {
      g_message ("%s: legacy authentication refused: too many failures from %s",
                 myna_session_get_peer (s), ip);
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
  if (legacy_count (self, 'p', ip, local) >= (guint) cfg->max_failures)
    {
      g_message ("%s: legacy authentication as %s refused: too many failures on it from %s",
                 myna_session_get_peer (s), local, ip);
      legacy_error (s, iq, MYNA_ERROR_TYPE_WAIT, "policy-violation",
                    "too many failed logins on this account: try again later");
      return;
    }
  a = g_new0 (LegacyAttempt, 1);
  a->refs = 1;                                /* the session's */
  a->self = self;
  a->session = s;
  a->iq = myna_stanza_ref (iq);
  a->user = g_steal_pointer (&local);
  a->resource = g_steal_pointer (&res);
  a->password = g_strdup (password);
  a->ip = g_strdup (ip);
  myna_session_set_data (s, ATTEMPT_KEY, a, attempt_detach);
  if (!legacy_admit (self, a))
    {
      g_message ("%s: legacy authentication as %s refused: too many attempts waiting on it",
                 myna_session_get_peer (s), a->user);
      legacy_error (s, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                    "too many attempts on this account; try later");
      myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);
    }
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

  auth_lines_free (self->lines, attempt_unref_item, NULL);
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
  self->lines = auth_lines_new ((GDestroyNotify) myna_timer_free);
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
  MYNA_CONFIG_INT (LegacyAuthConfig, max_failures, "5", 1, 1000,
                   "failed logins one address may make on one account in "
                   "failure_window (then refused: policy-violation); also "
                   "where the per-account delay starts"),
  MYNA_CONFIG_DURATION (LegacyAuthConfig, account_delay_max, "10s", 0, 60000,
                        "longest wait before answering an attempt on an account "
                        "that failures from any address target (0: no delay)"),
  MYNA_CONFIG_INT (LegacyAuthConfig, account_queue_max, "4", 1, 1000,
                   "attempts that may wait for an account under the delay "
                   "(evaluated one per delay); past it, those from addresses "
                   "that failed on the account are refused"),
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
