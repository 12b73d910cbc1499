/* vcard: vcard-temp (XEP-0054) — each account's vCard, kept whole in the
 * key–value store "vcard" (key "vcard") as serialised XML.
 *
 *  - set: only to one's own bare JID (or with no `to`); anything else is
 *    <forbidden/>.  A vCard larger than `max_size` bytes once serialised
 *    is refused with <not-acceptable/> (type modify) and a <text/> saying
 *    why.  The result is sent once the write is durable, and a get
 *    arriving meanwhile is answered after it.  Such a waiting get holds
 *    its request and the vCard as it was asked (one parsed copy per
 *    account, shared by the gets asked until that account's next set);
 *    its result is built when it is sent.  One account has at most
 *    `max_waiting` gets waiting so; past that a get is refused at once
 *    with <resource-constraint/> (type wait): it shows nothing, so no
 *    answer overtakes a write it could show.
 *  - get of one's own vCard when none was ever stored: a result with an
 *    empty <vCard/> (XEP-0054 §3.1 allows either; clients handle an empty
 *    one best).  Get of another user's: their vCard; <item-not-found/>
 *    when they have none, and just the same when the account does not
 *    exist, so that nobody can tell accounts from unused names this way
 *    (Prosody answers so too; RFC 6121 §8.5.1's <service-unavailable/>
 *    would tell them apart).
 *  - to the server itself: not handled (the core answers
 *    <service-unavailable/>). */
#include <myna/module.h>
#include <myna/xmlstream.h>

#include <string.h>

#define NS_VCARD    "vcard-temp"
#define VCARD_STORE "vcard"
#define VCARD_KEY   "vcard"

/* The module's typed configuration ([module:vcard], host overrides), read
 * afresh in each handler so a configuration reload applies at once. */
typedef struct {
  gint64  max_size;
  gint64  max_waiting;
} VcardConfig;

typedef struct {
  MynaModule *mod;
  guint       inflight;
  GHashTable *waiting;   /* requester's bare JID → its gets waiting (GUINT) */
  GHashTable *view_refs; /* "local@host" → gets waiting with its view (GUINT) */
  GHashTable *views;     /* "local@host" → its vCard as read while sets were in
                          * flight (MynaStanza); dropped by its next set */
} Vcard;

/* An answer waiting for a write to be committed. */
typedef struct {
  Vcard      *self;
  MynaStanza *iq;        /* the request (with the stamped `from`) */
  char       *user;      /* the requester's bare JID, the reply's `from` */
} VcardPending;

static void
vcard_pending_free (gpointer data)
{
  VcardPending *p = data;

  if (--p->self->inflight == 0)
    g_hash_table_remove_all (p->self->views);
  myna_stanza_unref (p->iq);
  g_free (p->user);
  g_free (p);
}

/* ---- get ------------------------------------------------------------------ */

/* A get's answer held behind the sets in flight: the result, without
 * its vCard until it is sent. */
typedef struct {
  Vcard      *self;
  MynaStanza *reply;
  MynaStanza *vcard;     /* shared, see Vcard.views */
  char       *requester; /* key in Vcard.waiting */
  char       *key;       /* "local@host": key in Vcard.views and view_refs */
} VcardLater;

static void
vcard_later_send (const GError *error, gpointer data)
{
  VcardLater *later = data;

  myna_stanza_append (later->reply, later->vcard);
  myna_server_route (myna_module_get_server (later->self->mod), later->reply);
}

static void
vcard_later_free (gpointer data)
{
  VcardLater *later = data;
  Vcard *self = later->self;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->waiting, later->requester));

  if (n > 1)
    g_hash_table_insert (self->waiting, g_strdup (later->requester), GUINT_TO_POINTER (n - 1));
  else
    g_hash_table_remove (self->waiting, later->requester);
  /* A view lives only while gets wait with it: not for every account
   * anyone asked about while some set was in flight somewhere. */
  n = GPOINTER_TO_UINT (g_hash_table_lookup (self->view_refs, later->key));
  if (n > 1)
    g_hash_table_insert (self->view_refs, g_strdup (later->key), GUINT_TO_POINTER (n - 1));
  else
    {
      g_hash_table_remove (self->view_refs, later->key);
      g_hash_table_remove (self->views, later->key);
    }
  if (--self->inflight == 0)
    g_hash_table_remove_all (self->views);
  myna_stanza_unref (later->reply);
  myna_stanza_unref (later->vcard);
  g_free (later->requester);
  g_free (later->key);
  g_free (later);
}

