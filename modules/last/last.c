/* last: last activity (XEP-0012, jabber:iq:last).
 *
 *  - To the server: its uptime, the seconds since this module was loaded
 *    (it is eager, so that is the server's start; a hot reload carries the
 *    start over).
 *  - To a user's bare JID: 0 seconds while the user has an available
 *    resource, else the seconds since their last logout with the status
 *    text of their unavailable presence.  Only the user themselves and
 *    contacts with a presence subscription to them (the user's roster
 *    item for the requester's bare JID says subscription 'from' or 'both',
 *    as the roster/1 service tells; without a roster module, only the
 *    user) may ask: others get
 *    <forbidden/>.  A user with no recorded logout gives <item-not-found/>.
 *    An account that does not exist has nobody subscribed, so others get
 *    <forbidden/> as from any account that does not share its presence
 *    with them: the answer does not tell accounts from unused names.
 *
 * Logouts are recorded in this module's key–value store "last" (key "logout",
 * value "UNIX-SECONDS STATUS") on presence/unavailable, and on
 * session/closed for sessions that never sent unavailable presence. */
#include <myna/module.h>
#include <myna/roster.h>
#include <myna/xmlstream.h>

#include <string.h>

#define NS_LAST        "jabber:iq:last"
#define LAST_STORE     "last"
#define LAST_KEY       "logout"
#define LAST_RECORDED  "last-recorded"
#define LAST_MAX_STATUS 1024

typedef struct {
  MynaModule *mod;
  MynaService *roster;   /* roster/1, optional */
  gint64      started;   /* g_get_monotonic_time () at the first load */
  guint       inflight;
} Last;

/* ---- recording logouts ---------------------------------------------------- */

typedef struct {
  Last *self;
  char *user;
} LastWrite;

static void
last_write_free (gpointer data)
{
  LastWrite *w = data;

  w->self->inflight--;
  g_free (w->user);
  g_free (w);
}

static void
last_written (const GError *error, gpointer user_data)
{
  LastWrite *w = user_data;

  if (error != NULL)
    g_warning ("last logout of %s not stored: %s", w->user, error->message);
}

static void
last_record (Last *self, MynaSession *session, const char *status)
{
  MynaJid *jid = session != NULL ? myna_session_get_jid (session) : NULL;
  const char *host = myna_host_get_name (myna_module_get_host (self->mod));
  g_autofree char *value = NULL;
  g_autofree char *text = NULL;
  LastWrite *w;

  /* Not for an account being deleted (its sessions close afterwards). */
  if (jid == NULL || myna_jid_get_local (jid) == NULL
      || !myna_account_exists (myna_module_get_storage (self->mod), host,
                               myna_jid_get_local (jid)))
    return;
  text = g_utf8_make_valid (status != NULL ? status : "", -1);
  if (strlen (text) > LAST_MAX_STATUS)
    *g_utf8_find_prev_char (text, text + LAST_MAX_STATUS + 1) = '\0';
  value = g_strdup_printf ("%" G_GINT64_FORMAT " %s", g_get_real_time () / G_USEC_PER_SEC,
                           text);
  w = g_new0 (LastWrite, 1);
  w->self = self;
  w->user = g_strdup (myna_jid_bare_string (jid));
  self->inflight++;
  myna_kv_set (myna_module_get_storage (self->mod), host, myna_jid_get_local (jid),
               LAST_STORE, LAST_KEY, value, last_written, w, last_write_free);
  myna_session_set_data (session, LAST_RECORDED, GINT_TO_POINTER (1), NULL);
}

/* presence/unavailable: the logout, with its status text. */
static MynaResult
last_unavailable (MynaCall *call, MynaStanza *presence, gpointer data)
{
  const char *status = presence != NULL ? myna_stanza_get_child_text (presence, "status")
                                        : NULL;

  last_record (data, myna_call_get_session (call), status);
  return MYNA_PASS;
}

/* presence/initial: the session is online again. */
static MynaResult
last_initial (MynaCall *call, MynaStanza *presence, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);

  if (session != NULL)
    myna_session_set_data (session, LAST_RECORDED, NULL, NULL);
  return MYNA_PASS;
}

/* session/closed: a logout no unavailable presence announced. */
static MynaResult
last_closed (MynaCall *call, MynaStanza *unused, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);

  if (session != NULL && myna_session_get_data (session, LAST_RECORDED) == NULL)
    last_record (data, session, NULL);
  return MYNA_PASS;
}

/* ---- queries -------------------------------------------------------------- */

/* <query seconds=@seconds>@text</query> (@text may be NULL). */
static void
last_reply (MynaCall *call, MynaStanza *iq, gint64 seconds, const char *text)
{
  myna_call_reply (call, iq, "<query xmlns='" NS_LAST "' seconds='%" G_GINT64_FORMAT "'>%s</query>",
                   MAX (seconds, 0), text != NULL ? text : "");
}

