/* avatar: user avatars (XEP-0084) and vCard-based avatars (XEP-0153)
 * kept in step (XEP-0398), and the avatar's hash in the account's
 * presence.
 *
 *  - A vCard set (a client's, through the vcard module) with a
 *    <PHOTO><TYPE/><BINVAL/></PHOTO> whose SHA-1 is not the avatar's
 *    publishes the image to urn:xmpp:avatar:data (item id = the SHA-1
 *    in hex) and its <info bytes id type/> to urn:xmpp:avatar:metadata,
 *    as the account (pep/1, so contacts get the notifications).  A PHOTO
 *    with no BINVAL publishes an empty <metadata/> (avatar disabled); a
 *    vCard without PHOTO leaves the avatar alone (clients that edit
 *    other fields drop elements they do not know).
 *  - A publish to urn:xmpp:avatar:metadata (by a client) whose first
 *    <info/> names an item of urn:xmpp:avatar:data puts that image in
 *    the vCard's PHOTO (TYPE from the info); an empty <metadata/>
 *    removes the PHOTO.  The vCard is written through vcard/1.
 *  - Every available presence an account's client sends (broadcast or
 *    directed) leaves with <x xmlns='vcard-temp:x:update'><photo>HASH
 *    </photo></x> (XEP-0153, XEP-0398 §4): the current avatar's id (from
 *    the metadata node; without one, the SHA-1 of the vCard's PHOTO); an
 *    empty <photo/> when the avatar is known to be none (an empty
 *    metadata item, a vCard without PHOTO); a bare <x/> when nothing is
 *    known (no metadata, no vCard: as Prosody, "not ready", which
 *    clients read as no information).  The client's own <x/> is
 *    replaced, except an empty <photo/> (the client's "no avatar"),
 *    which XEP-0398 says to leave.  The hook on stanza/from-client runs
 *    before the presence module's, which stores and broadcasts the
 *    amended stanza.
 *
 * Loops: this module's writes carry the origin tag "avatar" and its
 * handlers skip events with it; besides, each side compares hashes and
 * writes only what differs. */
#include <myna/module.h>
#include <myna/pep.h>
#include <myna/vcard.h>

#include <string.h>

#define NS_AVATAR_DATA     "urn:xmpp:avatar:data"
#define NS_AVATAR_METADATA "urn:xmpp:avatar:metadata"
#define NS_VCARD           "vcard-temp"
#define NS_VCARD_UPDATE    "vcard-temp:x:update"
#define NS_PUBSUB          "http://jabber.org/protocol/pubsub"
#define NS_CONVERSION      "urn:xmpp:pep-vcard-conversion:0"
#define AVATAR_ORIGIN      "avatar"
/* Data items looked through for the one a metadata publish names. */
#define AVATAR_DATA_LOOKBACK 4

typedef struct {
  MynaModule  *mod;
  MynaService *pep;
  MynaService *vcard;
  /* "local@host" → what presence carries for it: the hash, "" (no avatar:
   * an empty <photo/>) or AVATAR_UNKNOWN (a bare <x/>).  Each available
   * presence would otherwise read the PEP metadata, and without it the
   * vCard, decoding and hashing its photo; dropped on the account's
   * vCard sets, PEP publishes and retracts and its deletion, and all of it
   * past AVATAR_CACHE_MAX entries. */
  GHashTable  *hashes;
} Avatar;

#define AVATAR_UNKNOWN   "?"
#define AVATAR_CACHE_MAX 100000

/* The cache key of @local@@host.  Returns: (transfer full) */
static char *
avatar_key (MynaHost *host, const char *local)
{
  return g_strdup_printf ("%s@%s", local, myna_host_get_name (host));
}

/* Forgets what presence carries for the account @call is about. */
static MynaResult
avatar_forget (MynaCall *call, MynaStanza *unused, gpointer data)
{
  Avatar *self = data;
  MynaJid *owner = myna_call_get_from (call);

  if (owner != NULL && myna_jid_get_local (owner) != NULL)
    {
      g_autofree char *key = avatar_key (myna_call_get_host (call), myna_jid_get_local (owner));
      g_hash_table_remove (self->hashes, key);
    }
  return MYNA_PASS;
}

