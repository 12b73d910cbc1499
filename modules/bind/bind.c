/* bind: resource binding (RFC 6120 §7) — a client-chosen resource, or a
 * server-generated one when none is given or it conflicts, per
 * configuration — and the no-op session establishment (RFC 3921 §3) that
 * older clients still send. */
#include <myna/module.h>

#include <string.h>

#define NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

/* The module's typed configuration ([module:bind], host overrides). */
typedef struct {
  char  *resource_conflict;   /* kick_old, refuse or random */
  gint64 max_resources;
} BindConfig;

static void
bind_features (MynaSession *s, MynaStanza *features, gpointer data)
{
  /* Offered after authentication, until bound. */
  if (!myna_session_is_authenticated (s) || myna_jid_get_resource (myna_session_get_jid (s)))
    return;
  myna_stanza_add_child (features, "bind", NS_BIND);
  MynaStanza *session = myna_stanza_add_child (features, "session", NS_SESSION);
  myna_stanza_add_child (session, "optional", NS_SESSION);
}

/* Twelve random letters and digits. */
static char *
bind_random_resource (void)
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  char out[13];

  for (int i = 0; i < 12; i++)
    out[i] = alphabet[g_random_int_range (0, sizeof alphabet - 1)];
  out[12] = '\0';
  return g_strdup (out);
}

static void
bind_reply_error (MynaSession *s, MynaStanza *iq, MynaErrorType type, const char *cond)
{
  g_autoptr(MynaStanza) err = myna_stanza_new_error (iq, type, cond, NULL);

  myna_stanza_set_attr (err, "from", NULL);
  myna_stanza_set_attr (err, "to", NULL);
  myna_session_send (s, err);
}

/* The session of the same account already holding @resource, or NULL. */
static MynaSession *
bind_find_holder (MynaSession *s, const char *resource, guint *n_sessions)
{
  MynaJid *jid = myna_session_get_jid (s);
  g_autoptr(GPtrArray) all = myna_host_get_sessions (myna_session_get_host (s),
                                                     myna_jid_get_local (jid));
  MynaSession *holder = NULL;

  *n_sessions = all->len;
  for (guint i = 0; i < all->len; i++)
    {
      MynaJid *other = myna_session_get_jid (all->pdata[i]);
      if (g_strcmp0 (myna_jid_get_resource (other), resource) == 0)
        holder = all->pdata[i];
    }
  return holder;
}

static MynaResult
bind_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  const BindConfig *cfg = myna_module_get_config (data);
  MynaSession *s = myna_call_get_session (call);
  MynaStanza *req = myna_stanza_get_child (iq, "bind", NS_BIND);
  const char *wanted = myna_stanza_get_child_text (req, "resource");
  g_autofree char *resource = NULL;
  g_autoptr(GError) error = NULL;
  guint n = 0;

  if (s == NULL || myna_jid_get_resource (myna_session_get_jid (s)) != NULL)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "not-allowed", NULL);
      return MYNA_HANDLED;
    }
  if (wanted != NULL && *wanted != '\0')
    {
      resource = myna_jid_prep_resource (wanted, &error);
      if (resource == NULL)
        {
          bind_reply_error (s, iq, MYNA_ERROR_TYPE_MODIFY, "bad-request");
          return MYNA_HANDLED;
        }
    }
  else
    resource = bind_random_resource ();

  MynaSession *holder = bind_find_holder (s, resource, &n);
  if (holder != NULL)
    {
      if (g_strcmp0 (cfg->resource_conflict, "refuse") == 0)
        {
          bind_reply_error (s, iq, MYNA_ERROR_TYPE_CANCEL, "conflict");
          return MYNA_HANDLED;
        }
      if (g_strcmp0 (cfg->resource_conflict, "random") == 0)
        {
          g_free (resource);
          resource = bind_random_resource ();
        }
      else
        {
          myna_session_close (holder, "conflict", "replaced by a new connection");
          n--;
        }
    }
  if (n >= cfg->max_resources)
    {
      bind_reply_error (s, iq, MYNA_ERROR_TYPE_CANCEL, "resource-constraint");
      return MYNA_HANDLED;
    }
  if (!myna_session_bind (s, resource, &error))
    {
      bind_reply_error (s, iq, MYNA_ERROR_TYPE_CANCEL, "not-allowed");
      return MYNA_HANDLED;
    }
  g_autoptr(MynaStanza) reply = myna_stanza_build_result (
      iq, "<bind xmlns='" NS_BIND "'><jid>%s</jid></bind>",
      myna_jid_to_string (myna_session_get_jid (s)));
  myna_stanza_set_attr (reply, "from", NULL);
  myna_stanza_set_attr (reply, "to", NULL);
  myna_session_send (s, reply);
  return MYNA_HANDLED;
}

static MynaResult
bind_session_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);

  myna_stanza_set_attr (reply, "from", NULL);
  myna_call_send (call, reply);
  return MYNA_HANDLED;
}

static gboolean
bind_load (MynaModule *mod, GError **error)
{
  myna_module_add_stream_features (mod, bind_features, NULL, NULL);
  myna_module_route_iq (mod, MYNA_IQ_SET, NS_BIND, "bind", bind_iq, mod, NULL);
  myna_module_route_iq (mod, MYNA_IQ_SET, NS_SESSION, "session", bind_session_iq, NULL, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (bind,
  .version = "1.0",
  .description = "resource binding (RFC 6120 §7) and legacy session "
                 "establishment (RFC 3921)",
  .serves  = MYNA_STRV (NS_BIND, NS_SESSION),
  .mode    = MYNA_MODULE_EAGER,
  .config  = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_STRING (BindConfig, resource_conflict, "kick_old",
                          "when a resource is already bound: kick_old (the old "
                          "session gets <conflict/>), refuse, or random (the "
                          "new one gets a generated resource)"),
      MYNA_CONFIG_INT (BindConfig, max_resources, "10", 1, 1000,
                       "sessions one account may have at once")),
  .config_size = sizeof (BindConfig),
  .load    = bind_load);
