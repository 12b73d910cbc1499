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
 *    <service-unavailable/>).
 *
 * Other modules read and write vCards through the vcard/1 service
 * (<myna/vcard.h>); once any set is durable, MYNA_EVENT_VCARD_UPDATED
 * fires with the new vCard (avatar conversion, XEP-0398, follows it). */
#include <myna/module.h>
#include <myna/xmlstream.h>
#include <myna/vcard.h>

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

/* An answer waiting for a write to be committed: a client's set (iq) or
 * a vcard/1 call's (done). */
typedef struct {
  Vcard         *self;
  MynaStanza    *iq;        /* nullable: the request (with the stamped `from`) */
  char          *user;      /* the account's bare JID, the reply's `from` */
  char          *host;
  MynaStanza    *fired;     /* the MYNA_EVENT_VCARD_UPDATED element */
  MynaVcardDone  done;      /* nullable */
  gpointer       data;
  GDestroyNotify destroy;
} VcardPending;

static void
vcard_pending_free (gpointer data)
{
  VcardPending *p = data;

  if (--p->self->inflight == 0)
    g_hash_table_remove_all (p->self->views);
  g_clear_pointer (&p->iq, myna_stanza_unref);
  myna_stanza_unref (p->fired);
  if (p->destroy != NULL)
    p->destroy (p->data);
  g_free (p->user);
  g_free (p->host);
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

/* The write ended: the client's answer (through the router to the
 * requester's full JID, so a session that closed meanwhile simply misses
 * it) or the caller's callback, then, once durable, the event. */
static void
vcard_stored (const GError *error, gpointer user_data)
{
  VcardPending *p = user_data;
  MynaServer *server = myna_module_get_server (p->self->mod);
  MynaHost *host = myna_server_get_host (server, p->host);

  if (error != NULL)
    g_warning ("vCard of %s not stored: %s", p->user, error->message);
  if (p->iq != NULL)
    {
      g_autoptr(MynaStanza) reply = error != NULL
        ? myna_stanza_new_error (p->iq, MYNA_ERROR_TYPE_WAIT, "internal-server-error", NULL)
        : myna_stanza_new_iq_result (p->iq);

      myna_stanza_set_attr (reply, "from", p->user);
      myna_server_route (server, reply);
    }
  if (error == NULL && host != NULL)
    {
      g_autoptr(MynaJid) jid = myna_jid_parse (p->user, NULL);
      MynaCall *call = jid != NULL ? myna_call_new_for (host, jid) : NULL;

      if (call != NULL)
        {
          myna_host_fire_event (host, MYNA_EVENT_VCARD_UPDATED, call, p->fired);
          myna_call_free (call);
        }
    }
  if (p->done != NULL)
    p->done (error, p->data);
}

/* Stores @vcard as @local@@host's; then answers @iq (nullable) or calls
 * @done.  FALSE with @error (nothing queued) when it is too large. */
static gboolean
vcard_store (Vcard *self, const char *host, const char *local, MynaStanza *vcard,
             MynaStanza *iq, const char *origin, MynaVcardDone done, gpointer data,
             GDestroyNotify destroy, GError **error)
{
  const VcardConfig *cfg = myna_module_get_config (self->mod);
  g_autofree char *xml = myna_stanza_to_string (vcard);
  VcardPending *p;

  if ((gint64) strlen (xml) > cfg->max_size)
    {
      g_info ("vCard of %s@%s refused: %zu bytes", local, host, strlen (xml));
      g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                   "the vCard is larger than %" G_GINT64_FORMAT " bytes", cfg->max_size);
      return FALSE;
    }
  p = g_new0 (VcardPending, 1);
  p->self = self;
  p->iq = iq != NULL ? myna_stanza_ref (iq) : NULL;
  p->user = g_strdup_printf ("%s@%s", local, host);
  p->host = g_strdup (host);
  p->fired = myna_stanza_new ("updated", MYNA_NS_VCARD_EVENTS);
  myna_stanza_set_attr (p->fired, "owner", p->user);
  if (origin != NULL)
    myna_stanza_set_attr (p->fired, "origin", origin);
  myna_stanza_append (p->fired, vcard);
  p->done = done;
  p->data = data;
  p->destroy = destroy;
  /* Gets asked from now on see this vCard, not the view before it. */
  g_hash_table_remove (self->views, p->user);
  self->inflight++;
  myna_kv_set (myna_module_get_storage (self->mod), host, local, VCARD_STORE, VCARD_KEY,
               xml, vcard_stored, p, vcard_pending_free);
  return TRUE;
}

