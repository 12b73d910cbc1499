/* caps: entity capabilities (XEP-0115) as the service caps/1
 * (<myna/caps.h>).  It reads the <c xmlns='http://jabber.org/protocol/caps'
 * hash node ver/> of the available presence each local session sends
 * (stanza/from-client, before the presence module, never consuming it),
 * remembers the session's (hash, ver) in its session data, and answers
 * lookups from a cache of (hash, ver) → sorted features, shared by the
 * host's sessions and bounded by `cache_size` (least recently announced
 * dropped first).  An unknown ver is asked once: a disco#info to the
 * announcing full JID at node#ver, one query in flight per (hash, ver)
 * (other sessions announcing it meanwhile wait for it), verified against
 * the ver (XEP-0115 §5, verify.c); an answer that does not match is not
 * cached, logged, and the (hash, ver) is not asked again for
 * `query_timeout`.  Legacy <c/> without a hash (the obsolete ext form) is
 * ignored.  When a session's features become known or change the module
 * fires MYNA_EVENT_CAPS_UPDATED on its host, from the main loop after the
 * presence module has handled the presence.  `mynactl caps show FULLJID`
 * prints a session's features, `mynactl caps stats` the cache's size. */
#include <myna/module.h>
#include <myna/caps.h>
#include <myna/presence.h>

#include <string.h>

#include "verify.h"

#define NS_CAPS "http://jabber.org/protocol/caps"
#define CAPS_SESSION_KEY "caps-session"
/* Queries (distinct unknown vers) one instance keeps in flight;
 * announcements of further vers wait for a later presence. */
#define CAPS_MAX_PENDING 256
/* Refused (hash, ver)s remembered for the retry delay, at most. */
#define CAPS_MAX_FAILED 1024

/* [module:caps]: cache entries, and how long to wait for an answer. */
typedef struct {
  gint64 cache_size;
  gint64 query_timeout;   /* ms */
} CapsConfig;

/* One verified (hash, ver): its features, and its place in the LRU. */
typedef struct {
  char  *key;             /* "HASH\nVER" */
  char **features;        /* sorted, NULL-terminated */
  guint  n_features;
  GList  link;            /* in Caps.lru; data is this entry */
} CapsEntry;

/* The instance of one host. */
typedef struct {
  MynaModule  *mod;
  MynaService *presence;  /* presence/1, optional */
  GHashTable  *cache;     /* key → CapsEntry* (owned) */
  GQueue       lru;       /* most recently announced first */
  GHashTable  *pending;   /* key → CapsQuery* (owned by its IQ request) */
  GHashTable  *failed;    /* key → gint64* time (µs, monotonic) of the refusal */
} Caps;

/* One disco#info query in flight: owned by the IQ request. */
typedef struct {
  char      *key;
  char      *hash;
  char      *ver;
  char      *asked;       /* the full JID asked */
  GPtrArray *waiting;     /* full JIDs (char *) of sessions announcing it */
} CapsQuery;

/* A session's announced (hash, ver). */
typedef struct {
  char *key;
} CapsSession;

/* Every loaded instance, for the service and the admin command. */
static GPtrArray *caps_instances;

static void
caps_entry_free (gpointer data)
{
  CapsEntry *e = data;
  g_free (e->key);
  g_strfreev (e->features);
  g_free (e);
}

static void
caps_query_free (gpointer data)
{
  CapsQuery *q = data;
  g_free (q->key);
  g_free (q->hash);
  g_free (q->ver);
  g_free (q->asked);
  g_ptr_array_unref (q->waiting);
  g_free (q);
}

static void
caps_session_free (gpointer data)
{
  CapsSession *cs = data;
  g_free (cs->key);
  g_free (cs);
}

/* The instance serving @host, or NULL. */
static Caps *
caps_for_host (MynaHost *host)
{
  for (guint i = 0; caps_instances != NULL && i < caps_instances->len; i++)
    {
      Caps *caps = g_ptr_array_index (caps_instances, i);
      if (myna_module_get_host (caps->mod) == host)
        return caps;
    }
  return NULL;
}

