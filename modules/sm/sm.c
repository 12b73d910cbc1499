/* sm: stream management (XEP-0198, urn:xmpp:sm:3).
 *
 * After authentication the stream offers <sm xmlns='urn:xmpp:sm:3'/>.  A
 * bound session's <enable/> starts the counters: every stanza the core
 * hands its client (MYNA_EVENT_STANZA_TO_CLIENT, at priority -1000, after
 * every other module) is counted and kept until the client acknowledges
 * it with <a h/>, and <r/> is answered with the count of stanzas the
 * client sent; `h` wraps at 2^32.  The server asks for an ack (<r/>) after
 * a burst that left SM_REQUEST_AT stanzas waiting, or a second after fewer,
 * with one request outstanding at a time.
 *
 * With resume='true' the session gets an unguessable id (128 random
 * bits), and when its connection drops without </stream:stream>
 * (MYNA_EVENT_SESSION_TRANSPORT_LOST) it is hibernated for
 * `resume_timeout`: it stays bound and available, and what is sent to it
 * is kept.  A <resume previd h/> on a fresh authenticated connection of
 * the same account takes the session over (myna_session_resume): the
 * client's `h` acknowledges what it got, and every stanza it did not is
 * sent again, once.
 *
 * When a session that enabled stream management ends (the window
 * expires, a new login takes its resource, a clean close, `max_unacked`
 * exceeded) nothing it had not acknowledged is lost: each <message/> is
 * routed again to the account's bare JID with a <delay/> (another
 * resource, or offline storage, or push, takes it; without storage the
 * sender gets an error back from the router); each iq get/set gets an
 * error reply to its sender.  Presence, iq results and errors are dropped
 * (presence is state the contact's next login gets anew).  Messages from
 * the account's own bare JID (carbons, archive results: copies of what is
 * kept elsewhere) are dropped too.
 *
 * Each acknowledged stanza fires MYNA_EVENT_SM_ACKED (<myna/sm.h>).
 *
 * `mynactl reload sm` keeps all of it: `save` turns each session's state
 * into session data whose destroy functions are GLib's and libmyna's
 * (SM_CARRY_KEY: the counters as a GVariant; SM_CARRY_QUEUE: the
 * unacknowledged stanzas), which the core leaves with the session across
 * the reload, and the new instance's `attach` takes them up again:
 * counters, queue, resumption id and, for a hibernated session, what is
 * left of its window.  A plain unload ends hibernated sessions (what they
 * kept is re-routed). */
#include <myna/module.h>
#include <myna/sm.h>
#include <myna/timer.h>

#include <string.h>
#include <sys/random.h>

#include "sm-count.h"

#define NS_SM      "urn:xmpp:sm:3"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_DELAY   "urn:xmpp:delay"
#define SM_KEY     "state"
/* What a reload carries from the old instance to the new one. */
#define SM_CARRY_KEY   "carried"
#define SM_CARRY_QUEUE "carried-queue"
/* An ack is requested once this many stanzas wait for one (after the
 * burst that queued them), or after SM_REQUEST_DELAY_MS for fewer. */
#define SM_REQUEST_AT       5
#define SM_REQUEST_DELAY_MS 1000

/* The module's typed configuration ([module:sm], host overrides). */
typedef struct {
  gint64 resume_timeout;   /* ms */
  gint64 max_unacked;
} SmConfig;

/* The instance: the sessions that can be resumed, by id.  Refcounted:
 * sessions' states hold it, so that one freed after the module's data
 * still finds its table. */
typedef struct {
  MynaModule *mod;
  GHashTable *resumable;   /* id → SmSession* (borrowed) */
  gboolean    saved;       /* a reload saved the sessions: unload ends none */
} Sm;