static void
avatar_free (gpointer data)
{
  Avatar *self = data;

  g_hash_table_unref (self->hashes);
  g_free (self);
}

/* ---- helpers ------------------------------------------------------------------- */

/* The bytes of base64 @text (whitespace ignored), or NULL when empty. */
static GBytes *
avatar_decode (const char *text)
{
  g_autofree char *copy = g_strdup (text != NULL ? text : "");
  guchar *raw;
  gsize len = 0, j = 0;

  for (gsize i = 0; copy[i] != '\0'; i++)
    if (!g_ascii_isspace (copy[i]))
      copy[j++] = copy[i];
  copy[j] = '\0';
  if (j == 0)
    return NULL;
  raw = g_base64_decode (copy, &len);
  if (len == 0)
    {
      g_free (raw);
      return NULL;
    }
  return g_bytes_new_take (raw, len);
}

/* The SHA-1 of @bytes, in hex.  Returns: (transfer full) */
static char *
avatar_sha1 (GBytes *bytes)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA1, bytes);
}

/* The <info/> of the newest metadata item of @local (NULL with *@known
 * TRUE when the avatar is disabled, FALSE when there is no metadata).
 * Returns: (transfer full) (nullable) */
static MynaStanza *
avatar_current_info (Avatar *self, MynaHost *host, const char *local, gboolean *known)
{
  g_autoptr(GPtrArray) items = myna_pep_get_items (self->pep, host, local, NS_AVATAR_METADATA,
                                                   1, NULL);
  MynaStanza *metadata, *info;

  *known = FALSE;
  if (items == NULL || items->len == 0)
    return NULL;
  *known = TRUE;
  metadata = myna_stanza_get_child (items->pdata[0], "metadata", NS_AVATAR_METADATA);
  info = metadata != NULL ? myna_stanza_get_child (metadata, "info", NS_AVATAR_METADATA) : NULL;
  return info != NULL && myna_stanza_get_attr (info, "id") != NULL ? myna_stanza_ref (info)
                                                                   : NULL;
}

/* The SHA-1 of @vcard's PHOTO (nullable), or NULL without one.
 * Returns: (transfer full) (nullable) */
static char *
avatar_vcard_hash (MynaStanza *vcard)
{
  MynaStanza *photo = vcard != NULL ? myna_stanza_get_child (vcard, "PHOTO", NS_VCARD) : NULL;
  g_autoptr(GBytes) bytes = photo != NULL ? avatar_decode (myna_stanza_get_child_text (photo,
                                                                                       "BINVAL"))
                                          : NULL;

  return bytes != NULL ? avatar_sha1 (bytes) : NULL;
}

/* Logs how a write of ours ended. */
static void
avatar_written (const GError *error, gpointer data)
{
  if (error != NULL)
    g_warning ("avatar of %s not converted: %s", (const char *) data, error->message);
}

/* ---- vCard -> PEP ----------------------------------------------------------------- */

/* Publishes @item to @node of @local as this module. */
static void
avatar_publish (Avatar *self, MynaHost *host, const char *local, const char *node,
                MynaStanza *item)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *who = g_strdup_printf ("%s@%s", local, myna_host_get_name (host));

  if (!myna_pep_publish (self->pep, host, local, node, item, NULL, AVATAR_ORIGIN, avatar_written,
                         g_strdup (who), g_free, &error))
    g_warning ("avatar of %s not published: %s", who, error->message);
}