/* The cache entry of @session's announced (hash, ver), or NULL. */
static CapsEntry *
caps_entry_of (Caps *caps, MynaSession *session)
{
  CapsSession *cs = myna_session_get_data (session, CAPS_SESSION_KEY);
  return cs != NULL && caps != NULL ? g_hash_table_lookup (caps->cache, cs->key) : NULL;
}

/* Fires caps/updated for @session (with its last presence, if the
 * presence module has one). */
static void
caps_fire_updated (Caps *caps, MynaSession *session)
{
  MynaHost *host = myna_module_get_host (caps->mod);
  MynaCall *call = myna_call_new (host, session);
  MynaStanza *last = myna_presence_get_last (caps->presence, session);

  g_debug ("caps of %s known", myna_jid_to_string (myna_session_get_jid (session)));
  myna_host_fire_event (host, MYNA_EVENT_CAPS_UPDATED, call, last);
  myna_call_free (call);
}

/* Fires caps/updated for the session @jid if it still announces @key. */
static void
caps_fire_for_jid (Caps *caps, const char *jid, const char *key)
{
  g_autoptr(MynaJid) full = myna_jid_parse (jid, NULL);
  MynaSession *session = full != NULL
      ? myna_host_find_session (myna_module_get_host (caps->mod), full) : NULL;
  CapsSession *cs = session != NULL ? myna_session_get_data (session, CAPS_SESSION_KEY) : NULL;

  if (cs != NULL && strcmp (cs->key, key) == 0 && myna_session_is_open (session))
    caps_fire_updated (caps, session);
}

/* A deferred caps/updated: the session's JID and the key it announced. */
typedef struct {
  char *jid;
  char *key;
} CapsDeferred;

static void
caps_deferred_free (gpointer data)
{
  CapsDeferred *d = data;
  g_free (d->jid);
  g_free (d->key);
  g_free (d);
}

/* One-shot timer: caps/updated for a ver already cached, once the
 * presence that announced it has been handled. */
static gboolean
caps_deferred_fire (MynaModule *mod, gpointer data)
{
  CapsDeferred *d = data;
  Caps *caps = myna_module_get_data (mod);

  if (caps != NULL)
    caps_fire_for_jid (caps, d->jid, d->key);
  return FALSE;
}

/* Moves @e to the front of the LRU. */
static void
caps_touch (Caps *caps, CapsEntry *e)
{
  g_queue_unlink (&caps->lru, &e->link);
  g_queue_push_head_link (&caps->lru, &e->link);
}

/* Adds a verified entry, dropping the least recently announced ones
 * beyond cache_size. */
static void
caps_cache_add (Caps *caps, const char *key, char **features)
{
  const CapsConfig *cfg = myna_module_get_config (caps->mod);
  CapsEntry *e;

  if (g_hash_table_contains (caps->cache, key))
    {
      g_strfreev (features);
      return;
    }
  e = g_new0 (CapsEntry, 1);
  e->key = g_strdup (key);
  e->features = features;
  e->n_features = g_strv_length (features);
  e->link.data = e;
  g_hash_table_replace (caps->cache, e->key, e);
  g_queue_push_head_link (&caps->lru, &e->link);
  while ((gint64) caps->lru.length > cfg->cache_size)
    {
      CapsEntry *old = caps->lru.tail->data;
      g_queue_unlink (&caps->lru, &old->link);
      g_debug ("caps cache full: dropping %s", old->key);
      g_hash_table_remove (caps->cache, old->key);
    }
}

/* Remembers that @key was refused now (bounded: the oldest go first
 * when full, all at once). */
static void
caps_mark_failed (Caps *caps, const char *key)
{
  gint64 *when = g_new (gint64, 1);

  if (g_hash_table_size (caps->failed) >= CAPS_MAX_FAILED)
    g_hash_table_remove_all (caps->failed);
  *when = g_get_monotonic_time ();
  g_hash_table_replace (caps->failed, g_strdup (key), when);
}

/* The outcome of a disco#info query: verified → cached, and every
 * session waiting for it hears caps/updated. */