/* Stream management state of one session. */
typedef struct {
  Sm          *sm;
  MynaSession *session;
  char        *id;          /* resumption id, NULL without resume */
  guint64      in_base;     /* the session's stanzas received at <enable/> */
  guint32      sent;        /* stanzas counted out (mod 2^32) */
  guint32      acked;       /* the client's last h */
  GQueue       unacked;     /* MynaStanza*, oldest first: sent - acked of them */
  gboolean     r_pending;   /* an <r/> is scheduled or unanswered */
  gboolean     ended;       /* the session closed: nothing more is kept */
  gint64       window_ms;   /* the resumption window promised (<enabled max/>) */
  gint64       expires_at;  /* monotonic µs the window ends, while hibernated */
  MynaTimer   *timer;       /* the resumption window, while hibernated */
  MynaTimer   *request;     /* asks for an ack when few stanzas wait */
} SmSession;

/* Frees the instance once the module and every session state let go. */
static void
sm_clear (gpointer data)
{
  Sm *sm = data;

  g_hash_table_unref (sm->resumable);
}

static void
sm_release (gpointer data)
{
  g_rc_box_release_full (data, sm_clear);
}

static const SmConfig *
sm_config (Sm *sm)
{
  return myna_module_get_config (sm->mod);
}

static void
sm_session_free (gpointer data)
{
  SmSession *st = data;

  if (st->id != NULL && g_hash_table_lookup (st->sm->resumable, st->id) == st)
    g_hash_table_remove (st->sm->resumable, st->id);
  g_queue_clear_full (&st->unacked, (GDestroyNotify) myna_stanza_unref);
  myna_timer_free (st->timer);
  myna_timer_free (st->request);
  g_free (st->id);
  sm_release (st->sm);
  g_free (st);
}

static SmSession *
sm_state (MynaSession *s)
{
  return s != NULL ? myna_session_get_data (s, SM_KEY) : NULL;
}

/* A fresh state for @s, set as its session data (the counters zero). */
static SmSession *
sm_session_new (Sm *sm, MynaSession *s)
{
  SmSession *st = g_new0 (SmSession, 1);

  st->sm = g_rc_box_acquire (sm);
  st->session = s;
  g_queue_init (&st->unacked);
  myna_session_set_data (s, SM_KEY, st, sm_session_free);
  return st;
}

/* 128 random bits from the kernel, in hex: a resumption id nobody can
 * guess (it is also checked against the account on resume). */
static char *
sm_new_id (void)
{
  guint8 raw[16];
  GString *id = g_string_sized_new (2 * sizeof raw);

  if (getrandom (raw, sizeof raw, 0) != (ssize_t) sizeof raw)
    {
      g_warning ("getrandom failed: no resumption id");
      g_string_free (id, TRUE);
      return NULL;
    }
  for (gsize i = 0; i < sizeof raw; i++)
    g_string_append_printf (id, "%02x", raw[i]);
  return g_string_free (id, FALSE);
}

/* ---- writing ------------------------------------------------------------- */

static void
sm_write (MynaSession *s, const char *xml)
{
  myna_session_send_raw (s, xml, -1);
}

static void
sm_write_failed (MynaSession *s, const char *condition, gboolean with_h, guint32 h)
{
  g_autofree char *xml = with_h
      ? g_strdup_printf ("<failed xmlns='" NS_SM "' h='%u'><%s xmlns='" NS_STANZAS "'/></failed>",
                         h, condition)
      : g_strdup_printf ("<failed xmlns='" NS_SM "'><%s xmlns='" NS_STANZAS "'/></failed>",
                         condition);
  sm_write (s, xml);
}

/* h of what the client sent since <enable/>. */
static guint32
sm_h_in (SmSession *st)
{
  return sm_count_h (myna_session_get_stanzas_received (st->session), st->in_base);
}

/* Writes a kept stanza as the core would, without the to-client hooks:
 * it was counted (and let through them) when first sent. */
static void
sm_write_stanza (MynaSession *s, MynaStanza *stanza)
{
  g_autoptr(GString) buf = g_string_sized_new (256);

  myna_stanza_serialize (stanza, "jabber:client", buf);
  myna_session_send_raw (s, buf->str, (gssize) buf->len);
}