/* Whether @local's roster lets @requester see their presence. */
static gboolean
last_may_see (Last *self, MynaHost *host, const char *local, MynaJid *requester)
{
  MynaRosterState state;

  myna_roster_get_state (self->roster, host, local, myna_jid_bare_string (requester), &state);
  return (state.sub & MYNA_ROSTER_SUB_FROM) != 0;
}

static gboolean
last_online (MynaHost *host, const char *local)
{
  g_autoptr(GPtrArray) sessions = myna_host_get_sessions (host, local);

  for (guint i = 0; i < sessions->len; i++)
    if (myna_session_is_available (sessions->pdata[i]))
      return TRUE;
  return FALSE;
}

static MynaResult
last_user (Last *self, MynaCall *call, MynaStanza *iq, const char *local)
{
  MynaHost *host = myna_call_get_host (call);
  MynaJid *from = myna_call_get_from (call);
  MynaStorage *storage = myna_module_get_storage (self->mod);
  g_autofree char *value = NULL;
  char *status = NULL;
  gint64 when;

  if (from == NULL || (!myna_jid_bare_equal (from, myna_call_get_to (call))
                       && !last_may_see (self, host, local, from)))
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden", NULL);
      return MYNA_HANDLED;
    }
  if (last_online (host, local))
    {
      last_reply (call, iq, 0, NULL);
      return MYNA_HANDLED;
    }
  value = myna_kv_get (storage, myna_host_get_name (host), local, LAST_STORE, LAST_KEY, NULL);
  when = value != NULL ? g_ascii_strtoll (value, &status, 10) : 0;
  if (value == NULL || status == value)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return MYNA_HANDLED;
    }
  last_reply (call, iq, g_get_real_time () / G_USEC_PER_SEC - when,
              *status == ' ' ? status + 1 : status);
  return MYNA_HANDLED;
}

static MynaResult
last_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Last *self = data;
  const char *local = myna_jid_get_local (myna_call_get_to (call));

  if (local != NULL)
    return last_user (self, call, iq, local);
  last_reply (call, iq, (g_get_monotonic_time () - self->started) / G_USEC_PER_SEC, NULL);
  return MYNA_HANDLED;
}

/* ---- module --------------------------------------------------------------- */

static gboolean
last_load (MynaModule *mod, GError **error)
{
  Last *self = g_new0 (Last, 1);

  self->mod = mod;
  /* Optional (not in .uses): without a roster, only the user may ask. */
  self->roster = myna_module_use (mod, MYNA_ROSTER_SERVICE, 1, NULL);
  self->started = g_get_monotonic_time ();
  myna_module_set_data (mod, self, g_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_GET, NS_LAST, "query", last_iq, self, NULL))
    {
      g_set_error_literal (error, g_quark_from_string ("myna-last-error"), 0,
                           "{" NS_LAST "}query is already routed to another module");
      return FALSE;
    }
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_UNAVAILABLE, 0, last_unavailable, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PRESENCE_INITIAL, 0, last_initial, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_SESSION_CLOSED, 0, last_closed, self, NULL);
  return TRUE;
}

static void
last_unload (MynaModule *mod)
{
  Last *self = myna_module_get_data (mod);

  if (self->inflight > 0 && !myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("last: a pending write failed at unload");
  if (self->inflight > 0)
    g_critical ("last: %u write(s) still pending at unload", self->inflight);
}

static GVariant *
last_save (MynaModule *mod)
{
  Last *self = myna_module_get_data (mod);
  g_auto(GVariantDict) dict = G_VARIANT_DICT_INIT (NULL);

  g_variant_dict_insert (&dict, "started", "x", self->started);
  return g_variant_dict_end (&dict);
}

static void
last_restore (MynaModule *mod, GVariant *state)
{
  Last *self = myna_module_get_data (mod);
  gint64 started = 0;

  if (g_variant_is_of_type (state, G_VARIANT_TYPE_VARDICT)
      && g_variant_lookup (state, "started", "x", &started))
    self->started = started;
}

/* Eager: the uptime counts from the server's start, and logouts are
 * recorded from the first session on. */
MYNA_MODULE_DEFINE (last,
  .version = "1.0",
  .description = "last activity (XEP-0012)",
  .serves  = MYNA_STRV (NS_LAST),
  .features = MYNA_STRV (NS_LAST),
  .account_features = MYNA_STRV (NS_LAST),
  .mode    = MYNA_MODULE_EAGER,
  .load    = last_load,
  .unload  = last_unload,
  .save    = last_save,
  .restore = last_restore);