/* FALSE, with @iq refused, when its sender has max_waiting gets waiting. */
static gboolean
vcard_may_wait (Vcard *self, MynaCall *call, MynaStanza *iq, const char *requester)
{
  const VcardConfig *cfg = myna_module_get_config (self->mod);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->waiting, requester));

  if (n < cfg->max_waiting)
    return TRUE;
  g_debug ("vCard get of %s refused: %u waiting", requester, n);
  myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "resource-constraint",
                         "too many vCard requests are waiting for an answer");
  return FALSE;
}

/* While sets are in flight, the answer waits until they are durable: it
 * may show one, and must not overtake its result. */
static void
vcard_reply_later (Vcard *self, MynaCall *call, MynaStanza *iq, const char *key,
                   MynaStanza *vcard)
{
  VcardLater *later = g_new0 (VcardLater, 1);

  later->self = self;
  later->reply = myna_stanza_new_iq_result (iq);
  if (myna_stanza_get_from (later->reply) == NULL)
    myna_stanza_set_attr (later->reply, "from", myna_jid_to_string (myna_call_get_to (call)));
  later->vcard = myna_stanza_ref (vcard);
  later->requester = g_strdup (myna_jid_bare_string (myna_call_get_from (call)));
  g_hash_table_insert (self->waiting, g_strdup (later->requester),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (
                         self->waiting, later->requester)) + 1));
  if (!g_hash_table_contains (self->views, key))
    g_hash_table_insert (self->views, g_strdup (key), myna_stanza_ref (vcard));
  later->key = g_strdup (key);
  g_hash_table_insert (self->view_refs, g_strdup (key),
                       GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (
                         self->view_refs, key)) + 1));
  self->inflight++;
  myna_storage_after_writes (myna_module_get_storage (self->mod), vcard_later_send, later,
                             vcard_later_free);
}

static MynaResult
vcard_get (Vcard *self, MynaCall *call, MynaStanza *iq, const char *local, gboolean own)
{
  MynaStorage *storage = myna_module_get_storage (self->mod);
  const char *host = myna_host_get_name (myna_call_get_host (call));
  g_autoptr(GError) error = NULL;
  g_autofree char *xml = NULL;
  g_autofree char *key = g_strdup_printf ("%s@%s", local, host);
  g_autoptr(MynaStanza) vcard = NULL;
  MynaStanza *view;

  if (self->inflight > 0
      && !vcard_may_wait (self, call, iq, myna_jid_bare_string (myna_call_get_from (call))))
    return MYNA_HANDLED;
  view = self->inflight > 0 ? g_hash_table_lookup (self->views, key) : NULL;
  if (view != NULL)
    {
      vcard_reply_later (self, call, iq, key, view);
      return MYNA_HANDLED;
    }
  xml = myna_kv_get (storage, host, local, VCARD_STORE, VCARD_KEY, &error);
  if (error != NULL)
    {
      g_warning ("vCard of %s@%s cannot be read: %s", local, host, error->message);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
      return MYNA_HANDLED;
    }
  if (xml == NULL && !own)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_CANCEL, "item-not-found", NULL);
      return MYNA_HANDLED;
    }
  vcard = xml != NULL ? myna_stanza_parse (xml, -1, NULL) : myna_stanza_new ("vCard", NS_VCARD);
  if (vcard == NULL)
    {
      g_warning ("stored vCard of %s@%s is not valid XML", local, host);
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL);
      return MYNA_HANDLED;
    }
  if (self->inflight > 0)
    vcard_reply_later (self, call, iq, key, vcard);
  else
    {
      g_autoptr(MynaStanza) reply = myna_stanza_new_iq_result (iq);

      myna_stanza_append (reply, vcard);
      myna_call_send (call, reply);
    }
  return MYNA_HANDLED;
}

/* ---- set ------------------------------------------------------------------ */

/* The reply goes through the router to the requester's full JID, so a
 * session that closed meanwhile simply misses it. */
static void
vcard_stored (const GError *error, gpointer user_data)
{
  VcardPending *p = user_data;
  MynaServer *server = myna_module_get_server (p->self->mod);
  g_autoptr(MynaStanza) reply = NULL;

  if (error != NULL)
    {
      g_warning ("vCard of %s not stored: %s", p->user, error->message);
      reply = myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT,
                                     "internal-server-error", NULL);
    }
  else
    reply = myna_stanza_new_iq_result (p->iq);
  myna_stanza_set_attr (reply, "from", p->user);
  myna_server_route (server, reply);
}