static void
sm_request_now (SmSession *st)
{
  if (st->request != NULL)
    myna_timer_stop (st->request);
  st->r_pending = TRUE;
  sm_write (st->session, "<r xmlns='" NS_SM "'/>");
}

/* From the main loop, after the burst that queued stanzas. */
static void
sm_request_drained (MynaSession *s, gpointer data)
{
  SmSession *st = sm_state (s);

  if (st == NULL || st->ended || !myna_session_is_open (s) || myna_session_is_hibernated (s))
    return;
  if (g_queue_is_empty (&st->unacked))
    {
      st->r_pending = FALSE;
      return;
    }
  sm_request_now (st);
}

static void
sm_request_due (gpointer data)
{
  sm_request_drained (((SmSession *) data)->session, NULL);
}

/* Asks for an ack (one outstanding at a time): once the current burst is
 * written when SM_REQUEST_AT stanzas wait, after SM_REQUEST_DELAY_MS when
 * fewer do (a client acking unasked is seldom asked). */
static void
sm_request_ack (SmSession *st)
{
  if (st->r_pending)
    return;
  if (g_queue_get_length (&st->unacked) < SM_REQUEST_AT)
    {
      if (st->request == NULL)
        st->request = myna_timer_new (sm_request_due, st);
      if (!myna_timer_is_active (st->request))
        myna_timer_start (st->request, SM_REQUEST_DELAY_MS);
      return;
    }
  if (st->request != NULL)
    myna_timer_stop (st->request);
  st->r_pending = TRUE;
  myna_session_when_drained (st->session, G_MAXSIZE, sm_request_drained, NULL, NULL);
}

/* ---- acknowledgements ------------------------------------------------------ */

/* Takes @n stanzas off the queue, firing MYNA_EVENT_SM_ACKED for each. */
static void
sm_drop_acked (SmSession *st, guint32 n)
{
  MynaHost *host = myna_session_get_host (st->session);
  MynaCall *call = n > 0 ? myna_call_new (host, st->session) : NULL;

  for (guint32 i = 0; i < n; i++)
    {
      g_autoptr(MynaStanza) stanza = g_queue_pop_head (&st->unacked);
      if (stanza == NULL)
        break;
      st->acked++;
      myna_host_fire_event (host, MYNA_EVENT_SM_ACKED, call, stanza);
    }
  if (call != NULL)
    myna_call_free (call);
}

/* Applies the client's h; FALSE when it acknowledges more than was sent. */
static gboolean
sm_apply_h (SmSession *st, guint32 h)
{
  guint32 n;

  if (!sm_count_acked (st->acked, h, g_queue_get_length (&st->unacked), &n))
    return FALSE;
  sm_drop_acked (st, n);
  return TRUE;
}

/* ---- nothing lost: what a closing session had not acknowledged ------------- */

/* Routes @stanza, kept for @s and never acknowledged, where it can still
 * go (see the top of the file). */
