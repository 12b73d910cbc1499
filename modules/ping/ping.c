/* ping: XEP-0199 — answers pings addressed to the server, and keeps
 * connections honest: a session silent for `keepalive_interval` gets a
 * ping from the server, and one that then stays silent for
 * `keepalive_timeout` is closed, or hibernated when stream management
 * keeps it (myna_session_lose_transport; a dead TCP link on a mobile network is
 * otherwise only noticed when a write fails, much later).  The keepalive
 * state lives in the session's data with a destroy notify of this module:
 * the core drops it from every session when the module unloads, and calls
 * `attach` with every bound session after a (re)load to arm it again. */
#include <myna/module.h>

#define NS_PING "urn:xmpp:ping"
#define KEEPALIVE_KEY "ping-keepalive"

/* The module's typed configuration: the core parses [module:ping] (and
 * host overrides) into it at load and on every accepted config reload. */
typedef struct {
  gint64      keepalive_interval;   /* ms */
  gint64      keepalive_timeout;    /* ms */
} PingConfig;

typedef struct {
  MynaModule *mod;
} Ping;

/* Per-session keepalive state, owned by the session's data. */
typedef struct {
  Ping        *ping;
  MynaSession *session;
  MynaTimer   *timer;
  gint64       pinged_at;   /* 0: no ping outstanding */
} Keepalive;

static MynaResult
ping_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  myna_call_reply_result (call, iq);          /* iq is borrowed */
  return MYNA_HANDLED;
}

static void
keepalive_free (gpointer data)
{
  Keepalive *k = data;
  myna_timer_free (k->timer);
  g_free (k);
}

static void
keepalive_fire (gpointer data)
{
  Keepalive *k = data;
  gint64 now = g_get_monotonic_time ();
  gint64 idle_ms = (now - myna_session_get_last_activity (k->session)) / 1000;
  const PingConfig *cfg = myna_module_get_config (k->ping->mod);

  if (myna_session_is_hibernated (k->session) && cfg->keepalive_interval > 0)
    {
      /* No connection to ping: check again later (after a resumption). */
      k->pinged_at = 0;
      myna_timer_start (k->timer, (guint) cfg->keepalive_interval);
      return;
    }
  if (k->pinged_at != 0 && myna_session_get_last_activity (k->session) < k->pinged_at)
    {
      /* Closing frees the session's data, this timer included: last step.
       * A session stream management keeps is hibernated instead, and its
       * keepalive waits for a resumption. */
      myna_session_lose_transport (k->session, "connection-timeout",
                                   "no answer to a keepalive ping");
      if (myna_session_is_open (k->session) && myna_session_is_hibernated (k->session)
          && cfg->keepalive_interval > 0)
        {
          k->pinged_at = 0;
          myna_timer_start (k->timer, (guint) cfg->keepalive_interval);
        }
      return;
    }
  k->pinged_at = 0;
  if (cfg->keepalive_interval == 0)
    return;   /* keepalives turned off by a config reload */
  if (idle_ms < cfg->keepalive_interval)
    {
      myna_timer_start (k->timer, (guint) (cfg->keepalive_interval - idle_ms));
      return;
    }
  MynaJid *jid = myna_session_get_jid (k->session);
  g_autoptr(MynaStanza) iq = myna_stanza_build (
      "<iq type='get' id='myna-keepalive' from='%s' to='%s'><ping xmlns='" NS_PING "'/></iq>",
      myna_jid_get_domain (jid), myna_jid_to_string (jid));
  myna_session_send (k->session, iq);
  k->pinged_at = now;
  myna_timer_start (k->timer, (guint) cfg->keepalive_timeout);
}

/* Arms the keepalive of @s (replacing any it had), unless turned off. */
static void
keepalive_arm (Ping *ping, MynaSession *s)
{
  const PingConfig *cfg = myna_module_get_config (ping->mod);

  if (cfg->keepalive_interval == 0)
    return;

  Keepalive *k = g_new0 (Keepalive, 1);

  k->ping = ping;
  k->session = s;
  k->timer = myna_timer_new (keepalive_fire, k);
  myna_timer_start (k->timer, (guint) cfg->keepalive_interval);
  myna_session_set_data (s, KEEPALIVE_KEY, k, keepalive_free);
}

static MynaResult
ping_session_bound (MynaCall *call, MynaStanza *unused, gpointer data)
{
  keepalive_arm (data, myna_call_get_session (call));
  return MYNA_PASS;
}

/* A session bound before this instance loaded (a reload dropped the old
 * code's keepalive with it): arm one now. */
static void
ping_attach (MynaModule *mod, MynaSession *session)
{
  keepalive_arm (myna_module_get_data (mod), session);
}

/* The client's answer to our ping needs no routing. */
static MynaResult
ping_pong (MynaCall *call, MynaStanza *iq, gpointer data)
{
  if (g_strcmp0 (myna_stanza_get_id (iq), "myna-keepalive") == 0
      && (g_strcmp0 (myna_stanza_get_type (iq), "result") == 0
          || g_strcmp0 (myna_stanza_get_type (iq), "error") == 0))
    return MYNA_HANDLED;
  return MYNA_PASS;
}

static gboolean
ping_load (MynaModule *mod, GError **error)
{
  Ping *ping = g_new0 (Ping, 1);

  ping->mod = mod;
  myna_module_set_data (mod, ping, g_free);
  myna_module_route_iq (mod, MYNA_IQ_GET, NS_PING, "ping", ping_iq, NULL, NULL);
  myna_module_hook (mod, MYNA_EVENT_SESSION_BOUND, 0, ping_session_bound, ping, NULL);
  myna_module_hook (mod, MYNA_EVENT_IQ_HOST, 100, ping_pong, NULL, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (ping,
  .version = "1.1",
  .description = "XMPP ping (XEP-0199) and server keepalives",
  .serves  = MYNA_STRV (NS_PING),
  .features = MYNA_STRV (NS_PING),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_DURATION (PingConfig, keepalive_interval, "5m", 0, 86400000,
                            "ping a session silent for this long (0 disables "
                            "keepalives)"),
      MYNA_CONFIG_DURATION (PingConfig, keepalive_timeout, "60s", 1000, 3600000,
                            "close a session that stays silent this long after "
                            "a keepalive ping")),
  .config_size = sizeof (PingConfig),
  .load    = ping_load,
  .attach  = ping_attach);