static MynaResult
vcard_set (Vcard *self, MynaCall *call, MynaStanza *iq, const char *local, gboolean own)
{
  MynaStanza *vcard = myna_stanza_get_child (iq, "vCard", NS_VCARD);
  const char *host = myna_host_get_name (myna_call_get_host (call));
  g_autoptr(GError) error = NULL;

  if (!own)
    {
      myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_AUTH, "forbidden",
                             "only your own vCard can be set");
      return MYNA_HANDLED;
    }
  if (!vcard_store (self, host, local, vcard, iq, NULL, NULL, NULL, NULL, &error))
    myna_call_reply_error (call, iq, MYNA_ERROR_TYPE_MODIFY, "not-acceptable", error->message);
  return MYNA_HANDLED;
}

/* ---- the vcard/1 service (<myna/vcard.h>) ---------------------------------- */

/* The loaded instances, one per host: a vcard/1 call names its host. */
static GPtrArray *vcard_instances;

static Vcard *
vcard_self (MynaHost *host)
{
  for (guint i = 0; vcard_instances != NULL && i < vcard_instances->len; i++)
    {
      Vcard *self = vcard_instances->pdata[i];
      if (myna_module_get_host (self->mod) == host)
        return self;
    }
  return NULL;
}

static MynaStanza *
vcard_service_get (MynaHost *host, const char *local, GError **error)
{
  Vcard *self = vcard_self (host);
  g_autofree char *xml = NULL;
  MynaStanza *vcard;

  g_return_val_if_fail (self != NULL && local != NULL, NULL);
  xml = myna_kv_get (myna_module_get_storage (self->mod), myna_host_get_name (host), local,
                     VCARD_STORE, VCARD_KEY, error);
  if (xml == NULL)
    return NULL;
  vcard = myna_stanza_parse (xml, -1, NULL);
  if (vcard == NULL)
    g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                 "stored vCard of %s@%s is not valid XML", local, myna_host_get_name (host));
  return vcard;
}

static gboolean
vcard_service_set (MynaHost *host, const char *local, MynaStanza *vcard, const char *origin,
                   MynaVcardDone done, gpointer data, GDestroyNotify destroy, GError **error)
{
  Vcard *self = vcard_self (host);

  g_return_val_if_fail (self != NULL && local != NULL && vcard != NULL, FALSE);
  if (!vcard_store (self, myna_host_get_name (host), local, vcard, NULL, origin, done, data,
                    destroy, error))
    {
      if (destroy != NULL)
        destroy (data);
      return FALSE;
    }
  return TRUE;
}

static const MynaVcardService vcard_service = {
  .size = sizeof (MynaVcardService),
  .get  = vcard_service_get,
  .set  = vcard_service_set,
};

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

  if (vcard_instances != NULL)
    g_ptr_array_remove (vcard_instances, self);
  if (vcard_instances != NULL && vcard_instances->len == 0)
    g_clear_pointer (&vcard_instances, g_ptr_array_unref);
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
  if (vcard_instances == NULL)
    vcard_instances = g_ptr_array_new ();
  g_ptr_array_add (vcard_instances, self);
  if (!myna_module_provide (mod, MYNA_VCARD_SERVICE, 1, &vcard_service, error))
    return FALSE;
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
  .provides = MYNA_STRV ("vcard/1"),
  .mode    = MYNA_MODULE_LAZY,
  .config  = vcard_config,
  .config_size = sizeof (VcardConfig),
  .load    = vcard_load,
  .unload  = vcard_unload);