static void
sm_bounce_one (MynaSession *s, MynaStanza *stanza)
{
  MynaServer *server = myna_host_get_server (myna_session_get_host (s));
  MynaJid *jid = myna_session_get_jid (s);
  const char *name = myna_stanza_get_name (stanza);
  const char *type = myna_stanza_get_type (stanza);

  if (g_strcmp0 (name, "message") == 0 && g_strcmp0 (type, "error") != 0)
    {
      if (g_strcmp0 (myna_stanza_get_from (stanza), myna_jid_bare_string (jid)) == 0)
        {
          g_debug ("%s: an unacknowledged copy from the account itself dropped",
                   myna_jid_to_string (jid));
          return;
        }
      g_autoptr(MynaStanza) copy = myna_stanza_copy (stanza);
      myna_stanza_set_attr (copy, "to", myna_jid_bare_string (jid));
      if (myna_stanza_get_child (copy, "delay", NS_DELAY) == NULL)
        myna_stanza_add_delay (copy, myna_host_get_name (myna_session_get_host (s)), NULL,
                               "not acknowledged by the client");
      myna_server_route (server, copy);
      return;
    }
  if (g_strcmp0 (name, "iq") == 0 && (g_strcmp0 (type, "get") == 0 || g_strcmp0 (type, "set") == 0))
    {
      g_autoptr(MynaStanza) err = myna_stanza_new_error (stanza, MYNA_ERROR_TYPE_CANCEL,
                                                         "service-unavailable", NULL);
      myna_stanza_set_attr (err, "from", myna_jid_to_string (jid));
      if (myna_stanza_get_to (err) != NULL)
        myna_server_route (server, err);
      return;
    }
  g_debug ("%s: an unacknowledged <%s type='%s'/> dropped", myna_jid_to_string (jid),
           name, type != NULL ? type : "");
}

/* The session ends: re-routes everything it had not acknowledged. */
static void
sm_bounce_unacked (SmSession *st)
{
  guint n = g_queue_get_length (&st->unacked);

  st->ended = TRUE;
  myna_timer_free (g_steal_pointer (&st->timer));
  myna_timer_free (g_steal_pointer (&st->request));
  if (st->id != NULL && g_hash_table_lookup (st->sm->resumable, st->id) == st)
    g_hash_table_remove (st->sm->resumable, st->id);
  if (n > 0)
    g_info ("%s: session ended with %u unacknowledged stanza(s): re-routing its messages",
            myna_jid_to_string (myna_session_get_jid (st->session)), n);
  MynaStanza *stanza;
  while ((stanza = g_queue_pop_head (&st->unacked)) != NULL)
    {
      sm_bounce_one (st->session, stanza);
      myna_stanza_unref (stanza);
    }
}

/* ---- hooks ----------------------------------------------------------------- */

/* stanza/to-client at -1000: counts and keeps each stanza; takes it over
 * while the session is hibernated. */
static MynaResult
sm_to_client (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Sm *sm = data;
  MynaSession *s = myna_call_get_session (call);
  SmSession *st = sm_state (s);

  if (st == NULL || st->ended)
    return MYNA_PASS;
  g_queue_push_tail (&st->unacked, myna_stanza_ref (stanza));
  st->sent++;
  if ((gint64) g_queue_get_length (&st->unacked) > sm_config (sm)->max_unacked)
    {
      g_message ("%s: more than %" G_GINT64_FORMAT " stanzas unacknowledged (max_unacked): "
                 "closing the session", myna_session_get_peer (s), sm_config (sm)->max_unacked);
      myna_session_close (s, "policy-violation", "too many unacknowledged stanzas");
      return MYNA_HANDLED;
    }
  if (myna_session_is_hibernated (s))
    return MYNA_HANDLED;
  sm_request_ack (st);
  return MYNA_PASS;
}

static void
sm_window_expired (gpointer data)
{
  SmSession *st = data;

  g_info ("%s: resumption window ended: closing the hibernated session",
          myna_jid_to_string (myna_session_get_jid (st->session)));
  myna_session_close (st->session, NULL, NULL);
}

/* Starts (or restarts) the resumption window of a hibernated session:
 * it ends in @ms. */
static void
sm_arm_window (SmSession *st, gint64 ms)
{
  if (st->timer == NULL)
    st->timer = myna_timer_new (sm_window_expired, st);
  myna_timer_start (st->timer, (guint) CLAMP (ms, 0, G_MAXUINT));
}

/* session/transport-lost: a session that enabled resumption hibernates. */
static MynaResult
sm_transport_lost (MynaCall *call, MynaStanza *unused, gpointer data)
{
  SmSession *st = sm_state (myna_call_get_session (call));

  if (st == NULL || st->id == NULL || st->ended)
    return MYNA_PASS;
  st->r_pending = FALSE;
  if (st->request != NULL)
    myna_timer_stop (st->request);
  st->expires_at = g_get_monotonic_time () + st->window_ms * 1000;
  sm_arm_window (st, st->window_ms);
  return MYNA_HANDLED;
}

