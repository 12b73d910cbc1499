/* auth: SASL authentication (RFC 6120 §6) — SCRAM-SHA-256, SCRAM-SHA-1
 * (RFC 5802/7677) and their -PLUS variants with tls-exporter or
 * tls-server-end-point channel binding (RFC 9266, XEP-0440; the -PLUS ones
 * can be switched off with `offer_channel_binding`), and PLAIN only inside
 * TLS.  Passwords are stored only as SCRAM keys (accounts.h); PLAIN's
 * PBKDF2 runs off the main loop.
 *
 * Failed attempts are throttled as described at "throttling" below: refused
 * per address and per (address, account), only slowed per account, so
 * that nobody can lock another user out; an account under the delay has
 * its attempts evaluated one at a time (throttle.c says why and how the
 * owner still gets in).  An unknown username gets the
 * same answers as a real one: a SCRAM challenge with the decoy credentials
 * of the name (myna_account_get_decoy_scram: a salt derived from the name
 * by a keyed hash, stable, so asking twice tells nothing, and an iteration
 * count drawn from the mix the host's accounts store), and PLAIN spends
 * the hashing of those same credentials. */
#include <myna/module.h>

#include "throttle.h"

#include <arpa/inet.h>
#include <string.h>

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define ATTEMPT_KEY "auth-attempt"
/* The first delayed answer on a guessed-at account waits this long; each
 * further failure doubles it, up to account_delay_max. */
#define DELAY_BASE_MS 500

/* The module's typed configuration ([module:auth], host overrides), read
 * afresh at each use so a configuration reload applies at once; the
 * sizes of the tables made at load (failure_window, max_failure_entries,
 * max_known_accounts) apply from the next load. */
typedef struct {
  char   **mechanisms;
  gboolean allow_plain_insecure;
  gboolean offer_channel_binding;
  gint64   max_failures;
  gint64   max_failures_per_address;
  gint64   account_delay_max;        /* milliseconds */
  gint64   account_queue_max;
  gint64   max_known_accounts;
  gint64   failure_window;           /* milliseconds */
  gint64   max_failure_entries;
} AuthConfig;

typedef struct {
  MynaModule   *mod;
  AuthThrottle *failures;   /* "a\tADDR", "p\tADDR\tUSER", "u\tUSER" → count */
  AuthLines    *lines;      /* accounts under the delay: the slot, who waits */
  AuthKnown    *known;      /* addresses each account logged in from */
  guint64       evicted_logged;
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
  char         *ip;               /* the client's address (IPv6: its /64), for the counters */
  char         *client_first_bare;
  char         *server_first;
  char         *gs2_header;
  char         *nonce;
  GBytes       *cb_data;
  MynaScramCredentials *creds;    /* the account's, or made up for an unknown name */
  gboolean      known;            /* creds are an account's */
  gboolean      settled;          /* SCRAM: the final message was judged */
  gint64        not_before;       /* the answer is not sent before this */
  MynaTimer    *delay;            /* holds the answer until not_before */
  gboolean      verdict_ok;
  char         *verdict_data;     /* the success's additional data (base64) */
  AuthLine     *line;             /* the account's line it waits in, or NULL */
  GList        *link;             /* its place there (the line holds a ref) */
  gboolean      clean;            /* waits among addresses without failures */
  char         *password;         /* PLAIN: kept until it is checked */
  char         *auth_message;     /* SCRAM: what the proof signs, kept until checked */
  GBytes       *proof;
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
  myna_timer_free (a->delay);
  g_free (a->verdict_data);
  if (a->password != NULL)
    memset (a->password, 0, strlen (a->password));
  g_free (a->password);
  g_free (a->auth_message);
  g_clear_pointer (&a->proof, g_bytes_unref);
  g_free (a);
}

static void auth_record_abort (Attempt *a);
static void auth_leave_line (Attempt *a);

/* Runs when the session's data is cleared: the exchange is over, or the
 * session is gone. */