static void
caps_query_done (MynaModule *mod, MynaStanza *reply, const GError *error, gpointer data)
{
  Caps *caps = myna_module_get_data (mod);
  CapsQuery *q = data;
  MynaStanza *query;
  g_autofree char *s = NULL;
  g_autofree char *computed = NULL;
  const char *why = NULL;

  if (caps == NULL)
    return;
  g_hash_table_remove (caps->pending, q->key);
  if (error != NULL)
    {
      g_message ("caps: no answer from %s for %s %s: %s", q->asked, q->hash, q->ver,
                 error->message);
      caps_mark_failed (caps, q->key);
      return;
    }
  query = myna_stanza_get_child (reply, "query", CAPS_NS_DISCO_INFO);
  if (query == NULL || (s = caps_verification_string (query, &why)) == NULL)
    {
      g_message ("caps: unusable disco#info from %s for %s %s: %s", q->asked, q->hash,
                 q->ver, why != NULL ? why : "no <query/>");
      caps_mark_failed (caps, q->key);
      return;
    }
  computed = caps_hash_ver (q->hash, s);
  if (computed == NULL || strcmp (computed, q->ver) != 0)
    {
      g_message ("caps: disco#info from %s does not match its ver: %s %s announced, "
                 "%s computed; not cached", q->asked, q->hash, q->ver,
                 computed != NULL ? computed : "none");
      caps_mark_failed (caps, q->key);
      return;
    }
  caps_cache_add (caps, q->key, caps_query_features (query));
  g_hash_table_remove (caps->failed, q->key);
  for (guint i = 0; i < q->waiting->len; i++)
    caps_fire_for_jid (caps, g_ptr_array_index (q->waiting, i), q->key);
}

/* Asks @session for the (hash, ver) @key it announced, or joins the
 * query already in flight for it. */
static void
caps_ask (Caps *caps, MynaSession *session, const char *key, const char *hash,
          const char *node, const char *ver)
{
  const CapsConfig *cfg = myna_module_get_config (caps->mod);
  const char *jid = myna_jid_to_string (myna_session_get_jid (session));
  CapsQuery *q = g_hash_table_lookup (caps->pending, key);
  gint64 *failed = g_hash_table_lookup (caps->failed, key);
  g_autoptr(MynaStanza) iq = NULL;

  if (q != NULL)
    {
      /* Every session announcing it waits (bounded by the sessions
       * themselves): one left out would never hear caps/updated, nor
       * get the last PEP items it wants (seen with 1,000 contacts
       * announcing one client's ver at once). */
      g_ptr_array_add (q->waiting, g_strdup (jid));
      return;
    }
  if (failed != NULL && g_get_monotonic_time () - *failed < cfg->query_timeout * 1000)
    {
      g_debug ("caps: %s %s of %s refused recently: not asked again yet", hash, ver, jid);
      return;
    }
  if (g_hash_table_size (caps->pending) >= CAPS_MAX_PENDING)
    {
      g_message ("caps: %u queries in flight: %s not asked for %s %s",
                 g_hash_table_size (caps->pending), jid, hash, ver);
      return;
    }
  iq = myna_stanza_build ("<iq type='get' to='%s'><query xmlns='" CAPS_NS_DISCO_INFO
                          "' node='%s#%s'/></iq>", jid, node, ver);
  if (iq == NULL)
    return;
  q = g_new0 (CapsQuery, 1);
  q->key = g_strdup (key);
  q->hash = g_strdup (hash);
  q->ver = g_strdup (ver);
  q->asked = g_strdup (jid);
  q->waiting = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (q->waiting, g_strdup (jid));
  g_hash_table_insert (caps->pending, q->key, q);
  g_debug ("caps: asking %s for %s %s", jid, hash, ver);
  myna_module_send_iq (caps->mod, iq, (guint) cfg->query_timeout, caps_query_done, q,
                       caps_query_free);
}