/* session/closed: nothing unacknowledged is lost. */
static MynaResult
sm_closed (MynaCall *call, MynaStanza *unused, gpointer data)
{
  SmSession *st = sm_state (myna_call_get_session (call));

  if (st != NULL && !st->ended)
    sm_bounce_unacked (st);
  return MYNA_PASS;
}

/* ---- stream elements ------------------------------------------------------- */

static gboolean
sm_session_bound (MynaSession *s)
{
  return myna_session_is_authenticated (s)
         && myna_jid_get_resource (myna_session_get_jid (s)) != NULL;
}

static void
sm_enable (Sm *sm, MynaSession *s, MynaStanza *el)
{
  const char *resume = myna_stanza_get_attr (el, "resume");
  gboolean want_resume = g_strcmp0 (resume, "true") == 0 || g_strcmp0 (resume, "1") == 0;
  guint64 asked = 0;

  /* XEP-0198 §3: not before resource binding, and once per stream (its
   * example answers a second <enable/> with unexpected-request, as
   * Prosody's mod_smacks does; the counters already running stay). */
  if (!sm_session_bound (s) || sm_state (s) != NULL)
    {
      g_message ("%s: <enable/> %s refused", myna_session_get_peer (s),
                 sm_state (s) != NULL ? "once stream management is enabled"
                                      : "before resource binding");
      sm_write_failed (s, "unexpected-request", FALSE, 0);
      return;
    }
  SmSession *st = sm_session_new (sm, s);
  st->in_base = myna_session_get_stanzas_received (s);
  /* The window is resume_timeout, or the client's preferred max if it is
   * shorter; <enabled max/> says which, in whole seconds. */
  st->window_ms = sm_config (sm)->resume_timeout;
  if (g_ascii_string_to_unsigned (myna_stanza_get_attr (el, "max") ?: "", 10, 1, G_MAXUINT32,
                                  &asked, NULL)
      && (gint64) asked * 1000 < st->window_ms)
    st->window_ms = (gint64) asked * 1000;
  if (want_resume)
    st->id = sm_new_id ();
  if (st->id == NULL)
    {
      sm_write (s, "<enabled xmlns='" NS_SM "'/>");
      return;
    }
  g_hash_table_insert (sm->resumable, g_strdup (st->id), st);
  g_autofree char *xml = g_strdup_printf ("<enabled xmlns='" NS_SM "' id='%s' resume='true' "
                                          "max='%" G_GINT64_FORMAT "'/>", st->id,
                                          MAX (st->window_ms / 1000, 1));
  sm_write (s, xml);
}