static void
attempt_detach (gpointer data)
{
  Attempt *a = data;

  if (a->line != NULL)
    auth_leave_line (a);
  if (a->server_first != NULL && !a->settled)
    auth_record_abort (a);
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

/* ---- throttling -----------------------------------------------------------
 *
 * Three counts of failed attempts, each over `failure_window` from its
 * first failure (throttle.c keeps them, bounded):
 *  - per address (an IPv6 address counts as its /64, which one host
 *    usually has whole): `max_failures_per_address` refuses the address
 *    for everything;
 *  - per (address, account): `max_failures` refuses that address for that
 *    account; the owner elsewhere is not concerned;
 *  - per account, from all addresses: never refuses, so nobody can lock a
 *    user out, but from `max_failures` on, the answer to every attempt on
 *    the account — the right password too — waits DELAY_BASE_MS, doubling
 *    with each failure up to `account_delay_max` (on a timer, never
 *    blocking the loop), and the account's attempts are evaluated one at
 *    a time, one per delay: others wait in the account's line, bounded by
 *    `account_queue_max`, except from addresses the account logged in
 *    from before (throttle.c: the reasoning, and what the owner on a new
 *    address can expect).  A guesser spread over many addresses gets one
 *    guess per delay, however many addresses it has, while the owner
 *    still logs in, seconds late.
 * Prosody (mod_limit_auth) and ejabberd (mod_fail2ban, 20 failures an hour)
 * throttle by address alone and leave a distributed guesser free; locking
 * the account as well, as Myna did, stops that guesser but hands anybody
 * a way to lock its owner out.  Aborted SCRAM exchanges (the client saw
 * the salt and gave up, or left) count against the address and the pair
 * but not the account: they guess nothing.  An attempt counts as a
 * failure of its pair and its account from its admission (so that parallel
 * guesses at one account cannot all pass the throttle) until it turns out
 * right or leaves the line unevaluated; of its address only once it has
 * failed, so that the many logins in flight at once from a carrier's NAT
 * or a reconnecting office are not refused for being many (a guesser
 * spraying many accounts at once from a fresh address gets, once per
 * window, as many guesses as it has connections: max_connections_per_ip).  A
 * correct login takes its own count back and clears its pair; the account
 * count stays, so the owner's logins do not reset what slows a guesser. */

/* The address the counters use: IPv4 as it is, IPv6 as its /64. */
static char *
auth_address_of (const char *ip)
{
  struct in6_addr a6;
  char buf[INET6_ADDRSTRLEN];

  if (ip == NULL)
    return g_strdup ("?");
  if (strchr (ip, ':') == NULL || inet_pton (AF_INET6, ip, &a6) != 1)
    return g_strdup (ip);
  if (IN6_IS_ADDR_V4MAPPED (&a6))
    return inet_ntop (AF_INET, a6.s6_addr + 12, buf, sizeof buf) != NULL ? g_strdup (buf)
                                                                      : g_strdup (ip);
  memset (a6.s6_addr + 8, 0, 8);
  if (inet_ntop (AF_INET6, &a6, buf, sizeof buf) == NULL)
    return g_strdup (ip);
  return g_strconcat (buf, "/64", NULL);
}

static guint
auth_count (Auth *auth, char kind, const char *ip, const char *user)
{
  g_autofree char *key = kind == 'a' ? g_strconcat ("a\t", ip, NULL)
                         : kind == 'p' ? g_strconcat ("p\t", ip, "\t", user, NULL)
                                       : g_strconcat ("u\t", user, NULL);

  return auth_throttle_count (auth->failures, key, g_get_monotonic_time ());
}

/* Which counts auth_bump() touches. */
enum {
  COUNT_ADDRESS = 1 << 0,   /* @ip's */
  COUNT_PAIR    = 1 << 1,   /* (@ip, @user)'s */
  COUNT_ACCOUNT = 1 << 2,   /* @user's, from all addresses */
};

/* Adds one to (@by > 0) or takes one back from (@by < 0) the counts
 * @which names (those of @user only where @user is known). */
static void
auth_bump (Auth *auth, const char *ip, const char *user, guint which, int by)
{
  gint64 now = g_get_monotonic_time ();
  g_autofree char *ka = which & COUNT_ADDRESS ? g_strconcat ("a\t", ip, NULL) : NULL;
  g_autofree char *kp = user != NULL && which & COUNT_PAIR
                          ? g_strconcat ("p\t", ip, "\t", user, NULL) : NULL;
  g_autofree char *ku = user != NULL && which & COUNT_ACCOUNT ? g_strconcat ("u\t", user, NULL)
                                                              : NULL;
  const char *keys[] = { ka, kp, ku };

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    if (keys[i] != NULL && by > 0)
      auth_throttle_add (auth->failures, keys[i], now);
    else if (keys[i] != NULL)
      auth_throttle_take_back (auth->failures, keys[i], now);
}

/* An admitted attempt counts against its pair and its account up front,
 * until it turns out right or leaves unevaluated; against its address
 * only once it has failed. */
#define COUNT_UP_FRONT (COUNT_PAIR | COUNT_ACCOUNT)

/* The instance's config snapshot, valid until the handler returns. */
static const AuthConfig *
auth_config (Auth *auth)
{
  return myna_module_get_config (auth->mod);
}

/* Whether @ip (and @ip for @user) may not try now. */
static gboolean
auth_throttled (Auth *auth, const char *ip, const char *user)
{
  const AuthConfig *cfg = auth_config (auth);

  return auth_count (auth, 'a', ip, NULL) >= cfg->max_failures_per_address
         || (user != NULL && auth_count (auth, 'p', ip, user) >= cfg->max_failures);
}

/* How long the answer to an attempt on @user waits. */
static guint
auth_delay_ms (Auth *auth, const char *user)
{
  const AuthConfig *cfg = auth_config (auth);
  guint n = user != NULL ? auth_count (auth, 'u', NULL, user) : 0;

  if (n < cfg->max_failures || cfg->account_delay_max == 0)
    return 0;
  return MIN ((guint64) DELAY_BASE_MS << MIN (n - cfg->max_failures, 20),
              (guint64) cfg->account_delay_max);
}

static void plain_check (Attempt *a);
static void scram_check (Attempt *a);

/* Evaluates @a (its password or proof) now, its answer due at
 * a->not_before. */
static void
auth_evaluate (Attempt *a)
{
  a->busy = FALSE;
  if (strcmp (a->mechanism, "PLAIN") == 0)
    plain_check (a);
  else
    scram_check (a);
}

/* Gives @line's slot to @a, evaluated now and answered after @ms. */
static void
auth_take_slot (AuthLine *line, Attempt *a, guint ms)
{
  line->free_at = g_get_monotonic_time () + (gint64) ms * 1000;
  myna_timer_start (line->timer, MAX (ms, 1));
  a->not_before = line->free_at;
  auth_evaluate (a);
}

/* The slot of @data (an AuthLine) is free: the next attempt waiting takes
 * it, or the line goes. */
static void
auth_line_due (gpointer data)
{
  AuthLine *line = data;
  Auth *auth = line->owner;
  Attempt *a = auth_line_pop (line);

  if (a == NULL)
    {
      auth_lines_drop (auth->lines, line);    /* frees the running timer: allowed */
      return;
    }
  a->line = NULL;
  a->link = NULL;
  guint ms = auth_delay_ms (auth, a->username);
  g_debug ("%s: attempt on '%s' leaves the line (%u still waiting), answer in %u ms",
           a->ip, a->username, auth_line_waiting (line), ms);
  auth_take_slot (line, a, ms);
  attempt_unref (a);                          /* the line's */
}

/* @a leaves its line unevaluated (its session went): it guessed nothing,
 * so its up-front count is taken back. */
static void
auth_leave_line (Attempt *a)
{
  auth_line_unlink (a->line, a->link, a->clean);
  a->line = NULL;
  a->link = NULL;
  auth_bump (a->auth, a->ip, a->username, COUNT_UP_FRONT, -1);
  g_debug ("%s: attempt on '%s' left the line before its turn", a->ip, a->username);
  attempt_unref (a);                          /* the line's */
}

/* Admits @a, which passed the refusals: counts it as a failure up front,
 * then evaluates it now (answer after the account's delay) or queues it in
 * the account's line (see throttle.c), or refuses it when the line is full
 * and its address has failed on the account. */
static void
auth_admit (Attempt *a)
{
  Auth *auth = a->auth;
  gint64 now = g_get_monotonic_time ();
  guint ms = auth_delay_ms (auth, a->username);
  AuthLine *line = auth_lines_get (auth->lines, a->username, FALSE);
  gboolean idle = line == NULL || (line->free_at <= now && auth_line_waiting (line) == 0);

  a->not_before = now + (gint64) ms * 1000;
  if ((idle && ms == 0) || auth_known_has (auth->known, a->username, a->ip))
    {
      if (ms > 0)
        g_debug ("%s: answer on '%s' delayed %u ms (a known address)", a->ip, a->username, ms);
      auth_bump (auth, a->ip, a->username, COUNT_UP_FRONT, 1);
      auth_evaluate (a);
      return;
    }
  if (idle)
    {
      if (line == NULL)
        {
          line = auth_lines_get (auth->lines, a->username, TRUE);
          line->owner = auth;
          line->timer = myna_timer_new (auth_line_due, line);
        }
      g_debug ("%s: answer on '%s' delayed %u ms (failures on the account)", a->ip,
               a->username, ms);
      auth_bump (auth, a->ip, a->username, COUNT_UP_FRONT, 1);
      auth_take_slot (line, a, ms);
      return;
    }
  gboolean clean = auth_count (auth, 'p', a->ip, a->username) == 0;
  guint waiting = auth_line_waiting (line);
  if (waiting >= auth_config (auth)->account_queue_max)
    {
      if (!line->full_logged)
        g_message ("attempts on '%s' waiting: %u (account_queue_max); further ones from "
                   "addresses that failed on it are refused", a->username, waiting);
      line->full_logged = TRUE;
      if (!clean)
        {
          auth_failure (a->session, "temporary-auth-failure",
                        "too many attempts on this account; try later");
          return;
        }
    }
  auth_bump (auth, a->ip, a->username, COUNT_UP_FRONT, 1);
  a->busy = TRUE;                 /* the client waits; anything else ends it */
  a->clean = clean;
  a->line = line;
  a->link = auth_line_push (line, attempt_ref (a), clean);
  g_debug ("%s: attempt on '%s' waits in the account's line (%u ahead)", a->ip, a->username,
           waiting);
}

static void
auth_record_failure (Auth *auth, MynaSession *s, const char *ip, const char *user)
{
  auth_bump (auth, ip, user, COUNT_ADDRESS | COUNT_PAIR | COUNT_ACCOUNT, 1);
  g_message ("%s: authentication failed for '%s'", myna_session_get_peer (s),
             user != NULL ? user : "?");
}

static void
auth_log_failure (Attempt *a)
{
  g_message ("%s: authentication failed for '%s'", myna_session_get_peer (a->session),
             a->username != NULL ? a->username : "?");
}

/* A SCRAM exchange that ended between the challenge and the proof. */
static void
auth_record_abort (Attempt *a)
{
  auth_bump (a->auth, a->ip, a->username, COUNT_ADDRESS | COUNT_PAIR, 1);
  g_debug ("%s: SCRAM exchange for '%s' abandoned after the challenge", a->ip,
           a->username != NULL ? a->username : "?");
}

static void
auth_succeed (Auth *auth, MynaSession *s, const char *ip, const char *user,
              const char *b64_data)
{
  /* @user may belong to the attempt, which the session data frees. */
  g_autofree char *name = g_strdup (user);
  g_autofree char *key = g_strconcat ("p\t", ip, "\t", name, NULL);

  auth_throttle_forget (auth->failures, key);
  auth_known_add (auth->known, name, ip);
  auth_send (s, "success", b64_data);
  myna_session_set_data (s, ATTEMPT_KEY, NULL, NULL);
  myna_session_set_authenticated (s, name);
}

/* Sends the verdict kept in @a. */
static void
auth_verdict_send (Attempt *a)
{
  if (a->verdict_ok)
    auth_succeed (a->auth, a->session, a->ip, a->username, a->verdict_data);
  else
    auth_failure (a->session, "not-authorized", NULL);
}

static void
auth_verdict_due (gpointer data)
{
  Attempt *a = attempt_ref (data);

  a->busy = FALSE;
  if (a->session != NULL && myna_session_is_open (a->session))
    auth_verdict_send (a);
  attempt_unref (a);
}

/* Answers @a with its verdict (@data: transfer full), when its delay is
 * over. */
static void
auth_verdict (Attempt *a, gboolean ok, char *data)
{
  gint64 wait = a->not_before - g_get_monotonic_time ();

  a->verdict_ok = ok;
  g_free (a->verdict_data);
  a->verdict_data = data;
  if (wait <= 0)
    {
      auth_verdict_send (a);
      return;
    }
  a->busy = TRUE;                 /* the client waits; anything else ends it */
  if (a->delay == NULL)
    a->delay = myna_timer_new (auth_verdict_due, a);
  myna_timer_start (a->delay, (guint) ((wait + 999) / 1000));
}

/* Every so often: the expired counts go, and a full table is reported
 * (once per sweep, whatever the flood). */
static gboolean
auth_sweep (MynaModule *mod, gpointer data)
{
  Auth *auth = data;
  guint gone = auth_throttle_sweep (auth->failures, g_get_monotonic_time ());
  guint64 evicted = auth_throttle_evicted (auth->failures);

  if (evicted > auth->evicted_logged)
    g_warning ("failure table full: %" G_GUINT64_FORMAT " entries with the lowest counts "
               "evicted since the last sweep (max_failure_entries)",
               evicted - auth->evicted_logged);
  auth->evicted_logged = evicted;
  if (gone > 0)
    g_debug ("failure table: %u expired, %u left", gone, auth_throttle_size (auth->failures));
  return TRUE;
}

/* ---- mechanisms offered ----------------------------------------------------- */

static const char *const cb_types[] = { "tls-exporter", "tls-server-end-point", "tls-unique", NULL };

static gboolean
auth_mechanism_offered (Auth *auth, MynaSession *s, const char *mech)
{
  const AuthConfig *cfg = auth_config (auth);

  if (mech == NULL || !g_strv_contains ((const char *const *) cfg->mechanisms, mech))
    return FALSE;
  if (strcmp (mech, "PLAIN") == 0)
    return myna_session_is_secure (s) || cfg->allow_plain_insecure;
  if (g_str_has_suffix (mech, "-PLUS"))
    {
      if (!cfg->offer_channel_binding)
        return FALSE;
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
  const AuthConfig *cfg = auth_config (auth);

  if (myna_session_is_authenticated (s))
    return;
  MynaStanza *mechs = myna_stanza_add_child (features, "mechanisms", NS_SASL);
  for (guint i = 0; cfg->mechanisms[i] != NULL; i++)
    if (auth_mechanism_offered (auth, s, cfg->mechanisms[i]))
      myna_stanza_add_text_child (mechs, "mechanism", cfg->mechanisms[i]);
  /* XEP-0440: which channel binding types this stream supports. */
  MynaStanza *cbs = NULL;
  for (guint i = 0; cfg->offer_channel_binding && cb_types[i] != NULL; i++)
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
    auth_bump (a->auth, a->ip, a->username, COUNT_UP_FRONT, -1);
  else
    auth_bump (a->auth, a->ip, a->username, COUNT_ADDRESS, 1);
  if (a->session == NULL || !myna_session_is_open (a->session))
    return;                         /* the client left meanwhile */
  if (error != NULL)
    g_message ("%s: authentication failed for '%s'", myna_session_get_peer (a->session),
               a->username);
  auth_verdict (a, error == NULL, NULL);
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
      auth_record_failure (a->auth, s, a->ip, NULL);
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
  if (auth_throttled (a->auth, a->ip, a->username))
    {
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  a->password = g_strdup (password);
  memset (password, 0, strlen (password));
  auth_admit (a);
}

/* Checks the password kept in @a, off the loop.  An unknown name costs the
 * same hashing as a real one (accounts.c). */
static void
plain_check (Attempt *a)
{
  MynaHost *host = myna_session_get_host (a->session);

  a->busy = TRUE;
  myna_account_check_password (myna_module_get_storage (a->auth->mod),
                               myna_host_get_name (host), a->username, a->password,
                               plain_checked, attempt_ref (a),
                               (GDestroyNotify) attempt_unref);
  memset (a->password, 0, strlen (a->password));
  g_clear_pointer (&a->password, g_free);
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
  if (a->username != NULL && auth_throttled (a->auth, a->ip, a->username))
    {
      myna_scram_client_first_clear (&cf);
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  a->creds = a->username != NULL
               ? myna_account_get_scram (myna_module_get_storage (a->auth->mod),
                                         myna_host_get_name (host), a->username, a->hash)
               : NULL;
  a->known = a->creds != NULL;
  /* An unknown user gets the challenge it would get if it existed, the
   * same every time, and fails at the end, so that accounts cannot be
   * enumerated.  The decoy is made either way: the same work for both. */
  g_autoptr(MynaScramCredentials) decoy =
      myna_account_get_decoy_scram (myna_module_get_storage (a->auth->mod),
                                    myna_host_get_name (host), a->username != NULL ? a->username : cf.username, a->hash);
  if (a->creds == NULL)
    a->creds = g_steal_pointer (&decoy);
  g_autofree char *snonce = myna_scram_nonce (18);
  g_autofree char *salt64 = g_base64_encode (g_bytes_get_data (a->creds->salt, NULL),
                                             g_bytes_get_size (a->creds->salt));
  a->nonce = g_strconcat (cf.nonce, snonce, NULL);
  a->server_first = g_strdup_printf ("r=%s,s=%s,i=%u", a->nonce, salt64, a->creds->iterations);
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
  a->settled = TRUE;
  if (auth_throttled (a->auth, a->ip, a->username))
    {
      myna_scram_client_final_clear (&cf);
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  if (g_strcmp0 (cf.nonce, a->nonce) != 0)
    {
      myna_scram_client_final_clear (&cf);
      auth_record_failure (a->auth, s, a->ip, a->username);
      auth_failure (s, "not-authorized", "nonce mismatch");
      return;
    }
  if (!scram_binding_matches (a, cf.channel_binding))
    {
      myna_scram_client_final_clear (&cf);
      auth_record_failure (a->auth, s, a->ip, a->username);
      auth_failure (s, "not-authorized", "channel binding mismatch");
      return;
    }
  a->auth_message = g_strconcat (a->client_first_bare, ",", a->server_first, ",",
                                 cf.without_proof, NULL);
  a->proof = g_bytes_ref (cf.proof);
  myna_scram_client_final_clear (&cf);
  auth_admit (a);
}

/* Checks the proof kept in @a. */
static void
scram_check (Attempt *a)
{
  /* The same work for a made-up account as for a real one. */
  gboolean ok = myna_scram_verify_proof (a->hash, a->creds->stored_key, a->auth_message, a->proof)
                && a->known;

  if (!ok)
    {
      auth_bump (a->auth, a->ip, a->username, COUNT_ADDRESS, 1);
      auth_log_failure (a);
      auth_verdict (a, FALSE, NULL);
      return;
    }
  auth_bump (a->auth, a->ip, a->username, COUNT_UP_FRONT, -1);
  g_autoptr(GBytes) sig = myna_scram_server_signature (a->hash, a->creds->server_key,
                                                       a->auth_message);
  g_autofree char *sig64 = g_base64_encode (g_bytes_get_data (sig, NULL), g_bytes_get_size (sig));
  g_autofree char *v = g_strconcat ("v=", sig64, NULL);
  auth_verdict (a, TRUE, g_base64_encode ((const guchar *) v, strlen (v)));
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
  g_autofree char *ip = auth_address_of (myna_session_get_ip (s));
  if (auth_throttled (auth, ip, NULL))
    {
      auth_failure (s, "temporary-auth-failure", "too many failed attempts; try later");
      return;
    }
  Attempt *a = g_new0 (Attempt, 1);
  a->refs = 1;
  a->auth = auth;
  a->session = s;
  a->mechanism = g_strdup (mech);
  a->ip = g_steal_pointer (&ip);
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

/* An attempt still waiting when the module goes. */
static void
auth_line_item_free (gpointer item, gpointer unused)
{
  Attempt *a = item;

  a->line = NULL;
  a->link = NULL;
  attempt_unref (a);
}

static void
auth_free (gpointer data)
{
  Auth *auth = data;

  auth_lines_free (auth->lines, auth_line_item_free, NULL);
  auth_known_free (auth->known);
  auth_throttle_free (auth->failures);
  g_free (auth);
}

static gboolean
auth_load (MynaModule *mod, GError **error)
{
  Auth *auth = g_new0 (Auth, 1);
  const AuthConfig *cfg = myna_module_get_config (mod);
  gint64 window_ms = cfg->failure_window;

  auth->mod = mod;
  auth->failures = auth_throttle_new (window_ms * 1000, (guint) cfg->max_failure_entries);
  auth->lines = auth_lines_new ((GDestroyNotify) myna_timer_free);
  auth->known = auth_known_new ((guint) cfg->max_known_accounts);
  myna_module_set_data (mod, auth, auth_free);
  myna_module_add_stream_features (mod, auth_features, auth, NULL);
  myna_module_route_stream (mod, NS_SASL, NULL, auth_element, auth, NULL);
  myna_module_add_timer (mod, (guint) MIN (window_ms, 60000), auth_sweep, auth, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (auth,
  .version = "1.0",
  .description = "SASL authentication: SCRAM-SHA-1/256 and their -PLUS "
                 "variants, PLAIN",
  .serves  = MYNA_STRV (NS_SASL),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_LIST (AuthConfig, mechanisms,
                        "SCRAM-SHA-256-PLUS;SCRAM-SHA-1-PLUS;SCRAM-SHA-256;SCRAM-SHA-1;PLAIN",
                        "SASL mechanisms offered, in order of preference"),
      MYNA_CONFIG_BOOL (AuthConfig, allow_plain_insecure, "false",
                        "offer PLAIN on unencrypted streams (only for tests "
                        "and benchmarks on loopback)"),
      MYNA_CONFIG_BOOL (AuthConfig, offer_channel_binding, "true",
                        "offer the SCRAM -PLUS mechanisms (channel binding); "
                        "false for clients that mishandle it"),
      MYNA_CONFIG_INT (AuthConfig, max_failures, "5", 1, 1000,
                       "failed attempts from one address on one account within "
                       "the window before that address is refused for that "
                       "account; also where the per-account delay starts"),
      MYNA_CONFIG_INT (AuthConfig, max_failures_per_address, "20", 1, 100000,
                       "failed attempts from one address (IPv6: one /64) "
                       "within the window before it is refused for every "
                       "account"),
      MYNA_CONFIG_DURATION (AuthConfig, account_delay_max, "10s", 0, 60000,
                            "longest wait before answering an attempt on an "
                            "account that failures from any address target (0: "
                            "no delay)"),
      MYNA_CONFIG_INT (AuthConfig, account_queue_max, "4", 1, 1000,
                       "attempts that may wait for an account under the delay "
                       "(evaluated one per delay); past it, those from "
                       "addresses that failed on the account are refused"),
      MYNA_CONFIG_INT (AuthConfig, max_known_accounts, "50000", 0, 10000000,
                       "accounts whose last few login addresses are "
                       "remembered, so that those addresses skip the account's "
                       "line (0: none)"),
      MYNA_CONFIG_DURATION (AuthConfig, failure_window, "5m", 1000, 86400000,
                            "window over which failed attempts are counted"),
      MYNA_CONFIG_INT (AuthConfig, max_failure_entries, "100000", 100, 10000000,
                       "entries of the failed-attempt table; when full, those "
                       "with the lowest counts go first")),
  .config_size = sizeof (AuthConfig),
  .load    = auth_load);