/* An available presence of @session: what it announces now. */
static void
caps_announced (Caps *caps, MynaSession *session, MynaStanza *presence)
{
  MynaStanza *c = myna_stanza_get_child (presence, "c", NS_CAPS);
  const char *hash = c != NULL ? myna_stanza_get_attr (c, "hash") : NULL;
  const char *ver = c != NULL ? myna_stanza_get_attr (c, "ver") : NULL;
  const char *node = c != NULL ? myna_stanza_get_attr (c, "node") : NULL;
  CapsSession *cs = myna_session_get_data (session, CAPS_SESSION_KEY);
  g_autofree char *key = NULL;
  CapsEntry *e;

  if (hash == NULL || ver == NULL || node == NULL || *ver == '\0')
    {
      /* No caps (or the legacy form): nothing known any more. */
      myna_session_set_data (session, CAPS_SESSION_KEY, NULL, NULL);
      return;
    }
  key = g_strdup_printf ("%s\n%s", hash, ver);
  if (cs != NULL && strcmp (cs->key, key) == 0
      && (g_hash_table_contains (caps->cache, key) || g_hash_table_contains (caps->pending, key)))
    return;                                   /* the same as before */
  if (cs == NULL || strcmp (cs->key, key) != 0)
    {
      cs = g_new0 (CapsSession, 1);
      cs->key = g_strdup (key);
      myna_session_set_data (session, CAPS_SESSION_KEY, cs, caps_session_free);
    }
  if (!caps_hash_known (hash))
    {
      g_debug ("caps: hash %s of %s unknown: ignored", hash,
               myna_jid_to_string (myna_session_get_jid (session)));
      return;
    }
  e = g_hash_table_lookup (caps->cache, key);
  if (e != NULL)
    {
      CapsDeferred *d = g_new0 (CapsDeferred, 1);

      caps_touch (caps, e);
      d->jid = g_strdup (myna_jid_to_string (myna_session_get_jid (session)));
      d->key = g_strdup (key);
      myna_module_add_timer (caps->mod, 0, caps_deferred_fire, d, caps_deferred_free);
      return;
    }
  caps_ask (caps, session, key, hash, node, ver);
}

/* stanza/from-client: a session's broadcast presence; never consumed. */
static MynaResult
caps_from_client (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Caps *caps = data;
  MynaSession *session = myna_call_get_session (call);
  const char *type = myna_stanza_get_type (stanza);

  if (session == NULL || g_strcmp0 (myna_stanza_get_name (stanza), "presence") != 0
      || myna_stanza_get_to (stanza) != NULL)
    return MYNA_PASS;
  if (type == NULL)
    caps_announced (caps, session, stanza);
  else if (strcmp (type, "unavailable") == 0)
    myna_session_set_data (session, CAPS_SESSION_KEY, NULL, NULL);
  return MYNA_PASS;
}

/* session/closed: the session's mapping goes. */
static MynaResult
caps_closed (MynaCall *call, MynaStanza *unused, gpointer data)
{
  MynaSession *session = myna_call_get_session (call);

  if (session != NULL)
    myna_session_set_data (session, CAPS_SESSION_KEY, NULL, NULL);
  return MYNA_PASS;
}