/* <resume/> on a fresh, authenticated, unbound connection. */
static void
sm_resume (Sm *sm, MynaSession *fresh, MynaStanza *el)
{
  const char *previd = myna_stanza_get_attr (el, "previd");
  SmSession *st = previd != NULL ? g_hash_table_lookup (sm->resumable, previd) : NULL;
  g_autoptr(GError) error = NULL;
  guint32 h;

  if (sm_session_bound (fresh) || sm_state (fresh) != NULL)
    {
      sm_write_failed (fresh, "unexpected-request", FALSE, 0);
      return;
    }
  /* Another account's id is as unknown as an expired one. */
  if (st == NULL || st->ended || !myna_session_is_open (st->session)
      || !myna_jid_bare_equal (myna_session_get_jid (st->session),
                               myna_session_get_jid (fresh)))
    {
      g_message ("%s: resumption of an unknown or expired session refused",
                 myna_session_get_peer (fresh));
      sm_write_failed (fresh, "item-not-found", FALSE, 0);
      return;
    }
  if (!sm_count_parse (myna_stanza_get_attr (el, "h"), &h)
      || !sm_count_acked (st->acked, h, g_queue_get_length (&st->unacked), &(guint32) { 0 }))
    {
      g_message ("%s: resumption with a bad h ('%s') refused", myna_session_get_peer (fresh),
                 myna_stanza_get_attr (el, "h") ?: "");
      sm_write_failed (fresh, "unexpected-request", TRUE, sm_h_in (st));
      return;
    }
  MynaSession *s = st->session;
  if (!myna_session_resume (s, fresh, &error))
    {
      g_warning ("%s: cannot resume: %s", myna_session_get_peer (fresh), error->message);
      sm_write_failed (fresh, "internal-server-error", TRUE, sm_h_in (st));
      return;
    }
  myna_timer_free (g_steal_pointer (&st->timer));
  sm_apply_h (st, h);
  g_autofree char *xml = g_strdup_printf ("<resumed xmlns='" NS_SM "' h='%u' previd='%s'/>",
                                          sm_h_in (st), st->id);
  sm_write (s, xml);
  /* Everything not acknowledged again, once, in order. */
  for (GList *l = st->unacked.head; l != NULL && myna_session_is_open (s); l = l->next)
    sm_write_stanza (s, l->data);
  st->r_pending = FALSE;
  if (!g_queue_is_empty (&st->unacked) && myna_session_is_open (s))
    sm_request_now (st);
}

static MynaResult
sm_element (MynaCall *call, MynaStanza *el, gpointer data)
{
  Sm *sm = data;
  MynaSession *s = myna_call_get_session (call);
  const char *name = myna_stanza_get_name (el);
  SmSession *st;

  if (s == NULL || !myna_session_is_authenticated (s))
    return MYNA_PASS;           /* the core refuses it before authentication */
  st = sm_state (s);
  if (strcmp (name, "enable") == 0)
    sm_enable (sm, s, el);
  else if (strcmp (name, "resume") == 0)
    sm_resume (sm, s, el);
  else if ((strcmp (name, "r") == 0 || strcmp (name, "a") == 0) && st == NULL)
    {
      /* XEP-0198 §4: acks come after <enable/>.  The stream ends, as
       * Prosody's mod_smacks ends it (an unhandled stream element). */
      g_message ("%s: <%s/> before stream management was enabled: closing the stream",
                 myna_session_get_peer (s), name);
      myna_session_close (s, "unsupported-stanza-type",
                          "stream management is not enabled on this stream");
    }
  else if (strcmp (name, "r") == 0)
    {
      g_autofree char *xml = g_strdup_printf ("<a xmlns='" NS_SM "' h='%u'/>", sm_h_in (st));
      sm_write (s, xml);
    }
  else if (strcmp (name, "a") == 0)
    {
      guint32 h;
      if (!sm_count_parse (myna_stanza_get_attr (el, "h"), &h))
        {
          myna_session_close (s, "bad-format", "<a/> needs an unsigned 32-bit h");
          return MYNA_HANDLED;
        }
      if (!sm_apply_h (st, h))
        {
          g_autofree char *text = g_strdup_printf (
              "handled-count-too-high: h='%u' but only %u stanza(s) were sent", h, st->sent);
          g_autoptr(MynaStanza) app = myna_stanza_build (
              "<handled-count-too-high xmlns='" NS_SM "' h='%u' send-count='%u'/>", h, st->sent);
          myna_session_close_with (s, "undefined-condition", text, app);
          return MYNA_HANDLED;
        }
      st->r_pending = FALSE;
      if (!g_queue_is_empty (&st->unacked))
        sm_request_ack (st);
    }
  else
    return MYNA_PASS;
  return MYNA_HANDLED;
}

static void
sm_features (MynaSession *s, MynaStanza *features, gpointer data)
{
  if (myna_session_is_authenticated (s))
    myna_stanza_add_child (features, "sm", NS_SM);
}