/* vcard/updated: a new PHOTO becomes the PEP avatar. */
static MynaResult
avatar_vcard_updated (MynaCall *call, MynaStanza *fired, gpointer data)
{
  Avatar *self = data;
  MynaHost *host = myna_call_get_host (call);
  MynaJid *owner = myna_call_get_from (call);
  const char *local = owner != NULL ? myna_jid_get_local (owner) : NULL;
  MynaStanza *vcard = myna_stanza_first_element (fired);
  MynaStanza *photo = vcard != NULL ? myna_stanza_get_child (vcard, "PHOTO", NS_VCARD) : NULL;
  g_autoptr(MynaStanza) info = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(MynaStanza) data_item = NULL;
  g_autoptr(MynaStanza) meta_item = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *b64 = NULL;
  g_autofree char *size = NULL;
  const char *type;
  gboolean known;

  if (local == NULL || photo == NULL
      || g_strcmp0 (myna_pep_event_origin (fired), AVATAR_ORIGIN) == 0)
    return MYNA_PASS;
  info = avatar_current_info (self, host, local, &known);
  bytes = avatar_decode (myna_stanza_get_child_text (photo, "BINVAL"));
  if (bytes == NULL)
    {
      if (info == NULL)
        return MYNA_PASS;         /* no avatar either way */
      meta_item = myna_stanza_build ("<item xmlns='" NS_PUBSUB "' id='current'>"
                                     "<metadata xmlns='" NS_AVATAR_METADATA "'/></item>");
      avatar_publish (self, host, local, NS_AVATAR_METADATA, meta_item);
      return MYNA_PASS;
    }
  hash = avatar_sha1 (bytes);
  if (info != NULL && g_strcmp0 (myna_stanza_get_attr (info, "id"), hash) == 0)
    return MYNA_PASS;
  type = myna_stanza_get_child_text (photo, "TYPE");
  if (type == NULL || *type == '\0')
    type = "image/png";
  b64 = g_base64_encode (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  size = g_strdup_printf ("%zu", g_bytes_get_size (bytes));
  data_item = myna_stanza_build ("<item xmlns='" NS_PUBSUB "' id='%s'>"
                                 "<data xmlns='" NS_AVATAR_DATA "'>%s</data></item>", hash, b64);
  meta_item = myna_stanza_build ("<item xmlns='" NS_PUBSUB "' id='%s'>"
                                 "<metadata xmlns='" NS_AVATAR_METADATA "'>"
                                 "<info bytes='%s' id='%s' type='%s'/></metadata></item>",
                                 hash, size, hash, type);
  /* Data first: whoever reads the metadata finds the data there. */
  avatar_publish (self, host, local, NS_AVATAR_DATA, data_item);
  avatar_publish (self, host, local, NS_AVATAR_METADATA, meta_item);
  return MYNA_PASS;
}

/* ---- PEP -> vCard ----------------------------------------------------------------- */

/* The base64 data of item @id of @local's data node, among the newest
 * few.  Returns: (transfer full) (nullable) */
static GBytes *
avatar_data_of (Avatar *self, MynaHost *host, const char *local, const char *id)
{
  g_autoptr(GPtrArray) items = myna_pep_get_items (self->pep, host, local, NS_AVATAR_DATA,
                                                   AVATAR_DATA_LOOKBACK, NULL);

  for (guint i = 0; items != NULL && i < items->len; i++)
    if (g_strcmp0 (myna_stanza_get_attr (items->pdata[i], "id"), id) == 0)
      {
        MynaStanza *d = myna_stanza_get_child (items->pdata[i], "data", NS_AVATAR_DATA);
        return d != NULL ? avatar_decode (myna_stanza_get_text (d)) : NULL;
      }
  return NULL;
}

/* Stores @vcard as @local's, as this module. */
static void
avatar_set_vcard (Avatar *self, MynaHost *host, const char *local, MynaStanza *vcard)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *who = g_strdup_printf ("%s@%s", local, myna_host_get_name (host));

  if (!myna_vcard_set (self->vcard, host, local, vcard, AVATAR_ORIGIN, avatar_written,
                       g_strdup (who), g_free, &error))
    g_warning ("vCard of %s not updated with the avatar: %s", who, error->message);
}