/* caps/1: has_feature. */
static MynaCapsAnswer
caps_service_has_feature (MynaSession *session, const char *feature)
{
  CapsEntry *e;

  g_return_val_if_fail (session != NULL && feature != NULL, MYNA_CAPS_UNKNOWN);
  e = caps_entry_of (caps_for_host (myna_session_get_host (session)), session);
  if (e == NULL)
    return MYNA_CAPS_UNKNOWN;
  /* Binary search of the sorted features. */
  for (guint lo = 0, hi = e->n_features; lo < hi;)
    {
      guint mid = lo + (hi - lo) / 2;
      int c = strcmp (feature, e->features[mid]);
      if (c == 0)
        return MYNA_CAPS_YES;
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  return MYNA_CAPS_NO;
}

/* caps/1: features. */
static char **
caps_service_features (MynaSession *session)
{
  CapsEntry *e;

  g_return_val_if_fail (session != NULL, NULL);
  e = caps_entry_of (caps_for_host (myna_session_get_host (session)), session);
  return e != NULL ? g_strdupv (e->features) : NULL;
}

/* caps/1: ver, for an entity announcing its own capabilities (the
 * server's, in its stream features: the disco module). */
static char *
caps_service_ver (MynaStanza *query, const char *hash)
{
  g_autofree char *s = NULL;
  const char *why = NULL;

  g_return_val_if_fail (query != NULL && hash != NULL, NULL);
  s = caps_verification_string (query, &why);
  if (s == NULL)
    {
      g_message ("caps: no ver for this disco#info: %s", why);
      return NULL;
    }
  return caps_hash_ver (hash, s);
}

static const MynaCapsService caps_service = {
  .size        = sizeof (MynaCapsService),
  .has_feature = caps_service_has_feature,
  .features    = caps_service_features,
  .ver         = caps_service_ver,
};

/* `mynactl caps show FULLJID | caps stats [HOST]`. */
static gboolean
caps_admin_command (MynaModule *mod, const char *const *argv, GString *out,
                    gpointer unused, GError **error)
{
  const char *sub = argv[1] != NULL ? argv[1] : "";

  if (strcmp (sub, "show") == 0 && argv[2] != NULL && argv[3] == NULL)
    {
      g_autoptr(MynaJid) jid = myna_jid_parse (argv[2], NULL);
      Caps *caps = NULL;
      MynaSession *session = NULL;
      CapsEntry *e = NULL;

      for (guint i = 0; jid != NULL && caps_instances != NULL && i < caps_instances->len; i++)
        {
          Caps *c = g_ptr_array_index (caps_instances, i);
          if (g_strcmp0 (myna_host_get_name (myna_module_get_host (c->mod)),
                         myna_jid_get_domain (jid)) == 0)
            caps = c;
        }
      if (caps != NULL)
        session = myna_host_find_session (myna_module_get_host (caps->mod), jid);
      if (session == NULL)
        {
          g_set_error (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                       "no bound session %s on a host with caps", argv[2]);
          return FALSE;
        }
      e = caps_entry_of (caps, session);
      if (e == NULL)
        g_string_append (out, "unknown\n");
      for (guint i = 0; e != NULL && i < e->n_features; i++)
        g_string_append_printf (out, "%s\n", e->features[i]);
      return TRUE;
    }
  if (strcmp (sub, "stats") == 0 && (argv[2] == NULL || argv[3] == NULL))
    {
      for (guint i = 0; caps_instances != NULL && i < caps_instances->len; i++)
        {
          Caps *c = g_ptr_array_index (caps_instances, i);
          const char *name = myna_host_get_name (myna_module_get_host (c->mod));
          if (argv[2] != NULL && g_strcmp0 (argv[2], name) != 0)
            continue;
          g_string_append_printf (out, "%s cached %u pending %u\n", name,
                                  g_hash_table_size (c->cache),
                                  g_hash_table_size (c->pending));
        }
      return TRUE;
    }
  g_set_error_literal (error, MYNA_MODULE_ERROR, MYNA_MODULE_ERROR_FAILED,
                       "usage: caps show FULLJID | caps stats [HOST]");
  return FALSE;
}

static void
caps_free (gpointer data)
{
  Caps *caps = data;

  if (caps_instances != NULL)
    {
      g_ptr_array_remove (caps_instances, caps);
      if (caps_instances->len == 0)
        g_clear_pointer (&caps_instances, g_ptr_array_unref);
    }
  /* Entries are linked into the LRU by their own link: the table frees them. */
  g_queue_init (&caps->lru);
  g_hash_table_destroy (caps->cache);
  g_hash_table_destroy (caps->pending);
  g_hash_table_destroy (caps->failed);
  g_free (caps);
}

/* Before a reload: the verified cache, most recently announced first, as
 * a(sas) (key, features); queries in flight and refusals are not kept. */
static GVariant *
caps_save (MynaModule *mod)
{
  Caps *caps = myna_module_get_data (mod);
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sas)"));
  for (GList *l = caps->lru.head; l != NULL; l = l->next)
    {
      CapsEntry *e = l->data;
      g_variant_builder_add (&b, "(s^as)", e->key, e->features);
    }
  return g_variant_builder_end (&b);
}