/* ---- lifecycle ------------------------------------------------------------- */

static gboolean
sm_load (MynaModule *mod, GError **error)
{
  Sm *sm = g_rc_box_new0 (Sm);

  sm->mod = mod;
  sm->resumable = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  myna_module_set_data (mod, sm, sm_release);
  myna_module_add_stream_features (mod, sm_features, NULL, NULL);
  myna_module_route_stream (mod, NS_SM, NULL, sm_element, sm, NULL);
  myna_module_hook (mod, MYNA_EVENT_STANZA_TO_CLIENT, -1000, sm_to_client, sm, NULL);
  myna_module_hook (mod, MYNA_EVENT_SESSION_TRANSPORT_LOST, 0, sm_transport_lost, sm, NULL);
  myna_module_hook (mod, MYNA_EVENT_SESSION_CLOSED, 0, sm_closed, sm, NULL);
  return TRUE;
}

/* Moves @st into session data the reload leaves with its session (GLib
 * and libmyna destroy functions, nothing pointing into this .so); its
 * queue is emptied, so the old state freed at unload keeps nothing. */
static void
sm_carry (SmSession *st)
{
  MynaSession *s = st->session;
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);
  GPtrArray *queue = g_ptr_array_new_full (g_queue_get_length (&st->unacked),
                                           (GDestroyNotify) myna_stanza_unref);
  MynaStanza *stanza;

  if (st->id != NULL)
    g_variant_dict_insert (&dict, "id", "s", st->id);
  g_variant_dict_insert (&dict, "in-base", "t", st->in_base);
  g_variant_dict_insert (&dict, "sent", "u", st->sent);
  g_variant_dict_insert (&dict, "acked", "u", st->acked);
  g_variant_dict_insert (&dict, "window-ms", "x", st->window_ms);
  if (myna_session_is_hibernated (s))
    g_variant_dict_insert (&dict, "expires-at", "x", st->expires_at);
  while ((stanza = g_queue_pop_head (&st->unacked)) != NULL)
    g_ptr_array_add (queue, stanza);
  myna_session_set_data (s, SM_CARRY_QUEUE, queue, (GDestroyNotify) g_ptr_array_unref);
  myna_session_set_data (s, SM_CARRY_KEY, g_variant_ref_sink (g_variant_dict_end (&dict)),
                         (GDestroyNotify) g_variant_unref);
}

/* Before a reload: every session's state goes into what the reload
 * leaves with the session (sm_carry); the new instance's sm_attach takes
 * it up.  Nothing else is carried: the resumable table is rebuilt from
 * the sessions. */
static GVariant *
sm_save (MynaModule *mod)
{
  Sm *sm = myna_module_get_data (mod);
  g_autoptr(GPtrArray) sessions = myna_host_list_sessions (myna_module_get_host (mod));
  guint carried = 0;

  sm->saved = TRUE;
  for (guint i = 0; i < sessions->len; i++)
    {
      SmSession *st = sm_state (sessions->pdata[i]);
      if (st == NULL || st->ended)
        continue;
      sm_carry (st);
      carried++;
    }
  if (carried > 0)
    g_info ("%u session(s) with stream management carried across the reload", carried);
  return NULL;
}

/* A session bound before this instance loaded: the state a reload
 * carried (sm_carry) becomes this instance's, the window of a hibernated
 * session running on from where it was, and an ack asked for what
 * waits (a request the old code had scheduled went with it). */