static MynaResult
vcard_set (Vcard *self, MynaCall *call, MynaStanza *iq, const char *local, gboolean own)
{
  MynaStanza *vcard = myna_stanza_get_child (iq, "vCard", NS_VCARD);
  const char *host = myna_host_get_name (myna_call_get_host (call));
  const VcardConfig *cfg = myna_module_get_config (self->mod);
  g_autofree char *xml = NULL;
  VcardPending *p;

  if (!own)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden",
                             "only your own vCard can be set");
      return MYNA_HANDLED;
    }
  xml = myna_stanza_to_string (vcard);
  if ((gint64) strlen (xml) > cfg->max_size)
    {
      g_autofree char *text = g_strdup_printf ("the vCard is larger than %" G_GINT64_FORMAT
                                               " bytes", cfg->max_size);
      g_info ("vCard of %s@%s refused: %zu bytes", local, host, strlen (xml));
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable", text);
      return MYNA_HANDLED;
    }
  p = g_new0 (VcardPending, 1);
  p->self = self;
  p->iq = myna_stanza_ref (iq);
  p->user = g_strdup (myna_jid_bare_string (myna_call_get_to (call)));
  /* Gets asked from now on see this vCard, not the view before it. */
  g_hash_table_remove (self->views, p->user);
  self->inflight++;
  myna_kv_set (myna_module_get_storage (self->mod), host, local, VCARD_STORE, VCARD_KEY,
               xml, vcard_stored, p, vcard_pending_free);
  return MYNA_HANDLED;
}

static MynaResult
vcard_iq (MynaCall *call, MynaStanza *iq, gpointer data)
{
  Vcard *self = data;
  MynaJid *to = myna_call_get_to (call);
  MynaJid *from = myna_call_get_from (call);
  const char *local = myna_jid_get_local (to);
  gboolean own;

  if (local == NULL)
    return MYNA_PASS;             /* the server has no vCard */
  own = from != NULL && myna_jid_bare_equal (to, from);
  if (g_strcmp0 (myna_stanza_get_type (iq), "set") == 0)
    return vcard_set (self, call, iq, local, own);
  return vcard_get (self, call, iq, local, own);
}

/* ---- module --------------------------------------------------------------- */

static void
vcard_free (gpointer data)
{
  Vcard *self = data;

  g_hash_table_unref (self->waiting);
  g_hash_table_unref (self->view_refs);
  g_hash_table_unref (self->views);
  g_free (self);
}

static gboolean
vcard_load (MynaModule *mod, GError **error)
{
  Vcard *self = g_new0 (Vcard, 1);

  self->mod = mod;
  self->waiting = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->view_refs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->views = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify) myna_stanza_unref);
  myna_module_set_data (mod, self, vcard_free);
  if (!myna_module_route_iq (mod, MYNA_IQ_GET | MYNA_IQ_SET, NS_VCARD, "vCard",
                             vcard_iq, self, NULL))
    {
      g_set_error_literal (error, g_quark_from_string ("myna-vcard-error"), 0,
                           "{" NS_VCARD "}vCard is already routed to another module");
      return FALSE;
    }
  return TRUE;
}

/* Answers every pending set before the code goes away. */
static void
vcard_unload (MynaModule *mod)
{
  Vcard *self = myna_module_get_data (mod);

  if (self->inflight > 0 && !myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("vcard: a pending write failed at unload");
  if (self->inflight > 0)
    g_critical ("vcard: %u write(s) still pending at unload", self->inflight);
}

static const MynaConfigKey vcard_config[] = {
  MYNA_CONFIG_SIZE (VcardConfig, max_size, "64K", 1024, 16 * 1024 * 1024,
                    "largest vCard accepted, serialised; a larger one gets "
                    "not-acceptable"),
  MYNA_CONFIG_INT (VcardConfig, max_waiting, "1000", 16, 100000,
                   "gets of one account that may wait for vCard sets in "
                   "flight; past it a get gets resource-constraint"),
  MYNA_CONFIG_END,
};

MYNA_MODULE_DEFINE (vcard,
  .version = "1.0",
  .description = "vcard-temp (XEP-0054)",
  .serves  = MYNA_STRV (NS_VCARD),
  .features = MYNA_STRV (NS_VCARD),
  .account_features = MYNA_STRV (NS_VCARD),
  .mode    = MYNA_MODULE_LAZY,
  .config  = vcard_config,
  .config_size = sizeof (VcardConfig),
  .load    = vcard_load,
  .unload  = vcard_unload);