/* After a reload: the cache back in its order (the new cache_size bounds
 * it); each session's announcement is set up again by caps_attach. */
static void
caps_restore (MynaModule *mod, GVariant *state)
{
  Caps *caps = myna_module_get_data (mod);
  gsize n;

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE ("a(sas)")))
    return;
  n = g_variant_n_children (state);
  for (gsize i = n; i > 0; i--)
    {
      const char *key = NULL;
      char **features = NULL;

      g_variant_get_child (state, i - 1, "(&s^as)", &key, &features);
      caps_cache_add (caps, key, features);
    }
  g_debug ("caps: %u cached entr%s kept across the reload", g_hash_table_size (caps->cache),
           g_hash_table_size (caps->cache) == 1 ? "y" : "ies");
}

/* A session bound before this instance loaded: what its last available
 * presence announced is known again, silently when cached (its modules
 * heard caps/updated already), else asked as a new announcement. */
static void
caps_attach (MynaModule *mod, MynaSession *session)
{
  Caps *caps = myna_module_get_data (mod);
  MynaStanza *last = myna_presence_get_last (caps->presence, session);
  MynaStanza *c = last != NULL ? myna_stanza_get_child (last, "c", NS_CAPS) : NULL;
  const char *hash = c != NULL ? myna_stanza_get_attr (c, "hash") : NULL;
  const char *ver = c != NULL ? myna_stanza_get_attr (c, "ver") : NULL;
  g_autofree char *key = NULL;

  if (last == NULL || myna_stanza_get_type (last) != NULL || hash == NULL || ver == NULL)
    return;
  key = g_strdup_printf ("%s\n%s", hash, ver);
  if (g_hash_table_contains (caps->cache, key))
    {
      CapsSession *cs = g_new0 (CapsSession, 1);

      cs->key = g_steal_pointer (&key);
      myna_session_set_data (session, CAPS_SESSION_KEY, cs, caps_session_free);
      return;
    }
  caps_announced (caps, session, last);
}

static gboolean
caps_load (MynaModule *mod, GError **error)
{
  Caps *caps = g_new0 (Caps, 1);

  caps->mod = mod;
  caps->cache = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, caps_entry_free);
  g_queue_init (&caps->lru);
  caps->pending = g_hash_table_new (g_str_hash, g_str_equal);
  caps->failed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (caps_instances == NULL)
    caps_instances = g_ptr_array_new ();
  g_ptr_array_add (caps_instances, caps);
  myna_module_set_data (mod, caps, caps_free);
  if (!myna_module_provide (mod, MYNA_CAPS_SERVICE, 1, &caps_service, error))
    return FALSE;
  caps->presence = myna_module_use (mod, MYNA_PRESENCE_SERVICE, 1, NULL);
  /* Before the presence module (0), which consumes the presence. */
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, 20, caps_from_client, caps, NULL);
  myna_module_hook (mod, MYNA_EVENT_SESSION_CLOSED, 0, caps_closed, caps, NULL);
  myna_module_add_admin_command (mod, "caps", "caps show FULLJID | caps stats [HOST]",
                                 caps_admin_command, NULL, NULL);
  return TRUE;
}

MYNA_MODULE_DEFINE (caps,
  .version  = "1.0",
  .description = "entity capabilities (XEP-0115): a verified cache of clients' features",
  .mode     = MYNA_MODULE_EAGER,
  .provides = MYNA_STRV ("caps/1"),
  .config   = MYNA_CONFIG_KEYS (
      MYNA_CONFIG_INT (CapsConfig, cache_size, "10000", 1, 10000000,
                       "verified (hash, ver) entries kept in memory"),
      MYNA_CONFIG_DURATION (CapsConfig, query_timeout, "30s", 100, 3600000,
                            "how long to wait for a client's disco#info answer, "
                            "and before asking again after a refusal")),
  .config_size = sizeof (CapsConfig),
  .load     = caps_load,
  .save     = caps_save,
  .restore  = caps_restore,
  .attach   = caps_attach);