static void
sm_attach (MynaModule *mod, MynaSession *s)
{
  Sm *sm = myna_module_get_data (mod);
  GVariant *carried = myna_session_get_data (s, SM_CARRY_KEY);
  GPtrArray *queue = myna_session_get_data (s, SM_CARRY_QUEUE);
  const char *id = NULL;
  guint64 in_base = 0;
  gint64 window_ms = sm_config (sm)->resume_timeout, expires_at = 0;

  if (carried == NULL || sm_state (s) != NULL)
    return;
  /* Ours until the end: the session data let go of it below. */
  g_autoptr(GVariant) held = g_variant_ref (carried);
  if (!g_variant_is_of_type (held, G_VARIANT_TYPE_VARDICT)
      || !g_variant_lookup (held, "in-base", "t", &in_base))
    {
      g_warning ("%s: carried stream management state of type %s ignored",
                 myna_jid_to_string (myna_session_get_jid (s)),
                 g_variant_get_type_string (held));
      myna_session_set_data (s, SM_CARRY_KEY, NULL, NULL);
      myna_session_set_data (s, SM_CARRY_QUEUE, NULL, NULL);
      return;
    }
  SmSession *st = sm_session_new (sm, s);
  st->in_base = in_base;
  g_variant_lookup (held, "sent", "u", &st->sent);
  g_variant_lookup (held, "acked", "u", &st->acked);
  g_variant_lookup (held, "window-ms", "x", &window_ms);
  st->window_ms = window_ms;
  if (g_variant_lookup (held, "id", "&s", &id))
    {
      st->id = g_strdup (id);
      g_hash_table_insert (sm->resumable, g_strdup (id), st);
    }
  for (guint i = 0; queue != NULL && i < queue->len; i++)
    g_queue_push_tail (&st->unacked, myna_stanza_ref (queue->pdata[i]));
  myna_session_set_data (s, SM_CARRY_KEY, NULL, NULL);
  myna_session_set_data (s, SM_CARRY_QUEUE, NULL, NULL);

  if (myna_session_is_hibernated (s))
    {
      if (st->id == NULL || !g_variant_lookup (held, "expires-at", "x", &expires_at))
        expires_at = g_get_monotonic_time ();
      st->expires_at = expires_at;
      sm_arm_window (st, MAX (expires_at - g_get_monotonic_time (), 0) / 1000);
    }
  else if (!g_queue_is_empty (&st->unacked))
    sm_request_ack (st);
  g_debug ("%s: stream management state taken over (h %u, %u unacknowledged%s)",
           myna_jid_to_string (myna_session_get_jid (s)), sm_h_in (st),
           g_queue_get_length (&st->unacked),
           myna_session_is_hibernated (s) ? ", hibernated" : "");
}

/* Hibernated sessions end with the module (their window timer goes with
 * it): what they kept is re-routed by sm_closed.  Not on a reload: `save`
 * carried them to the new instance. */
static void
sm_unload (MynaModule *mod)
{
  Sm *sm = myna_module_get_data (mod);
  g_autoptr(GPtrArray) hibernated = g_ptr_array_new ();
  GHashTableIter it;
  gpointer value;

  if (sm->saved)
    return;
  g_hash_table_iter_init (&it, sm->resumable);
  while (g_hash_table_iter_next (&it, NULL, &value))
    if (myna_session_is_hibernated (((SmSession *) value)->session))
      g_ptr_array_add (hibernated, ((SmSession *) value)->session);
  for (guint i = 0; i < hibernated->len; i++)
    myna_session_close (hibernated->pdata[i], NULL, NULL);
}

MYNA_MODULE_DEFINE (sm,
  .version = "1.0",
  .description = "stream management (XEP-0198): acks, resumption, nothing unacknowledged lost",
  .serves  = MYNA_STRV (NS_SM),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_DURATION (SmConfig, resume_timeout, "5m", 1000, 86400000,
                            "how long a session whose connection dropped waits for "
                            "its client to resume it (XEP-0198 max)"),
      MYNA_CONFIG_INT (SmConfig, max_unacked, "5000", 1, 10000000,
                       "stanzas a session may hold unacknowledged; beyond, it is closed "
                       "(policy-violation) and what it held is re-routed")),
  .config_size = sizeof (SmConfig),
  .load    = sm_load,
  .unload  = sm_unload,
  .save    = sm_save,
  .attach  = sm_attach);