/* pep/published: a client's new avatar metadata becomes the vCard's PHOTO. */
static MynaResult
avatar_pep_published (MynaCall *call, MynaStanza *fired, gpointer data)
{
  Avatar *self = data;
  MynaHost *host = myna_call_get_host (call);
  MynaJid *owner = myna_call_get_from (call);
  const char *local = owner != NULL ? myna_jid_get_local (owner) : NULL;
  MynaStanza *item = myna_stanza_first_element (fired);
  MynaStanza *metadata = item != NULL ? myna_stanza_get_child (item, "metadata",
                                                               NS_AVATAR_METADATA) : NULL;
  MynaStanza *info = metadata != NULL ? myna_stanza_get_child (metadata, "info",
                                                               NS_AVATAR_METADATA) : NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(MynaStanza) vcard = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *have = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *b64 = NULL;
  const char *id = info != NULL ? myna_stanza_get_attr (info, "id") : NULL;
  const char *type = info != NULL ? myna_stanza_get_attr (info, "type") : NULL;
  MynaStanza *photo;

  if (local == NULL || metadata == NULL
      || g_strcmp0 (myna_stanza_get_attr (fired, "node"), NS_AVATAR_METADATA) != 0
      || g_strcmp0 (myna_pep_event_origin (fired), AVATAR_ORIGIN) == 0)
    return MYNA_PASS;
  if (info != NULL && id == NULL)
    return MYNA_PASS;
  if (id != NULL)
    {
      bytes = avatar_data_of (self, host, local, id);
      hash = bytes != NULL ? avatar_sha1 (bytes) : NULL;
      if (bytes == NULL || g_strcmp0 (hash, id) != 0)
        {
          g_info ("avatar %s of %s@%s: no matching data item, vCard left as is", id, local,
                  myna_host_get_name (host));
          return MYNA_PASS;
        }
    }
  vcard = myna_vcard_get (self->vcard, host, local, &error);
  if (error != NULL)
    {
      g_warning ("vCard of %s@%s cannot be read: %s", local, myna_host_get_name (host),
                 error->message);
      return MYNA_PASS;
    }
  if (vcard == NULL)
    {
      if (id == NULL)
        return MYNA_PASS;
      vcard = myna_stanza_new ("vCard", NS_VCARD);
    }
  have = avatar_vcard_hash (vcard);
  if (g_strcmp0 (have, id) == 0)
    return MYNA_PASS;
  myna_stanza_remove_children (vcard, "PHOTO", NS_VCARD);
  if (id != NULL)
    {
      b64 = g_base64_encode (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      photo = myna_stanza_add_child (vcard, "PHOTO", NS_VCARD);
      myna_stanza_add_text_child (photo, "TYPE",
                                  type != NULL && *type != '\0' ? type : "image/png");
      myna_stanza_add_text_child (photo, "BINVAL", b64);
    }
  avatar_set_vcard (self, host, local, vcard);
  return MYNA_PASS;
}

/* ---- presence ----------------------------------------------------------------------- */

/* stanza/from-client: an account's available presence carries its
 * avatar's hash (XEP-0398 §4), unless the client said "no avatar" itself
 * (an empty <photo/>, left as it is). */
static MynaResult
avatar_presence (MynaCall *call, MynaStanza *stanza, gpointer data)
{
  Avatar *self = data;
  MynaSession *session = myna_call_get_session (call);
  MynaJid *jid = session != NULL ? myna_session_get_jid (session) : NULL;
  const char *local = jid != NULL ? myna_jid_get_local (jid) : NULL;
  MynaHost *host = myna_call_get_host (call);
  MynaStanza *x = NULL, *photo = NULL;
  g_autoptr(MynaStanza) info = NULL;
  g_autofree char *hash = NULL;
  g_autofree char *key = NULL;
  const char *cached;
  gboolean known, none = FALSE;

  if (local == NULL || g_strcmp0 (myna_stanza_get_name (stanza), "presence") != 0
      || myna_stanza_get_type (stanza) != NULL)
    return MYNA_PASS;
  x = myna_stanza_get_child (stanza, "x", NS_VCARD_UPDATE);
  photo = x != NULL ? myna_stanza_get_child (x, "photo", NS_VCARD_UPDATE) : NULL;
  if (photo != NULL && *myna_stanza_get_text (photo) == '\0')
    return MYNA_PASS;
  key = avatar_key (host, local);
  cached = g_hash_table_lookup (self->hashes, key);
  if (cached != NULL)
    {
      hash = *cached != '\0' && strcmp (cached, AVATAR_UNKNOWN) != 0 ? g_strdup (cached) : NULL;
      none = *cached == '\0';
    }
  else
    {
      info = avatar_current_info (self, host, local, &known);
      if (info != NULL)
        hash = g_strdup (myna_stanza_get_attr (info, "id"));
      else if (known)
        none = TRUE;                  /* the avatar was disabled */
      else
        {
          g_autoptr(MynaStanza) vcard = myna_vcard_get (self->vcard, host, local, NULL);
          hash = avatar_vcard_hash (vcard);
          none = vcard != NULL && hash == NULL;
        }
      if (g_hash_table_size (self->hashes) >= AVATAR_CACHE_MAX)
        g_hash_table_remove_all (self->hashes);
      g_hash_table_insert (self->hashes, g_steal_pointer (&key),
                           g_strdup (hash != NULL ? hash : none ? "" : AVATAR_UNKNOWN));
    }
  myna_stanza_remove_children (stanza, "x", NS_VCARD_UPDATE);
  x = myna_stanza_add_child (stanza, "x", NS_VCARD_UPDATE);
  if (hash != NULL)
    myna_stanza_add_text_child (x, "photo", hash);
  else if (none)
    myna_stanza_add_child (x, "photo", NS_VCARD_UPDATE);
  return MYNA_PASS;
}

/* ---- module -------------------------------------------------------------------------- */

static gboolean
avatar_load (MynaModule *mod, GError **error)
{
  Avatar *self = g_new0 (Avatar, 1);

  self->mod = mod;
  self->hashes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  myna_module_set_data (mod, self, avatar_free);
  /* Declared in .uses: NULL only when no provider could be loaded. */
  self->pep = myna_module_use (mod, MYNA_PEP_SERVICE, 1, error);
  if (self->pep == NULL)
    return FALSE;
  self->vcard = myna_module_use (mod, MYNA_VCARD_SERVICE, 1, error);
  if (self->vcard == NULL)
    return FALSE;
  /* First (100): the cached hash goes before anything converts. */
  myna_module_hook (mod, MYNA_EVENT_VCARD_UPDATED, 100, avatar_forget, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PEP_PUBLISHED, 100, avatar_forget, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PEP_RETRACTED, 100, avatar_forget, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_ACCOUNT_DELETED, 100, avatar_forget, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_VCARD_UPDATED, 0, avatar_vcard_updated, self, NULL);
  myna_module_hook (mod, MYNA_EVENT_PEP_PUBLISHED, 0, avatar_pep_published, self, NULL);
  /* Before the presence module (0) stores and broadcasts it; after
   * carbons (10) and csi, which do not look at presence payloads. */
  myna_module_hook (mod, MYNA_EVENT_STANZA_FROM_CLIENT, 5, avatar_presence, self, NULL);
  return TRUE;
}

/* Conversions in flight end before the code goes away. */
static void
avatar_unload (MynaModule *mod)
{
  if (!myna_storage_flush (myna_module_get_storage (mod), NULL))
    g_warning ("avatar: a pending write failed at unload");
}

/* Eager: it follows events of the vcard and pep modules and every
 * client's presence. */
MYNA_MODULE_DEFINE (avatar,
  .version = "1.0",
  .description = "user avatars (XEP-0084) and vCard avatars (XEP-0153) kept in step "
                 "(XEP-0398)",
  .account_features = MYNA_STRV (NS_CONVERSION),
  .uses    = MYNA_STRV ("pep/1", "vcard/1"),
  .mode    = MYNA_MODULE_EAGER,
  .load    = avatar_load,
  .unload  = avatar_unload);
